"""Where estimators and simulators run: in this process or on a Dask cluster, within a memory bound.

Every streaming computation in shadowlab is a map over *chunks* of snapshots (rows
``offset:offset + chunk_snapshots`` of a data set or store), optionally crossed with *batches* of
observables, followed by an exact reduction of per-chunk partial results: integer counts are
added, floating-point partial sums are added in chunk order. :func:`map_chunks` runs that map
either in this process (one chunk in memory at a time) or, with ``Execution(scheduler=...)`` or
``Execution(workers=N)``, as one Dask task per (chunk, batch) on a cluster. The reduction always
happens here, in the same order, so a distributed run returns exactly what a single-process run
returns.

Memory: ``Execution.memory`` (bytes, default 1 GiB) bounds what one chunk task holds: the chunk's
rows and everything per row the computation keeps (see :meth:`Execution.rows_per_chunk`), plus
per-observable counters. A chunk size larger than the bound allows is refused rather than
silently exceeded; without an explicit chunk size the largest allowed one (capped at the
computation's default) is used.

Failures: a Dask task whose worker dies is re-run by the scheduler on another worker, and a task
that raises is retried (``retries``). Tasks are pure functions of (data, chunk, batch), so a
re-run returns the same partial result and the final result is unchanged.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from shadowlab.errors import ShadowlabError

#: Default bound on the memory of one chunk task (bytes).
DEFAULT_MEMORY_BYTES = 1 << 30
#: Smallest memory bound accepted: below it not even the interpreter's working set fits.
MIN_MEMORY_BYTES = 16 << 20
#: Seconds to wait for a Dask scheduler before reporting it unreachable.
CONNECT_TIMEOUT_S = 10
#: Tasks in flight per worker: enough to keep workers busy, few enough that memory does not grow with the data.
WINDOW_PER_WORKER = 4
#: Re-runs of a task that raised (a task whose worker died is re-run by the scheduler regardless).
TASK_RETRIES = 3

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value: int | str) -> int:
    """Bytes from an integer or a string such as ``"512MB"``, ``"1GiB"``, ``"2e9"``.

    Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB, TiB) powers
    of 1024, as in Dask.

    >>> parse_memory("1GiB"), parse_memory("512MB"), parse_memory(2**25)
    (1073741824, 512000000, 33554432)
    """
    if isinstance(value, bool):
        raise ShadowlabError(f"memory bound: expected a size such as '1GB', got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", str(value).lower())
        if m is None or m.group(2) not in _UNITS:
            raise ShadowlabError(f"memory bound: cannot read {value!r}; expected a size such as '512MB', '1GiB' "
                                 "or a number of bytes")
        size = int(float(m.group(1)) * _UNITS[m.group(2)])
    if size < MIN_MEMORY_BYTES:
        raise ShadowlabError(f"memory bound {value!r} is below the minimum of {MIN_MEMORY_BYTES >> 20} MiB")
    return size


@dataclass(frozen=True)
class Execution:
    """How to run a streaming computation.

    Attributes
    ----------
    scheduler:
        Address of a running Dask scheduler (``tcp://host:8786``); None = not on a cluster.
    workers:
        Start a local Dask cluster of this many worker processes for the computation; None =
        run in this process. Exclusive with ``scheduler``.
    threads_per_worker:
        Threads per local worker (and numba threads per task on any worker).
    memory:
        Bound on one chunk task's memory, in bytes (or a string such as ``"512MB"``).
    chunk_snapshots:
        Snapshots per chunk; None = the largest multiple of 64 (the bit-packing word) that the
        memory bound allows, capped at the computation's default.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    memory: int | str = DEFAULT_MEMORY_BYTES
    chunk_snapshots: int | None = None

    def __post_init__(self) -> None:
        if self.scheduler is not None and self.workers is not None:
            raise ShadowlabError("give either a scheduler address (--scheduler) or a number of local workers "
                                 "(--workers), not both")
        if self.workers is not None and self.workers < 1:
            raise ShadowlabError(f"--workers must be >= 1, got {self.workers}")
        if self.threads_per_worker < 1:
            raise ShadowlabError(f"threads per worker must be >= 1, got {self.threads_per_worker}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise ShadowlabError("--scheduler: empty address; expected e.g. tcp://host:8786")
        if self.chunk_snapshots is not None and self.chunk_snapshots < 1:
            raise ShadowlabError(f"--chunk-snapshots must be >= 1, got {self.chunk_snapshots}")
        object.__setattr__(self, "memory", parse_memory(self.memory))

    @property
    def distributed(self) -> bool:
        """Whether work goes to a Dask cluster."""
        return self.scheduler is not None or self.workers is not None

    @property
    def memory_bytes(self) -> int:
        """The memory bound in bytes."""
        return int(self.memory)

    def rows_per_chunk(self, bytes_per_row: float, fixed_bytes: float = 0.0, *, default: int,
                       what: str = "this computation") -> int:
        """Snapshots per chunk such that ``rows * bytes_per_row + fixed_bytes`` fits the bound.

        ``bytes_per_row`` is everything the computation holds per snapshot of a chunk (raw rows,
        packed planes, per-snapshot values); ``fixed_bytes`` what it holds regardless of the chunk
        (per-observable counters). An explicit ``chunk_snapshots`` that does not fit is an error;
        otherwise the result is the largest multiple of 64 that fits, at most ``default``.
        """
        budget = self.memory_bytes - fixed_bytes
        fits = int(budget // bytes_per_row) if budget > 0 else 0
        if self.chunk_snapshots is not None:
            if self.chunk_snapshots > fits:
                advice = (f"use at most {fits} snapshots per chunk or raise the bound (--memory)" if fits else
                          "even its fixed part does not fit: raise the bound (--memory) or split the work")
                raise ShadowlabError(
                    f"chunk size {self.chunk_snapshots} snapshots needs {self.chunk_snapshots} x {bytes_per_row:,.0f} "
                    f"bytes + {fixed_bytes:,.0f} bytes = {self.chunk_snapshots * bytes_per_row + fixed_bytes:,.0f} "
                    f"bytes for {what}, more than the memory bound of {self.memory_bytes:,} bytes; {advice}")
            return self.chunk_snapshots
        if fits < 64:
            raise ShadowlabError(f"{what} needs at least {64 * bytes_per_row + fixed_bytes:,.0f} bytes per chunk task "
                                 f"(64 snapshots x {bytes_per_row:,.0f} bytes + {fixed_bytes:,.0f} bytes), more than "
                                 f"the memory bound of {self.memory_bytes:,} bytes; raise it (--memory) or split the "
                                 "work")
        return min(fits // 64 * 64, max(64, default // 64 * 64))

    def with_chunk(self, chunk_snapshots: int | None) -> Execution:
        """This execution with an explicit chunk size (``None``: unchanged)."""
        return self if chunk_snapshots is None else replace(self, chunk_snapshots=chunk_snapshots)


LOCAL = Execution()

_active_client: list[Any] = []


def _dask() -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ShadowlabError("running on Dask needs the 'distributed' extra: pip install 'shadowlab[distributed]'"
                             ) from exc
    return Client, LocalCluster


@contextmanager
def connect(execution: Execution) -> Iterator[Any]:
    """A Dask client for ``execution`` (None when it runs in this process), shared by nested calls.

    With ``workers=N`` a local cluster of ``N`` processes is started and shut down on exit;
    with ``scheduler=ADDRESS`` the scheduler must answer within ``CONNECT_TIMEOUT_S`` seconds.
    Inside the block, every :func:`map_chunks` of the same execution reuses the client, so a
    command that makes several passes starts one cluster.
    """
    if not execution.distributed:
        yield None
        return
    where = (execution.scheduler, execution.workers, execution.threads_per_worker)  # not memory or chunk size
    if _active_client and _active_client[-1][0] == where:
        yield _active_client[-1][1]
        return
    Client, LocalCluster = _dask()
    if execution.scheduler is not None:
        try:
            client = Client(execution.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ShadowlabError(f"cannot reach the Dask scheduler at {execution.scheduler!r} within "
                                 f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__}: {exc}); check the address and that "
                                 "the scheduler is running") from None
        cluster = None
    else:
        try:
            cluster = LocalCluster(n_workers=execution.workers, threads_per_worker=execution.threads_per_worker,
                                   processes=True, dashboard_address=":0", memory_limit=0,
                                   env={"NUMBA_NUM_THREADS": str(execution.threads_per_worker)})
            client = Client(cluster, set_as_default=False)
        except Exception as exc:  # no ports, no processes, ...: say so in one line
            raise ShadowlabError(f"cannot start a local Dask cluster of {execution.workers} workers "
                                 f"({type(exc).__name__}: {exc})") from exc
    _active_client.append((where, client))
    try:
        yield client
    finally:
        _active_client.pop()
        client.close()
        if cluster is not None:
            cluster.close()


ChunkFunction = Callable[..., Any]


def _read_rows(source: Any, start: int, stop: int) -> Any:
    reader = getattr(source, "read", None)
    return reader(start, stop) if reader is not None else source.subset(start, stop)


def _chunk_task(source: Any, offset: int, stop: int, fn: ChunkFunction, args: tuple[Any, ...], threads: int) -> Any:
    """One chunk x batch task on a worker: read the rows, run ``fn`` with the worker's thread count."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return fn(_read_rows(source, offset, stop), offset, *args)


def map_chunks(
    source: Any,
    fn: ChunkFunction,
    *,
    chunk_snapshots: int,
    combine: Callable[[int, int, Any], None],
    batches: Sequence[tuple[Any, ...]] = ((),),
    execution: Execution | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Run ``fn(chunk, offset, *batch)`` for every chunk of ``source`` and every batch.

    ``source`` is a store (``read(start, stop)``) or in-memory data (``subset(start, stop)``)
    with ``n_snapshots`` (or ``n_shots``) rows.

    ``combine(chunk_index, batch_index, result)`` receives each result, in chunk order in this
    process and in completion order on a cluster: it must be exact in any order (integer sums)
    or reduce in chunk order (:class:`InOrder`). ``fn`` must be a module-level function (Dask
    pickles it by name). ``progress(n)`` is called with a chunk's snapshots once all its batches
    are done.

    On a cluster a :class:`~shadowlab.data.store.ShadowStore` travels to workers by location and
    each task reads its own rows; an in-memory data set and the batches are replicated to every
    worker (so that a worker lost mid-run takes no only copy with it). At most
    ``WINDOW_PER_WORKER`` tasks per worker are in flight, so the client's and the scheduler's
    memory does not grow with the number of chunks.
    """
    execution = execution or LOCAL
    n = int(source.n_snapshots if hasattr(source, "n_snapshots") else source.n_shots)
    n_batches = len(batches)
    if not execution.distributed:
        for ci, offset in enumerate(range(0, n, chunk_snapshots)):
            stop = min(n, offset + chunk_snapshots)
            chunk = _read_rows(source, offset, stop)
            for bi, args in enumerate(batches):
                combine(ci, bi, fn(chunk, offset, *args))
            if progress is not None:
                progress(stop - offset)
        return
    from distributed import as_completed

    tasks = ((ci, bi, offset, min(n, offset + chunk_snapshots))
             for ci, offset in enumerate(range(0, n, chunk_snapshots)) for bi in range(n_batches))
    with connect(execution) as client:
        data = source if hasattr(source, "read") else client.scatter(source, broadcast=True)
        batch_refs = client.scatter(list(batches), broadcast=True)
        window = WINDOW_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
        where: dict[str, tuple[int, int, int]] = {}
        left: dict[int, int] = {}  # batches still running per chunk, for progress

        def submit(ci: int, bi: int, offset: int, stop: int) -> Any:
            fut = client.submit(_chunk_task, data, offset, stop, fn, batch_refs[bi], execution.threads_per_worker,
                                pure=False, retries=TASK_RETRIES)
            where[fut.key] = (ci, bi, stop - offset)
            left[ci] = left.get(ci, 0) + 1
            return fut

        pending = as_completed([submit(*t) for t in itertools.islice(tasks, window)], loop=client.loop)
        for fut in pending:
            ci, bi, size = where.pop(fut.key)
            try:
                result = fut.result()
            except ShadowlabError:
                raise
            except Exception as exc:  # failed for good: its workers kept dying, the cluster went away, ...
                raise ShadowlabError(f"a Dask task failed ({type(exc).__name__}: {exc}); nothing was computed"
                                     ) from exc
            combine(ci, bi, result)
            fut.release()
            following = next(tasks, None)
            if following is not None:
                pending.add(submit(*following))
            left[ci] -= 1
            if not left[ci]:
                del left[ci]
                if progress is not None:
                    progress(size)


class InOrder:
    """Fold per-chunk partial results in chunk order, whatever order they arrive in.

    ``add(chunk_index, result)`` holds a result only until every earlier chunk's has arrived, then
    calls ``fold(result)`` on the run of consecutive results; floating-point sums folded this way
    do not depend on where or in which order the chunks were computed.
    """

    def __init__(self, fold: Callable[[Any], None]):
        self._fold = fold
        self._next = 0
        self._waiting: dict[int, Any] = {}

    def add(self, chunk_index: int, result: Any) -> None:
        self._waiting[chunk_index] = result
        while self._next in self._waiting:
            self._fold(self._waiting.pop(self._next))
            self._next += 1
