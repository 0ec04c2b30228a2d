"""Fidelity with a pure target from global-Clifford shadows (Huang, Kueng, Preskill 2020).

For a snapshot ``(U, b)`` the shadow is ``rho_hat = (2^n + 1) U^dagger |b><b| U - 1`` and the
single-snapshot estimate of ``F = <psi| rho |psi>`` is

    ``f(U, b) = (2^n + 1) |<b| U |psi>|^2 - 1``.

It is unbiased, and its variance is at most ``3`` for every ``n`` (the shadow norm of a rank-one
projector under the Clifford ensemble), so ``N`` snapshots give a standard error of at most
``sqrt(3 / N)`` independent of the number of qubits.

Targets
-------
* :class:`StabilizerTarget` (a stim circuit or tableau, any size): ``|<b|U|psi>|^2`` is ``0`` or
  ``2^-k`` and is computed exactly by stabilizer algebra: the target is prepared in a stim
  ``TableauSimulator``, ``U`` applied with ``do_tableau``, and each qubit in turn is peeked in the Z
  basis: a deterministic qubit must agree with ``b_q`` (else the overlap is 0), a random one
  contributes a factor ``1/2`` and is post-selected on ``b_q``. No ``2^n``-sized object is built;
  ``f = 2^(n-k) + 2^-k - 1`` is formed from the exact ``k`` (a clear error is raised in the
  astronomically unlikely case that ``2^(n-k)`` overflows a float).
* :class:`StatevectorTarget` (``n <= 16``): ``<b|U|psi>`` by applying ``U`` (as H/S/CX gates) to the
  vector; qubit 0 is the most significant bit of the index.

Estimators: ``mean`` (the sample mean; standard error = sample standard deviation / sqrt(N)) or
``mom`` (median of ``n_blocks`` block means, standard error ``sqrt(pi / 2)`` times that of the mean, as in
:mod:`shadowlab.estimate.pauli`); the
interval is normal, ``estimate +- z se`` with ``z`` the two-sided quantile of ``level``.

Robust fidelity (noisy measurements)
------------------------------------
For the global Clifford ensemble, any gate-independent noise channel ``Lambda`` acting after the
random Clifford and before (or as part of) the computational-basis readout, including
asymmetric and correlated readout flips, is twirled by the Clifford group (a unitary 2-design)
into a depolarizing form (Chen, Yu, Zeng, Flammia, PRX Quantum 2, 030348 (2021)): the noisy
shadow channel is

    ``M(rho) = f rho + (1 - f) tr(rho) I / 2^n``,   ideal ``f = 1 / (2^n + 1)``.

With ``x = |<b|U|psi>|^2`` and ``F = <psi|rho|psi>``: ``E[x] = f F + (1 - f) / 2^n``, so

    ``F = (E[x] - 2^-n) / f + 2^-n``,

and the ideal estimator ``(2^n + 1) x - 1`` is this formula with the ideal ``f`` (so under noise
it estimates ``(2^n + 1) f F + ...``, biased towards ``2^-n``). :func:`calibrate_clifford` measures
``f`` on ``|0...0>`` (``F = 1``): ``f_hat = (mean x0 - 2^-n) / (1 - 2^-n)``, standard error
``s(x0) / sqrt(N0) / (1 - 2^-n)``. With a calibration, the single-snapshot values are
``(x - 2^-n) / f_hat + 2^-n`` and the standard error of their mean gains the calibration's term
by the delta method (independent data): ``se^2 = se_data^2 + ((F_hat - 2^-n) se_f / f_hat)^2``.
A calibration whose ``f_hat`` is within :data:`RESOLVED_STDERRS` standard errors of zero is
refused (the ratio would be meaningless), with the number of calibration snapshots needed.

For independent readout flips ``p01_i``, ``p10_i`` and a measurement-layer flip ``q = 2p/3``
(:class:`~shadowlab.acquire.noise.NoiseModel`), the Pauli transfer matrix of the noisy
measure-and-prepare channel has entry ``prod_{i in A} lambda_i`` on ``Z_A`` with
``lambda_i = (1 - 2q)(1 - p01_i - p10_i)`` and the twirl gives (:func:`predicted_shadow_factor`)

    ``f = (prod_i (1 + lambda_i) - 1) / (4^n - 1)``.

Noise in the *state preparation* is not measurement noise: it changes ``rho`` and hence ``F``,
as it should. Values are formed in floating point: robust estimates need ``n`` up to about 500.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.clifford_shadows import MAX_STATEVECTOR_QUBITS, apply_tableau_statevector
from shadowlab.atomic import atomic_path
from shadowlab.data.clifford_store import ENSEMBLE_GLOBAL_CLIFFORD, CliffordSnapshots, CliffordStore
from shadowlab.data.dataset import recorded_provenance, recorded_state
from shadowlab.errors import EstimationError, QubitCountMismatchError, ShadowlabError, StateError
from shadowlab.estimate.calibration import FORMAT as CALIBRATION_FORMAT
from shadowlab.estimate.calibration import RESOLVED_STDERRS, CalibrationWarning, read_calibration_document
from shadowlab.estimate.results import Estimates
from shadowlab.execution import LOCAL, Execution, map_chunks

FIDELITY_ESTIMATORS = ("mean", "mom")
#: ``"format"`` of a calibration file (shared with local-Pauli calibrations; ``"ensemble"`` tells them apart).
#: Version of the global-Clifford calibration document.
CLIFFORD_CALIBRATION_VERSION = 1

Source = CliffordStore | CliffordSnapshots | str | os.PathLike[str]


@dataclass(frozen=True)
class StabilizerTarget:
    """A pure stabilizer target ``|psi> = C |0...0>``, given by a stim tableau of ``C``.

    Build it with :func:`make_target` (from a circuit, a tableau, a spec or a ``.stim`` file).
    """

    tableau: stim.Tableau
    description: str = "stabilizer state"

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return len(self.tableau)

    def simulator(self) -> stim.TableauSimulator:
        """A fresh simulator holding ``|psi>``."""
        sim = stim.TableauSimulator()
        sim.set_num_qubits(self.n_qubits)
        sim.do_tableau(self.tableau, list(range(self.n_qubits)))
        return sim


@dataclass(frozen=True)
class StatevectorTarget:
    """A pure target given as a normalized ``(2^n,)`` complex vector (qubit 0 = most significant bit)."""

    statevector: np.ndarray
    description: str = "state vector"

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return int(self.statevector.size).bit_length() - 1


Target = StabilizerTarget | StatevectorTarget


def make_target(target: Any, *, description: str | None = None) -> Target:
    """Resolve a fidelity target.

    Parameters
    ----------
    target:
        A :class:`stim.Circuit` (unitary Clifford gates only) or :class:`stim.Tableau`; a built-in
        Clifford spec (``ghz:100``, ``cluster:50``, ``cluster2d:10x10``, ``toric:3``); a path to a ``.stim``
        circuit or a ``.npy`` state vector; a state vector array; or an existing target.

    Raises
    ------
    StateError
        If a circuit measures, resets or has noise, a ``.stim`` file holds a non-Clifford or unknown
        gate, or a state vector is invalid or larger than 16 qubits.
    """
    if isinstance(target, StabilizerTarget | StatevectorTarget):
        return target
    if isinstance(target, stim.Tableau):
        return StabilizerTarget(target, description or "stim tableau")
    if isinstance(target, stim.Circuit):
        from shadowlab.acquire.stim_sampler import check_state_circuit

        check_state_circuit(target, allow_noise=False)
        try:
            tab = stim.Tableau.from_circuit(target)
        except ValueError as exc:
            raise StateError(f"the target circuit is not a unitary Clifford circuit: {exc}") from exc
        return StabilizerTarget(tab, description or "stim circuit")
    if isinstance(target, str | os.PathLike):
        text = os.fspath(target)
        if text.endswith(".npy"):
            path = Path(text)
            if not path.is_file():
                raise ShadowlabError(f"{path}: no such file")
            try:
                vec = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise StateError(f"{path}: cannot read a state vector from this .npy file: {exc}") from exc
            return make_target(vec, description=description or text)
        if text.endswith(".stim"):
            path = Path(text)
            if not path.is_file():
                raise ShadowlabError(f"{path}: no such file")
            try:
                circuit = stim.Circuit(path.read_text())
            except ValueError as exc:
                raise StateError(f"{path}: not a stabilizer-state circuit stim can read (stim circuits hold "
                                 f"Clifford gates only; give a non-stabilizer target as a .npy state vector): "
                                 f"{exc}") from exc
            return make_target(circuit, description=description or text)
        if Path(text).suffix:
            raise ShadowlabError(f"{text}: unsupported target; expected a Clifford spec (ghz:N, cluster:N, "
                                 "cluster2d:RxC, toric:L, zero:N), a .stim circuit or a .npy state vector")
        from shadowlab.acquire.clifford_shadows import calibration_state_size

        zero = calibration_state_size(text)
        if zero is not None:
            return StabilizerTarget(stim.Tableau(zero), description or text)
        from shadowlab.acquire.clifford_states import builtin_clifford

        return make_target(builtin_clifford(text), description=description or text)
    from shadowlab.acquire.statevector import validate_statevector

    psi, n = validate_statevector(target, what=description or "target")
    if n > MAX_STATEVECTOR_QUBITS:
        raise StateError(f"{description or 'target'}: a {n}-qubit state vector is beyond the fidelity estimator's "
                         f"limit of {MAX_STATEVECTOR_QUBITS} qubits; give a stabilizer target as a stim circuit")
    return StatevectorTarget(psi, description or "state vector")


def stabilizer_overlap_exponent(sim: stim.TableauSimulator, b: np.ndarray) -> int | None:
    """``k`` with ``|<b|phi>|^2 = 2^-k`` for the stabilizer state ``|phi>`` in ``sim``, or None if it is 0.

    ``sim`` is post-selected on ``b`` as a side effect (pass a copy). ``b[q]`` = 1 means ``|1>``.
    """
    k = 0
    for q in range(len(b)):
        v = sim.peek_z(q)
        bit = bool(b[q])
        if v == 0:
            k += 1
            sim.postselect_z(q, desired_value=bit)
        elif (v < 0) != bit:
            return None
    return k


def stabilizer_overlap(target: StabilizerTarget, u: stim.Tableau, b: np.ndarray) -> float:
    """``|<b| U |psi>|^2`` by stabilizer algebra (0 or a power of 1/2)."""
    sim = target.simulator()
    sim.do_tableau(u, list(range(target.n_qubits)))
    k = stabilizer_overlap_exponent(sim, b)
    return 0.0 if k is None else math.ldexp(1.0, -k)


def statevector_overlap(psi: np.ndarray, u: stim.Tableau, b: np.ndarray) -> float:
    """``|<b| U |psi>|^2`` by applying ``U`` to the vector (qubit 0 = most significant bit)."""
    amp = apply_tableau_statevector(psi, u)
    index = int("".join(str(int(x)) for x in b), 2)
    return float(abs(amp[index]) ** 2)


def _value_from_exponent(n: int, k: int | None) -> float:
    if k is None:
        return -1.0
    try:
        return math.ldexp(1.0, n - k) + math.ldexp(1.0, -k) - 1.0
    except OverflowError:
        raise EstimationError(f"a snapshot has overlap 2^-{k} with the {n}-qubit target, whose estimate "
                              f"2^{n - k} overflows a float; the data are not random Cliffords?") from None


def _check_target(target: Target, n_qubits: int) -> None:
    if target.n_qubits != n_qubits:
        raise QubitCountMismatchError(f"target: the target has {target.n_qubits} qubits but the snapshots have "
                                      f"{n_qubits}; give a target on {n_qubits} qubits")


def _overlaps(target: Target, snapshots: Iterable[tuple[stim.Tableau, np.ndarray]], n_qubits: int
              ) -> Iterator[int | float | None]:
    """Per snapshot: the exponent ``k`` of ``|<b|U|psi>|^2 = 2^-k`` (``None`` for 0) for stabilizer
    targets, else the overlap ``|<b|U|psi>|^2`` itself."""
    _check_target(target, n_qubits)
    if isinstance(target, StabilizerTarget):
        base = target.simulator()
        targets = list(range(n_qubits))
        for u, b in snapshots:
            sim = base.copy()
            sim.do_tableau(u, targets)
            yield stabilizer_overlap_exponent(sim, b)
    else:
        for u, b in snapshots:
            yield statevector_overlap(target.statevector, u, b)


def snapshot_values(target: Target, snapshots: Iterable[tuple[stim.Tableau, np.ndarray]], n_qubits: int
                    ) -> np.ndarray:
    """Single-snapshot fidelity estimates ``(2^n + 1) |<b|U|psi>|^2 - 1`` as a float64 array."""
    if isinstance(target, StabilizerTarget):
        # From the exact exponent: (2^n + 1) 2^-k would overflow before the subtraction at large n.
        values = [_value_from_exponent(n_qubits, k) for k in _overlaps(target, snapshots, n_qubits)]
    else:
        scale = 2.0**n_qubits + 1.0
        values = [scale * x - 1.0 for x in _overlaps(target, snapshots, n_qubits)]
    return np.asarray(values, dtype=np.float64)


def snapshot_overlaps(target: Target, snapshots: Iterable[tuple[stim.Tableau, np.ndarray]], n_qubits: int
                      ) -> np.ndarray:
    """``x = |<b|U|psi>|^2`` for each snapshot ``(U, b)``, as a float64 array (exact for stabilizer targets)."""
    if isinstance(target, StabilizerTarget):
        values = [0.0 if k is None else math.ldexp(1.0, -k) for k in _overlaps(target, snapshots, n_qubits)]
    else:
        values = list(_overlaps(target, snapshots, n_qubits))
    return np.asarray(values, dtype=np.float64)


def _open_source(source: Source) -> CliffordStore | CliffordSnapshots:
    if isinstance(source, str | os.PathLike):
        return CliffordStore.open(source)
    if not isinstance(source, CliffordStore | CliffordSnapshots):
        raise ShadowlabError("expected a global-Clifford store, its path, or CliffordSnapshots; got "
                             f"{type(source).__name__}")
    return source


# -- streaming: per-chunk moments of the single-snapshot values ------------------------------------------
#: Default snapshots per chunk (each snapshot costs a stabilizer or state-vector simulation).
DEFAULT_CHUNK_SNAPSHOTS = 1024
#: What a chunk task computes per snapshot: the ideal fidelity value, the overlap ``|<b|U|psi>|^2``,
#: or the robust value from the overlap.
_VALUE, _OVERLAP, _ROBUST = "value", "overlap", "robust"


def clifford_row_bytes(n_qubits: int) -> float:
    """Bytes a chunk holds per snapshot: the packed tableau, signs and outcomes as read and the
    storage layer's decoded copies of them, the unpacked outcomes, and two float64 values."""
    nb = -(-n_qubits // 8)
    return 2.0 * (4 * n_qubits * nb + 3 * nb) + n_qubits + 16.0


def target_bytes(target: Target) -> float:
    """Bytes a chunk task holds for the target: a few copies of a state vector (complex128), or
    the stabilizer simulator's tableau and its per-snapshot copy."""
    if isinstance(target, StatevectorTarget):
        return 4.0 * 16.0 * target.statevector.size
    return 16.0 * target.n_qubits**2


def _robust_values(x: np.ndarray, n_qubits: int, f_hat: float) -> np.ndarray:
    """``(x - 2^-n) / f_hat + 2^-n``, refusing values that overflow a float."""
    floor = math.ldexp(1.0, -n_qubits)
    with np.errstate(over="ignore"):
        values = (x - floor) / f_hat + floor
    if not np.all(np.isfinite(values)):
        raise EstimationError(f"robust fidelity values overflow a float for {n_qubits} qubits with f = "
                              f"{f_hat:.3g}; the robust estimator supports up to about 500 qubits")
    return values


def _chunk_values(chunk: CliffordSnapshots, target: Target, kind: str, f_hat: float) -> np.ndarray:
    """The chunk's per-snapshot values of ``kind`` (:data:`_VALUE`, :data:`_OVERLAP` or :data:`_ROBUST`)."""
    n = chunk.n_qubits
    if kind == _VALUE:
        return snapshot_values(target, chunk, n)
    x = snapshot_overlaps(target, chunk, n)
    return x if kind == _OVERLAP else _robust_values(x, n, f_hat)


def _segments(values: np.ndarray, offset: int, cuts: np.ndarray) -> np.ndarray:
    """``(S, 4)`` rows ``(first snapshot, count, mean, sum of squared deviations)`` of ``values``
    (snapshots ``offset ...``) cut at the global indices ``cuts`` that fall inside."""
    m = values.size
    inner = cuts[(cuts > offset) & (cuts < offset + m)] - offset
    edges = np.concatenate([[0], inner, [m]]).astype(np.int64)
    rows = np.empty((edges.size - 1, 4))
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        part = values[a:b]
        mean = part.mean()
        rows[i] = (offset + a, b - a, mean, np.sum((part - mean) ** 2))
    return rows


def _moments_chunk(chunk: CliffordSnapshots, offset: int, target: Target, kind: str, f_hat: float,
                   cuts: np.ndarray) -> np.ndarray:
    """A :func:`map_chunks` task: the segment moments (:func:`_segments`) of one chunk's values."""
    return _segments(_chunk_values(chunk, target, kind, f_hat), offset, cuts)


def _merge(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float, float]:
    """Count, mean and sum of squared deviations of two adjacent groups (Chan, Golub and LeVeque's
    pairwise update: no cancellation, unlike sums of squares)."""
    na, ma, qa = a
    nb, mb, qb = b
    if na == 0:
        return b
    n = na + nb
    d = mb - ma
    return n, ma + d * nb / n, qa + qb + d * d * na * nb / n


@dataclass(frozen=True)
class ValueMoments:
    """Moments of single-snapshot values over the segments between cut points.

    Segment ``i`` holds snapshots ``starts[i] : starts[i] + counts[i]`` (contiguous, in order);
    ``means[i]`` and ``m2[i]`` are the mean of its values and their sum of squared deviations.
    Segments are the intervals between the requested cut points (block bounds, points of a
    running estimate), so block and prefix statistics need no per-snapshot values. Memory: 32
    bytes per segment, whatever the number of snapshots.
    """

    starts: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    m2: np.ndarray

    @property
    def n_snapshots(self) -> int:
        """Snapshots covered."""
        return int(self.counts.sum())

    def _segment(self, i: int) -> tuple[float, float, float]:
        return float(self.counts[i]), float(self.means[i]), float(self.m2[i])

    def total(self) -> tuple[int, float, float]:
        """``(count, mean, sum of squared deviations)`` of all values, merged in snapshot order."""
        acc = (0.0, 0.0, 0.0)
        for i in range(self.counts.size):
            acc = _merge(acc, self._segment(i))
        return int(acc[0]), acc[1], acc[2]

    def block_means(self, bounds: np.ndarray) -> np.ndarray:
        """Mean of the values of each block ``bounds[j] : bounds[j + 1]`` (bounds among the cut points)."""
        block = np.searchsorted(bounds, self.starts, side="right") - 1
        acc = [(0.0, 0.0, 0.0)] * (len(bounds) - 1)
        for i, j in enumerate(block):
            acc[j] = _merge(acc[j], self._segment(i))
        return np.array([a[1] for a in acc])

    def running(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(k, mean, variance)`` of the first ``k`` values at the end of each segment (variance
        with ``k - 1`` in the denominator; 0 for ``k = 1``)."""
        acc = (0.0, 0.0, 0.0)
        out = np.empty((self.counts.size, 3))
        for i in range(self.counts.size):
            acc = _merge(acc, self._segment(i))
            out[i] = acc
        k = out[:, 0]
        return k.astype(np.int64), out[:, 1], out[:, 2] / np.maximum(k - 1.0, 1.0)


class _SegmentFold:
    """Joins per-chunk segments in snapshot order as results arrive (in any order), merging a
    segment into the previous one unless it starts at a cut point; the result is the same
    however the chunks were cut, up to rounding, and bit for bit the same in any arrival order."""

    def __init__(self, cuts: np.ndarray) -> None:
        self._cuts = {int(c) for c in cuts} | {0}
        self._waiting: dict[int, np.ndarray] = {}
        self._next = 0
        self._rows: list[list[float]] = []

    def add(self, chunk: int, rows: np.ndarray) -> None:
        # Float partial results are reduced in chunk order only: results that arrive early wait.
        self._waiting[chunk] = rows
        while self._next in self._waiting:
            for start, count, mean, m2 in self._waiting.pop(self._next):
                if self._rows and int(start) not in self._cuts:
                    last = self._rows[-1]
                    last[1:] = _merge((last[1], last[2], last[3]), (count, mean, m2))
                else:
                    self._rows.append([start, count, mean, m2])
            self._next += 1

    def moments(self) -> ValueMoments:
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, 4)
        return ValueMoments(rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2], rows[:, 3])


def _stream_moments(src: CliffordStore | CliffordSnapshots, tgt: Target, kind: str, f_hat: float,
                    cuts: Iterable[int], execution: Execution | None, progress: Callable[[int], None] | None,
                    what: str) -> ValueMoments:
    """Moments of the per-snapshot values of ``kind`` between ``cuts``, chunk by chunk (distributed
    when ``execution`` is); the target must match the data (:func:`_value_kind`)."""
    ex = execution or LOCAL
    cut_points = np.unique(np.asarray(list(cuts), dtype=np.int64))
    # The target, and the segment rows a chunk returns (one per cut point at most, plus one).
    fixed = target_bytes(tgt) + 32.0 * (cut_points.size + 1)
    step = ex.rows_per_chunk(clifford_row_bytes(src.n_qubits), fixed, default=DEFAULT_CHUNK_SNAPSHOTS, what=what)
    fold = _SegmentFold(cut_points)
    map_chunks(src, _moments_chunk, chunk_snapshots=step, combine=lambda ci, _b, rows: fold.add(ci, rows),
               batches=[(tgt, kind, f_hat, cut_points)], execution=ex, progress=progress)
    return fold.moments()


def fidelity_values(
    source: Source,
    target: Any,
    *,
    calibration: CliffordCalibration | str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Per-snapshot fidelity estimates for every snapshot of ``source`` (a store, its path, or snapshots).

    Without a calibration: ``(2^n + 1) x - 1`` with ``x = |<b|U|psi>|^2``. With one (a
    :class:`CliffordCalibration` or its file): the robust ``(x - 2^-n) / f_hat + 2^-n`` (see the
    module documentation); summarize them with :func:`summarize` and the *same* calibration.
    The result holds 8 bytes per snapshot and is computed in this process; for memory bounded
    independently of the data size (and distributed runs) use :func:`fidelity_moments`.

    Raises
    ------
    QubitCountMismatchError
        If the target or the calibration has another qubit count than the data.
    ShadowlabError
        If ``calibration`` is a local-Pauli calibration (another measurement ensemble).
    """
    src = _open_source(source)
    tgt = make_target(target)
    kind, f_hat = _value_kind(src, tgt, _resolve_calibration(calibration))
    parts = []
    for _, chunk in src.iter_chunks(DEFAULT_CHUNK_SNAPSHOTS):
        parts.append(_chunk_values(chunk, tgt, kind, f_hat))
        if progress is not None:
            progress(chunk.n_snapshots)
    return np.concatenate(parts) if parts else np.zeros(0)


def _value_kind(src: CliffordStore | CliffordSnapshots, tgt: Target, cal: CliffordCalibration | None
                ) -> tuple[str, float]:
    """Check target and calibration against the data; the per-snapshot value kind and ``f_hat``."""
    _check_target(tgt, src.n_qubits)
    if cal is None:
        return _VALUE, 0.0
    cal.check_data(src)
    return _ROBUST, cal.f_hat


def mom_bounds(n_snapshots: int, n_blocks: int) -> np.ndarray:
    """``(K + 1,)`` bounds of the median-of-means blocks: ``K`` contiguous blocks, the first
    ``N mod K`` one snapshot longer (as :func:`numpy.array_split`)."""
    if not 1 <= n_blocks <= n_snapshots:
        raise ShadowlabError(f"n_blocks must be between 1 and the number of snapshots ({n_snapshots}), got {n_blocks}")
    sizes = np.full(n_blocks, n_snapshots // n_blocks, dtype=np.int64)
    sizes[: n_snapshots % n_blocks] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _check_summary(n: int, level: float, estimator: str, n_blocks: int) -> None:
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"level must be in (0, 1), got {level}")
    if estimator not in FIDELITY_ESTIMATORS:
        raise ShadowlabError(f"estimator must be one of {', '.join(FIDELITY_ESTIMATORS)}, got {estimator!r}")
    if n < 2:
        raise EstimationError(f"a fidelity estimate with an error bar needs at least 2 snapshots, got {n}")
    if estimator == "mom":
        mom_bounds(n, n_blocks)  # refuses a block count outside 1..N


def fidelity_moments(
    source: Source,
    target: Any,
    *,
    calibration: CliffordCalibration | str | os.PathLike[str] | None = None,
    cuts: Iterable[int] = (),
    execution: Execution | None = None,
    progress: Callable[[int], None] | None = None,
) -> ValueMoments:
    """Moments of the per-snapshot fidelity values (as :func:`fidelity_values`) between ``cuts``.

    Streams the data chunk by chunk, in this process or as Dask tasks on the cluster of
    ``execution``; each chunk task holds :func:`clifford_row_bytes` per snapshot plus the
    target (:func:`target_bytes`) within ``execution.memory``, and returns a few moments, so
    memory does not grow with the number of snapshots. The per-chunk moments are merged in
    snapshot order, so a distributed run equals the in-process one exactly, and any chunking
    agrees up to rounding. ``cuts``: snapshot indices where segments must start (median-of-means
    block bounds, points of a running estimate).
    """
    src = _open_source(source)
    tgt = make_target(target)
    kind, f_hat = _value_kind(src, tgt, _resolve_calibration(calibration))
    return _stream_moments(src, tgt, kind, f_hat, cuts, execution, progress, "the fidelity estimate")


def summarize(values: np.ndarray, *, level: float = 0.95, estimator: str = "mean", n_blocks: int = 10,
              label: str = "fidelity", calibration: CliffordCalibration | str | os.PathLike[str] | None = None
              ) -> Estimates:
    """Point estimate, standard error and normal interval from single-snapshot values.

    ``estimator='mean'``: the sample mean, ``se = s / sqrt(N)`` (``s`` the sample standard deviation).
    ``estimator='mom'``: the median of ``n_blocks`` contiguous block means (robust to rare huge
    values; blocks as :func:`mom_bounds`), with ``sqrt(pi / 2)`` times that ``se`` (the
    efficiency of a median of normal block means).

    With ``calibration`` (the one :func:`fidelity_values` used to make ``values``), the calibration's
    error is added by the delta method, ``se^2 + ((F_hat - 2^-n) se_f / f_hat)^2``, and the result is
    marked ``calibrated``.
    """
    values = np.asarray(values, dtype=np.float64)
    _check_summary(values.size, level, estimator, n_blocks)
    cuts = mom_bounds(values.size, n_blocks) if estimator == "mom" else np.zeros(0, dtype=np.int64)
    fold = _SegmentFold(cuts)
    fold.add(0, _segments(values, 0, cuts))
    return summarize_moments(fold.moments(), level=level, estimator=estimator, n_blocks=n_blocks, label=label,
                             calibration=calibration)


def summarize_moments(moments: ValueMoments, *, level: float = 0.95, estimator: str = "mean", n_blocks: int = 10,
                      label: str = "fidelity",
                      calibration: CliffordCalibration | str | os.PathLike[str] | None = None) -> Estimates:
    """:func:`summarize` from :class:`ValueMoments` (for ``'mom'`` cut at :func:`mom_bounds`)."""
    n, mean, m2 = moments.total()
    _check_summary(n, level, estimator, n_blocks)
    cal = _resolve_calibration(calibration)
    se = math.sqrt(m2 / (n - 1)) / math.sqrt(n)
    blocks = 1
    if estimator == "mean":
        est = mean
    else:
        blocks = n_blocks
        est = float(np.median(moments.block_means(mom_bounds(n, n_blocks))))
        se *= math.sqrt(math.pi / 2.0)
    if cal is not None:
        se = math.hypot(se, (est - math.ldexp(1.0, -cal.n_qubits)) * cal.stderr / cal.f_hat)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    one = np.ones(1)
    return Estimates(labels=(label,), estimate=est * one, stderr=se * one, ci_low=(est - z * se) * one,
                     ci_high=(est + z * se) * one, n_matched=np.array([n], dtype=np.int64), n_snapshots=n,
                     estimator=estimator, interval="normal", level=level, n_blocks=blocks,
                     calibrated=cal is not None)


def estimate_fidelity(
    source: Source,
    target: Any,
    *,
    level: float = 0.95,
    estimator: str = "mean",
    n_blocks: int = 10,
    calibration: CliffordCalibration | str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    execution: Execution | None = None,
) -> Estimates:
    """Estimate ``F = <psi| rho |psi>`` from global-Clifford snapshots of ``rho``.

    Parameters
    ----------
    source:
        A :class:`CliffordStore`, its path, or in-memory :class:`CliffordSnapshots`.
    target:
        Anything :func:`make_target` accepts (stim circuit/tableau, spec, ``.stim``/``.npy`` path, vector).
    level:
        Confidence level of the normal interval.
    estimator, n_blocks:
        ``'mean'`` or ``'mom'`` (median of ``n_blocks`` block means; the blocks are
        :func:`mom_bounds`, fixed by the number of snapshots, not by the chunks).
    calibration:
        Robust shadows: a :class:`CliffordCalibration` (from :func:`calibrate_clifford`) or the
        path of its file, measured on the same device and qubit count; default None (ideal
        measurements assumed).
    progress, execution:
        A callback with the snapshots done; where the pass runs and the memory bound of a chunk
        task (default: this process, 1 GiB; see :func:`fidelity_moments`). The result is the same.

    Returns
    -------
    Estimates
        One row labelled ``'fidelity'`` (``calibrated`` when a calibration was applied).

    Raises
    ------
    QubitCountMismatchError
        If the target or calibration has another qubit count than the data.
    ShadowlabError
        If the calibration is a local-Pauli one, or its file is not a calibration.

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab.acquire.clifford_shadows import make_state, sample_snapshots
    >>> tabs, b = sample_snapshots(make_state("ghz:5"), 200, np.random.default_rng(0))
    >>> est = estimate_fidelity(CliffordSnapshots.from_tableaux(tabs, b), "ghz:5")
    >>> bool(abs(est.estimate[0] - 1) < 5 * est.stderr[0])
    True
    """
    cal = _resolve_calibration(calibration)
    src = _open_source(source)
    _check_summary(src.n_snapshots, level, estimator, n_blocks)
    cuts = mom_bounds(src.n_snapshots, n_blocks) if estimator == "mom" else ()
    moments = fidelity_moments(src, target, calibration=cal, cuts=cuts, execution=execution, progress=progress)
    return summarize_moments(moments, level=level, estimator=estimator, n_blocks=n_blocks, calibration=cal)


# -- robust shadows: calibration of the global-Clifford measurement ---------------------------------------
def ideal_shadow_factor(n_qubits: int) -> float:
    """``f = 1 / (2^n + 1)``, the shadow-channel factor of ideal global-Clifford measurements."""
    return 1.0 / (math.ldexp(1.0, n_qubits) + 1.0)


def predicted_shadow_factor(noise: Any, n_qubits: int) -> float:
    """``f`` of the noisy global-Clifford shadow channel for a :class:`~shadowlab.acquire.noise.NoiseModel`.

    Independent per-qubit flips after the random Clifford (measurement-layer flip ``q = 2p/3``,
    then readout ``p01_i``, ``p10_i``) give ``f = (prod_i (1 + lambda_i) - 1) / (4^n - 1)`` with
    ``lambda_i = (1 - 2q)(1 - p01_i - p10_i)`` (module documentation). Gate noise of the state
    preparation is not part of ``f``.

    Examples
    --------
    >>> from shadowlab.acquire.noise import NoiseModel
    >>> predicted_shadow_factor(NoiseModel(), 3) == ideal_shadow_factor(3)  # (2^3 - 1) / (4^3 - 1) = 1/9
    True
    >>> round(predicted_shadow_factor(NoiseModel(readout_p01=0.05, readout_p10=0.15), 1), 6)  # (1.8 - 1) / 3
    0.266667
    """
    p01, p10 = noise.readout(n_qubits)
    lam = (1.0 - 2.0 * noise.measurement_flip) * (1.0 - p01 - p10)
    return (float(np.prod(1.0 + lam)) - 1.0) / (math.ldexp(1.0, 2 * n_qubits) - 1.0)


@dataclass(frozen=True)
class CliffordCalibration:
    """The calibrated shadow-channel factor ``f`` of a noisy global-Clifford measurement.

    Attributes
    ----------
    f_hat:
        Estimated ``f`` (ideal: ``1 / (2^n + 1)``, see :func:`ideal_shadow_factor`).
    stderr:
        Its standard error.
    n_snapshots:
        Calibration snapshots of ``|0...0>`` it was computed from.
    n_qubits:
        Qubits of the calibrated register.
    provenance:
        Where the calibration data came from (their metadata, e.g. a simulated noise model).
    ensemble:
        Always ``"global_clifford"``.
    """

    f_hat: float
    stderr: float
    n_snapshots: int
    n_qubits: int
    provenance: dict[str, Any]
    ensemble: str = ENSEMBLE_GLOBAL_CLIFFORD

    def __post_init__(self) -> None:
        if self.ensemble != ENSEMBLE_GLOBAL_CLIFFORD:
            raise ShadowlabError(f"a CliffordCalibration is for the {ENSEMBLE_GLOBAL_CLIFFORD!r} ensemble, got "
                                 f"{self.ensemble!r}")
        if not (isinstance(self.n_qubits, int | np.integer) and self.n_qubits >= 1):
            raise ShadowlabError(f"n_qubits must be a positive integer, got {self.n_qubits!r}")
        if not (math.isfinite(self.f_hat) and math.isfinite(self.stderr) and self.stderr >= 0):
            raise ShadowlabError(f"f_hat and stderr must be finite (stderr >= 0), got {self.f_hat!r}, {self.stderr!r}")
        if self.f_hat <= 0:
            raise ShadowlabError(f"f_hat must be positive, got {self.f_hat!r}")

    @property
    def f_ideal(self) -> float:
        """``1 / (2^n + 1)``."""
        return ideal_shadow_factor(self.n_qubits)

    @property
    def relative(self) -> float:
        """``f_hat / f_ideal`` (1 for an ideal measurement, smaller with noise)."""
        return self.f_hat / self.f_ideal

    def check_data(self, source: Any, *, what: str = "the data") -> None:
        """Refuse data on another qubit count; warn when simulated noise models differ."""
        if source.n_qubits != self.n_qubits:
            raise QubitCountMismatchError(f"the calibration is for {self.n_qubits} qubits but {what} have "
                                          f"{source.n_qubits}; calibrate the same register (zero:{source.n_qubits})")
        mine = _measurement_noise(self.provenance)
        theirs = _measurement_noise(recorded_provenance(source))
        if mine is not None and theirs is not None and mine != theirs:
            warnings.warn(f"the calibration data were simulated with noise {_noise_text(mine)} but {what} with "
                          f"{_noise_text(theirs)}: a calibration only corrects the noise it measured",
                          CalibrationWarning, stacklevel=3)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document :meth:`write` stores."""
        return {
            "format": CALIBRATION_FORMAT,
            "version": CLIFFORD_CALIBRATION_VERSION,
            "ensemble": self.ensemble,
            "n_qubits": int(self.n_qubits),
            "n_snapshots": int(self.n_snapshots),
            "f_hat": float(self.f_hat),
            "stderr": float(self.stderr),
            "f_ideal": self.f_ideal,
            "model": "noisy shadow channel f rho + (1 - f) tr(rho) I / 2^n; robust F = (mean x - 2^-n) / f + 2^-n",
            "provenance": self.provenance,
        }

    def write(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write as JSON, atomically (an existing file needs ``force``)."""
        with atomic_path(path, force=force) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=1))


