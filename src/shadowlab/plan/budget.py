"""How many snapshots: sample-size planning for a set of observables, accuracy and confidence.

Rigorous (Huang, Kueng, Preskill, Nature Physics 16, 1050 (2020), Theorem 1): with the
median of ``K = ceil(2 ln(2M / delta))`` means of ``B = ceil(34 max_i ||O_i||^2_shadow / eps^2)``
snapshots each, all ``M`` estimates are within ``eps`` of their expectation values with
probability at least ``1 - delta``; ``N = K B`` snapshots. Shadow norms (squared), for the
traceless part of each observable:

``local_pauli`` (uniform)
    ``3^w`` for a weight-``w`` Pauli string; for a sum ``sum_j c_j P_j`` the triangle bound
    ``(sum_j |c_j| 3^(w_j / 2))^2``.
``local_pauli`` (biased, basis probabilities ``beta``)
    ``prod_{q in S} 1 / beta[q, P_q]`` for a Pauli; the triangle bound for sums.
``global_clifford``
    at most ``3 tr(O^2)``: ``3 * 2^n`` for a Pauli string (useless beyond a few qubits, which
    is the point: Clifford shadows are for low-rank observables) and 3 for a pure-state
    fidelity ``|psi><psi|`` (``fidelity=True``).

From pilot data: the per-snapshot variance ``s_i^2`` of each observable's ``mean`` estimator
on a pilot data set; with a Bonferroni-corrected normal quantile ``z = Phi^-1(1 - delta/(2M))``,
``N = ceil(z^2 max_i s_i^2 / eps^2)`` snapshots make every ``mean`` estimate ``eps``-accurate
with probability about ``1 - delta`` (a plug-in, asymptotic figure, usually far below the
rigorous one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliSum

ENSEMBLES = ("local_pauli", "global_clifford")
HKP_CONSTANT = 34.0


@dataclass(frozen=True)
class Budget:
    """Snapshots needed for ``M`` observables at accuracy ``epsilon`` and failure probability ``delta``.

    ``snapshots`` is ``blocks * block_size`` (median of means); ``pilot_snapshots`` is the
    plug-in figure from pilot data (``None`` without a pilot).
    """

    ensemble: str
    epsilon: float
    delta: float
    n_observables: int
    max_shadow_norm_sq: float
    blocks: int
    block_size: int
    snapshots: int
    pilot_snapshots: int | None = None
    pilot_max_variance: float | None = None

    def rows(self) -> list[dict[str, object]]:
        """Key-value rows for printing."""
        return [{"quantity": k, "value": v} for k, v in self.__dict__.items()]


def _check(epsilon: float, delta: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ShadowlabError(f"epsilon must be a positive number, got {epsilon}")
    if not 0 < delta < 1:
        raise ShadowlabError(f"delta must lie strictly between 0 and 1, got {delta}")


def shadow_norms_sq(observables: PauliSum, *, ensemble: str = "local_pauli",
                    probabilities: np.ndarray | None = None, as_sum: bool = False,
                    fidelity: bool = False) -> np.ndarray:
    """Squared shadow norms (upper bounds) of each observable, or of the whole sum (``as_sum``).

    Identity terms are known exactly and contribute 0.
    """
    if ensemble not in ENSEMBLES:
        raise ShadowlabError(f"ensemble must be one of {', '.join(ENSEMBLES)}, got {ensemble!r}")
    if fidelity:
        if ensemble != "global_clifford":
            raise ShadowlabError("fidelity budgets are for global Clifford shadows (local shadows of a pure-state "
                                 "projector scale exponentially)")
        return np.array([3.0])
    weights = np.array([t.weight for t in observables.terms], dtype=np.int64)
    if ensemble == "global_clifford":
        # ||P||^2 <= 3 tr(P^2) = 3 * 2^n for a Pauli string; as floats, so say so when it overflows.
        if observables.n_qubits > 1000:
            raise ShadowlabError("global-Clifford shadow norms of Pauli strings on more than 1000 qubits overflow; "
                                 "they are 3 * 2^n: Clifford shadows cannot estimate Pauli strings of that size")
        per = np.where(weights > 0, 3.0 * 2.0**observables.n_qubits, 0.0)
        if as_sum:
            return np.array([float(np.sum(np.abs(observables.coeffs) * np.sqrt(per))) ** 2])
        return per
    from shadowlab.estimate.pauli import match_scale
    from shadowlab.paulis import PauliArrays
    from shadowlab.plan.scheme import check_probabilities

    probs = None if probabilities is None else check_probabilities(probabilities, observables.n_qubits)
    arrays = PauliArrays.from_paulis(list(observables.terms))
    per = np.where(weights > 0, match_scale(arrays.qubits, arrays.codes, arrays.weights, probs), 0.0)
    if as_sum:
        return np.array([float(np.sum(np.abs(observables.coeffs) * np.sqrt(per))) ** 2])
    return per


def rigorous_budget(observables: PauliSum, epsilon: float, delta: float, *, ensemble: str = "local_pauli",
                    probabilities: np.ndarray | None = None, as_sum: bool = False,
                    fidelity: bool = False) -> Budget:
    """The HKP median-of-means budget (see the module documentation).

    Examples
    --------
    >>> b = rigorous_budget(PauliSum.from_labels(["ZZ", "X0"]), epsilon=0.1, delta=0.05)
    >>> b.blocks, b.block_size, b.snapshots
    (9, 30600, 275400)
    """
    _check(epsilon, delta)
    norms = shadow_norms_sq(observables, ensemble=ensemble, probabilities=probabilities, as_sum=as_sum,
                            fidelity=fidelity)
    if not np.all(np.isfinite(norms)):
        raise ShadowlabError("some observable needs a basis the scheme never measures (infinite shadow norm)")
    m = 1 if (as_sum or fidelity) else len(observables)
    blocks = math.ceil(2.0 * math.log(2.0 * m / delta))
    worst = float(norms.max()) if norms.size else 0.0
    size = HKP_CONSTANT * worst / epsilon**2
    if not math.isfinite(size) or size > 1e18:
        raise ShadowlabError(f"the rigorous budget is astronomically large ({size:.3g} snapshots per block): the "
                             f"shadow norm {worst:.3g} of the {ensemble} ensemble is hopeless for these observables")
    block_size = max(1, math.ceil(size))
    return Budget(ensemble, epsilon, delta, m, worst, blocks, block_size, blocks * block_size)


def pilot_budget(observables: PauliSum, epsilon: float, delta: float, pilot: object) -> tuple[int, float]:
    """Plug-in snapshots from a pilot data set: ``ceil(z^2 max_i s_i^2 / eps^2)`` (module docs).

    Returns the snapshots and the largest per-snapshot variance. Uses the pilot's own scheme
    (uniform or biased) and its ``mean`` estimator; deterministic pilots are refused.
    """
    from shadowlab.estimate.pauli import estimate_paulis

    _check(epsilon, delta)
    result = estimate_paulis(pilot, observables, estimator="mean")
    if result.estimator != "mean":
        raise ShadowlabError("pilot budgets need randomly drawn settings (uniform or biased)")
    per_snapshot = result.stderr**2 * result.n_snapshots
    m = len(observables)
    z = NormalDist().inv_cdf(1.0 - delta / (2.0 * m))
    worst = float(per_snapshot.max())
    return max(1, math.ceil(z * z * worst / epsilon**2)), worst


def budget(observables: PauliSum, epsilon: float, delta: float, *, ensemble: str = "local_pauli",
           probabilities: np.ndarray | None = None, pilot: object | None = None) -> Budget:
    """Rigorous budget, plus the pilot-based figure when ``pilot`` data are given."""
    rigorous = rigorous_budget(observables, epsilon, delta, ensemble=ensemble, probabilities=probabilities)
    if pilot is None:
        return rigorous
    n, worst = pilot_budget(observables, epsilon, delta, pilot)
    return Budget(**{**rigorous.__dict__, "pilot_snapshots": n, "pilot_max_variance": worst})
