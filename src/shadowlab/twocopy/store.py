"""Two-copy Bell shots on disk: a Zarr v3 group, chunked along shots.

Layout (format 1, ensemble ``"bell_two_copy"``)
-----------------------------------------------
``<store>/zarr.json`` is the group; its attribute ``"shadowlab"`` holds the metadata. Arrays,
chunked along the shot axis and compressed like the local-Pauli store:

* ``a`` ``(S, n)`` uint8: bits read from copy A (``X (x) X = (-1)**a``),
* ``c`` ``(S, n)`` uint8: bits read from copy B (``Z (x) Z = (-1)**c``).

``n_qubits`` is the size of one copy. Metadata follows :mod:`shadowlab.data.store`
(``format`` checked strictly, ``writer``, ``ensemble``, ``n_qubits``, ``n_snapshots`` = committed
shots, ``chunk_snapshots``, ``created``, ``provenance``, ``batches``, ``schema``); appends are
crash-safe in the same way (rows first, then the committed count).
"""

from __future__ import annotations

import os
from typing import Any

from shadowlab.data.store import (
    DEFAULT_CHUNK_SNAPSHOTS,
    ZarrStoreBase,
    _compressor,
    _jsonable,
    _now,
    _writer,
    staged_location,
)
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StoreFormatError
from shadowlab.twocopy.data import ENSEMBLE_BELL, BellData

FORMAT_VERSION = 1
_META_KEY = "shadowlab"
_SCHEMA = {
    "a": {"dims": ["shot", "pair"], "dtype": "uint8", "meaning": "bit of copy A's qubit after CNOT(A->B), H(A)"},
    "c": {"dims": ["shot", "pair"], "dtype": "uint8", "meaning": "bit of copy B's qubit after CNOT(A->B), H(A)"},
    "convention": "XX = (-1)^a, ZZ = (-1)^c, YY = -(-1)^(a+c), SWAP = (-1)^(a*c) per pair; pair k = qubit k of "
                  "copy A with qubit k of copy B",
}


class BellStore(ZarrStoreBase):
    """A lazily opened store of Bell-basis shots (see the module documentation for the layout)."""

    @property
    def n_shots(self) -> int:
        """Committed shots."""
        return self.n_snapshots

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mode: str = "r") -> BellStore:
        """Open a store, validating format, ensemble and arrays.

        Raises
        ------
        StoreFormatError
            If ``path`` is not a shadowlab two-copy store, has another format version, or is corrupted.
        """
        p, group, meta = cls._open_group(path, mode, written_by="'shadowlab twocopy simulate', 'twocopy run' or "
                                                              "'twocopy import'")
        if meta.get("ensemble") != ENSEMBLE_BELL:
            raise StoreFormatError(f"{p}: a {meta.get('ensemble')!r} store, not a two-copy Bell one; two-copy "
                                   "estimates need shots from 'shadowlab twocopy simulate' or 'twocopy import'")
        if meta.get("format") != FORMAT_VERSION:
            raise StoreFormatError(f"{p}: two-copy store format {meta.get('format')!r}, but this version reads "
                                   f"format {FORMAT_VERSION}; written by {meta.get('writer', 'an unknown writer')}")
        store = cls(group, p, meta, writable=mode != "r")
        store._validate()
        return store

    @classmethod
    def create(cls, path: str | os.PathLike[str], n_qubits: int, *, chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
               provenance: dict[str, Any] | None = None) -> BellStore:
        """Create an empty store at ``path`` (a local path or a URL; it must not exist)."""
        if n_qubits < 1:
            raise ShadowlabError(f"n_qubits must be >= 1, got {n_qubits}")
        if chunk_snapshots < 64 or chunk_snapshots % 64:
            raise ShadowlabError(f"chunk_snapshots must be a positive multiple of 64, got {chunk_snapshots}")
        p, group = cls._create_group(path)
        for name in ("a", "c"):
            group.create_array(name, shape=(0, n_qubits), chunks=(chunk_snapshots, n_qubits), dtype="uint8",
                               compressors=_compressor(), fill_value=0, dimension_names=["shot", "pair"])
        meta = {"format": FORMAT_VERSION, "writer": _writer(), "ensemble": ENSEMBLE_BELL, "n_qubits": int(n_qubits),
                "n_snapshots": 0, "chunk_snapshots": int(chunk_snapshots), "created": _now(),
                "provenance": _jsonable(provenance or {}), "batches": [], "schema": _SCHEMA}
        group.attrs[_META_KEY] = meta
        return cls(group, p, meta)

    def _validate(self) -> None:
        n = self._meta.get("n_qubits")
        self._validate_layout({"a": ((n,), "uint8"), "c": ((n,), "uint8")})

    def read(self, start: int = 0, stop: int | None = None) -> BellData:
        """Committed shots ``start:stop`` in memory."""
        start, stop = self._rows(start, stop)
        try:
            a = self._group["a"][start:stop]
            c = self._group["c"][start:stop]
        except Exception as exc:
            raise StoreFormatError(f"{self.path}: cannot read rows {start}:{stop}: {exc}") from exc
        try:
            return BellData(a, c, {"store": str(self.path), **self._meta["provenance"]})
        except ShadowlabError as exc:
            raise StoreFormatError(f"{self.path}: rows {start}:{stop} hold invalid data: {exc}") from exc

    def load(self) -> BellData:
        """All committed shots in memory."""
        return self.read(0, None)

    def append(self, data: BellData, *, provenance: dict[str, Any] | None = None) -> None:
        """Append a batch of shots; it becomes visible only once completely written (crash-safe)."""
        if not self._writable:
            raise ShadowlabError(f"{self.path} was opened read-only; open it with mode='a' to append")
        if data.n_qubits != self.n_qubits:
            raise QubitCountMismatchError(f"{self.path}: store has {self.n_qubits} qubit pairs, batch has "
                                          f"{data.n_qubits}")
        if data.n_shots == 0:
            return
        self._write_rows({"a": data.a, "c": data.c}, data.n_shots,
                         {"provenance": _jsonable(provenance or data.metadata)})

    def summary(self) -> dict[str, Any]:
        """Sizes and provenance for ``shadowlab info`` (reads no shot data)."""
        meta = self.metadata
        return {"path": str(self.path), "format": meta["format"], "writer": meta["writer"],
                "ensemble": meta["ensemble"], "n_qubits": self.n_qubits, "n_shots": self.n_snapshots,
                "n_copies": 2 * self.n_snapshots, "chunk_snapshots": self.chunk_snapshots,
                "n_batches": len(meta["batches"]), "created": meta["created"], "disk_bytes": self.disk_bytes(),
                "provenance": meta["provenance"]}


def write_bell_store(data: BellData, path: str | os.PathLike[str], *, force: bool = False,
                     chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
                     provenance: dict[str, Any] | None = None) -> BellStore:
    """Write ``data`` as a new store at ``path``, atomically (nothing is left on failure)."""
    with staged_location(path, force=force) as tmp:
        store = BellStore.create(tmp, data.n_qubits, chunk_snapshots=chunk_snapshots,
                                 provenance=provenance or data.metadata)
        store.append(data, provenance=provenance or data.metadata)
    return BellStore.open(path)
