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


def _decimal_kernel(datasets, gamma):
    """The inner kernel matrix in 60-digit decimal arithmetic, from exact pair counts of d = a - b."""
    from decimal import Decimal, localcontext

    n = datasets[0].n_qubits
    vecs = []
    for d in datasets:
        v = np.zeros((d.n_snapshots, n, 3), np.int64)
        sign = 1 - 2 * d.outcomes.astype(np.int64)
        v[np.arange(d.n_snapshots)[:, None], np.arange(n)[None, :], d.bases.astype(np.int64)] = sign
        vecs.append(v.reshape(d.n_snapshots, 3 * n))
    with localcontext() as ctx:
        ctx.prec = 60
        g = Decimal(gamma)
        weight = [(g * (Decimal(1) / 2 + Decimal(9) * dd / (2 * n))).exp() for dd in range(-n, n + 1)]
        k = [[None] * len(datasets) for _ in datasets]
        for i in range(len(datasets)):
            for j in range(len(datasets)):
                counts = np.bincount((vecs[i] @ vecs[j].T).ravel() + n, minlength=2 * n + 1)
                total = sum((int(c) * w for c, w in zip(counts, weight, strict=True)), Decimal(0))
                k[i][j] = total / (vecs[i].shape[0] * vecs[j].shape[0])
    return k


def test_gamma_140_with_2000_snapshots_is_finite_and_exact():
    # Regression: the sum over T^2 = 4e6 pairs of weights up to exp(700) overflowed float64, so
    # the inner kernel was inf and the normalized kernels NaN off the diagonal.
    from decimal import Decimal, localcontext

    # 3 qubits: a pair has d = n (weight exp(700)) with probability 1/27, and 2000^2 pairs overflowed.
    rng = np.random.default_rng(11)
    data = [_random_data(rng, 2000, 3) for _ in range(3)]
    ref = _decimal_kernel(data, 140.0)
    with localcontext() as ctx:
        ctx.prec = 60
        inner = shadow_kernel_matrix(data, gamma=140.0)
        assert np.isfinite(inner).all()
        for i in range(3):
            for j in range(3):
                assert inner[i, j] == pytest.approx(float(ref[i][j]), rel=1e-12)
        norm = shadow_kernel_matrix(data, gamma=140.0, normalize=True)
        assert np.isfinite(norm).all()
        for i in range(3):
            for j in range(3):
                assert norm[i, j] == pytest.approx(float(ref[i][j] / (ref[i][i] * ref[j][j]).sqrt()), rel=1e-12)
        # tau on the scale of the feature distances (~exp(-690)), so the Gaussian is not just 0 or 1.
        tau = float(2 / (ref[0][0] + ref[1][1] - 2 * ref[0][1]))
        gauss = shadow_kernel_matrix(data, gamma=140.0, tau=tau, normalize=True)
        assert np.isfinite(gauss).all()
        for i in range(3):
            for j in range(3):
                want = (-Decimal(tau) / 2 * (ref[i][i] + ref[j][j] - 2 * ref[i][j])).exp()
                assert gauss[i, j] == pytest.approx(float(want), rel=1e-12)
        assert 0.05 < gauss[0, 1] < 0.9
        # At an ordinary tau the phases-study form is finite (all off-diagonal entries underflow to 0).
        assert np.array_equal(shadow_kernel_matrix(data, gamma=140.0, tau=30.0, normalize=True), np.eye(3))
    # The unbiased diagonal need not give a PSD kernel: finite, or a clear error, never NaN/inf.
    try:
        out = shadow_kernel_matrix(data, gamma=140.0, tau=tau, normalize=True, self_pairs=False)
    except ShadowlabError as exc:
        assert "self_pairs" in str(exc)
    else:
        assert np.isfinite(out).all()
    assert np.isfinite(shadow_kernel_matrix(data, gamma=140.0, normalize=True, self_pairs=False)).all()
    assert shadow_kernel(data[0], data[1], gamma=140.0) == pytest.approx(float(ref[0][1]), rel=1e-12)


def test_log_kernel_and_overflow_errors():
    from shadowlab.learn.shadow_kernel import _exp_inner, log_shadow_kernel_matrix

    rng = np.random.default_rng(12)
    data = [_random_data(rng, 50, 8) for _ in range(3)]
    log_k = log_shadow_kernel_matrix(data, gamma=0.9, self_pairs=False)
    inner = shadow_kernel_matrix(data, gamma=0.9, self_pairs=False)
    assert np.allclose(np.exp(log_k), inner, rtol=1e-13)
    assert np.allclose(outer_kernel(log_k, 3.0, normalize=True, log=True), outer_kernel(inner, 3.0, normalize=True),
                       rtol=1e-12)
    assert np.allclose(normalize_kernel(log_k, log=True), normalize_kernel(inner), rtol=1e-13)
    assert np.allclose(outer_kernel(log_k, 3.0, log=True), outer_kernel(inner, 3.0), rtol=1e-13)
    with pytest.raises(ShadowlabError, match=r"gamma <= 104\.9 works"):  # 111 * 709 / 750
        _exp_inner(np.array([[750.0]]), 111.0)
    with pytest.raises(ShadowlabError, match="overflows"):
        outer_kernel(np.array([[700.0]]), 1.0, log=True)
    with pytest.raises(ShadowlabError, match="non-finite"):
        outer_kernel(np.array([[np.inf, 1.0], [1.0, 1.0]]), 1.0, normalize=True)
    with pytest.raises(ShadowlabError, match="self_pairs"):  # k_01 far above the diagonal: not a Gram matrix
        outer_kernel(np.array([[0.0, 500.0], [500.0, 0.0]]), 1.0, normalize=True, log=True)


@pytest.mark.parametrize("scheme", [
    {"kind": "derandomized"},
    {"kind": "custom"},
    {"kind": "biased", "probabilities": [[0.5, 0.25, 0.25]] * 4},
])
def test_non_uniform_schemes_refused(scheme):
    rng = np.random.default_rng(13)
    good = _random_data(rng, 5, 4)
    bad = ShadowData(good.bases, good.outcomes, metadata={"scheme": scheme})
    with pytest.raises(ShadowlabError, match=r"data set 1: the shadow kernel needs uniformly random local Pauli"):
        shadow_kernel_matrix([good, bad])
    with pytest.raises(ShadowlabError, match="uniformly random"):
        shadow_kernel(bad, good)
    fam = ShadowFamily.from_datasets([good, good], np.arange(2.0), metadata={"scheme": scheme})
    with pytest.raises(ShadowlabError, match="uniformly random"):
        shadow_kernel_matrix(fam)
    uniform = ShadowData(good.bases, good.outcomes,
                         metadata={"scheme": {"kind": "uniform", "probabilities": [[1 / 3] * 3] * 4}})
    assert np.array_equal(shadow_kernel_matrix([good, uniform]), shadow_kernel_matrix([good, good]))
