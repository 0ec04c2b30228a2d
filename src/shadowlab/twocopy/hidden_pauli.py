"""The hidden-Pauli task of Huang et al., Science 376, 1182 (2022): two copies against one.

The state is ``rho = (I + strength * s * P) / 2**n`` for a hidden Pauli ``P`` and sign ``s``, so
``|tr(Q rho)|`` is ``strength`` for ``Q = P`` and 0 for every other non-identity ``Q``. Given a
list of queries ``Q`` (``P`` among them), the learner decides for each whether ``|tr(Q rho)|``
is ``strength`` or 0.

* **Two-copy learner** (quantum memory): Bell shots on ``rho (x) rho`` estimate
  ``tr(Q rho)**2`` for every query at once; decide "``strength``" where the estimate exceeds
  ``strength**2 / 2``. Each estimate is a mean of ``+-1`` variables whatever ``n`` and the
  weight of ``Q``, so by Hoeffding and a union bound ``8 ln(2 M / delta) / strength**4`` shots
  decide ``M`` queries with failure probability ``delta``: independent of ``n``.
* **One-copy learner**: random local-Pauli shadows (uniform X/Y/Z per qubit) estimate
  ``tr(Q rho)`` with variance up to ``3**w`` for a weight-``w`` query; decide "``strength``"
  where ``|estimate| > strength / 2``. The copies needed grow exponentially with the weights, and
  the queries (and ``P``) have weights up to ``n``.

Copies are counted as copies of ``rho``: two per Bell shot, one per snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.acquire.stim_sampler import sample_stim
from shadowlab.data.dataset import ShadowData
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.pauli import pauli_counts
from shadowlab.paulis import PauliArrays, PauliString
from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.estimate import pauli_odd_counts
from shadowlab.twocopy.simulate import hidden_pauli_circuit, sample_bell_stim


def random_pauli(n: int, rng: np.random.Generator, *, weight: int | None = None) -> PauliString:
    """A random non-identity Pauli string: weight uniform in ``1..n`` (or ``weight``), random
    support of that size and uniformly random letters on it, so that every weight is represented."""
    if n < 1:
        raise ShadowlabError(f"n must be >= 1, got {n}")
    w = int(rng.integers(1, n + 1)) if weight is None else int(weight)
    if not 1 <= w <= n:
        raise ShadowlabError(f"weight must be in 1..{n}, got {weight}")
    qubits = np.sort(rng.choice(n, size=w, replace=False))
    codes = rng.integers(0, 3, size=w)
    return PauliString(tuple(int(q) for q in qubits), tuple(int(c) for c in codes))


def query_list(hidden: PauliString, n: int, n_queries: int, rng: np.random.Generator) -> tuple[list[PauliString], int]:
    """``n_queries`` distinct Paulis: ``hidden`` at a random position, the rest from :func:`random_pauli`
    (uniformly from all Paulis when ``4**n - 1 <= 4 n_queries``, where rejection would stall).

    Returns the list and the position of ``hidden``.
    """
    if n_queries < 1:
        raise ShadowlabError(f"n_queries must be >= 1, got {n_queries}")
    if n_queries > 4**n - 1:
        raise ShadowlabError(f"only {4**n - 1} non-identity Paulis exist on {n} qubits; asked for {n_queries} queries")
    seen = {hidden}
    others: list[PauliString] = []
    if 4**n - 1 <= 4 * n_queries:
        # Few Paulis exist: draw the others uniformly from all of them (rejection would stall).
        for code in rng.permutation(np.arange(1, 4**n)):
            digits = [(int(code) >> (2 * (n - 1 - q))) & 3 for q in range(n)]  # 0 = I, 1/2/3 = X/Y/Z
            q = PauliString(tuple(k for k in range(n) if digits[k]), tuple(d - 1 for d in digits if d))
            if q not in seen and len(others) < n_queries - 1:
                seen.add(q)
                others.append(q)
    while len(others) < n_queries - 1:
        q = random_pauli(n, rng)
        if q not in seen:
            seen.add(q)
            others.append(q)
    pos = int(rng.integers(0, n_queries))
    return [*others[:pos], hidden, *others[pos:]], pos


def decide_two_copy(data: BellData, queries: Sequence[PauliString], strength: float = 0.9) -> np.ndarray:
    """Per query: True if the estimate of ``tr(Q rho)**2`` exceeds ``strength**2 / 2``."""
    odd, signs, shots, _ = pauli_odd_counts(data, queries)
    if shots < 1:
        raise ShadowlabError("no Bell shots to decide from")
    mean = signs * (shots - 2.0 * odd) / shots
    return mean > strength**2 / 2.0


def one_copy_estimates(data: ShadowData, queries: Sequence[PauliString], prefixes: Sequence[int]) -> np.ndarray:
    """Uniform-shadow estimates ``3**w x (-1)**parity`` averaged over the first ``m`` snapshots, for
    each ``m`` in ``prefixes`` (increasing): ``(len(prefixes), len(queries))``."""
    arrays = PauliArrays.from_paulis(list(queries))
    bounds = np.array([0, *prefixes], dtype=np.int64)
    if np.any(np.diff(bounds) <= 0) or bounds[-1] > data.n_snapshots:
        raise ShadowlabError(f"prefixes must increase and be at most {data.n_snapshots}, got {list(prefixes)}")
    match, odd = pauli_counts(data, arrays, bounds=bounds)
    signed = np.cumsum(match - 2 * odd, axis=1).T.astype(np.float64)  # (K, M) prefix sums
    return signed * (3.0 ** arrays.weights)[None, :] / bounds[1:, None]


def first_stable(points: Sequence[tuple[int, float]], ok: Callable[[float], bool]) -> int | None:
    """The smallest ``x`` of increasing ``(x, value)`` points from which on every value is ``ok``.

    A single lucky grid point below a failing one does not count: the answer is where the curve
    settles (None if even the last point fails).
    """
    needed = None
    for x, value in reversed(points):
        if not ok(value):
            break
        needed = x
    return needed


@dataclass
class HiddenPauliStudy:
    """Success rates of the two learners against copies, per ``n`` (see :func:`hidden_pauli_study`).

    ``rates[learner][n]`` is a list of ``(copies, fraction of trials with every query right)``.
    """

    n_queries: int
    trials: int
    strength: float
    seed: int
    rates: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)
    seconds: dict[str, dict[int, float]] = field(default_factory=dict)

    def copies_needed(self, learner: str, n: int, target: float = 0.95) -> int | None:
        """Smallest copies in the grid from which on every success rate is at least ``target`` (None if none)."""
        return first_stable(self.rates.get(learner, {}).get(n, []), lambda rate: rate >= target)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> HiddenPauliStudy:
        """Rebuild a study from :meth:`to_dict`'s record (e.g. to redraw its figure)."""
        return cls(int(record["n_queries"]), int(record["trials"]), float(record["strength"]), int(record["seed"]),
                   {k: {int(n): [(int(c), float(r)) for c, r in v] for n, v in d.items()}
                    for k, d in record["rates"].items()},
                   {k: {int(n): float(t) for n, t in d.items()} for k, d in record["seconds"].items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able record."""
        return {"n_queries": self.n_queries, "trials": self.trials, "strength": self.strength, "seed": self.seed,
                "rates": {k: {str(n): v for n, v in d.items()} for k, d in self.rates.items()},
                "seconds": {k: {str(n): v for n, v in d.items()} for k, d in self.seconds.items()}}


def _trial_rng(seed: int, n: int, trial: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(n, trial)))


def _one_copy_cap(n: int) -> int:
    """Snapshots beyond which the one-copy grid stops: ``400 * 3**n`` (rounded up to a power of
    two), about 4x what a union bound over weight-``n`` queries asks for, so the grid reaches
    success without simulating far past it."""
    return 1 << int(np.ceil(np.log2(400 * 3.0**n)))


def _trial_instance(n: int, n_queries: int, rng: np.random.Generator
                    ) -> tuple[PauliString, int, list[PauliString], int]:
    hidden = random_pauli(n, rng)
    sign = 1 if rng.random() < 0.5 else -1
    queries, pos = query_list(hidden, n, n_queries, rng)
    return hidden, sign, queries, pos


def hidden_pauli_study(
    n_values: Sequence[int],
    *,
    two_copy_grid: Sequence[int] = (20, 40, 60, 80, 100, 150, 200, 300, 400),
    one_copy_grid: Sequence[int] | None = None,
    one_copy_max_n: int = 8,
    trials: int = 40,
    n_queries: int = 1000,
    strength: float = 0.9,
    seed: int = 2022,
    progress: Any = None,
) -> HiddenPauliStudy:
    """Success rate of both learners on seeded trials, for each ``n`` and each number of copies.

    Each trial draws a hidden Pauli (any weight), a sign and ``n_queries`` queries, then the data
    for the largest copy count; smaller counts use prefixes of the same data. A trial succeeds
    at a copy count when every query is decided right.

    Parameters
    ----------
    n_values:
        Qubit counts.
    two_copy_grid, one_copy_grid:
        Copies of ``rho`` to try (increasing); two-copy counts must be even (two per shot). The
        one-copy grid defaults to powers of two from 64 to ``2**22``.
    one_copy_max_n:
        The one-copy learner is run only up to this ``n`` (its cost grows like ``3**n``).
    trials, n_queries, strength, seed:
        As in the module documentation; trial ``t`` of size ``n`` uses its own stream spawned
        from ``seed``.
    progress:
        Optional ``callable(str)`` told about each finished (learner, n).
    """
    import time

    if any(c % 2 for c in two_copy_grid):
        raise ShadowlabError(f"two-copy copies must be even (two per Bell shot), got {list(two_copy_grid)}")
    if trials < 1:
        raise ShadowlabError(f"trials must be >= 1, got {trials}")
    if not two_copy_grid or min(two_copy_grid) < 2:
        raise ShadowlabError(f"two-copy copies must be positive even numbers, got {list(two_copy_grid)}")
    one_grid = list(one_copy_grid) if one_copy_grid is not None else [2**k for k in range(6, 23)]
    study = HiddenPauliStudy(n_queries, trials, strength, seed, {"two_copy": {}, "one_copy": {}},
                             {"two_copy": {}, "one_copy": {}})
    for n in n_values:
        if n < 1:
            raise ShadowlabError(f"n must be >= 1, got {n}")
        # Trial t of size n draws its instance first from its own stream, so both learners face
        # the same hidden Paulis and queries; each then draws its own data.
        streams = [_trial_rng(seed, n, t) for t in range(trials)]
        # Two-copy learner.
        t0 = time.perf_counter()
        wins = np.zeros(len(two_copy_grid))
        for rng in streams:
            hidden, sign, queries, pos = _trial_instance(n, n_queries, rng)
            truth = np.zeros(len(queries), bool)
            truth[pos] = True
            data = sample_bell_stim(hidden_pauli_circuit(hidden, n, sign=sign, strength=strength),
                                    max(two_copy_grid) // 2, rng)
            for i, copies in enumerate(two_copy_grid):
                wins[i] += np.array_equal(decide_two_copy(data.head(copies // 2), queries, strength), truth)
        study.rates["two_copy"][n] = [(int(c), float(w / trials)) for c, w in zip(two_copy_grid, wins, strict=True)]
        study.seconds["two_copy"][n] = time.perf_counter() - t0
        if progress is not None:
            progress(f"two-copy n={n}")
        if n > one_copy_max_n:
            continue
        # One-copy learner: same instances (fresh streams from the same seeds).
        t0 = time.perf_counter()
        streams = [_trial_rng(seed, n, t) for t in range(trials)]
        grid = [c for c in one_grid if c <= _one_copy_cap(n)]
        wins = np.zeros(len(grid))
        for rng in streams:
            hidden, sign, queries, pos = _trial_instance(n, n_queries, rng)
            truth = np.zeros(len(queries), bool)
            truth[pos] = True
            settings = rng.integers(0, 3, size=(max(grid), n), dtype=np.uint8)
            data = sample_stim(hidden_pauli_circuit(hidden, n, sign=sign, strength=strength), settings, 1, rng)
            est = one_copy_estimates(data, queries, grid)
            for i in range(len(grid)):
                wins[i] += np.array_equal(np.abs(est[i]) > strength / 2.0, truth)
        study.rates["one_copy"][n] = [(int(c), float(w / trials)) for c, w in zip(grid, wins, strict=True)]
        study.seconds["one_copy"][n] = time.perf_counter() - t0
        if progress is not None:
            progress(f"one-copy n={n}")
    return study
