"""Molecular energies from shadows: exact ground state, snapshots under each scheme, error bars.

The flow for a Hamiltonian ``H = sum_P a_P P`` (Hartree) on ``n <= 20`` qubits:

1. the exact ground state by sparse diagonalization (:func:`shadowlab.acquire.states.ground_state`);
2. for each scheme and seed, a plan of ``snapshots`` settings at the same budget:

   * ``uniform``: uniformly random local Pauli settings, ``mean`` estimator;
   * ``biased``: locally biased probabilities optimized for ``H``
     (:mod:`shadowlab.plan.biased`), importance-weighted ``mean`` estimator;
   * ``derandomized``: the greedy rule of Huang, Kueng and Preskill (:mod:`shadowlab.plan.derandomize`)
     with observable weights ``|a_P| / max |a_P|`` (more hits for larger coefficients, which
     minimizes ``sum a_P^2 / hits_P`` at a fixed total; floored so every term is targeted at
     least once), ``hits`` ten times the budget (so the large terms' targets are never reached and
     the greedy balances hits against weights to the end), stopped at the budget, and the
     ``matched`` estimator. The plan is deterministic: seeds change only the measurement
     outcomes.

3. snapshots sampled exactly from the ground state (Born rule), the energy estimated with its
   standard error and a normal interval, and compared with the exact energy.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliSum
from shadowlab.plan.scheme import Scheme

ENERGY_SCHEMES = ("uniform", "biased", "derandomized")
ENCODINGS = ("jw", "parity", "bk")
MAX_QUBITS = 20
#: Derandomized energy plans ask for this many hits per settings of budget (see plan_energy).
DERANDOMIZED_HITS_PER_BUDGET = 10


@dataclass(frozen=True)
class EnergyRun:
    """One estimate of the energy: scheme, seed, the estimate with its error bars, and its error."""

    scheme: str
    seed: int
    n_snapshots: int
    estimate: float
    stderr: float
    ci_low: float
    ci_high: float
    exact: float
    seconds: float

    @property
    def error(self) -> float:
        """``|estimate - exact|`` (Hartree)."""
        return abs(self.estimate - self.exact)

    @property
    def covered(self) -> bool:
        """Whether the interval contains the exact energy."""
        return self.ci_low <= self.exact <= self.ci_high

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return {**asdict(self), "error": self.error, "covered": self.covered}


def read_hamiltonian(path: str | Path, encoding: str = "jw") -> tuple[PauliSum, str]:
    """A Hamiltonian file, or a molecule folder of ``../shared/data/molecules`` and an encoding.

    Returns the Pauli sum and a name for reports (``LiH_STO3g_12qubits/jw``).
    """
    from shadowlab.observables import read_observables

    p = Path(path)
    if p.is_dir():
        if encoding not in ENCODINGS:
            raise ShadowlabError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        file = p / f"{encoding}.txt"
        if not file.is_file():
            raise ShadowlabError(f"{p}: no {file.name}; a molecule folder holds jw.txt, parity.txt and bk.txt")
        return read_observables(file), f"{p.name}/{encoding}"
    if not p.is_file():
        raise ShadowlabError(f"{p}: no such Hamiltonian file or molecule folder")
    return read_observables(p), p.name


def exact_ground_state(hamiltonian: PauliSum) -> tuple[float, np.ndarray]:
    """Ground energy and state vector by sparse diagonalization (qubit 0 = most significant bit)."""
    from shadowlab.acquire.states import ground_state

    if hamiltonian.n_qubits > MAX_QUBITS:
        raise ShadowlabError(f"{hamiltonian.n_qubits} qubits: exact diagonalization is limited to {MAX_QUBITS}")
    return ground_state(hamiltonian)


def derandomization_weights(hamiltonian: PauliSum, hits: int) -> tuple[PauliSum, np.ndarray]:
    """The non-identity terms and their weights ``max(|a_P| / max |a_P|, 1 / hits)`` in (0, 1].

    The floor makes every term's target ``floor(w hits)`` at least 1: a term that is never
    measured cannot be estimated (the ``matched`` estimator refuses it rather than guess 0).
    """
    keep = [i for i, t in enumerate(hamiltonian.terms) if t.weight > 0 and hamiltonian.coeffs[i] != 0]
    if not keep:
        raise ShadowlabError("the Hamiltonian has no non-identity terms")
    terms = PauliSum(hamiltonian.n_qubits, [hamiltonian.terms[i] for i in keep],
                     np.asarray(hamiltonian.coeffs)[keep])
    magnitude = np.abs(terms.coeffs)
    # 1/hits times hits can round to just below 1 (e.g. hits = 850), and floor() would then make
    # the target 0: step the floor up by ulps until every floored target really is >= 1.
    floor = 1.0 / hits
    while math.floor(floor * hits) < 1:
        floor = float(np.nextafter(floor, 2.0))
    return terms, np.maximum(magnitude / magnitude.max(), floor)


def plan_energy(hamiltonian: PauliSum, scheme: str, snapshots: int, seed: int) -> Scheme:
    """A measurement plan of ``snapshots`` settings for ``hamiltonian`` under ``scheme``."""
    from shadowlab.plan.scheme import random_scheme, uniform_scheme

    rng = np.random.default_rng(seed)
    if scheme == "uniform":
        return uniform_scheme(hamiltonian.n_qubits, snapshots, rng, info={"seed": seed})
    if scheme == "biased":
        from shadowlab.plan.biased import optimize_probabilities

        probs = optimize_probabilities(hamiltonian).probabilities
        return random_scheme(probs, snapshots, rng, kind="biased", info={"seed": seed})
    if scheme == "derandomized":
        from shadowlab.plan.derandomize import derandomize

        # hits = 10 x budget: the large terms' targets lie beyond the budget, so the greedy keeps
        # balancing hits_P / w_P (hits in proportion to |a_P|) up to the last setting instead of
        # dropping terms whose target happened to be met.
        hits = DERANDOMIZED_HITS_PER_BUDGET * snapshots
        terms, weights = derandomization_weights(hamiltonian, hits)
        return derandomize(terms, hits=hits, weights=weights, budget=snapshots)
    raise ShadowlabError(f"scheme must be one of {', '.join(ENERGY_SCHEMES)}, got {scheme!r}")


def run_energy(
    hamiltonian: PauliSum,
    state: np.ndarray,
    exact: float,
    *,
    schemes: tuple[str, ...] = ENERGY_SCHEMES,
    snapshots: int = 1000,
    seeds: int = 1,
    seed: int = 0,
    level: float = 0.95,
) -> list[EnergyRun]:
    """Estimate the energy of ``state`` under each scheme for ``seeds`` seeds ``seed, seed+1, ...``.

    ``seconds`` of a run covers planning, sampling and estimation (the derandomized plan is made
    once and reused across seeds, and its time is charged to the first seed).
    """
    from shadowlab.acquire.statevector import sample_statevector
    from shadowlab.data.dataset import ShadowData
    from shadowlab.estimate.pauli import estimate_sum

    if snapshots < 2:
        raise ShadowlabError(f"snapshots must be >= 2, got {snapshots}")
    if seeds < 1:
        raise ShadowlabError(f"seeds must be >= 1, got {seeds}")
    for name in schemes:
        if name not in ENERGY_SCHEMES:
            raise ShadowlabError(f"scheme must be one of {', '.join(ENERGY_SCHEMES)}, got {name!r}")
    runs: list[EnergyRun] = []
    for name in schemes:
        fixed_plan = None
        for s in range(seed, seed + seeds):
            started = time.perf_counter()
            if name == "derandomized":
                if fixed_plan is None:
                    fixed_plan = plan_energy(hamiltonian, name, snapshots, s)
                plan = fixed_plan
            else:
                plan = plan_energy(hamiltonian, name, snapshots, s)
            # Outcome seeds are offset from plan seeds so the two streams never coincide.
            sampled = sample_statevector(state, plan.settings, plan.repeats, np.random.default_rng([s, 1]))
            data = ShadowData(sampled.bases, sampled.outcomes, sampled.settings, {"scheme": plan.record()})
            result = estimate_sum(data, hamiltonian, level=level, label="energy")
            runs.append(EnergyRun(name, s, plan.n_snapshots, float(result.estimate[0]), float(result.stderr[0]),
                                  float(result.ci_low[0]), float(result.ci_high[0]), float(exact),
                                  time.perf_counter() - started))
    return runs


def summarize(runs: list[EnergyRun]) -> list[dict[str, float | int | str]]:
    """Per scheme: runs, mean absolute error, its standard error, interval coverage, mean s.e., time."""
    rows = []
    for name in dict.fromkeys(r.scheme for r in runs):
        mine = [r for r in runs if r.scheme == name]
        errors = np.array([r.error for r in mine])
        rows.append({
            "scheme": name,
            "runs": len(mine),
            "snapshots": mine[0].n_snapshots,
            "mean_abs_error": float(errors.mean()),
            "mae_stderr": float(errors.std(ddof=1) / np.sqrt(len(errors))) if len(errors) > 1 else float("nan"),
            "coverage": float(np.mean([r.covered for r in mine])),
            "mean_stderr": float(np.mean([r.stderr for r in mine])),
            "seconds_per_run": float(np.mean([r.seconds for r in mine])),
        })
    return rows
