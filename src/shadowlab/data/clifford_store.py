"""Global-Clifford snapshots on disk: a Zarr v3 group, chunked along snapshots.

Layout (format 1, ensemble ``"global_clifford"``)
-------------------------------------------------
``<store>/zarr.json`` is the group; its attribute ``"shadowlab"`` holds the metadata. With
``nb = ceil(n / 8)``, arrays chunked along the snapshot axis (``chunk_snapshots`` rows a chunk):

* ``tableaux`` ``(S, 4, n, nb)`` uint8: the Clifford ``U`` of each snapshot as the four quadrants
  ``x2x, x2z, z2x, z2z`` of its stim tableau, bit-packed along the last axis in little-endian
  bit order (exactly ``stim.Tableau.to_numpy(bit_packed=True)``);
* ``signs``    ``(S, 2, nb)`` uint8: ``x_signs, z_signs``, bit-packed the same way;
* ``outcomes`` ``(S, nb)`` uint8: the measured bits ``b`` (bit ``q`` = qubit ``q``, 1 = ``|1>``),
  bit-packed the same way.

Metadata (``attrs["shadowlab"]``) follows :mod:`shadowlab.data.store`: ``format`` (checked
strictly), ``writer``, ``ensemble``, ``n_qubits``, ``n_snapshots`` (committed rows),
``chunk_snapshots``, ``created``, ``provenance``, ``batches`` and ``schema``. Appends are
crash-safe in the same way: rows are written past the committed count, then ``n_snapshots`` is
raised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import stim

from shadowlab.data.store import ZarrStoreBase, _compressor, _jsonable, _now, _writer, staged_location
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StoreFormatError

FORMAT_VERSION = 1
ENSEMBLE_GLOBAL_CLIFFORD = "global_clifford"
_META_KEY = "shadowlab"
_CHUNK_BYTES = 8 * 2**20
_SCHEMA = {
    "tableaux": {"dims": ["snapshot", "quadrant", "row", "packed_column"], "dtype": "uint8",
                 "quadrants": ["x2x", "x2z", "z2x", "z2z"], "packing": "little-endian bits along the last axis"},
    "signs": {"dims": ["snapshot", "kind", "packed_qubit"], "dtype": "uint8", "kinds": ["x_signs", "z_signs"]},
    "outcomes": {"dims": ["snapshot", "packed_qubit"], "dtype": "uint8", "codes": {"0": "|0>", "1": "|1>"}},
    "convention": "stim.Tableau.from_numpy(x2x=, x2z=, z2x=, z2z=, x_signs=, z_signs=) rebuilds U; the snapshot "
                  "measured U rho U^dagger in the computational basis",
}


def _packed(n: int) -> int:
    return -(-n // 8)


def default_chunk_snapshots(n_qubits: int) -> int:
    """Snapshots per chunk so that a tableau chunk holds about 8 MiB (at least 1, at most 65,536)."""
    per = 4 * n_qubits * _packed(n_qubits) + 3 * _packed(n_qubits)
    return int(max(1, min(65536, _CHUNK_BYTES // per)))


@dataclass(frozen=True)
class CliffordSnapshots:
    """Global-Clifford snapshots in memory, in the bit-packed store layout.

    Attributes
    ----------
    tableaux:
        ``(S, 4, n, nb)`` uint8 packed quadrants ``x2x, x2z, z2x, z2z``.
    signs:
        ``(S, 2, nb)`` uint8 packed ``x_signs, z_signs``.
    outcomes:
        ``(S, n)`` uint8 outcomes, 1 = ``|1>``.
    metadata:
        Provenance (free-form).
    """

    tableaux: np.ndarray
    signs: np.ndarray
    outcomes: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t, s, o = self.tableaux, self.signs, self.outcomes
        if o.ndim != 2 or o.dtype != np.uint8 or (o.size and o.max() > 1):
            raise ShadowlabError("outcomes must be an (S, n) uint8 array of 0/1")
        n_snap, n = o.shape
        nb = _packed(n)
        if t.shape != (n_snap, 4, n, nb) or t.dtype != np.uint8:
            raise ShadowlabError(f"tableaux must be ({n_snap}, 4, {n}, {nb}) uint8, got {t.shape} {t.dtype}")
        if s.shape != (n_snap, 2, nb) or s.dtype != np.uint8:
            raise ShadowlabError(f"signs must be ({n_snap}, 2, {nb}) uint8, got {s.shape} {s.dtype}")

    @classmethod
    def from_tableaux(cls, tableaux: Sequence[stim.Tableau], outcomes: np.ndarray,
                      metadata: dict[str, Any] | None = None) -> CliffordSnapshots:
        """Pack a list of tableaux and ``(S, n)`` 0/1 outcomes."""
        out = np.asarray(outcomes, dtype=np.uint8)
        if out.ndim != 2 or out.shape[0] != len(tableaux):
            raise ShadowlabError(f"outcomes must be ({len(tableaux)}, n), got {out.shape}")
        n = out.shape[1]
        nb = _packed(n)
        tab = np.empty((len(tableaux), 4, n, nb), dtype=np.uint8)
        signs = np.empty((len(tableaux), 2, nb), dtype=np.uint8)
        for i, t in enumerate(tableaux):
            if len(t) != n:
                raise QubitCountMismatchError(f"tableau {i} acts on {len(t)} qubits, the outcomes have {n}")
            x2x, x2z, z2x, z2z, xs, zs = t.to_numpy(bit_packed=True)
            tab[i, 0], tab[i, 1], tab[i, 2], tab[i, 3] = x2x, x2z, z2x, z2z
            signs[i, 0], signs[i, 1] = xs, zs
        return cls(tab, signs, out, dict(metadata or {}))

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return int(self.outcomes.shape[1])

    @property
    def n_snapshots(self) -> int:
        """Number of snapshots."""
        return int(self.outcomes.shape[0])

    def subset(self, start: int, stop: int) -> CliffordSnapshots:
        """Snapshots ``start:stop`` (the in-memory twin of :meth:`CliffordStore.read`)."""
        return CliffordSnapshots(self.tableaux[start:stop], self.signs[start:stop], self.outcomes[start:stop],
                                 self.metadata)

    def iter_chunks(self, chunk_snapshots: int) -> Iterator[tuple[int, CliffordSnapshots]]:
        """Yield ``(offset, chunk)`` pairs of at most ``chunk_snapshots`` snapshots, in order."""
        for start in range(0, self.n_snapshots, chunk_snapshots):
            yield start, self.subset(start, start + chunk_snapshots)

    def tableau(self, i: int) -> stim.Tableau:
        """The Clifford of snapshot ``i``."""
        t, s = self.tableaux[i], self.signs[i]
        return stim.Tableau.from_numpy(x2x=t[0], x2z=t[1], z2x=t[2], z2z=t[3], x_signs=s[0], z_signs=s[1])

    def __iter__(self) -> Iterator[tuple[stim.Tableau, np.ndarray]]:
        for i in range(self.n_snapshots):
            yield self.tableau(i), self.outcomes[i]

    def packed_outcomes(self) -> np.ndarray:
        """``(S, nb)`` uint8 outcomes, bit-packed little-endian."""
        return np.packbits(self.outcomes, axis=1, bitorder="little")


class CliffordStore(ZarrStoreBase):
    """A lazily opened global-Clifford store (see the module documentation for the layout)."""

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mode: str = "r") -> CliffordStore:
        """Open a store, validating its format and metadata.

        Raises
        ------
        StoreFormatError
            If ``path`` is not a shadowlab global-Clifford store, has another format version, or is corrupted.
        """
        p, group, meta = cls._open_group(path, mode, written_by="'shadowlab simulate-clifford'")
        if meta.get("ensemble") != ENSEMBLE_GLOBAL_CLIFFORD:
            raise StoreFormatError(f"{p}: a {meta.get('ensemble')!r} store, not a global-Clifford one; "
                                   "fidelity estimation needs snapshots from 'shadowlab simulate-clifford'")
        if meta.get("format") != FORMAT_VERSION:
            raise StoreFormatError(f"{p}: global-Clifford store format {meta.get('format')!r}, but this version "
                                   f"reads format {FORMAT_VERSION}; it was written by "
                                   f"{meta.get('writer', 'an unknown writer')}")
        store = cls(group, p, meta, writable=mode != "r")
        store._validate()
        return store

    @classmethod
    def create(cls, path: str | os.PathLike[str], n_qubits: int, *, chunk_snapshots: int | None = None,
               provenance: dict[str, Any] | None = None) -> CliffordStore:
        """Create an empty store at ``path`` (a local path or a URL; it must not exist)."""
        if n_qubits < 1:
            raise ShadowlabError(f"n_qubits must be >= 1, got {n_qubits}")
        chunk = default_chunk_snapshots(n_qubits) if chunk_snapshots is None else int(chunk_snapshots)
        if chunk < 1:
            raise ShadowlabError(f"chunk_snapshots must be >= 1, got {chunk_snapshots}")
        nb = _packed(n_qubits)
        p, group = cls._create_group(path)
        for name, tail, dims in (("tableaux", (4, n_qubits, nb), ["snapshot", "quadrant", "row", "packed_column"]),
                                 ("signs", (2, nb), ["snapshot", "kind", "packed_qubit"]),
                                 ("outcomes", (nb,), ["snapshot", "packed_qubit"])):
            group.create_array(name, shape=(0, *tail), chunks=(chunk, *tail), dtype="uint8",
                               compressors=_compressor(), fill_value=0, dimension_names=dims)
        meta = {
            "format": FORMAT_VERSION,
            "writer": _writer(),
            "ensemble": ENSEMBLE_GLOBAL_CLIFFORD,
            "n_qubits": int(n_qubits),
            "n_snapshots": 0,
            "chunk_snapshots": chunk,
            "created": _now(),
            "provenance": _jsonable(provenance or {}),
            "batches": [],
            "schema": _SCHEMA,
        }
        group.attrs[_META_KEY] = meta
        return cls(group, p, meta)

    def _validate(self) -> None:
        n = self._meta.get("n_qubits")
        nb = _packed(n) if isinstance(n, int) else 0
        self._validate_layout({"tableaux": ((4, n, nb), "uint8"), "signs": ((2, nb), "uint8"),
                               "outcomes": ((nb,), "uint8")})

    def read(self, start: int = 0, stop: int | None = None) -> CliffordSnapshots:
        """Committed snapshots ``start:stop`` in memory."""
        start, stop = self._rows(start, stop)
        try:
            tab = self._group["tableaux"][start:stop]
            signs = self._group["signs"][start:stop]
            packed = self._group["outcomes"][start:stop]
        except Exception as exc:
            raise StoreFormatError(f"{self.path}: cannot read rows {start}:{stop}: {exc}") from exc
        outcomes = np.unpackbits(packed, axis=1, bitorder="little", count=self.n_qubits)
        return CliffordSnapshots(np.asarray(tab), np.asarray(signs), outcomes,
                                 {"store": str(self.path), **self._meta["provenance"]})

    def load(self) -> CliffordSnapshots:
        """All committed snapshots in memory."""
        return self.read(0, None)

    def append(self, data: CliffordSnapshots, *, provenance: dict[str, Any] | None = None) -> None:
        """Append a batch; it becomes visible only once completely written (crash-safe)."""
        if not self._writable:
            raise ShadowlabError(f"{self.path} was opened read-only; open it with mode='a' to append")
        if data.n_qubits != self.n_qubits:
            raise QubitCountMismatchError(f"{self.path}: store has {self.n_qubits} qubits, batch has {data.n_qubits}")
        if data.n_snapshots == 0:
            return
        self._write_rows({"tableaux": data.tableaux, "signs": data.signs, "outcomes": data.packed_outcomes()},
                         data.n_snapshots, {"provenance": _jsonable(provenance or data.metadata)})

    def summary(self) -> dict[str, Any]:
        """Sizes, counts and provenance (reads no snapshot data)."""
        meta = self.metadata
        return {"path": str(self.path), "format": meta["format"], "writer": meta["writer"],
                "ensemble": meta["ensemble"], "n_qubits": self.n_qubits, "n_snapshots": self.n_snapshots,
                "chunk_snapshots": self.chunk_snapshots, "n_batches": len(meta["batches"]),
                "created": meta["created"], "disk_bytes": self.disk_bytes(), "provenance": meta["provenance"]}


def write_clifford_store(data: CliffordSnapshots, path: str | os.PathLike[str], *, force: bool = False,
                         chunk_snapshots: int | None = None,
                         provenance: dict[str, Any] | None = None) -> CliffordStore:
    """Write ``data`` as a new store at ``path``, atomically (nothing is left on failure)."""
    with staged_location(path, force=force) as tmp:
        store = CliffordStore.create(tmp, data.n_qubits, chunk_snapshots=chunk_snapshots,
                                     provenance=provenance or data.metadata)
        store.append(data, provenance=provenance or data.metadata)
    return CliffordStore.open(path)


def is_clifford_store(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a Zarr group whose shadowlab metadata names the global-Clifford ensemble."""
    p = Path(path) / "zarr.json"
    if not p.is_file():
        return False
    try:
        meta = json.loads(p.read_text())["attributes"][_META_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(meta, dict) and meta.get("ensemble") == ENSEMBLE_GLOBAL_CLIFFORD
