"""Simulate a large experiment straight into a store, in this process or on several Dask workers.

The data are those of :func:`~shadowlab.acquire.simulate.iter_batches` appended batch by batch
(the serial ``shadowlab simulate``): batch ``b`` of ``batch_snapshots`` snapshots is drawn from
``numpy.random.SeedSequence(seed).spawn(...)[b]``, and its setting indices are shifted by the
settings of the batches before it (``b * settings_per_batch``). A batch depends only on its
index, so any process can draw any batch, and the store is bit-identical whatever the number of
workers, the order tasks run in, or a task re-run after its worker died.

Work split: one task per store chunk (``chunk_snapshots`` rows, a whole number of batches). A
task draws its batches, fills one chunk-sized buffer and writes it as one Zarr chunk of each
array; tasks therefore write disjoint chunk files and never read-modify-write a chunk another
task writes. The driver sizes the arrays first (:meth:`ShadowStore.reserve`) and commits once,
after every chunk is written (:meth:`ShadowStore.commit`), at the temporary location of
:func:`~shadowlab.data.store.staged_location`, which becomes the output only then: a killed run
leaves at most a hidden temporary store, never one a reader takes for complete.
In this process the same code runs over all chunks in order; there a chunk need not be a whole
number of batches (one writer cannot conflict with itself), which keeps every serial layout.

Workers open the store by location, so with a remote scheduler the output must be a URL (object
storage) or on a file system every worker mounts at the same path. Stim draws its seeds from each batch's
generator, but its streams may differ across stim versions and SIMD widths: for identical data
run every worker with the same stim build on the same kind of CPU.

The metadata hold one ``batches`` entry per store chunk (rows, basis counts, the seeded
batches it holds, time), and the provenance of :func:`~shadowlab.acquire.simulate.provenance`;
nothing about the workers, so only the times differ between runs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import (
    DEFAULT_BATCH_SNAPSHOTS,
    PreparedState,
    prepare_state,
    provenance,
    sample_state,
)
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.data.store import DEFAULT_CHUNK_SNAPSHOTS, ShadowStore, _now, check_can_create, is_url, staged_location
from shadowlab.errors import ShadowlabError
from shadowlab.execution import LOCAL, TASK_RETRIES, Execution, connect

#: Sampling working set per snapshot of a batch, per qubit (bytes), measured with tracemalloc on
#: 100-qubit GHZ and cluster states: 11 noiseless, 22 with noise and twirling; rounded up.
_STIM_BYTES_PER_ROW_QUBIT = 24
#: The same for the state-vector sampler (measured 204 at 12 qubits), plus a few state sizes.
_STATEVECTOR_BYTES_PER_ROW_QUBIT = 256
_STATEVECTOR_STATE_COPIES = 4


@dataclass(frozen=True)
class _Plan:
    """What every task needs to draw its batches and write its rows (pickled into each task)."""

    n_snapshots: int
    repeats: int
    seed: int
    settings_per_batch: int
    chunk_snapshots: int
    noise: NoiseModel | None
    readout_twirl: bool

    @property
    def batch_rows(self) -> int:
        """Snapshots per full batch (whole settings)."""
        return self.settings_per_batch * self.repeats

    @property
    def n_settings(self) -> int:
        return self.n_snapshots // self.repeats

    @property
    def n_chunks(self) -> int:
        return -(-self.n_snapshots // self.chunk_snapshots)


def simulate_to_store(
    state: str | PreparedState,
    location: str | os.PathLike[str],
    n_snapshots: int,
    *,
    repeats: int = 1,
    seed: int = 0,
    simulator: str = "auto",
    batch_snapshots: int = DEFAULT_BATCH_SNAPSHOTS,
    chunk_snapshots: int | None = None,
    noise: NoiseModel | None = None,
    readout_twirl: bool = False,
    execution: Execution | None = None,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> ShadowStore:
    """Simulate ``n_snapshots`` snapshots of ``state`` into a new store at ``location``.

    The snapshots equal those of :func:`~shadowlab.acquire.simulate.iter_batches` with the same
    ``state, n_snapshots, repeats, seed, batch_snapshots, noise, readout_twirl`` (see the module
    documentation), whatever ``execution`` runs them on.

    Parameters
    ----------
    state:
        A :class:`PreparedState` or a state description (resolved with ``simulator``; ``seed``
        also fixes random built-in states, as in ``simulate``).
    location:
        The store to create: a ``.zarr`` directory or a URL (``s3://bucket/prefix/name.zarr``,
        with ``storage_options`` for its file system); it must not exist unless ``force``.
    n_snapshots:
        Total snapshots; a multiple of ``repeats``.
    batch_snapshots:
        Snapshots per seeded batch (rounded down to whole settings): part of the data's identity.
    chunk_snapshots:
        Rows per store chunk, one task each; default ``execution.chunk_snapshots``, else the
        largest the memory bound allows, at most 65536 (on a cluster rounded down to whole
        batches). A multiple of 64; on a cluster also a multiple of the batch
        (``batch_snapshots`` rounded down to a multiple of ``repeats``).
    execution:
        Where to run (:class:`~shadowlab.execution.Execution`); None = this process. Its
        ``memory`` bounds one task: a chunk plus one batch's sampling working set.
    progress:
        Called with the snapshots of each chunk once it is written.

    Returns
    -------
    ShadowStore
        The committed store, opened read-only.

    Raises
    ------
    ShadowlabError
        Before anything is written: on an existing output without ``force``, bad sizes, a
        chunk that is not whole batches on a cluster, or a chunk over the memory bound.
    """
    execution = execution or LOCAL
    if n_snapshots < 1:
        raise ShadowlabError(f"n_snapshots must be >= 1, got {n_snapshots}")
    if repeats < 1 or n_snapshots % repeats:
        raise ShadowlabError(f"n_snapshots ({n_snapshots}) must be a positive multiple of repeats ({repeats})")
    if batch_snapshots < 1:
        raise ShadowlabError(f"batch_snapshots must be >= 1, got {batch_snapshots}")
    check_can_create(location, force=force, storage_options=storage_options)
    prepared = state if isinstance(state, PreparedState) else prepare_state(state, simulator=simulator, seed=seed)
    settings_per_batch = max(1, batch_snapshots // repeats)
    chunk = _chunk_size(prepared, settings_per_batch * repeats, readout_twirl, chunk_snapshots, execution)
    plan = _Plan(n_snapshots, repeats, seed, settings_per_batch, chunk, noise, readout_twirl)
    meta = provenance(prepared, n_snapshots=n_snapshots, repeats=repeats, seed=seed,
                      batch_snapshots=batch_snapshots, noise=noise, readout_twirl=readout_twirl)
    with staged_location(location, force=force, storage_options=storage_options) as tmp:
        store = ShadowStore.create(tmp, prepared.n_qubits, chunk_snapshots=chunk, provenance=meta,
                                   readout_twirl=readout_twirl, storage_options=storage_options)
        store.reserve(n_snapshots)
        if execution.distributed:
            # Workers may run in another directory: give them an absolute path (a URL is one already).
            where = str(tmp) if is_url(tmp) else os.path.abspath(tmp)
            records = _run_on_cluster(where, storage_options, prepared, plan, execution, progress)
        else:
            records = _write_chunks(store, prepared, plan, 0, plan.n_chunks, progress)
        records.sort(key=lambda r: r["rows"][0])
        store.commit(n_snapshots, records, {"n_settings": plan.n_settings})
    return ShadowStore.open(location, storage_options=storage_options)


def _chunk_size(state: PreparedState, batch_rows: int, twirl: bool, chunk_snapshots: int | None,
                execution: Execution) -> int:
    """Rows per store chunk: checked against the memory bound and, on a cluster, whole batches."""
    n = state.n_qubits
    # A task holds one chunk of every array (bases, outcomes, twirl: n bytes a row; settings: 8)...
    row_bytes = (3 if twirl else 2) * n + 8
    # ...plus the working set of sampling one batch.
    if state.statevector is None:
        batch_bytes = batch_rows * n * _STIM_BYTES_PER_ROW_QUBIT
    else:
        batch_bytes = batch_rows * n * _STATEVECTOR_BYTES_PER_ROW_QUBIT + \
            _STATEVECTOR_STATE_COPIES * state.statevector.nbytes
    explicit = chunk_snapshots if chunk_snapshots is not None else execution.chunk_snapshots
    sized = dataclasses.replace(execution, chunk_snapshots=explicit)
    # On a cluster a chunk is whole batches as well as whole 64-row words.
    unit = math.lcm(64, batch_rows) if execution.distributed else 64
    # Without an explicit size: the largest multiple of 64 that fits, at most the store default
    # (or one unit, when a unit is larger).
    chunk = sized.rows_per_chunk(row_bytes, batch_bytes, default=max(DEFAULT_CHUNK_SNAPSHOTS // unit, 1) * unit,
                                 what=f"simulating {state.description} in batches of {batch_rows} snapshots")
    if not execution.distributed:
        return chunk
    if explicit is None:
        if chunk < unit:
            raise ShadowlabError(f"a chunk of whole batches needs at least {unit} snapshots ({batch_rows} per batch), "
                                 f"but the memory bound allows {chunk}; lower batch_snapshots or raise --memory")
        return chunk // unit * unit
    if chunk % batch_rows:
        raise ShadowlabError(
            f"chunk_snapshots ({chunk}) must be a multiple of the batch size ({batch_rows} snapshots: batch_snapshots "
            "rounded down to whole settings) when running on workers, so that every store chunk is written by one "
            "task; choose a chunk size that is a multiple of it, or a batch size dividing the chunk")
    return chunk


def _batch(state: PreparedState, plan: _Plan, b: int) -> ShadowData:
    """Seeded batch ``b`` with global setting indices (as ``iter_batches`` + ``ShadowStore.append``)."""
    first = b * plan.settings_per_batch
    g = min(plan.settings_per_batch, plan.n_settings - first)
    # SeedSequence(seed).spawn(n)[b] is SeedSequence(seed, spawn_key=(b,)) for every n > b.
    rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(b,)))
    settings = uniform_settings(state.n_qubits, g, rng)
    data = sample_state(state, settings, plan.repeats, rng, noise=plan.noise, readout_twirl=plan.readout_twirl)
    return ShadowData(data.bases, data.outcomes, data.settings + first, {}, data.twirl)


def _draw_chunk(state: PreparedState, plan: _Plan, start: int, stop: int) -> ShadowData:
    """Rows ``start:stop`` of the data set, drawn batch by batch into chunk-sized buffers.

    A batch crossing ``start`` or ``stop`` (possible only in this process, where chunks need not
    be whole batches) is drawn in full and only its rows inside the chunk are kept.
    """
    n, rows = state.n_qubits, stop - start
    bases = np.empty((rows, n), np.uint8)
    outcomes = np.empty((rows, n), np.uint8)
    settings = np.empty(rows, np.int64)
    twirl = np.empty((rows, n), np.uint8) if plan.readout_twirl else None
    for b in range(start // plan.batch_rows, -(-stop // plan.batch_rows)):
        data = _batch(state, plan, b)
        lo = b * plan.batch_rows
        src = slice(max(start - lo, 0), min(stop - lo, data.n_snapshots))  # rows of the batch
        dst = slice(lo + src.start - start, lo + src.stop - start)  # the same rows in the chunk
        bases[dst], outcomes[dst], settings[dst] = data.bases[src], data.outcomes[src], data.settings[src]
        if twirl is not None:
            twirl[dst] = data.twirl[src]
    return ShadowData(bases, outcomes, settings, {}, twirl)


def _write_chunks(store: ShadowStore, state: PreparedState, plan: _Plan, first: int, last: int,
                  progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Draw and write store chunks ``first:last``, one whole chunk per write; return their records."""
    records = []
    for c in range(first, last):
        start = c * plan.chunk_snapshots
        stop = min(start + plan.chunk_snapshots, plan.n_snapshots)
        chunk = _draw_chunk(state, plan, start, stop)
        store.write_region(start, chunk)
        records.append({
            "rows": [start, stop],
            "time": _now(),
            "basis_counts": np.bincount(chunk.bases.ravel(), minlength=3)[:3].tolist(),
            "seed_batches": [start // plan.batch_rows, -(-stop // plan.batch_rows)],
        })
        if progress is not None:
            progress(stop - start)
    return records


def _chunk_task(location: str, storage_options: dict[str, Any] | None, state: PreparedState, plan: _Plan, c: int,
                threads: int) -> list[dict[str, Any]]:
    """One task on a worker: open the store writable and write chunk ``c``."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    store = ShadowStore.open(location, mode="a", storage_options=storage_options)
    return _write_chunks(store, state, plan, c, c + 1)


def _run_on_cluster(location: str, storage_options: dict[str, Any] | None, state: PreparedState, plan: _Plan,
                    execution: Execution, progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    from distributed import as_completed

    records: list[dict[str, Any]] = []
    with connect(execution) as client:
        # The state (a state vector may be large) goes to every worker once, not once per task.
        state_ref = client.scatter(state, broadcast=True)
        futures = [client.submit(_chunk_task, location, storage_options, state_ref, plan, c,
                                 execution.threads_per_worker, pure=False, retries=TASK_RETRIES)
                   for c in range(plan.n_chunks)]
        try:
            for fut in as_completed(futures, loop=client.loop):
                done = fut.result()
                fut.release()
                records.extend(done)
                if progress is not None:
                    progress(sum(r["rows"][1] - r["rows"][0] for r in done))
        except BaseException as exc:
            # Stop what has not started before the caller removes the unfinished store.
            client.cancel(futures, force=True)
            if isinstance(exc, Exception) and not isinstance(exc, ShadowlabError):
                raise ShadowlabError(f"a simulation task failed ({type(exc).__name__}: {exc}); nothing was written"
                                     ) from exc
            raise
    return records
