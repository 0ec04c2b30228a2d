"""stim-backed sampling of Clifford states: conventions, exactness, statistics, noise, scale."""

import numpy as np
import pytest
import stim

from shadowlab.acquire.clifford_states import (
    builtin_clifford,
    ghz_circuit,
    stabilizer_expectation,
    toric_code_stabilizers,
)
from shadowlab.acquire.stim_sampler import check_state_circuit, measurement_circuit, sample_stim
from shadowlab.data.dataset import uniform_settings
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError
from shadowlab.paulis import PauliString, expectation_statevector

X, Y, Z = 0, 1, 2


def _random_circuit(n: int, depth: int, rng: np.random.Generator) -> stim.Circuit:
    """A random Clifford circuit drawn from numpy's generator (stim.Tableau.random is not seedable)."""
    c = stim.Circuit()
    singles = ["H", "S", "S_DAG", "SQRT_X", "SQRT_Y", "H_YZ", "C_XYZ", "X", "Y", "Z", "I"]
    for _ in range(depth):
        for q in range(n):
            c.append(singles[rng.integers(len(singles))], [q])
        perm = rng.permutation(n)
        for k in range(0, n - 1, 2):
            c.append(["CX", "CZ", "CY", "SWAP", "ISWAP"][rng.integers(5)], [int(perm[k]), int(perm[k + 1])])
    return c


def _signed_parities(data, pauli: PauliString) -> np.ndarray:
    """(-1)^(xor of outcomes on the support) over the snapshots whose bases match ``pauli``."""
    q = np.array(pauli.qubits)
    match = np.all(data.bases[:, q] == np.array(pauli.codes), axis=1)
    parity = np.bitwise_xor.reduce(data.outcomes[match][:, q], axis=1)
    return 1.0 - 2.0 * parity


def _assert_matches_exact(data, pauli: PauliString, exact: float, min_matches: int = 100) -> None:
    """Exact agreement for a (minus) stabilizer; within 5 binomial standard errors otherwise."""
    values = _signed_parities(data, pauli)
    assert values.size >= min_matches, f"too few snapshots match {pauli}"
    if abs(exact) == 1.0:
        np.testing.assert_array_equal(values, exact, err_msg=str(pauli))
    else:
        se = np.sqrt((1.0 - exact**2) / values.size)
        assert abs(values.mean() - exact) <= 5 * se, (str(pauli), values.mean(), exact, se)


def _is_possible(circuit: stim.Circuit, n: int, bases: np.ndarray, bits: np.ndarray) -> bool:
    """Whether the noiseless state can give ``bits`` in ``bases`` (stim postselection)."""
    sim = stim.TableauSimulator()
    sim.set_num_qubits(n)
    sim.do(measurement_circuit(circuit, bases)[:-1])  # everything but the final M
    try:
        for q in range(n):
            sim.postselect_z(q, desired_value=bool(bits[q]))
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Conventions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["frames", "compile"])
@pytest.mark.parametrize(
    ("prep", "basis", "bit"),
    [
        ("", Z, 0),  # |0>, Z = +1
        ("X 0", Z, 1),  # |1>, Z = -1
        ("H 0", X, 0),  # |+>, X = +1
        ("X 0\nH 0", X, 1),  # |->, X = -1
        ("H 0\nS 0", Y, 0),  # |+i> = (|0> + i|1>)/sqrt2, Y = +1
        ("H 0\nS_DAG 0", Y, 1),  # |-i>, Y = -1
    ],
)
def test_single_qubit_bit_and_sign(prep, basis, bit, method):
    data = sample_stim(stim.Circuit(prep), np.array([[basis]]), 40, np.random.default_rng(0), method=method)
    np.testing.assert_array_equal(data.outcomes, bit)
    np.testing.assert_array_equal(data.bases, basis)


