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
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from shadowlab.atomic import atomic_path
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


class ZarrStoreBase:
    """What every shadowlab Zarr store shares: the metadata record and its committed row count.

    It holds the Zarr group, the store path and ``_meta`` (the ``attrs["shadowlab"]`` dict);
    subclasses add the layout (arrays, ``read``, ``append``).
    """

    _meta: dict[str, Any]

    def __init__(self, group: zarr.Group, path: Path, meta: dict[str, Any], *, writable: bool = True):
        self._group = group
        self.path = path
        self._meta = meta
        self._writable = writable

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
    def _open_group(path: str | os.PathLike[str], mode: str, *, written_by: str) -> tuple[Path, zarr.Group,
                                                                                           dict[str, Any]]:
        """Open the Zarr group at ``path`` and return ``(path, group, shadowlab metadata)``.

        Raises :class:`StoreFormatError` for a missing path, a directory that is not a Zarr v3
        group, or a group without shadowlab metadata; ``written_by`` names the commands that make
        the expected kind of store. Ensemble and format checks are the caller's.
        """
        p = Path(path)
        if not p.exists():
            raise StoreFormatError(f"{p}: no such store")
        if not (p / "zarr.json").is_file():
            raise StoreFormatError(f"{p}: not a Zarr v3 store (no zarr.json); expected a directory written by "
                                   f"{written_by}")
        try:
            group = zarr.open_group(str(p), mode="r+" if mode != "r" else "r", zarr_format=3)
        except Exception as exc:  # zarr raises several types for unreadable metadata
            raise StoreFormatError(f"{p}: cannot open as a Zarr v3 group: {exc}") from exc
        meta = group.attrs.get(_META_KEY)
        if not isinstance(meta, dict):
            raise StoreFormatError(f"{p}: a Zarr store, but not a shadowlab one (no '{_META_KEY}' metadata)")
        return p, group, meta

    def _validate_layout(self, arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
        """Check the metadata sizes and that each array has shape ``(S, *tail)``, the dtype, and at
        least the committed rows; ``arrays`` maps names to ``(tail, dtype)``."""
        p, meta = self.path, self._meta
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
    def open(cls, path: str | os.PathLike[str], *, mode: str = "r") -> ShadowStore:
        """Open a store, validating its format and metadata.

        Raises
        ------
        StoreFormatError
            If ``path`` is not a shadowlab store, is of another format version, or is corrupted.
        """
        p, group, meta = cls._open_group(path, mode, written_by="shadowlab")
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
        store = cls(group, p, meta, writable=mode != "r")
        store._validate()
        return store

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        n_qubits: int,
        *,
        chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
        provenance: dict[str, Any] | None = None,
        readout_twirl: bool = False,
    ) -> ShadowStore:
        """Create an empty store at ``path`` (which must not exist).

        ``readout_twirl``: the store holds readout-twirled snapshots, each with its twirl mask;
        every appended batch must then carry masks, and untwirled batches are refused.
        """
        p = Path(path)
        if p.exists():
            raise ShadowlabError(f"{p} already exists; choose another path or remove it")
        if n_qubits < 1:
            raise ShadowlabError(f"n_qubits must be >= 1, got {n_qubits}")
        if chunk_snapshots < 64 or chunk_snapshots % 64:
            raise ShadowlabError(f"chunk_snapshots must be a positive multiple of 64, got {chunk_snapshots}")
        group = zarr.open_group(str(p), mode="w-", zarr_format=3)
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
        return cls(group, p, meta)

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
            raise StoreFormatError(f"{self.path}: cannot read rows {start}:{stop}: {exc}") from exc
        try:
            return ShadowData(bases, outcomes, settings, {"store": str(self.path), **self._meta["provenance"]}, twirl)
        except ShadowlabError as exc:
            raise StoreFormatError(f"{self.path}: rows {start}:{stop} hold invalid data: {exc}") from exc

    def read_settings(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Setting indices of committed snapshots ``start:stop`` (reads only that array)."""
        start, stop = self._rows(start, stop)
        try:
            return np.asarray(self._group["settings"][start:stop], dtype=np.int64)
        except Exception as exc:
            raise StoreFormatError(f"{self.path}: cannot read settings {start}:{stop}: {exc}") from exc

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
            raise ShadowlabError(f"{self.path} was opened read-only; open it with mode='a' to append")
        if data.n_qubits != self.n_qubits:
            raise QubitCountMismatchError(
                f"{self.path}: store has {self.n_qubits} qubits, batch has {data.n_qubits}"
            )
        if data.readout_twirl != self.readout_twirl:
            have, got = ("readout-twirled", "untwirled") if self.readout_twirl else ("untwirled", "readout-twirled")
            raise ShadowlabError(f"{self.path}: the store holds {have} snapshots and the batch is {got}; twirled and "
                                 "untwirled data have different readout noise and cannot share a store")
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
        disk = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        # Each batch records its basis counts when appended, so this reads no snapshot data.
        counts = np.zeros(3, dtype=np.int64)
        for batch in meta["batches"]:
            counts += np.asarray(batch["basis_counts"], dtype=np.int64)
        total = max(int(counts.sum()), 1)
        return {
            "path": str(self.path),
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
            "disk_bytes": disk,
            "provenance": meta["provenance"],
        }


def write_store(
    data: ShadowData,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
    provenance: dict[str, Any] | None = None,
) -> ShadowStore:
    """Write ``data`` as a new store at ``path``, atomically (nothing is left on failure)."""
    with atomic_path(path, force=force) as tmp:
        store = ShadowStore.create(tmp, data.n_qubits, chunk_snapshots=chunk_snapshots,
                                   provenance=provenance or data.metadata, readout_twirl=data.readout_twirl)
        store.append(data, provenance=provenance or data.metadata)
    return ShadowStore.open(path)


def is_store(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory holding a Zarr group (it may still be a foreign one)."""
    p = Path(path)
    return p.is_dir() and (p / "zarr.json").is_file()


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
