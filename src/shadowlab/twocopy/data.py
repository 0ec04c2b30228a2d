"""Two-copy Bell-basis shots in memory.

A shot measures every pair (qubit ``k`` of copy A, qubit ``k`` of copy B) in the Bell basis and
keeps two bits per pair (see :mod:`shadowlab.twocopy` for the convention):

* ``a[s, k]``: the bit read from copy A's qubit ``k`` (``X (x) X = (-1)**a``),
* ``c[s, k]``: the bit read from copy B's qubit ``k`` (``Z (x) Z = (-1)**c``).

``n_qubits`` is the number of qubits of *one* copy; a shot uses two copies of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.errors import ShadowlabError

ENSEMBLE_BELL = "bell_two_copy"


@dataclass(frozen=True)
class BellData:
    """Bell-basis shots on two copies of an ``n``-qubit state.

    Parameters
    ----------
    a:
        ``(n_shots, n_qubits)`` uint8 bits from copy A (after CNOT A->B and H on A).
    c:
        ``(n_shots, n_qubits)`` uint8 bits from copy B.
    metadata:
        Free-form provenance, JSON-serializable.

    Examples
    --------
    >>> import numpy as np
    >>> d = BellData(np.zeros((3, 2), np.uint8), np.zeros((3, 2), np.uint8))
    >>> d.n_shots, d.n_qubits, d.n_copies
    (3, 2, 6)
    """

    a: np.ndarray
    c: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = np.asarray(self.a)
        c = np.asarray(self.c)
        if a.ndim != 2:
            raise ShadowlabError(f"Bell bits 'a' must be a 2-D array (shots x qubits), got shape {a.shape}")
        if c.shape != a.shape:
            raise ShadowlabError(f"Bell bits 'c' have shape {c.shape}, but 'a' has {a.shape}; both must be (shots, n)")
        if a.shape[1] < 1:
            raise ShadowlabError("Bell data need at least one qubit pair")
        for name, arr in (("a", a), ("c", c)):
            if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
                raise ShadowlabError(f"Bell bits '{name}' must be integers 0/1, got dtype {arr.dtype}")
            if arr.size and (arr.min() < 0 or arr.max() > 1):
                raise ShadowlabError(f"Bell bits '{name}' must be 0 or 1, found values in [{arr.min()}, {arr.max()}]")
        object.__setattr__(self, "a", np.ascontiguousarray(a, dtype=np.uint8))
        object.__setattr__(self, "c", np.ascontiguousarray(c, dtype=np.uint8))

    @property
    def n_shots(self) -> int:
        """Number of Bell-basis shots (each consumed two copies of the state)."""
        return int(self.a.shape[0])

    @property
    def n_qubits(self) -> int:
        """Qubits of one copy of the state."""
        return int(self.a.shape[1])

    def subset(self, start: int, stop: int) -> BellData:
        """Shots ``start:stop`` (the in-memory twin of :meth:`BellStore.read`)."""
        return BellData(self.a[start:stop], self.c[start:stop], self.metadata)

    @property
    def n_copies(self) -> int:
        """Copies of the state consumed: two per shot."""
        return 2 * self.n_shots

    @classmethod
    def from_bits(cls, bits: np.ndarray, metadata: dict[str, Any] | None = None) -> BellData:
        """Split ``(S, 2n)`` measured bits in record order ``a_0..a_{n-1}, c_0..c_{n-1}`` (copy A's
        qubits, then copy B's) into a data set; an odd width is not two copies and is an error."""
        arr = np.asarray(bits)
        if arr.ndim != 2:
            raise ShadowlabError(f"two-copy bits must be a 2-D array (shots x 2n), got shape {arr.shape}")
        if arr.shape[1] % 2 or arr.shape[1] == 0:
            raise ShadowlabError(f"two-copy data need an even, non-zero number of measured qubits (n per copy), got "
                                 f"{arr.shape[1]}")
        n = arr.shape[1] // 2
        return cls(arr[:, :n], arr[:, n:], dict(metadata or {}))

    def head(self, n_shots: int) -> BellData:
        """The first ``n_shots`` shots (a view), with the same metadata."""
        if n_shots < 0 or n_shots > self.n_shots:
            raise ShadowlabError(f"cannot take {n_shots} shots of a data set with {self.n_shots}")
        return BellData(self.a[:n_shots], self.c[:n_shots], dict(self.metadata))

    @classmethod
    def concatenate(cls, parts: list[BellData]) -> BellData:
        """Join data sets of the same qubit count, in order."""
        if not parts:
            raise ShadowlabError("nothing to concatenate")
        n = parts[0].n_qubits
        for p in parts:
            if p.n_qubits != n:
                raise ShadowlabError(f"cannot join Bell data of {n} and {p.n_qubits} qubits")
        return cls(np.concatenate([p.a for p in parts]), np.concatenate([p.c for p in parts]), dict(parts[0].metadata))
