"""Purity from two copies against one: copies needed for a fixed error as ``n`` grows.

The test state is an ``n``-qubit GHZ state with a depolarizing channel of strength ``p`` on
qubit 0 (X, Y, Z each with probability ``p / 3``). Each Pauli error maps GHZ to a state
orthogonal to it and to the other two, so the spectrum is ``(1 - p, p/3, p/3, p/3)`` and the
purity ``(1 - p)**2 + p**2 / 3`` is the same for every ``n``: only the learners change.

* Two copies: Bell shots estimate ``tr(rho**2)`` as the mean SWAP eigenvalue, a ``+-1``
  variable with variance ``1 - tr(rho**2)**2`` whatever ``n``.
* One copy: uniformly random local-Pauli snapshots and the unbiased U-statistic over snapshot
  pairs (:func:`shadowlab.estimate.entropy.estimate_renyi2`, the randomized-measurement estimator
  of Elben et al. / Huang et al.); its variance grows exponentially with ``n``.

For each ``n`` and copy count the root-mean-square error over seeded trials is measured, and
"copies needed" is the smallest count in the grid whose RMSE is at most the target.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.clifford_states import ghz_circuit
from shadowlab.acquire.stim_sampler import sample_stim
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.entropy import estimate_renyi2
from shadowlab.twocopy.estimate import estimate_purities
from shadowlab.twocopy.hidden_pauli import first_stable
from shadowlab.twocopy.simulate import sample_bell_stim


def noisy_ghz_circuit(n: int, p: float) -> stim.Circuit:
    """GHZ on ``n`` qubits, then DEPOLARIZE1(``p``) on qubit 0."""
    if not 0.0 <= p <= 0.75:
        raise ShadowlabError(f"depolarizing probability must be in [0, 0.75], got {p}")
    circuit = ghz_circuit(n)
    if p > 0:
        circuit.append("DEPOLARIZE1", [0], p)
    return circuit


def noisy_ghz_purity(p: float) -> float:
    """Exact purity of :func:`noisy_ghz_circuit`'s state, for every ``n >= 2``."""
    return (1.0 - p) ** 2 + p**2 / 3.0


@dataclass
class PurityStudy:
    """RMSE of both learners against copies, per ``n`` (see :func:`purity_study`)."""

    p: float
    purity: float
    target_rmse: float
    trials: int
    seed: int
    rmse: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)
    seconds: dict[str, dict[int, float]] = field(default_factory=dict)

    def copies_needed(self, learner: str, n: int) -> int | None:
        """Smallest copies in the grid from which on every RMSE is at most the target (None if none)."""
        return first_stable(self.rmse.get(learner, {}).get(n, []), lambda err: err <= self.target_rmse)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able record."""
        return {"p": self.p, "purity": self.purity, "target_rmse": self.target_rmse, "trials": self.trials,
                "seed": self.seed, "rmse": {k: {str(n): v for n, v in d.items()} for k, d in self.rmse.items()},
                "seconds": {k: {str(n): v for n, v in d.items()} for k, d in self.seconds.items()}}


def purity_study(
    n_values: Sequence[int],
    *,
    p: float = 0.25,
    target_rmse: float = 0.05,
    two_copy_grid: Sequence[int] = (64, 128, 256, 512, 1024, 2048),
    one_copy_grid: Sequence[int] = tuple(2**k for k in range(6, 19)),
    one_copy_max_n: int = 8,
    trials: int = 40,
    seed: int = 7,
    progress: Any = None,
) -> PurityStudy:
    """RMSE of the two-copy and one-copy purity estimates over ``trials`` seeded runs.

    Copy counts are copies of ``rho`` (two per Bell shot; two-copy counts must be even). The
    one-copy learner runs only up to ``one_copy_max_n`` qubits (its pattern tables hold ``6**n``
    counters); within a trial, smaller counts use prefixes of the same data.
    """
    if any(c % 2 for c in two_copy_grid):
        raise ShadowlabError(f"two-copy copies must be even (two per Bell shot), got {list(two_copy_grid)}")
    if trials < 1:
        raise ShadowlabError(f"trials must be >= 1, got {trials}")
    if not target_rmse > 0:
        raise ShadowlabError(f"the target RMSE must be > 0, got {target_rmse}")
    exact = noisy_ghz_purity(p)
    study = PurityStudy(p, exact, target_rmse, trials, seed, {"two_copy": {}, "one_copy": {}},
                        {"two_copy": {}, "one_copy": {}})
    for n in n_values:
        if n < 2:
            raise ShadowlabError(f"n must be >= 2, got {n}")
        circuit = noisy_ghz_circuit(n, p)
        t0 = time.perf_counter()
        sq = np.zeros(len(two_copy_grid))
        for t in range(trials):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(n, 0, t)))
            data = sample_bell_stim(circuit, max(two_copy_grid) // 2, rng)
            for i, copies in enumerate(two_copy_grid):
                sq[i] += (estimate_purities(data.head(copies // 2)).estimate[0] - exact) ** 2
        study.rmse["two_copy"][n] = [(int(c), float(np.sqrt(s / trials))) for c, s in zip(two_copy_grid, sq,
                                                                                          strict=True)]
        study.seconds["two_copy"][n] = time.perf_counter() - t0
        if progress is not None:
            progress(f"two-copy n={n}")
        if n > one_copy_max_n:
            continue
        t0 = time.perf_counter()
        sq = np.zeros(len(one_copy_grid))
        for t in range(trials):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(n, 1, t)))
            settings = rng.integers(0, 3, size=(max(one_copy_grid), n), dtype=np.uint8)
            data = sample_stim(circuit, settings, 1, rng)
            for i, copies in enumerate(one_copy_grid):
                sq[i] += (estimate_renyi2(data.subset(0, copies), [tuple(range(n))], max_size=n).purity[0] - exact) ** 2
        study.rmse["one_copy"][n] = [(int(c), float(np.sqrt(s / trials))) for c, s in zip(one_copy_grid, sq,
                                                                                          strict=True)]
        study.seconds["one_copy"][n] = time.perf_counter() - t0
        if progress is not None:
            progress(f"one-copy n={n}")
    return study
