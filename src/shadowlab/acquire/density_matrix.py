"""Exact density-matrix tools for small systems: channels, noisy stim circuits, shadow sampling.

Conventions
-----------
* A density matrix is a ``(2**n, 2**n)`` complex array with **qubit 0 the most significant bit**
  of both indices (as shadowlab's state vectors), ``n <= MAX_DM_QUBITS`` (10: a 16 MiB matrix).
* An operator on ``k`` qubits (a unitary, a Kraus operator) is a ``(2**k, 2**k)`` matrix whose
  index has ``qubits[0]`` as its most significant bit (stim's ``endian="big"``, Braket's order).
* Basis codes ``0, 1, 2 = X, Y, Z``; outcome bit ``0`` means eigenvalue ``+1``. A setting rotates
  every qubit with the unitary of :data:`shadowlab.acquire.statevector._ROTATION` (``H`` for X,
  ``H S^dagger`` for Y, identity for Z), then measures Z.
* A *measurement channel* is a one-qubit CPTP map (Kraus operators) applied on every qubit
  after the basis rotation and before the Z measurement, for every basis (Z included): the
  per-qubit measurement is then the POVM ``E_{b,s} = R_b^dagger N^dagger(|s><s|) R_b``. Readout
  flips and twirling are classical and are not repeated here: apply
  :func:`shadowlab.acquire.noise.apply_measurement_noise` to the sampled outcomes.

Algorithm
---------
The state is written in the Pauli basis, ``rho = 2^-n sum_a c_a sigma_a`` with real
``c_a = Tr(sigma_a rho)``, and each qubit's POVM as a real ``(3 bases, 2 outcomes, 4 Paulis)``
table ``M[b, s, a] = Tr(sigma_a E_{b,s}) / 2``; then ``p(s | b) = sum_a c_a prod_q M[b_q, s_q,
a_q]``. The sum is contracted one qubit at a time over a trie of the distinct settings: a node
at level ``k`` is a prefix ``(b_0 .. b_{k-1})`` and holds a real ``(2^k, 4^(n-k))`` array, which
each basis used after that prefix turns into a ``(2^(k+1), 4^(n-k-1))`` child. All ``3^n``
settings cost about ``6^n`` operations in all (~10 ms at ``n = 8``), shared prefixes are
computed once, and frontiers larger than the memory cap are split depth-first. Shots are drawn
by inverting each setting's cumulative distribution with one uniform number per shot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.statevector import _ROTATION, _as_repeats, _as_settings, parity, pauli_masks
from shadowlab.data.dataset import ShadowData
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError
from shadowlab.paulis import PauliString, PauliSum

__all__ = [
    "KRAUS_TOLERANCE",
    "MAX_DM_QUBITS",
    "amplitude_damping_kraus",
    "apply_channel",
    "apply_unitary",
    "density_matrix_from_stim",
    "depolarizing_kraus",
    "outcome_probabilities",
    "pauli_expectations_dm",
    "sample_density_matrix",
    "validate_density_matrix",
]

#: Largest number of qubits the density-matrix tools accept (a 10-qubit matrix is 16 MiB).
MAX_DM_QUBITS = 10
#: Tolerance on ``max |sum_k K_k^dagger K_k - I|`` for Kraus operators to count as trace preserving.
KRAUS_TOLERANCE = 1e-10
#: Default tolerance of :func:`validate_density_matrix` (Hermiticity, trace, smallest eigenvalue).
DM_TOLERANCE = 1e-8

# Working-memory cap of the probability contraction (bytes) and the number of probabilities
# (settings x 2^n) computed per chunk of settings.
_MAX_MEMORY_BYTES = 1 << 28
_CHUNK_PROBABILITIES = 1 << 22
# Shots x 2^n comparisons per block of the inverse-CDF draw.
_DRAW_BLOCK = 1 << 22

_PAULI_1Q = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128
)  # I, X, Y, Z (index a of the Pauli basis)
_ANNOTATIONS = frozenset({"TICK", "QUBIT_COORDS", "SHIFT_COORDS"})


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_n_qubits(n: int, what: str) -> None:
    if n > MAX_DM_QUBITS:
        raise ShadowlabError(f"{what} has {n} qubits; the density-matrix tools handle at most {MAX_DM_QUBITS} "
                             f"(a {n}-qubit density matrix has 4^{n} entries); use the state-vector or stim "
                             "sampler for larger systems")


def validate_density_matrix(rho: Any, *, atol: float = DM_TOLERANCE, what: str = "rho") -> tuple[np.ndarray, int]:
    """Check a density matrix and return it (Hermitian part, complex128, contiguous) with ``n``.

    Parameters
    ----------
    rho:
        ``(2**n, 2**n)`` array, ``1 <= n <= MAX_DM_QUBITS``, qubit 0 = most significant bit.
    atol:
        Tolerance on ``max |rho - rho^dagger|``, on ``|Tr rho - 1|`` and on the most negative
        eigenvalue (default ``1e-8``).
    what:
        Name used in error messages.

    Returns
    -------
    (rho, n):
        ``(rho + rho^dagger) / 2`` as complex128, and the number of qubits.

    Raises
    ------
    StateError
        If the array is not square of side ``2**n`` with ``n >= 1``, has a non-finite entry, is
        not Hermitian, does not have trace 1 or has a negative eigenvalue (beyond ``atol``).
    ShadowlabError
        If ``n > MAX_DM_QUBITS``.

    Examples
    --------
    >>> rho, n = validate_density_matrix(np.eye(4) / 4)
    >>> n
    2
    """
    try:
        m = np.asarray(rho, dtype=np.complex128)
    except (TypeError, ValueError) as exc:
        raise StateError(f"{what} must be a complex matrix: {exc}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise StateError(f"{what} must be a square (2**n, 2**n) matrix, got shape {m.shape}")
    dim = m.shape[0]
    if dim < 2 or dim & (dim - 1):
        raise StateError(f"{what} must have side 2**n with n >= 1, got {dim} (not a power of two >= 2)")
    n = dim.bit_length() - 1
    _check_n_qubits(n, what)
    if not np.all(np.isfinite(m)):
        i, j = (int(v) for v in np.argwhere(~np.isfinite(m))[0])
        raise StateError(f"{what} has a non-finite entry at ({i}, {j}): {m[i, j]}")
    herm = float(np.max(np.abs(m - m.conj().T)))
    if herm > atol:
        raise StateError(f"{what} is not Hermitian: max |rho - rho^dagger| = {herm:.3g} > {atol:g}; a density "
                         "matrix equals its conjugate transpose")
    m = 0.5 * (m + m.conj().T)
    trace = float(np.trace(m).real)
    if abs(trace - 1.0) > atol:
        raise StateError(f"{what} has trace {trace!r}, expected 1 within {atol:g}; divide it by its trace")
    smallest = float(np.linalg.eigvalsh(m)[0])
    if smallest < -atol:
        raise StateError(f"{what} is not positive semidefinite: its smallest eigenvalue is {smallest:.3g} "
                         f"(< -{atol:g}); a density matrix has no negative eigenvalues")
    return np.ascontiguousarray(m), n


def _check_qubits(qubits: Any, n: int, k: int, what: str) -> list[int]:
    qs = [int(q) for q in (qubits if isinstance(qubits, Iterable) else [qubits])]
    if len(qs) != k:
        raise ShadowlabError(f"{what} acts on {k} qubit(s) but {len(qs)} were given ({qs})")
    if len(set(qs)) != len(qs):
        raise ShadowlabError(f"{what}: the qubits {qs} must be distinct")
    bad = [q for q in qs if not 0 <= q < n]
    if bad:
        raise ShadowlabError(f"{what}: qubit(s) {bad} out of range for a {n}-qubit density matrix (0..{n - 1})")
    return qs


def _as_operator(op: Any, what: str) -> tuple[np.ndarray, int]:
    try:
        m = np.asarray(op, dtype=np.complex128)
    except (TypeError, ValueError) as exc:
        raise ShadowlabError(f"{what} must be a complex matrix: {exc}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2 or m.shape[0] & (m.shape[0] - 1):
        raise ShadowlabError(f"{what} must be a square (2**k, 2**k) matrix with k >= 1, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ShadowlabError(f"{what} has non-finite entries")
    return m, m.shape[0].bit_length() - 1


def _check_kraus(kraus_ops: Any, what: str = "kraus_ops") -> tuple[list[np.ndarray], int]:
    """Validate Kraus operators (shapes agree, completeness within KRAUS_TOLERANCE)."""
    if isinstance(kraus_ops, np.ndarray) and kraus_ops.ndim == 2:
        kraus_ops = [kraus_ops]
    ops = list(kraus_ops)
    if not ops:
        raise ShadowlabError(f"{what}: give at least one Kraus operator")
    mats = []
    k0 = None
    for i, op in enumerate(ops):
        m, k = _as_operator(op, f"{what}[{i}]")
        if k0 is None:
            k0 = k
        elif k != k0:
            raise ShadowlabError(f"{what}[{i}] acts on {k} qubit(s) ({m.shape}) but {what}[0] on {k0}; all Kraus "
                                 "operators of a channel must have the same shape")
        mats.append(m)
    assert k0 is not None
    total = sum(m.conj().T @ m for m in mats)
    diff = total - np.eye(1 << k0)
    err = float(np.max(np.abs(diff)))
    if err > KRAUS_TOLERANCE:
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(np.abs(diff))), diff.shape))
        raise ShadowlabError(
            f"{what} is not trace preserving: sum_k K_k^dagger K_k differs from the identity by {err:.3g} "
            f"(entry ({i}, {j}) is {complex(total[i, j]):.6g}, expected {1.0 if i == j else 0.0}; tolerance "
            f"{KRAUS_TOLERANCE:g}); rescale or complete the Kraus operators")
    return mats, k0


# --------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------


def _apply_superoperator(rho: np.ndarray, sup: np.ndarray, qubits: list[int], n: int) -> np.ndarray:
    """``rho`` with the superoperator ``sup`` (``(4^k, 4^k)``, row ``(ket, bra)``) on ``qubits``."""
    k = len(qubits)
    t = rho.reshape((2,) * (2 * n))
    axes = [*qubits, *(n + q for q in qubits)]
    rest = [a for a in range(2 * n) if a not in axes]
    moved = np.transpose(t, axes + rest).reshape(1 << (2 * k), -1)
    out = (sup @ moved).reshape((2,) * (2 * n))
    inverse = np.argsort(axes + rest)
    return np.ascontiguousarray(np.transpose(out, inverse).reshape(rho.shape))


def apply_unitary(rho: Any, unitary: Any, qubits: Sequence[int] | int) -> np.ndarray:
    """``U rho U^dagger`` with ``U`` acting on ``qubits`` (``qubits[0]`` = most significant bit of ``U``).

    Parameters
    ----------
    rho:
        ``(2**n, 2**n)`` density matrix (or any square operator of that size), qubit 0 = most
        significant bit; it is not validated as a state (use :func:`validate_density_matrix`).
    unitary:
        ``(2**k, 2**k)`` unitary (checked to ``1e-10``).
    qubits:
        The ``k`` distinct target qubits.

    Returns
    -------
    numpy.ndarray
        A new ``(2**n, 2**n)`` complex128 array.

    Examples
    --------
    >>> rho = np.diag([1.0, 0, 0, 0]).astype(complex)  # |00><00|
    >>> x = np.array([[0, 1], [1, 0]])
    >>> np.diag(apply_unitary(rho, x, [1])).real.tolist()  # X on qubit 1: |01>
    [0.0, 1.0, 0.0, 0.0]
    """
    m = _as_square(rho)
    n = m.shape[0].bit_length() - 1
    u, k = _as_operator(unitary, "unitary")
    err = float(np.max(np.abs(u.conj().T @ u - np.eye(1 << k))))
    if err > KRAUS_TOLERANCE:
        raise ShadowlabError(f"unitary is not unitary: max |U^dagger U - I| = {err:.3g} > {KRAUS_TOLERANCE:g}")
    qs = _check_qubits(qubits, n, k, "unitary")
    return _apply_superoperator(m, np.kron(u, u.conj()), qs, n)


def apply_channel(rho: Any, kraus_ops: Sequence[Any] | np.ndarray, qubits: Sequence[int] | int) -> np.ndarray:
    """``sum_k K_k rho K_k^dagger``: any CPTP map, given by Kraus operators, on ``qubits``.

    Parameters
    ----------
    rho:
        ``(2**n, 2**n)`` density matrix, qubit 0 = most significant bit (not validated).
    kraus_ops:
        Sequence of ``(2**k, 2**k)`` Kraus operators (``qubits[0]`` = most significant bit); they
        must satisfy ``sum_k K_k^dagger K_k = I`` within :data:`KRAUS_TOLERANCE`.
    qubits:
        The ``k`` distinct target qubits.

    Returns
    -------
    numpy.ndarray
        A new ``(2**n, 2**n)`` complex128 array.

    Raises
    ------
    ShadowlabError
        If the operators have different shapes or are not trace preserving (the message names
        the largest deviation of ``sum K^dagger K`` from the identity), or the qubits are wrong.

    Examples
    --------
    >>> rho = np.diag([0.0, 1.0]).astype(complex)  # |1><1|
    >>> np.diag(apply_channel(rho, amplitude_damping_kraus(0.25), [0])).real.round(12).tolist()
    [0.25, 0.75]
    """
    m = _as_square(rho)
    n = m.shape[0].bit_length() - 1
    mats, k = _check_kraus(kraus_ops)
    qs = _check_qubits(qubits, n, k, "the channel")
    sup = sum(np.kron(a, a.conj()) for a in mats)
    return _apply_superoperator(m, sup, qs, n)


def _as_square(rho: Any) -> np.ndarray:
    m = np.asarray(rho, dtype=np.complex128)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2 or m.shape[0] & (m.shape[0] - 1):
        raise StateError(f"rho must be a square (2**n, 2**n) matrix with n >= 1, got shape {m.shape}")
    _check_n_qubits(m.shape[0].bit_length() - 1, "rho")
    return m


def amplitude_damping_kraus(gamma: float) -> list[np.ndarray]:
    """Kraus operators of amplitude damping: ``|1> -> |0>`` with probability ``gamma``."""
    g = float(gamma)
    if not 0.0 <= g <= 1.0:
        raise ShadowlabError(f"gamma must lie in [0, 1], got {gamma!r}")
    return [np.array([[1, 0], [0, np.sqrt(1 - g)]], dtype=np.complex128),
            np.array([[0, np.sqrt(g)], [0, 0]], dtype=np.complex128)]


def depolarizing_kraus(p: float) -> list[np.ndarray]:
    """Kraus operators of stim's ``DEPOLARIZE1(p)``: ``X``, ``Y``, ``Z`` each with probability ``p/3``."""
    q = float(p)
    if not 0.0 <= q <= 0.75:
        raise ShadowlabError(f"p must lie in [0, 3/4], got {p!r}")
    return [np.sqrt(1 - q) * _PAULI_1Q[0], *(np.sqrt(q / 3) * _PAULI_1Q[a] for a in (1, 2, 3))]


