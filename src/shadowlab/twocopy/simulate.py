"""Simulated Bell-basis shots on two copies: stim at any size, exact probabilities at small size.

* :func:`sample_bell_stim`: the state is prepared by a stim circuit (Clifford gates and Pauli
  noise channels) on copy A (qubits ``0..n-1``) and, independently, on copy B (qubits
  ``n..2n-1``); then every pair is Bell-measured. Noise channels are sampled independently in
  the two copies, so the shots are exactly those of ``rho (x) rho`` for the noisy ``rho``.
* :func:`sample_bell_state`: any state vector or density matrix of up to
  :data:`MAX_EXACT_QUBITS` qubits. The outcome distribution is computed exactly from the Pauli
  spectrum: ``p(a, c) = 4**-n * sum_Q (-1)**(#Y(Q) + x.a + z.c) * tr(Q rho)**2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import stim

from shadowlab.acquire.statevector import pauli_masks
from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.errors import ShadowlabError, StateError
from shadowlab.paulis import PauliString
from shadowlab.twocopy.data import BellData

MAX_EXACT_QUBITS = 11
_STIM_CHUNK_BITS = 1 << 26


def shift_circuit(circuit: stim.Circuit, offset: int) -> stim.Circuit:
    """A copy of a state-preparation circuit with every qubit index raised by ``offset``.

    Only qubit and Pauli targets can occur (:func:`check_state_circuit` has excluded
    measurement-record and sweep targets); ``REPEAT`` blocks are shifted recursively.
    """
    out = stim.Circuit()
    for op in circuit:
        if isinstance(op, stim.CircuitRepeatBlock):
            out.append(stim.CircuitRepeatBlock(op.repeat_count, shift_circuit(op.body_copy(), offset)))
            continue
        targets = []
        for t in op.targets_copy():
            if t.is_x_target:
                targets.append(stim.target_x(t.value + offset))
            elif t.is_y_target:
                targets.append(stim.target_y(t.value + offset))
            elif t.is_z_target:
                targets.append(stim.target_z(t.value + offset))
            elif t.is_combiner:
                targets.append(stim.target_combiner())
            elif t.is_qubit_target:
                targets.append(stim.GateTarget(t.value + offset))
            else:  # pragma: no cover - excluded by check_state_circuit
                raise StateError(f"cannot shift target {t!r} of instruction {op}")
        out.append(stim.CircuitInstruction(op.name, targets, op.gate_args_copy()))
    return out


def two_copy_circuit(prep: stim.Circuit, n_qubits: int | None = None) -> stim.Circuit:
    """The ``2n``-qubit stim circuit: ``prep`` on both copies, then a Bell measurement of each pair.

    Measurement record order: ``a_0 .. a_{n-1}`` (copy A) then ``c_0 .. c_{n-1}`` (copy B).

    Parameters
    ----------
    prep:
        Clifford gates and Pauli noise preparing the state from ``|0...0>``; no measurements.
    n_qubits:
        Qubits of one copy (default ``prep.num_qubits``); must be at least ``prep.num_qubits``.
    """
    check_state_circuit(prep)
    n = prep.num_qubits if n_qubits is None else int(n_qubits)
    if n < 1:
        raise StateError("a two-copy circuit needs at least one qubit per copy")
    if prep.num_qubits > n:
        raise StateError(f"the preparation circuit acts on {prep.num_qubits} qubits, more than n_qubits={n}")
    circuit = stim.Circuit()
    circuit += prep
    circuit += shift_circuit(prep, n)
    pairs = [q for k in range(n) for q in (k, n + k)]
    circuit.append("CX", pairs)
    circuit.append("H", list(range(n)))
    circuit.append("M", list(range(2 * n)))
    return circuit


def sample_bell_stim(
    prep: stim.Circuit, n_shots: int, rng: np.random.Generator, *, n_qubits: int | None = None
) -> BellData:
    """Bell-basis shots on two copies of the state a stim circuit prepares.

    Parameters
    ----------
    prep:
        Clifford circuit with optional Pauli noise, preparing the state from ``|0...0>``.
    n_shots:
        Number of shots (each consumes two copies).
    rng:
        The only source of randomness (stim seeds are drawn from it).
    n_qubits:
        Qubits of one copy (default ``prep.num_qubits``).

    Examples
    --------
    >>> import numpy as np, stim
    >>> d = sample_bell_stim(stim.Circuit("H 0\\nCX 0 1"), 5, np.random.default_rng(1))
    >>> d.n_qubits, int(((d.a[:, 0] ^ d.a[:, 1])).max()), int(((d.c[:, 0] ^ d.c[:, 1])).max())
    (2, 0, 0)
    """
    if n_shots < 0:
        raise ShadowlabError(f"n_shots must be >= 0, got {n_shots}")
    circuit = two_copy_circuit(prep, n_qubits)
    n = circuit.num_qubits // 2
    sampler = circuit.compile_sampler(seed=int(rng.integers(2**62)))
    chunk = max(1, _STIM_CHUNK_BITS // (2 * n))
    parts = []
    done = 0
    while done < n_shots:
        k = min(chunk, n_shots - done)
        parts.append(sampler.sample(k).astype(np.uint8))
        done += k
    bits = np.concatenate(parts) if parts else np.zeros((0, 2 * n), np.uint8)
    noisy = check_state_circuit(prep)
    return BellData.from_bits(bits, {"source": "stim", "sampler": "compile_sampler", "stim": stim.__version__,
                                     "noisy": noisy})


def hidden_pauli_circuit(pauli: PauliString | str, n_qubits: int, *, sign: int = 1,
                         strength: float = 0.9) -> stim.Circuit:
    """A stim circuit preparing ``rho = (I + strength * sign * P) / 2**n`` (the hidden-Pauli state).

    Qubit 0 is prepared in ``(I + strength * sign * Z) / 2`` (a bit flip with probability
    ``(1 - strength) / 2``), every other qubit maximally mixed (a bit flip with probability 1/2),
    and a Clifford ``C`` with ``C Z_0 C^dagger = P`` is applied.

    Parameters
    ----------
    pauli:
        The hidden Pauli ``P`` (not the identity), as a :class:`PauliString` or a label.
    n_qubits:
        Number of qubits ``n``.
    sign:
        ``+1`` or ``-1``.
    strength:
        ``|tr(P rho)|``, in ``[0, 1]``.
    """
    p = pauli if isinstance(pauli, PauliString) else PauliString.from_label(pauli)
    p.check_qubits(n_qubits)
    if p.weight == 0:
        raise ShadowlabError("the hidden Pauli must not be the identity")
    if sign not in (1, -1):
        raise ShadowlabError(f"sign must be +1 or -1, got {sign}")
    if not 0.0 <= strength <= 1.0:
        raise ShadowlabError(f"strength must be in [0, 1], got {strength}")
    tableau = stim.Tableau.from_stabilizers([stim.PauliString(p.to_dense(n_qubits))], allow_underconstrained=True)
    circuit = stim.Circuit()
    if sign == -1:
        circuit.append("X", [0])
    if strength < 1.0:
        circuit.append("X_ERROR", [0], (1.0 - strength) / 2.0)
    if n_qubits > 1:
        circuit.append("X_ERROR", list(range(1, n_qubits)), 0.5)
    circuit += tableau.to_circuit("elimination")
    return circuit


def _as_density_matrix(state: np.ndarray) -> tuple[np.ndarray, int]:
    arr = np.asarray(state, dtype=np.complex128)
    if arr.ndim == 1:
        dim = arr.shape[0]
        norm = np.vdot(arr, arr).real
        if not np.isfinite(norm) or abs(norm - 1.0) > 1e-8:
            raise StateError(f"state vector must be normalized, got norm^2 = {norm}")
        rho = np.outer(arr, arr.conj())
    elif arr.ndim == 2 and arr.shape[0] == arr.shape[1]:
        dim = arr.shape[0]
        rho = arr
        if not np.allclose(rho, rho.conj().T, atol=1e-10):
            raise StateError("density matrix must be Hermitian")
        tr = np.trace(rho).real
        if abs(tr - 1.0) > 1e-8:
            raise StateError(f"density matrix must have trace 1, got {tr}")
        if np.linalg.eigvalsh(rho).min() < -1e-8:
            raise StateError("density matrix must be positive semidefinite")
    else:
        raise StateError(f"expected a state vector (2^n,) or density matrix (2^n, 2^n), got shape {arr.shape}")
    n = dim.bit_length() - 1
    if dim < 2 or 1 << n != dim:
        raise StateError(f"state dimension {dim} is not a power of two >= 2")
    if n > MAX_EXACT_QUBITS:
        raise StateError(f"exact two-copy sampling is limited to {MAX_EXACT_QUBITS} qubits, got {n}; "
                         "use a stim circuit for larger stabilizer states")
    return rho, n


def _walsh_hadamard(v: np.ndarray, bits: int, axis: int = -1) -> np.ndarray:
    """Unnormalized Walsh-Hadamard transform along ``axis`` (length ``2**bits``)."""
    v = np.moveaxis(np.array(v, copy=True), axis, -1)
    shape = v.shape
    for b in range(bits):
        v = v.reshape(*shape[:-1], -1, 2, 1 << b)
        lo = v[..., 0, :].copy()
        hi = v[..., 1, :]
        v[..., 0, :] = lo + hi
        v[..., 1, :] = lo - hi
        v = v.reshape(shape)
    return np.moveaxis(v, -1, axis)


def pauli_spectrum(state: np.ndarray) -> np.ndarray:
    """All ``4**n`` Pauli expectation values ``tr(Q rho)`` of a small state, ``O(n 4**n)``.

    Returns a real ``(2**n, 2**n)`` array indexed ``[x, z]``, where ``Q(x, z) = i**(x.z) X**x Z**z``
    and bit ``n-1-k`` of the integers ``x``, ``z`` belongs to qubit ``k`` (qubit 0 is the most
    significant bit, as in state-vector indices).
    """
    rho, n = _as_density_matrix(state)
    dim = 1 << n
    idx = np.arange(dim)
    # M[x, j] = rho[j, j ^ x]; tr(X^x Z^z rho) = sum_j (-1)^(z.j) rho[j, j ^ x].
    m = rho[idx[None, :], idx[None, :] ^ idx[:, None]]
    t = _walsh_hadamard(m, n, axis=1)
    xz = np.bitwise_and(idx[:, None], idx[None, :])
    phase = (1j) ** (np.bitwise_count(xz) % 4)
    return np.real(t * phase)


def bell_distribution(state: np.ndarray) -> np.ndarray:
    """Exact probabilities of the ``4**n`` Bell outcomes for two copies of a small state.

    Returns a ``(2**n, 2**n)`` array indexed ``[a, c]`` with the bits of ``a``, ``c`` ordered as in
    :func:`pauli_spectrum` (qubit 0 = most significant bit).
    """
    t = pauli_spectrum(state)
    n = t.shape[0].bit_length() - 1
    idx = np.arange(t.shape[0])
    eps = 1.0 - 2.0 * (np.bitwise_count(np.bitwise_and(idx[:, None], idx[None, :])) % 2)
    f = eps * t * t
    p = _walsh_hadamard(_walsh_hadamard(f, n, axis=0), n, axis=1) / float(4**n)
    p[np.abs(p) < 1e-14] = 0.0
    if p.min() < -1e-10:  # pragma: no cover - would be a bug in the transform
        raise StateError(f"negative Bell probability {p.min()}")
    return np.clip(p, 0.0, None)


def depolarize(state: np.ndarray, p: float) -> np.ndarray:
    """The density matrix after DEPOLARIZE1(``p``) on every qubit (X, Y, Z each with probability ``p/3``)."""
    if not 0.0 <= p <= 0.75:
        raise ShadowlabError(f"depolarizing probability must be in [0, 0.75], got {p}")
    rho, n = _as_density_matrix(state)
    idx = np.arange(rho.shape[0])
    for k in range(n):
        mask = 1 << (n - 1 - k)
        flip = idx ^ mask
        sign = 1.0 - 2.0 * ((idx & mask) > 0)
        z = sign[:, None] * rho * sign[None, :]
        rho = (1.0 - p) * rho + (p / 3.0) * (rho[np.ix_(flip, flip)] + z[np.ix_(flip, flip)] + z)
    return rho


def _int_bits(values: np.ndarray, n: int) -> np.ndarray:
    shifts = np.arange(n - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] >> shifts[None, :]) & 1).astype(np.uint8)


def sample_bell_state(state: np.ndarray, n_shots: int, rng: np.random.Generator) -> BellData:
    """Bell-basis shots on two copies of a state vector or density matrix (up to 11 qubits).

    Examples
    --------
    >>> import numpy as np
    >>> d = sample_bell_state(np.array([1.0, 0.0]), 4, np.random.default_rng(0))
    >>> d.c.ravel().tolist()   # Z (x) Z = +1 on two copies of |0>
    [0, 0, 0, 0]
    """
    if n_shots < 0:
        raise ShadowlabError(f"n_shots must be >= 0, got {n_shots}")
    p = bell_distribution(state)
    dim = p.shape[0]
    n = dim.bit_length() - 1
    flat = p.ravel()
    flat = flat / flat.sum()
    draws = rng.choice(flat.size, size=n_shots, p=flat)
    return BellData(_int_bits(draws // dim, n), _int_bits(draws % dim, n), {"source": "exact", "n_qubits": n})


def pauli_squares_exact(state: np.ndarray, paulis: Sequence[PauliString]) -> np.ndarray:
    """Exact ``tr(P rho)**2`` for small states (test oracle)."""
    t = pauli_spectrum(state)
    n = t.shape[0].bit_length() - 1
    out = np.empty(len(paulis))
    for i, p in enumerate(paulis):
        x, z, _ = pauli_masks(p, n)  # the same bit order as the spectrum's indices
        out[i] = t[x, z] ** 2
    return out
