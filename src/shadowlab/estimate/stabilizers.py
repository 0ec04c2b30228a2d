"""Per-stabilizer error analysis: violation probabilities and the physical error rate they imply.

Model
-----
The state was prepared by a Clifford circuit ``C`` (noiseless: stabilized by every ``S``) under
the one-parameter circuit-noise family ``p -> add_circuit_noise(C, p, r p)``:
``DEPOLARIZE1(p)`` after every one-qubit gate and ``DEPOLARIZE2(r p)`` after every two-qubit gate
(``r = two_qubit_ratio``, default 1). A depolarizing channel on a qubit where the error
sensitivity of ``S`` (``S`` propagated back through the later gates) is a non-identity Pauli
flips ``S`` with probability ``2p/3`` (2 of the 3 Paulis anticommute); a two-qubit channel whose
two qubits carry a non-identity sensitivity flips it with probability ``8 (r p) / 15``. The
channels are independent, so exactly

    <S>(p) = s_S (1 - 4p/3)^a_S (1 - 16 r p / 15)^b_S,

with ``s_S = +-1`` the noiseless value and ``a_S`` (``b_S``) the number of one-qubit (two-qubit)
noise locations that can flip ``S``. The counts are read off two exact evaluations by stim
(:func:`shadowlab.acquire.stim_exact.exact_noisy_pauli_expectations` with only one- or only
two-qubit noise at ``p = 1/2``), and the formula is checked against a direct evaluation.

Reported per stabilizer (``v = s_S <S>``, its estimate ``v_hat`` with interval ``[lo, hi]``):

* violation probability ``eps = (1 - v) / 2`` (probability that measuring ``S`` gives the wrong
  sign), interval ``[(1 - hi) / 2, (1 - lo) / 2]``;
* ``p_hat``: the ``p`` with ``<S>(p) = v_hat`` (``<S>(p)`` decreases strictly on
  ``[0, 3/4]``, so it is unique; found by bisection), interval by inverting the interval ends.
  Values are clipped to ``[0, p_max]`` (``p_max = min(3/4, 15 / (16 r))``): ``v_hat >= 1``
  gives ``p_hat = 0`` and the flag ``no_detectable_error``; ``v_hat <= <S>(p_max)`` gives
  ``p_max`` and the flag ``saturated``.

Summary: one ``p`` for all stabilizers by weighted least squares,
``min_p sum_S (v_hat_S - v_S(p))^2 / se_S^2`` (the maximum-likelihood fit for normal errors; it
uses every estimate, including those above 1, without clipping), with the standard error
``1 / sqrt(sum_S v_S'(p)^2 / se_S^2)`` and a normal interval. It treats the stabilizer estimates
as independent: shadow estimates of different Paulis from the same snapshots are correlated
through ``<S S'> - <S><S'>``, which is ``O(p)`` here against per-estimate variances of order
``3^w``, so the effect on the standard error is small.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import stim
from scipy.optimize import minimize_scalar

from shadowlab.acquire.noise import add_circuit_noise
from shadowlab.acquire.stim_exact import exact_noisy_pauli_expectations
from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.results import Estimates
from shadowlab.paulis import PauliString, PauliSum

__all__ = [
    "CircuitNoiseResponse",
    "StabilizerErrorRates",
    "SurfaceCodeExperiment",
    "circuit_noise_response",
    "stabilizer_error_rates",
    "surface_code_experiment",
]

_PROBE = 0.5
_BISECTIONS = 80


@dataclass(frozen=True)
class CircuitNoiseResponse:
    """``<S>(p) = sign (1 - 4p/3)^a (1 - 16 r p / 15)^b`` for each Pauli (see the module docs).

    Attributes
    ----------
    sign:
        ``(M,)`` float64 noiseless values (+1 or -1).
    one_qubit_locations, two_qubit_locations:
        ``(M,)`` int64 counts ``a`` and ``b``.
    two_qubit_ratio:
        ``r``: the two-qubit depolarizing probability is ``r p``.
    """

    sign: np.ndarray
    one_qubit_locations: np.ndarray
    two_qubit_locations: np.ndarray
    two_qubit_ratio: float = 1.0

    @property
    def p_max(self) -> float:
        """Largest ``p`` of the family: ``min(3/4, 15 / (16 r))``."""
        return 0.75 if self.two_qubit_ratio <= 1.25 else 15.0 / (16.0 * self.two_qubit_ratio)

    def value(self, p: float | np.ndarray) -> np.ndarray:
        """``(M,)`` noisy expectation values at one ``p``, or ``(M,)`` values at ``(M,)`` per-Pauli ``p``."""
        p = np.asarray(p, dtype=np.float64)
        return self.sign * self.magnitude(p)

    def magnitude(self, p: float | np.ndarray) -> np.ndarray:
        """``(1 - 4p/3)^a (1 - 16 r p / 15)^b`` (the value with the sign divided out)."""
        p = np.asarray(p, dtype=np.float64)
        one = np.power(1.0 - 4.0 * p / 3.0, self.one_qubit_locations)
        two = np.power(1.0 - 16.0 * self.two_qubit_ratio * p / 15.0, self.two_qubit_locations)
        return one * two

    def slope(self, p: float | np.ndarray) -> np.ndarray:
        """Derivative of :meth:`magnitude` with respect to ``p``."""
        p = np.asarray(p, dtype=np.float64)
        k2 = 16.0 * self.two_qubit_ratio / 15.0
        one = 1.0 - 4.0 * p / 3.0
        two = 1.0 - k2 * p
        a, b = self.one_qubit_locations, self.two_qubit_locations
        with np.errstate(divide="ignore", invalid="ignore"):
            d_one = np.where(a > 0, a * (-4.0 / 3.0) * np.power(one, np.maximum(a - 1, 0)), 0.0)
            d_two = np.where(b > 0, b * (-k2) * np.power(two, np.maximum(b - 1, 0)), 0.0)
        return d_one * np.power(two, b) + np.power(one, a) * d_two

    def invert(self, magnitude: np.ndarray) -> np.ndarray:
        """Per Pauli, the ``p`` in ``[0, p_max]`` where :meth:`magnitude` equals the given value
        (clipped at the ends; NaN for a Pauli no noise location can flip)."""
        target = np.asarray(magnitude, dtype=np.float64)
        lo = np.zeros_like(target)
        hi = np.full_like(target, self.p_max)
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            above = self.magnitude(mid) > target  # still too little noise at mid
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        p = 0.5 * (lo + hi)
        p = np.where(target >= 1.0, 0.0, p)
        p = np.where(target <= self.magnitude(self.p_max), self.p_max, p)
        insensitive = (self.one_qubit_locations == 0) & (self.two_qubit_locations == 0)
        return np.where(insensitive | np.isnan(target), np.nan, p)


def circuit_noise_response(
    ideal: stim.Circuit, paulis: PauliSum | Sequence[PauliString], *, two_qubit_ratio: float = 1.0,
    n_qubits: int | None = None,
) -> CircuitNoiseResponse:
    """How each Pauli's expectation value depends on ``p`` under ``add_circuit_noise(ideal, p, r p)``.

    Parameters
    ----------
    ideal:
        The noiseless state-preparation circuit.
    paulis:
        Paulis in the stabilizer group of ``ideal``'s state up to sign.
    two_qubit_ratio:
        ``r >= 0``.
    n_qubits:
        System size (default: the ``PauliSum``'s, else ``ideal.num_qubits``).

    Raises
    ------
    ShadowlabError
        If ``ideal`` is noisy, a Pauli is not a stabilizer up to sign, or ``r`` is negative.

    Examples
    --------
    >>> c = stim.Circuit("H 0\\nCX 0 1")
    >>> r = circuit_noise_response(c, [PauliString.from_label("XX")])
    >>> r.one_qubit_locations.tolist(), r.two_qubit_locations.tolist()
    ([1], [1])
    """
    check_state_circuit(ideal, allow_noise=False)
    if not (math.isfinite(two_qubit_ratio) and two_qubit_ratio >= 0):
        raise ShadowlabError(f"two_qubit_ratio must be a finite number >= 0, got {two_qubit_ratio}")
    terms = list(paulis.terms) if isinstance(paulis, PauliSum) else list(paulis)
    if n_qubits is None:
        n_qubits = paulis.n_qubits if isinstance(paulis, PauliSum) else ideal.num_qubits
    sign = exact_noisy_pauli_expectations(ideal, terms, n_qubits=n_qubits)
    bad = np.flatnonzero(sign == 0)
    if bad.size:
        names = ", ".join(terms[i].to_sparse() for i in bad[:3])
        raise ShadowlabError(f"{bad.size} Pauli(s) are not stabilizers of the noiseless state (e.g. {names}); "
                             "the error analysis needs Paulis with noiseless value +1 or -1")
    counts = []
    for p1, p2, factor in ((_PROBE, 0.0, 1.0 - 4.0 * _PROBE / 3.0), (0.0, _PROBE, 1.0 - 16.0 * _PROBE / 15.0)):
        value = exact_noisy_pauli_expectations(add_circuit_noise(ideal, p1, p2), terms, n_qubits=n_qubits)
        raw = np.log(np.abs(value * sign)) / math.log(factor)
        count = np.rint(raw)
        if np.any(np.abs(raw - count) > 1e-6):  # pragma: no cover - would mean stim changed its noise model
            raise ShadowlabError("the circuit-noise response is not of the form (1 - 4p/3)^a (1 - 16p/15)^b")
        counts.append(count.astype(np.int64))
    response = CircuitNoiseResponse(sign, counts[0], counts[1], float(two_qubit_ratio))
    # Independent check of the closed form at a generic point of the family.
    p_check = 0.0123
    direct = exact_noisy_pauli_expectations(add_circuit_noise(ideal, p_check, two_qubit_ratio * p_check), terms,
                                            n_qubits=n_qubits)
    if not np.allclose(direct, response.value(p_check), rtol=0, atol=1e-10):  # pragma: no cover
        raise ShadowlabError("the closed-form circuit-noise response disagrees with stim's exact values")
    return response


@dataclass(frozen=True)
class StabilizerErrorRates:
    """Per-stabilizer violation probabilities and implied physical error rates (see the module docs).

    Attributes
    ----------
    labels, kinds:
        Name and type label (e.g. ``'X'``/``'Z'``, or ``''``) per stabilizer.
    sign:
        ``(M,)`` noiseless values (+-1).
    estimate, stderr, ci_low, ci_high:
        ``(M,)`` estimates of ``<S>`` with standard errors and interval at ``level``.
    violation, violation_low, violation_high:
        ``(M,)`` ``eps = (1 - s <S>) / 2`` and its interval (clipped to ``[0, 1]``).
    p_hat, p_low, p_high:
        ``(M,)`` implied circuit-noise rate ``p`` and interval, in ``[0, p_max]`` (NaN for a
        stabilizer no noise location can flip).
    no_detectable_error, saturated:
        ``(M,)`` bool: the estimate is at or above the noiseless value (``p_hat = 0``), or at or
        below the family's value at ``p_max``.
    one_qubit_locations, two_qubit_locations:
        ``(M,)`` noise locations that can flip each stabilizer.
    p_fit, p_fit_stderr, p_fit_low, p_fit_high:
        The weighted least-squares ``p`` over all stabilizers, its standard error and interval.
    level, two_qubit_ratio:
        Confidence level of every interval; ``r`` of the noise family.
    """

    labels: tuple[str, ...]
    kinds: tuple[str, ...]
    sign: np.ndarray
    estimate: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    violation: np.ndarray
    violation_low: np.ndarray
    violation_high: np.ndarray
    p_hat: np.ndarray
    p_low: np.ndarray
    p_high: np.ndarray
    no_detectable_error: np.ndarray
    saturated: np.ndarray
    one_qubit_locations: np.ndarray
    two_qubit_locations: np.ndarray
    p_fit: float
    p_fit_stderr: float
    p_fit_low: float
    p_fit_high: float
    level: float
    two_qubit_ratio: float = 1.0

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self) -> list[dict[str, Any]]:
        """One dict of plain Python values per stabilizer (NaN becomes ``None``)."""
        def f(x: Any) -> float | None:
            x = float(x)
            return x if math.isfinite(x) else None

        return [
            {
                "stabilizer": self.labels[i], "kind": self.kinds[i], "sign": int(self.sign[i]),
                "estimate": f(self.estimate[i]), "stderr": f(self.stderr[i]),
                "ci_low": f(self.ci_low[i]), "ci_high": f(self.ci_high[i]),
                "violation": f(self.violation[i]), "violation_low": f(self.violation_low[i]),
                "violation_high": f(self.violation_high[i]),
                "p_hat": f(self.p_hat[i]), "p_low": f(self.p_low[i]), "p_high": f(self.p_high[i]),
                "no_detectable_error": bool(self.no_detectable_error[i]), "saturated": bool(self.saturated[i]),
                "one_qubit_locations": int(self.one_qubit_locations[i]),
                "two_qubit_locations": int(self.two_qubit_locations[i]),
            }
            for i in range(len(self.labels))
        ]

    def summary(self) -> dict[str, Any]:
        """The fitted ``p`` over all stabilizers, and counts of flagged stabilizers."""
        return {
            "p_fit": self.p_fit, "p_fit_stderr": self.p_fit_stderr, "p_fit_low": self.p_fit_low,
            "p_fit_high": self.p_fit_high, "level": self.level, "two_qubit_ratio": self.two_qubit_ratio,
            "n_stabilizers": len(self), "n_no_detectable_error": int(np.sum(self.no_detectable_error)),
            "n_saturated": int(np.sum(self.saturated)),
            "noise_family": "DEPOLARIZE1(p) after 1-qubit gates, DEPOLARIZE2(r p) after 2-qubit gates",
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"summary": {...}, "stabilizers": [rows]}``."""
        return {"summary": self.summary(), "stabilizers": self.rows()}

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=1)


