"""The shadow store: snapshots on disk in a Zarr v3 group, chunked along snapshots.

Layout (format 1; format 2 = format 1 plus the ``twirl`` array)
-----------------------------------------------------------------
``<store>/zarr.json``: the group; its attribute ``"shadowlab"`` holds the metadata below.
Arrays, all chunked along the snapshot axis (``chunk_snapshots`` rows per chunk):

* ``bases``    ``(S, n)`` uint8, 0/1/2 = X/Y/Z;
* ``outcomes`` ``(S, n)`` uint8, 0 = eigenvalue +1, 1 = eigenvalue -1;
* ``settings`` ``(S,)`` int64, setting index per snapshot;
* ``twirl``    ``(S, n)`` uint8 readout-twirl masks (only in stores with ``readout_twirl``: 1
  where an X flip preceded the measurement; the outcomes are already corrected). Such stores
  are written as format 2, so that a shadowlab from before twirling refuses them rather than
  appending rows without masks.

Compressed with Blosc (zstd, bit-shuffle), which stores a basis in about 1.6 bits and an
outcome in about 1 bit.

Metadata (``attrs["shadowlab"]``): ``format`` (integer, checked strictly), ``writer``
(shadowlab version), ``ensemble`` (``"local_pauli"``), ``n_qubits``, ``n_snapshots`` (the number
of *committed* rows), ``n_settings`` (1 + the largest setting index), ``chunk_snapshots``,
``created`` (UTC ISO 8601), ``readout_twirl`` (whether snapshots carry twirl masks; absent =
false), ``provenance`` (free-form, from the first batch), ``batches`` (one
record per appended batch: rows, time, basis counts, provenance) and ``schema`` (array names,
dims, dtypes, codes).

Appends are crash-safe: rows are written past the committed count first and ``n_snapshots`` is
raised only after they are complete, so a reader never sees a half-written batch, and a new
append overwrites any rows a killed writer left past the committed count.

Locations: local directories and object storage
-----------------------------------------------
A store's *location* is a local path or an fsspec URL: ``s3://bucket/prefix/name.zarr`` (S3 or
any S3-compatible server, through s3fs), ``memory://name.zarr`` (this process only, for tests),
or any other protocol fsspec has an implementation for; ``file://`` URLs are local paths.
``storage_options`` go to the fsspec file system. For ``s3://``, s3fs (through botocore) finds
credentials and the endpoint the usual AWS way: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
(or a profile, or an instance role) and ``AWS_ENDPOINT_URL`` for a non-AWS server, unless
``storage_options`` give ``key``, ``secret`` and ``endpoint_url``. A URL is checked before
anything is written (the protocol is known, credentials are found, the bucket exists, the store
exists or not as the operation needs), and each failure is a :class:`StoreFormatError` or
:class:`ShadowlabError` naming the URL.

New stores appear whole or not at all. Locally, :func:`staged_location` writes under a temporary
name and renames it into place (:func:`shadowlab.atomic.atomic_path`). Object storage has no
rename, so there the store is written under a temporary sibling prefix (``.name.zarr.tmp-*``)
and then copied, object by object (server-side on S3), to its location with the root
``zarr.json`` (which holds the shadowlab metadata) copied last: readers look for that object
first, so until it lands there is no store, and a failure removes the temporary prefix and
whatever was copied. Replacing a store (``force``) deletes the old root ``zarr.json`` first, so
readers never see a mix of two stores. Appends to a remote store keep the commit protocol above:
the root ``zarr.json`` is one object, replaced whole by each commit.

A pickled store (e.g. sent into a Dask task) carries its location (local paths made absolute),
storage options, creation time and the row counts its sender saw; the receiving process re-opens
it read-only (a store replaced since is refused; a :meth:`ShadowStore.head` view stays one),
reading credentials from its own environment unless the storage options carry them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from shadowlab.atomic import atomic_path, check_can_write
from shadowlab.data.dataset import ENSEMBLE_LOCAL_PAULI, ShadowData
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StoreFormatError

FORMAT_VERSION = 1
#: Format of stores with readout-twirl masks (format 1 plus the ``twirl`` array).
TWIRLED_FORMAT_VERSION = 2
DEFAULT_CHUNK_SNAPSHOTS = 65536
_META_KEY = "shadowlab"
_SCHEMA = {
    "bases": {"dims": ["snapshot", "qubit"], "dtype": "uint8", "codes": {"0": "X", "1": "Y", "2": "Z"}},
    "outcomes": {"dims": ["snapshot", "qubit"], "dtype": "uint8", "codes": {"0": "+1", "1": "-1"}},
    "settings": {"dims": ["snapshot"], "dtype": "int64"},
    "twirl": {"dims": ["snapshot", "qubit"], "dtype": "uint8", "codes": {"0": "no flip", "1": "X before readout"},
              "present": "format 2 (readout_twirl) only"},
    "qubit_order": "column q is qubit q (qubit 0 = first letter of a dense Pauli label)",
}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _writer() -> str:
    from shadowlab import __version__

    return f"shadowlab {__version__}"


def _compressor() -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")


# -- locations: local paths and fsspec URLs ---------------------------------------------------

Location = str | os.PathLike[str]
_LOCAL_SCHEME = "file://"


def is_url(location: Location) -> bool:
    """True if ``location`` is an fsspec URL of remote (or in-memory) storage, not a local path.

    ``file://`` URLs are local paths.

    >>> is_url("s3://bucket/run.zarr"), is_url("run.zarr"), is_url("file:///tmp/run.zarr")
    (True, False, False)
    """
    return isinstance(location, str) and "://" in location and not location.startswith(_LOCAL_SCHEME)


def _local_path(location: Location) -> Path:
    """A local location as a Path (a ``file://`` URL loses its scheme)."""
    text = os.fspath(location)
    return Path(text[len(_LOCAL_SCHEME):] if text.startswith(_LOCAL_SCHEME) else text)


def _filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the store's root path in it (no trailing slash)."""
    protocol = url.split("://", 1)[0]
    try:
        import fsspec
    except ImportError:
        raise ShadowlabError(f"{url}: stores at URLs need fsspec; install 'shadowlab[distributed]'") from None
    if protocol not in fsspec.available_protocols():
        raise StoreFormatError(f"{url}: unknown storage protocol {protocol!r}; give a local path or a URL such as "
                               "s3://bucket/prefix/name.zarr")
    try:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        # fsspec names the package a known protocol needs ("Please install s3fs to access S3").
        raise ShadowlabError(f"{url}: {protocol}:// storage needs a package that is not installed ({exc}); for "
                             "s3:// install 'shadowlab[distributed]'") from None
    except (TypeError, ValueError) as exc:
        raise ShadowlabError(f"{url}: cannot open this URL with these storage options ({exc})") from None
    root = root.rstrip("/")
    if _has_buckets(fs) and "/" not in root:
        raise ShadowlabError(f"{url}: names a bucket, not a store in it; give e.g. {protocol}://{root}/name.zarr")
    return fs, root


def _has_buckets(fs: Any) -> bool:
    # Object stores (s3fs, gcsfs, adlfs) split paths into bucket and key; the bucket must exist.
    return hasattr(fs, "split_path")


@contextmanager
def _storage_errors(url: str) -> Iterator[None]:
    """Turn the errors of remote storage into one-line ShadowlabErrors naming ``url``.

    FileNotFoundError passes through: callers know what was missing.
    """
    try:
        yield
    except (ShadowlabError, FileNotFoundError):
        raise
    except PermissionError as exc:
        raise ShadowlabError(f"{url}: access denied ({exc}); check that the credentials may read and write it"
                             ) from None
    except Exception as exc:
        # botocore's exception classes are matched by name: s3fs is optional, and so is botocore.
        if {"NoCredentialsError", "PartialCredentialsError"} & {c.__name__ for c in type(exc).__mro__}:
            raise ShadowlabError(
                f"{url}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                "AWS_ENDPOINT_URL for a non-AWS server such as MinIO), or pass storage_options with 'key', "
                "'secret' and 'endpoint_url'") from None
        raise ShadowlabError(f"{url}: storage request failed ({type(exc).__name__}: {exc}); check the endpoint "
                             "(AWS_ENDPOINT_URL or storage_options) and the network") from None


