"""The rotated surface code: layout, stabilizers, logical operators and unitary encoders.

Layout (distance ``d``, odd, ``d >= 3``)
----------------------------------------
* ``d * d`` data qubits on a grid; the qubit in row ``r`` and column ``c`` (``0 <= r, c < d``,
  row 0 at the top) has index ``r * d + c``.
* Stabilizers live on the *faces* of the grid. Face ``(r, c)`` with ``-1 <= r, c <= d - 1`` is
  the square whose top-left corner is qubit ``(r, c)``; it holds the qubits ``(r, c)``,
  ``(r, c + 1)``, ``(r + 1, c)``, ``(r + 1, c + 1)`` that lie on the grid. Faces are coloured like
  a checkerboard: ``X``-type when ``r + c`` is even, ``Z``-type when odd.
* The ``(d - 1)^2`` bulk faces (``0 <= r, c <= d - 2``) are weight-4 stabilizers. On the top and
  bottom boundaries (``r = -1`` or ``r = d - 1``) the ``X``-type faces are weight-2 stabilizers; on
  the left and right boundaries (``c = -1`` or ``c = d - 1``) the ``Z``-type faces are. In all
  ``d^2 - 1`` independent stabilizers, ``(d^2 - 1) / 2`` of each type.
* Logical operators (weight ``d``): ``X_L = X`` on column 0 (it runs between the two boundaries
  that carry weight-2 ``X`` checks), ``Z_L = Z`` on row 0. They anticommute (they share qubit 0)
  and commute with every stabilizer.

Encoders
--------
:meth:`SurfaceCode.state_circuit` returns a *unitary* Clifford circuit (``H`` and ``CX`` only)
that maps ``|0...0>`` to ``|0_L>`` or ``|+_L>``; measurement-free, so the shadow sampler accepts it,
and :func:`shadowlab.acquire.noise.add_circuit_noise` turns it into a noisy preparation with a
physical meaning (each gate a noise location).

``|0_L>``: ``|0...0>`` already satisfies every ``Z`` check and ``Z_L``. Each ``X`` check ``S`` is
then projected in by ``H`` on a *pivot* qubit ``q`` of ``S`` followed by ``CX q -> j`` for the
other qubits ``j`` of ``S``: if ``q`` is still ``|0>`` this is exactly ``(1 + S) / sqrt(2)``
applied to the state. The checks are ordered by *peeling* so that no pivot lies in the support
of an earlier check (repeatedly take, as the *last* check, one that owns a qubit no other
remaining check touches). ``|+_L>`` is the same construction for the ``Z`` checks conjugated by
``H`` on every qubit: ``H`` on the qubits that are not ``Z`` pivots, then ``CX j -> q`` from the
other qubits of each ``Z`` check into its pivot (parity computed into the pivot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import stim

from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

__all__ = ["SurfaceCode", "rotated_surface_code"]

#: Largest distance accepted (``d^2`` qubits; beyond this the dense bookkeeping is pointless).
MAX_DISTANCE = 51


@dataclass(frozen=True, eq=False)
class SurfaceCode:
    """A rotated surface code of odd distance ``d`` (see the module documentation for the layout).

    Build it with :func:`rotated_surface_code`.

    Attributes
    ----------
    distance:
        Code distance ``d`` (odd, ``>= 3``).
    faces:
        ``(d^2 - 1, 2)`` int64 face coordinates ``(r, c)`` of the stabilizers, in stabilizer order
        (the face's top-left corner is qubit ``(r, c)``; ``-1 <= r, c <= d - 1``).
    kinds:
        ``'X'`` or ``'Z'`` per stabilizer.
    stabilizers:
        The stabilizers as :class:`PauliString` (all with eigenvalue ``+1`` on the code states
        prepared by :meth:`state_circuit`). Order: ``X`` checks then ``Z`` checks, each sorted by
        face row then column.
    logical_x, logical_z:
        ``X_L`` (X on column 0) and ``Z_L`` (Z on row 0).

    Examples
    --------
    >>> code = rotated_surface_code(3)
    >>> code.n_qubits, len(code.stabilizers), code.logical_z.to_sparse()
    (9, 8, 'Z0 Z1 Z2')
    >>> sorted({p.weight for p in code.stabilizers})
    [2, 4]
    """

    distance: int
    faces: np.ndarray
    kinds: tuple[str, ...]
    stabilizers: tuple[PauliString, ...]
    logical_x: PauliString
    logical_z: PauliString

    @property
    def n_qubits(self) -> int:
        """Number of data qubits, ``d^2``."""
        return self.distance * self.distance

    @property
    def n_stabilizers(self) -> int:
        """Number of stabilizer generators, ``d^2 - 1``."""
        return len(self.stabilizers)

    @property
    def coords(self) -> np.ndarray:
        """``(d^2, 2)`` int64 grid coordinates ``(row, column)`` of the data qubits, by qubit index."""
        d = self.distance
        q = np.arange(d * d, dtype=np.int64)
        return np.stack([q // d, q % d], axis=1)

    @property
    def names(self) -> tuple[str, ...]:
        """Stabilizer names ``'X(r,c)'`` / ``'Z(r,c)'`` from the face coordinates."""
        return tuple(f"{k}({r},{c})" for k, (r, c) in zip(self.kinds, self.faces.tolist(), strict=True))

    def observables(self) -> PauliSum:
        """Every stabilizer then ``X_L`` and ``Z_L``, as a :class:`PauliSum` labelled by :attr:`names`,
        ``'X_L'`` and ``'Z_L'`` (coefficients 1)."""
        terms = (*self.stabilizers, self.logical_x, self.logical_z)
        labels = (*self.names, "X_L", "Z_L")
        return PauliSum(self.n_qubits, terms, np.ones(len(terms)), labels)

    @cached_property
    def _pivots(self) -> dict[str, tuple[tuple[int, int], ...]]:
        out = {}
        for kind in ("X", "Z"):
            index = [i for i, k in enumerate(self.kinds) if k == kind]
            order = _peeling_order([self.stabilizers[i].qubits for i in index])
            out[kind] = tuple((index[i], pivot) for i, pivot in order)
        return out

    def state_circuit(self, logical: Literal["0", "+"] = "0") -> stim.Circuit:
        """Unitary Clifford circuit mapping ``|0...0>`` to the code state ``|0_L>`` or ``|+_L>``.

        Parameters
        ----------
        logical:
            ``'0'``: stabilized by every check and ``+Z_L``; ``'+'``: by every check and ``+X_L``.

        Returns
        -------
        stim.Circuit
            ``H`` and ``CX`` gates on qubits ``0 .. d^2 - 1`` (qubit index ``r * d + c``), with a
            ``TICK`` after each check's step and ``QUBIT_COORDS(r, c)`` annotations. ``|0_L>``:
            one ``H`` per ``X`` check (on its pivot) and ``weight - 1`` ``CX`` per ``X`` check;
            ``|+_L>``: ``H`` on the ``(d^2 + 1) / 2`` non-pivot qubits and ``weight - 1`` ``CX``
            per ``Z`` check.

        Raises
        ------
        ShadowlabError
            If ``logical`` is not ``'0'`` or ``'+'``.

        Examples
        --------
        >>> c = rotated_surface_code(3).state_circuit("0")
        >>> sorted({op.name for op in c} - {"TICK", "QUBIT_COORDS"})
        ['CX', 'H']
        """
        if logical not in ("0", "+"):
            raise ShadowlabError(f"logical must be '0' (|0_L>) or '+' (|+_L>), got {logical!r}")
        circuit = stim.Circuit()
        for q, (r, c) in enumerate(self.coords.tolist()):
            circuit.append("QUBIT_COORDS", [q], [r, c])
        if logical == "0":
            for index, pivot in self._pivots["X"]:
                others = [q for q in self.stabilizers[index].qubits if q != pivot]
                circuit.append("H", [pivot])
                circuit.append("CX", [t for q in others for t in (pivot, q)])
                circuit.append("TICK")
        else:
            pivots = {pivot for _, pivot in self._pivots["Z"]}
            circuit.append("H", [q for q in range(self.n_qubits) if q not in pivots])
            circuit.append("TICK")
            for index, pivot in self._pivots["Z"]:
                others = [q for q in self.stabilizers[index].qubits if q != pivot]
                circuit.append("CX", [t for q in others for t in (q, pivot)])
                circuit.append("TICK")
        return circuit


def rotated_surface_code(distance: int) -> SurfaceCode:
    """The rotated surface code of odd ``distance`` (3, 5, 7, ...; see the module documentation).

    Raises
    ------
    ShadowlabError
        If ``distance`` is not an odd integer in ``[3, 51]``.

    Examples
    --------
    >>> code = rotated_surface_code(5)
    >>> code.n_qubits, code.n_stabilizers, code.kinds.count("X")
    (25, 24, 12)
    """
    if isinstance(distance, bool) or not isinstance(distance, int | np.integer):
        raise ShadowlabError(f"the code distance must be an odd integer >= 3, got {distance!r}")
    d = int(distance)
    if d < 3 or d % 2 == 0 or d > MAX_DISTANCE:
        raise ShadowlabError(
            f"the rotated surface code needs an odd distance between 3 and {MAX_DISTANCE} (3, 5, 7, ...), got {d}"
        )
    faces: dict[str, list[tuple[int, int]]] = {"X": [], "Z": []}
    for r in range(-1, d):
        for c in range(-1, d):
            kind = "X" if (r + c) % 2 == 0 else "Z"
            bulk = 0 <= r <= d - 2 and 0 <= c <= d - 2
            top_bottom = r in (-1, d - 1) and 0 <= c <= d - 2
            left_right = c in (-1, d - 1) and 0 <= r <= d - 2
            if bulk or (top_bottom and kind == "X") or (left_right and kind == "Z"):
                faces[kind].append((r, c))
    ordered = [(k, f) for k in ("X", "Z") for f in faces[k]]
    stabilizers = []
    for kind, (r, c) in ordered:
        qubits = [rr * d + cc for rr in (r, r + 1) for cc in (c, c + 1) if 0 <= rr < d and 0 <= cc < d]
        stabilizers.append(PauliString.from_pairs((kind, q) for q in qubits))
    logical_x = PauliString.from_pairs(("X", r * d) for r in range(d))
    logical_z = PauliString.from_pairs(("Z", c) for c in range(d))
    return SurfaceCode(
        distance=d,
        faces=np.array([f for _, f in ordered], dtype=np.int64).reshape(-1, 2),
        kinds=tuple(k for k, _ in ordered),
        stabilizers=tuple(stabilizers),
        logical_x=logical_x,
        logical_z=logical_z,
    )


def _peeling_order(supports: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Order checks and pick pivots so that no pivot lies in the support of an earlier check.

    Returns ``[(check index, pivot qubit), ...]`` in circuit order. Built from the end: the last
    check is one that owns a qubit (its smallest such) that no other remaining check touches.
    """
    remaining = list(range(len(supports)))
    reverse: list[tuple[int, int]] = []
    while remaining:
        count: dict[int, int] = {}
        for i in remaining:
            for q in supports[i]:
                count[q] = count.get(q, 0) + 1
        for i in remaining:
            private = [q for q in supports[i] if count[q] == 1]
            if private:
                reverse.append((i, min(private)))
                remaining.remove(i)
                break
        else:  # pragma: no cover - cannot happen for the planar code (checked by the tests)
            raise ShadowlabError("no unitary peeling encoder exists for these checks")
    return reverse[::-1]
