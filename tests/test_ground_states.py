"""Lattice Hamiltonians, exact ground states and exact correlations (shadowlab.acquire.ground_states)."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from shadowlab.acquire.ground_states import (
    MAX_EXACT_QUBITS,
    Lattice,
    couplings_from_parameters,
    exact_ground_state,
    exact_pair_correlations,
    hamiltonian_matrix,
    heisenberg_couplings,
    parameter_names,
    parse_lattice,
    single_site_expectations,
    single_threaded_blas,
    tfim_couplings,
    xxz_couplings,
)
from shadowlab.acquire.statevector import exact_pauli_expectations
from shadowlab.errors import ShadowlabError, StateError
from shadowlab.paulis import PauliString, PauliSum

_I = np.eye(2)
_PAULIS = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def _op(n: int, ops: dict[int, str]) -> np.ndarray:
    """Dense Kronecker product, qubit 0 leftmost (= most significant bit): an independent reference."""
    return reduce(np.kron, [_PAULIS[ops[q]] if q in ops else _I for q in range(n)])


def _dense_reference(model: str, lattice: Lattice, J: np.ndarray, h: np.ndarray | None = None,
                     delta: float = 1.0) -> np.ndarray:
    n = lattice.n_qubits
    H = np.zeros((2**n, 2**n), dtype=complex)
    for (i, j), c in zip(lattice.edges.tolist(), J, strict=True):
        if model == "tfim":
            H -= c * _op(n, {i: "Z", j: "Z"})
        else:
            H += c * (_op(n, {i: "X", j: "X"}) + _op(n, {i: "Y", j: "Y"}) + delta * _op(n, {i: "Z", j: "Z"}))
    if h is not None:
        for i in range(n):
            H -= h[i] * _op(n, {i: "X"})
    return H


# ----------------------------------------------------------------------------- lattices


def test_lattice_edges_and_order() -> None:
    assert parse_lattice("chain:4").edges.tolist() == [[0, 1], [1, 2], [2, 3]]
    assert parse_lattice("ring:4").edges.tolist() == [[0, 1], [1, 2], [2, 3], [0, 3]]
    grid = parse_lattice("grid:3x2")  # 3 rows, 2 columns, row-major
    assert grid.n_qubits == 6
    assert grid.edges.tolist() == [[0, 1], [2, 3], [4, 5], [0, 2], [1, 3], [2, 4], [3, 5]]
    assert parse_lattice(" grid : 2 X 2 ").spec == "grid:2x2"
    assert parse_lattice("grid:1x5").is_open_chain


@pytest.mark.parametrize("spec", ["cube:3", "chain", "chain:4x2", "grid:3", "ring:2", "chain:1", "grid:1x1"])
def test_bad_lattice(spec: str) -> None:
    with pytest.raises(ShadowlabError, match=r"chain|ring|grid"):
        parse_lattice(spec)


def test_unknown_lattice_names_the_allowed_ones() -> None:
    with pytest.raises(ShadowlabError, match=r"allowed: chain:N.*ring:N.*grid:LxW"):
        parse_lattice("torus:4")


# ----------------------------------------------------------------------------- Hamiltonians and energies


@pytest.mark.parametrize("spec", ["chain:6", "ring:6", "grid:2x3"])
def test_hamiltonians_match_dense_kronecker_reference(spec: str) -> None:
    rng = np.random.default_rng(11)
    lat = parse_lattice(spec)
    J = rng.uniform(0, 2, lat.n_edges)
    h = rng.uniform(0, 2, lat.n_qubits)
    cases = [
        (tfim_couplings(lat, h=h, J=J), _dense_reference("tfim", lat, J, h)),
        (heisenberg_couplings(lat, J), _dense_reference("heisenberg", lat, J)),
        (xxz_couplings(lat, Delta=0.4, J=J), _dense_reference("xxz", lat, J, delta=0.4)),
    ]
    for couplings, dense in cases:
        np.testing.assert_allclose(hamiltonian_matrix(couplings).toarray(), dense, atol=1e-12)


def test_bond_alternation() -> None:
    c = xxz_couplings("chain:5", J1=1.0, J2=0.25, Delta=2.0)
    np.testing.assert_allclose(c.cxx, [1.0, 0.25, 1.0, 0.25])
    np.testing.assert_allclose(c.czz, [2.0, 0.5, 2.0, 0.5])
    assert parameter_names("xxz", "chain:5", "uniform") == ("J1", "J2", "Delta")
    assert parameter_names("xxz", "chain:3", "local") == ("J[0-1]", "J[1-2]", "Delta")
    assert parameter_names("tfim", "chain:3", "local") == ("h[0]", "h[1]", "h[2]")


@pytest.mark.parametrize(("model", "spec", "params", "form"), [
    ("tfim", "chain:10", [0.7], "uniform"),
    ("tfim", "grid:3x3", [1.3], "uniform"),
    ("xxz", "ring:10", [1.0, 0.5, 0.8], "uniform"),
    ("heisenberg", "grid:2x5", None, "local"),
])
def test_energy_matches_dense_diagonalization(model: str, spec: str, params: list[float] | None, form: str) -> None:
    lat = parse_lattice(spec)
    if params is None:
        params = np.random.default_rng(5).uniform(0, 2, lat.n_edges)
    c = couplings_from_parameters(model, lat, params, form)
    gs = exact_ground_state(c)
    with single_threaded_blas():  # a 1024 x 1024 eigvalsh is slow with OpenBLAS threads on a loaded machine
        evals = np.linalg.eigvalsh(hamiltonian_matrix(c).toarray())
    assert gs.energy == pytest.approx(evals[0], abs=1e-9)
    assert gs.gap == pytest.approx(evals[1] - evals[0], abs=1e-7)
    assert np.linalg.norm(gs.state) == pytest.approx(1.0)
    # <psi|H|psi> from the exact correlations reproduces E0.
    corr = gs.correlations()
    x = single_site_expectations(gs.state)[0]
    assert c.energy(corr["xx"], corr["yy"], corr["zz"], x) == pytest.approx(gs.energy, abs=1e-8)


@pytest.mark.parametrize(("n", "h"), [(9, 1.0), (12, 0.6), (12, 1.7)])
def test_open_tfim_energy_matches_free_fermions(n: int, h: float) -> None:
    # Jordan-Wigner: the open chain -sum Z_i Z_{i+1} - h sum X_i has E0 = -sum of the singular values of
    # the bidiagonal n x n matrix with h on the diagonal and J = 1 above it.
    m = np.diag(np.full(n, h)) + np.diag(np.ones(n - 1), 1)
    expected = -np.linalg.svd(m, compute_uv=False).sum()
    gs = exact_ground_state(tfim_couplings(f"chain:{n}", h=h))
    assert gs.energy == pytest.approx(expected, abs=1e-9)
    if h == 1.0:  # the critical chain's closed form
        assert gs.energy == pytest.approx(1.0 - 1.0 / np.sin(np.pi / (2 * (2 * n + 1))), abs=1e-9)


# ----------------------------------------------------------------------------- correlations


def _reference_correlations(state: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    terms = [PauliString((i, j), (c, c)) for i, j in pairs for c in range(3)]
    two = exact_pauli_expectations(state, PauliSum(n, tuple(terms), np.ones(len(terms))))
    ones = [PauliString((i,), (c,)) for c in range(3) for i in range(n)]
    one = exact_pauli_expectations(state, PauliSum(n, tuple(ones), np.ones(len(ones))))
    return two.reshape(len(pairs), 3), one.reshape(3, n)


def test_correlations_match_exact_pauli_expectations() -> None:
    rng = np.random.default_rng(2)
    gs = exact_ground_state(xxz_couplings("chain:7", 1.0, 0.3, 0.6))
    psi = rng.standard_normal(2**7) + 1j * rng.standard_normal(2**7)  # a complex state too
    for state in (gs.state, psi / np.linalg.norm(psi)):
        corr = exact_pair_correlations(state, chunk=16)  # several blocks of the ZZ product
        two, one = _reference_correlations(state, 7)
        k = 0
        for i in range(7):
            for j in range(i + 1, 7):
                for c, name in enumerate(("xx", "yy", "zz")):
                    assert corr[name][i, j] == pytest.approx(two[k, c], abs=1e-12)
                    assert corr[name][j, i] == corr[name][i, j]
                k += 1
        for name in ("xx", "yy", "zz"):
            np.testing.assert_allclose(np.diag(corr[name]), 1.0)
        np.testing.assert_allclose(single_site_expectations(state), one, atol=1e-12)


# ----------------------------------------------------------------------------- degeneracy and errors


def test_degenerate_ground_space_is_flagged() -> None:
    # Odd Heisenberg ring: spin-1/2 multiplets, at least doubly degenerate.
    odd = exact_ground_state(heisenberg_couplings("ring:5"))
    assert odd.degenerate and odd.gap < 1e-9
    # Classical Ising (h = 0): |0...0> and |1...1> (sparse path, 10 qubits).
    ising = exact_ground_state(tfim_couplings("chain:10", h=0.0))
    assert ising.degenerate
    even = exact_ground_state(heisenberg_couplings("chain:6"))
    assert not even.degenerate and even.gap > 0.1


def test_correlations_validate_the_state() -> None:
    # The same checks as the state-vector sampler (validate_statevector), not a weaker copy.
    with pytest.raises(StateError, match="not normalized"):
        exact_pair_correlations(np.ones(8))
    with pytest.raises(StateError, match="power of two"):
        single_site_expectations(np.ones(6) / np.sqrt(6))
    with pytest.raises(StateError, match="non-finite"):
        exact_pair_correlations(np.array([1.0, np.nan]))
    with pytest.raises(StateError, match="1-D"):
        exact_pair_correlations(np.eye(2))
    # Real and complex input give the same numbers (the real path is only faster).
    psi = exact_ground_state(tfim_couplings("chain:5", h=0.4)).state
    assert not np.any(psi.imag)
    a, b = exact_pair_correlations(psi), exact_pair_correlations(psi.real)
    for name in ("xx", "yy", "zz"):
        np.testing.assert_array_equal(a[name], b[name])


def test_bad_inputs() -> None:
    with pytest.raises(ShadowlabError, match=r"unknown model 'ising'; allowed: tfim, xxz, heisenberg"):
        couplings_from_parameters("ising", "chain:4", [1.0], "uniform")
    with pytest.raises(ShadowlabError, match=r"takes 1 parameters"):
        couplings_from_parameters("tfim", "chain:4", [1.0, 2.0], "uniform")
    with pytest.raises(ShadowlabError, match=r"unknown parameter form"):
        couplings_from_parameters("tfim", "chain:4", [1.0], "global")
    with pytest.raises(ShadowlabError, match=r"finite"):
        couplings_from_parameters("tfim", "chain:4", [np.nan], "uniform")
    with pytest.raises(ShadowlabError, match=r"alternation"):
        xxz_couplings("grid:2x2")
    with pytest.raises(ShadowlabError, match=r"one number or 3 numbers"):
        heisenberg_couplings("chain:4", [1.0, 2.0])
    n = MAX_EXACT_QUBITS + 1
    with pytest.raises(ShadowlabError, match=rf"{n} qubits is too many for exact diagonalization.*DMRG"):
        exact_ground_state(tfim_couplings(f"chain:{n}"))