def _probe(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str, str]:
    """``(fs, root, state)`` of a URL, ``state`` being ``"store"`` (a Zarr group is there),
    ``"other"`` (something else is) or ``"absent"``.

    Checks, with one or two cheap metadata requests, that the protocol is known, that there are
    credentials and that the bucket exists.
    """
    fs, root = _filesystem(url, storage_options)
    with _storage_errors(url):
        # Listings are cached per file system instance, and zarr writes through its own instance.
        fs.invalidate_cache(root)
        if _has_buckets(fs):
            bucket = root.split("/", 1)[0]
            try:
                fs.info(bucket)
            except FileNotFoundError:
                raise StoreFormatError(f"{url}: bucket {bucket!r} does not exist (or these credentials cannot see "
                                       "it); create it first, or check the URL and the endpoint") from None
        for state, key in (("store", f"{root}/zarr.json"), ("other", root)):
            try:
                fs.info(key)
                return fs, root, state
            except FileNotFoundError:
                pass
    return fs, root, "absent"


def check_can_create(location: Location, *, force: bool = False,
                     storage_options: dict[str, Any] | None = None) -> Path | str:
    """Refuse, before any work, a store location that exists (unless ``force``) or cannot be reached.

    Returns the location: a Path for a local one, the URL otherwise. For a URL this checks the
    protocol, the credentials and the bucket (see the module documentation).
    """
    if not is_url(location):
        return check_can_write(_local_path(location), force=force)
    url = str(location)
    if _probe(url, storage_options)[2] != "absent" and not force:
        raise ShadowlabError(f"{url} already exists; pass --force (force=True) to overwrite it")
    return url


