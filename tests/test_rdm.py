"""Reduced density matrices: unbiased against exact states, projection to the nearest state,
plug-in entropies and their bias formula, bad inputs refused before allocating."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from shadowlab.acquire.states import ghz, haar_random_state
from shadowlab.acquire.statevector import sample_statevector
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.entropy import estimate_renyi2
from shadowlab.estimate.rdm import (
    estimate_rdm,
    project_simplex,
    project_to_density_matrix,
    rdm_from_counts,
    renyi_entropy,
    von_neumann_entropy,
)

X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)


def _reduced(psi, sub, n):
    rho = np.outer(psi, psi.conj()).reshape((2,) * (2 * n))
    rest = [q for q in range(n) if q not in sub]
    k = len(sub)
    t = np.transpose(rho, list(sub) + rest + [n + q for q in sub] + [n + q for q in rest])
    t = t.reshape(2**k, 2 ** (n - k), 2**k, 2 ** (n - k))
    return np.einsum("ajbj->ab", t)


def _sample(psi, n, n_snap, seed):
    rng = np.random.default_rng(seed)
    return sample_statevector(psi, uniform_settings(n, n_snap, rng), 1, rng)


def test_matches_snapshot_average_by_brute_force():
    rng = np.random.default_rng(0)
    b = rng.integers(0, 3, (30, 4)).astype(np.uint8)
    o = rng.integers(0, 2, (30, 4)).astype(np.uint8)
    sub = (2, 0, 3)
    paulis = [X, Y, Z]
    total = np.zeros((8, 8), dtype=complex)
    for s in range(30):
        m = np.eye(1)
        for q in sub:
            m = np.kron(m, (np.eye(2) + 3 * (1 - 2 * int(o[s, q])) * paulis[b[s, q]]) / 2)
        total += m
    r = estimate_rdm(ShadowData(b, o), sub)
    np.testing.assert_allclose(r.matrix, total / 30, atol=1e-12)
    assert r.qubits == sub


def test_unbiased_against_exact_reduced_state():
    n = 6
    psi = haar_random_state(n, np.random.default_rng(7))
    sub = (1, 4, 5)
    exact = _reduced(psi, sub, n)
    data = _sample(psi, n, 20_000, 8)
    r = estimate_rdm(data, sub)
    np.testing.assert_allclose(np.trace(r.matrix), 1.0, atol=1e-12)
    np.testing.assert_allclose(r.matrix, r.matrix.conj().T, atol=1e-12)
    zr = (r.matrix.real - exact.real) / r.stderr_real
    off = ~np.eye(8, dtype=bool)
    zi = (r.matrix.imag - exact.imag)[off] / r.stderr_imag[off]
    assert np.abs(zr).max() < 5 and np.abs(zi).max() < 5
    # Frobenius error shrinks like 1/sqrt(N): 16x the snapshots, about 1/4 of the error.
    small = estimate_rdm(data.subset(0, 1250), sub)
    ratio = np.linalg.norm(small.matrix - exact) / np.linalg.norm(r.matrix - exact)
    assert 2.0 < ratio < 8.0, ratio


def test_projection_is_the_nearest_density_matrix():
    rng = np.random.default_rng(2)
    for dim in (2, 4):
        a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
        h = (a + a.conj().T) / 2
        h += (1 - np.trace(h).real) / dim * np.eye(dim)
        p, lam = project_to_density_matrix(h)
        assert np.trace(p).real == pytest.approx(1.0, abs=1e-12)
        assert np.linalg.eigvalsh(p).min() > -1e-12
        np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(p)), np.sort(lam), atol=1e-12)
        # Projection onto a convex set: <h - p, s - p> <= 0 for every state s, so no state is closer.
        best = np.linalg.norm(h - p)
        for _ in range(2000):
            v = rng.normal(size=(dim, rng.integers(1, dim + 1))) + 1j * rng.normal(size=(dim, 1))
            s = v @ v.conj().T
            s /= np.trace(s).real
            assert np.vdot(h - p, s - p).real <= 1e-10
            assert np.linalg.norm(h - s) >= best - 1e-12
    # One qubit: brute-force search over a grid of the Bloch ball.
    h = np.array([[1.3, 0.4 - 0.2j], [0.4 + 0.2j, -0.3]])
    p, _ = project_to_density_matrix(h)
    g = np.linspace(-1, 1, 81)
    xx, yy, zz = np.meshgrid(g, g, g, indexing="ij")
    inside = xx**2 + yy**2 + zz**2 <= 1
    dist = [np.linalg.norm(h - (np.eye(2) + x * X + y * Y + z * Z) / 2)
            for x, y, z in zip(xx[inside], yy[inside], zz[inside], strict=True)]
    assert np.linalg.norm(h - p) <= min(dist) + 1e-12
    assert np.linalg.norm(h - p) > min(dist) - 0.02


def test_project_simplex():
    np.testing.assert_allclose(project_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(project_simplex(np.array([1.2, -0.1, -0.1])), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(project_simplex(np.array([0.7, 0.6, -0.3])), [0.55, 0.45, 0.0])


def test_entropies_of_known_spectra():
    assert von_neumann_entropy(np.array([0.5, 0.5, 0.0])) == pytest.approx(1.0)
    assert renyi_entropy(np.array([0.25] * 4), 2.0) == pytest.approx(2.0)
    assert renyi_entropy(np.array([0.5, 0.5]), 2.0, base=np.e) == pytest.approx(np.log(2))
    assert renyi_entropy(np.array([0.9, 0.1]), 1.0) == pytest.approx(von_neumann_entropy(np.array([0.9, 0.1])))


def test_ghz_pair_and_plug_in_bias_formula():
    psi = ghz(5)
    data = _sample(psi, 5, 8000, 3)
    r = estimate_rdm(data, (0, 3))
    rho = r.state()
    assert np.linalg.eigvalsh(rho).min() > -1e-12
    assert r.von_neumann() == pytest.approx(1.0, abs=0.15)
    assert r.renyi(2.0) == pytest.approx(1.0, abs=0.15)
    # The raw plug-in purity is the U-statistic plus the self-pair bias (5^k - U) / N, exactly.
    u = float(estimate_renyi2(data, [(0, 3)]).purity[0])
    big_n = data.n_snapshots
    assert r.purity(project=False) == pytest.approx(u + (25.0 - u) / big_n, abs=1e-10)
    d = r.to_dict()
    assert d["projected"] and len(d["eigenvalues"]) == 4 and d["entropy_unit"] == "bits"


def test_bad_inputs_refused_before_allocating():
    data = _sample(ghz(10), 10, 100, 1)
    for qs, msg in [((0, 0), "repeated"), ((10,), "out of range"), ((), "empty")]:
        with pytest.raises(ShadowlabError, match=msg):
            estimate_rdm(data, qs)
    tracemalloc.start()
    try:
        with pytest.raises(ShadowlabError, match="max_size=8"):
            estimate_rdm(data, tuple(range(9)))
        with pytest.raises(ShadowlabError, match="GiB"):
            estimate_rdm(data, tuple(range(10)), max_qubits=10, memory_limit=2**30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    with pytest.raises(ShadowlabError, match="2 snapshots"):
        rdm_from_counts(np.eye(1, 6, dtype=np.int64)[0], (0,))