# --------------------------------------------------------------------------------------------
# Stim circuits
# --------------------------------------------------------------------------------------------


def _conjugate_pauli(rho: np.ndarray, x: int, z: int) -> np.ndarray:
    """``P rho P^dagger`` for the Pauli with bit masks ``x``, ``z`` (phases cancel)."""
    idx = np.arange(rho.shape[0], dtype=np.int64)
    src = idx ^ x
    sign = 1.0 - 2.0 * parity(src & z).astype(np.float64)
    return rho[np.ix_(src, src)] * np.outer(sign, sign)


def _pauli_mixture(rho: np.ndarray, terms: list[tuple[float, int, int]]) -> np.ndarray:
    """``(1 - sum p) rho + sum_k p_k P_k rho P_k`` for terms ``(p_k, x_k, z_k)``."""
    terms = [t for t in terms if t[0] > 0 and (t[1] or t[2])]
    if not terms:
        return rho
    out = (1.0 - sum(t[0] for t in terms)) * rho
    for p, x, z in terms:
        out += p * _conjugate_pauli(rho, x, z)
    return out


@cache
def _gate_unitary(name: str) -> np.ndarray:
    """The matrix of a unitary stim gate (first target most significant), in full precision.

    stim returns ``complex64``; every entry of a Clifford gate's matrix has real and imaginary
    parts in ``{0, +-1/2, +-1/sqrt(2), +-1}``, so the parts are snapped to those values.
    """
    raw = np.asarray(stim.Tableau.from_named_gate(name).to_unitary_matrix(endian="big"), dtype=np.complex128)
    levels = np.array([0.0, 0.5, np.sqrt(0.5), 1.0])

    def snap(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * levels[np.argmin(np.abs(np.abs(x)[..., None] - levels), axis=-1)]

    u = snap(raw.real) + 1j * snap(raw.imag)
    assert np.max(np.abs(u - raw)) < 1e-6 and np.allclose(u.conj().T @ u, np.eye(u.shape[0]), atol=1e-14)
    return u


_LETTER_XZ = {"I": (0, 0), "X": (1, 0), "Y": (1, 1), "Z": (0, 1)}
_PAULI_CHANNEL_2_ORDER = [a + b for a in "IXYZ" for b in "IXYZ"][1:]  # stim's argument order


def _masks(letters: Iterable[tuple[str, int]], n: int) -> tuple[int, int]:
    x = z = 0
    for letter, q in letters:
        bx, bz = _LETTER_XZ[letter]
        bit = 1 << (n - 1 - q)
        x ^= bit * bx
        z ^= bit * bz
    return x, z


def density_matrix_from_stim(circuit: stim.Circuit, *, n_qubits: int | None = None) -> np.ndarray:
    """The exact density matrix a (noisy) stim circuit prepares from ``|0...0>``.

    Parameters
    ----------
    circuit:
        Unitary gates (any stim gate; its matrix from ``stim.Tableau.to_unitary_matrix`` with
        ``endian="big"``, so the first target is the most significant bit; ``SPP``/``SPP_DAG``
        as ``(I -+ i P) / sqrt(2)``), Pauli noise
        (``DEPOLARIZE1``, ``DEPOLARIZE2``, ``X_ERROR``, ``Y_ERROR``, ``Z_ERROR``,
        ``PAULI_CHANNEL_1``, ``PAULI_CHANNEL_2``, ``E``/``CORRELATED_ERROR`` with its
        ``ELSE_CORRELATED_ERROR`` chain, ``I_ERROR``), ``REPEAT`` blocks (unrolled) and
        ``TICK``/coordinate annotations. Noise channels act as mixtures of Pauli conjugations
        with stim's probabilities. Measurements, resets, heralded noise and classically
        controlled gates are refused.
    n_qubits:
        Number of qubits (default ``circuit.num_qubits``, at least 1); untouched qubits stay in
        ``|0>``.

    Returns
    -------
    numpy.ndarray
        ``(2**n, 2**n)`` complex128 density matrix, qubit 0 = most significant bit.

    Raises
    ------
    StateError
        For non-unitary, non-noise operations (see
        :func:`shadowlab.acquire.stim_sampler.check_state_circuit`).
    ShadowlabError
        If there are more than :data:`MAX_DM_QUBITS` qubits.

    Examples
    --------
    >>> rho = density_matrix_from_stim(stim.Circuit("X_ERROR(0.25) 0"))
    >>> np.diag(rho).real.tolist()
    [0.75, 0.25]
    """
    from shadowlab.acquire.stim_sampler import check_state_circuit

    check_state_circuit(circuit)
    n = max(circuit.num_qubits, 1) if n_qubits is None else int(n_qubits)
    if n < circuit.num_qubits:
        raise QubitCountMismatchError(f"n_qubits={n} but the circuit acts on {circuit.num_qubits} qubits")
    if n < 1:
        raise ShadowlabError(f"n_qubits must be >= 1, got {n}")
    _check_n_qubits(n, "the circuit")
    dim = 1 << n
    rho = np.zeros((dim, dim), dtype=np.complex128)
    rho[0, 0] = 1.0
    chain: list[tuple[float, int, int]] = []  # an E / ELSE_CORRELATED_ERROR chain: (p, x, z)
    for op in circuit.flattened():
        name = op.name
        if name != "ELSE_CORRELATED_ERROR" and chain:
            rho = _pauli_mixture(rho, _chain_probabilities(chain))
            chain = []
        if name in _ANNOTATIONS:
            continue
        data = stim.gate_data(name)
        targets = op.targets_copy()
        args = op.gate_args_copy()
        if name in ("E", "ELSE_CORRELATED_ERROR"):
            letters = []
            for t in targets:
                letter = "X" if t.is_x_target else "Y" if t.is_y_target else "Z"
                letters.append((letter, t.value))
            x, z = _masks(letters, n)
            chain.append((float(args[0]), x, z))
            continue
        if name in ("SPP", "SPP_DAG"):
            for x, z, ny, sign in _pauli_products(targets, n):
                rho = _apply_spp(rho, x, z, ny, sign if name == "SPP" else -sign)
            continue
        qubits = [t.value for t in targets]
        if data.is_unitary:
            arity = 2 if data.is_two_qubit_gate else 1
            if name == "I" or name == "II":
                continue
            u = _gate_unitary(data.name)
            sup = np.kron(u, u.conj())
            for j in range(0, len(qubits), arity):
                rho = _apply_superoperator(rho, sup, qubits[j:j + arity], n)
            continue
        if name in ("I_ERROR", "II_ERROR"):
            continue
        if data.is_single_qubit_gate:
            if name == "DEPOLARIZE1":
                probs = {"X": args[0] / 3, "Y": args[0] / 3, "Z": args[0] / 3}
            elif name == "PAULI_CHANNEL_1":
                probs = dict(zip("XYZ", args, strict=True))
            else:  # X_ERROR, Y_ERROR, Z_ERROR
                probs = {name[0]: args[0]}
            for q in qubits:
                rho = _pauli_mixture(rho, [(p, *_masks([(a, q)], n)) for a, p in probs.items()])
            continue
        if name == "DEPOLARIZE2":
            pairs = {lbl: args[0] / 15 for lbl in _PAULI_CHANNEL_2_ORDER}
        elif name == "PAULI_CHANNEL_2":
            pairs = dict(zip(_PAULI_CHANNEL_2_ORDER, args, strict=True))
        else:  # pragma: no cover - check_state_circuit lets only the channels above through
            raise StateError(f"the density-matrix simulation does not support {name!r}")
        for j in range(0, len(qubits), 2):
            a, b = qubits[j], qubits[j + 1]
            rho = _pauli_mixture(rho, [(p, *_masks([(lbl[0], a), (lbl[1], b)], n)) for lbl, p in pairs.items()])
    if chain:
        rho = _pauli_mixture(rho, _chain_probabilities(chain))
    return rho


def _pauli_products(targets: list[stim.GateTarget], n: int) -> list[tuple[int, int, int, int]]:
    """``(x, z, ny, sign)`` of each Pauli product of an ``SPP``-style target list (``X0*Z1 !Y2``)."""
    products: list[list[stim.GateTarget]] = []
    join = False
    for t in targets:
        if t.is_combiner:
            join = True
            continue
        if join and products:
            products[-1].append(t)
        else:
            products.append([t])
        join = False
    out = []
    for product in products:
        letters = [("X" if t.is_x_target else "Y" if t.is_y_target else "Z", t.value) for t in product]
        x, z = _masks(letters, n)
        ny = sum(1 for letter, _ in letters if letter == "Y")
        sign = -1 if sum(t.is_inverted_result_target for t in product) % 2 else 1
        out.append((x, z, ny, sign))
    return out


def _apply_spp(rho: np.ndarray, x: int, z: int, ny: int, c: int) -> np.ndarray:
    """``U rho U^dagger`` for ``U = (I - i c P) / sqrt(2)`` (stim's ``SPP`` up to a global phase).

    ``U rho U^dagger = (rho + P rho P + i c (rho P - P rho)) / 2``, with ``P = i^ny X^x Z^z``
    acting as ``P|k> = i^ny (-1)^popcount(k & z) |k ^ x>``.
    """
    idx = np.arange(rho.shape[0], dtype=np.int64)
    phase = 1j**ny
    # (P rho)[i, j] = P[i, i ^ x] rho[i ^ x, j], P[i, i ^ x] = i^ny (-1)^popcount((i ^ x) & z).
    left = (phase * (1.0 - 2.0 * parity((idx ^ x) & z)))[:, None] * rho[idx ^ x, :]
    # (rho P)[i, j] = rho[i, j ^ x] P[j ^ x, j], P[j ^ x, j] = i^ny (-1)^popcount(j & z).
    right = rho[:, idx ^ x] * (phase * (1.0 - 2.0 * parity(idx & z)))[None, :]
    return 0.5 * (rho + _conjugate_pauli(rho, x, z) + 1j * c * (right - left))


def _chain_probabilities(chain: list[tuple[float, int, int]]) -> list[tuple[float, int, int]]:
    """An ``E``/``ELSE`` chain fires its ``k``-th error with probability ``p_k prod_{j<k} (1 - p_j)``."""
    out = []
    none_yet = 1.0
    for p, x, z in chain:
        out.append((none_yet * p, x, z))
        none_yet *= 1.0 - p
    return out


# --------------------------------------------------------------------------------------------
# Pauli expectations
# --------------------------------------------------------------------------------------------


def pauli_expectations_dm(rho: Any, paulis: PauliSum | Sequence[PauliString | str]) -> np.ndarray:
    """Exact ``Tr(rho P_j)`` of every term (coefficients not applied).

    Parameters
    ----------
    rho:
        Density matrix, validated with :func:`validate_density_matrix`.
    paulis:
        A :class:`PauliSum` on ``n`` qubits, or a sequence of :class:`PauliString` / labels.

    Returns
    -------
    numpy.ndarray
        ``(len(paulis),)`` float64.

    Examples
    --------
    >>> bell = np.outer([1, 0, 0, 1], [1, 0, 0, 1]) / 2
    >>> pauli_expectations_dm(bell, ["XX", "YY", "ZI"]).round(12).tolist()
    [1.0, -1.0, 0.0]
    """
    m, n = validate_density_matrix(rho)
    if isinstance(paulis, PauliSum):
        paulis.check_n_qubits(n, what="the density matrix")
        terms = list(paulis.terms)
    else:
        terms = [p if isinstance(p, PauliString) else PauliString.from_label(p) for p in paulis]
    idx = np.arange(1 << n, dtype=np.int64)
    out = np.empty(len(terms), dtype=np.float64)
    for j, term in enumerate(terms):
        x, z, ny = pauli_masks(term, n)
        # Tr(rho P) = sum_i <i|rho P|i> = sum_i rho[i, i ^ x] i^ny (-1)^popcount(i & z),
        # since P|i> = i^ny (-1)^popcount(i & z) |i ^ x>.
        vals = m[idx, idx ^ x]
        sign = 1.0 - 2.0 * parity(idx & z)
        out[j] = float(np.real((1j**ny) * np.sum(sign * vals)))
    return out


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _pauli_coefficients(rho: np.ndarray, n: int) -> np.ndarray:
    """Real ``c[a_0, ..., a_{n-1}] = Tr(sigma_a rho)`` as a ``(4^n,)`` array (qubit 0 most significant)."""
    t = rho.reshape((2,) * (2 * n))
    order = [a for q in range(n) for a in (q, n + q)]  # (i_0, j_0, i_1, j_1, ...)
    t = np.transpose(t, order).reshape((4,) * n)
    # Tr(sigma rho) = sum_{i,j} sigma[j, i] rho[i, j]: W[a, 2 i + j] = sigma_a[j, i].
    w = np.transpose(_PAULI_1Q, (0, 2, 1)).reshape(4, 4)
    for q in range(n):
        t = np.moveaxis(np.tensordot(w, t, axes=([1], [q])), 0, q)
    return np.ascontiguousarray(t.real.reshape(-1))


def _povm_table(measurement_channel: Any) -> np.ndarray:
    """``M[b, s, a] = Tr(sigma_a E_{b,s}) / 2`` (real, ``(3, 2, 4)``)."""
    if measurement_channel is None:
        kraus = [np.eye(2, dtype=np.complex128)]
    else:
        kraus, k = _check_kraus(measurement_channel, "measurement_channel")
        if k != 1:
            raise ShadowlabError(f"measurement_channel must be a one-qubit channel (2x2 Kraus operators), got "
                                 f"{k}-qubit operators")
    table = np.empty((3, 2, 4), dtype=np.float64)
    for b in range(3):
        r = _ROTATION[b]  # R_b |e_{b,s}> = |s>
        for s in range(2):
            proj = np.zeros((2, 2), dtype=np.complex128)
            proj[s, s] = 1.0
            heis = sum(k.conj().T @ proj @ k for k in kraus)  # N^dagger(|s><s|)
            effect = r.conj().T @ heis @ r
            for a in range(4):
                table[b, s, a] = float(np.real(np.trace(_PAULI_1Q[a] @ effect))) / 2.0
    return table


class _Contraction:
    """Outcome probabilities of a set of distinct settings (the trie of the module documentation)."""

    def __init__(self, n: int, bases: np.ndarray, povm: np.ndarray, max_memory_bytes: int) -> None:
        self.n = n
        self.bases = bases
        self.povm = povm
        self.max_memory = max_memory_bytes
        self.out = np.empty((bases.shape[0], 1 << n), dtype=np.float64)

    def descend(self, nodes: np.ndarray, k: int, node_of: np.ndarray, set_ids: np.ndarray) -> None:
        """Levels ``k..n-1``: ``nodes`` is ``(N, 2^k, 4^(n-k))``, setting ``set_ids[i]`` is at ``node_of[i]``."""
        n = self.n
        while k < n:
            n_nodes = nodes.shape[0]
            row = nodes[0].size
            basis = self.bases[set_ids, k].astype(np.int64)
            pairs, pair_of = np.unique(basis * n_nodes + node_of, return_inverse=True)
            pair_of = pair_of.reshape(-1)
            # The frontier, the gathered parents and the (half-sized) children.
            need = 8 * row * (n_nodes + 1.5 * pairs.size)
            if need > self.max_memory and pairs.size > 1:
                self._split(nodes, k, node_of, set_ids, pairs, pair_of)
                return
            p_basis, p_node = pairs // n_nodes, pairs % n_nodes
            children = np.empty((pairs.size, 2 << k, row // (4 << k)), dtype=np.float64)
            for b in range(3):
                sel = np.flatnonzero(p_basis == b)
                if sel.size:
                    parents = nodes[p_node[sel]].reshape(sel.size, 1 << k, 4, row // (4 << k))
                    # child[p, s, o, r] = sum_a M[b, o, a] parent[p, s, a, r]
                    children[sel] = np.einsum("psar,oa->psor", parents, self.povm[b], optimize=True).reshape(
                        sel.size, 2 << k, -1)
            nodes, node_of = children, pair_of
            k += 1
        self.out[set_ids] = nodes.reshape(nodes.shape[0], -1)[node_of]

    def _split(self, nodes: np.ndarray, k: int, node_of: np.ndarray, set_ids: np.ndarray, pairs: np.ndarray,
               pair_of: np.ndarray) -> None:
        """Depth-first: continue with groups of (node, basis) pairs that fit the memory cap."""
        row = nodes[0].size
        per_group = max(1, int(self.max_memory // (8 * row * 2.5)))
        for start in range(0, pairs.size, per_group):
            sel = (pair_of >= start) & (pair_of < start + per_group)
            group_nodes = np.unique(pairs[start:start + per_group] % nodes.shape[0])
            local = np.searchsorted(group_nodes, node_of[sel])
            self.descend(nodes[group_nodes], k, local, set_ids[sel])


def outcome_probabilities(rho: Any, settings: Any, *, measurement_channel: Any = None,
                          max_memory_bytes: int = _MAX_MEMORY_BYTES) -> np.ndarray:
    """Exact outcome distribution of every setting: ``P[g, s] = Tr(rho E_{settings[g], s})``.

    Parameters
    ----------
    rho:
        Density matrix on ``n`` qubits (validated).
    settings:
        ``(G, n)`` basis codes 0/1/2 = X/Y/Z.
    measurement_channel:
        Optional one-qubit Kraus operators applied on every qubit after the basis rotation, for
        every basis (see the module documentation); ``None`` for ideal measurements.
    max_memory_bytes:
        Cap on the working memory of the contraction (default 256 MiB).

    Returns
    -------
    numpy.ndarray
        ``(G, 2**n)`` float64; column ``s`` is the outcome string with qubit 0 as its most
        significant bit (bit 0 = eigenvalue +1). Rows are clipped at 0 and sum to 1.

    Examples
    --------
    >>> plus = np.full((2, 2), 0.5)  # |+><+|
    >>> outcome_probabilities(plus, np.array([[0], [2]])).round(12).tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    m, n = validate_density_matrix(rho)
    bases = _as_settings(settings, n)
    povm = _povm_table(measurement_channel)
    return _probabilities(_pauli_coefficients(m, n), n, bases, povm, max_memory_bytes)


def _probabilities(coeffs: np.ndarray, n: int, bases: np.ndarray, povm: np.ndarray,
                   max_memory_bytes: int) -> np.ndarray:
    if bases.shape[0] == 0:
        return np.empty((0, 1 << n), dtype=np.float64)
    job = _Contraction(n, bases, povm, max_memory_bytes)
    ids = np.arange(bases.shape[0], dtype=np.int64)
    job.descend(coeffs.reshape(1, 1, -1), 0, np.zeros(ids.size, dtype=np.int64), ids)
    p = np.clip(job.out, 0.0, None)
    p /= p.sum(axis=1, keepdims=True)
    return p


def sample_density_matrix(
    rho: Any,
    settings: Any,
    repeats: int | Sequence[int] | np.ndarray,
    rng: np.random.Generator,
    *,
    measurement_channel: Any = None,
) -> ShadowData:
    """Sample local-Pauli snapshots of a density matrix exactly (Born rule, optional measurement channel).

    Parameters
    ----------
    rho:
        ``(2**n, 2**n)`` density matrix, qubit 0 = most significant bit, ``n <=``
        :data:`MAX_DM_QUBITS` (validated: Hermitian, trace 1, positive semidefinite).
    settings:
        ``(G, n)`` basis codes 0/1/2 = X/Y/Z.
    repeats:
        Shots per setting: one int or ``(G,)`` non-negative ints.
    rng:
        The only source of randomness: one uniform number per shot, in shot order.
    measurement_channel:
        Optional one-qubit Kraus operators (e.g. :func:`amplitude_damping_kraus`) applied on every
        qubit after the basis rotation and before the Z measurement, for every basis. Readout
        flips and twirling are applied by the caller with
        :func:`shadowlab.acquire.noise.apply_measurement_noise`.

    Returns
    -------
    ShadowData
        ``sum(repeats)`` snapshots in setting order (all shots of setting 0 first), outcome bit 0
        = eigenvalue +1; ``metadata`` records the source.

    Raises
    ------
    StateError
        If ``rho`` is not a density matrix.
    ShadowlabError
        On bad settings, repeats, ``rng`` or channel, or more than :data:`MAX_DM_QUBITS` qubits.

    Notes
    -----
    Distinct settings are computed once each (:func:`outcome_probabilities`, in chunks of at
    most ``2^22`` probabilities); repeated settings cost one comparison row per shot. Measured
    (1 core): ``n = 8``, ``10^5`` uniformly random settings in about 0.2 s.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> one = np.diag([0.0, 0.0, 1.0, 0.0])  # |10><10|
    >>> sample_density_matrix(one, np.array([[2, 2]]), 2, rng).outcomes.tolist()
    [[1, 0], [1, 0]]
    """
    m, n = validate_density_matrix(rho)
    if not isinstance(rng, np.random.Generator):
        raise ShadowlabError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}")
    bases = _as_settings(settings, n)
    reps = _as_repeats(repeats, bases.shape[0])
    povm = _povm_table(measurement_channel)
    coeffs = _pauli_coefficients(m, n)
    total = int(reps.sum())
    dim = 1 << n
    # One uniform per shot, drawn up front so the stream does not depend on the chunking.
    u = rng.random(total)
    outcome_index = np.empty(total, dtype=np.int64)
    live = np.flatnonzero(reps > 0)
    if live.size:
        # Settings as base-3 integers (n <= 10: below 3^10), which np.unique sorts fast.
        keys = bases[live].astype(np.int64) @ (3 ** np.arange(n - 1, -1, -1, dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        unique = bases[live][first]
        inverse = inverse.reshape(-1)
        shot_unique = np.repeat(inverse, reps[live])  # the distinct setting of each shot
        chunk = max(1, _CHUNK_PROBABILITIES // dim)
        for start in range(0, unique.shape[0], chunk):
            stop = min(start + chunk, unique.shape[0])
            probs = _probabilities(coeffs, n, unique[start:stop], povm, _MAX_MEMORY_BYTES)
            cdf = np.cumsum(probs, axis=1)
            cdf[:, -1] = 1.0
            shots = np.flatnonzero((shot_unique >= start) & (shot_unique < stop))
            block = max(1, _DRAW_BLOCK // dim)
            for lo in range(0, shots.size, block):
                sel = shots[lo:lo + block]
                rows = cdf[shot_unique[sel] - start]
                outcome_index[sel] = np.minimum((rows <= u[sel, None]).sum(axis=1), dim - 1)
    shifts = np.arange(n - 1, -1, -1, dtype=np.int64)
    outcomes = ((outcome_index[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    metadata = {
        "source": "density_matrix",
        "sampler": "exact-probabilities",
        "n_qubits": n,
        "n_settings": int(bases.shape[0]),
        "n_snapshots": total,
        "measurement_channel": None if measurement_channel is None else "kraus",
    }
    return ShadowData.from_settings(bases, reps, outcomes, metadata=metadata)
