"""Second Renyi entropies of many subsystems from classical shadows, by an unbiased U-statistic.

Estimator
---------
For a subsystem ``A`` of ``k`` qubits and snapshots ``s`` (random local Pauli bases, one
outcome per qubit), the single-snapshot estimate of the reduced state is
``X_s = tensor_{q in A} (3 |s_q><s_q| - I)``, and for two *independent* snapshots
``E[tr(X_s X_t)] = tr(rho_A^2)``. Per qubit ``tr(sigma_s sigma_t)`` is

* 5 for the same basis and the same outcome,
* -4 for the same basis and different outcomes,
* 1/2 for different bases,

and ``tr(X_s X_t)`` is the product over ``A``. The purity estimate is the U-statistic

    P = 1 / (N (N - 1)) * sum over ordered pairs s != t of tr(X_s X_t),

which is unbiased, unlike the plug-in ``tr(rho_hat^2)`` (which includes the ``N`` self pairs,
each worth ``5^k``: ``E[tr rho_hat^2] = tr rho^2 + (5^k - tr rho^2) / N``). The Renyi-2 entropy
is ``S2 = -log_base(P)`` in bits (``base=2``, default) or nats (``base='e'``).

No sum over pairs is formed: snapshots are counted by their pattern on ``A`` (per qubit
``2 * basis + outcome``, ``6^k`` patterns, a compiled kernel streaming chunk by chunk), and the
pair sum is ``c^T K c - N 5^k`` with ``K`` the ``k``-fold Kronecker power of the 6x6 per-qubit
table, applied to ``c`` axis by axis (``O(k 6^k)``; the ``6^k x 6^k`` matrix is never formed).
Many subsystems share one pass over the data (their count tables are filled together, in
groups that fit ``memory_budget``).

Execution
---------
Pattern counts are integer sums over chunks of snapshots, so the counting pass runs through
:func:`shadowlab.execution.map_chunks`: in this process, or with a distributed
:class:`~shadowlab.execution.Execution` as one Dask task per chunk, with identical counts (and
hence identical estimates) either way. Each chunk task holds the chunk's rows and two copies of
the group's count tables (its own and the running total here, or its serialized result on a
worker), so the tables of one pass are limited to a quarter of ``Execution.memory`` as well as
to ``memory_budget``; tables much larger than a chunk (7 or more qubits) are instead returned
by each task as the patterns it saw with their counts. The passes over data that *repeat*
settings carry setting runs from one chunk to the next (a run may straddle a chunk boundary,
and the jackknife needs every run whole, in order), so they always stream in this process,
chunk by chunk within the same memory bound, also when the execution is distributed.

Uncertainty
-----------
The standard error of ``P`` is Hoeffding's variance of a U-statistic of order two,
``Var(P) = (4 (N - 2) zeta1 + 2 zeta2) / (N (N - 1))`` with ``zeta1 = Var(h1)``,
``h1(s) = E_t tr(X_s X_t)``, and ``zeta2 = Var(tr(X_s X_t))``. Both are estimated from the
same counts without bias in their second moments: ``E[h1^2]`` from distinct triples
``sum_s [(sum_{t != s} k_st)^2 - sum_{t != s} k_st^2] / (N (N-1) (N-2))`` and ``E[k^2]`` from
distinct pairs (the squared per-qubit table 25 / 16 / 1/4), minus ``P^2``. The second term
matters for nearly maximally mixed subsystems, where ``zeta1`` is close to 0. There the
estimate of ``zeta1`` fluctuates around 0 by as much as the second term; it is clipped at 0
(``zeta1 >= 0``), which makes the standard error conservative (for one maximally mixed qubit,
about 20% too large on average) rather than erratic (unclipped, single standard errors came
out up to about two times too small).

The entropy's standard error is the delta method, ``se(P) / (P ln base)``. Its interval is
the normal interval on the purity, ``P +- z se(P)``, intersected with the physical range
``[2^-k, 1]`` and mapped through ``-log_base`` (so it always lies in ``[0, k]`` bits, and is not
symmetric about the estimate). A purity estimate ``<= 0`` (possible for large subsystems and few
snapshots) has no entropy: the row then has ``entropy = NaN``, ``defined = False`` and status
``'undefined: purity estimate <= 0'``; the written outputs show an empty / ``null`` entropy,
never a number. A purity estimate above 1 or below ``2^-k`` gives an entropy outside
``[0, k]``; it is reported as is (the estimator is unbiased for the purity, not the entropy),
and then lies outside its interval, which is clipped to the physical range.

Repeated settings
-----------------
The unbiasedness argument needs the two snapshots of a pair to come from independently drawn
settings. When a data set repeats settings (``n_settings < n_snapshots``), pairs of snapshots
that share a setting index are *excluded*: the estimate is the mean over the
``N^2 - sum_g L_g^2`` ordered pairs from different settings (``L_g`` snapshots in setting
``g``), still unbiased. The same-setting pair sums are computed per setting run from outcome
counts (``2^k`` per run), which needs the snapshots of one setting to be contiguous and the
setting indices non-decreasing (as shadowlab's simulators and stores write them; other orders
are refused). The standard error is then the delete-one-setting jackknife,
``(G - 1) / G * sum_g (P_(-g) - mean)^2`` over the ``G`` settings, where ``P_(-g)`` leaves out
every pair involving setting ``g``: ``(D P - 2 a_g) / (D - 2 L_g (N - L_g))`` with ``a_g`` the
setting's cross-setting pair sum and ``D`` the pairs used (a second pass over the data). It
needs at least 3 settings.

Robust purity (``calibration=``)
--------------------------------
Under noisy measurements a Pauli ``P`` with support ``B`` has ``E[sign | match] = g_B <P>``
(:mod:`shadowlab.estimate.calibration`), so the plain estimator is biased low. Expanding the
per-qubit kernel ``tr(sigma_s sigma_t) = 1/2 + 9/2 [b_s = b_t] (-1)^(o_s + o_t)`` over the subsets
``B`` of ``A``, the pair kernel is ``2^-k sum_B 9^|B| prod_{q in B} [b_sq = b_tq] (-1)^(o_sq + o_tq)``,
and the ``B`` term of two independent snapshots estimates ``sum_{P: supp P = B} g_B^2 <P>^2``. The
robust kernel divides it by ``g_B^2``:

    h(s, t) = 2^-k sum_{B subset A} 9^|B| / g_B^2 prod_{q in B} [b_sq = b_tq] (-1)^(o_sq + o_tq),

whose U-statistic is unbiased for ``tr(rho_A^2) = 2^-k sum_{P on A} <P>^2`` (given exact ``g``;
``g_{}`` = 1). From the pattern counts: the Pauli sums ``S_P = sum_s sigma_P(s)`` (``4^k``, exact
integers, one 6 -> 4 map per axis), and per subset the cross pairs ``T_B = sum_{supp P = B} S_P^2 -
N``, so ``P = sum_B term_B``, ``term_B = 2^-k 9^|B| T_B / (N (N - 1) g_B^2)``. Every subset of ``A``
needs a calibrated factor (a complete calibration of locality ``>= k``). With all ``g_B = 1`` this
is the plain estimator (equal to rounding).

Its standard error has two parts, added in quadrature. The data part is Hoeffding's variance
above for the robust kernel: ``h1`` per pattern by mapping ``w_P S_P`` back to patterns
(``w_P = 2^-k 9^|P| / g^2``), and ``E[h^2]`` from the number of ordered pairs in each per-qubit
class (same basis and outcome / same basis, other outcome / other basis; ``3^k`` classes, from
``7^k`` sums of squares), on which ``h`` is a known function. With repeated settings it is the
delete-one-setting jackknife of the robust estimate (same-setting pairs are removed per Pauli
by ``S_P^2 - sum_g S_Pg^2``; two passes). The calibration part is the delta method with
``d P / d g_B = -2 term_B / g_B``; the factors come from the same calibration snapshots and
are correlated, so their contributions are added as the bound ``sum_B 2 |term_B| se_B / g_B``
(valid for any correlation, as :func:`shadowlab.estimate.pauli.estimate_sum` does).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from shadowlab import kernels
from shadowlab.atomic import atomic_path
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.pauli import DEFAULT_CHUNK_SNAPSHOTS, SnapshotSource, chunk_rows
from shadowlab.execution import LOCAL, Execution, map_chunks

if TYPE_CHECKING:
    from shadowlab.estimate.calibration import Calibration

Progress = Callable[[int], None]

#: Largest subsystem accepted by default (a ``6^10``-entry count table is 460 MiB; finishing it
#: takes 40 bytes per pattern, 2.3 GiB, and 16 more with repeated settings).
DEFAULT_MAX_SIZE = 10
#: Memory for the count tables of one pass; more subsystems are counted in further passes.
DEFAULT_MEMORY_BUDGET = 256 * 2**20
#: Bytes per pattern needed to finish one subsystem (int64 counts + four float64 work vectors).
_FINISH_BYTES_PER_PATTERN = 40

# Per-qubit tables as m[(b, o), (b', o')] = alpha + [b == b'] (beta if o == o' else gamma):
# tr(sigma_s sigma_t) is 5 / -4 / 1/2, and its square 25 / 16 / 1/4.
_K1 = (0.5, 4.5, -4.5)
_K2 = (0.25, 24.75, 15.75)

BASES = ("2", "e")
OUTPUT_FORMATS = ("table", "csv", "json")


def contiguous_subsystems(n_qubits: int, max_size: int) -> list[tuple[int, ...]]:
    """Every block of consecutive qubits of size 1 to ``max_size`` (ordered by size, then start).

    >>> contiguous_subsystems(3, 2)
    [(0,), (1,), (2,), (0, 1), (1, 2)]
    """
    if n_qubits < 1:
        raise ShadowlabError(f"n_qubits must be >= 1, got {n_qubits}")
    if max_size < 1:
        raise ShadowlabError(f"max_size must be >= 1, got {max_size}")
    top = min(max_size, n_qubits)
    return [tuple(range(i, i + k)) for k in range(1, top + 1) for i in range(n_qubits - k + 1)]


def parse_subsystems(text: str) -> list[tuple[int, ...]]:
    """Parse ``'0,1,2;3,4'`` (subsystems separated by ``;``, qubits by ``,``)."""
    result = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            result.append(tuple(int(q) for q in part.split(",")))
        except ValueError:
            raise ShadowlabError(f"subsystems: expected comma-separated qubit indices such as '0,1,2;3,4', "
                                 f"got {part!r}") from None
    if not result:
        raise ShadowlabError(f"subsystems: no subsystem in {text!r}; expected e.g. '0,1,2;3,4'")
    return result


def table_bytes(size: int) -> int:
    """Memory needed to finish a subsystem of ``size`` qubits (its ``6^size`` table and work vectors)."""
    return _FINISH_BYTES_PER_PATTERN * 6**size


def check_subsystems(
    subsystems: Iterable[Sequence[int]], n_qubits: int, *, max_size: int, what: str = "subsystem",
) -> list[tuple[int, ...]]:
    """Validate subsystems against ``n_qubits`` and ``max_size``; return them as tuples of ints.

    Raises :class:`ShadowlabError` for an empty subsystem, a repeated or out-of-range qubit, or
    a subsystem larger than ``max_size`` (before anything is allocated, stating the memory its
    ``6^k`` table would need).
    """
    result = []
    for sub in subsystems:
        qs = tuple(int(q) for q in sub)
        if not qs:
            raise ShadowlabError(f"{what}: empty subsystem; give at least one qubit")
        bad = [q for q in qs if not 0 <= q < n_qubits]
        if bad:
            raise ShadowlabError(f"{what} {list(qs)}: qubit {bad[0]} out of range; the data set has {n_qubits} "
                                 f"qubits (0 to {n_qubits - 1})")
        if len(set(qs)) != len(qs):
            dup = next(q for q in qs if qs.count(q) > 1)
            raise ShadowlabError(f"{what} {list(qs)}: qubit {dup} repeated; each qubit may appear once")
        if len(qs) > max_size:
            raise ShadowlabError(
                f"{what} {list(qs)} has {len(qs)} qubits, more than max_size={max_size}: its 6^{len(qs)}-entry "
                f"pattern table would need {table_bytes(len(qs)) / 2**30:.2f} GiB to process; use smaller "
                "subsystems or raise max_size"
            )
        result.append(qs)
    if not result:
        raise ShadowlabError(f"no {what} given")
    return result


def _groups(subsystems: Sequence[tuple[int, ...]], budget: int, bytes_per_pattern: int = 8) -> list[list[int]]:
    """Split subsystem indices into groups whose per-pattern tables fit ``budget`` bytes.

    ``bytes_per_pattern``: 8 (int64 counts) for independent settings, 24 with repeated settings
    (counts and two float64 work tables).
    """
    groups: list[list[int]] = []
    used = budget + 1
    for i, sub in enumerate(subsystems):
        need = bytes_per_pattern * 6 ** len(sub)
        if used + need > budget and (not groups or groups[-1]):
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += need
    return groups


def table_budget(memory_budget: int, execution: Execution | None = None) -> int:
    """Bytes of count tables one pass fills: ``memory_budget``, at most a quarter of the execution's
    memory bound (a chunk task holds two copies of the tables, and the rest is left for rows)."""
    return min(int(memory_budget), (execution or LOCAL).memory_bytes // 4)


def counting_passes(subsystems: Sequence[Sequence[int]], memory_budget: int = DEFAULT_MEMORY_BUDGET,
                    execution: Execution | None = None) -> int:
    """Passes over the data that :func:`estimate_renyi2` makes with counting (``progress`` is
    called for the chunks of each of them)."""
    return len(_groups([tuple(s) for s in subsystems], table_budget(memory_budget, execution)))


def _layout(subsystems: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    k_max = max(len(s) for s in subsystems)
    qubits = np.zeros((len(subsystems), k_max), dtype=np.int64)
    sizes = np.array([len(s) for s in subsystems], dtype=np.int64)
    for i, s in enumerate(subsystems):
        qubits[i, : len(s)] = s
    lengths = 6**sizes
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return qubits, sizes, offsets, int(lengths.sum())


#: Per snapshot, subsystem and qubit: the int64 basis and outcome digits and their uint8 columns
#: (:func:`_sparse_pattern_chunk`); and per snapshot and subsystem: the pattern index, its sorted
#: copy, and the distinct indices with their counts.
_SPARSE_BYTES_PER_QUBIT = 18.0
_SPARSE_BYTES_PER_SUBSYSTEM = 48.0


def _check_distinct(chunk: Any, distinct_settings: bool) -> None:
    if distinct_settings and chunk.n_snapshots > 1 and np.any(np.diff(chunk.settings) == 0):
        raise EstimationError(
            "consecutive snapshots share a setting index although the data set reports as many settings as "
            "snapshots (setting indices with gaps?); same-setting pairs would bias the purity estimate"
        )


def _pattern_count_chunk(chunk: Any, offset: int, qubits: np.ndarray, sizes: np.ndarray, offsets: np.ndarray,
                         total: int, distinct_settings: bool) -> np.ndarray:
    """The flat int64 pattern counts of one chunk (a :func:`map_chunks` task of :func:`pattern_counts`)."""
    _check_distinct(chunk, distinct_settings)
    counts = np.zeros(total, dtype=np.int64)
    if chunk.n_snapshots:
        kernels.subsystem_pattern_counts(np.ascontiguousarray(chunk.bases), np.ascontiguousarray(chunk.outcomes),
                                         qubits, sizes, offsets, counts)
    return counts


def _sparse_pattern_chunk(chunk: Any, offset: int, qubits: np.ndarray, sizes: np.ndarray, offsets: np.ndarray,
                          distinct_settings: bool) -> tuple[np.ndarray, np.ndarray]:
    """The flat indices of the patterns one chunk holds and their counts (for tables much larger than a
    chunk, whose dense counts would be mostly zeros)."""
    _check_distinct(chunk, distinct_settings)
    m = chunk.n_snapshots
    index = np.empty(m * sizes.size, dtype=np.int64)
    for i, k in enumerate(sizes):
        cols = qubits[i, :k]
        digits = 2 * chunk.bases[:, cols].astype(np.int64) + chunk.outcomes[:, cols]
        index[i * m:(i + 1) * m] = digits @ 6 ** np.arange(k - 1, -1, -1, dtype=np.int64) + offsets[i]
    return np.unique(index, return_counts=True)


def pattern_counts(
    source: SnapshotSource, subsystems: Sequence[tuple[int, ...]], *, chunk_snapshots: int | None = None,
    progress: Progress | None = None, distinct_settings: bool = False, execution: Execution | None = None,
) -> list[np.ndarray]:
    """One pass over the data: the ``6^k`` pattern counts (int64) of each (validated) subsystem.

    Pattern index ``sum_j (2 b_j + o_j) 6^(k-1-j)`` for the subsystem's qubits in the given
    order (its first qubit is the most significant digit). With ``distinct_settings``, raise
    if two consecutive snapshots of a chunk share a setting index.

    The counts are exact integer sums of per-chunk counts, the same in this process and on a
    cluster (``execution``) and however the chunks are cut. Memory per chunk task: the rows
    (see :func:`~shadowlab.estimate.pauli.chunk_rows`) plus two copies of the ``8 sum_i 6^k_i``-byte
    tables; tables larger than ``DEFAULT_CHUNK_SNAPSHOTS`` entries per subsystem are instead
    returned by each task as the patterns it saw and their counts (a few dozen bytes per snapshot and subsystem,
    plus one table here). ``chunk_snapshots``: see :func:`~shadowlab.estimate.pauli.chunk_rows`.
    """
    qubits, sizes, offsets, total = _layout(subsystems)
    what = f"the pattern counts of {len(subsystems)} subsystem(s) ({total:,} patterns)"
    counts = np.zeros(total, dtype=np.int64)
    if total <= DEFAULT_CHUNK_SNAPSHOTS * len(subsystems):
        step = chunk_rows(source, execution, chunk_snapshots, fixed_bytes=16.0 * total, what=what)
        fn: Callable[..., Any] = _pattern_count_chunk
        args: tuple[Any, ...] = (qubits, sizes, offsets, total, distinct_settings)

        def combine(_chunk: int, _batch: int, part: Any) -> None:
            np.add(counts, part, out=counts)  # integer sums: exact in any completion order
    else:
        per_row = _SPARSE_BYTES_PER_QUBIT * float(sizes.sum()) + _SPARSE_BYTES_PER_SUBSYSTEM * len(subsystems)
        step = chunk_rows(source, execution, chunk_snapshots, extra_row_bytes=per_row, fixed_bytes=8.0 * total,
                          what=what)
        fn, args = _sparse_pattern_chunk, (qubits, sizes, offsets, distinct_settings)

        def combine(_chunk: int, _batch: int, part: Any) -> None:
            index, n = part
            counts[index] += n  # distinct indices; integer sums: exact in any completion order

    map_chunks(source, fn, chunk_snapshots=step, combine=combine, batches=[args], execution=execution,
               progress=progress)
    return [counts[offsets[i]: offsets[i] + 6 ** int(sizes[i])] for i in range(len(subsystems))]


@dataclass
class _RunState:
    """Per-subsystem state of :func:`kernels.setting_run_sums` carried between chunks."""

    qubits: np.ndarray
    sizes: np.ndarray
    offsets: np.ndarray
    w1: np.ndarray
    w2: np.ndarray

    @classmethod
    def make(cls, subsystems: Sequence[tuple[int, ...]]) -> _RunState:
        qubits, sizes, offsets, _ = _layout(subsystems)
        k_max = int(sizes.max())
        d = np.arange(k_max + 1)
        w1 = np.zeros((len(subsystems), k_max + 1))
        w2 = np.zeros_like(w1)
        for i, k in enumerate(sizes):
            dd = d[: k + 1]
            w1[i, : k + 1] = 5.0 ** (k - dd) * (-4.0) ** dd
            w2[i, : k + 1] = 25.0 ** (k - dd) * 16.0**dd
        return cls(qubits, sizes, offsets, w1, w2)


def _run_pass(
    source: SnapshotSource, st: _RunState, v: np.ndarray, u_est: np.ndarray, d_tot: np.ndarray, chunk_snapshots: int,
    counts: np.ndarray | None, progress: Progress | None,
) -> np.ndarray:
    """Stream the data once, accumulating setting-run sums (and pattern counts if ``counts``)."""
    n_sub = st.sizes.shape[0]
    k_max = int(st.sizes.max())
    cur = np.full(n_sub, -1, dtype=np.int64)
    buf = np.zeros((n_sub, 2**k_max), dtype=np.int64)
    touched = np.zeros_like(buf)
    n_touched = np.zeros(n_sub, dtype=np.int64)
    run_len = np.zeros(n_sub, dtype=np.int64)
    run_v = np.zeros(n_sub)
    acc = np.zeros((n_sub, 6))
    n_total = float(source.n_snapshots)
    last = -1
    chunk = None
    for _offset, chunk in source.iter_chunks(chunk_snapshots):
        if not chunk.n_snapshots:
            continue
        settings = np.asarray(chunk.settings, dtype=np.int64)
        if settings[0] < last or np.any(np.diff(settings) < 0):
            raise EstimationError(
                "the data set repeats settings but its setting indices are not in non-decreasing order; the "
                "purity estimator excludes same-setting pairs per contiguous run of a setting and needs each "
                "setting's snapshots contiguous and in setting order (sort the snapshots by setting index)"
            )
        last = int(settings[-1])
        bases = np.ascontiguousarray(chunk.bases)
        outcomes = np.ascontiguousarray(chunk.outcomes)
        if counts is not None:
            kernels.subsystem_pattern_counts(bases, outcomes, st.qubits, st.sizes, st.offsets, counts)
        kernels.setting_run_sums(bases, outcomes, settings, st.qubits, st.sizes, st.offsets, v, st.w1, st.w2,
                                 n_total, u_est, d_tot, cur, buf, touched, n_touched, run_len, run_v, acc, False)
        if progress is not None:
            progress(chunk.n_snapshots)
    if chunk is not None:
        kernels.setting_run_sums(np.zeros((0, source.n_qubits), dtype=np.uint8),
                                 np.zeros((0, source.n_qubits), dtype=np.uint8), np.zeros(0, dtype=np.int64),
                                 st.qubits, st.sizes, st.offsets, v, st.w1, st.w2, n_total, u_est, d_tot, cur,
                                 buf, touched, n_touched, run_len, run_v, acc, True)
    return acc


@dataclass(frozen=True)
class PurityStats:
    """The purity U-statistic of one subsystem and its ingredients (all from pattern counts)."""

    purity: float
    stderr: float
    n_pairs: float
    #: The calibration's share of ``stderr`` (a bound, added in quadrature; 0 without a calibration).
    calibration_stderr: float = 0.0


def purity_from_counts(counts: np.ndarray, size: int) -> PurityStats:
    """Unbiased purity and its Hoeffding standard error from the ``6^size`` pattern counts
    (independent settings: every pair of distinct snapshots is used)."""
    c = np.ascontiguousarray(counts, dtype=np.int64)
    n = float(c.sum())
    if n < 3:
        raise EstimationError(f"the purity U-statistic needs at least 3 snapshots, got {int(n)}")
    v1 = kernels.kron6_apply(c, size, *_K1)
    v2 = kernels.kron6_apply(c, size, *_K2)
    # Per pattern p: a_p = sum_{t != s} k(s, t) and b_p = sum_{t != s} k(s, t)^2 for a snapshot s of pattern p.
    sum_a, sum_aa, sum_b = kernels.purity_pattern_sums(c, v1, v2, 5.0**size, 25.0**size)
    pairs = n * (n - 1.0)
    u = sum_a / pairs
    ek2 = sum_b / pairs
    eh1 = (sum_aa - sum_b) / (pairs * (n - 2.0))
    # zeta1 >= 0 is clipped: near a maximally mixed state (zeta1 = 0) its estimate fluctuates
    # around 0 by as much as the second term, and unclipped it can shrink the variance severalfold.
    zeta1 = max(eh1 - u * u, 0.0)
    zeta2 = max(ek2 - u * u, 0.0)
    var = (4.0 * (n - 2.0) * zeta1 + 2.0 * zeta2) / pairs
    return PurityStats(u, math.sqrt(var), pairs)


# --------------------------------------------------------------------------------------------
# Pattern-count transforms, shared with shadowlab.estimate.rdm
# --------------------------------------------------------------------------------------------
# A subsystem's pattern counts are a (6,) * k tensor, one axis per qubit (digit 2 b + o, the
# subsystem's first qubit first). Per-qubit linear maps applied axis by axis (axiswise) turn
# them into other per-qubit bases without forming a 6^k x 6^k matrix.

# Per-qubit map from the 6 pattern digits to the Pauli letters I, X, Y, Z:
# sigma_P(s) = product over qubits of _TO_PAULI[P_q, d_q].
_TO_PAULI = np.array([[1, 1, 1, 1, 1, 1], [1, -1, 0, 0, 0, 0], [0, 0, 1, -1, 0, 0], [0, 0, 0, 0, 1, -1]],
                     dtype=np.int64)

#: ``(7, 6)`` float64 per-qubit map from the 6 pattern digits ``2 b + o`` to the functions
#: 1 (all), ``[b = X]``, ``[b = Y]``, ``[b = Z]`` (basis, any outcome), and ``[b = X] (-1)^o``,
#: ``[b = Y] (-1)^o``, ``[b = Z] (-1)^o``. Pair products of these span the functions of a qubit's
#: pair class e / d / n (same basis and outcome / same basis, other outcome / other basis):
#: ``1 = e + d + n``, ``D = e + d``, ``X = e - d``; the pair sum of a product is a sum of squares
#: of the transformed counts. Used by :func:`_pair_class_counts` and by the reduced-state second
#: moments of :mod:`shadowlab.estimate.rdm`.
TO_CLASS_SPAN = np.array([[1, 1, 1, 1, 1, 1],
                          [1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1],
                          [1, -1, 0, 0, 0, 0], [0, 0, 1, -1, 0, 0], [0, 0, 0, 0, 1, -1]], dtype=np.float64)


def axiswise(tensor: np.ndarray, mats: Sequence[np.ndarray]) -> np.ndarray:
    """Apply ``mats[j]`` (shape ``(out_j, in_j)``) along axis ``j`` of ``tensor`` (one matrix per axis).

    Parameters
    ----------
    tensor:
        Array with ``len(mats)`` axes, axis ``j`` of length ``in_j``.
    mats:
        One matrix per axis.

    Returns
    -------
    numpy.ndarray
        Axis ``j`` of length ``out_j``; the axes keep their order and the dtype follows numpy's
        promotion (int64 stays exact). Equal to ``kron(mats) @ tensor.reshape(-1)`` reshaped,
        without forming the Kronecker product.

    Examples
    --------
    >>> t = np.arange(6).reshape(2, 3)
    >>> m0, m1 = np.array([[1, 1], [1, -1]]), np.eye(3, dtype=int)[::-1]
    >>> axiswise(t, [m0, m1]).tolist()
    [[7, 5, 3], [-3, -3, -3]]
    >>> bool(np.array_equal(axiswise(t, [m0, m1]).reshape(-1), np.kron(m0, m1) @ t.reshape(-1)))
    True
    """
    t = tensor
    for m in mats:
        # Contract the leading axis; the new one goes to the end, so after k steps the order is restored.
        t = np.tensordot(t, m, axes=([0], [1]))
    return t


def pauli_sums(counts: np.ndarray, size: int) -> np.ndarray:
    """``S_P = sum_s sigma_P(s)`` for the ``4^size`` Paulis ``P`` on a subsystem, from its pattern counts.

    ``sigma_P(s)`` is the product over the qubits of ``P``'s support of ``(-1)^o`` if snapshot
    ``s`` measured that qubit in ``P``'s basis, else 0 (1 for ``I``).

    Parameters
    ----------
    counts:
        ``(6^size,)`` pattern counts (:func:`pattern_counts`).
    size:
        Number of qubits ``k`` of the subsystem.

    Returns
    -------
    numpy.ndarray
        ``(4,) * size`` int64 (exact), letters ``I, X, Y, Z`` per axis, the subsystem's first qubit
        first; ``S_{I...I}`` is the number of snapshots.

    Examples
    --------
    >>> c = np.zeros(6, dtype=np.int64); c[[0, 1, 4]] = [3, 1, 2]  # X -> 0 three times, X -> 1, Z -> 0 twice
    >>> pauli_sums(c, 1).tolist()
    [6, 2, 0, 2]
    """
    c = np.asarray(counts, dtype=np.int64).reshape((6,) * size)
    return axiswise(c, [_TO_PAULI] * size)


# --------------------------------------------------------------------------------------------
# Robust (calibrated) purity
# --------------------------------------------------------------------------------------------

# Letter -> support indicator (I -> not in B, X/Y/Z -> in B).
_PAULI_TO_SUPPORT = np.array([[1, 0, 0, 0], [0, 1, 1, 1]], dtype=np.int64)
# Squared TO_CLASS_SPAN coordinates (7 per qubit) summed to (1, D, X) pair sums, then solved for the
# class counts (e, d, n): e = (D + X) / 2, d = (D - X) / 2, n = 1 - D.
_SPAN_TO_CLASS = np.array([[0.0, 0.5, 0.5], [0.0, 0.5, -0.5], [1.0, -1.0, 0.0]]) @ np.array(
    [[1, 0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]], dtype=np.float64)
# Kernel of a pair per qubit class (e, d, n) and subset membership (q not in B, q in B), the
# factor 9 = 3^2 of the single-qubit inverse included: 1 / 9 / 1; 1 / -9 / 0.
_CLASS_KERNEL = np.array([[1.0, 9.0], [1.0, -9.0], [1.0, 0.0]])
# Subset weights on Pauli letters: I -> (not in B) weight 1, X/Y/Z -> (in B) weight 9.
_SUPPORT_TO_PAULI9 = np.array([[1.0, 0.0], [0.0, 9.0], [0.0, 9.0], [0.0, 9.0]])


def subset_masks(size: int) -> list[tuple[int, ...]]:
    """The ``2^size`` subsets of subsystem positions, in mask order.

    Mask ``m`` holds position ``j`` (the subsystem's ``j``-th qubit) when bit ``size - 1 - j``
    of ``m`` is set: the first qubit is the most significant bit, as in the pattern index, so a
    ``(2,) * size`` array in C order is indexed by these masks.

    >>> subset_masks(2)
    [(), (1,), (0,), (0, 1)]
    """
    return [tuple(j for j in range(size) if (m >> (size - 1 - j)) & 1) for m in range(2**size)]


def subset_attenuations(calibration: Calibration, subsystem: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(g, se)`` of every subset of ``subsystem`` in :func:`subset_masks` order (``g = 1`` for ``{}``).

    Raises
    ------
    EstimationError
        If some subset is not calibrated: a robust purity or reduced state of ``k`` qubits needs
        every subset of them, i.e. a complete calibration of locality ``>= k``
        (``shadowlab calibrate --locality k``; a calibration of listed observables' supports
        cannot provide them all). The message names the subsystem and some missing subsets.
    """
    qs = tuple(int(q) for q in subsystem)
    k = len(qs)
    supports = [tuple(qs[j] for j in pos) for pos in subset_masks(k)]
    try:
        return calibration.factors(supports)
    except EstimationError:
        if qs and max(qs) >= calibration.n_qubits:
            raise  # another register: the calibration's own message says so
    missing = []
    for support in supports[1:]:
        try:
            calibration.factors([support])
        except EstimationError:
            missing.append(" ".join(f"q{q}" for q in sorted(support)))
    kind = f"complete to locality {calibration.locality}" if calibration.complete else "of listed subsets only"
    raise EstimationError(
        f"subsystem {list(qs)}: a robust estimate of {k} qubits needs a calibration factor for every subset of "
        f"them, but the calibration ({kind}) lacks {len(missing)} of the {2**k - 1}, e.g. {', '.join(missing[:3])}. "
        f"Calibrate with a complete locality >= {k} (shadowlab calibrate --locality {k})") from None


@dataclass(frozen=True)
class _Kernel:
    """The robust pair kernel of one ``k``-qubit subsystem from its subset attenuations.

    ``h(s, t) = 2^-k sum_{B subset A} 9^|B| / g_B^2 prod_{q in B} [b_sq = b_tq] (-1)^(o_sq + o_tq)``;
    with every ``g_B = 1`` this is the product kernel 5 / -4 / 1/2 of the plain estimator.
    """

    size: int
    inv_g2: np.ndarray  # (2,)*k: 1 / g_B^2
    pauli_weight: np.ndarray  # (4,)*k: w_P = 2^-k 9^|P| / g_{supp P}^2
    subset_weight: np.ndarray  # (2^k,): w_B = 2^-k 9^|B| / g_B^2 in subset_masks order
    class_value: np.ndarray  # (3,)*k: h for every pair class (e, d, n) per qubit
    self_value: float  # h(s, s) = sum_B w_B

    @classmethod
    def make(cls, g: np.ndarray, size: int) -> _Kernel:
        inv_g2 = (1.0 / np.asarray(g, dtype=np.float64) ** 2).reshape((2,) * size)
        scale = 2.0**-size
        pauli_weight = scale * axiswise(inv_g2, [_SUPPORT_TO_PAULI9] * size)
        nine = axiswise(np.ones((2,) * size), [np.diag([1.0, 9.0])] * size)
        subset_weight = (scale * nine * inv_g2).reshape(-1)
        class_value = scale * axiswise(inv_g2, [_CLASS_KERNEL] * size)
        return cls(size, inv_g2, pauli_weight, subset_weight, class_value, float(subset_weight.sum()))


def _pair_class_counts(counts: np.ndarray, size: int) -> np.ndarray:
    """Ordered snapshot pairs (self pairs included) per pair class ``(e, d, n)^size``, as float64.

    Uses ``7^size`` floats: per qubit the pair indicator of each class is a combination of the
    products 1, ``[b = b']`` and ``[b = b'] (-1)^(o + o')``, whose pair sums are sums of squares.
    """
    c = np.asarray(counts, dtype=np.float64).reshape((6,) * size)
    y = axiswise(c, [TO_CLASS_SPAN] * size)
    return axiswise(y * y, [_SPAN_TO_CLASS] * size)


def robust_table_bytes(size: int) -> int:
    """Extra memory the calibrated purity of a ``size``-qubit subsystem needs (``7^size`` work arrays)."""
    return 24 * 7**size + 64 * 4**size


def _subset_terms(kern: _Kernel, cross_sums: np.ndarray, pairs: float) -> np.ndarray:
    """Per subset ``B``: ``2^-k 9^|B| T_B / (pairs g_B^2)`` with ``T_B`` the subset's cross-pair sum."""
    return kern.subset_weight.reshape(cross_sums.shape) * cross_sums / pairs


def _calibration_sd(terms: np.ndarray, g: np.ndarray, se_g: np.ndarray) -> float:
    """Delta-method bound ``sum_B |d purity / d g_B| se_B`` with ``d / d g_B = -2 term_B / g_B``."""
    return float(np.sum(2.0 * np.abs(terms.reshape(-1)) * np.asarray(se_g).reshape(-1) / np.asarray(g).reshape(-1)))


def robust_purity_from_counts(counts: np.ndarray, size: int, g: np.ndarray, se_g: np.ndarray) -> PurityStats:
    """Calibrated purity and its standard error from the ``6^size`` pattern counts (independent settings).

    ``g``, ``se_g``: ``(2^size,)`` attenuations of the subsets in :func:`subset_masks` order
    (:func:`subset_attenuations`). The estimate is the U-statistic of the robust kernel (see
    the module documentation); its standard error is Hoeffding's for that kernel, combined in
    quadrature with the calibration's delta-method bound (``calibration_stderr``). With every
    ``g_B = 1`` and ``se_B = 0`` it equals :func:`purity_from_counts`.
    """
    c = np.ascontiguousarray(counts, dtype=np.int64)
    n = float(c.sum())
    if n < 3:
        raise EstimationError(f"the purity U-statistic needs at least 3 snapshots, got {int(n)}")
    k = size
    kern = _Kernel.make(g, k)
    s_p = pauli_sums(c, k)
    pairs = n * (n - 1.0)
    # T_B = sum_{P: supp P = B} (S_P^2 - C_P), and sum_{P: supp P = B} C_P = N (each snapshot matches one).
    cross = axiswise(s_p * s_p, [_PAULI_TO_SUPPORT] * k).astype(np.float64) - n
    terms = _subset_terms(kern, cross, pairs)
    u = float(terms.sum())
    # a_p = sum_{t != s} h(s, t) for a snapshot s of pattern p: sum_P w_P sigma_P(p) S_P - h(s, s).
    a = axiswise(kern.pauli_weight * s_p, [_TO_PAULI.T] * k).reshape(-1) - kern.self_value
    cf = c.astype(np.float64)
    sum_aa = float(cf @ (a * a))
    classes = _pair_class_counts(c, k)
    sum_b = float(np.sum(classes * kern.class_value**2)) - n * kern.self_value**2
    ek2 = sum_b / pairs
    eh1 = (sum_aa - sum_b) / (pairs * (n - 2.0))
    zeta1 = max(eh1 - u * u, 0.0)  # clipped as in purity_from_counts
    zeta2 = max(ek2 - u * u, 0.0)
    var = (4.0 * (n - 2.0) * zeta1 + 2.0 * zeta2) / pairs
    cal = _calibration_sd(terms, g, se_g)
    return PurityStats(u, math.hypot(math.sqrt(var), cal), pairs, cal)


def _setting_runs(
    source: SnapshotSource, subs: Sequence[tuple[int, ...]], chunk_snapshots: int, progress: Progress | None,
    counts: list[np.ndarray] | None, u_tables: Sequence[np.ndarray] | None,
) -> Iterable[tuple[np.ndarray, list[np.ndarray], list[np.ndarray] | None]]:
    """Stream the data once and yield complete runs of one setting, a batch at a time.

    Yields ``(lengths, hists, usums)``: ``(R,)`` run lengths; per subsystem ``(R, 2^k)``
    outcome-pattern counts of each run (outcome index: first qubit most significant); with
    ``u_tables``, per subsystem ``(R,)`` sums of ``u_tables[i][pattern]`` over each run's
    snapshots. Adds pattern counts to ``counts`` if given. A run split across chunks is joined.
    """
    carry: tuple[int, np.ndarray, list[np.ndarray], list[np.ndarray] | None] | None = None
    for _offset, chunk in source.iter_chunks(chunk_snapshots):
        m = chunk.n_snapshots
        if not m:
            continue
        settings = np.asarray(chunk.settings, dtype=np.int64)
        starts = np.concatenate([[0], np.flatnonzero(np.diff(settings) != 0) + 1])
        ids = settings[starts]
        lengths = np.diff(np.concatenate([starts, [m]]))
        run_of = np.repeat(np.arange(starts.size), lengths)
        hists: list[np.ndarray] = []
        usums: list[np.ndarray] | None = [] if u_tables is not None else None
        for i, sub in enumerate(subs):
            k = len(sub)
            b = np.asarray(chunk.bases[:, list(sub)], dtype=np.int64)
            o = np.asarray(chunk.outcomes[:, list(sub)], dtype=np.int64)
            place = 1 << np.arange(k - 1, -1, -1)
            om = o @ place
            hists.append(np.bincount(run_of * 2**k + om, minlength=starts.size * 2**k).reshape(starts.size, 2**k))
            if counts is not None or usums is not None:
                pattern = (2 * b + o) @ (6 ** np.arange(k - 1, -1, -1))
                if counts is not None:
                    counts[i] += np.bincount(pattern, minlength=6**k)
                if usums is not None and u_tables is not None:
                    usums.append(np.bincount(run_of, weights=u_tables[i][pattern], minlength=starts.size))
        if progress is not None:
            progress(m)
        if carry is not None:
            cid, clen, chists, cusums = carry
            if ids[0] == cid:
                lengths[0] += clen
                for i in range(len(subs)):
                    hists[i][0] += chists[i]
                    if usums is not None and cusums is not None:
                        usums[i][0] += cusums[i]
            else:
                yield (np.array([clen]), [h[None, :] for h in chists],
                       None if cusums is None else [np.array([x]) for x in cusums])
        if starts.size > 1:
            yield (lengths[:-1], [h[:-1] for h in hists], None if usums is None else [x[:-1] for x in usums])
        carry = (int(ids[-1]), int(lengths[-1]), [h[-1].copy() for h in hists],
                 None if usums is None else [float(x[-1]) for x in usums])
    if carry is not None:
        _cid, clen, chists, cusums = carry
        yield (np.array([clen]), [h[None, :] for h in chists],
               None if cusums is None else [np.array([x]) for x in cusums])


def _walsh(size: int) -> np.ndarray:
    """``(2^size, 2^size)`` signs ``(-1)^popcount(o & B)``: outcome pattern ``o`` by subset mask ``B``."""
    idx = np.arange(2**size)
    both = idx[:, None] & idx[None, :]
    bits = np.zeros_like(both)
    for j in range(size):
        bits += (both >> j) & 1
    return (1 - 2 * (bits & 1)).astype(np.float64)


def _robust_clustered_purity(
    source: SnapshotSource, subs: Sequence[tuple[int, ...]], attenuations: Sequence[tuple[np.ndarray, np.ndarray]],
    chunk_snapshots: int, progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated purity excluding same-setting pairs, with delete-one-setting jackknife errors (two passes,
    streamed in this process: setting runs are joined across chunks).

    Same-setting pairs are removed per Pauli: the cross-setting pair sum of ``P`` is
    ``S_P^2 - sum_g S_Pg^2``, and a setting ``g`` (bases fixed) matches one Pauli per subset
    ``B``, with ``S_Pg`` the Walsh transform of its outcome counts. The jackknife needs each
    setting's cross pair sum ``a_g = sum_{s in g} sum_t h(s, t) - sum_B w_B S_Bg^2``.
    """
    n = float(source.n_snapshots)
    kerns = [_Kernel.make(g, len(sub)) for sub, (g, _se) in zip(subs, attenuations, strict=True)]
    walsh = [_walsh(len(sub)) for sub in subs]
    counts = [np.zeros(6 ** len(sub), dtype=np.int64) for sub in subs]
    same = [np.zeros(2 ** len(sub)) for sub in subs]
    sum_l2 = 0.0
    n_runs = 0
    for lengths, hists, _ in _setting_runs(source, subs, chunk_snapshots, progress, counts, None):
        sum_l2 += float(np.sum(lengths.astype(np.float64) ** 2))
        n_runs += lengths.size
        for i, h in enumerate(hists):
            w = h.astype(np.float64) @ walsh[i]
            same[i] += np.sum(w * w, axis=0)
    pairs = n * n - sum_l2
    if n_runs < 3 or pairs <= 0:
        raise EstimationError("with repeated settings the purity estimator needs snapshots from at least 3 "
                              "different settings")
    purity = np.zeros(len(subs))
    cal = np.zeros(len(subs))
    u_tables = []
    for i, sub in enumerate(subs):
        k = len(sub)
        s_p = pauli_sums(counts[i], k)
        cross = (axiswise(s_p * s_p, [_PAULI_TO_SUPPORT] * k).astype(np.float64)
                 - same[i].reshape((2,) * k))
        terms = _subset_terms(kerns[i], cross, pairs)
        purity[i] = float(terms.sum())
        cal[i] = _calibration_sd(terms, *attenuations[i])
        u_tables.append(axiswise(kerns[i].pauli_weight * s_p, [_TO_PAULI.T] * k).reshape(-1))
    del counts
    loo: list[list[np.ndarray]] = [[] for _ in subs]
    for lengths, hists, usums in _setting_runs(source, subs, chunk_snapshots, None, None, u_tables):
        lf = lengths.astype(np.float64)
        assert usums is not None
        for i, h in enumerate(hists):
            w = h.astype(np.float64) @ walsh[i]
            a_g = usums[i] - (w * w) @ kerns[i].subset_weight
            loo[i].append((pairs * purity[i] - 2.0 * a_g) / (pairs - 2.0 * lf * (n - lf)))
    se = np.zeros(len(subs))
    for i in range(len(subs)):
        p_g = np.concatenate(loo[i])
        g_count = float(p_g.size)
        var = (g_count - 1.0) / g_count * float(np.sum((p_g - p_g.mean()) ** 2))
        se[i] = math.hypot(math.sqrt(var), cal[i])
    return purity, se, np.full(len(subs), pairs)


@dataclass(frozen=True)
class EntropyEstimates:
    """Renyi-2 entropies of subsystems, one row per subsystem.

    Attributes
    ----------
    subsystems:
        The subsystems (tuples of qubit indices).
    purity, purity_stderr:
        ``(M,)`` unbiased estimates of ``tr(rho_A^2)`` and their standard errors.
    entropy, entropy_stderr:
        ``(M,)`` ``-log_base(purity)`` and its delta-method standard error; NaN where the
        purity estimate is ``<= 0`` (see ``defined``).
    ci_low, ci_high:
        ``(M,)`` entropy interval at ``level``: the purity's normal interval, intersected with
        ``[2^-|A|, 1]``, mapped through ``-log_base``.
    defined:
        ``(M,)`` bool: False where the purity estimate is ``<= 0`` and the entropy is undefined.
    n_snapshots, n_pairs:
        Snapshots, and ordered snapshot pairs used (``N (N - 1)``, fewer when same-setting pairs
        are excluded).
    base, level:
        ``'2'`` (bits) or ``'e'`` (nats); confidence level.
    same_setting_excluded:
        True when the data repeat settings and same-setting pairs were left out.
    calibrated:
        True for robust estimates (divided by a calibration's attenuations; the standard errors
        include the calibration's).
    """

    subsystems: tuple[tuple[int, ...], ...]
    purity: np.ndarray
    purity_stderr: np.ndarray
    entropy: np.ndarray
    entropy_stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    defined: np.ndarray
    n_snapshots: int
    n_pairs: np.ndarray
    base: str
    level: float
    same_setting_excluded: bool
    calibrated: bool = False

    def __len__(self) -> int:
        return len(self.subsystems)

    @property
    def unit(self) -> str:
        """``'bits'`` or ``'nats'``."""
        return "bits" if self.base == "2" else "nats"

    def rows(self) -> list[dict[str, Any]]:
        """One dict per subsystem with plain Python values; an undefined entropy is ``None``."""
        rows = []
        for i, sub in enumerate(self.subsystems):
            ok = bool(self.defined[i])
            rows.append({
                "subsystem": ",".join(map(str, sub)),
                "size": len(sub),
                "purity": float(self.purity[i]),
                "purity_stderr": float(self.purity_stderr[i]),
                "entropy": float(self.entropy[i]) if ok else None,
                "entropy_stderr": float(self.entropy_stderr[i]) if ok else None,
                "ci_low": float(self.ci_low[i]),
                "ci_high": float(self.ci_high[i]),
                "status": "ok" if ok else "undefined: purity estimate <= 0",
            })
        return rows

    def describe(self) -> dict[str, Any]:
        """How the estimates were made (written in JSON beside the rows)."""
        return {
            "quantity": "renyi-2 entropy",
            "estimator": ("robust (calibrated) " if self.calibrated else "")
                         + "U-statistic over distinct snapshot pairs"
                         + (" from different settings" if self.same_setting_excluded else ""),
            "calibrated": self.calibrated,
            "unit": self.unit,
            "level": self.level,
            "n_snapshots": self.n_snapshots,
            "same_setting_pairs_excluded": self.same_setting_excluded,
        }

    def to_csv(self) -> str:
        """CSV text with a header row; an undefined entropy is an empty field."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for r in self.rows():
            writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        """JSON text: ``{"method": {...}, "entropies": [rows]}``."""
        return json.dumps({"method": self.describe(), "entropies": self.rows()}, indent=1)

    def write(self, path: str | os.PathLike[str], fmt: str, *, force: bool = False) -> None:
        """Write as ``'csv'`` or ``'json'`` to ``path``, atomically."""
        if fmt not in ("csv", "json"):
            raise ShadowlabError(f"format must be 'csv' or 'json' to write a file, got {fmt!r}")
        text = self.to_csv() if fmt == "csv" else self.to_json()
        with atomic_path(path, force=force) as tmp:
            tmp.write_text(text)


_COLUMNS = ("subsystem", "size", "purity", "purity_stderr", "entropy", "entropy_stderr", "ci_low", "ci_high",
            "status")


def _log_base(base: str | float) -> tuple[str, float]:
    key = str(base).strip().lower()
    if key in ("2", "2.0", "bits"):
        return "2", math.log(2.0)
    if key in ("e", "nats", str(math.e)):
        return "e", 1.0
    raise ShadowlabError(f"base must be 2 (bits) or e (nats), got {base!r}")


def require_uniform_scheme(source: object, what: str) -> None:
    """Refuse data whose recorded scheme is not uniformly random local Pauli.

    The per-qubit inverse ``3|s><s| - I`` (and the 5 / -4 / 1/2 pair table built from it) holds
    only for uniform bases; biased or deterministic schemes would give wrong numbers silently.
    """
    from shadowlab.estimate.pauli import resolve_scheme

    estimator, probabilities = resolve_scheme(source, source.n_qubits, "auto")  # type: ignore[attr-defined]
    if estimator != "mean" or probabilities is not None:
        kind = ((getattr(source, "scheme_record", None) or {}).get("kind")) or "non-uniform"
        raise ShadowlabError(f"{what} needs uniformly random local Pauli measurements; this data set was measured "
                             f"with a {kind} scheme")


def estimate_renyi2(
    source: SnapshotSource,
    subsystems: Iterable[Sequence[int]],
    *,
    base: str | float = 2,
    level: float = 0.95,
    max_size: int = DEFAULT_MAX_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    memory_limit: int = 4 * 2**30,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    calibration: Calibration | None = None,
    execution: Execution | None = None,
) -> EntropyEstimates:
    """Renyi-2 entropies ``S2(A) = -log_base tr(rho_A^2)`` of many subsystems (see the module docs).

    Parameters
    ----------
    source:
        A :class:`ShadowData` or :class:`ShadowStore` of uniformly random local-Pauli snapshots.
    subsystems:
        Qubit index lists, e.g. ``[(0,), (0, 1), (3, 7)]`` or :func:`contiguous_subsystems`.
    base:
        ``2`` (bits, default) or ``'e'`` (nats).
    level:
        Confidence level of the intervals, in (0, 1).
    max_size:
        Largest subsystem accepted (its pattern table has ``6^size`` entries).
    memory_budget:
        Bytes of count tables filled in one pass over the data (at most a quarter of
        ``execution.memory``, :func:`table_budget`); more subsystems take more passes (each
        subsystem is finished, and its table freed, right after its pass).
    memory_limit:
        Refuse, before allocating, a subsystem whose tables would need more bytes than this
        (finishing a subsystem happens here, after its pass, and is bounded by this, not by
        ``execution.memory``).
    chunk_snapshots, progress:
        Snapshots read at a time (default: derived from ``execution``; see
        :func:`~shadowlab.estimate.pauli.chunk_rows`);
        callback with each chunk's snapshot count, in each of the :func:`counting_passes` passes.
    calibration:
        A robust-shadow :class:`~shadowlab.estimate.calibration.Calibration` of the noisy
        measurement (default: none, the plain estimator). Each Pauli's pair term is divided by
        ``g_B^2`` of its support ``B`` (see "Robust purity" in the module documentation); the
        calibration must cover every subset of every subsystem (a complete locality ``>= |A|``)
        and match the data's qubit count and ensemble (:meth:`Calibration.check_data`; a
        readout-twirl mismatch is warned about). The standard errors include the calibration's.
    execution:
        Where the counting passes run and the memory bound of a chunk task (default: this
        process, 1 GiB). With independent settings the counts come from :func:`pattern_counts`
        (distributed when the execution is); with repeated settings the passes carry setting runs
        across chunks and stream in this process (see "Execution" in the module documentation).
        The estimates are identical either way.

    Raises
    ------
    ShadowlabError
        Bad subsystems, base or level; data not uniformly random local Pauli; a calibration for
        another register or ensemble.
    EstimationError
        Too few snapshots (or settings); a subset of a subsystem that the calibration lacks.

    Examples
    --------
    >>> from shadowlab.acquire.simulate import simulate
    >>> r = estimate_renyi2(simulate("ghz:4", 4000, seed=1, simulator="statevector"), [(0,), (0, 1)])
    >>> [round(float(s), 1) for s in r.entropy]
    [1.0, 1.0]
    """
    key, ln_base = _log_base(base)
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"confidence level must lie strictly between 0 and 1, got {level}")
    require_uniform_scheme(source, "the Renyi-2 estimator")
    subs = check_subsystems(subsystems, source.n_qubits, max_size=max_size)
    n = source.n_snapshots
    if n < 3:
        raise EstimationError(f"the purity U-statistic needs at least 3 snapshots; the data set has {n}")
    clustered = source.n_settings < n
    if clustered:
        from shadowlab.estimate.pauli import setting_starts

        setting_starts(source)  # refuses settings whose snapshots are not contiguous, across chunks too
    attenuations = None
    if calibration is not None:
        calibration.check_data(source)
        attenuations = [subset_attenuations(calibration, sub) for sub in subs]
    largest = max(len(sub) for sub in subs)
    need = (table_bytes(largest) + (16 * 6**largest if clustered else 0)
            + (robust_table_bytes(largest) if calibration is not None else 0))
    if need > memory_limit:
        raise ShadowlabError(f"a {largest}-qubit subsystem needs about {need / 2**30:.1f} GiB of pattern tables "
                             f"(6^{largest} patterns), over the memory limit of {memory_limit / 2**30:.1f} GiB; "
                             "use smaller subsystems or raise memory_limit")
    purity = np.zeros(len(subs))
    se = np.zeros(len(subs))
    pairs = np.zeros(len(subs))
    for group in _groups(subs, table_budget(memory_budget, execution), 24 if clustered else 8):
        gsubs = [subs[i] for i in group]
        if not clustered:
            tables = pattern_counts(source, gsubs, chunk_snapshots=chunk_snapshots, progress=progress,
                                    distinct_settings=True, execution=execution)
            for i, c in zip(group, tables, strict=True):
                if attenuations is None:
                    stats = purity_from_counts(c, len(subs[i]))
                else:
                    stats = robust_purity_from_counts(c, len(subs[i]), *attenuations[i])
                purity[i], se[i], pairs[i] = stats.purity, stats.stderr, stats.n_pairs
            del tables, c  # free this group's tables before the next group's are allocated
        elif attenuations is not None:
            step = chunk_rows(source, execution, chunk_snapshots, extra_row_bytes=_setting_run_row_bytes(gsubs),
                              fixed_bytes=16.0 * _layout(gsubs)[3], what="the robust purity with repeated settings")
            p, s, d = _robust_clustered_purity(source, gsubs, [attenuations[i] for i in group], step, progress)
            purity[group], se[group], pairs[group] = p, s, d
        else:
            step = chunk_rows(source, execution, chunk_snapshots, fixed_bytes=_run_pass_bytes(gsubs),
                              what="the purity with repeated settings")
            p, s, d = _clustered_purity(source, gsubs, step, progress)
            purity[group], se[group], pairs[group] = p, s, d
    return _finish(subs, purity, se, pairs, n, key, ln_base, level, clustered, calibration is not None)


def _run_pass_bytes(subs: Sequence[tuple[int, ...]]) -> float:
    """Fixed bytes of :func:`_run_pass`: counts and two work vectors per pattern, and the run buffers."""
    _, sizes, _, total = _layout(subs)
    return 24.0 * total + 16.0 * len(subs) * 2 ** int(sizes.max())


def _setting_run_row_bytes(subs: Sequence[tuple[int, ...]]) -> float:
    """Per-snapshot temporaries of :func:`_setting_runs`: the run index, and per subsystem the int64
    basis and outcome columns, outcome and pattern indices and weights, and (at most one run per
    snapshot) a run's int64 outcome histogram and its float64 Walsh transform."""
    return 8.0 + sum(16.0 * len(sub) + 32.0 + 16.0 * 2 ** len(sub) for sub in subs)


def _clustered_purity(
    source: SnapshotSource, subs: Sequence[tuple[int, ...]], chunk_snapshots: int, progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purity excluding same-setting pairs, with delete-one-setting jackknife standard errors (two passes,
    streamed in this process: setting runs are carried from chunk to chunk)."""
    st = _RunState.make(subs)
    _, _, _, total = _layout(subs)
    counts = np.zeros(total, dtype=np.int64)
    dummy_v = np.zeros(total)
    u0 = np.zeros(len(subs))
    acc1 = _run_pass(source, st, dummy_v, u0, u0, chunk_snapshots, counts, progress)
    n = float(source.n_snapshots)
    v = np.empty(total)
    purity = np.zeros(len(subs))
    pairs = np.zeros(len(subs))
    for i, sub in enumerate(subs):
        k = len(sub)
        sl = slice(int(st.offsets[i]), int(st.offsets[i]) + 6**k)
        c = counts[sl].astype(np.float64)
        v[sl] = kernels.kron6_apply(c, k, *_K1)
        pairs[i] = n * n - acc1[i, 2]
        if acc1[i, 3] < 3 or pairs[i] <= 0:
            raise EstimationError("with repeated settings the purity estimator needs snapshots from at least 3 "
                                  "different settings")
        purity[i] = (float(c @ v[sl]) - acc1[i, 0]) / pairs[i]
    del counts
    acc2 = _run_pass(source, st, v, purity, pairs, chunk_snapshots, None, None)
    g = acc1[:, 3]
    # Delete-one-setting jackknife: (G - 1) / G * sum_g (U_(-g) - mean)^2.
    var = (g - 1.0) / g * np.maximum(acc2[:, 5] - acc2[:, 4] ** 2 / g, 0.0)
    se = np.sqrt(var)
    return purity, se, pairs


def _finish(
    subs: Sequence[tuple[int, ...]], purity: np.ndarray, se: np.ndarray, pairs: np.ndarray, n: int, key: str,
    ln_base: float, level: float, clustered: bool, calibrated: bool = False,
) -> EntropyEstimates:
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    sizes = np.array([len(s) for s in subs], dtype=np.float64)
    floor = 2.0**-sizes
    defined = purity > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.where(defined, -np.log(np.where(defined, purity, 1.0)) / ln_base, np.nan)
        ent_se = np.where(defined, se / (np.where(defined, purity, 1.0) * ln_base), np.nan)
    p_hi = np.clip(purity + z * se, floor, 1.0)
    p_lo = np.clip(purity - z * se, floor, 1.0)
    return EntropyEstimates(
        subsystems=tuple(subs), purity=purity, purity_stderr=se, entropy=entropy, entropy_stderr=ent_se,
        ci_low=0.0 - np.log(p_hi) / ln_base, ci_high=0.0 - np.log(p_lo) / ln_base, defined=defined, n_snapshots=n,
        n_pairs=pairs, base=key, level=level, same_setting_excluded=clustered, calibrated=calibrated,
    )


__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MEMORY_BUDGET",
    "TO_CLASS_SPAN",
    "EntropyEstimates",
    "PurityStats",
    "axiswise",
    "check_subsystems",
    "contiguous_subsystems",
    "counting_passes",
    "estimate_renyi2",
    "parse_subsystems",
    "pattern_counts",
    "pauli_sums",
    "purity_from_counts",
    "robust_purity_from_counts",
    "robust_table_bytes",
    "subset_attenuations",
    "subset_masks",
    "table_budget",
    "table_bytes",
]
