"""Estimators on Bell-basis shots: ``tr(P rho)**2``, ``|tr(P rho)|`` and purities, any weight.

Every shot gives the eigenvalue ``+-1`` of ``P (x) P`` for every Pauli ``P`` at once (these
operators commute), and ``tr((P (x) P)(rho (x) rho)) = tr(P rho)**2``; likewise the SWAP of a
subsystem ``A`` has ``tr(SWAP_A rho (x) rho) = tr(rho_A**2)``. So each property is the mean of
an i.i.d. ``+-1`` variable over shots: unbiased, with standard error
``sqrt((1 - mean**2) / (S - 1))`` (the sample standard deviation of a ``+-1`` variable over
``sqrt(S)``) and one of two intervals:

* ``"wilson"`` (default): the Wilson score interval of the fraction of ``+1`` shots, mapped to
  ``[-1, 1]``; it keeps its level near the boundaries (``tr(P rho)**2 = 0`` or ``1``), where the
  normal interval collapses to a point;
* ``"hoeffding"``: ``mean +- sqrt(2 ln(2 / (1 - level)) / S)``, valid for any ``S``
  (conservative).

``|tr(P rho)|`` is ``sqrt(max(estimate, 0))`` with the interval's end points mapped the same
way (a monotone map keeps the coverage); its standard error is the interval's half-width over
the normal quantile.

Execution: every estimate is a function of integer odd-parity counts summed over chunks of
shots, computed by :func:`shadowlab.execution.map_chunks` in this process or, with a
distributed :class:`~shadowlab.execution.Execution` (``execution=``), as one Dask task per chunk
and batch of Paulis; the counts, and so the estimates, are identical either way. Data are
streamed chunk by chunk from a store; a chunk task holds, per shot, the two bit rows as read and
decoded (:data:`BELL_ROW_BYTES_PER_QUBIT` per qubit pair) and, fixed, its Paulis' arrays and
counters; the chunk size is derived from ``Execution.memory`` (or taken from
``Execution.chunk_snapshots``, refused when it does not fit).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from statistics import NormalDist

import numpy as np

from shadowlab.errors import EstimationError, QubitCountMismatchError, ShadowlabError
from shadowlab.estimate.results import Estimates
from shadowlab.execution import LOCAL, Execution, map_chunks
from shadowlab.kernels import bell_pauli_odd_counts, bell_swap_odd_counts, pack_bell
from shadowlab.paulis import PauliArrays, PauliString, PauliSum
from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.store import BellStore

BELL_INTERVALS = ("wilson", "hoeffding")
#: Default shots per chunk (a store reads whole on-disk chunks of about this many).
_CHUNK = 1 << 18
#: Bytes a chunk holds per shot and qubit pair: the ``a`` and ``c`` rows as read (2), the storage
#: layer's decoded copies of them (2) and the two packed bit planes (0.25).
BELL_ROW_BYTES_PER_QUBIT = 4.25

BellSource = BellData | BellStore | str | os.PathLike[str]
Progress = Callable[[int], None]


def open_bell(source: BellSource) -> BellData | BellStore:
    """A :class:`BellData` or :class:`BellStore` from data, a store or a store path."""
    if isinstance(source, BellData | BellStore):
        return source
    if isinstance(source, str | os.PathLike):
        return BellStore.open(source)
    raise ShadowlabError(f"expected two-copy Bell data (BellData, BellStore or a store path), got "
                         f"{type(source).__name__}; local-Pauli shadows cannot give two-copy estimates")


def _chunk_shots(data: BellData | BellStore, execution: Execution, fixed_bytes: float, what: str) -> int:
    """Shots per chunk within the execution's memory bound (default about ``_CHUNK``, whole on-disk
    chunks of a store)."""
    default = _CHUNK
    if isinstance(data, BellStore):
        default = data.chunk_snapshots * max(1, _CHUNK // data.chunk_snapshots)
    return execution.rows_per_chunk(BELL_ROW_BYTES_PER_QUBIT * data.n_qubits, fixed_bytes, default=default,
                                    what=what)


def _as_paulis(paulis: PauliSum | Sequence[PauliString | str], n: int) -> tuple[list[PauliString], tuple[str, ...]]:
    if isinstance(paulis, PauliSum):
        if paulis.n_qubits > n:
            raise QubitCountMismatchError(f"the observables are on {paulis.n_qubits} qubits but the two-copy data "
                                          f"have {n} qubit pairs")
        terms, labels = list(paulis.terms), paulis.labels
    else:
        terms = [p if isinstance(p, PauliString) else PauliString.from_label(p) for p in paulis]
        labels = tuple(t.to_sparse() for t in terms)
    for t, label in zip(terms, labels, strict=True):
        if t.qubits and t.qubits[-1] >= n:
            raise QubitCountMismatchError(f"Pauli {label!r} acts on qubit {t.qubits[-1]}, but the two-copy data have "
                                          f"{n} qubit pairs (qubits 0..{n - 1})")
    if not terms:
        raise ShadowlabError("no Paulis to estimate")
    return terms, labels


def _check(interval: str, level: float) -> float:
    if interval not in BELL_INTERVALS:
        raise ShadowlabError(f"unknown interval {interval!r}; expected one of {', '.join(BELL_INTERVALS)}")
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _means(odd: np.ndarray, signs: np.ndarray, shots: int, interval: str, level: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard error and interval of ``+-1`` variables from their odd counts."""
    if shots < 2:
        raise EstimationError(f"two-copy estimates need at least 2 shots, the data have {shots}")
    z = _check(interval, level)
    plus = (shots - odd).astype(np.float64)  # shots whose parity is even
    raw = (2.0 * plus - shots) / shots  # mean of (-1)**parity
    mean = signs * raw
    stderr = np.sqrt(np.clip(1.0 - mean * mean, 0.0, None) / (shots - 1))
    if interval == "wilson":
        p = plus / shots
        denom = 1.0 + z * z / shots
        centre = (p + z * z / (2 * shots)) / denom
        half = z * np.sqrt(p * (1 - p) / shots + z * z / (4.0 * shots * shots)) / denom
        lo_raw, hi_raw = 2.0 * (centre - half) - 1.0, 2.0 * (centre + half) - 1.0
    else:
        half = math.sqrt(2.0 * math.log(2.0 / (1.0 - level)) / shots)
        lo_raw, hi_raw = raw - half, raw + half
    lo = np.where(signs > 0, lo_raw, -hi_raw)
    hi = np.where(signs > 0, hi_raw, -lo_raw)
    return mean, stderr, np.clip(lo, -1.0, 1.0), np.clip(hi, -1.0, 1.0)


