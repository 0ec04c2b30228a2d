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
the normal quantile. Data are streamed chunk by chunk from a store; memory is one chunk plus the
counters.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from statistics import NormalDist

import numpy as np

from shadowlab.errors import EstimationError, QubitCountMismatchError, ShadowlabError
from shadowlab.estimate.results import Estimates
from shadowlab.kernels import bell_pauli_odd_counts, bell_swap_odd_counts, pack_bell
from shadowlab.paulis import PauliArrays, PauliString, PauliSum
from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.store import BellStore

BELL_INTERVALS = ("wilson", "hoeffding")
_CHUNK = 1 << 18

BellSource = BellData | BellStore | str | os.PathLike[str]


def open_bell(source: BellSource) -> BellData | BellStore:
    """A :class:`BellData` or :class:`BellStore` from data, a store or a store path."""
    if isinstance(source, BellData | BellStore):
        return source
    if isinstance(source, str | os.PathLike):
        return BellStore.open(source)
    raise ShadowlabError(f"expected two-copy Bell data (BellData, BellStore or a store path), got "
                         f"{type(source).__name__}; local-Pauli shadows cannot give two-copy estimates")


def _chunks(data: BellData | BellStore) -> Iterator[BellData]:
    """One chunk of about ``_CHUNK`` shots at a time (whole on-disk chunks for a store)."""
    if isinstance(data, BellStore):
        step = data.chunk_snapshots * max(1, _CHUNK // data.chunk_snapshots)
        for _, chunk in data.iter_chunks(step):
            yield chunk
    else:
        for start in range(0, data.n_shots, _CHUNK):
            yield BellData(data.a[start:start + _CHUNK], data.c[start:start + _CHUNK])


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


def pauli_odd_counts(data: BellSource, paulis: PauliSum | Sequence[PauliString | str]
                     ) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """Per Pauli: shots with odd ``x.a + z.c``, the sign ``(-1)**#Y``, the shot count and labels."""
    data = open_bell(data)
    terms, labels = _as_paulis(paulis, data.n_qubits)
    arrays = PauliArrays.from_paulis(terms)
    signs = np.array([-1.0 if sum(1 for c in t.codes if c == 1) % 2 else 1.0 for t in terms])
    odd = np.zeros(len(terms), dtype=np.int64)
    shots = 0
    for chunk in _chunks(data):
        planes = pack_bell(chunk.a, chunk.c)
        bell_pauli_odd_counts(planes, arrays.qubits, arrays.codes, arrays.weights, odd)
        shots += chunk.n_shots
    return odd, signs, shots, labels


def estimate_pauli_squares(data: BellSource, paulis: PauliSum | Sequence[PauliString | str], *,
                           level: float = 0.95, interval: str = "wilson") -> Estimates:
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
    odd, signs, shots, labels = pauli_odd_counts(data, paulis)
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
                        level: float = 0.95, interval: str = "wilson") -> Estimates:
    """Estimates of ``|tr(P rho)|`` (see :func:`abs_from_squares`); biased upward near 0, by design.

    The interval is exact in coverage (the square-root map is monotone); the point estimate
    ``sqrt(max(m, 0))`` of a mean ``m`` near 0 is of order ``S**-1/4``, so decisions should use
    the interval or :func:`estimate_pauli_squares` directly.
    """
    return abs_from_squares(estimate_pauli_squares(data, paulis, level=level, interval=interval))


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


def estimate_purities(data: BellSource, subsystems: Iterable[Sequence[int]] | None = None, *,
                      level: float = 0.95, interval: str = "wilson") -> Estimates:
    """Unbiased estimates of the purity ``tr(rho_A**2)`` of each subsystem ``A`` (default: the whole state).

    The SWAP of ``A`` has eigenvalue ``(-1)**(sum_{k in A} a_k c_k)`` on a shot, so one data set
    gives every subsystem's purity; labels are the qubit lists (``"all"`` for the whole state).

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
    odd = np.zeros(len(subs), dtype=np.int64)
    shots = 0
    for chunk in _chunks(data):
        bell_swap_odd_counts(pack_bell(chunk.a, chunk.c), qubits, offsets, odd)
        shots += chunk.n_shots
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