def test_qubit_i_is_stim_qubit_i():
    circuit = stim.Circuit("X 1\nH 3\nS 3")  # |0 1 0 +i>
    data = sample_stim(circuit, np.array([[Z, Z, Z, Y]]), 10, np.random.default_rng(1))
    np.testing.assert_array_equal(data.outcomes, [[0, 1, 0, 0]] * 10)
    # Extra qubits beyond the circuit are |0>.
    data = sample_stim(circuit, np.array([[Z, Z, Z, Y, Z, X]]), 400, np.random.default_rng(1))
    np.testing.assert_array_equal(data.outcomes[:, :5], [[0, 1, 0, 0, 0]] * 400)
    assert 0.35 < data.outcomes[:, 5].mean() < 0.65  # |0> measured in X is a fair coin


def test_measurement_circuit_appends_basis_changes_and_m():
    circuit = stim.Circuit("S 1")
    assert measurement_circuit(circuit, [X, Y, Z]) == stim.Circuit("S 1\nH 0\nH_YZ 1\nM 0 1 2")
    assert circuit == stim.Circuit("S 1")  # the input is not modified


# ------------------------------------------------------------------------------------------
# Exactness
# ------------------------------------------------------------------------------------------

_H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
# Measuring basis b = applying ROT[b] then Z: H maps |+> to |0>; H S^dagger maps |+i> to |0>.
_ROT = {X: _H, Y: _H @ np.diag([1, -1j]), Z: np.eye(2)}