def _pauli_odd_chunk(chunk: BellData, offset: int, qubits: np.ndarray, codes: np.ndarray, weights: np.ndarray
                     ) -> np.ndarray:
    """Per Pauli of a batch, the chunk's shots with odd ``x.a + z.c`` (a :func:`map_chunks` task)."""
    odd = np.zeros(len(weights), dtype=np.int64)
    bell_pauli_odd_counts(pack_bell(chunk.a, chunk.c), qubits, codes, weights, odd)
    return odd


def pauli_odd_counts(data: BellSource, paulis: PauliSum | Sequence[PauliString | str], *,
                     execution: Execution | None = None, progress: Progress | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """Per Pauli: shots with odd ``x.a + z.c``, the sign ``(-1)**#Y``, the shot count and labels.

    ``execution``: where the counting runs and the memory bound of a chunk task (default: this
    process, 1 GiB). The Paulis are split into batches whose arrays and counters take at most
    a quarter of the bound, each (chunk, batch) a task; the counts are exact integer sums, the
    same however the work is split. ``progress`` is called with the shots done.
    """
    data = open_bell(data)
    ex = execution or LOCAL
    terms, labels = _as_paulis(paulis, data.n_qubits)
    arrays = PauliArrays.from_paulis(terms)
    signs = np.array([-1.0 if sum(1 for c in t.codes if c == 1) % 2 else 1.0 for t in terms])
    m = len(terms)
    # Per Pauli of a batch: its qubits and codes (int64 each per letter), weight and counter.
    per_term = 16.0 * arrays.qubits.shape[1] + 16.0
    batch = int(min(m, max(1, ex.memory_bytes // 4 // per_term)))
    starts = range(0, m, batch)
    step = _chunk_shots(data, ex, batch * per_term + 8.0 * m, f"the two-copy estimates of {m} Pauli(s)")
    odd = np.zeros(m, dtype=np.int64)

    def combine(_chunk: int, b: int, part: np.ndarray) -> None:
        odd[starts[b]:starts[b] + part.shape[0]] += part  # integer sums: exact in any completion order

    batches = [(arrays.qubits[a:a + batch], arrays.codes[a:a + batch], arrays.weights[a:a + batch]) for a in starts]
    map_chunks(data, _pauli_odd_chunk, chunk_snapshots=step, combine=combine, batches=batches, execution=ex,
               progress=progress)
    return odd, signs, data.n_shots, labels


def estimate_pauli_squares(data: BellSource, paulis: PauliSum | Sequence[PauliString | str], *,
                           level: float = 0.95, interval: str = "wilson", execution: Execution | None = None,
                           progress: Progress | None = None) -> Estimates:
    """Unbiased estimates of ``tr(P rho)**2`` for every Pauli in ``paulis``, from Bell shots.

    Parameters
    ----------
    data:
        Bell shots (:class:`BellData`, :class:`BellStore` or a store path).
    paulis:
        Pauli strings of any weight (labels, :class:`PauliString` or a :class:`PauliSum`, whose
        coefficients are ignored), on at most the data's qubit count.
    level, interval:
        Confidence level and ``"wilson"`` or ``"hoeffding"`` (see the module documentation).
    execution, progress:
        Where the pass runs and its memory bound (see :func:`pauli_odd_counts`); a callback with
        the shots done.

    Returns
    -------
    Estimates
        Estimator ``"bell"``; ``n_matched`` is the number of shots (every shot informs every Pauli).

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab.twocopy.simulate import sample_bell_state
    >>> d = sample_bell_state(np.array([1.0, 0.0, 0.0, 0.0]), 100, np.random.default_rng(0))  # |00>
    >>> estimate_pauli_squares(d, ["Z0", "Z0 Z1", "X1"]).estimate.tolist()[:2]
    [1.0, 1.0]
    """
    odd, signs, shots, labels = pauli_odd_counts(data, paulis, execution=execution, progress=progress)
    mean, se, lo, hi = _means(odd, signs, shots, interval, level)
    return Estimates(labels, mean, se, lo, hi, np.full(len(labels), shots, np.int64), shots, "bell", interval, level)


def abs_from_squares(squares: Estimates) -> Estimates:
    """``|tr(P rho)|`` from estimates of ``tr(P rho)**2``: square roots of the clipped estimate and ends."""
    z = NormalDist().inv_cdf(0.5 + squares.level / 2.0)
    est = np.sqrt(np.clip(squares.estimate, 0.0, None))
    lo = np.sqrt(np.clip(squares.ci_low, 0.0, None))
    hi = np.sqrt(np.clip(squares.ci_high, 0.0, None))
    return Estimates(squares.labels, est, (hi - lo) / (2.0 * z), lo, hi, squares.n_matched, squares.n_snapshots,
                     "bell_abs", squares.interval, squares.level)


def estimate_abs_paulis(data: BellSource, paulis: PauliSum | Sequence[PauliString | str], *,
                        level: float = 0.95, interval: str = "wilson", execution: Execution | None = None,
                        progress: Progress | None = None) -> Estimates:
    """Estimates of ``|tr(P rho)|`` (see :func:`abs_from_squares`); biased upward near 0, by design.

    The interval is exact in coverage (the square-root map is monotone); the point estimate
    ``sqrt(max(m, 0))`` of a mean ``m`` near 0 is of order ``S**-1/4``, so decisions should use
    the interval or :func:`estimate_pauli_squares` directly.
    """
    return abs_from_squares(estimate_pauli_squares(data, paulis, level=level, interval=interval, execution=execution,
                                                   progress=progress))


def _subsystems(subsystems: Iterable[Sequence[int]] | None, n: int) -> tuple[list[tuple[int, ...]], tuple[str, ...]]:
    subs = [tuple(range(n))] if subsystems is None else [tuple(int(q) for q in s) for s in subsystems]
    if not subs:
        raise ShadowlabError("no subsystems given")
    labels = []
    for s in subs:
        if not s:
            raise ShadowlabError("a subsystem must contain at least one qubit")
        if len(set(s)) != len(s):
            raise ShadowlabError(f"subsystem {list(s)} repeats a qubit")
        bad = [q for q in s if q < 0 or q >= n]
        if bad:
            raise QubitCountMismatchError(f"subsystem {list(s)} names qubit(s) {bad}, but the two-copy data have {n} "
                                          f"qubit pairs (qubits 0..{n - 1})")
        labels.append("all" if len(s) == n and subsystems is None else ",".join(map(str, s)))
    return subs, tuple(labels)


def _swap_odd_chunk(chunk: BellData, offset: int, qubits: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per subsystem, the chunk's shots whose SWAP eigenvalue is -1 (a :func:`map_chunks` task)."""
    odd = np.zeros(len(offsets) - 1, dtype=np.int64)
    bell_swap_odd_counts(pack_bell(chunk.a, chunk.c), qubits, offsets, odd)
    return odd


def estimate_purities(data: BellSource, subsystems: Iterable[Sequence[int]] | None = None, *,
                      level: float = 0.95, interval: str = "wilson", execution: Execution | None = None,
                      progress: Progress | None = None) -> Estimates:
    """Unbiased estimates of the purity ``tr(rho_A**2)`` of each subsystem ``A`` (default: the whole state).

    The SWAP of ``A`` has eigenvalue ``(-1)**(sum_{k in A} a_k c_k)`` on a shot, so one data set
    gives every subsystem's purity; labels are the qubit lists (``"all"`` for the whole state).
    ``execution`` and ``progress`` as for :func:`pauli_odd_counts` (one batch of subsystems).

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab.twocopy.simulate import sample_bell_state
    >>> d = sample_bell_state(np.eye(2) / 2, 4000, np.random.default_rng(0))
    >>> bool(abs(estimate_purities(d).estimate[0] - 0.5) < 0.05)   # 3.6 standard errors
    True
    """
    data = open_bell(data)
    subs, labels = _subsystems(subsystems, data.n_qubits)
    qubits = np.array([q for s in subs for q in s], dtype=np.int64)
    offsets = np.zeros(len(subs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in subs])
    ex = execution or LOCAL
    # The task's qubit lists, offsets and counters, and the totals here.
    step = _chunk_shots(data, ex, 8.0 * qubits.size + 24.0 * len(subs) + 8.0,
                        f"the purities of {len(subs)} subsystem(s)")
    odd = np.zeros(len(subs), dtype=np.int64)

    def combine(_chunk: int, _batch: int, part: np.ndarray) -> None:
        np.add(odd, part, out=odd)  # integer sums: exact in any completion order

    map_chunks(data, _swap_odd_chunk, chunk_snapshots=step, combine=combine, batches=[(qubits, offsets)],
               execution=ex, progress=progress)
    shots = data.n_shots
    mean, se, lo, hi = _means(odd, np.ones(len(subs)), shots, interval, level)
    return Estimates(labels, mean, se, lo, hi, np.full(len(labels), shots, np.int64), shots, "bell_swap", interval,
                     level)


def renyi2_from_purities(purities: Estimates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renyi-2 entropies ``-log2(purity)`` (bits) with the interval mapped through the same map.

    Returns ``(entropy, ci_low, ci_high)``; an entropy is ``nan`` where the purity estimate is
    ``<= 0`` (too few shots to say), an upper end is ``inf`` where the purity interval
    reaches 0 or below, and a lower end is ``nan`` where the whole purity interval is ``<= 0``.
    Callers print these as "undefined" / "unbounded", never as numbers.
    """
    est = purities.estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = np.where(est > 0, -np.log2(np.where(est > 0, est, 1.0)), np.nan)
        high = purities.ci_high
        lo = np.where(high > 0, -np.log2(np.where(high > 0, np.minimum(high, 1.0), 1.0)), np.nan)
        hi = np.where(purities.ci_low > 0, -np.log2(np.where(purities.ci_low > 0, purities.ci_low, 1.0)), np.inf)
    return ent + 0.0, lo + 0.0, hi + 0.0  # + 0.0 turns -log2(1) = -0.0 into 0.0
