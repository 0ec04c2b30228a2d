"""The shadow kernel (bit-packed, compiled) against the definition evaluated naively with numpy."""

import numpy as np
import pytest

from shadowlab import kernels
from shadowlab.data.dataset import ShadowData
from shadowlab.data.family import ShadowFamily
from shadowlab.errors import QubitCountMismatchError, ShadowlabError
from shadowlab.learn.shadow_kernel import (
    normalize_kernel,
    outer_kernel,
    shadow_kernel,
    shadow_kernel_matrix,
)


def _random_data(rng, n_snap, n_q):
    return ShadowData(rng.integers(0, 3, (n_snap, n_q)), rng.integers(0, 2, (n_snap, n_q)))


def _naive(a, b, gamma, *, skip_self=False):
    """Mean of exp(gamma/n sum_i tr(sigma_i sigma'_i)) with the traces of the explicit 2x2 snapshots."""
    eig = {  # eigenvectors per (basis, outcome bit); outcome 0 = eigenvalue +1
        (0, 0): np.array([1, 1]) / np.sqrt(2), (0, 1): np.array([1, -1]) / np.sqrt(2),
        (1, 0): np.array([1, 1j]) / np.sqrt(2), (1, 1): np.array([1, -1j]) / np.sqrt(2),
        (2, 0): np.array([1, 0]), (2, 1): np.array([0, 1]),
    }
    snap = {k: 3 * np.outer(v, v.conj()) - np.eye(2) for k, v in eig.items()}
    table = np.array([[np.trace(snap[(b1, o1)] @ snap[(b2, o2)]).real for b2 in range(3) for o2 in range(2)]
                      for b1 in range(3) for o1 in range(2)])
    ia = 2 * a.bases.astype(int) + a.outcomes
    ib = 2 * b.bases.astype(int) + b.outcomes
    traces = table[ia[:, None, :], ib[None, :, :]].sum(axis=2)  # (T, T')
    values = np.exp(gamma / a.n_qubits * traces)
    if skip_self:
        mask = ~np.eye(len(values), dtype=bool)
        return values[mask].mean()
    return values.mean()


def test_trace_table_is_5_minus4_half():
    a = ShadowData(np.array([[0, 1, 2, 0]]), np.array([[0, 1, 0, 1]]))
    b = ShadowData(np.array([[0, 1, 0, 1]]), np.array([[0, 0, 1, 1]]))
    # qubit 0: same basis, same outcome (5); 1: same basis, different (-4); 2, 3: different bases (1/2)
    assert shadow_kernel(a, b, gamma=0.8) == pytest.approx(np.exp(0.8 / 4 * (5 - 4 + 0.5 + 0.5)), rel=1e-14)
    assert _naive(a, b, 0.8) == pytest.approx(np.exp(0.8 / 4 * 2.0), rel=1e-14)


@pytest.mark.parametrize("n_q", [1, 2, 5, 63, 64, 65, 130, 200])
@pytest.mark.parametrize("gamma", [0.3, 1.0, 3.0])
def test_kernel_matches_naive(n_q, gamma):
    rng = np.random.default_rng(n_q * 100 + int(10 * gamma))
    a, b = _random_data(rng, 37, n_q), _random_data(rng, 70, n_q)
    assert shadow_kernel(a, b, gamma=gamma) == pytest.approx(_naive(a, b, gamma), rel=1e-12)


def test_matrix_symmetric_and_entrywise_exact():
    rng = np.random.default_rng(3)
    data = [_random_data(rng, t, 70) for t in (5, 64, 65, 130)]
    gamma = 1.3
    k = shadow_kernel_matrix(data, gamma=gamma)
    assert k.shape == (4, 4)
    assert np.array_equal(k, k.T)
    for i in range(4):
        for j in range(4):
            assert k[i, j] == pytest.approx(_naive(data[i], data[j], gamma), rel=1e-12)
    u = shadow_kernel_matrix(data, gamma=gamma, self_pairs=False)
    for i in range(4):
        assert u[i, i] == pytest.approx(_naive(data[i], data[i], gamma, skip_self=True), rel=1e-12)
    off = ~np.eye(4, dtype=bool)
    assert np.array_equal(u[off], k[off])


