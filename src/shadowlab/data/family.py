"""A family of related shadow data sets: one set of snapshots per instance plus its parameters.

The learning stage trains on many states of one model (ground states across a phase diagram,
random couplings, ...): instance ``k`` has a parameter vector ``parameters[k]`` (couplings,
fields) and ``n_snapshots`` local-Pauli snapshots of its state, and optionally exact
properties (``exact["correlations"][k]`` and so on) to test predictions against.

Every instance has the same qubit count and the same number of snapshots, so the snapshots of
the whole family are two ``(I, S, n)`` arrays (same codes as :class:`ShadowData`: bases 0/1/2 =
X/Y/Z, outcome 0 = eigenvalue +1).

On disk (``save``/``load``): a Zarr v3 group whose ``attrs["shadowlab"]`` holds ``format``,
``kind = "family"``, the sizes and ``metadata``; arrays ``bases``, ``outcomes``
(chunked one instance per chunk), ``parameters``, ``instance_ids``, ``edges`` and one
``exact/<name>`` array per exact property. Writes go to a temporary name and are renamed into
place, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from shadowlab.atomic import atomic_path
from shadowlab.data.dataset import ShadowData, _check_codes
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StoreFormatError

FAMILY_FORMAT = 1
_META_KEY = "shadowlab"


@dataclass(frozen=True)
class ShadowFamily:
    """Snapshots of many related states, with the parameters that define each state.

    Parameters
    ----------
    bases, outcomes:
        ``(n_instances, n_snapshots, n_qubits)`` uint8 codes (as in :class:`ShadowData`).
    parameters:
        ``(n_instances, n_parameters)`` float64: the inputs a model learns from (couplings,
        fields, ...), in the order ``parameter_names`` gives.
    parameter_names:
        One name per parameter column (e.g. ``"J[0-1]"`` or ``"h"``).
    edges:
        ``(n_edges, 2)`` int64 qubit pairs of the interaction graph (nearest neighbours), in the
        model's edge order; empty for models without one.
    exact:
        Exact properties per instance, each array with first axis ``n_instances``
        (``"correlations"``: ``(I, n, n)`` of ``(1/3) <X_i X_j + Y_i Y_j + Z_i Z_j>`` for SU(2)
        models; ``"zz"``, ``"xx"``: ``(I, n, n)``; ``"energy"``: ``(I,)``).
    instance_ids:
        ``(n_instances,)`` int64 identifiers (file ids of an imported set; ``arange`` otherwise).
    metadata:
        JSON-serializable provenance: ``model``, ``lattice``, ``source``, ``seed``, ...
    """

    bases: np.ndarray
    outcomes: np.ndarray
    parameters: np.ndarray
    parameter_names: tuple[str, ...] = ()
    edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    exact: Mapping[str, np.ndarray] = field(default_factory=dict)
    instance_ids: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bases = np.asarray(self.bases)
        outcomes = np.asarray(self.outcomes)
        if bases.ndim != 3:
            raise ShadowlabError(f"family bases must be (instances, snapshots, qubits), got shape {bases.shape}")
        if outcomes.shape != bases.shape:
            raise ShadowlabError(f"family outcomes shape {outcomes.shape} does not match bases shape {bases.shape}")
        if min(bases.shape) < 1:
            raise ShadowlabError("a family needs at least one instance, one snapshot and one qubit; got "
                                 f"(instances, snapshots, qubits) = {bases.shape}")
        _check_codes(bases, "bases", 2)
        _check_codes(outcomes, "outcomes", 1)
        n_inst = bases.shape[0]
        params = np.asarray(self.parameters, dtype=np.float64)
        if params.ndim == 1:
            params = params[:, None]
        if params.ndim != 2 or params.shape[0] != n_inst:
            raise ShadowlabError(f"mismatched parameter and data counts: {n_inst} instances of snapshots but "
                                 f"parameters of shape {params.shape}; expected one parameter row per instance")
        if not np.all(np.isfinite(params)):
            raise ShadowlabError("parameters must be finite numbers")
        names = tuple(str(s) for s in self.parameter_names) or tuple(f"p{k}" for k in range(params.shape[1]))
        if len(names) != params.shape[1]:
            raise ShadowlabError(f"{len(names)} parameter names for {params.shape[1]} parameter columns")
        edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        if edges.size and (edges.min() < 0 or edges.max() >= bases.shape[2]):
            raise ShadowlabError(f"edges must join qubits 0..{bases.shape[2] - 1}")
        exact = {}
        for name, value in dict(self.exact).items():
            arr = np.asarray(value, dtype=np.float64)
            if arr.ndim < 1 or arr.shape[0] != n_inst:
                raise ShadowlabError(f"exact property {name!r} has shape {arr.shape}; expected first axis {n_inst} "
                                     "(one entry per instance)")
            if not np.all(np.isfinite(arr)):
                raise ShadowlabError(f"exact property {name!r} holds non-finite values (NaN or inf)")
            exact[str(name)] = arr
        ids = np.arange(n_inst, dtype=np.int64) if self.instance_ids is None else np.asarray(self.instance_ids,
                                                                                              dtype=np.int64)
        if ids.shape != (n_inst,):
            raise ShadowlabError(f"instance_ids must have {n_inst} entries, got shape {ids.shape}")
        object.__setattr__(self, "bases", np.ascontiguousarray(bases, dtype=np.uint8))
        object.__setattr__(self, "outcomes", np.ascontiguousarray(outcomes, dtype=np.uint8))
        object.__setattr__(self, "parameters", params)
        object.__setattr__(self, "parameter_names", names)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "exact", exact)
        object.__setattr__(self, "instance_ids", ids)
        try:
            metadata = json.loads(json.dumps(dict(self.metadata)))
        except (TypeError, ValueError) as exc:
            raise ShadowlabError(f"family metadata must be JSON-serializable (it is saved with the family): {exc}"
                                 ) from None
        object.__setattr__(self, "metadata", metadata)

    @property
    def n_instances(self) -> int:
        """Number of states (instances)."""
        return int(self.bases.shape[0])

    @property
    def n_snapshots(self) -> int:
        """Snapshots per instance."""
        return int(self.bases.shape[1])

    @property
    def n_qubits(self) -> int:
        """Qubits per state."""
        return int(self.bases.shape[2])

    def instance(self, k: int, n_snapshots: int | None = None) -> ShadowData:
        """Instance ``k``'s snapshots (the first ``n_snapshots``, default all) as a :class:`ShadowData`."""
        if not -self.n_instances <= k < self.n_instances:
            raise ShadowlabError(f"instance {k} out of range: the family has {self.n_instances} instances")
        s = self.n_snapshots if n_snapshots is None else _check_snapshots(n_snapshots, self.n_snapshots)
        meta = {**self.metadata, "instance": int(self.instance_ids[k]),
                "parameters": self.parameters[k].tolist()}
        return ShadowData(self.bases[k, :s], self.outcomes[k, :s], metadata=meta)

    def take(self, index: Sequence[int] | np.ndarray) -> ShadowFamily:
        """The sub-family of the given instances: integer positions, or a boolean mask of length
        ``n_instances``."""
        raw = np.asarray(index)
        if raw.dtype == np.bool_:
            if raw.shape != (self.n_instances,):
                raise ShadowlabError(f"a boolean instance mask needs {self.n_instances} entries, got shape {raw.shape}")
            idx = np.flatnonzero(raw)
        else:
            if raw.size and not np.issubdtype(raw.dtype, np.integer):
                raise ShadowlabError(f"instance indices must be integers or a boolean mask, got dtype {raw.dtype}")
            idx = raw.astype(np.int64).ravel()
            if idx.size and (idx.min() < -self.n_instances or idx.max() >= self.n_instances):
                raise ShadowlabError(f"instance index out of range: the family has {self.n_instances} instances")
        return ShadowFamily(self.bases[idx], self.outcomes[idx], self.parameters[idx], self.parameter_names,
                            self.edges, {k: v[idx] for k, v in self.exact.items()}, self.instance_ids[idx],
                            self.metadata)

    @classmethod
    def from_datasets(cls, datasets: Sequence[ShadowData], parameters: np.ndarray, **kwargs: Any) -> ShadowFamily:
        """Build from one :class:`ShadowData` per instance (same qubit and snapshot counts)."""
        if not datasets:
            raise ShadowlabError("a family needs at least one data set")
        n, s = datasets[0].n_qubits, datasets[0].n_snapshots
        for k, d in enumerate(datasets):
            if d.n_qubits != n:
                raise QubitCountMismatchError(f"data set {k} has {d.n_qubits} qubits, data set 0 has {n}; "
                                              "a family holds states of one size")
            if d.n_snapshots != s:
                raise ShadowlabError(f"data set {k} has {d.n_snapshots} snapshots, data set 0 has {s}; "
                                     "every instance of a family needs the same number")
        params = np.asarray(parameters, dtype=np.float64)
        if params.shape[:1] != (len(datasets),):
            raise ShadowlabError(f"mismatched parameter and data counts: {len(datasets)} data sets, "
                                 f"parameters of shape {params.shape}")
        return cls(np.stack([d.bases for d in datasets]), np.stack([d.outcomes for d in datasets]), params,
                   **kwargs)

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the family as a Zarr v3 group at ``path`` (atomically); return the path."""
        with atomic_path(path, force=force) as tmp:
            group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            codec = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
            i, s, n = self.bases.shape
            for name in ("bases", "outcomes"):
                arr = group.create_array(name, shape=(i, s, n), chunks=(1, s, n), dtype="uint8", compressors=codec)
                arr[...] = getattr(self, name)
            for name, value in (("parameters", self.parameters), ("instance_ids", self.instance_ids),
                                ("edges", self.edges)):
                arr = group.create_array(name, shape=value.shape, dtype=value.dtype)
                if value.size:
                    arr[...] = value
            exact_group = group.create_group("exact")
            for name, value in self.exact.items():
                arr = exact_group.create_array(name, shape=value.shape, dtype="float64", compressors=codec)
                arr[...] = value
            group.attrs[_META_KEY] = {
                "format": FAMILY_FORMAT, "kind": "family", "n_instances": i, "n_snapshots": s, "n_qubits": n,
                "parameter_names": list(self.parameter_names), "exact": sorted(self.exact),
                "metadata": self.metadata,
            }
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ShadowFamily:
        """Read a family written by :meth:`save`; clear errors for anything else."""
        p = Path(path)
        if not (p / "zarr.json").is_file():
            raise StoreFormatError(f"{p}: not a shadow family (no Zarr v3 group); expected a directory written by "
                                   "'shadowlab learn generate' or 'shadowlab learn import-heisenberg'")
        group = zarr.open_group(str(p), mode="r", zarr_format=3)
        meta = group.attrs.get(_META_KEY)
        if not isinstance(meta, dict) or meta.get("kind") != "family":
            raise StoreFormatError(f"{p}: a Zarr group, but not a shadowlab family (kind "
                                   f"{None if not isinstance(meta, dict) else meta.get('kind')!r})")
        if meta.get("format") != FAMILY_FORMAT:
            raise StoreFormatError(f"{p}: family format {meta.get('format')!r}; this shadowlab reads format "
                                   f"{FAMILY_FORMAT}")
        try:
            exact_group = group["exact"]
            exact = {name: np.asarray(exact_group[name][...]) for name in meta["exact"]}
            return cls(np.asarray(group["bases"][...]), np.asarray(group["outcomes"][...]),
                       np.asarray(group["parameters"][...]), tuple(meta["parameter_names"]),
                       np.asarray(group["edges"][...]), exact, np.asarray(group["instance_ids"][...]),
                       meta.get("metadata", {}))
        except KeyError as exc:
            raise StoreFormatError(f"{p}: family array {exc} is missing; the family is incomplete") from None


def _check_snapshots(n_snapshots: int, available: int) -> int:
    if not 1 <= int(n_snapshots) <= available:
        raise ShadowlabError(f"n_snapshots must be in 1..{available} (snapshots per instance), got {n_snapshots}")
    return int(n_snapshots)