_MEASUREMENT_NOISE_KEYS = ("depolarizing", "readout_p01", "readout_p10")


def _measurement_noise(provenance: Any) -> dict[str, Any] | None:
    """The measurement-noise part of a simulated data set's noise record (None when not recorded)."""
    if not isinstance(provenance, dict) or "noise" not in provenance:
        return None
    record = provenance["noise"]
    if record is None:
        return dict.fromkeys(_MEASUREMENT_NOISE_KEYS, 0.0)
    if not isinstance(record, dict):
        return None
    return {k: record.get(k) for k in _MEASUREMENT_NOISE_KEYS}


def _noise_text(record: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in record.items())


def read_clifford_calibration(path: str | os.PathLike[str]) -> CliffordCalibration:
    """Read a calibration written by :meth:`CliffordCalibration.write` (errors name the file and field).

    Raises
    ------
    ShadowlabError
        If the file is missing, not JSON, not a shadowlab calibration, a local-Pauli calibration
        (from ``shadowlab calibrate``), of another version, or malformed.
    """
    p, doc = read_calibration_document(path, maker="shadowlab calibrate-clifford")
    if doc.get("ensemble") != ENSEMBLE_GLOBAL_CLIFFORD:
        ens = doc.get("ensemble")
        family = ens.get("family") if isinstance(ens, dict) else ens
        raise ShadowlabError(f"{p}: a {family or 'local_pauli'} calibration (from 'shadowlab calibrate'), but "
                             "global-Clifford fidelity needs one measured with random global Cliffords: the factors "
                             "of one measurement ensemble do not transfer to another. Make one with 'shadowlab "
                             "simulate-clifford zero:N' (or the device's data of |0...0>) and 'shadowlab "
                             "calibrate-clifford'")
    if doc.get("version") != CLIFFORD_CALIBRATION_VERSION:
        raise ShadowlabError(f"{p}: global-Clifford calibration version {doc.get('version')!r}; this shadowlab reads "
                             f"version {CLIFFORD_CALIBRATION_VERSION}")
    try:
        return CliffordCalibration(float(doc["f_hat"]), float(doc["stderr"]), int(doc["n_snapshots"]),
                                   int(doc["n_qubits"]), dict(doc.get("provenance") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ShadowlabError(f"{p}: calibration field missing or malformed: {exc}") from None


def _resolve_calibration(calibration: Any) -> CliffordCalibration | None:
    """A :class:`CliffordCalibration` from itself or a path; refuse local-Pauli calibrations."""
    if calibration is None or isinstance(calibration, CliffordCalibration):
        return calibration
    if isinstance(calibration, str | os.PathLike):
        return read_clifford_calibration(calibration)
    from shadowlab.estimate.calibration import Calibration

    if isinstance(calibration, Calibration):
        raise ShadowlabError("calibration: a local-Pauli calibration (shadowlab.estimate.calibration.calibrate) "
                             "cannot correct global-Clifford data, which were measured with another ensemble; "
                             "use calibrate_clifford on global-Clifford snapshots of |0...0>")
    raise ShadowlabError(f"calibration must be a CliffordCalibration or the path of its file, got "
                         f"{type(calibration).__name__}")


def calibrate_clifford(
    source: Source,
    *,
    progress: Callable[[int], None] | None = None,
    execution: Execution | None = None,
) -> CliffordCalibration:
    """Calibrate a noisy global-Clifford measurement from snapshots of ``|0...0>``.

    ``x0 = |<b|U|0...0>|^2`` is computed exactly (stabilizer algebra) for each snapshot, and
    ``f_hat = (mean x0 - 2^-n) / (1 - 2^-n)`` with standard error ``s(x0) / sqrt(N) / (1 - 2^-n)``
    (see the module documentation).

    Parameters
    ----------
    source:
        A :class:`CliffordStore`, its path, or :class:`CliffordSnapshots` of ``|0...0>`` taken
        with the same device and measurement as the data to correct (``shadowlab
        simulate-clifford zero:N``).
    progress:
        Called with the number of snapshots done after each chunk.
    execution:
        Where the pass runs and the memory bound of a chunk task (as for :func:`fidelity_moments`;
        the mean and deviations of ``x0`` are merged from per-chunk moments in snapshot order).

    Returns
    -------
    CliffordCalibration

    Raises
    ------
    ShadowlabError
        Fewer than 2 snapshots, or data inconsistent with ``|0...0>`` and any measurement noise
        (``f_hat`` clearly negative or clearly above the ideal ``1 / (2^n + 1)``).
    EstimationError
        If ``f_hat`` is less than :data:`RESOLVED_STDERRS` standard errors above zero; the message
        says how many calibration snapshots would resolve it.

    Warns
    -----
    CalibrationWarning
        If the data's provenance names a state other than ``zero:N``.

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab.acquire.clifford_shadows import make_state, sample_snapshots
    >>> tabs, b = sample_snapshots(make_state("zero:3"), 400, np.random.default_rng(0))
    >>> cal = calibrate_clifford(CliffordSnapshots.from_tableaux(tabs, b))
    >>> bool(abs(cal.f_hat - 1 / 9) < 5 * cal.stderr)
    True
    """
    src = _open_source(source)
    n, n_snap = src.n_qubits, src.n_snapshots
    if n_snap < 2:
        raise ShadowlabError(f"a calibration needs at least 2 snapshots of |0...0>, got {n_snap}")
    state = recorded_state(src)
    if state is not None and state.strip().lower() != f"zero:{n}":
        warnings.warn(f"the calibration data record the state {state!r}, not the calibration state zero:{n} "
                      "(|0...0>); a calibration on another state is wrong by its infidelity", CalibrationWarning,
                      stacklevel=2)
    _, mean_x0, m2_x0 = _stream_moments(src, StabilizerTarget(stim.Tableau(n), f"zero:{n}"), _OVERLAP, 0.0, (),
                                        execution, progress, "the Clifford calibration").total()
    floor = math.ldexp(1.0, -n)
    f_hat = float((mean_x0 - floor) / (1.0 - floor))
    se = math.sqrt(m2_x0 / (n_snap - 1)) / math.sqrt(n_snap) / (1.0 - floor)
    f_ideal = ideal_shadow_factor(n)
    if f_hat < -RESOLVED_STDERRS * se or f_hat > f_ideal + RESOLVED_STDERRS * se + 1e-12 * f_ideal:
        raise ShadowlabError(
            f"the calibration data give f = {f_hat:.4g} +- {se:.2g}, outside the range [0, {f_ideal:.4g}] that "
            "measurements of |0...0> with any noise allow (1 / (2^n + 1) is the noiseless value): these are not "
            "global-Clifford snapshots of |0...0>")
    if f_hat < RESOLVED_STDERRS * se:
        ratio = RESOLVED_STDERRS * se / max(f_hat, se / 10.0)
        needed = math.ceil(n_snap * ratio * ratio)
        raise EstimationError(
            f"the calibrated shadow factor is indistinguishable from zero: f = {f_hat:.4g} +- {se:.2g} (needs >= "
            f"{RESOLVED_STDERRS:g} standard errors; the noiseless value is {f_ideal:.4g}). With {n_snap:,} "
            f"calibration snapshots that needs about {needed:,} in all ({max(needed - n_snap, 1):,} more, if f is "
            "as estimated)")
    provenance = json.loads(json.dumps(recorded_provenance(src), default=str))
    return CliffordCalibration(f_hat, se, int(n_snap), int(n), provenance)
