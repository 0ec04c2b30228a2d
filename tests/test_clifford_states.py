"""Built-in Clifford states: exact stabilizers by stim's tableau simulator and a state vector."""

import numpy as np
import pytest
import stim

from shadowlab.acquire.clifford_states import (
    builtin_clifford,
    cluster_2d_circuit,
    cluster_circuit,
    ghz_circuit,
    stabilizer_expectation,
    stabilizer_expectations,
    toric_code_circuit,
    toric_code_stabilizers,
)
from shadowlab.acquire.statevector import exact_pauli_expectations
from shadowlab.errors import ShadowlabError, StateError
from shadowlab.paulis import PauliString, PauliSum


@pytest.mark.parametrize("size", [2, 3, 5])
def test_toric_code_satisfies_every_stabilizer(size):
    stabs = toric_code_stabilizers(size)
    assert len(stabs) == 2 * size * size + 2
    np.testing.assert_array_equal(stabilizer_expectations(toric_code_circuit(size), stabs), 1.0)


def test_toric_code_logical_x_loops_are_undetermined():
    # X loops anticommute with the Z loops, which are fixed at +1: their expectation is 0.
    size = 3
    x_loop = PauliSum.from_labels([" ".join(f"X{2 * (0 * size + c) + 1}" for c in range(size))], n_qubits=18)
    assert stabilizer_expectations(toric_code_circuit(size), x_loop)[0] == 0.0


def test_cluster_stabilizers_and_ghz_values():
    n = 6
    labels = ["X0 Z1"] + [f"Z{i - 1} X{i} Z{i + 1}" for i in range(1, n - 1)] + [f"Z{n - 2} X{n - 1}"]
    np.testing.assert_array_equal(stabilizer_expectations(cluster_circuit(n), PauliSum.from_labels(labels,
                                                                                                 n_qubits=n)), 1.0)
    ghz = PauliSum.from_labels(["Z0 Z5", "XXXXXX", "Z3", "YYXXXX", "X0"], n_qubits=6)
    # GHZ: ZZ = 1, X^n = 1, Z = 0, Y Y X^(n-2) = -1, single X = 0.
    np.testing.assert_array_equal(stabilizer_expectations(ghz_circuit(6), ghz), [1, 1, 0, -1, 0])


def test_stabilizer_values_match_the_state_vector():
    # A 2x3 cluster state: stim's tableau against its state vector (qubit 0 = most significant).
    circuit = cluster_2d_circuit(2, 3)
    psi = circuit.to_tableau().to_state_vector(endian="big")
    rng = np.random.default_rng(0)
    labels = ["".join("IXYZ"[k] for k in rng.integers(0, 4, 6)) for _ in range(200)]
    obs = PauliSum.from_labels(labels)
    np.testing.assert_allclose(stabilizer_expectations(circuit, obs), exact_pauli_expectations(psi, obs), atol=1e-12)


def test_specs():
    assert builtin_clifford("cluster2d:3x4").num_qubits == 12
    assert builtin_clifford("ghz:1").num_qubits == 1
    with pytest.raises(ShadowlabError, match="unknown Clifford state"):
        builtin_clifford("foo:3")
    with pytest.raises(ShadowlabError, match="cannot read the size"):
        builtin_clifford("ghz:many")
    with pytest.raises(ShadowlabError, match="size >= 2"):
        builtin_clifford("toric:1")


def test_single_stabilizer_expectation_on_ghz():
    n = 8
    c = ghz_circuit(n)
    for i, j in [(0, 1), (2, 7), (3, 5)]:
        assert stabilizer_expectation(c, PauliString.from_pairs([("Z", i), ("Z", j)]), n) == 1.0
    assert stabilizer_expectation(c, "X" * n, n) == 1.0
    assert stabilizer_expectation(c, "Z3", n) == 0.0
    assert stabilizer_expectation(c, "Y0 Y1 " + " ".join(f"X{q}" for q in range(2, n)), n) == -1.0
    # Qubits beyond the circuit are |0>: Z = +1 there.
    assert stabilizer_expectation(c, "Z9", 10) == 1.0


def test_stabilizer_expectation_refuses_noisy_or_measuring_circuits():
    noisy = ghz_circuit(3)
    noisy.append("DEPOLARIZE1", [0], 0.1)
    with pytest.raises(StateError, match="noise"):
        stabilizer_expectation(noisy, "ZZI", 3)
    with pytest.raises(StateError, match="measure"):
        stabilizer_expectation(stim.Circuit("H 0\nM 0"), "Z0", 1)
    with pytest.raises(ShadowlabError):
        stabilizer_expectation(ghz_circuit(3), "Z0", 2)