def _born(psi: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Outcome probabilities, index = outcome bits with qubit 0 the most significant."""
    n = bases.size
    t = psi.reshape((2,) * n)
    for q, b in enumerate(bases):
        t = np.moveaxis(np.tensordot(_ROT[int(b)], t, axes=([1], [q])), 0, q)
    return np.abs(t.reshape(-1)) ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_4_qubit_cliffords_match_the_state_vector(seed):
    rng = np.random.default_rng(seed)
    n, shots = 4, 4000
    circuit = _random_circuit(n, 5, rng)
    psi = circuit.to_tableau().to_state_vector(endian="big").astype(np.complex128)  # qubit 0 = MSB
    settings = uniform_settings(n, 12, rng)
    data = sample_stim(circuit, settings, shots, rng)
    weights = 1 << np.arange(n)[::-1]
    for g in range(settings.shape[0]):
        counts = np.bincount(data.outcomes[data.settings == g] @ weights, minlength=2**n)
        p = _born(psi, settings[g])
        p[p < 1e-6] = 0.0  # stabilizer-state probabilities are 0 or 2^-k; clean the float32 noise
        np.testing.assert_array_equal(counts[p == 0], 0)  # only possible outcomes occur
        se = np.sqrt(p * (1 - p) / shots)
        assert np.all(np.abs(counts / shots - p) <= 5 * se + 1e-12), (g, counts / shots, p)
    # Exact expectation values: stim's tableau agrees with the state vector, and the data with both.
    for label in ["ZZII", "XIXI", "YZIX", "ZIIZ", "XYZX", "IIYI"]:
        pauli = PauliString.from_label(label)
        exact = stabilizer_expectation(circuit, pauli, n)
        # stim's state vector is single precision.
        assert exact == pytest.approx(expectation_statevector(pauli, psi), abs=1e-5)


@pytest.mark.parametrize("spec", ["cluster2d:6x6", "toric:3", "ghz:40", "brick:60"])
def test_every_snapshot_is_a_possible_outcome(spec):
    rng = np.random.default_rng(3)
    circuit = _random_circuit(60, 8, rng) if spec.startswith("brick") else builtin_clifford(spec)
    n = circuit.num_qubits
    settings = uniform_settings(n, 60, rng)
    data = sample_stim(circuit, settings, 1, rng)
    assert all(_is_possible(circuit, n, settings[g], data.outcomes[g]) for g in range(60))


# ------------------------------------------------------------------------------------------
# Statistics against exact stabilizer values
# ------------------------------------------------------------------------------------------


def test_ghz_100_parities_agree_with_exact_values():
    n = 100
    circuit = ghz_circuit(n)
    rng = np.random.default_rng(4)
    # Random settings for low-weight Paulis, plus two fixed settings for the global ones.
    all_x = np.full((1, n), X, dtype=np.uint8)
    yyx = all_x.copy()
    yyx[0, :2] = Y
    settings = np.concatenate([uniform_settings(n, 20000, rng), all_x, yyx])
    data = sample_stim(circuit, settings, np.r_[np.ones(20000, dtype=np.int64), 300, 300], rng)
    for label in ["Z3 Z70", "Z0 Z1", "Z5", "X0 X1", "Y10 Y11", "X8", "X" * n, "YY" + "X" * (n - 2)]:
        pauli = PauliString.from_label(label)
        exact = stabilizer_expectation(circuit, pauli, n)
        _assert_matches_exact(data, pauli, exact)
    assert stabilizer_expectation(circuit, PauliString.from_label("YY" + "X" * (n - 2)), n) == -1.0


def test_toric_code_stabilizers_are_all_satisfied():
    size = 4
    circuit = builtin_clifford(f"toric:{size}")
    n = circuit.num_qubits
    rng = np.random.default_rng(5)
    # Weight-4 stabilizers match a uniform setting with probability 1/81; bias the settings to
    # X or Z so that every star and plaquette is seen often.
    settings = np.where(rng.random((20000, n)) < 0.5, X, Z).astype(np.uint8)
    data = sample_stim(circuit, settings, 1, rng)
    for term in toric_code_stabilizers(size).terms:
        _assert_matches_exact(data, term, 1.0)


def test_ghz_1000_qubits():
    n = 1000
    rng = np.random.default_rng(6)
    data = sample_stim(ghz_circuit(n), uniform_settings(n, 2000, rng), 1, rng)
    z = data.bases == Z
    # In GHZ every Z outcome of a snapshot is the same bit, a fair coin across snapshots.
    for s in range(data.n_snapshots):
        bits = data.outcomes[s, z[s]]
        assert bits.min() == bits.max()
    first = data.outcomes[np.arange(data.n_snapshots), np.argmax(z, axis=1)]
    assert abs(first.mean() - 0.5) <= 5 * 0.5 / np.sqrt(first.size)


# ------------------------------------------------------------------------------------------
# Noise
# ------------------------------------------------------------------------------------------


def _global_mean(data, label: str) -> tuple[float, float]:
    values = _signed_parities(data, PauliString.from_label(label))
    return float(values.mean()), float(np.sqrt(max(1 - values.mean() ** 2, 1e-3) / values.size))


def test_z_error_shifts_x_string_as_predicted():
    n, p, shots = 5, 0.1, 40000
    circuit = ghz_circuit(n)
    circuit.append("Z_ERROR", range(n), p)
    assert check_state_circuit(circuit) is True
    data = sample_stim(circuit, np.full((1, n), X), shots, np.random.default_rng(7))
    mean, se = _global_mean(data, "X" * n)
    # Each Z error flips X^n; independent flips with probability p give <X^n> = (1 - 2p)^n.
    assert abs(mean - (1 - 2 * p) ** n) <= 5 * se
    # Z errors commute with ZZ: still exactly +1.
    data = sample_stim(circuit, np.full((1, n), Z), 2000, np.random.default_rng(7))
    _assert_matches_exact(data, PauliString.from_label("Z0 Z4"), 1.0)


def test_depolarizing_noise_matches_theory_and_stims_own_sampler():
    n, p, shots = 3, 0.15, 30000
    circuit = ghz_circuit(n)
    circuit.append("DEPOLARIZE1", range(n), p)
    # DEPOLARIZE1(p): X, Y, Z each with probability p/3; Z_i is flipped by X or Y (2p/3).
    expected = (1 - 4 * p / 3) ** 2
    for method in ("frames", "compile"):
        data = sample_stim(circuit, np.full((1, n), Z), shots, np.random.default_rng(8), method=method)
        mean, se = _global_mean(data, "Z0 Z2")
        assert abs(mean - expected) <= 5 * se, (method, mean, expected)


def test_noise_inside_the_circuit_agrees_with_compile_sampler():
    # Noise before entangling gates spreads; frames and stim's compiled sampler must agree.
    rng = np.random.default_rng(9)
    circuit = stim.Circuit("H 0\nX_ERROR(0.2) 0\nCX 0 1\nY_ERROR(0.1) 1\nCX 1 2\nDEPOLARIZE2(0.1) 0 2\nS 2")
    settings = uniform_settings(3, 6, rng)
    a = sample_stim(circuit, settings, 20000, rng)
    b = sample_stim(circuit, settings, 20000, rng, method="compile")
    for g in range(6):
        pa = np.bincount(a.outcomes[a.settings == g] @ [4, 2, 1], minlength=8) / 20000
        pb = np.bincount(b.outcomes[b.settings == g] @ [4, 2, 1], minlength=8) / 20000
        se = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 20000)
        assert np.all(np.abs(pa - pb) <= 5 * se + 1e-4), (g, pa, pb)


# ------------------------------------------------------------------------------------------
# API behaviour
# ------------------------------------------------------------------------------------------


def test_reproducible_for_a_given_seed():
    circuit = builtin_clifford("cluster:30")
    circuit.append("DEPOLARIZE1", range(30), 0.05)
    settings = uniform_settings(30, 300, np.random.default_rng(0))
    a = sample_stim(circuit, settings, 3, np.random.default_rng(42))
    b = sample_stim(circuit, settings, 3, np.random.default_rng(42))
    c = sample_stim(circuit, settings, 3, np.random.default_rng(43))
    assert a.equals(b)
    assert not a.equals(c)


def test_repeats_progress_and_metadata():
    circuit = ghz_circuit(4)
    settings = uniform_settings(4, 5, np.random.default_rng(0))
    seen = []
    data = sample_stim(circuit, settings, [2, 0, 3, 1, 0], np.random.default_rng(1), progress=seen.append)
    assert data.n_snapshots == 6
    np.testing.assert_array_equal(data.settings, [0, 0, 2, 2, 2, 3])
    np.testing.assert_array_equal(data.bases, settings[[0, 0, 2, 2, 2, 3]])
    assert seen[-1] == 5
    assert data.metadata["source"] == "stim" and data.metadata["noisy"] is False
    empty = sample_stim(circuit, np.zeros((0, 4), dtype=np.uint8), 1, np.random.default_rng(1))
    assert empty.n_snapshots == 0 and empty.n_qubits == 4


def test_repeat_blocks_are_accepted():
    circuit = stim.Circuit("H 0\nREPEAT 3 {\n    CX 0 1\n    TICK\n}")  # CX three times = CX
    data = sample_stim(circuit, np.array([[Z, Z]]), 50, np.random.default_rng(2))
    assert np.all(data.outcomes[:, 0] == data.outcomes[:, 1])


@pytest.mark.parametrize(
    "text",
    ["H 0\nM 0", "R 0\nH 0", "H 0\nMR 0", "MPP X0*X1", "H 0\nM 0\nDETECTOR rec[-1]", "HERALDED_ERASE(0.1) 0",
     "MPAD 0", "H 0\nREPEAT 2 {\n    M 0\n}"],
)
def test_measuring_circuits_are_rejected(text):
    with pytest.raises(StateError):
        sample_stim(stim.Circuit(text), np.array([[Z, Z]]), 1, np.random.default_rng(0))


def test_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(QubitCountMismatchError):
        sample_stim(ghz_circuit(3), np.array([[Z, Z]]), 1, rng)
    with pytest.raises(ShadowlabError, match="basis codes"):
        sample_stim(ghz_circuit(2), np.array([[Z, 3]]), 1, rng)
    with pytest.raises(ShadowlabError, match="repeat"):
        sample_stim(ghz_circuit(2), np.array([[Z, Z]]), -1, rng)
    with pytest.raises(ShadowlabError, match="Generator"):
        sample_stim(ghz_circuit(2), np.array([[Z, Z]]), 1, 0)
    with pytest.raises(ShadowlabError, match="method"):
        sample_stim(ghz_circuit(2), np.array([[Z, Z]]), 1, rng, method="magic")
    with pytest.raises(StateError):
        sample_stim("H 0", np.array([[Z]]), 1, rng)
