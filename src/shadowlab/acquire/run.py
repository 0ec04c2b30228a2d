"""Run a measurement scheme on a back end and append the snapshots to a store, resumably.

Back ends
---------
Every back end turns a batch of settings (``(k, n)`` basis codes) with repeat counts into
outcomes (``(sum repeats, n)`` uint8, 0 = eigenvalue +1, qubit 0 first, the shots of setting 0
first). Identical settings are one job with many shots.

``statevector``
    shadowlab's exact sampler on a state vector (built-in states, OpenQASM 2 files, ``.npy``).
``stim``
    stim's stabilizer simulator for Clifford states of any size (built-in or ``.stim``).
``qiskit-aer``
    Qiskit Aer's ``SamplerV2`` (optional extra ``qiskit``).
``braket-local``
    Amazon Braket's local simulator (optional extra ``braket``).

Resuming
--------
The scheme's settings are cut into consecutive batches of at most ``batch_snapshots``
snapshots. Batch ``b`` is simulated with the seed ``SeedSequence(seed).spawn(B)[b]``, so its
snapshots depend only on ``(scheme, back end, seed, batch_snapshots, b)``. Each finished batch
is appended to the store in one crash-safe step (see :class:`~shadowlab.data.store.ShadowStore`),
with its batch index. The store's provenance records what is being acquired
(``acquisition``: the scheme's SHA-256, back end, state, noise model, readout twirling, seed,
batch size). Run again with the
same arguments after an interruption — even SIGKILL in the middle of an append — and the
acquisition continues at the first missing batch; the finished store is bit-identical to an
uninterrupted run (on every seeded back end; Braket's local simulator cannot be seeded, so there
a resumed run is a statistically equivalent continuation, not a replay). Different arguments on
an existing store are refused.

Readout twirling
----------------
With ``readout_twirl=True`` every shot gets a uniformly random X-flip mask, drawn from a stream
spawned off the batch's seed; the back end applies the flips before measuring and undoes them in
its returned outcomes, and the store keeps each shot's mask (see :mod:`shadowlab.acquire.noise`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import PreparedState, prepare_state, sample_state
from shadowlab.atomic import atomic_path
from shadowlab.data.dataset import ShadowData
from shadowlab.data.store import DEFAULT_CHUNK_SNAPSHOTS, ShadowStore, is_store
from shadowlab.errors import ShadowlabError
from shadowlab.plan.scheme import Scheme

BACKENDS = ("statevector", "stim", "qiskit-aer", "braket-local")
DEFAULT_BATCH_SNAPSHOTS = 4096


class Backend(Protocol):
    """What :func:`acquire` needs from an execution back end."""

    name: str

    @property
    def n_qubits(self) -> int: ...

    def run_batch(self, settings: np.ndarray, repeats: np.ndarray, seed: int, *,
                  twirl: np.ndarray | None = None) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


class SimulatorBackend:
    """shadowlab's own exact samplers: state vector or stim (chosen by the prepared state), with an
    optional :class:`~shadowlab.acquire.noise.NoiseModel` (gate noise in stim circuits, the
    measurement layer and asymmetric readout)."""

    def __init__(self, state: PreparedState, noise: NoiseModel | None = None):
        self.state = state
        self.noise = noise
        self.name = state.simulator

    @property
    def n_qubits(self) -> int:
        return self.state.n_qubits

    def run_batch(self, settings: np.ndarray, repeats: np.ndarray, seed: int, *,
                  twirl: np.ndarray | None = None) -> np.ndarray:
        """Outcomes ``(repeats.sum(), n)`` uint8 for ``settings`` ``(k, n)``, shots of a setting together.

        ``twirl``: ``(repeats.sum(), n)`` X-flip masks per shot (readout twirling, undone in the
        returned outcomes).
        """
        rng = np.random.default_rng(seed)
        data = sample_state(self.state, settings, repeats, rng, noise=self.noise,
                            readout_twirl=False if twirl is None else np.asarray(twirl, dtype=np.uint8))
        return data.outcomes

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "state": self.state.description, "n_qubits": self.n_qubits,
                "noise_model": None if self.noise is None else self.noise.record()}


def make_backend(name: str, state: str | PreparedState | Any, *, seed: int = 0, noise: Any = None,
                 readout_twirl: bool = False) -> Backend:
    """A back end by name for a state description, a :class:`PreparedState`, or an SDK circuit.

    ``noise``: a :class:`~shadowlab.acquire.noise.NoiseModel` for any back end (or a noise spec
    dict such as ``{'depolarizing': 0.01, 'readout_p01': 0.05}``); the SDK back ends also take
    their own objects (a Qiskit Aer ``NoiseModel``; Braket noise, see
    :mod:`shadowlab.acquire.braket_backend`). Noise channels in a stim circuit act as well.
    ``seed`` fixes random built-in states. ``readout_twirl`` tells the SDK back ends that every
    shot comes with a twirl mask (their measurement circuits then carry the X flips; shadowlab's
    simulators take the masks per batch either way).
    """
    if isinstance(noise, dict):
        noise = NoiseModel.from_spec(noise)
    if name not in BACKENDS:
        raise ShadowlabError(f"unknown back end {name!r}; expected one of {', '.join(BACKENDS)}")
    if name in ("statevector", "stim"):
        if noise is not None and not isinstance(noise, NoiseModel):
            raise ShadowlabError(f"back end {name!r} takes a shadowlab NoiseModel (or a noise spec dict), got "
                                 f"{type(noise).__name__}")
        if not isinstance(state, PreparedState | str):
            raise ShadowlabError(f"back end {name!r} takes a state description or a PreparedState, got "
                                 f"{type(state).__name__}")
        prepared = state if isinstance(state, PreparedState) else prepare_state(state, simulator=name, seed=seed)
        if prepared.simulator != name:
            raise ShadowlabError(f"state {prepared.description!r} is a {prepared.simulator} state, not {name}")
        return SimulatorBackend(prepared, noise)
    if isinstance(state, str) and not Path(state).suffix:
        state = prepare_state(state, seed=seed)
    if name == "qiskit-aer":
        from shadowlab.acquire.qiskit_backend import QiskitAerBackend

        return QiskitAerBackend(state, noise_model=noise, readout_twirl=readout_twirl)
    from shadowlab.acquire.braket_backend import BraketLocalBackend

    return BraketLocalBackend(state, noise=noise, readout_twirl=readout_twirl)


def batch_seeds(seed: int, n_batches: int) -> list[int]:
    """Independent 32-bit seeds for batches ``0..n_batches-1``, from ``SeedSequence(seed)``."""
    children = np.random.SeedSequence(seed).spawn(n_batches)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def _identity(scheme: Scheme, backend: Backend, seed: int, batch_snapshots: int, readout_twirl: bool
              ) -> dict[str, Any]:
    """Everything that must be equal for a resumed acquisition to continue the same experiment.

    The scheme (settings, repeats, kind, probabilities), the back end's full description (noise
    model, options; not its package versions), the state (and the contents of a state file),
    the seed and the batch size.
    """
    import hashlib

    described = backend.describe()
    state = described.get("state")
    identity: dict[str, Any] = {
        "scheme_sha256": scheme.digest(),
        "scheme_kind": scheme.kind,
        "scheme_probabilities": None if scheme.probabilities is None else scheme.probabilities.tolist(),
        "backend": described.get("backend", backend.name),
        "backend_settings": {k: v for k, v in described.items()
                             if k not in ("backend", "state") and "version" not in k},
        "state": state,
        "seed": int(seed),
        "batch_snapshots": int(batch_snapshots),
        "readout_twirl": bool(readout_twirl),
    }
    if isinstance(state, str) and Path(state).is_file():
        identity["state_sha256"] = hashlib.sha256(Path(state).read_bytes()).hexdigest()
    return json.loads(json.dumps(identity, default=str))  # as stored: JSON types, so comparisons are exact


def acquire(
    scheme: Scheme,
    backend: Backend,
    store_path: str | Path,
    *,
    seed: int = 0,
    batch_snapshots: int = DEFAULT_BATCH_SNAPSHOTS,
    chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
    progress: Callable[[int, int], None] | None = None,
    readout_twirl: bool = False,
) -> ShadowStore:
    """Measure every setting of ``scheme`` on ``backend`` into the store at ``store_path``.

    Creates the store, or resumes one this same acquisition left unfinished (see the module
    documentation). ``progress(settings_done, settings_total)`` is called after each batch and
    once at the start. ``readout_twirl``: X-flip masks per shot (see the module documentation).
    Returns the store (opened for appending).
    """
    if backend.n_qubits != scheme.n_qubits:
        raise ShadowlabError(f"the plan has {scheme.n_qubits} qubits but the state has {backend.n_qubits}")
    if batch_snapshots < 1:
        raise ShadowlabError(f"batch_snapshots must be >= 1, got {batch_snapshots}")
    batches = list(scheme.batches(batch_snapshots))
    seeds = batch_seeds(seed, len(batches))
    identity = _identity(scheme, backend, seed, batch_snapshots, readout_twirl)
    path = Path(store_path)
    if path.exists():
        if not is_store(path):
            raise ShadowlabError(f"{path} exists and is not a shadow store; choose another output path")
        store = ShadowStore.open(path, mode="a")
        recorded = store.metadata["provenance"].get("acquisition")
        if recorded is None:
            raise ShadowlabError(f"{path} is a shadow store that no 'acquire' run started; choose another output path")
        keys = [*identity, *(k for k in recorded if k not in identity)]
        # Stores from before readout twirling existed were untwirled.
        recorded = {"readout_twirl": False, **recorded}
        changed = [k for k in keys if recorded.get(k) != identity.get(k)]
        if changed:
            details = ", ".join(f"{k}: store has {recorded.get(k)!r}, now {identity.get(k)!r}" for k in changed)
            raise ShadowlabError(f"{path} holds a different acquisition ({details}); resume with the same plan, "
                                 "back end, state, seed and batch size, or write to a new path")
    else:
        provenance = {"source": "acquisition", "acquisition": identity, "scheme": scheme.record(),
                      "backend": backend.describe()}
        # Created under a temporary name and renamed, so a kill here leaves no half-made store.
        with atomic_path(path) as tmp:
            ShadowStore.create(tmp, scheme.n_qubits, chunk_snapshots=chunk_snapshots, provenance=provenance,
                               readout_twirl=readout_twirl)
        store = ShadowStore.open(path, mode="a")
    done = _batches_done(store, batches)
    if progress is not None:
        progress(batches[done - 1][1] if done else 0, scheme.n_settings)
    for b in range(done, len(batches)):
        first, stop = batches[b]
        settings, repeats = scheme.settings[first:stop], scheme.repeats[first:stop]
        started = time.perf_counter()
        local = np.repeat(np.arange(stop - first, dtype=np.int64), repeats)
        twirl = None
        if readout_twirl:
            masks = np.random.default_rng(np.random.SeedSequence(seeds[b]).spawn(1)[0])
            twirl = masks.integers(0, 2, size=(local.size, scheme.n_qubits), dtype=np.uint8)
            # Every shot has its own mask, so identical settings are not merged into one job here.
            outcomes = _checked(backend, backend.run_batch(settings, repeats, seeds[b], twirl=twirl),
                                (local.size, scheme.n_qubits), b)
        else:
            outcomes = _run_merged(backend, settings, repeats, seeds[b], b)
        # Local indices become plan indices: the store shifts them past the settings it holds.
        data = ShadowData(settings[local], outcomes.astype(np.uint8), local, twirl=twirl)
        store.append(data, provenance={"batch": b, "settings": [first, stop], "seed": seeds[b],
                                       "seconds": round(time.perf_counter() - started, 4)})
        if progress is not None:
            progress(stop, scheme.n_settings)
    return store


def _run_merged(backend: Backend, settings: np.ndarray, repeats: np.ndarray, seed: int, batch: int) -> np.ndarray:
    """Run a batch with identical settings merged into one job of their summed shots.

    Shots of one setting are exchangeable, so handing the merged job's shots back to the
    identical rows in order changes no distribution; it saves jobs (a random plan on few qubits
    repeats settings often).
    """
    unique, first, inverse = np.unique(settings, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    # Keep plan order among the distinct settings, so a batch without duplicates runs as given.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    distinct = unique[order]
    totals = np.bincount(rank[inverse], weights=repeats, minlength=order.size).astype(np.int64)
    merged = _checked(backend, backend.run_batch(distinct, totals, seed), (int(totals.sum()), settings.shape[1]),
                      batch)
    if distinct.shape[0] == settings.shape[0]:
        return merged
    starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
    taken = np.zeros(order.size, dtype=np.int64)
    rows = np.empty(int(repeats.sum()), dtype=np.int64)
    pos = 0
    for g in range(settings.shape[0]):
        u, r = rank[inverse[g]], int(repeats[g])
        rows[pos:pos + r] = np.arange(starts[u] + taken[u], starts[u] + taken[u] + r)
        taken[u] += r
        pos += r
    return merged[rows]


def _checked(backend: Backend, outcomes: Any, expected: tuple[int, int], batch: int) -> np.ndarray:
    """The back end's outcomes as an array, refused unless of the expected shape."""
    outcomes = np.asarray(outcomes)
    if outcomes.shape != expected:
        raise ShadowlabError(f"back end {backend.name} returned outcomes of shape {outcomes.shape} for batch {batch}, "
                             f"expected {expected}")
    return outcomes


