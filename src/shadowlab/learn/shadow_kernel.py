"""The shadow kernel of Huang, Kueng, Torlai, Albert and Preskill (Science 377, eabk3333 (2022)).

Definitions
-----------
A data set ``S`` holds ``T`` local-Pauli snapshots of an ``n``-qubit state; snapshot ``t`` gives
single-qubit snapshots ``sigma_i^(t) = 3 |s_i><s_i| - I`` (``|s_i>`` the measured eigenstate of
qubit ``i``). For two snapshots,

    tr(sigma_i sigma'_i) = 5 (same basis, same outcome), -4 (same basis, different outcome),
                           1/2 (different bases).

The **inner shadow kernel** implemented here is the mean over snapshot pairs

    k_gamma(S, S') = 1 / (T T') sum_{t, t'} exp( (gamma / n) sum_i tr(sigma_i^(t) sigma_i'^(t')) ),

and the paper's **shadow kernel** is the outer map ``exp(tau * k_gamma(S, S'))`` (their
``exp((tau / T^2) sum_{t,t'} exp((gamma / n) sum_i tr(...)))``, with ``T = T'``).
:func:`shadow_kernel_matrix` returns the inner kernel when ``tau`` is None and the outer one
otherwise; ``normalize=True`` divides by the diagonal, ``K_ij / sqrt(K_ii K_jj)``, which for the
outer kernel equals ``exp(-tau/2 (k_ii + k_jj - 2 k_ij))``: a Gaussian kernel on the distance
between the inner kernel's feature vectors (computed in that form, so it never overflows).

The diagonal ``k(S, S)`` of a data set with itself: by default (``self_pairs=True``) it is the
mean over all ``T^2`` ordered pairs, literally the definition above, so the ``T`` pairs of a
snapshot with itself (each worth ``exp(5 gamma)``) are included; ``self_pairs=False`` averages
over the ``T (T - 1)`` pairs of distinct snapshots instead, the unbiased estimate of the kernel
between the state and itself (what the paper's own code computes). Off the diagonal both agree.

Computation
-----------
With ``a`` qubits of the first kind and ``b`` of the second, the exponent is
``gamma (1/2 + 9 (a - b) / (2 n))``: it depends on ``d = a - b`` only. Snapshots are bit-packed
per snapshot over qubits (:func:`shadowlab.kernels.pack_rows`), a pair costs a few AND/OR/XOR and
two popcounts per 64 qubits, and the compiled kernel
(:func:`shadowlab.kernels.shadow_pair_histograms`) counts the pairs of each ``d`` exactly;
the exponential weights are applied to those ``2 n + 1`` counts afterwards. Measured on 2 cores:
the Gram matrix of 20 data sets x 500 snapshots of 200 qubits (52.5 million snapshot pairs) in
0.4 to 0.7 s; 50 x 1,000 snapshots of 200 qubits (1.3 billion pairs) in 16 s.

Numerical range: the exponent lies in ``[-4 gamma, 5 gamma]``, so the kernel itself (a mean
of the weights) is at most ``exp(5 gamma)``, finite for ``gamma <= 140`` (``exp(709)`` is the
largest float64); larger ``gamma`` is refused. The *sums* of weights are not: with ``T = 2000``
snapshots and ``gamma = 140`` the ``T^2`` terms of ``exp(700)`` overflow. The weights are
therefore applied in a shifted scale: each task's pair counts are weighted relative to its
largest ``d`` (``exp(gamma 9 (d - d_max) / (2 n)) <= 1``), each entry of the matrix carries its
own shift ``d_ref`` (an integer, rescaled exactly as tasks arrive), and the result is the
log-kernel ``log k = gamma (1/2 + 9 d_ref / (2 n)) + log(mean of shifted weights)``
(:func:`log_shadow_kernel_matrix`). The normalized forms are computed from it entirely in that
domain (``exp(log k_ij - (log k_ii + log k_jj) / 2)``; the outer one as
``exp(-tau/2 e^R (m_ii + m_jj - 2 m_ij))`` with ``m = exp(log k - R)``, ``R = max log k``), so
they never overflow and never give NaN. The plain kernels are ``exp`` of it; should that not be
finite, a :class:`~shadowlab.errors.ShadowlabError` names a ``gamma`` that works, and the
unnormalized outer map is refused when ``tau * k > 709``. No function here returns inf or NaN.

Data: the traces above are those of the uniformly-random local-Pauli inverse ``3 |s><s| - I``;
data sets whose recorded scheme is biased or deterministic (derandomized, custom) are refused
(:func:`shadowlab.estimate.entropy.require_uniform_scheme`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shadowlab import kernels
from shadowlab.data.dataset import ShadowData
from shadowlab.data.family import ShadowFamily
from shadowlab.errors import QubitCountMismatchError, ShadowlabError
from shadowlab.estimate.entropy import require_uniform_scheme

__all__ = [
    "MAX_GAMMA",
    "log_shadow_kernel_matrix",
    "normalize_kernel",
    "outer_kernel",
    "shadow_kernel",
    "shadow_kernel_matrix",
]

# exp(5 * gamma) must stay below the float64 limit exp(709.78).
MAX_GAMMA = 140.0
# log of the largest finite float64, a little below log(1.797e308) = 709.78.
_LOG_MAX = 709.0
# Rows of a task: 64 snapshots of one data set against every snapshot of another, so a task is
# long enough to amortize the loop set-up and there are enough tasks to balance the threads.
_TASK_ROWS = 64
# Histogram entries (int64) allocated per batch of tasks: bounds memory for any input size.
_BATCH_ENTRIES = 1 << 22


def shadow_kernel(a: ShadowData, b: ShadowData, *, gamma: float = 1.0) -> float:
    """The inner shadow kernel ``k_gamma(a, b)``: the mean over all ``T_a T_b`` snapshot pairs.

    See the module docs for the definition. Every ordered pair counts, also when ``a`` and ``b``
    are the same data set (use :func:`shadow_kernel_matrix` with ``self_pairs=False`` to leave
    out the pairs of a snapshot with itself).

    Raises
    ------
    QubitCountMismatchError
        If the data sets have different qubit counts.
    ShadowlabError
        On a data set without snapshots or not measured in uniformly random local Pauli bases, or
        a ``gamma`` that is not finite, not positive or above :data:`MAX_GAMMA`.

    Examples
    --------
    >>> import numpy as np
    >>> x = ShadowData(np.array([[2, 2]]), np.array([[0, 0]]))   # Z+ Z+
    >>> y = ShadowData(np.array([[2, 0]]), np.array([[1, 0]]))   # Z- X+
    >>> bool(np.isclose(shadow_kernel(x, y, gamma=1.0), np.exp((-4 + 0.5) / 2)))
    True
    """
    gamma = _check_gamma(gamma)
    bases, outcomes = _collect([a, b], None)
    # Only the pair (0, 1): the two diagonal blocks are not needed.
    log_k = _log_inner_kernel(bases, outcomes, gamma, True, None, cross_only=True)
    return float(_exp_inner(log_k[0:1, 1:2], gamma)[0, 0])


def shadow_kernel_matrix(
    datasets: Sequence[ShadowData] | ShadowFamily,
    *,
    gamma: float = 1.0,
    tau: float | None = None,
    n_snapshots: int | None = None,
    self_pairs: bool = True,
    normalize: bool = False,
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Symmetric Gram matrix of the shadow kernel between every pair of data sets.

    Parameters
    ----------
    datasets:
        ``D`` data sets of one qubit count (a list of :class:`ShadowData`, or a
        :class:`ShadowFamily`, one data set per instance).
    gamma:
        Inner scale ``gamma`` in ``(0, MAX_GAMMA]`` (the paper's default is 1).
    tau:
        None: return the inner kernel ``k_gamma``. A positive number: return the paper's outer
        kernel ``exp(tau * k_gamma)``.
    n_snapshots:
        Use only the first ``n_snapshots`` snapshots of each data set (default: all of them).
    self_pairs:
        Whether the diagonal includes the pairs of a snapshot with itself (see the module docs);
        ``False`` needs at least two snapshots per data set.
    normalize:
        Return ``K_ij / sqrt(K_ii K_jj)`` (unit diagonal).
    progress:
        Optional ``callable(n_pairs_done)``, called with the number of snapshot pairs evaluated
        so far (out of ``sum_{i <= j} T_i T_j``) after each batch of the compiled kernel.

    Returns
    -------
    numpy.ndarray
        ``(D, D)`` float64, symmetric.

    Raises
    ------
    QubitCountMismatchError
        If the data sets do not all have the same qubit count (the message names the first
        offending data set, its count and data set 0's).
    ShadowlabError
        On an empty list, a data set without snapshots (or with fewer than ``n_snapshots``), a
        data set whose recorded measurement scheme is not uniformly random local Pauli (biased,
        derandomized, custom), a bad ``gamma``/``tau``, or an unnormalized kernel that would
        overflow float64 (the normalized forms never do).
    """
    if tau is not None:
        tau = _check_positive(tau, "tau")
    log_k = log_shadow_kernel_matrix(datasets, gamma=gamma, n_snapshots=n_snapshots, self_pairs=self_pairs,
                                     progress=progress)
    if tau is None:
        return normalize_kernel(log_k, log=True) if normalize else _exp_inner(log_k, _check_gamma(gamma))
    return outer_kernel(log_k, tau, normalize=normalize, log=True)


