"""The in-memory shadow data set of the local-Pauli ensemble.

A snapshot is, per qubit, a measurement basis and an outcome bit:

* ``bases[s, q]`` in {0, 1, 2} = {X, Y, Z}: the basis qubit ``q`` was measured in, snapshot ``s``;
* ``outcomes[s, q]`` in {0, 1}: 0 means eigenvalue +1, 1 means eigenvalue -1 (PennyLane's
  convention);
* ``settings[s]``: index of the measurement setting (the row of bases) snapshot ``s`` came from.
  Hardware measures one setting many times ("settings x repeats"); snapshots that share a
  setting index share their bases. For fully random measurements every snapshot is its own
  setting.
* ``twirl[s, q]`` in {0, 1} (optional): the readout-twirl mask, 1 where an ``X`` was applied just
  before measuring qubit ``q``. The outcomes are already corrected (the flip undone); the mask
  is kept so that the raw device bits (``outcomes ^ twirl``) and the twirl itself stay on record
  (see :mod:`shadowlab.acquire.noise`). ``None`` for data taken without twirling.

Arrays are snapshot-major here (easy to build and slice); the estimators pack them into
qubit-major bit planes (:func:`shadowlab.kernels.pack`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from shadowlab.errors import QubitCountMismatchError, ShadowlabError

ENSEMBLE_LOCAL_PAULI = "local_pauli"


@dataclass(frozen=True)
class ShadowData:
    """Snapshots of local random-Pauli measurements.

    Parameters
    ----------
    bases:
        ``(n_snapshots, n_qubits)`` uint8, codes 0/1/2 = X/Y/Z.
    outcomes:
        ``(n_snapshots, n_qubits)`` uint8, 0 = eigenvalue +1, 1 = eigenvalue -1.
    settings:
        ``(n_snapshots,)`` int64 setting index per snapshot; defaults to ``arange(n_snapshots)``.
    metadata:
        Free-form provenance (source, seed, state, ...), JSON-serializable.
    twirl:
        ``(n_snapshots, n_qubits)`` uint8 readout-twirl masks, or ``None`` (not twirled).

    Examples
    --------
    >>> import numpy as np
    >>> d = ShadowData(np.array([[2, 0]]), np.array([[0, 1]]))
    >>> d.n_snapshots, d.n_qubits
    (1, 2)
    """

    bases: np.ndarray
    outcomes: np.ndarray
    settings: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    twirl: np.ndarray | None = None

    def __post_init__(self) -> None:
        bases = np.asarray(self.bases)
        outcomes = np.asarray(self.outcomes)
        if bases.ndim != 2:
            raise ShadowlabError(f"bases must be a 2-D array (snapshots x qubits), got shape {bases.shape}")
        if outcomes.shape != bases.shape:
            raise ShadowlabError(
                f"outcomes shape {outcomes.shape} does not match bases shape {bases.shape}; "
                "both must be (n_snapshots, n_qubits)"
            )
        if bases.shape[1] < 1:
            raise ShadowlabError("a shadow data set needs at least one qubit")
        _check_codes(bases, "bases", 2)
        _check_codes(outcomes, "outcomes", 1)
        object.__setattr__(self, "bases", np.ascontiguousarray(bases, dtype=np.uint8))
        object.__setattr__(self, "outcomes", np.ascontiguousarray(outcomes, dtype=np.uint8))
        if self.settings is None:
            settings = np.arange(bases.shape[0], dtype=np.int64)
        else:
            settings = np.ascontiguousarray(self.settings, dtype=np.int64)
            if settings.shape != (bases.shape[0],):
                raise ShadowlabError(
                    f"settings must have one entry per snapshot: {bases.shape[0]} snapshots, "
                    f"settings shape {settings.shape}"
                )
            if settings.size and settings.min() < 0:
                raise ShadowlabError("setting indices must be >= 0")
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "metadata", dict(self.metadata))
        if self.twirl is not None:
            twirl = np.asarray(self.twirl)
            if twirl.shape != bases.shape:
                raise ShadowlabError(f"twirl masks must have the outcomes' shape {bases.shape}, got {twirl.shape}")
            _check_codes(twirl, "twirl", 1)
            object.__setattr__(self, "twirl", np.ascontiguousarray(twirl, dtype=np.uint8))

    @property
    def readout_twirl(self) -> bool:
        """Whether the snapshots were taken with readout twirling (per-snapshot masks recorded)."""
        return self.twirl is not None

    @property
    def n_snapshots(self) -> int:
        """Number of snapshots (rows)."""
        return int(self.bases.shape[0])

    @property
    def n_qubits(self) -> int:
        """Number of qubits (columns)."""
        return int(self.bases.shape[1])

    @cached_property
    def n_settings(self) -> int:
        """Number of distinct setting indices."""
        return int(np.unique(self.settings).size)

    @property
    def scheme_record(self) -> dict[str, Any] | None:
        """The measurement scheme the data were taken with (``metadata['scheme']``), if recorded."""
        record = self.metadata.get("scheme")
        return record if isinstance(record, dict) else None

    @classmethod
    def from_settings(
        cls,
        settings_bases: np.ndarray,
        repeats: Sequence[int] | np.ndarray,
        outcomes: np.ndarray,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> ShadowData:
        """Build from ``G`` settings measured ``repeats[g]`` times each, in setting order.

        ``settings_bases`` is ``(G, n_qubits)``; ``outcomes`` is ``(sum(repeats), n_qubits)``,
        the snapshots of setting 0 first.
        """
        settings_bases = np.asarray(settings_bases, dtype=np.uint8)
        reps = np.asarray(repeats, dtype=np.int64)
        if settings_bases.ndim != 2 or reps.shape != (settings_bases.shape[0],):
            raise ShadowlabError("need a (G, n_qubits) array of settings and G repeat counts")
        if reps.size and reps.min() < 0:
            raise ShadowlabError("repeat counts must be >= 0")
        index = np.repeat(np.arange(settings_bases.shape[0], dtype=np.int64), reps)
        return cls(settings_bases[index], outcomes, index, metadata or {})

    def subset(self, start: int, stop: int) -> ShadowData:
        """Snapshots ``start:stop`` as a new data set (metadata shared)."""
        twirl = None if self.twirl is None else self.twirl[start:stop]
        return ShadowData(self.bases[start:stop], self.outcomes[start:stop], self.settings[start:stop], self.metadata,
                          twirl)

    def iter_chunks(self, chunk_snapshots: int = 65536) -> Iterator[tuple[int, ShadowData]]:
        """Yield ``(offset, chunk)`` pairs of at most ``chunk_snapshots`` snapshots, in order."""
        for start in range(0, self.n_snapshots, chunk_snapshots):
            yield start, self.subset(start, start + chunk_snapshots)

    def load(self) -> ShadowData:
        """This data set (the in-memory twin of :meth:`ShadowStore.load`)."""
        return self

    @staticmethod
    def concatenate(parts: Sequence[ShadowData], *, disjoint_settings: bool = False) -> ShadowData:
        """Join data sets of the same qubit count, in order.

        Setting indices are kept as they are (right for re-joining chunks of one data set);
        with ``disjoint_settings=True`` each part's indices are shifted past the previous
        part's, for joining independent experiments.
        """
        if not parts:
            raise ShadowlabError("nothing to concatenate")
        n = parts[0].n_qubits
        for p in parts:
            if p.n_qubits != n:
                raise QubitCountMismatchError(f"cannot join data sets of {n} and {p.n_qubits} qubits")
        twirled = {p.twirl is not None for p in parts}
        if len(twirled) > 1:
            raise ShadowlabError("cannot join readout-twirled and untwirled data sets: their readout noise differs")
        offset = 0
        settings = []
        for p in parts:
            settings.append(p.settings + offset)
            if disjoint_settings and p.n_snapshots:
                offset += int(p.settings.max()) + 1
        return ShadowData(
            np.concatenate([p.bases for p in parts]),
            np.concatenate([p.outcomes for p in parts]),
            np.concatenate(settings),
            parts[0].metadata,
            np.concatenate([p.twirl for p in parts]) if twirled == {True} else None,
        )

    def equals(self, other: ShadowData) -> bool:
        """Bit-exact equality of bases, outcomes, settings and twirl masks (metadata ignored)."""
        return (
            self.bases.shape == other.bases.shape
            and np.array_equal(self.bases, other.bases)
            and np.array_equal(self.outcomes, other.outcomes)
            and np.array_equal(self.settings, other.settings)
            and (self.twirl is None) == (other.twirl is None)
            and (self.twirl is None or np.array_equal(self.twirl, other.twirl))
        )


def _check_codes(a: np.ndarray, name: str, max_code: int) -> None:
    if a.size == 0:
        return
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise ShadowlabError(f"{name} must be an integer array, got dtype {a.dtype}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > max_code:
        raise ShadowlabError(f"{name} must hold codes 0..{max_code}, found values in [{lo}, {hi}]")


def uniform_settings(n_qubits: int, n_settings: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_settings, n_qubits)`` uint8 bases drawn uniformly from {X, Y, Z} per qubit."""
    if n_qubits < 1 or n_settings < 0:
        raise ShadowlabError(f"need n_qubits >= 1 and n_settings >= 0, got {n_qubits}, {n_settings}")
    return rng.integers(0, 3, size=(n_settings, n_qubits), dtype=np.uint8)


def recorded_provenance(source: Any) -> dict[str, Any]:
    """The provenance a data set or store records: a store's ``metadata['provenance']``, or an
    in-memory data set's metadata itself (where it is kept flat); ``{}`` if there is none."""
    meta = getattr(source, "metadata", None)
    if not isinstance(meta, dict):
        return {}
    prov = meta.get("provenance", meta)
    return prov if isinstance(prov, dict) else {}


def recorded_state(source: Any) -> str | None:
    """The state description a simulated or acquired data set records (``None`` if unknown)."""
    prov = recorded_provenance(source)
    state = prov.get("state") or (prov.get("acquisition") or {}).get("state")
    return state if isinstance(state, str) else None