def stabilizer_error_rates(
    estimates: Estimates,
    stabilizers: PauliSum | Sequence[PauliString],
    ideal: stim.Circuit,
    *,
    two_qubit_ratio: float = 1.0,
    kinds: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    response: CircuitNoiseResponse | None = None,
) -> StabilizerErrorRates:
    """Violation probability and implied circuit-noise rate of each estimated stabilizer.

    Parameters
    ----------
    estimates:
        Estimates of ``<S>`` for each stabilizer, in the order of ``stabilizers`` (e.g. from
        :func:`shadowlab.estimate.pauli.estimate_paulis`); their ``level`` is used throughout.
    stabilizers:
        The ``M`` stabilizers (Paulis with noiseless value +-1 on ``ideal``'s state).
    ideal:
        The noiseless preparation circuit; the noise family is
        ``add_circuit_noise(ideal, p, two_qubit_ratio * p)``.
    two_qubit_ratio:
        ``r``, the ratio of the two-qubit to the one-qubit depolarizing probability.
    kinds, labels:
        Optional type label and name per stabilizer (default ``''`` and the estimates' labels).
    response:
        A precomputed :func:`circuit_noise_response` (saves two stim error analyses).

    Returns
    -------
    StabilizerErrorRates

    Raises
    ------
    ShadowlabError
        If the lengths disagree, or a Pauli is not a stabilizer of the noiseless state.

    Examples
    --------
    >>> c = stim.Circuit("H 0\\nCX 0 1")
    >>> xx = PauliString.from_label("XX")
    >>> r = circuit_noise_response(c, [xx])
    >>> v = float(r.value(0.01)[0])  # exact <XX> at p = 1%
    >>> est = Estimates(("XX",), np.array([v]), np.array([0.001]), np.array([v - 0.002]), np.array([v + 0.002]),
    ...                 np.array([100]), 100, "mean", "normal", 0.95)
    >>> round(float(stabilizer_error_rates(est, [xx], c).p_hat[0]), 12)
    0.01
    """
    terms = list(stabilizers.terms) if isinstance(stabilizers, PauliSum) else list(stabilizers)
    m = len(terms)
    if len(estimates) != m:
        raise ShadowlabError(f"got {len(estimates)} estimates for {m} stabilizers; give one estimate per stabilizer")
    if m == 0:
        raise ShadowlabError("no stabilizers given")
    kinds = tuple(kinds) if kinds is not None else ("",) * m
    labels = tuple(labels) if labels is not None else tuple(estimates.labels)
    if len(kinds) != m or len(labels) != m:
        raise ShadowlabError("need one kind and one label per stabilizer")
    n_qubits = stabilizers.n_qubits if isinstance(stabilizers, PauliSum) else max(
        ideal.num_qubits, 1 + max((t.qubits[-1] for t in terms if t.qubits), default=0))
    if response is None:
        response = circuit_noise_response(ideal, terms, two_qubit_ratio=two_qubit_ratio, n_qubits=n_qubits)
    elif len(response.sign) != m:
        raise ShadowlabError(f"the response describes {len(response.sign)} Paulis, not {m}")
    sign = response.sign
    est = np.asarray(estimates.estimate, dtype=np.float64)
    se = np.asarray(estimates.stderr, dtype=np.float64)
    # Oriented so that 1 = noiseless; the interval ends swap for negative signs.
    v = sign * est
    v_lo = np.where(sign > 0, estimates.ci_low, -np.asarray(estimates.ci_high))
    v_hi = np.where(sign > 0, estimates.ci_high, -np.asarray(estimates.ci_low))
    violation = (1.0 - v) / 2.0
    p_hat = response.invert(v)
    p_low = response.invert(v_hi)
    p_high = response.invert(v_lo)
    p_fit, p_fit_se = _fit(response, v, se)
    z = NormalDist().inv_cdf(0.5 + estimates.level / 2.0)
    return StabilizerErrorRates(
        labels=labels, kinds=kinds, sign=sign, estimate=est, stderr=se,
        ci_low=np.asarray(estimates.ci_low, dtype=np.float64), ci_high=np.asarray(estimates.ci_high, dtype=np.float64),
        violation=violation, violation_low=np.clip((1.0 - v_hi) / 2.0, 0.0, 1.0),
        violation_high=np.clip((1.0 - v_lo) / 2.0, 0.0, 1.0),
        p_hat=p_hat, p_low=p_low, p_high=p_high,
        no_detectable_error=v >= 1.0, saturated=v <= response.magnitude(response.p_max),
        one_qubit_locations=response.one_qubit_locations, two_qubit_locations=response.two_qubit_locations,
        p_fit=p_fit, p_fit_stderr=p_fit_se,
        p_fit_low=max(0.0, p_fit - z * p_fit_se), p_fit_high=min(response.p_max, p_fit + z * p_fit_se),
        level=float(estimates.level), two_qubit_ratio=response.two_qubit_ratio,
    )