@contextmanager
def staged_location(location: Location, *, force: bool = False,
                    storage_options: dict[str, Any] | None = None) -> Iterator[Path | str]:
    """Yield a temporary location to write a new store to; on success it becomes ``location``.

    On any exception nothing is left at ``location`` or at the temporary location. Locally this is
    :func:`shadowlab.atomic.atomic_path`; on object storage the store is copied into place with its
    root ``zarr.json`` last (see the module documentation).
    """
    if not is_url(location):
        with atomic_path(_local_path(location), force=force) as tmp:
            yield tmp
        return
    url = str(check_can_create(location, force=force, storage_options=storage_options))
    fs, root = _filesystem(url, storage_options)
    head, name = url.rstrip("/").rsplit("/", 1)
    tag = f".{name}.tmp-{secrets.token_hex(6)}"
    tmp_root = f"{root.rsplit('/', 1)[0]}/{tag}"
    try:
        yield f"{head}/{tag}"
        with _storage_errors(url):
            _publish(fs, tmp_root, root, replace=force)
    finally:
        with contextlib.suppress(Exception):  # cleanup is best effort: the original error matters
            fs.rm(tmp_root, recursive=True)


def _publish(fs: Any, src: str, dst: str, *, replace: bool) -> None:
    """Copy the store at ``src`` to ``dst`` with the root ``zarr.json`` last; on failure remove ``dst``."""
    fs.invalidate_cache(src)
    body = sorted(f for f in fs.find(src) if f != f"{src}/zarr.json")
    if replace and fs.exists(dst):
        # The old root metadata goes first, so that no reader sees an old store with its arrays half gone.
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{dst}/zarr.json")
        fs.rm(dst, recursive=True)
    try:
        fs.copy(body, [dst + f[len(src):] for f in body])
        fs.copy(f"{src}/zarr.json", f"{dst}/zarr.json")  # the store appears only now
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(dst, recursive=True)
        raise