def _batches_done(store: ShadowStore, batches: list[tuple[int, int]]) -> int:
    """How many of the plan's batches the store holds, checked record by record."""
    records = store.metadata["batches"]
    for i, record in enumerate(records):
        prov = record.get("provenance", {})
        if i >= len(batches) or prov.get("batch") != i or prov.get("settings") != list(batches[i]):
            raise ShadowlabError(f"{store.path}: batch record {i} does not match the plan ({prov}); the store was "
                                 "not written by this acquisition")
    return len(records)


def acquisition_status(store: ShadowStore) -> dict[str, Any] | None:
    """``{'settings_done', 'settings_total', 'snapshots_done', 'snapshots_total', 'complete'}`` for a
    store written by :func:`acquire`; ``None`` for other stores."""
    prov = store.metadata["provenance"]
    if "acquisition" not in prov or "scheme" not in prov:
        return None
    scheme = prov["scheme"]
    done = store.metadata["batches"][-1]["provenance"]["settings"][1] if store.metadata["batches"] else 0
    return {
        "settings_done": int(done),
        "settings_total": int(scheme["n_settings"]),
        "snapshots_done": store.n_snapshots,
        "snapshots_total": int(scheme["n_snapshots"]),
        "complete": store.n_snapshots == int(scheme["n_snapshots"]),
    }
