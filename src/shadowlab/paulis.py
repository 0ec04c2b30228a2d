"""Pauli strings and weighted sums of them: the vocabulary every stage shares.

Conventions
-----------
* Letter codes: ``0 = X``, ``1 = Y``, ``2 = Z`` (the same codes as measurement bases).
* Qubit 0 is the first letter of a dense label: ``"XZI"`` is X on qubit 0 and Z on qubit 1.
  (Qiskit labels are little-endian; convert at that boundary, not here.)
* A :class:`PauliString` is sparse: the sorted qubits it acts on and a letter per qubit. Its
  weight is the number of non-identity letters. The identity has weight 0.
* stim numbers letters ``0 = I, 1 = X, 2 = Y, 3 = Z``, so shadowlab code ``c`` is stim ``c + 1``;
  qubit ``q`` is stim qubit ``q``. Convert with :meth:`PauliString.from_stim` and
  :meth:`PauliString.to_stim`, nowhere else.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import stim

from shadowlab.errors import QubitCountMismatchError, ShadowlabError

LETTERS = "XYZ"
CODE_OF_LETTER = {"X": 0, "Y": 1, "Z": 2}

_SPARSE_TOKEN = re.compile(r"([XYZxyz])\s*(\d+)")
_DENSE = re.compile(r"[IXYZ]+")


@dataclass(frozen=True)
class PauliString:
    """A tensor product of single-qubit Paulis, without a phase or coefficient.

    Parameters
    ----------
    qubits:
        Qubit indices (0-based) the string acts on non-trivially; strictly increasing.
    codes:
        Letter code per entry of ``qubits``: 0 = X, 1 = Y, 2 = Z.

    Examples
    --------
    >>> p = PauliString.from_label("X0 Z3")
    >>> p.weight, p.to_dense(5)
    (2, 'XIIZI')
    >>> PauliString.from_label("IYZ")
    PauliString('Y1 Z2')
    """

    qubits: tuple[int, ...]
    codes: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.qubits) != len(self.codes):
            raise ShadowlabError("PauliString: qubits and codes must have the same length")
        if any(b <= a for a, b in zip(self.qubits, self.qubits[1:], strict=False)):
            raise ShadowlabError(f"PauliString: qubits must be strictly increasing, got {self.qubits}")
        if self.qubits and self.qubits[0] < 0:
            raise ShadowlabError(f"PauliString: qubit indices must be >= 0, got {self.qubits}")
        if any(c not in (0, 1, 2) for c in self.codes):
            raise ShadowlabError(f"PauliString: letter codes must be 0, 1 or 2, got {self.codes}")

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str | int, int]]) -> PauliString:
        """Build from ``(letter, qubit)`` pairs in any order; a repeated qubit is an error."""
        by_qubit: dict[int, int] = {}
        for letter, qubit in pairs:
            code = letter if isinstance(letter, int) else CODE_OF_LETTER.get(letter.upper(), -1)
            if code not in (0, 1, 2):
                raise ShadowlabError(f"unknown Pauli letter {letter!r}; expected X, Y or Z")
            q = int(qubit)
            if q in by_qubit:
                raise ShadowlabError(f"qubit {q} appears twice in one Pauli string")
            if q < 0:
                raise ShadowlabError(f"qubit index must be >= 0, got {q}")
            by_qubit[q] = int(code)
        qubits = tuple(sorted(by_qubit))
        return cls(qubits, tuple(by_qubit[q] for q in qubits))

    @classmethod
    def from_label(cls, label: str) -> PauliString:
        """Parse a dense label (``"XIZY"``, ``I`` for identity) or a sparse one (``"X0 Z3"``).

        Raises
        ------
        ShadowlabError
            If the label is neither form, has an unknown letter or repeats a qubit.
        """
        text = label.strip()
        if not text:
            raise ShadowlabError("empty Pauli label")
        if _DENSE.fullmatch(text):
            return cls.from_pairs((ch, q) for q, ch in enumerate(text) if ch != "I")
        compact = re.sub(r"\s+", " ", text)
        tokens = _SPARSE_TOKEN.findall(compact)
        if not tokens or _SPARSE_TOKEN.sub("", compact).strip():
            raise ShadowlabError(
                f"cannot parse Pauli label {label!r}: expected a dense label of I, X, Y, Z "
                "(e.g. 'XIZY') or letter-qubit pairs (e.g. 'X0 Z3')"
            )
        return cls.from_pairs((ch, int(q)) for ch, q in tokens)

    @classmethod
    def from_stim(cls, p: stim.PauliString) -> PauliString:
        """The letters of a ``stim.PauliString`` (qubit ``q`` = stim qubit ``q``); its sign is dropped.

        stim's codes ``1/2/3`` (``X/Y/Z``) become shadowlab's ``0/1/2``; stim's length is not kept
        (identity letters are not stored), so pass it back to :meth:`to_stim`.

        Examples
        --------
        >>> PauliString.from_stim(stim.PauliString("-XIZY"))
        PauliString('X0 Z2 Y3')
        >>> PauliString.from_stim(stim.PauliString(3)).weight
        0
        """
        xs, zs = p.to_numpy()
        support = np.flatnonzero(xs | zs)
        codes = np.where(xs & zs, 1, np.where(xs, 0, 2))[support]
        return cls(tuple(int(q) for q in support), tuple(int(c) for c in codes))

    def to_stim(self, n_qubits: int) -> stim.PauliString:
        """This string as a ``+1``-signed ``stim.PauliString`` of length ``n_qubits`` (identity elsewhere).

        Raises
        ------
        QubitCountMismatchError
            If the string acts on a qubit ``>= n_qubits``.

        Examples
        --------
        >>> PauliString.from_label("X0 Z2").to_stim(4)
        stim.PauliString("+X_Z_")
        """
        self.check_qubits(n_qubits)
        p = stim.PauliString(n_qubits)
        for q, c in zip(self.qubits, self.codes, strict=True):
            p[q] = c + 1
        return p

    @property
    def weight(self) -> int:
        """Number of qubits on which the string is not the identity."""
        return len(self.qubits)

    def to_dense(self, n_qubits: int) -> str:
        """Dense label of length ``n_qubits`` (qubit 0 first)."""
        self.check_qubits(n_qubits)
        letters = ["I"] * n_qubits
        for q, c in zip(self.qubits, self.codes, strict=True):
            letters[q] = LETTERS[c]
        return "".join(letters)

    def to_sparse(self) -> str:
        """Sparse label such as ``'X0 Z3'``; ``'I'`` for the identity."""
        if not self.qubits:
            return "I"
        return " ".join(f"{LETTERS[c]}{q}" for q, c in zip(self.qubits, self.codes, strict=True))

    def check_qubits(self, n_qubits: int) -> None:
        """Raise if the string acts on a qubit index ``>= n_qubits``."""
        if self.qubits and self.qubits[-1] >= n_qubits:
            raise QubitCountMismatchError(
                f"Pauli {self.to_sparse()} acts on qubit {self.qubits[-1]}, but the system has "
                f"{n_qubits} qubits (indices 0..{n_qubits - 1})"
            )

    def __str__(self) -> str:
        return self.to_sparse()

    def __repr__(self) -> str:
        return f"PauliString({self.to_sparse()!r})"


@dataclass(frozen=True)
class PauliArrays:
    """A batch of Pauli strings in the padded array form the kernels consume.

    Attributes
    ----------
    qubits:
        ``(M, w_max)`` int64; row ``m`` lists the qubits of string ``m``, padded with 0.
    codes:
        ``(M, w_max)`` int64 letter codes (0/1/2), padded with 0.
    weights:
        ``(M,)`` int64 weight of each string (the number of valid entries of its row).
    """

    qubits: np.ndarray
    codes: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_paulis(cls, paulis: Sequence[PauliString]) -> PauliArrays:
        """Pack a sequence of :class:`PauliString` into padded arrays."""
        m = len(paulis)
        w_max = max((p.weight for p in paulis), default=0)
        qubits = np.zeros((m, max(w_max, 1)), dtype=np.int64)
        codes = np.zeros((m, max(w_max, 1)), dtype=np.int64)
        weights = np.zeros(m, dtype=np.int64)
        for i, p in enumerate(paulis):
            weights[i] = p.weight
            qubits[i, : p.weight] = p.qubits
            codes[i, : p.weight] = p.codes
        return cls(qubits, codes, weights)

    @classmethod
    def up_to_weight(cls, n_qubits: int, max_weight: int) -> PauliArrays:
        """Every Pauli string of weight ``1..max_weight`` on ``n_qubits`` qubits, built as arrays
        (no per-string objects): ``sum_w C(n, w) 3^w`` of them, ordered by weight, then support
        (lexicographic), then letters (X < Y < Z, first qubit slowest).

        >>> a = PauliArrays.up_to_weight(3, 2)
        >>> len(a), a.labels()[:4], a.labels()[-1]
        (36, ['X0', 'Y0', 'Z0', 'X1'], 'Z1 Z2')
        """
        if n_qubits < 1 or not 1 <= max_weight <= n_qubits:
            raise ShadowlabError(f"all Paulis up to weight {max_weight} on {n_qubits} qubits: the weight must be "
                                 f"between 1 and the number of qubits")
        qubit_blocks, code_blocks = [], []
        for w in range(1, max_weight + 1):
            supports = np.array(list(itertools.combinations(range(n_qubits), w)), dtype=np.int64)
            letters = np.array(list(itertools.product(range(3), repeat=w)), dtype=np.int64)
            qubit_blocks.append(np.pad(np.repeat(supports, len(letters), axis=0), ((0, 0), (0, max_weight - w))))
            code_blocks.append(np.pad(np.tile(letters, (len(supports), 1)), ((0, 0), (0, max_weight - w))))
        qubits, codes = np.concatenate(qubit_blocks), np.concatenate(code_blocks)
        weights = np.concatenate([np.full(len(b), w, dtype=np.int64) for w, b in enumerate(qubit_blocks, 1)])
        return cls(qubits, codes, weights)

    def labels(self) -> list[str]:
        """Sparse labels (``'X0 Z3'``; ``'I'`` for the identity), as :meth:`PauliString.to_sparse`."""
        return [" ".join(f"{LETTERS[c]}{q}" for q, c in zip(qs[:w], cs[:w], strict=True)) or "I"
                for qs, cs, w in zip(self.qubits.tolist(), self.codes.tolist(), self.weights.tolist(), strict=True)]

    def to_paulis(self) -> list[PauliString]:
        """The strings as :class:`PauliString` objects."""
        return [PauliString(tuple(qs[:w]), tuple(cs[:w]))
                for qs, cs, w in zip(self.qubits.tolist(), self.codes.tolist(), self.weights.tolist(), strict=True)]

    def check_qubits(self, n_qubits: int) -> None:
        """Raise if a string acts on a qubit index ``>= n_qubits``."""
        used = self.qubits[self.weights > 0]
        if used.size and int(used.max()) >= n_qubits:
            raise QubitCountMismatchError(f"a Pauli acts on qubit {int(used.max())}, but the system has {n_qubits} "
                                          f"qubits (indices 0..{n_qubits - 1})")

    def __len__(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class PauliSum:
    """A real-weighted sum of Pauli strings, ``sum_j coeffs[j] * terms[j]``, on ``n_qubits``.

    A list of observables read from a file is also a ``PauliSum``: each term is one observable,
    and ``coeffs`` holds its coefficient (1 where the file gives none). Whether the terms are
    predicted one by one or summed is the caller's choice.

    Parameters
    ----------
    n_qubits:
        Number of qubits of the system.
    terms:
        The Pauli strings; identity terms (weight 0) are allowed.
    coeffs:
        ``(len(terms),)`` float64 coefficients.
    labels:
        Optional display label per term (defaults to the sparse label).
    """

    n_qubits: int
    terms: tuple[PauliString, ...]
    coeffs: np.ndarray
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n_qubits < 1:
            raise ShadowlabError(f"n_qubits must be >= 1, got {self.n_qubits}")
        coeffs = np.asarray(self.coeffs, dtype=np.float64)
        if coeffs.shape != (len(self.terms),):
            raise ShadowlabError(f"need one coefficient per term: {len(self.terms)} terms, coeffs shape {coeffs.shape}")
        if not np.all(np.isfinite(coeffs)):
            raise ShadowlabError("Pauli-sum coefficients must be finite numbers")
        object.__setattr__(self, "coeffs", coeffs)
        for t in self.terms:
            t.check_qubits(self.n_qubits)
        if not self.labels:
            object.__setattr__(self, "labels", tuple(t.to_sparse() for t in self.terms))
        elif len(self.labels) != len(self.terms):
            raise ShadowlabError("need one label per term")

    @classmethod
    def from_labels(
        cls, labels: Sequence[str], coeffs: Sequence[float] | None = None, *, n_qubits: int | None = None
    ) -> PauliSum:
        """Build from Pauli labels (dense or sparse) and optional coefficients.

        ``n_qubits`` defaults to the length of dense labels, else to 1 + the largest qubit index.
        """
        terms = tuple(PauliString.from_label(s) for s in labels)
        if n_qubits is None:
            dense = {len(s.strip()) for s in labels if _DENSE.fullmatch(s.strip())}
            if len(dense) > 1:
                raise QubitCountMismatchError(f"dense labels of different lengths: {sorted(dense)}")
            n_qubits = dense.pop() if dense else 1 + max((t.qubits[-1] for t in terms if t.qubits), default=0)
        c = np.ones(len(terms)) if coeffs is None else np.asarray(coeffs, dtype=np.float64)
        return cls(n_qubits, terms, c)

    def __len__(self) -> int:
        return len(self.terms)

    def check_n_qubits(self, n_qubits: int, *, what: str = "the data") -> None:
        """Raise :class:`QubitCountMismatchError` unless this sum is on ``n_qubits`` qubits."""
        if n_qubits != self.n_qubits:
            raise QubitCountMismatchError(
                f"the observables are on {self.n_qubits} qubits but {what} has {n_qubits}; "
                "observables and data must describe the same system"
            )

    def to_matrix(self) -> np.ndarray:
        """Dense ``2^n x 2^n`` complex matrix (qubit 0 is the most significant bit). Small n only."""
        if self.n_qubits > 14:
            raise ShadowlabError(f"to_matrix is for small systems; {self.n_qubits} qubits is too many")
        dim = 2**self.n_qubits
        out = np.zeros((dim, dim), dtype=np.complex128)
        for coeff, term in zip(self.coeffs, self.terms, strict=True):
            out += coeff * pauli_matrix(term, self.n_qubits)
        return out


# Single-qubit products with codes 0 = I, 1 = X, 2 = Y, 3 = Z: a * b = i^PHASE[a, b] * PRODUCT[a, b].
_PRODUCT = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]], dtype=np.uint8)
_PHASE = np.array([[0, 0, 0, 0], [0, 0, 1, 3], [0, 3, 0, 1], [0, 1, 3, 0]], dtype=np.uint8)


def _dense_codes(h: PauliSum) -> np.ndarray:
    """``(M, n)`` uint8 letters with 0 = I, 1 = X, 2 = Y, 3 = Z."""
    out = np.zeros((len(h), h.n_qubits), dtype=np.uint8)
    for row, term in enumerate(h.terms):
        if term.qubits:
            out[row, list(term.qubits)] = np.asarray(term.codes, dtype=np.uint8) + 1
    return out


def square_pauli_sum(h: PauliSum, *, block_bytes: int = 1 << 26, square_limit_bytes: int = 1 << 31) -> PauliSum:
    """``H^2`` as a real Pauli sum, by Pauli algebra (no matrices; any number of qubits).

    ``H^2 = sum_{i,j} c_i c_j P_i P_j``: pairs that anticommute give imaginary phases that cancel
    between ``(i, j)`` and ``(j, i)``; commuting pairs give ``+-`` a Pauli string. Equal strings
    are merged and exact zeros dropped. Cost ``O(M^2 n)`` in blocks of about ``block_bytes``.

    Examples
    --------
    >>> h = PauliSum.from_labels(["XI", "ZZ", "IY"], [1.0, 0.5, 2.0])
    >>> sq = square_pauli_sum(h)
    >>> dict(zip(sq.labels, sq.coeffs.tolist()))
    {'I': 5.25, 'X0 Y1': 4.0}
    """
    m, n = len(h), h.n_qubits
    # All commuting pairs' letters are kept before merging: up to m^2 n bytes (plus a sort).
    if m * m * n > square_limit_bytes:
        raise ShadowlabError(f"H^2 of {m} terms on {n} qubits needs up to {m * m * n / 2**30:.1f} GiB of pair "
                             f"products (limit {square_limit_bytes / 2**30:.1f} GiB); use fewer terms")
    codes = _dense_codes(h)
    coeffs = np.asarray(h.coeffs, dtype=np.float64)
    rows_per_block = max(1, block_bytes // max(1, 3 * m * n))
    keys: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for start in range(0, m, rows_per_block):
        a = codes[start:start + rows_per_block, None, :]
        letters = _PRODUCT[a, codes[None, :, :]]
        phase = _PHASE[a, codes[None, :, :]].sum(axis=2, dtype=np.int64) % 4
        real = (phase % 2) == 0
        sign = np.where(phase == 0, 1.0, -1.0)
        weight = coeffs[start:start + rows_per_block, None] * coeffs[None, :] * sign
        keys.append(letters[real])
        values.append(weight[real])
    all_keys = np.concatenate(keys, axis=0)
    all_values = np.concatenate(values)
    unique, inverse = np.unique(all_keys, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=all_values, minlength=unique.shape[0])
    scale = float(np.sum(np.abs(coeffs)) ** 2)
    keep = np.abs(summed) > 1e-14 * max(scale, 1.0)
    terms = []
    for row in unique[keep]:
        qubits = np.flatnonzero(row)
        terms.append(PauliString(tuple(int(q) for q in qubits), tuple(int(c) - 1 for c in row[qubits])))
    return PauliSum(h.n_qubits, tuple(terms), summed[keep])


_SINGLE = (
    np.array([[0, 1], [1, 0]], dtype=np.complex128),
    np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    np.array([[1, 0], [0, -1]], dtype=np.complex128),
)


def pauli_matrix(p: PauliString, n_qubits: int) -> np.ndarray:
    """Dense matrix of ``p`` on ``n_qubits`` (qubit 0 = most significant bit of the index)."""
    p.check_qubits(n_qubits)
    letters = dict(zip(p.qubits, p.codes, strict=True))
    out = np.ones((1, 1), dtype=np.complex128)
    for q in range(n_qubits):
        m = _SINGLE[letters[q]] if q in letters else np.eye(2, dtype=np.complex128)
        out = np.kron(out, m)
    return out


def expectation_statevector(p: PauliString, state: np.ndarray) -> float:
    """Exact ``<state| p |state>`` for a normalized state vector (qubit 0 = most significant bit).

    Costs O(2^n) time and memory; used for exact reference values.
    """
    n = int(np.log2(state.size))
    p.check_qubits(n)
    psi = state.reshape((2,) * n)
    phi = psi
    for q, c in zip(p.qubits, p.codes, strict=True):
        phi = np.moveaxis(np.tensordot(_SINGLE[c], phi, axes=([1], [q])), 0, q)
    return float(np.real(np.vdot(psi, phi)))