def _fit(response: CircuitNoiseResponse, v: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares ``p`` for oriented values ``v`` with standard errors ``se``."""
    use = np.isfinite(v) & np.isfinite(se) & ((response.one_qubit_locations + response.two_qubit_locations) > 0)
    if not np.any(use):
        return math.nan, math.nan
    positive = se[use][se[use] > 0]
    floor = float(positive.min()) * 1e-3 if positive.size else 1e-12
    w = 1.0 / np.maximum(se, floor) ** 2
    w = np.where(use, w, 0.0)
    v0 = np.where(use, v, 0.0)

    def loss(p: float) -> float:
        return float(np.sum(w * (v0 - response.magnitude(p)) ** 2))

    grid = np.concatenate([[0.0], np.geomspace(1e-7, response.p_max, 400)])
    best = int(np.argmin([loss(p) for p in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    p = float(minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x) if hi > lo else lo
    if loss(grid[best]) < loss(p):
        p = float(grid[best])
    info = float(np.sum(w * response.slope(p) ** 2))
    return p, (1.0 / math.sqrt(info) if info > 0 else math.nan)


# --------------------------------------------------------------------------------------------
# A whole surface-code experiment: noisy preparation, noisy shadows, robust estimates, exact check
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurfaceCodeExperiment:
    """Result of :func:`surface_code_experiment`.

    Attributes
    ----------
    code:
        The :class:`~shadowlab.acquire.codes.SurfaceCode`.
    logical:
        ``'0'`` or ``'+'``: the prepared code state.
    noise:
        The simulated device (:class:`~shadowlab.acquire.noise.NoiseModel`).
    readout_twirl:
        Whether the readout was twirled.
    labels, kinds:
        Per observable (the ``d^2 - 1`` stabilizers, then ``X_L``, ``Z_L``): name and type
        (``'X'``/``'Z'`` for stabilizers, ``'logical'``).
    estimates:
        Shadow estimates of every observable (robust when ``calibrated``).
    exact:
        ``(M,)`` stim's exact values on the noisy state (:func:`exact_noisy_pauli_expectations`).
    rates:
        Per-stabilizer error analysis (stabilizers only).
    logical_rates:
        The same analysis for the logical operator that stabilizes the code state (``Z_L`` for
        ``|0_L>``, ``X_L`` for ``|+_L>``).
    calibrated:
        Whether the estimates were divided by a calibration (robust shadows).
    seconds:
        Wall time of each stage (``simulate``, ``calibrate``, ``estimate``, ``exact``, ``rates``).
    """

    code: Any
    logical: str
    noise: Any
    readout_twirl: bool
    seed: int
    n_snapshots: int
    n_calibration_snapshots: int
    labels: tuple[str, ...]
    kinds: tuple[str, ...]
    estimates: Estimates
    exact: np.ndarray
    rates: StabilizerErrorRates
    logical_rates: StabilizerErrorRates
    calibrated: bool
    seconds: dict[str, float]

    @property
    def z_scores(self) -> np.ndarray:
        """``(estimate - exact) / stderr`` per observable."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.estimates.estimate - self.exact) / self.estimates.stderr

    @property
    def inside(self) -> np.ndarray:
        """Whether stim's exact value lies in each estimate's interval (at ``estimates.level``)."""
        return (self.estimates.ci_low <= self.exact) & (self.exact <= self.estimates.ci_high)

    @property
    def n_stabilizers(self) -> int:
        """Number of stabilizers (the first rows of every array)."""
        return self.code.n_stabilizers

    def comparison(self) -> dict[str, Any]:
        """Agreement of the stabilizer estimates with stim's exact values (z-scores that are not finite,
        from a zero standard error, count as outside the 5-standard-error band)."""
        m = self.n_stabilizers
        z = np.nan_to_num(self.z_scores[:m], nan=np.inf)
        return {
            "n_stabilizers": m,
            "level": self.estimates.level,
            "n_inside_interval": int(np.sum(self.inside[:m])),
            "fraction_inside_interval": float(np.mean(self.inside[:m])),
            "n_within_5_stderr": int(np.sum(np.abs(z) <= 5.0)),
            "max_abs_z": float(np.max(np.abs(z))),
            "rms_z": float(np.sqrt(np.mean(z * z))),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable report."""
        import shadowlab

        rows = []
        z, inside = self.z_scores, self.inside
        for i, row in enumerate(self.estimates.rows()):
            rows.append({"name": self.labels[i], "kind": self.kinds[i], **row, "exact": float(self.exact[i]),
                         "z": float(z[i]) if math.isfinite(z[i]) else None, "inside_interval": bool(inside[i])})
        return {
            "experiment": "surface-code",
            "distance": self.code.distance,
            "n_qubits": self.code.n_qubits,
            "logical": self.logical,
            "noise": self.noise.record(),
            "readout_twirl": self.readout_twirl,
            "seed": self.seed,
            "n_snapshots": self.n_snapshots,
            "n_calibration_snapshots": self.n_calibration_snapshots if self.calibrated else 0,
            "calibrated": self.calibrated,
            "estimation": self.estimates.describe(),
            "comparison": self.comparison(),
            "observables": rows,
            "error_rates": self.rates.to_dict(),
            "logical_error_rate": self.logical_rates.rows()[0],
            "seconds": self.seconds,
            "versions": {"shadowlab": shadowlab.__version__, "stim": stim.__version__},
            "conventions": {
                "qubits": "data qubit (row r, column c) has index r*d + c",
                "stabilizers": "face (r, c) = square with top-left qubit (r, c); X-type when r + c is even",
                "logicals": "X_L = X on column 0, Z_L = Z on row 0",
                "exact": "stim detector error model of the noisy preparation circuit",
            },
        }


def surface_code_experiment(
    distance: int,
    p: float,
    *,
    logical: str = "0",
    readout_p01: float = 0.0,
    readout_p10: float = 0.0,
    readout_twirl: bool = True,
    n_snapshots: int = 200_000,
    n_calibration_snapshots: int | None = None,
    seed: int = 0,
    level: float = 0.95,
    progress: Any = None,
) -> SurfaceCodeExperiment:
    """Simulate shadows of a noisy surface-code state and analyse every stabilizer.

    The code state (:meth:`~shadowlab.acquire.codes.SurfaceCode.state_circuit`) is prepared
    under circuit noise ``p`` (``DEPOLARIZE1(p)``/``DEPOLARIZE2(p)`` after each gate) and measured
    with uniformly random local Pauli bases through a noisy measurement layer (depolarizing ``p``
    per rotation gate) and readout (``p01``, ``p10``), optionally twirled
    (:class:`~shadowlab.acquire.noise.NoiseModel`). When the measurement is noisy, a calibration
    on ``|0...0>`` with the same measurement (robust shadows,
    :mod:`shadowlab.estimate.calibration`) is taken on the supports of the estimated Paulis and
    divided out, so the estimates target the *state's* expectation values, which stim computes
    exactly (:func:`exact_noisy_pauli_expectations`).

    Parameters
    ----------
    distance:
        Odd code distance ``>= 3``.
    p:
        Circuit (and measurement-layer) depolarizing probability, in ``[0, 3/4]``.
    logical:
        ``'0'`` or ``'+'``.
    readout_p01, readout_p10:
        Readout flip probabilities (0 read as 1, 1 read as 0).
    readout_twirl:
        Twirl the readout (makes asymmetric readout calibratable).
    n_snapshots, n_calibration_snapshots:
        Snapshots of the code state and of the calibration state (default: ``n_snapshots``).
    seed:
        Seeds everything: the data use ``seed``, the calibration
        ``SeedSequence([seed, 1])``'s first word.
    level:
        Confidence level of every interval.
    progress:
        Optional ``callable(n_snapshots_done)`` for the simulation.
    """
    import time

    from shadowlab.acquire.codes import rotated_surface_code
    from shadowlab.acquire.noise import NoiseModel
    from shadowlab.acquire.simulate import PreparedState, calibration_state, simulate
    from shadowlab.estimate.calibration import calibrate
    from shadowlab.estimate.pauli import estimate_paulis

    code = rotated_surface_code(distance)
    noise = NoiseModel(depolarizing=p, readout_p01=readout_p01, readout_p10=readout_p10)
    if n_snapshots < 2:
        raise ShadowlabError(f"need at least 2 snapshots, got {n_snapshots}")
    n_cal = n_snapshots if n_calibration_snapshots is None else int(n_calibration_snapshots)
    ideal = code.state_circuit(logical)  # validates `logical`
    noisy = add_circuit_noise(ideal, noise.depolarizing, noise.p2)
    observables = code.observables()
    n = code.n_qubits
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    state = PreparedState(f"surface:d={distance}:{logical}", n, circuit=ideal)
    data = simulate(state, n_snapshots, seed=seed, noise=noise, readout_twirl=readout_twirl, progress=progress)
    seconds["simulate"] = time.perf_counter() - t0
    measurement_noisy = noise.measurement_flip > 0 or bool(np.any(noise.readout(n)[0])) or bool(
        np.any(noise.readout(n)[1]))
    calibration = None
    t0 = time.perf_counter()
    if measurement_noisy:
        if n_cal < 2:
            raise ShadowlabError("the measurement is noisy, so the estimates need calibration snapshots "
                                 f"(n_calibration_snapshots >= 2), got {n_cal}")
        cal_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        cal_data = simulate(calibration_state(n), n_cal, seed=cal_seed, noise=noise, readout_twirl=readout_twirl)
        calibration = calibrate(cal_data, subsets=[t.qubits for t in observables.terms])
    seconds["calibrate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    est = estimate_paulis(data, observables, level=level, calibration=calibration)
    seconds["estimate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = exact_noisy_pauli_expectations(noisy, observables)
    seconds["exact"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = code.n_stabilizers
    stab_est = _slice(est, slice(0, m))
    rates = stabilizer_error_rates(stab_est, code.stabilizers, ideal, kinds=code.kinds, labels=code.names)
    which = m + 1 if logical == "0" else m  # Z_L stabilizes |0_L>, X_L stabilizes |+_L>
    logical_pauli = observables.terms[which]
    logical_rates = stabilizer_error_rates(_slice(est, slice(which, which + 1)), [logical_pauli], ideal,
                                           kinds=("logical",), labels=(observables.labels[which],))
    seconds["rates"] = time.perf_counter() - t0
    return SurfaceCodeExperiment(
        code=code, logical=logical, noise=noise, readout_twirl=bool(readout_twirl), seed=int(seed),
        n_snapshots=int(n_snapshots), n_calibration_snapshots=n_cal, labels=tuple(observables.labels),
        kinds=(*code.kinds, "logical", "logical"), estimates=est, exact=exact, rates=rates,
        logical_rates=logical_rates, calibrated=calibration is not None, seconds=seconds,
    )


def _slice(est: Estimates, rows: slice) -> Estimates:
    """The rows ``rows`` of an :class:`Estimates`."""
    from dataclasses import replace

    return replace(est, labels=est.labels[rows], estimate=est.estimate[rows], stderr=est.stderr[rows],
                   ci_low=est.ci_low[rows], ci_high=est.ci_high[rows], n_matched=est.n_matched[rows])
