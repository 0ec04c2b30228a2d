"""Linear estimators of Pauli expectation values and of weighted Pauli sums.

Estimators (for a Pauli ``P`` of weight ``w``, over ``N`` snapshots; a snapshot *matches* ``P``
when every qubit of ``P``'s support was measured in ``P``'s letter, and then its *sign* is the
product of the outcome eigenvalues on the support):

``mean``
    The standard classical-shadow estimator (Huang, Kueng, Preskill 2020): each snapshot
    contributes ``3^w * sign`` if it matches, 0 otherwise; the estimate is the average over all
    ``N`` snapshots. Unbiased under uniformly random local Pauli measurements. Standard error:
    the sample standard deviation of those contributions over ``sqrt(N)``.
``matched``
    The average sign over matching snapshots only (``n_matched`` of them). Unbiased for any
    measurement scheme that matches ``P`` with non-zero probability, so it is the right choice
    for biased or derandomized schemes. Standard error ``sqrt((1 - est^2) / (n_matched - 1))``.
``mom``
    Median of means: the snapshots are split in ``K`` contiguous blocks whose sizes differ by at
    most one, the ``mean`` estimate is formed per block, and the median is taken (the mean of
    the two middle values for even ``K``). Standard error: ``sqrt(pi / 2)`` times that of
    ``mean`` (the asymptotic efficiency of a median of normal block means).

Intervals (``level`` = confidence, e.g. 0.95; ``z`` its two-sided normal quantile):

``normal``
    ``estimate +- z * stderr`` for ``mean`` and ``mom``. For ``matched``, the Wilson score
    interval for the fraction ``(1 + est) / 2`` of matching snapshots with sign +1, mapped back,
    which keeps its coverage when the expectation is close to +-1.
``hkp``
    (``mom`` only.) The rigorous median-of-means guarantee of Huang, Kueng and Preskill, Nature
    Physics 16, 1050 (2020), Theorem 1: with ``K >= 2 ln(2 M / (1 - level))`` blocks of at least
    ``B`` snapshots, all ``M`` estimates of one call are simultaneously within
    ``sqrt(34 ||O||^2_shadow / B)`` of their expectation values with probability at least
    ``level``. Here ``||P||^2_shadow = 3^w`` for a Pauli, and for a sum the triangle inequality
    ``||sum c_j P_j||_shadow <= sum |c_j| 3^(w_j / 2)`` over non-identity terms.

Measurement schemes: the estimators read the scheme a data set records (``scheme`` in its
metadata, written by ``shadowlab plan``/``acquire``). Under a *biased* scheme (qubit ``q``
measured in basis ``b`` with probability ``beta[q, b]``, Hadfield et al. 2020) ``mean`` and
``mom`` weight a matching snapshot by ``prod_{q in S} 1 / beta[q, P_q]`` instead of ``3^w``
(importance weighting, still unbiased), and the HKP shadow norm is that product too. Under a
*derandomized* or other deterministic scheme only ``matched`` is unbiased, and ``mean``/``mom``
are refused. ``estimator='auto'`` (the default) picks ``matched`` for deterministic schemes and
``mean`` otherwise. Data with no recorded scheme are taken to be uniform.

Repeated settings (settings x repeats): snapshots that share a setting share their bases, so
their contributions are correlated and the formulas above would understate the error. When a
data set has fewer settings than snapshots, every standard error is instead the *batch-means*
(cluster-robust) one: the snapshots are cut into ``J`` (about 64) contiguous batches, and the
variance of the estimate is ``J / (J - 1) * sum_j (T_j - N_j * est)^2 / N^2`` for ``mean``
(``T_j`` the batch's total contribution, ``N_j`` its size), and the same with matches in place
of snapshots for ``matched``. Batch boundaries fall on setting boundaries, so a setting never
straddles two batches, and with fewer than 64 settings each batch is one setting. This needs the
snapshots of one setting to be contiguous, as shadowlab's simulators and stores keep them (other
orders are refused). The ``normal`` interval is then ``est +- t se`` for every estimator, with
``t`` the Student quantile for ``J - 1`` degrees of freedom (``J`` the non-empty batches): with
few settings the batch variance has few degrees of freedom. The interval still assumes roughly
normal batch means, which few, heavy-tailed settings (tens) do not give: coverage is then below
nominal (measured: 86% at 95% with 16 settings of 4 qubits, 200 runs); more settings are the remedy.
``hkp`` is refused (its guarantee needs independent settings).

Robust shadows: with a ``calibration`` (:mod:`shadowlab.estimate.calibration`) every estimate of
a Pauli with support ``A`` is divided by the calibrated attenuation ``g_A`` of the noisy
measurement, and its standard error includes the calibration's own (delta method); intervals are
then ``est +- q se`` (``q`` the normal or Student quantile as above), and ``hkp`` is refused (its
guarantee does not cover a calibrated factor).

Every call streams the data chunk by chunk: memory is bounded by the chunk size plus
``M x J`` counters, never by ``snapshots x observables``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shadowlab import kernels
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.results import ESTIMATORS, INTERVALS, Estimates
from shadowlab.execution import LOCAL, Execution, InOrder, map_chunks
from shadowlab.paulis import PauliArrays, PauliString, PauliSum

if TYPE_CHECKING:
    from shadowlab.estimate.calibration import Calibration

DEFAULT_CHUNK_SNAPSHOTS = 65536
#: Bytes a chunk holds per snapshot and qubit: the bases, outcomes and twirl rows as read (3), the
#: storage layer's decoded copies of them (2) and the four packed bit planes (0.5).
ROW_BYTES_PER_QUBIT = 5.5
#: Observables per task on a Dask cluster: large observable sets are split across workers as well as
#: the snapshots (in this process all observables are counted in one pass over each chunk).
OBSERVABLE_BATCH = 65536
HKP_CONSTANT = 34.0
#: Batches for cluster-robust standard errors when settings repeat.
BATCHES = 64
#: Memory allowed for per-observable, per-batch counters before fewer batches are used.
COUNTER_BUDGET_BYTES = 1 << 30

Progress = Callable[[int], None]


class SnapshotSource(Protocol):
    """What the estimators read: an in-memory :class:`ShadowData` or a :class:`ShadowStore`."""

    @property
    def n_qubits(self) -> int: ...

    @property
    def n_snapshots(self) -> int: ...

    @property
    def n_settings(self) -> int: ...

    def iter_chunks(self, chunk_snapshots: int) -> object: ...


@dataclass(frozen=True)
class _Options:
    """How to estimate: the estimator, its ``K`` blocks and the ``m`` batches per block.

    Counts are kept per *batch*; the ``J = K m`` batches refine the ``K`` median-of-means
    blocks exactly (``(k N) // K == (k m N) // (K m)``), so one pass serves both.
    """

    estimator: str
    n_blocks: int
    sub_blocks: int
    clustered: bool
    level: float
    interval: str
    #: ``(J + 1,)`` batch boundaries; with repeated settings they fall on setting boundaries, so a
    #: setting's snapshots never straddle two batches (batches may then differ in size, or be empty).
    bounds: np.ndarray

    @property
    def n_batches(self) -> int:
        return self.n_blocks * self.sub_blocks


def hkp_blocks(n_observables: int, level: float) -> int:
    """Blocks that the HKP median-of-means bound needs for ``n_observables`` at ``level``:
    ``ceil(2 ln(2 M / (1 - level)))``."""
    return max(1, math.ceil(2.0 * math.log(2.0 * max(n_observables, 1) / (1.0 - level))))


def _options(
    source: SnapshotSource, estimator: str, n_blocks: int | None, level: float, interval: str, n_observables: int,
    *, bytes_per_batch: int,
) -> _Options:
    n_snapshots = source.n_snapshots
    if estimator not in ESTIMATORS:  # 'auto' is resolved by the caller
        raise ShadowlabError(f"unknown estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}")
    if interval not in INTERVALS:
        raise ShadowlabError(f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}")
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"confidence level must lie strictly between 0 and 1, got {level}")
    if n_snapshots == 0:
        raise ShadowlabError("the shadow data set is empty (0 snapshots); nothing can be estimated")
    if interval == "hkp" and estimator != "mom":
        raise ShadowlabError("the hkp interval is the median-of-means guarantee; use it with estimator 'mom'")
    clustered = source.n_settings < n_snapshots
    if interval == "hkp" and clustered:
        raise ShadowlabError(
            f"the hkp bound assumes a fresh random setting per snapshot, but this data set has {source.n_settings} "
            f"settings for {n_snapshots} snapshots; use the normal interval (cluster-robust for repeated settings)"
        )
    if estimator != "mom":
        if n_blocks not in (None, 1):
            raise ShadowlabError(f"n_blocks applies to the 'mom' estimator only (got n_blocks={n_blocks} "
                                 f"with estimator {estimator!r})")
        k = 1
    else:
        k = hkp_blocks(n_observables, level) if n_blocks is None else int(n_blocks)
        if k < 1:
            raise ShadowlabError(f"n_blocks must be >= 1, got {n_blocks}")
        if k > n_snapshots:
            raise ShadowlabError(
                f"median of means with K={k} blocks needs at least {k} snapshots, but the data set has "
                f"{n_snapshots}; use fewer blocks (n_blocks / --blocks)"
            )
        if interval == "hkp" and k < hkp_blocks(n_observables, level):
            need = hkp_blocks(n_observables, level)
            raise ShadowlabError(
                f"the hkp interval at level {level} for {n_observables} observable(s) needs K >= "
                f"2 ln(2M/(1-level)) = {need} blocks, got K={k}; raise n_blocks or lower the level"
            )
    m = 1
    if clustered:
        m = max(1, -(-BATCHES // k))
        m = min(m, n_snapshots // k, max(1, COUNTER_BUDGET_BYTES // max(bytes_per_batch * k, 1)))
        if k * m < 2:
            raise ShadowlabError(
                "cluster-robust standard errors for repeated settings need at least 2 batches, and the "
                "observables' counters leave room for 1; estimate fewer observables per call"
            )
    bounds = setting_aligned_bounds(source, k * m) if clustered else block_bounds(n_snapshots, k * m)
    if clustered and np.count_nonzero(np.diff(bounds)) < 2:
        raise ShadowlabError("cluster-robust standard errors need snapshots from at least 2 settings")
    if clustered and k > 1 and np.any(np.diff(bounds).reshape(k, m).sum(axis=1) == 0):
        raise ShadowlabError(f"median of means with K={k} blocks needs at least {k} settings when settings repeat, "
                             f"but the data set has {source.n_settings}; use fewer blocks")
    return _Options(estimator, k, m, clustered, level, interval, bounds)


def setting_starts(source: SnapshotSource, chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS) -> np.ndarray:
    """First snapshot of every run of equal setting indices, plus ``n_snapshots`` at the end.

    Raises if a setting's snapshots are not contiguous (a setting index that reappears after
    another), because cluster-robust errors and same-setting pair exclusion rely on it.
    """
    n = source.n_snapshots
    reader = getattr(source, "read_settings", None)
    starts: list[np.ndarray] = []
    run_ids: list[np.ndarray] = []
    previous = None
    for lo in range(0, n, chunk_snapshots):
        hi = min(n, lo + chunk_snapshots)
        ids = np.asarray(reader(lo, hi) if reader is not None else source.settings[lo:hi], dtype=np.int64)
        change = np.flatnonzero(np.diff(ids) != 0) + 1
        local = np.concatenate([[0], change]) if previous is None or ids[0] != previous else change
        starts.append(local + lo)
        run_ids.append(ids[local])
        previous = ids[-1]
    ids_all = np.concatenate(run_ids)
    if np.unique(ids_all).size != ids_all.size:
        raise ShadowlabError("a setting's snapshots are not contiguous (a setting index reappears after another); "
                             "repeated-setting error bars need each setting measured in one run")
    return np.concatenate([*starts, [n]]).astype(np.int64)


def setting_aligned_bounds(source: SnapshotSource, n_batches: int) -> np.ndarray:
    """``n_batches`` contiguous batches of about equal size whose boundaries fall on setting starts."""
    starts = setting_starts(source)
    targets = block_bounds(source.n_snapshots, n_batches)
    snapped = starts[np.searchsorted(starts, targets, side="left")]
    snapped[0], snapped[-1] = 0, source.n_snapshots
    return np.maximum.accumulate(snapped)


def block_bounds(n_snapshots: int, n_blocks: int) -> np.ndarray:
    """``(K + 1,)`` int64 boundaries of ``K`` contiguous blocks whose sizes differ by at most 1."""
    return (np.arange(n_blocks + 1, dtype=np.int64) * n_snapshots) // n_blocks


def _local_blocks(bounds: np.ndarray, offset: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.clip(bounds[:-1] - offset, 0, size)
    hi = np.clip(bounds[1:] - offset, 0, size)
    return lo.astype(np.int64), hi.astype(np.int64)


def _as_pauli_list(observables: PauliSum | Sequence[PauliString], n_qubits: int) -> tuple[list[PauliString],
                                                                                          list[str]]:
    if isinstance(observables, PauliSum):
        observables.check_n_qubits(n_qubits)
        return list(observables.terms), list(observables.labels)
    paulis = list(observables)
    for p in paulis:
        p.check_qubits(n_qubits)
    return paulis, [p.to_sparse() for p in paulis]


def chunk_rows(source: SnapshotSource, execution: Execution | None, chunk_snapshots: int | None, *,
               extra_row_bytes: float = 0.0, fixed_bytes: float = 0.0, what: str) -> int:
    """Snapshots per chunk for a pass over ``source`` within the execution's memory bound.

    A chunk holds ``ROW_BYTES_PER_QUBIT * n_qubits + 8`` bytes per snapshot (rows, decoded copies,
    packed planes, the setting index) plus ``extra_row_bytes`` per snapshot and ``fixed_bytes``
    (counters). An explicit ``chunk_snapshots`` (argument or ``execution.chunk_snapshots``) that
    does not fit is an error; the default is the store's own chunk (the unit it is read in) or
    ``DEFAULT_CHUNK_SNAPSHOTS``, shrunk to fit.
    """
    ex = (execution or LOCAL).with_chunk(chunk_snapshots)
    default = int(getattr(source, "chunk_snapshots", 0) or DEFAULT_CHUNK_SNAPSHOTS)
    return ex.rows_per_chunk(ROW_BYTES_PER_QUBIT * source.n_qubits + 8.0 + extra_row_bytes, fixed_bytes,
                             default=default, what=what)


def _counts_chunk(chunk: object, offset: int, bounds: np.ndarray, qubits: np.ndarray, codes: np.ndarray,
                  weights: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Match and odd counts of one chunk for the blocks it meets: ``(first block, match, odd)``,
    the arrays ``(M, blocks met)``."""
    planes = kernels.pack(chunk.bases, chunk.outcomes)  # type: ignore[attr-defined]
    lo, hi = _local_blocks(bounds, offset, chunk.n_snapshots)  # type: ignore[attr-defined]
    met = np.flatnonzero(hi > lo)
    first, last = int(met[0]), int(met[-1]) + 1
    match = np.zeros((len(weights), last - first), dtype=np.int64)
    odd = np.zeros_like(match)
    kernels.pauli_block_counts(planes, lo[first:last], hi[first:last], qubits, codes, weights, match, odd)
    return first, match, odd


