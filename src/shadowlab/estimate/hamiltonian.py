"""Energy and energy variance of a Pauli-sum Hamiltonian from one shadow data set.

For ``H = sum_j c_j P_j`` the ``mean`` estimator gives, per snapshot ``s``, an unbiased value
``x_s`` of ``<H>``; ``H^2`` is expanded by Pauli algebra (:func:`shadowlab.paulis.square_pauli_sum`)
and gives per-snapshot values ``y_s`` of ``<H^2>``. Then, over ``N`` snapshots,

* ``<H>``: ``mean(x)``;
* ``<H^2>``: ``mean(y)``;
* ``Var(H) = <H^2> - <H>^2``: ``mean(y) - U``, with ``U = (S1^2 - S2) / (N (N - 1))`` the
  U-statistic of ``<H>^2`` over pairs of distinct snapshots (``S1 = sum x``, ``S2 = sum x^2``),
  so the whole estimate is unbiased (squaring ``mean(x)`` would add ``Var(mean(x))``).

Standard error of the variance: the delta method, with influence ``y_s - 2 <H> x_s`` per
snapshot (batch means of it when settings repeat, batches aligned with settings, as in
:mod:`shadowlab.estimate.pauli`). When settings repeat, ``U`` sums only pairs of snapshots of
different settings (``(S1^2 - sum_g T_g^2) / (N^2 - sum_g L_g^2)`` over settings ``g`` with sum
``T_g`` and size ``L_g``): same-setting pairs share their bases and would bias it.
Requires a random scheme (uniform or biased); deterministic (derandomized) data are refused,
because ``mean`` is biased there and ``H^2`` has terms the plan never targeted.

Robust shadows: with a ``calibration`` (:mod:`shadowlab.estimate.calibration`) every term of
``H`` and of ``H^2`` is divided by the calibrated attenuation of its support (so the calibration
must cover the supports of ``H^2``'s terms, up to twice ``H``'s largest weight), and each row's
standard error adds the calibration's, bounded whatever the correlation between the factors:
``sum_j |c_j r_j| se_j / g_j`` for ``<H>`` and ``<H^2>`` (``r_j`` the robust term estimates), and
that of ``<H^2>`` plus ``2 |<H>|`` times that of ``<H>`` for the variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shadowlab import kernels
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.pauli import (
    BATCHES,
    Progress,
    SnapshotSource,
    _quantile,
    chunk_rows,
    match_scale,
    resolve_scheme,
    setting_aligned_bounds,
    setting_starts,
)
from shadowlab.estimate.results import Estimates
from shadowlab.execution import Execution, InOrder, map_chunks
from shadowlab.paulis import PauliArrays, PauliSum, square_pauli_sum

if TYPE_CHECKING:
    from shadowlab.estimate.calibration import Calibration


@dataclass(frozen=True)
class _Prepared:
    arrays: PauliArrays
    scale: np.ndarray
    constant: float


def _prepare(h: PauliSum, probabilities: np.ndarray | None) -> _Prepared:
    ident = np.array([t.weight == 0 for t in h.terms], dtype=bool)
    constant = float(h.coeffs[ident].sum())
    terms = [t for t, i in zip(h.terms, ident, strict=True) if not i]
    coeffs = np.asarray(h.coeffs)[~ident]
    if not terms:
        return _Prepared(PauliArrays.from_paulis([]), np.zeros(0), constant)
    arrays = PauliArrays.from_paulis(terms)
    inverse = match_scale(arrays.qubits, arrays.codes, arrays.weights, probabilities)
    if not np.all(np.isfinite(inverse)):
        bad = [terms[i].to_sparse() for i in np.flatnonzero(~np.isfinite(inverse))[:3]]
        raise EstimationError(f"the scheme never measures the bases that term(s) {', '.join(bad)} need")
    return _Prepared(arrays, coeffs * inverse, constant)


def _values(planes: np.ndarray, n: int, prep: _Prepared) -> np.ndarray:
    values = np.full(n, prep.constant)
    if len(prep.scale):
        hits = np.zeros(n, dtype=np.int64)
        kernels.pauli_sum_snapshot_values(planes, n, prep.arrays.qubits, prep.arrays.codes, prep.arrays.weights,
                                          prep.scale, np.zeros(len(prep.scale)), values, hits)
    return values


def estimate_energy_variance(
    source: SnapshotSource,
    hamiltonian: PauliSum,
    *,
    level: float = 0.95,
    probabilities: np.ndarray | None = None,
    calibration: Calibration | None = None,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    execution: Execution | None = None,
) -> Estimates:
    """``<H>``, ``<H^2>`` and ``Var(H) = <H^2> - <H>^2`` with standard errors and normal intervals.

    Rows are labelled ``energy``, ``energy^2`` and ``variance`` (units: those of the coefficients,
    squared for the last two). See the module documentation for the estimators, and for the
    robust version with a ``calibration``. ``chunk_snapshots``, ``progress`` and ``execution``
    (where it runs, and the memory bound) as in :func:`~shadowlab.estimate.pauli.estimate_paulis`.
    """
    hamiltonian.check_n_qubits(source.n_qubits)
    if len(hamiltonian) == 0:
        raise ShadowlabError("the Hamiltonian has no terms")
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"confidence level must lie strictly between 0 and 1, got {level}")
    estimator, probs = resolve_scheme(source, source.n_qubits, "auto", probabilities)
    if estimator != "mean":
        raise ShadowlabError("the energy variance needs randomly drawn settings (uniform or biased scheme); this "
                             "data set was measured with a deterministic scheme")
    n = source.n_snapshots
    if n < 2:
        raise ShadowlabError(f"the energy variance needs at least 2 snapshots, got {n}")
    squared = square_pauli_sum(hamiltonian)
    prep_h, prep_h2 = _prepare(hamiltonian, probs), _prepare(squared, probs)
    factors_h = factors_h2 = None
    if calibration is not None:
        calibration.check_data(source)
        factors_h, factors_h2 = _factors(calibration, prep_h), _factors(calibration, prep_h2)
        prep_h = replace(prep_h, scale=prep_h.scale / factors_h[0])
        prep_h2 = replace(prep_h2, scale=prep_h2.scale / factors_h2[0])
    clustered = source.n_settings < n
    if clustered:
        bounds = setting_aligned_bounds(source, BATCHES)
        starts = setting_starts(source)
        run_sums = np.zeros(len(starts) - 1)  # per-setting sums of x, for the same-setting pairs
    else:
        bounds = np.array([0, n], dtype=np.int64)
        starts = None
    n_batches = len(bounds) - 1
    sx = np.zeros(n_batches)
    sy = np.zeros(n_batches)
    squares = np.zeros(3)  # x x, x y, y y

    def fold(result: tuple[Any, ...]) -> None:
        first, px, py, pxx, pxy, pyy, first_run, pruns = result
        sx[first:first + len(px)] += px
        sy[first:first + len(py)] += py
        squares[:] += (pxx, pxy, pyy)
        if clustered:
            run_sums[first_run:first_run + len(pruns)] += pruns

    # Folded in chunk order, so that the floating-point sums do not depend on where chunks ran.
    in_order = InOrder(fold)
    step = chunk_rows(source, execution, chunk_snapshots, extra_row_bytes=32.0,
                      fixed_bytes=16.0 * (len(starts) if starts is not None else 0) + 16.0 * n_batches,
                      what="the energy variance")
    map_chunks(source, _variance_chunk, chunk_snapshots=step, combine=lambda ci, _b, result: in_order.add(ci, result),
               batches=[(prep_h, prep_h2, bounds, starts)], execution=execution, progress=progress)
    sxx, sxy, syy = (float(v) for v in squares)
    s1, s2 = float(sx.sum()), float(sy.sum())
    energy = s1 / n
    energy2 = s2 / n
    if clustered:
        # <H>^2 from pairs of snapshots of *different* settings: same-setting pairs share bases and
        # are correlated, so including them biases the U-statistic.
        lengths = np.diff(starts).astype(np.float64)
        pairs = n * float(n) - float(lengths @ lengths)
        if pairs <= 0:
            raise ShadowlabError("the energy variance needs snapshots of at least 2 settings")
        variance = energy2 - (s1 * s1 - float(run_sums @ run_sums)) / pairs
    else:
        variance = energy2 - (s1 * s1 - sxx) / (n * (n - 1.0))
    if clustered:
        sizes = np.diff(bounds).astype(np.float64)
        j = int(np.count_nonzero(sizes))

        def batch_se(totals: np.ndarray, mean: float) -> float:
            resid = totals - sizes * mean
            return math.sqrt(j / (j - 1.0) * float(resid @ resid)) / n

        se_e = batch_se(sx, energy)
        se_e2 = batch_se(sy, energy2)
        se_v = batch_se(sy - 2.0 * energy * sx, energy2 - 2.0 * energy * energy)
    else:
        def iid_se(sum_sq: float, mean: float) -> float:
            return math.sqrt(max(sum_sq / n - mean * mean, 0.0) / (n - 1.0))

        se_e = iid_se(sxx, energy)
        se_e2 = iid_se(syy, energy2)
        # Influence z_s = y_s - 2 <H> x_s: its second moment from the accumulated sums.
        zz = syy - 4.0 * energy * sxy + 4.0 * energy * energy * sxx
        se_v = iid_se(zz, energy2 - 2.0 * energy * energy)
    if factors_h is not None and factors_h2 is not None:
        cal_e = _calibration_sd(source, prep_h, factors_h, chunk_snapshots, execution)
        cal_e2 = _calibration_sd(source, prep_h2, factors_h2, chunk_snapshots, execution)
        se_e, se_e2 = math.hypot(se_e, cal_e), math.hypot(se_e2, cal_e2)
        se_v = math.hypot(se_v, cal_e2 + 2.0 * abs(energy) * cal_e)
    z = _quantile(level, clustered, int(np.count_nonzero(np.diff(bounds))))
    est = np.array([energy, energy2, variance])
    se = np.array([se_e, se_e2, se_v])
    return Estimates(("energy", "energy^2", "variance"), est, se, est - z * se, est + z * se,
                     np.array([n, n, n]), n, "mean", "normal", level, 1, calibrated=calibration is not None)


def _variance_chunk(chunk: Any, offset: int, prep_h: _Prepared, prep_h2: _Prepared, bounds: np.ndarray,
                    starts: np.ndarray | None) -> tuple[Any, ...]:
    """One chunk's sums for :func:`estimate_energy_variance`: per batch met, ``x = H`` and ``y = H^2``
    values; ``x x``, ``x y``, ``y y``; and, with repeated settings, ``x`` per setting run met."""
    n = chunk.n_snapshots
    planes = kernels.pack(chunk.bases, chunk.outcomes)
    x = _values(planes, n, prep_h)
    y = _values(planes, n, prep_h2)
    lo = np.clip(bounds[:-1] - offset, 0, n)
    hi = np.clip(bounds[1:] - offset, 0, n)
    touched = np.flatnonzero(hi > lo)
    met = range(int(touched[0]), int(touched[-1]) + 1)
    px = np.array([x[lo[b]:hi[b]].sum() for b in met])
    py = np.array([y[lo[b]:hi[b]].sum() for b in met])
    first_run, pruns = 0, np.zeros(0)
    if starts is not None:
        run = np.searchsorted(starts, np.arange(offset, offset + n), side="right") - 1
        first_run = int(run[0])
        pruns = np.bincount(run - first_run, weights=x)
    return met.start, px, py, float(x @ x), float(x @ y), float(y @ y), first_run, pruns


def _factors(calibration: Calibration, prep: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated ``(g, se_g)`` of each prepared term's support."""
    a = prep.arrays
    supports = [tuple(int(q) for q in a.qubits[i, : a.weights[i]]) for i in range(len(a))]
    return calibration.factors(supports)


def _calibration_sd(source: SnapshotSource, prep: _Prepared, factors: tuple[np.ndarray, np.ndarray],
                    chunk_snapshots: int | None, execution: Execution | None) -> float:
    """``sum_j |c_j r_j| se_j / g_j``: a bound on the standard deviation the calibration adds to a sum
    (``prep.scale`` holds ``c_j`` times the match scale over ``g_j``; one more pass for the terms)."""
    if not len(prep.scale):
        return 0.0
    from shadowlab.estimate.pauli import pauli_counts

    match, odd = pauli_counts(source, prep.arrays, 1, chunk_snapshots=chunk_snapshots, execution=execution)
    robust_terms = prep.scale * (match[:, 0] - 2 * odd[:, 0]) / source.n_snapshots  # c_j r_j
    g, se_g = factors
    return float(np.sum(np.abs(robust_terms) * se_g / g))
