"""Tests of the built-in states (shadowlab.acquire.states).

Reference Hamiltonians are built here with dense Kronecker products, independently of the
bit-mask construction under test, and diagonalized with numpy.linalg.eigvalsh.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from shadowlab.acquire.states import (
    BUILTIN_STATES,
    builtin_state,
    fix_global_phase,
    ghz,
    ground_state,
    haar_random_state,
    heisenberg_ground_state,
    heisenberg_hamiltonian,
    product_state,
    sparse_pauli_sum_matrix,
    tfim_ground_state,
    tfim_hamiltonian,
    w_state,
)
from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

PAULI = {
    "I": np.eye(2),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.diag([1.0, -1.0]),
}
S2 = 1 / np.sqrt(2)


def dense(label: str) -> np.ndarray:
    """Dense matrix of a dense Pauli label, qubit 0 = leftmost Kronecker factor (= MSB)."""
    out = np.ones((1, 1))
    for ch in label:
        out = np.kron(out, PAULI[ch])
    return out


def dense_chain(n: int, pairs: list[tuple[str, float]], field: tuple[str, float] | None, periodic: bool) -> np.ndarray:
    """sum over bonds of coeff * P_i P_j for each (P, coeff) in pairs, plus coeff * F_i on every site."""
    bonds = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if periodic and n > 2 else [])
    h = np.zeros((2**n, 2**n), dtype=complex)
    for i, j in bonds:
        for p, c in pairs:
            label = ["I"] * n
            label[i] = label[j] = p
            h += c * dense("".join(label))
    if field is not None:
        p, c = field
        for i in range(n):
            label = ["I"] * n
            label[i] = p
            h += c * dense("".join(label))
    # These chains are real matrices (Y (x) Y is real); a real eigvalsh is several times faster.
    assert np.abs(h.imag).max() == 0
    return h.real


def test_ghz_w_and_product_states() -> None:
    np.testing.assert_allclose(ghz(3), S2 * np.eye(8)[0] + S2 * np.eye(8)[7])
    # W(3) = (|001> + |010> + |100>)/sqrt(3), Dür, Vidal & Cirac, PRA 62, 062314 (2000).
    np.testing.assert_allclose(w_state(3), (np.eye(8)[1] + np.eye(8)[2] + np.eye(8)[4]) / np.sqrt(3))
    np.testing.assert_allclose(w_state(1), [0, 1])
    plus, minus = np.array([S2, S2]), np.array([S2, -S2])
    r, ell = np.array([S2, 1j * S2]), np.array([S2, -1j * S2])
    np.testing.assert_allclose(product_state("01+-rl"), dense_kron([[1, 0], [0, 1], plus, minus, r, ell]))
    np.testing.assert_allclose(product_state("RL"), product_state("rl"))
    # Y|r> = +|r>, Y|l> = -|l>: the letters are the Y eigenstates with eigenvalues +1 and -1.
    np.testing.assert_allclose(PAULI["Y"] @ product_state("r"), product_state("r"))
    np.testing.assert_allclose(PAULI["Y"] @ product_state("l"), -product_state("l"))
    with pytest.raises(ShadowlabError, match="unknown letter 'a' for qubit 2"):
        product_state("01a")
    with pytest.raises(ShadowlabError, match="number of qubits"):
        ghz(0)


def dense_kron(vectors: list) -> np.ndarray:
    out = np.ones(1)
    for v in vectors:
        out = np.kron(out, np.asarray(v, dtype=complex))
    return out


def test_haar_random_state_is_normalized_and_seeded() -> None:
    a = haar_random_state(5, np.random.default_rng(3))
    b = haar_random_state(5, np.random.default_rng(3))
    assert a.shape == (32,) and a.dtype == np.complex128
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, haar_random_state(5, np.random.default_rng(4)))


def test_sparse_matrix_matches_dense_kron() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 4):
        labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(12)]
        coeffs = rng.normal(size=12)
        h = sparse_pauli_sum_matrix(PauliSum.from_labels(labels, coeffs))
        ref = sum(c * dense(label) for c, label in zip(coeffs, labels, strict=True))
        np.testing.assert_allclose(h.toarray(), ref, atol=1e-13)
    # Even numbers of Y give a real matrix, stored as float64.
    assert sparse_pauli_sum_matrix(PauliSum.from_labels(["YY", "XZ"])).dtype == np.float64
    assert sparse_pauli_sum_matrix(PauliSum.from_labels(["YZ"])).dtype == np.complex128
    # Cancelling terms leave no stored entries.
    assert sparse_pauli_sum_matrix(PauliSum.from_labels(["XX", "XX"], [1.0, -1.0])).nnz == 0


@pytest.mark.parametrize(("n", "h", "periodic"), [(2, 1.0, False), (4, 0.5, False), (5, 1.0, True), (9, 0.8, False)])
def test_tfim_ground_energy_matches_dense_diagonalization(n: int, h: float, periodic: bool) -> None:
    # n = 9 > 8 goes through the sparse eigsh path.
    ref = np.linalg.eigvalsh(dense_chain(n, [("Z", -1.0)], ("X", -h), periodic))[0]
    energy, psi = ground_state(tfim_hamiltonian(n, h=h, periodic=periodic))
    assert energy == pytest.approx(ref, abs=1e-9)
    hm = sparse_pauli_sum_matrix(tfim_hamiltonian(n, h=h, periodic=periodic))
    np.testing.assert_allclose(hm @ psi, energy * psi, atol=1e-7)  # an eigenvector, not just the value
    np.testing.assert_allclose(tfim_ground_state(n, h=h, periodic=periodic), psi, atol=1e-7)


def test_heisenberg_ground_energies() -> None:
    # Two spins: X X + Y Y + Z Z = 2 SWAP - I has the singlet at -3 and the triplet at +1.
    energy, psi = ground_state(heisenberg_hamiltonian(2))
    assert energy == pytest.approx(-3.0, abs=1e-12)
    np.testing.assert_allclose(psi, [0, S2, -S2, 0], atol=1e-12)  # the singlet, phase-fixed
    xxx = [("X", 1.0), ("Y", 1.0), ("Z", 1.0)]
    for n, periodic in [(4, True), (6, False), (10, False)]:
        ref = np.linalg.eigvalsh(dense_chain(n, xxx, None, periodic))[0]
        energy, psi = ground_state(heisenberg_hamiltonian(n, periodic=periodic))
        assert energy == pytest.approx(ref, abs=1e-9)
    np.testing.assert_allclose(heisenberg_ground_state(10), psi, atol=1e-7)


def test_ground_state_phase_is_fixed_and_reproducible() -> None:
    a = tfim_ground_state(9, h=0.7)
    b = tfim_ground_state(9, h=0.7)
    np.testing.assert_array_equal(a, b)
    j = int(np.argmax(np.abs(a)))
    assert abs(a[j].imag) < 1e-15 and a[j].real > 0
    # Z2 symmetry makes |0...0> and |1...1> equally large; the lower index is chosen.
    assert a[0].real > 0 and abs(a[0]) == pytest.approx(abs(a[-1]), rel=1e-7)
    rotated = fix_global_phase(np.exp(0.3j) * a)
    np.testing.assert_allclose(rotated, a, atol=1e-14)


def test_degenerate_ground_space_warns() -> None:
    # h = 0: |0...0> and |1...1> are degenerate classical ground states of -sum Z Z.
    with pytest.warns(UserWarning, match="degenerate"):
        energy, _ = ground_state(tfim_hamiltonian(4, h=0.0))
    assert energy == pytest.approx(-3.0)


def test_degeneracy_tolerance_is_a_parameter() -> None:
    # tfim h = 0.05 on 4 qubits: E1 - E0 ~ 1e-5 (tunnelling between |0000> and |1111>).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ground_state(tfim_hamiltonian(4, h=0.05))  # the default 1e-9 does not warn
    with pytest.warns(UserWarning, match="degenerate"):
        ground_state(tfim_hamiltonian(4, h=0.05), degeneracy_tol=1e-3)


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_one_solver_for_both_ground_state_apis(n: int) -> None:
    from shadowlab.acquire.ground_states import exact_ground_state, hamiltonian_paulis, tfim_couplings

    couplings = tfim_couplings(f"chain:{n}", h=0.7)
    gs = exact_ground_state(couplings)
    energy, psi = ground_state(hamiltonian_paulis(couplings))
    assert energy == pytest.approx(gs.energy, abs=1e-10)
    np.testing.assert_allclose(psi, gs.state, atol=1e-7)


@pytest.mark.parametrize("n", [2, 3, 4, 7])
@pytest.mark.parametrize("periodic", [False, True])
def test_heisenberg_hamiltonian_terms(n: int, periodic: bool) -> None:
    # Built from heisenberg_couplings now: the same terms in the same order as the chain definition.
    bonds = [(i, i + 1) for i in range(n - 1)] + ([(0, n - 1)] if periodic and n > 2 else [])
    h = heisenberg_hamiltonian(n, periodic=periodic)
    assert h.n_qubits == n
    assert list(h.terms) == [PauliString((i, j), (c, c)) for i, j in bonds for c in (0, 1, 2)]
    np.testing.assert_array_equal(h.coeffs, np.ones(3 * len(bonds)))
    assert h.coeffs.dtype == np.float64


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ghz:10", lambda: ghz(10)),
        ("GHZ:3", lambda: ghz(3)),
        ("w:8", lambda: w_state(8)),
        ("product:01+-", lambda: product_state("01+-")),
        ("tfim:6:h=0.5", lambda: tfim_ground_state(6, h=0.5)),
        ("tfim:5:J=2:h=0.5:periodic=true", lambda: tfim_ground_state(5, J=2.0, h=0.5, periodic=True)),
        ("heisenberg:6", lambda: heisenberg_ground_state(6)),
        ("heisenberg:6:periodic=1", lambda: heisenberg_ground_state(6, periodic=True)),
    ],
)
def test_builtin_state_specs(spec: str, expected) -> None:
    np.testing.assert_allclose(builtin_state(spec), expected(), atol=1e-12)


def test_builtin_random_state_uses_the_rng() -> None:
    a = builtin_state("random:4", np.random.default_rng(9))
    np.testing.assert_array_equal(a, haar_random_state(4, np.random.default_rng(9)))
    with pytest.raises(ShadowlabError, match="rng"):
        builtin_state("random:4")


def test_builtin_state_errors() -> None:
    with pytest.raises(ShadowlabError, match="unknown built-in state 'nope'") as info:
        builtin_state("nope:3")
    for name in BUILTIN_STATES:
        assert name in str(info.value)
    bad = {
        "ghz": "expected 1 positional",
        "ghz:x": "must be an integer",
        "tfim:4:g=1": "unknown option",
        "tfim:4:h=abc": "must be a number",
        "tfim:4:periodic=maybe": "true/false",
        "heisenberg:1": "2..",
        "product:01z": "unknown letter",
        "tfim:4:h=1:5": "positional value",
    }
    for spec, words in bad.items():
        with pytest.raises(ShadowlabError, match=words):
            builtin_state(spec)


def test_all_builtin_states_are_normalized() -> None:
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for spec in ["ghz:4", "w:4", "product:+r", "random:4", "tfim:4", "heisenberg:4"]:
            psi = builtin_state(spec, rng)
            assert psi.dtype == np.complex128
            assert np.linalg.norm(psi) == pytest.approx(1.0, abs=1e-12)


def test_tfim_hamiltonian_terms() -> None:
    h = tfim_hamiltonian(3, J=2.0, h=0.5, periodic=True)
    assert list(h.labels) == ["Z0 Z1", "Z1 Z2", "Z0 Z2", "X0", "X1", "X2"]
    np.testing.assert_array_equal(h.coeffs, [-2, -2, -2, -0.5, -0.5, -0.5])
    assert len(heisenberg_hamiltonian(2, periodic=True)) == 3  # no duplicated wrap-around bond
    for n, periodic in itertools.product([3, 4], [False, True]):
        assert len(heisenberg_hamiltonian(n, periodic=periodic)) == 3 * (n - 1 + (periodic and n > 2))