def log_shadow_kernel_matrix(
    datasets: Sequence[ShadowData] | ShadowFamily,
    *,
    gamma: float = 1.0,
    n_snapshots: int | None = None,
    self_pairs: bool = True,
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """``log k_gamma`` between every pair of data sets: the inner kernel in the log domain.

    Same arguments and errors as :func:`shadow_kernel_matrix` (without ``tau``/``normalize``).
    Always finite: the weights are applied in a shifted scale (see the module docs), so this
    holds for every allowed ``gamma`` and any number of snapshots. Feed it to
    :func:`outer_kernel` or :func:`normalize_kernel` with ``log=True``.
    """
    gamma = _check_gamma(gamma)
    bases, outcomes = _collect(datasets, n_snapshots)
    sizes = np.array([b.shape[0] for b in bases], dtype=np.int64)
    if not self_pairs and sizes.min() < 2:
        i = int(np.argmin(sizes))
        raise ShadowlabError(f"data set {i} has {sizes[i]} snapshot; self_pairs=False needs at least 2 per data set")
    return _log_inner_kernel(bases, outcomes, gamma, self_pairs, progress)


def outer_kernel(inner: np.ndarray, tau: float, *, normalize: bool = False, log: bool = False) -> np.ndarray:
    """The paper's outer map ``exp(tau * k)`` of an inner kernel matrix.

    With ``normalize=True`` returns ``exp(tau k_ij) / sqrt(exp(tau k_ii) exp(tau k_jj))``
    ``= exp(-tau/2 (k_ii + k_jj - 2 k_ij))``, computed in the second form (no overflow).
    ``log=True``: ``inner`` holds ``log k`` (as from :func:`log_shadow_kernel_matrix`); the
    normalized form is then evaluated as ``exp(-tau/2 e^R (m_ii + m_jj - 2 m_ij))`` with
    ``m = exp(log k - R)``, ``R = max log k``, so a kernel beyond float64 is no problem.

    Raises
    ------
    ShadowlabError
        If ``tau`` is not a finite positive number, ``inner`` is not finite, (without
        ``normalize``) if ``tau * max k > 709`` so that the result would overflow float64, or
        (with ``normalize``) if ``k_ii + k_jj - 2 k_ij`` is so negative (possible with the
        unbiased diagonal, ``self_pairs=False``) that the result would overflow.
    """
    tau = _check_positive(tau, "tau")
    inner = _finite_matrix(inner, "the log inner kernel" if log else "the inner kernel")
    if normalize:
        if log:
            top = float(inner.max()) if inner.size else 0.0
            m = np.exp(inner - top)
            diag = np.diag(m)
            dist = diag[:, None] + diag[None, :] - 2.0 * m
            with np.errstate(divide="ignore", over="ignore"):
                # -tau/2 e^top dist, as a sign times an exponential (no inf * 0).
                x = -np.sign(dist) * np.exp(math.log(0.5 * tau) + top + np.log(np.abs(dist)))
                out = np.exp(x)
        else:
            diag = np.diag(inner)
            with np.errstate(over="ignore", invalid="ignore"):
                out = np.exp(-0.5 * tau * (diag[:, None] + diag[None, :] - 2.0 * inner))
        np.fill_diagonal(out, 1.0)
        if not np.all(np.isfinite(out)):
            i, j = np.argwhere(~np.isfinite(out))[0]
            raise ShadowlabError(f"the normalized outer kernel overflows float64 at ({i}, {j}): k_ii + k_jj - 2 k_ij "
                                 "is negative there (the unbiased diagonal of self_pairs=False need not give a "
                                 "positive semi-definite kernel); lower tau or use self_pairs=True")
        return out
    log_top = (float(inner.max()) if log else math.log(max(float(inner.max()), np.finfo(float).tiny))) \
        if inner.size else -math.inf
    if math.log(tau) + log_top > math.log(_LOG_MAX):
        top = tau * math.exp(min(log_top, _LOG_MAX)) if log else tau * float(inner.max())
        raise ShadowlabError(f"the outer kernel exp(tau k) overflows float64: tau * max k = {top:.4g} > 709; lower "
                             "tau or gamma, or pass normalize=True")
    return np.exp(tau * (np.exp(inner) if log else inner))


def normalize_kernel(k: np.ndarray, *, log: bool = False) -> np.ndarray:
    """``K_ij / sqrt(K_ii K_jj)`` (unit diagonal) of a Gram matrix with a positive diagonal.

    ``log=True``: ``k`` holds ``log K`` (e.g. from :func:`log_shadow_kernel_matrix`) and the
    result is ``exp(log K_ij - (log K_ii + log K_jj) / 2)``, finite for any finite input.
    """
    k = _finite_matrix(k, "the log Gram matrix" if log else "the Gram matrix")
    if log:
        diag = np.diag(k)
        with np.errstate(over="ignore"):
            out = np.exp(k - 0.5 * (diag[:, None] + diag[None, :]))
    else:
        diag = np.diag(k)
        if diag.size and diag.min() <= 0.0:
            raise ShadowlabError("cannot normalize a Gram matrix whose diagonal is not positive")
        root = np.sqrt(diag)
        with np.errstate(over="ignore"):
            out = k / root[:, None] / root[None, :]
    np.fill_diagonal(out, 1.0)
    if not np.all(np.isfinite(out)):
        raise ShadowlabError("the normalized Gram matrix overflows float64: an entry exceeds its diagonal by far "
                             "more than a Gram matrix can (is the input a Gram matrix?)")
    return out


def _finite_matrix(k: np.ndarray, what: str) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ShadowlabError(f"{what} must be a square matrix, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ShadowlabError(f"{what} has non-finite entries")
    return k


def _exp_inner(log_k: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(log k)``, refusing (with a ``gamma`` that works) a kernel beyond float64."""
    top = float(np.nanmax(log_k)) if log_k.size else -math.inf
    if top > _LOG_MAX:
        # log k(gamma) / gamma is non-decreasing in gamma (log-mean-exp is convex and 0 at 0),
        # so at gamma' = gamma * 709 / log k the largest entry is at most exp(709).
        raise ShadowlabError(f"the inner shadow kernel exceeds float64 (largest entry exp({top:.1f})) at gamma = "
                             f"{gamma:g}; gamma <= {gamma * _LOG_MAX / top:.4g} works, or use normalize=True or "
                             "log_shadow_kernel_matrix")
    return np.exp(log_k)


def _check_gamma(gamma: float) -> float:
    gamma = _check_positive(gamma, "gamma")
    if gamma > MAX_GAMMA:
        raise ShadowlabError(f"gamma = {gamma:g} is too large: exp(5 gamma) overflows float64 for gamma > "
                             f"{MAX_GAMMA:g}")
    return gamma


def _check_positive(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ShadowlabError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0.0:
        raise ShadowlabError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _collect(datasets: Any, n_snapshots: int | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per data set ``(T_i, n)`` uint8 bases and outcomes (the first ``n_snapshots``), validated."""
    if n_snapshots is not None and int(n_snapshots) < 1:
        raise ShadowlabError(f"n_snapshots must be >= 1, got {n_snapshots}")
    if isinstance(datasets, ShadowFamily):
        pairs = [(datasets.bases[k], datasets.outcomes[k]) for k in range(datasets.n_instances)]
    else:
        if isinstance(datasets, ShadowData):
            raise ShadowlabError("expected a list of data sets (or a ShadowFamily), got a single ShadowData")
        pairs = []
        for k, d in enumerate(datasets):
            if not isinstance(d, ShadowData):
                raise ShadowlabError(f"data set {k} is a {type(d).__name__}, not a ShadowData")
            pairs.append((d.bases, d.outcomes))
    if not pairs:
        raise ShadowlabError("the shadow kernel needs at least one data set, got none")
    n = pairs[0][0].shape[1]
    for k, (b, _) in enumerate(pairs):
        if b.shape[1] != n:
            raise QubitCountMismatchError(f"data set {k} has {b.shape[1]} qubits, data set 0 has {n}; the shadow "
                                          "kernel compares states of one size")
    if isinstance(datasets, ShadowFamily):
        # One metadata record for the whole family: check it once (on instance 0's view).
        require_uniform_scheme(datasets.instance(0), "the shadow kernel")
    else:
        for k, d in enumerate(datasets):
            try:
                require_uniform_scheme(d, "the shadow kernel")
            except ShadowlabError as exc:
                raise ShadowlabError(f"data set {k}: {exc}") from None
    bases, outcomes = [], []
    for k, (b, o) in enumerate(pairs):
        if b.shape[0] == 0:
            raise ShadowlabError(f"data set {k} has no snapshots")
        if n_snapshots is not None:
            if b.shape[0] < n_snapshots:
                raise ShadowlabError(f"data set {k} has {b.shape[0]} snapshots, fewer than n_snapshots = {n_snapshots}")
            b, o = b[:n_snapshots], o[:n_snapshots]
        bases.append(b)
        outcomes.append(o)
    return bases, outcomes


def _tasks(sizes: np.ndarray, cross_only: bool) -> tuple[np.ndarray, ...]:
    """Tasks of the upper triangle ``i <= j`` (``i < j`` if ``cross_only``): (row_lo, row_hi, col_lo,
    col_hi, i, j) arrays."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows: list[tuple[int, int, int, int, int, int]] = []
    for i in range(len(sizes)):
        for j in range(i + cross_only, len(sizes)):
            for lo in range(starts[i], starts[i + 1], _TASK_ROWS):
                rows.append((lo, min(lo + _TASK_ROWS, starts[i + 1]), starts[j], starts[j + 1], i, j))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 6)
    return tuple(np.ascontiguousarray(arr[:, c]) for c in range(6))


def _log_inner_kernel(bases: list[np.ndarray], outcomes: list[np.ndarray], gamma: float, self_pairs: bool,
                      progress: Callable[[int], object] | None, *, cross_only: bool = False) -> np.ndarray:
    """The ``(D, D)`` log inner kernel (with ``cross_only``, the diagonal is left NaN, not computed).

    The weight of ``d = a - b`` is ``exp(gamma / 2 + c d)`` with ``c = 9 gamma / (2 n)``. Entry
    ``(i, j)`` accumulates ``sum_pairs exp(c (d - ref_ij))`` for an integer shift ``ref_ij``,
    the largest ``d`` seen so far, so every term is at most 1 and the largest is exactly 1: no
    overflow, and no underflow of the leading terms, whatever ``gamma`` and the pair count.
    """
    n = bases[0].shape[1]
    n_sets = len(bases)
    sizes = np.array([b.shape[0] for b in bases], dtype=np.int64)
    rows = kernels.pack_rows(np.concatenate(bases), np.concatenate(outcomes))
    c = 4.5 * gamma / n
    d_grid = np.arange(-n, n + 1, dtype=np.int64)
    row_lo, row_hi, col_lo, col_hi, ti, tj = _tasks(sizes, cross_only)
    n_tasks = row_lo.shape[0]
    ref = np.full((n_sets, n_sets), -n - 1, dtype=np.int64)  # below every d: "nothing yet"
    mant = np.zeros((n_sets, n_sets))
    batch = max(1, min(_BATCH_ENTRIES // (2 * n + 1), -(-n_tasks // 8) if progress is not None else n_tasks))
    hist = np.empty((min(batch, n_tasks), 2 * n + 1), dtype=np.int64)
    done = 0
    for start in range(0, n_tasks, batch):
        stop = min(start + batch, n_tasks)
        h = hist[: stop - start]
        kernels.shadow_pair_histograms(rows, row_lo[start:stop], row_hi[start:stop], col_lo[start:stop],
                                       col_hi[start:stop], n, h)
        bi, bj = ti[start:stop], tj[start:stop]
        diag = bi == bj
        if not self_pairs:
            # A snapshot paired with itself has d = n; a diagonal task holds one per row.
            h[diag, 2 * n] -= (row_hi[start:stop] - row_lo[start:stop])[diag]
        nonzero = h > 0
        has = nonzero.any(axis=1)
        # Largest d with a pair, per task.
        d_max = n - np.argmax(nonzero[:, ::-1], axis=1)
        # Exact integer counts times shifted weights <= 1 (exponents clipped at 0 where the
        # counts are 0 anyway): a sum of 2 n + 1 terms per task, each task's largest term 1.
        shifted = np.exp(np.minimum(c * (d_grid[None, :] - d_max[:, None]), 0.0))
        values = np.einsum("td,td->t", h, shifted)
        bi, bj, d_max, values = bi[has], bj[has], d_max[has], values[has]
        new_ref = ref.copy()
        np.maximum.at(new_ref, (bi, bj), d_max)
        mant *= np.exp(c * (ref - new_ref))  # exact rescaling to the new shift (entries already 0 stay 0)
        ref = new_ref
        np.add.at(mant, (bi, bj), values * np.exp(c * (d_max - ref[bi, bj])))
        if progress is not None:
            done += int(((row_hi[start:stop] - row_lo[start:stop]) * (col_hi[start:stop] - col_lo[start:stop])).sum())
            progress(done)
    pairs = sizes[:, None].astype(np.float64) * sizes[None, :]
    if not self_pairs:
        np.fill_diagonal(pairs, sizes * (sizes - 1.0))
    upper = np.triu_indices(n_sets, 1 if cross_only else 0)
    out = np.full((n_sets, n_sets), np.nan)
    out[upper] = 0.5 * gamma + c * ref[upper] + np.log(mant[upper] / pairs[upper])
    out.T[upper] = out[upper]
    return out