class ZarrStoreBase:
    """What every shadowlab Zarr store shares: the metadata record and its committed row count.

    It holds the Zarr group, the store's location and ``_meta`` (the ``attrs["shadowlab"]``
    dict); subclasses add the layout (arrays, ``read``, ``append``).

    Attributes
    ----------
    path:
        A Path for a local store; the URL for one on object storage.
    location:
        ``str(path)``: what messages name the store by.
    storage_options:
        Options of the fsspec file system of a URL (empty for a local store).
    """

    _meta: dict[str, Any]

    def __init__(self, group: zarr.Group, path: Path | str, meta: dict[str, Any], *, writable: bool = True,
                 storage_options: dict[str, Any] | None = None):
        self._group = group
        self.path = path
        self.location = str(path)
        self.storage_options = dict(storage_options or {})
        self._meta = meta
        self._writable = writable

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled (e.g. into a Dask task) as its location: the receiving process re-opens it read-only
        # and sees the rows (and counts) this one sees. A local path travels absolute, for workers
        # started in another directory; the creation time tells a store replaced since (--force)
        # from this one. The storage options travel as JSON text, a hashable form for _reopen's cache.
        try:
            options = json.dumps(self.storage_options, sort_keys=True)
        except TypeError as exc:
            raise ShadowlabError(f"{self.location}: its storage options must be JSON values for the store to be sent "
                                 f"to another process ({exc})") from None
        location = self.location if is_url(self.location) else str(Path(self.location).resolve())
        counts = json.dumps({k: self._meta[k] for k in ("n_snapshots", "n_settings") if k in self._meta})
        return _reopen, (type(self), location, options, str(self._meta.get("created")), counts)

    def _view(self, overrides: dict[str, Any]) -> Any:
        """A read-only copy of this store with some metadata replaced (a prefix view)."""
        return type(self)(self._group, self.path, {**self._meta, **overrides}, writable=False,
                          storage_options=self.storage_options)

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return int(self._meta["n_qubits"])

    @property
    def n_snapshots(self) -> int:
        """Number of committed snapshots."""
        return int(self._meta["n_snapshots"])

    @property
    def chunk_snapshots(self) -> int:
        """Rows per on-disk chunk."""
        return int(self._meta["chunk_snapshots"])

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the store's metadata."""
        return json.loads(json.dumps(self._meta))

    def _rows(self, start: int, stop: int | None) -> tuple[int, int]:
        """``start:stop`` clipped to the committed rows."""
        s = self.n_snapshots
        stop = s if stop is None else min(stop, s)
        return max(0, min(start, stop)), stop

    @staticmethod
    def _open_group(location: Location, mode: str, *, written_by: str,
                    storage_options: dict[str, Any] | None = None) -> tuple[Path | str, zarr.Group, dict[str, Any]]:
        """Open the Zarr group at ``location`` and return ``(path or URL, group, shadowlab metadata)``.

        Raises :class:`StoreFormatError` for a missing location, one that is not a Zarr v3
        group, or a group without shadowlab metadata; ``written_by`` names the commands that make
        the expected kind of store. Ensemble and format checks are the caller's.
        """
        where: Path | str
        if is_url(location):
            where = str(location)
            state = _probe(where, storage_options)[2]
            if state == "absent":
                raise StoreFormatError(f"{where}: no such store")
            target, options = where, {"storage_options": storage_options}
        else:
            where = _local_path(location)
            if not where.exists():
                raise StoreFormatError(f"{where}: no such store")
            state = "store" if (where / "zarr.json").is_file() else "other"
            target, options = str(where), {}
        if state == "other":
            raise StoreFormatError(f"{where}: not a Zarr v3 store (no zarr.json); expected a store written by "
                                   f"{written_by}")
        try:
            group = zarr.open_group(target, mode="r+" if mode != "r" else "r", zarr_format=3, **options)
        except Exception as exc:  # zarr raises several types for unreadable metadata
            raise StoreFormatError(f"{where}: cannot open as a Zarr v3 group: {exc}") from exc
        meta = group.attrs.get(_META_KEY)
        if not isinstance(meta, dict):
            raise StoreFormatError(f"{where}: a Zarr store, but not a shadowlab one (no '{_META_KEY}' metadata)")
        return where, group, meta

    @staticmethod
    def _create_group(location: Location, *, storage_options: dict[str, Any] | None = None
                      ) -> tuple[Path | str, zarr.Group]:
        """A new, empty Zarr v3 group at ``location`` (which must not exist), as ``(path or URL, group)``."""
        if is_url(location):
            url = str(location)
            if _probe(url, storage_options)[2] != "absent":
                raise ShadowlabError(f"{url} already exists; choose another location or remove it")
            with _storage_errors(url):
                return url, zarr.open_group(url, mode="w-", zarr_format=3, storage_options=storage_options)
        p = _local_path(location)
        if p.exists():
            raise ShadowlabError(f"{p} already exists; choose another path or remove it")
        return p, zarr.open_group(str(p), mode="w-", zarr_format=3)

    def disk_bytes(self) -> int:
        """Bytes the store occupies (on disk, or in object storage)."""
        if isinstance(self.path, Path):
            return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        fs, root = _filesystem(self.location, self.storage_options)
        with _storage_errors(self.location):
            fs.invalidate_cache(root)
            return int(fs.du(root))

    def _validate_layout(self, arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
        """Check the metadata sizes and that each array has shape ``(S, *tail)``, the dtype, and at
        least the committed rows; ``arrays`` maps names to ``(tail, dtype)``."""
        p, meta = self.location, self._meta
        for key in ("n_qubits", "n_snapshots", "chunk_snapshots"):
            if not isinstance(meta.get(key), int) or meta[key] < 0:
                raise StoreFormatError(f"{p}: metadata field {key!r} is missing or invalid")
        s = meta["n_snapshots"]
        for name, (tail, dtype) in arrays.items():
            try:
                arr = self._group[name]
            except KeyError:
                raise StoreFormatError(f"{p}: array {name!r} is missing; the store is incomplete or corrupted"
                                       ) from None
            if tuple(arr.shape[1:]) != tail or arr.dtype != np.dtype(dtype):
                raise StoreFormatError(f"{p}: array {name!r} has shape {arr.shape}, dtype {arr.dtype}; expected "
                                       f"({', '.join(['S', *map(str, tail)])}) {dtype}")
            if arr.shape[0] < s:
                raise StoreFormatError(f"{p}: array {name!r} has {arr.shape[0]} rows but {s} are committed")

    def load(self) -> Any:
        """All committed rows in memory (the subclass's in-memory type)."""
        return self.read(0, None)  # type: ignore[attr-defined]

    def iter_chunks(self, chunk_snapshots: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(offset, chunk)`` over the committed rows, one chunk in memory at a time."""
        step = chunk_snapshots or self.chunk_snapshots
        for start in range(0, self.n_snapshots, step):
            yield start, self.read(start, start + step)  # type: ignore[attr-defined]

    def _write_rows(self, values: dict[str, np.ndarray], n_rows: int, record: dict[str, Any],
                    meta_updates: dict[str, Any] | None = None) -> None:
        """Append ``n_rows`` rows to each named array, then commit (the crash-safe protocol).

        Rows are written past the committed count first; raising ``n_snapshots`` in the metadata
        (with the batch ``record`` and ``meta_updates``) is the commit point. The first batch's
        provenance becomes the store's when the store has none.
        """
        group = self._group
        start = self.n_snapshots
        stop = start + n_rows
        for name, rows in values.items():
            arr = group[name]
            arr.resize((stop, *arr.shape[1:]))
            arr[start:stop] = rows
        meta = dict(self._meta)
        meta.update(meta_updates or {})
        meta["n_snapshots"] = stop
        meta["batches"] = [*meta["batches"], {"rows": [start, stop], "time": _now(), **record}]
        if not meta["provenance"]:
            meta["provenance"] = record.get("provenance", {})
        group.attrs[_META_KEY] = meta  # the commit point
        self._meta = meta


class ShadowStore(ZarrStoreBase):
    """A lazily opened shadow store; reads chunks on demand.

    Open an existing store with :meth:`open`, make one with :meth:`create` or
    :func:`write_store`. Estimators accept a store wherever they accept a :class:`ShadowData`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.zarr")
    >>> d = ShadowData(np.zeros((3, 2), np.uint8), np.zeros((3, 2), np.uint8))
    >>> store = write_store(d, path)
    >>> ShadowStore.open(path).n_snapshots
    3
    """

    # -- opening and creating -------------------------------------------------------------
    @classmethod
    def open(cls, location: Location, *, mode: str = "r",
             storage_options: dict[str, Any] | None = None) -> ShadowStore:
        """Open a store (a local path or a URL such as ``s3://bucket/run.zarr``), validating its
        format and metadata; ``storage_options`` configure the fsspec file system of a URL.

        Raises
        ------
        StoreFormatError
            If ``location`` is not a shadowlab store, is of another format version, or is corrupted.
        ShadowlabError
            If a URL cannot be reached (unknown protocol, no credentials, no such bucket).
        """
        p, group, meta = cls._open_group(location, mode, written_by="shadowlab", storage_options=storage_options)
        fmt = meta.get("format")
        if fmt not in (FORMAT_VERSION, TWIRLED_FORMAT_VERSION):
            raise StoreFormatError(
                f"{p}: shadowlab store format {fmt!r}, but this version reads formats {FORMAT_VERSION} and "
                f"{TWIRLED_FORMAT_VERSION}; "
                f"it was written by {meta.get('writer', 'an unknown writer')}: upgrade shadowlab to read it"
            )
        if (fmt == TWIRLED_FORMAT_VERSION) != bool(meta.get("readout_twirl", False)):
            raise StoreFormatError(f"{p}: a format {fmt} store with readout_twirl = {meta.get('readout_twirl')!r}; "
                                   "format 2 means twirled and format 1 untwirled, so the metadata is corrupted")
        if meta.get("ensemble") != ENSEMBLE_LOCAL_PAULI:
            hint = {"bell_two_copy": "; it holds two-copy Bell shots: use the 'shadowlab twocopy' commands "
                                     "(predict, purity) or shadowlab.twocopy.estimate",
                    "global_clifford": "; it holds global-Clifford snapshots: use 'shadowlab fidelity' (and "
                                       "'shadowlab calibrate-clifford' to calibrate)"}
            raise StoreFormatError(f"{p}: ensemble {meta.get('ensemble')!r} is not supported here, which needs "
                                   f"local-Pauli snapshots{hint.get(str(meta.get('ensemble')), '')}")
        store = cls(group, p, meta, writable=mode != "r", storage_options=storage_options)
        store._validate()
        return store

    @classmethod
    def create(
        cls,
        location: Location,
        n_qubits: int,
        *,
        chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
        provenance: dict[str, Any] | None = None,
        readout_twirl: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> ShadowStore:
        """Create an empty store at ``location`` (a local path or a URL; it must not exist).

        The store appears at once, empty; to make a new store appear only when its data is
        complete, create it inside :func:`staged_location` (as :func:`write_store` does).

        ``readout_twirl``: the store holds readout-twirled snapshots, each with its twirl mask;
        every appended batch must then carry masks, and untwirled batches are refused.
        """
        if n_qubits < 1:
            raise ShadowlabError(f"n_qubits must be >= 1, got {n_qubits}")
        if chunk_snapshots < 64 or chunk_snapshots % 64:
            raise ShadowlabError(f"chunk_snapshots must be a positive multiple of 64, got {chunk_snapshots}")
        p, group = cls._create_group(location, storage_options=storage_options)
        planes = ["bases", "outcomes", *(["twirl"] if readout_twirl else [])]
        for name in planes:
            shape, chunks = (0, n_qubits), (chunk_snapshots, n_qubits)
            group.create_array(name, shape=shape, chunks=chunks, dtype="uint8", compressors=_compressor(),
                               fill_value=0, dimension_names=["snapshot", "qubit"])
        group.create_array("settings", shape=(0,), chunks=(chunk_snapshots,), dtype="int64",
                           compressors=_compressor(), fill_value=0, dimension_names=["snapshot"])
        meta = {
            "format": TWIRLED_FORMAT_VERSION if readout_twirl else FORMAT_VERSION,
            "writer": _writer(),
            "ensemble": ENSEMBLE_LOCAL_PAULI,
            "n_qubits": int(n_qubits),
            "n_snapshots": 0,
            "n_settings": 0,
            "chunk_snapshots": int(chunk_snapshots),
            "created": _now(),
            "readout_twirl": bool(readout_twirl),
            "provenance": _jsonable(provenance or {}),
            "batches": [],
            "schema": _SCHEMA,
        }
        group.attrs[_META_KEY] = meta
        return cls(group, p, meta, storage_options=storage_options)

    def _validate(self) -> None:
        n = self._meta.get("n_qubits")
        layout = {"bases": ((n,), "uint8"), "outcomes": ((n,), "uint8"), "settings": ((), "int64")}
        if self.readout_twirl:
            layout["twirl"] = ((n,), "uint8")
        self._validate_layout(layout)

    # -- properties --------------------------------------------------------------------------
    @property
    def n_settings(self) -> int:
        """1 + the largest setting index (0 when empty)."""
        return int(self._meta.get("n_settings", 0))

    @property
    def readout_twirl(self) -> bool:
        """Whether the snapshots were taken with readout twirling (each carries its mask)."""
        return bool(self._meta.get("readout_twirl", False))

    @property
    def scheme_record(self) -> dict[str, Any] | None:
        """The measurement scheme recorded in the store's provenance (``scheme``), if any."""
        record = self._meta.get("provenance", {}).get("scheme")
        return record if isinstance(record, dict) else None

    # -- reading -------------------------------------------------------------------------------
    def read(self, start: int = 0, stop: int | None = None) -> ShadowData:
        """Committed snapshots ``start:stop`` as an in-memory :class:`ShadowData`."""
        start, stop = self._rows(start, stop)
        try:
            bases = self._group["bases"][start:stop]
            outcomes = self._group["outcomes"][start:stop]
            settings = self._group["settings"][start:stop]
            twirl = self._group["twirl"][start:stop] if self.readout_twirl else None
        except Exception as exc:
            raise StoreFormatError(f"{self.location}: cannot read rows {start}:{stop}: {exc}") from exc
        try:
            return ShadowData(bases, outcomes, settings, {"store": self.location, **self._meta["provenance"]}, twirl)
        except ShadowlabError as exc:
            raise StoreFormatError(f"{self.location}: rows {start}:{stop} hold invalid data: {exc}") from exc

    def head(self, n_snapshots: int) -> ShadowStore:
        """A read-only view of the first ``n_snapshots`` committed snapshots, still read from disk.

        For checking an out-of-core run against an in-memory one (``store.head(n)`` against
        ``store.read(0, n)``) or estimating from part of a long run. Its ``n_settings`` is that of
        the prefix (one pass over the setting indices).
        """
        if not 1 <= n_snapshots <= self.n_snapshots:
            raise ShadowlabError(f"{self.location}: a prefix of {n_snapshots} snapshots; the store has "
                                 f"{self.n_snapshots} (expected 1..{self.n_snapshots})")
        step = max(self.chunk_snapshots, 1)
        largest = max(int(self.read_settings(lo, min(lo + step, n_snapshots)).max())
                      for lo in range(0, n_snapshots, step))
        return self._prefix(n_snapshots, largest + 1)

    def _prefix(self, n_snapshots: int, n_settings: int) -> ShadowStore:
        return self._view({"n_snapshots": int(n_snapshots), "n_settings": int(n_settings)})

    def read_settings(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Setting indices of committed snapshots ``start:stop`` (reads only that array)."""
        start, stop = self._rows(start, stop)
        try:
            return np.asarray(self._group["settings"][start:stop], dtype=np.int64)
        except Exception as exc:
            raise StoreFormatError(f"{self.location}: cannot read settings {start}:{stop}: {exc}") from exc

    def load(self) -> ShadowData:
        """All committed snapshots in memory."""
        return self.read(0, None)

    # -- writing -------------------------------------------------------------------------------
    def append(self, data: ShadowData, *, provenance: dict[str, Any] | None = None) -> None:
        """Append a batch of snapshots; it becomes visible only once completely written.

        Setting indices of the batch are shifted past those already in the store, so that
        batches never share a setting by accident.
        """
        if not self._writable:
            raise ShadowlabError(f"{self.location} was opened read-only; open it with mode='a' to append")
        if data.n_qubits != self.n_qubits:
            raise QubitCountMismatchError(
                f"{self.location}: store has {self.n_qubits} qubits, batch has {data.n_qubits}"
            )
        if data.readout_twirl != self.readout_twirl:
            have, got = ("readout-twirled", "untwirled") if self.readout_twirl else ("untwirled", "readout-twirled")
            raise ShadowlabError(f"{self.location}: the store holds {have} snapshots and the batch is {got}; twirled "
                                 "and untwirled data have different readout noise and cannot share a store")
        if data.n_snapshots == 0:
            return
        settings = data.settings + self.n_settings
        basis_counts = np.bincount(data.bases.ravel(), minlength=3)[:3].tolist()
        rows = {"bases": data.bases, "outcomes": data.outcomes, "settings": settings}
        if data.twirl is not None:
            rows["twirl"] = data.twirl
        self._write_rows(rows, data.n_snapshots,
                         {"basis_counts": basis_counts, "provenance": _jsonable(provenance or data.metadata)},
                         {"n_settings": int(settings.max()) + 1})

    def summary(self) -> dict[str, Any]:
        """Facts for ``shadowlab info``: sizes, counts per basis, provenance."""
        meta = self.metadata
        # Each batch records its basis counts when appended, so this reads no snapshot data.
        counts = np.zeros(3, dtype=np.int64)
        for batch in meta["batches"]:
            counts += np.asarray(batch["basis_counts"], dtype=np.int64)
        total = max(int(counts.sum()), 1)
        return {
            "path": self.location,
            "format": meta["format"],
            "writer": meta["writer"],
            "ensemble": meta["ensemble"],
            "n_qubits": self.n_qubits,
            "n_snapshots": self.n_snapshots,
            "n_settings": self.n_settings,
            "chunk_snapshots": self.chunk_snapshots,
            "n_batches": len(meta["batches"]),
            "readout_twirl": self.readout_twirl,
            "created": meta["created"],
            "basis_fractions": {"X": counts[0] / total, "Y": counts[1] / total, "Z": counts[2] / total},
            "disk_bytes": self.disk_bytes(),
            "provenance": meta["provenance"],
        }

    # -- writing from several processes: reserve, write disjoint regions, commit once -----------
    def reserve(self, n_rows: int) -> None:
        """Size every array to ``n_rows`` rows (at least the committed ones) without committing any.

        Then other processes, each with its own writable handle, may fill disjoint regions past the
        committed count with :meth:`write_region`; :meth:`commit` publishes them. Rows past the
        committed count are invisible to readers, as in :meth:`append`.
        """
        if not self._writable:
            raise ShadowlabError(f"{self.path} was opened read-only; open it with mode='a' to write")
        if n_rows < self.n_snapshots:
            raise ShadowlabError(f"{self.path}: cannot reserve {n_rows} rows, {self.n_snapshots} are committed")
        for name in self._planes():
            arr = self._group[name]
            arr.resize((n_rows, *arr.shape[1:]))

    def write_region(self, start: int, data: ShadowData) -> None:
        """Write ``data`` as rows ``start:start + data.n_snapshots``, setting indices as they are.

        The rows must lie in the reserved, uncommitted region. Concurrent writers must write
        whole, disjoint chunks (``chunk_snapshots`` rows, aligned): two writers of one chunk
        would each rewrite it whole and lose the other's rows.
        """
        if not self._writable:
            raise ShadowlabError(f"{self.path} was opened read-only; open it with mode='a' to write")
        if data.n_qubits != self.n_qubits:
            raise QubitCountMismatchError(f"{self.path}: store has {self.n_qubits} qubits, rows have {data.n_qubits}")
        if data.readout_twirl != self.readout_twirl:
            raise ShadowlabError(f"{self.path}: twirled and untwirled snapshots cannot share a store")
        stop = start + data.n_snapshots
        reserved = self._group["bases"].shape[0]
        if start < self.n_snapshots or stop > reserved:
            raise ShadowlabError(f"{self.path}: rows {start}:{stop} are outside the uncommitted region "
                                 f"{self.n_snapshots}:{reserved}; reserve() them first")
        rows = {"bases": data.bases, "outcomes": data.outcomes, "settings": data.settings, "twirl": data.twirl}
        for name in self._planes():
            self._group[name][start:stop] = rows[name]

    def commit(self, n_rows: int, records: list[dict[str, Any]], meta_updates: dict[str, Any] | None = None) -> None:
        """Publish the first ``n_rows`` rows (written with :meth:`write_region`): the commit point.

        ``records`` are appended to the metadata's ``batches`` (each needs ``rows`` and
        ``basis_counts``, for :meth:`summary`); ``meta_updates`` (e.g. ``n_settings``) are merged in.
        """
        if not self._writable:
            raise ShadowlabError(f"{self.path} was opened read-only; open it with mode='a' to write")
        reserved = self._group["bases"].shape[0]
        if not self.n_snapshots <= n_rows <= reserved:
            raise ShadowlabError(f"{self.path}: cannot commit {n_rows} rows ({self.n_snapshots} committed, "
                                 f"{reserved} reserved)")
        meta = dict(self._meta)
        meta.update(_jsonable(meta_updates or {}))
        meta["n_snapshots"] = int(n_rows)
        meta["batches"] = [*meta["batches"], *_jsonable(records)]
        self._group.attrs[_META_KEY] = meta  # the commit point
        self._meta = meta

    def _planes(self) -> list[str]:
        return ["bases", "outcomes", "settings", *(["twirl"] if self.readout_twirl else [])]


@functools.lru_cache(maxsize=8)
def _reopen(kind: type[ZarrStoreBase], location: str, storage_options: str, created: str, counts: str) -> Any:
    """A store opened read-only in this process, once per process and store (workers re-open the
    stores they are sent), showing the rows and counts the sender saw (``counts``, JSON): rows
    appended since stay hidden and a :meth:`ShadowStore.head` view stays one."""
    options = json.loads(storage_options)
    store = kind.open(location, **({"storage_options": options} if options else {}))  # type: ignore[attr-defined]
    if str(store._meta.get("created")) != created:
        raise StoreFormatError(f"{location}: the store was replaced (created {store._meta.get('created')}, not "
                               f"{created}) since it was opened; every worker must see the same store")
    seen = json.loads(counts)
    if store.n_snapshots < seen["n_snapshots"]:
        raise StoreFormatError(f"{location}: holds {store.n_snapshots} committed snapshots here, but "
                               f"{seen['n_snapshots']} where it was opened; every worker must see the same store")
    return store if all(store._meta.get(k) == v for k, v in seen.items()) else store._view(seen)


def write_store(
    data: ShadowData,
    location: Location,
    *,
    force: bool = False,
    chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
    provenance: dict[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> ShadowStore:
    """Write ``data`` as a new store at ``location`` (a local path or a URL); nothing is left there
    on failure (see :func:`staged_location`)."""
    with staged_location(location, force=force, storage_options=storage_options) as tmp:
        store = ShadowStore.create(tmp, data.n_qubits, chunk_snapshots=chunk_snapshots,
                                   provenance=provenance or data.metadata, readout_twirl=data.readout_twirl,
                                   storage_options=storage_options)
        store.append(data, provenance=provenance or data.metadata)
    return ShadowStore.open(location, storage_options=storage_options)


def is_store(location: Location, *, storage_options: dict[str, Any] | None = None) -> bool:
    """True if ``location`` holds a Zarr group (it may still be a foreign one).

    For a URL, an unreachable location (no credentials, no such bucket) raises rather than
    answering False, so that the message says why.
    """
    if is_url(location):
        return _probe(str(location), storage_options)[2] == "store"
    p = _local_path(location)
    return p.is_dir() and (p / "zarr.json").is_file()


def read_store_metadata(location: Location, *,
                        storage_options: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The shadowlab metadata of the store at ``location`` (any ensemble), or None if there is no
    shadowlab store there; nothing is validated beyond the metadata being a JSON object."""
    if not is_store(location, storage_options=storage_options):
        return None
    try:
        if is_url(location):
            fs, root = _filesystem(str(location), storage_options)
            with _storage_errors(str(location)):
                text = fs.cat_file(f"{root}/zarr.json")
        else:
            text = (_local_path(location) / "zarr.json").read_bytes()
        meta = json.loads(text)["attributes"][_META_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta if isinstance(meta, dict) else None


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON so that metadata is plain JSON (numpy scalars become numbers)."""

    def default(o: Any) -> Any:
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(obj, default=default))