def pauli_counts(
    source: SnapshotSource,
    arrays: PauliArrays,
    n_blocks: int = 1,
    *,
    bounds: np.ndarray | None = None,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    execution: Execution | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stream ``source`` and count, per Pauli and block, matching snapshots and odd-parity ones.

    ``bounds`` (``(K + 1,)``) overrides the ``n_blocks`` equal blocks. The counts are integers
    summed over chunks (and, on a cluster, over observable batches of ``OBSERVABLE_BATCH``), so
    they are the same however the work is split. Each chunk task holds the chunk and ``(M, K)``
    counters at most; ``execution`` sets the memory bound and where it runs.

    Returns
    -------
    match, odd:
        ``(M, K)`` int64 arrays.
    """
    if bounds is None:
        bounds = block_bounds(source.n_snapshots, n_blocks)
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    n_blocks = len(bounds) - 1
    ex = execution or LOCAL
    m = len(arrays)
    batch = max(1, min(m, OBSERVABLE_BATCH) if ex.distributed else m)
    # Task counters, plus this process's totals when the tasks also run here.
    counters = 16 * n_blocks * (batch + (0 if ex.distributed else m))
    step = chunk_rows(source, ex, chunk_snapshots, fixed_bytes=counters, what=f"counting {m} Pauli observable(s)")
    match = np.zeros((m, n_blocks), dtype=np.int64)
    odd = np.zeros_like(match)
    starts = range(0, m, batch)
    batches = [(bounds, arrays.qubits[a:a + batch], arrays.codes[a:a + batch], arrays.weights[a:a + batch])
               for a in starts]

    def combine(_chunk: int, b: int, result: tuple[int, np.ndarray, np.ndarray]) -> None:
        first, mm, oo = result
        rows = slice(starts[b], starts[b] + mm.shape[0])
        match[rows, first:first + mm.shape[1]] += mm
        odd[rows, first:first + oo.shape[1]] += oo

    map_chunks(source, _counts_chunk, chunk_snapshots=step, combine=combine, batches=batches, execution=ex,
               progress=progress)
    return match, odd


#: Scheme kinds whose settings are not drawn at random: only ``matched`` is unbiased for them.
DETERMINISTIC_SCHEMES = ("derandomized", "custom")


def scheme_record(source: object) -> dict | None:
    """The measurement scheme a data set or store records (``None``: not recorded, uniform assumed)."""
    record = getattr(source, "scheme_record", None)
    return record if isinstance(record, dict) else None


def resolve_scheme(source: object, n_qubits: int, estimator: str,
                   probabilities: np.ndarray | None = None) -> tuple[str, np.ndarray | None]:
    """The estimator to use and the basis probabilities to weight by (``None`` = uniform, exactly 3^w).

    ``estimator='auto'`` becomes ``matched`` for deterministic schemes and ``mean`` otherwise;
    ``mean``/``mom`` on a deterministic scheme are refused (they would be biased).
    """
    from shadowlab.plan.scheme import UNIFORM_PROBABILITIES, check_probabilities

    record = scheme_record(source) or {}
    kind = record.get("kind")
    deterministic = kind in DETERMINISTIC_SCHEMES
    if estimator == "auto":
        estimator = "matched" if deterministic else "mean"
    if estimator not in ESTIMATORS:
        raise ShadowlabError(f"unknown estimator {estimator!r}; expected auto or one of {', '.join(ESTIMATORS)}")
    if deterministic and estimator in ("mean", "mom"):
        raise ShadowlabError(
            f"this data set was measured with a {kind} scheme (settings not drawn at random), so the "
            f"{estimator!r} estimator would be biased; use estimator 'matched' (or 'auto', which picks it)"
        )
    if probabilities is None:
        probabilities = record.get("probabilities")
    if probabilities is None:
        return estimator, None
    p = check_probabilities(probabilities, n_qubits)
    if np.all(p == UNIFORM_PROBABILITIES):
        return estimator, None
    return estimator, p


def match_scale(qubits: np.ndarray, codes: np.ndarray, weights: np.ndarray,
                probabilities: np.ndarray | None) -> np.ndarray:
    """Inverse probability that a random setting matches each Pauli: ``3^w`` (uniform) or
    ``prod_{q in S} 1 / beta[q, P_q]`` (``inf`` where the scheme never measures a needed basis)."""
    if probabilities is None:
        return np.power(3.0, weights)
    with np.errstate(divide="ignore"):
        inverse = 1.0 / probabilities
    used = np.arange(qubits.shape[1])[None, :] < weights[:, None]
    return np.prod(np.where(used, inverse[qubits, codes], 1.0), axis=1)


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _quantile(level: float, clustered: bool, batches: int) -> float:
    """Two-sided interval quantile: normal, or Student t with ``batches - 1`` degrees of freedom
    for batch-means (cluster-robust) errors, whose variance estimate has that few."""
    if not clustered:
        return _z(level)
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, max(batches - 1, 1)))


def _batch_variance(totals: np.ndarray, weights_per_batch: np.ndarray, estimate: np.ndarray, norm: np.ndarray,
                    j: int | None = None) -> np.ndarray:
    """Batch-means variance ``J/(J-1) sum_j (T_j - W_j est)^2 / norm^2`` along the last axis.

    ``j`` is the number of non-empty batches (empty ones contribute nothing); default: all.
    """
    j = totals.shape[-1] if j is None else j
    resid = totals - weights_per_batch * estimate[..., None]
    return j / (j - 1.0) * np.sum(resid * resid, axis=-1) / (norm * norm)


def _apply_calibration(est: np.ndarray, se: np.ndarray, g: np.ndarray, se_g: np.ndarray, q: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Robust estimates ``est / g`` with the delta-method error ``sqrt((se/g)^2 + (r se_g/g)^2)``."""
    robust = est / g
    err = np.sqrt((se / g) ** 2 + (robust * se_g / g) ** 2)
    return robust, err, robust - q * err, robust + q * err


def _calibration_factors(source: SnapshotSource, calibration: Calibration | None, paulis: Sequence[PauliString],
                         labels: Sequence[str], interval: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(g, se_g)`` for ``paulis`` from ``calibration`` after checking it fits the data (None without one)."""
    if calibration is None:
        return None
    if interval == "hkp":
        raise ShadowlabError("the hkp interval is a guarantee for the raw estimator and does not cover a calibrated "
                             "factor's uncertainty; use the normal interval with a calibration")
    calibration.check_data(source)
    return calibration.pauli_factors(paulis, labels)


def _stats_from_counts(
    match: np.ndarray, odd: np.ndarray, weights: np.ndarray, scale: np.ndarray, n_snapshots: int, opts: _Options,
    attenuation: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Estimates, standard errors and interval ends from per-batch counts (see module docs).

    ``scale`` is the weight of a matching snapshot in ``mean``/``mom``: ``3^w`` for uniform
    measurements, the inverse probability of matching under a biased scheme. ``attenuation``
    ``(g, se_g)``: calibrated factors to divide by (robust shadows).
    """
    signed = (match - 2 * odd).astype(np.float64)  # per batch: sum of signs over matches
    c = match.sum(axis=1).astype(np.float64)
    s = signed.sum(axis=1)
    n = float(n_snapshots)
    sizes = np.diff(opts.bounds).astype(np.float64)
    j_eff = int(np.count_nonzero(sizes))
    z = _quantile(opts.level, opts.clustered, j_eff)
    mean = scale * s / n
    if opts.clustered:
        se_mean = np.sqrt(_batch_variance(scale[:, None] * signed, sizes[None, :], mean, np.full_like(mean, n),
                                          j_eff))
    else:
        # Sample variance of the per-snapshot contributions scale * sign (or 0): E[x^2] = scale^2 c / N.
        var = np.maximum(scale * scale * c / n - mean * mean, 0.0) * (n / (n - 1.0) if n > 1 else 1.0)
        se_mean = np.sqrt(var / n) if n > 1 else scale
    if opts.estimator == "mean":
        est, se = mean, se_mean
        lo, hi = est - z * se, est + z * se
    elif opts.estimator == "matched":
        safe_c = np.maximum(c, 1.0)
        est = s / safe_c
        if opts.clustered:
            se = np.sqrt(_batch_variance(signed, match.astype(np.float64), est, safe_c, j_eff))
            lo, hi = est - z * se, est + z * se
        else:
            se = np.where(c > 1, np.sqrt(np.maximum(1.0 - est * est, 0.0) / np.maximum(c - 1.0, 1.0)), 1.0)
            p_hat = (1.0 + est) / 2.0
            denom = 1.0 + z * z / safe_c
            centre = (p_hat + z * z / (2.0 * safe_c)) / denom
            half = z * np.sqrt(p_hat * (1.0 - p_hat) / safe_c + z * z / (4.0 * safe_c * safe_c)) / denom
            lo, hi = 2.0 * (centre - half) - 1.0, 2.0 * (centre + half) - 1.0
    else:
        k, m = opts.n_blocks, opts.sub_blocks
        block_signed = signed.reshape(len(weights), k, m).sum(axis=2)
        block_sizes = sizes.reshape(k, m).sum(axis=1)
        est = np.median(scale[:, None] * block_signed / block_sizes[None, :], axis=1)
        se = math.sqrt(math.pi / 2.0) * se_mean
        if opts.interval == "hkp":
            half = np.where(weights == 0, 0.0, np.sqrt(HKP_CONSTANT * scale / block_sizes.min()))
        else:
            half = z * se
        lo, hi = est - half, est + half
    if attenuation is not None:
        est, se, lo, hi = _apply_calibration(est, se, attenuation[0], attenuation[1], z)
    identity = weights == 0
    # The identity is known exactly: <I> = 1 whatever the data.
    est = np.where(identity, 1.0, est)
    se = np.where(identity, 0.0, se)
    lo = np.where(identity, 1.0, lo)
    hi = np.where(identity, 1.0, hi)
    return est, se, lo, hi


def estimate_paulis(
    source: SnapshotSource,
    observables: PauliSum | Sequence[PauliString] | PauliArrays,
    *,
    estimator: str = "auto",
    n_blocks: int | None = None,
    level: float = 0.95,
    interval: str = "normal",
    on_unmatched: str = "raise",
    probabilities: np.ndarray | None = None,
    calibration: Calibration | None = None,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    execution: Execution | None = None,
) -> Estimates:
    """Estimate ``<P>`` for every Pauli string in ``observables`` (coefficients are ignored).

    Parameters
    ----------
    source:
        A :class:`ShadowData` or :class:`ShadowStore` of local-Pauli snapshots.
    observables:
        A :class:`PauliSum` (its terms are estimated one by one), a sequence of Pauli strings, or
        :class:`~shadowlab.paulis.PauliArrays` (e.g. ``PauliArrays.up_to_weight(n, 3)``, for
        millions of observables without a Python object each).
    estimator:
        ``'auto'`` (default: ``'matched'`` for deterministic schemes, else ``'mean'``), ``'mean'``,
        ``'matched'`` or ``'mom'`` (see the module documentation).
    n_blocks:
        Median-of-means blocks ``K`` (``'mom'`` only); default ``ceil(2 ln(2M / (1 - level)))``.
    level:
        Confidence level of the intervals, in (0, 1).
    interval:
        ``'normal'`` (default) or ``'hkp'`` (the rigorous median-of-means bound).
    on_unmatched:
        ``'raise'`` (default): an observable that no snapshot matches is an
        :class:`EstimationError`; ``'omit'``: such observables are dropped and listed in
        ``Estimates.omitted``.
    probabilities:
        ``(n_qubits, 3)`` basis probabilities of a biased scheme; default: those the data set
        records (uniform if none).
    calibration:
        A robust-shadow :class:`~shadowlab.estimate.calibration.Calibration` of the noisy
        measurement: estimates are divided by each support's calibrated attenuation, and the
        errors include the calibration's (see the module documentation). It must cover every
        observable's support, and match the data's qubit count and ensemble.
    chunk_snapshots:
        Snapshots read and packed at a time (default: the store's chunk, or what the memory bound
        allows); bounds memory.
    progress:
        Called with the number of snapshots of each processed chunk.
    execution:
        Where to run and the memory bound of one chunk task
        (:class:`~shadowlab.execution.Execution`: in this process by default, or on a Dask
        cluster); the result is the same wherever it runs.

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab import ShadowData, PauliSum
    >>> d = ShadowData(np.array([[2, 2], [0, 2]]), np.array([[0, 0], [1, 0]]))
    >>> r = estimate_paulis(d, PauliSum.from_labels(["ZZ", "Z1"]))
    >>> r.estimate.tolist(), r.n_matched.tolist()
    ([4.5, 3.0], [1, 2])
    """
    if isinstance(observables, PauliArrays):  # large generated sets: no per-string objects
        arrays = observables
        arrays.check_qubits(source.n_qubits)
        labels = arrays.labels()
    else:
        paulis, labels = _as_pauli_list(observables, source.n_qubits)
        arrays = PauliArrays.from_paulis(paulis)
    if not len(arrays):
        raise ShadowlabError("no observables given")
    estimator, probs = resolve_scheme(source, source.n_qubits, estimator, probabilities)
    opts = _options(source, estimator, n_blocks, level, interval, len(arrays), bytes_per_batch=16 * len(arrays))
    attenuation = (None if calibration is None else
                   _calibration_factors(source, calibration, arrays.to_paulis(), labels, interval))
    scale = match_scale(arrays.qubits, arrays.codes, arrays.weights, probs)
    match, odd = pauli_counts(source, arrays, bounds=opts.bounds, chunk_snapshots=chunk_snapshots,
                              progress=progress, execution=execution)
    return _finish(match, odd, arrays.weights, scale, labels, source.n_snapshots, opts, on_unmatched, attenuation)


def _finish(
    match: np.ndarray, odd: np.ndarray, weights: np.ndarray, scale: np.ndarray, labels: Sequence[str],
    n_snapshots: int, opts: _Options, on_unmatched: str, attenuation: tuple[np.ndarray, np.ndarray] | None = None,
) -> Estimates:
    if on_unmatched not in ("raise", "omit"):
        raise ShadowlabError(f"on_unmatched must be 'raise' or 'omit', got {on_unmatched!r}")
    total = match.sum(axis=1)
    unmatched = np.flatnonzero((total == 0) & (weights > 0))
    omitted: tuple[str, ...] = ()
    if unmatched.size:
        names = [labels[i] for i in unmatched[:5]]
        more = f" and {unmatched.size - 5} more" if unmatched.size > 5 else ""
        if on_unmatched == "raise":
            raise EstimationError(
                f"no snapshot matches {unmatched.size} observable(s): {', '.join(names)}{more}; "
                f"with {n_snapshots} snapshots a weight-w Pauli is matched about {n_snapshots}/3^w times "
                "under uniform measurements. Take more snapshots, or omit them (on_unmatched='omit', "
                "--skip-unmatched)"
            )
        keep = np.flatnonzero((total > 0) | (weights == 0))
        omitted = tuple(labels[i] for i in unmatched)
        match, odd, weights, scale = match[keep], odd[keep], weights[keep], scale[keep]
        labels = [labels[i] for i in keep]
        if attenuation is not None:
            attenuation = (attenuation[0][keep], attenuation[1][keep])
    est, se, lo, hi = _stats_from_counts(match, odd, weights, scale, n_snapshots, opts, attenuation)
    return Estimates(
        labels=tuple(labels), estimate=est, stderr=se, ci_low=lo, ci_high=hi, n_matched=match.sum(axis=1),
        n_snapshots=n_snapshots, estimator=opts.estimator, interval=opts.interval, level=opts.level,
        n_blocks=opts.n_blocks, omitted=omitted, calibrated=attenuation is not None,
    )


def estimate_two_point(
    source: SnapshotSource,
    *,
    estimator: str = "auto",
    n_blocks: int | None = None,
    level: float = 0.95,
    interval: str = "normal",
    on_unmatched: str = "raise",
    probabilities: np.ndarray | None = None,
    calibration: Calibration | None = None,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    execution: Execution | None = None,
) -> Estimates:
    """All two-point correlators ``<P_a(i) P_b(j)>`` for qubits ``i < j`` and letters ``a, b``.

    A fast path over all ``9 n (n - 1) / 2`` correlators at once; same estimators, intervals and
    ``calibration`` as :func:`estimate_paulis`. Rows are ordered by ``i``, then ``j``, then ``a``, then ``b``
    (letters X, Y, Z), labelled like ``'X0 Z5'``.
    """
    n_q = source.n_qubits
    if n_q < 2:
        raise ShadowlabError("two-point correlators need at least 2 qubits")
    n_pairs = n_q * (n_q - 1) // 2
    estimator, probs = resolve_scheme(source, n_q, estimator, probabilities)
    attenuation = None
    if calibration is not None:
        ii, jj = np.triu_indices(n_q, k=1)
        pairs = [PauliString((int(a), int(b)), (2, 2)) for a, b in zip(ii, jj, strict=True)]
        g, se_g = _calibration_factors(source, calibration, pairs, [p.to_sparse() for p in pairs], interval)
        attenuation = (np.repeat(g, 9), np.repeat(se_g, 9))
    per_batch = 2 * n_q * n_q * 9 * 8
    opts = _options(source, estimator, n_blocks, level, interval, 9 * n_pairs, bytes_per_batch=per_batch)
    j = opts.n_batches
    if j * per_batch > COUNTER_BUDGET_BYTES:
        raise ShadowlabError(f"{j} blocks x {n_q}^2 x 9 counters would need {j * per_batch / 2**30:.1f} GiB; "
                             "use fewer blocks or an explicit observable list")
    match = np.zeros((j, n_q, n_q, 3, 3), dtype=np.int64)
    odd = np.zeros_like(match)

    def combine(_chunk: int, _batch: int, result: tuple[int, np.ndarray, np.ndarray]) -> None:
        first, mm, oo = result
        match[first:first + len(mm)] += mm
        odd[first:first + len(oo)] += oo

    step = chunk_rows(source, execution, chunk_snapshots, fixed_bytes=2 * j * per_batch,
                      what="all two-point correlators")
    map_chunks(source, _two_point_chunk, chunk_snapshots=step, combine=combine, batches=[(opts.bounds,)],
               execution=execution, progress=progress)
    ii, jj = np.triu_indices(n_q, k=1)
    # (J, pairs, 3, 3) -> (pairs * 9, J) in row order i, j, a, b.
    m = match[:, ii, jj].reshape(j, -1).T
    o = odd[:, ii, jj].reshape(j, -1).T
    letters = "XYZ"
    labels = [f"{letters[a]}{i} {letters[b]}{jq}" for i, jq in zip(ii, jj, strict=True)
              for a in range(3) for b in range(3)]
    weights = np.full(len(labels), 2, dtype=np.int64)
    pair_qubits = np.repeat(np.stack([ii, jj], axis=1), 9, axis=0).astype(np.int64)
    pair_codes = np.tile(np.array([[a, b] for a in range(3) for b in range(3)], dtype=np.int64), (n_pairs, 1))
    scale = match_scale(pair_qubits, pair_codes, weights, probs)
    return _finish(np.ascontiguousarray(m), np.ascontiguousarray(o), weights, scale, labels, source.n_snapshots,
                   opts, on_unmatched, attenuation)


def _two_point_chunk(chunk: object, offset: int, bounds: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Two-point counts of one chunk for the batches it meets: ``(first batch, match, odd)``, the arrays
    ``(batches met, n, n, 3, 3)``."""
    planes = kernels.pack(chunk.bases, chunk.outcomes)  # type: ignore[attr-defined]
    n_q = planes.shape[1]
    lo, hi = _local_blocks(bounds, offset, chunk.n_snapshots)  # type: ignore[attr-defined]
    met = np.flatnonzero(hi > lo)
    first, last = int(met[0]), int(met[-1]) + 1
    match = np.zeros((last - first, n_q, n_q, 3, 3), dtype=np.int64)
    odd = np.zeros_like(match)
    for b in range(first, last):
        if hi[b] > lo[b]:
            kernels.two_point_counts(planes, int(lo[b]), int(hi[b]), match[b - first], odd[b - first])
    return first, match, odd


def estimate_sum(
    source: SnapshotSource,
    hamiltonian: PauliSum,
    *,
    estimator: str = "auto",
    n_blocks: int | None = None,
    level: float = 0.95,
    interval: str = "normal",
    label: str = "sum",
    probabilities: np.ndarray | None = None,
    calibration: Calibration | None = None,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    execution: Execution | None = None,
) -> Estimates:
    """Estimate ``<H>`` for ``H = sum_j c_j P_j`` with one standard error for the whole sum.

    The standard error accounts for the correlations between terms estimated from the same
    snapshots: for ``mean`` and ``mom`` it comes from the per-snapshot values of the whole sum;
    for ``matched`` (each term averaged over its own matching snapshots) from the delta-method
    influence of each snapshot on the sum, with each term's own variance Bessel-corrected
    (``C_j / (C_j - 1)``) and a term matched only once given the bound ``Var(sign) <= 1``.
    Identity terms are added exactly. Estimators and ``probabilities`` as in
    :func:`estimate_paulis`. With a ``calibration`` each term is divided by its support's
    calibrated attenuation, and the calibration's error is added to the standard error as
    ``sum_j |c_j r_j| se_gj / g_j`` (``r_j`` the robust term estimate), which bounds it whatever
    the correlation between the factors (they come from the same calibration snapshots).
    """
    hamiltonian.check_n_qubits(source.n_qubits)
    if len(hamiltonian) == 0:
        raise ShadowlabError("the Pauli sum has no terms")
    estimator, probs = resolve_scheme(source, source.n_qubits, estimator, probabilities)
    opts = _options(source, estimator, n_blocks, level, interval, 1, bytes_per_batch=8)
    weights_all = np.array([t.weight for t in hamiltonian.terms], dtype=np.int64)
    ident = weights_all == 0
    constant = float(hamiltonian.coeffs[ident].sum())
    # Zero-coefficient terms contribute exactly nothing: they need no matching snapshot.
    keep = ~ident & (hamiltonian.coeffs != 0)
    terms = [t for t, k in zip(hamiltonian.terms, keep, strict=True) if k]
    coeffs = hamiltonian.coeffs[keep]
    n = source.n_snapshots
    factors = _calibration_factors(source, calibration, terms, [t.to_sparse() for t in terms], interval)

    def result(est: float, se: float, half: float, used: int) -> Estimates:
        return Estimates((label,), np.array([est]), np.array([se]), np.array([est - half]), np.array([est + half]),
                         np.array([used]), n, opts.estimator, opts.interval, level, opts.n_blocks,
                         calibrated=factors is not None)

    if not terms:
        return result(constant, 0.0, 0.0, n)
    arrays = PauliArrays.from_paulis(terms)
    scale3 = match_scale(arrays.qubits, arrays.codes, arrays.weights, probs)
    if factors is not None:
        # Robust shadows: term j is estimated as (raw estimate) / g_j, i.e. with coefficient c_j / g_j.
        coeffs = coeffs / factors[0]

    def calibration_sd(raw_terms: np.ndarray) -> float:
        """Bound on the standard deviation the calibration adds (0 without one)."""
        if factors is None:
            return 0.0
        g, se_g = factors
        return float(np.sum(np.abs(coeffs * raw_terms) * se_g / g))
    sizes = np.diff(opts.bounds).astype(np.float64)
    j_eff = int(np.count_nonzero(sizes))
    z = _quantile(level, opts.clustered, j_eff)
    if opts.estimator == "matched":
        match, odd = pauli_counts(source, arrays, 1, chunk_snapshots=chunk_snapshots, execution=execution)
        c = match[:, 0].astype(np.float64)
        if np.any(c == 0):
            bad = [terms[i].to_sparse() for i in np.flatnonzero(c == 0)[:5]]
            advice = ("measure them: a larger budget or a plan that targets every term" if probs is None
                      and (scheme_record(source) or {}).get("kind") in DETERMINISTIC_SCHEMES
                      else "use estimator 'mean', or more snapshots")
            raise EstimationError(
                f"no snapshot matches {int(np.sum(c == 0))} term(s) of the sum, e.g. {', '.join(bad)}; the matched "
                f"estimator needs every term matched at least once ({advice})"
            )
        mu = (match[:, 0] - 2 * odd[:, 0]) / c
        est = constant + float(coeffs @ mu)
        # Influence of snapshot s: psi_s = sum_j (c_j / C_j) m_js (sign_js - mu_j); it sums to 0,
        # and the variance of the estimate is sum_s psi_s^2 (or over batch sums, clustered).
        batch_psi, sq, used = _stream_sum_values(source, arrays, coeffs / c, -coeffs * mu / c, opts.bounds,
                                                 chunk_snapshots, progress, execution)
        if opts.clustered:
            var = j_eff / (j_eff - 1.0) * float(batch_psi @ batch_psi)
        else:
            var = sq
        # Small-sample correction of each term's own variance c_j^2 (1 - mu_j^2) / C_j: the plug-in
        # 1 - mu_j^2 is biased low by a factor (C_j - 1) / C_j (Bessel), and a term matched once
        # has plug-in variance 0 whatever its true value, so it gets the bound Var(sign) <= 1.
        # Derandomized plans match small terms only a few times, where this matters.
        few = c == 1
        own = coeffs**2 * (1.0 - mu**2) / c
        var += float(np.sum(np.where(few, coeffs**2, own / np.maximum(c - 1.0, 1.0))))
        se = math.hypot(math.sqrt(var), calibration_sd(mu))
        return result(est, se, z * se, used)
    if not np.all(np.isfinite(scale3)):
        bad = [terms[i].to_sparse() for i in np.flatnonzero(~np.isfinite(scale3))[:5]]
        raise EstimationError(f"the scheme never measures the bases that term(s) {', '.join(bad)} need "
                              "(probability 0), so the sum cannot be estimated from these data")
    batch_sums, sum_sq, used = _stream_sum_values(source, arrays, coeffs * scale3, np.zeros(len(terms)),
                                                  opts.bounds, chunk_snapshots, progress, execution)
    mean = float(batch_sums.sum()) / n
    if opts.clustered:
        se_mean = math.sqrt(float(_batch_variance(batch_sums, sizes, np.array(mean), np.array(float(n)), j_eff)))
    else:
        var = max(sum_sq / n - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 1.0)
        se_mean = math.sqrt(var / n)
    cal_sd = 0.0
    if factors is not None:
        # The raw per-term estimates (one more pass) size the calibration's contribution.
        match, odd = pauli_counts(source, arrays, 1, chunk_snapshots=chunk_snapshots, execution=execution)
        cal_sd = calibration_sd(scale3 * (match[:, 0] - 2 * odd[:, 0]) / n)
    if opts.estimator == "mean":
        se = math.hypot(se_mean, cal_sd)
        return result(constant + mean, se, z * se, used)
    k, m = opts.n_blocks, opts.sub_blocks
    block_means = batch_sums.reshape(k, m).sum(axis=1) / sizes.reshape(k, m).sum(axis=1)
    est = constant + float(np.median(block_means))
    se = math.hypot(math.sqrt(math.pi / 2.0) * se_mean, cal_sd)
    if opts.interval == "hkp":
        norm = float(np.sum(np.abs(coeffs) * np.sqrt(scale3)))
        half = math.sqrt(HKP_CONSTANT * norm * norm / sizes.reshape(k, m).sum(axis=1).min())
    else:
        half = z * se
    return result(est, se, half, used)


def _stream_sum_values(
    source: SnapshotSource, arrays: PauliArrays, scale: np.ndarray, offset: np.ndarray, bounds: np.ndarray,
    chunk_snapshots: int | None, progress: Progress | None, execution: Execution | None = None,
) -> tuple[np.ndarray, float, int]:
    """Stream per-snapshot values of a sum (see :func:`kernels.pauli_sum_snapshot_values`).

    Returns the ``(J,)`` per-batch sums, the sum of squares over all snapshots, and the number
    of snapshots that match at least one term. The per-chunk partial sums are added in chunk
    order wherever the chunks were computed, so a cluster gives the same floating-point result.
    """
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    offset = np.ascontiguousarray(offset, dtype=np.float64)
    step = chunk_rows(source, execution, chunk_snapshots, extra_row_bytes=16.0, fixed_bytes=8.0 * len(bounds),
                      what="a Pauli sum")
    batch_sums = np.zeros(len(bounds) - 1)
    totals = [0.0, 0]  # sum of squares, snapshots matching a term

    def fold(result: tuple[int, np.ndarray, float, int]) -> None:
        first, sums, sq, hits = result
        batch_sums[first:first + len(sums)] += sums
        totals[0] += sq
        totals[1] += hits

    in_order = InOrder(fold)
    map_chunks(source, _sum_values_chunk, chunk_snapshots=step, combine=lambda ci, _b, result: in_order.add(ci, result),
               batches=[(bounds, arrays.qubits, arrays.codes, arrays.weights, scale, offset)], execution=execution,
               progress=progress)
    sum_sq, used = totals
    return batch_sums, sum_sq, used


def _sum_values_chunk(chunk: object, start: int, bounds: np.ndarray, qubits: np.ndarray, codes: np.ndarray,
                      weights: np.ndarray, scale: np.ndarray,
                      offset: np.ndarray) -> tuple[int, np.ndarray, float, int]:
    """One chunk's share of :func:`_stream_sum_values`: ``(first batch, sums of the batches met, sum of
    squares, snapshots matching a term)``."""
    n = chunk.n_snapshots  # type: ignore[attr-defined]
    planes = kernels.pack(chunk.bases, chunk.outcomes)  # type: ignore[attr-defined]
    values = np.zeros(n)
    hits = np.zeros(n, dtype=np.int64)
    kernels.pauli_sum_snapshot_values(planes, n, qubits, codes, weights, scale, offset, values, hits)
    lo, hi = _local_blocks(bounds, start, n)
    met = np.flatnonzero(hi > lo)
    first = int(met[0])
    sums = np.array([values[lo[b]:hi[b]].sum() for b in range(first, int(met[-1]) + 1)])
    return first, sums, float(values @ values), int(np.count_nonzero(hits))


__all__ = [
    "DEFAULT_CHUNK_SNAPSHOTS",
    "SnapshotSource",
    "block_bounds",
    "chunk_rows",
    "estimate_paulis",
    "estimate_sum",
    "estimate_two_point",
    "hkp_blocks",
    "match_scale",
    "pauli_counts",
    "resolve_scheme",
    "scheme_record",
]