def test_outer_map_normalization_and_snapshot_limit():
    rng = np.random.default_rng(4)
    data = [_random_data(rng, 40, 9) for _ in range(3)]
    inner = shadow_kernel_matrix(data, gamma=0.7)
    assert np.allclose(shadow_kernel_matrix(data, gamma=0.7, tau=2.0), np.exp(2.0 * inner), rtol=1e-14)
    gauss = shadow_kernel_matrix(data, gamma=0.7, tau=2.0, normalize=True)
    e = np.exp(2.0 * inner)
    assert np.allclose(gauss, e / np.sqrt(np.outer(np.diag(e), np.diag(e))), rtol=1e-12)
    assert np.allclose(shadow_kernel_matrix(data, gamma=0.7, normalize=True), normalize_kernel(inner), rtol=1e-14)
    assert np.allclose(outer_kernel(inner, 2.0), e)
    head = shadow_kernel_matrix(data, n_snapshots=10)
    assert np.allclose(head, shadow_kernel_matrix([d.subset(0, 10) for d in data]), rtol=1e-14)


def test_family_input_and_progress():
    rng = np.random.default_rng(5)
    data = [_random_data(rng, 30, 12) for _ in range(3)]
    fam = ShadowFamily.from_datasets(data, np.arange(3.0))
    assert np.array_equal(shadow_kernel_matrix(fam), shadow_kernel_matrix(data))
    seen = []
    shadow_kernel_matrix(data, progress=seen.append)
    assert seen and seen[-1] == 6 * 30 * 30  # pairs i <= j


def test_pack_rows_layout():
    rng = np.random.default_rng(6)
    d = _random_data(rng, 3, 70)
    rows = kernels.pack_rows(d.bases, d.outcomes)
    assert rows.shape == (3, 4, 2)
    for s in range(3):
        for q in range(70):
            w, bit = divmod(q, 64)
            for b in range(3):
                assert bool((int(rows[s, b, w]) >> bit) & 1) == (d.bases[s, q] == b)
            assert bool((int(rows[s, 3, w]) >> bit) & 1) == bool(d.outcomes[s, q])
    assert not np.any(rows[:, :, 1] >> np.uint64(6))  # padding past qubit 69


def test_bad_inputs():
    rng = np.random.default_rng(7)
    good = _random_data(rng, 5, 4)
    with pytest.raises(QubitCountMismatchError, match=r"data set 2 has 3 qubits, data set 0 has 4"):
        shadow_kernel_matrix([good, good, _random_data(rng, 5, 3)])
    with pytest.raises(QubitCountMismatchError):
        shadow_kernel(good, _random_data(rng, 5, 6))
    with pytest.raises(ShadowlabError, match="at least one data set"):
        shadow_kernel_matrix([])
    empty = ShadowData(np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.uint8))
    with pytest.raises(ShadowlabError, match="data set 1 has no snapshots"):
        shadow_kernel_matrix([good, empty])
    for gamma in (0.0, -1.0, float("nan"), float("inf"), 1e3, "x"):
        with pytest.raises(ShadowlabError, match="gamma"):
            shadow_kernel(good, good, gamma=gamma)  # type: ignore[arg-type]
    for tau in (0.0, -2.0, float("nan")):
        with pytest.raises(ShadowlabError, match="tau"):
            shadow_kernel_matrix([good], tau=tau)
    with pytest.raises(ShadowlabError, match="overflows"):
        shadow_kernel_matrix([good], gamma=100.0, tau=1.0)
    assert np.isfinite(shadow_kernel_matrix([good, good], gamma=100.0, tau=1.0, normalize=True)).all()
    with pytest.raises(ShadowlabError, match="fewer than n_snapshots"):
        shadow_kernel_matrix([good], n_snapshots=6)
    with pytest.raises(ShadowlabError, match="at least 2"):
        shadow_kernel_matrix([good.subset(0, 1)], self_pairs=False)
    with pytest.raises(ShadowlabError, match="single ShadowData"):
        shadow_kernel_matrix(good)  # type: ignore[arg-type]
    with pytest.raises(ShadowlabError, match="not a ShadowData"):
        shadow_kernel_matrix([good, np.zeros((2, 4))])  # type: ignore[list-item]
