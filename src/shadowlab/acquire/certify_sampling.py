"""Simulated data for shadow-overlap certification (Huang, Preskill, Soleimanifar 2024).

One *round* of the protocol measures one copy of the prepared state: a qubit ``k`` is chosen
uniformly at random, every other qubit is measured in the ``Z`` basis (bits ``z_{-k}``) and qubit
``k`` in a uniformly random Pauli basis (``X``, ``Y`` or ``Z``). See
:mod:`shadowlab.estimate.certify` for what is computed from the rounds.

Conventions
-----------
* Bits: ``0`` is the ``+1`` eigenstate of the measured Pauli (``|0>``, ``|+>``, ``|+i>``), ``1`` the
  ``-1`` eigenstate.
* Bases: ``0 = X``, ``1 = Y``, ``2 = Z`` (:data:`BASIS_LETTERS`).
* State vectors: qubit 0 is the most significant bit of the index (as in
  :mod:`shadowlab.acquire.states`); stim circuits: qubit ``q`` is stim qubit ``q``.
* Noise (``noise=p``) acts on every qubit after the preparation and before the measurement:
  ``"depolarize"`` applies ``X``, ``Y`` or ``Z`` with probability ``p / 3`` each (stim's
  ``DEPOLARIZE1(p)``), ``"dephase"`` applies ``Z`` with probability ``p`` (``Z_ERROR(p)``). As every
  qubit is then measured in a Pauli basis, a Pauli error is exactly a flip of that qubit's
  outcome when it anticommutes with the measured Pauli, and it is simulated that way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import stim

from shadowlab.atomic import atomic_path
from shadowlab.errors import InputFormatError, ShadowlabError, StateError

__all__ = [
    "BASIS_LETTERS",
    "NOISE_KINDS",
    "CertificationRounds",
    "apply_noise",
    "sample_certification_rounds",
]

#: Letter of each basis code.
BASIS_LETTERS = ("X", "Y", "Z")
#: Accepted values of ``noise_kind``.
NOISE_KINDS = ("depolarize", "dephase")
#: Largest state vector (or density matrix) sampled exactly.
MAX_EXACT_QUBITS = 14

_FORMAT = "shadowlab-certification-rounds"
_Sampler = Callable[[int, int, int, np.random.Generator], np.ndarray]
_VERSION = 1

_S = np.sqrt(0.5)
# Rows: <eigenstate for outcome 0|, <eigenstate for outcome 1| of X, Y, Z.
_BASIS_BRAS = np.array(
    [
        [[_S, _S], [_S, -_S]],
        [[_S, -1j * _S], [_S, 1j * _S]],
        [[1, 0], [0, 1]],
    ],
    dtype=np.complex128,
)


@dataclass(frozen=True, eq=False)
class CertificationRounds:
    """Outcomes of certification rounds, one row per measured copy.

    Attributes
    ----------
    n_qubits:
        Number of qubits ``n``.
    qubit:
        ``(R,)`` int32, the qubit ``k`` measured in a random basis in each round.
    z:
        ``(R, n)`` uint8 ``Z``-basis bits of every qubit; the entry of qubit ``k`` is 0 (unused).
    basis:
        ``(R,)`` uint8 basis of qubit ``k``: ``0 = X``, ``1 = Y``, ``2 = Z``.
    outcome:
        ``(R,)`` uint8 outcome of qubit ``k``: 0 for the ``+1`` eigenstate, 1 for ``-1``.
    """

    n_qubits: int
    qubit: np.ndarray
    z: np.ndarray
    basis: np.ndarray
    outcome: np.ndarray

    def __post_init__(self) -> None:
        n = int(self.n_qubits)
        if n < 1:
            raise ShadowlabError(f"certification rounds need n_qubits >= 1, got {n}")
        qubit = np.ascontiguousarray(self.qubit, dtype=np.int32).reshape(-1)
        r = qubit.shape[0]
        z = np.ascontiguousarray(self.z, dtype=np.uint8)
        basis = np.ascontiguousarray(self.basis, dtype=np.uint8).reshape(-1)
        outcome = np.ascontiguousarray(self.outcome, dtype=np.uint8).reshape(-1)
        if z.shape != (r, n):
            raise ShadowlabError(f"z has shape {z.shape}, expected ({r}, {n}) (rounds x qubits)")
        if basis.shape[0] != r or outcome.shape[0] != r:
            raise ShadowlabError(f"qubit, basis and outcome must have one entry per round ({r}); got "
                                 f"{basis.shape[0]} bases and {outcome.shape[0]} outcomes")
        if r and (qubit.min() < 0 or qubit.max() >= n):
            raise ShadowlabError(f"qubit indices must lie in 0..{n - 1}")
        if r and (basis.max() > 2 or outcome.max() > 1 or z.max() > 1):
            raise ShadowlabError("bases must be 0, 1, 2 (X, Y, Z) and bits 0 or 1")
        object.__setattr__(self, "n_qubits", n)
        object.__setattr__(self, "qubit", qubit)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "outcome", outcome)

    @property
    def n_rounds(self) -> int:
        """Number of rounds ``R``."""
        return int(self.qubit.shape[0])

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the rounds to a ``.npz`` file atomically (``z`` bit-packed); return the path.

        Raises
        ------
        ShadowlabError
            If ``path`` exists and ``force`` is false.
        """
        final = Path(path)
        with atomic_path(final, force=force, suffix=".npz") as tmp:
            np.savez_compressed(
                tmp,
                format=np.array(_FORMAT),
                version=np.array(_VERSION),
                n_qubits=np.array(self.n_qubits),
                qubit=self.qubit,
                z_packed=np.packbits(self.z, axis=1),
                basis=self.basis,
                outcome=self.outcome,
            )
        return final

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CertificationRounds:
        """Read rounds written by :meth:`save`.

        Raises
        ------
        InputFormatError
            If the file is not a readable rounds file (the message names the file).
        """
        p = Path(path)
        if not p.is_file():
            raise InputFormatError("no such rounds file", path=p)
        try:
            with np.load(p, allow_pickle=False) as data:
                fields = {key: data[key] for key in data.files}
        except (ValueError, OSError, EOFError) as exc:
            raise InputFormatError(f"not a certification rounds file (.npz): {exc}", path=p) from None
        needed = ("format", "version", "n_qubits", "qubit", "z_packed", "basis", "outcome")
        missing = [key for key in needed if key not in fields]
        if missing:
            raise InputFormatError(f"not a certification rounds file: missing {', '.join(missing)}", path=p)
        if str(fields["format"]) != _FORMAT:
            raise InputFormatError(f"not a certification rounds file (format {str(fields['format'])!r})", path=p)
        if int(fields["version"]) != _VERSION:
            raise InputFormatError(f"unsupported rounds file version {int(fields['version'])}", path=p)
        try:
            n = int(fields["n_qubits"])
            packed = np.asarray(fields["z_packed"])
            if packed.ndim != 2 or packed.shape[1] != (n + 7) // 8:
                raise ShadowlabError(f"z_packed has shape {packed.shape}, expected (rounds, {(n + 7) // 8})")
            z = np.unpackbits(np.asarray(fields["z_packed"], dtype=np.uint8), axis=1, count=n)
            return cls(n, fields["qubit"], z, fields["basis"], fields["outcome"])
        except (ShadowlabError, ValueError, TypeError) as exc:
            raise InputFormatError(f"malformed certification rounds: {exc}", path=p) from None


def sample_certification_rounds(
    prepared: stim.Circuit | np.ndarray,
    n_rounds: int,
    rng: np.random.Generator,
    *,
    noise: float = 0.0,
    noise_kind: str = "depolarize",
) -> CertificationRounds:
    """Simulate ``n_rounds`` rounds of the certification protocol on a prepared state.

    Parameters
    ----------
    prepared:
        What the device prepares: a stim circuit from ``|0...0>`` (unitary Clifford gates, Pauli
        noise allowed; any number of qubits), a state vector ``(2^n,)`` or a density matrix
        ``(2^n, 2^n)`` (``n <= 14``, sampled exactly; qubit 0 = most significant bit).
    n_rounds:
        Number of rounds (copies measured), ``>= 1``.
    rng:
        Source of all randomness (stim samplers are seeded from it): same rng state, same data.
    noise, noise_kind:
        Per-qubit Pauli noise probability after the preparation and its kind (see the module
        documentation).

    Returns
    -------
    CertificationRounds
    """
    if n_rounds < 1:
        raise ShadowlabError(f"n_rounds must be >= 1, got {n_rounds}")
    if not 0.0 <= noise <= 1.0:
        raise ShadowlabError(f"noise must be a probability in [0, 1], got {noise}")
    if noise_kind not in NOISE_KINDS:
        raise ShadowlabError(f"unknown noise kind {noise_kind!r}; expected one of {', '.join(NOISE_KINDS)}")
    if isinstance(prepared, stim.Circuit):
        from shadowlab.acquire.stim_sampler import check_state_circuit

        check_state_circuit(prepared, allow_noise=True)
        n = prepared.num_qubits
        if n < 1:
            raise StateError("the prepared circuit acts on no qubits")
        sample = _stim_sampler(prepared, n)
    else:
        state = np.asarray(prepared)
        n = _exact_qubits(state)
        sample = _exact_sampler(state, n)
    qubit = rng.integers(0, n, size=n_rounds).astype(np.int32)
    basis = rng.integers(0, 3, size=n_rounds).astype(np.uint8)
    bits = np.zeros((n_rounds, n), dtype=np.uint8)
    group = qubit.astype(np.int64) * 3 + basis
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=3 * n)
    start = 0
    for g in np.flatnonzero(counts):
        sel = order[start:start + counts[g]]
        start += counts[g]
        bits[sel] = sample(int(g) // 3, int(g) % 3, int(counts[g]), rng)
    rows = np.arange(n_rounds)
    if noise > 0:
        # Other qubits are measured in Z: X and Y errors flip them. Qubit k: any error that
        # anticommutes with its measured Pauli.
        flip_z = 2.0 * noise / 3.0 if noise_kind == "depolarize" else 0.0
        flips = rng.random(bits.shape) < flip_z
        if noise_kind == "depolarize":
            flip_k = np.full(n_rounds, 2.0 * noise / 3.0)
        else:
            flip_k = np.where(basis == 2, 0.0, noise)
        flips[rows, qubit] = rng.random(n_rounds) < flip_k
        bits ^= flips.astype(np.uint8)
    outcome = bits[rows, qubit].copy()
    bits[rows, qubit] = 0
    return CertificationRounds(n, qubit, bits, basis, outcome)


def _stim_sampler(circuit: stim.Circuit, n: int) -> _Sampler:
    compiled: dict[tuple[int, int], stim.CompiledMeasurementSampler] = {}

    def sample(k: int, b: int, count: int, rng: np.random.Generator) -> np.ndarray:
        key = (k, b)
        if key not in compiled:
            c = circuit.copy()
            if k > 0:
                c.append("M", range(k))
            c.append(("MX", "MY", "M")[b], [k])
            if k + 1 < n:
                c.append("M", range(k + 1, n))
            compiled[key] = c.compile_sampler(seed=int(rng.integers(0, 2**63)))
        return compiled[key].sample(count).astype(np.uint8)

    return sample


def _exact_qubits(state: np.ndarray) -> int:
    if state.ndim not in (1, 2) or (state.ndim == 2 and state.shape[0] != state.shape[1]):
        raise StateError(f"a prepared state must be a state vector or a square density matrix, got shape "
                         f"{state.shape}")
    dim = state.shape[0]
    n = dim.bit_length() - 1
    if dim < 2 or dim != 1 << n:
        raise StateError(f"a prepared state must have 2^n amplitudes (n >= 1), got {dim}")
    if n > MAX_EXACT_QUBITS:
        raise StateError(f"exact sampling is limited to {MAX_EXACT_QUBITS} qubits, got {n}; use a stim circuit")
    if not np.all(np.isfinite(state)):
        raise StateError("the prepared state has non-finite entries")
    norm = np.vdot(state, state).real if state.ndim == 1 else np.trace(state).real
    if abs(norm - 1.0) > 1e-6:
        raise StateError(f"the prepared state is not normalized (norm or trace {norm:.6g})")
    return n


def _exact_sampler_probs(state: np.ndarray, n: int, k: int, b: int) -> np.ndarray:
    """Born probabilities ``(2^n,)`` of the outcome bits (qubit 0 = MSB) with qubit ``k`` in basis ``b``."""
    u = _BASIS_BRAS[b]
    a, c = 1 << k, 1 << (n - k - 1)
    if state.ndim == 1:
        probs = np.abs(np.einsum("oi,aic->aoc", u, state.reshape(a, 2, c))) ** 2
    else:
        blocks = np.einsum("aibajb->aijb", state.reshape(a, 2, c, a, 2, c))
        probs = np.einsum("oi,aijb,oj->aob", u, blocks, u.conj()).real
    return np.clip(probs.reshape(-1), 0.0, None)


def _exact_sampler(state: np.ndarray, n: int) -> _Sampler:
    state = state.astype(np.complex128)
    shifts = np.arange(n - 1, -1, -1, dtype=np.int64)

    def sample(k: int, b: int, count: int, rng: np.random.Generator) -> np.ndarray:
        p = _exact_sampler_probs(state, n, k, b)
        idx = rng.choice(p.size, size=count, p=p / p.sum())
        return ((idx[:, None] >> shifts[None, :]) & 1).astype(np.uint8)

    return sample


_PAULIS = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)


def apply_noise(state: np.ndarray, noise: float, noise_kind: str = "depolarize") -> np.ndarray:
    """Density matrix after the per-qubit noise of :func:`sample_certification_rounds` (exact, small ``n``).

    ``state`` is a state vector or density matrix (qubit 0 = most significant bit); the result is
    the ``(2^n, 2^n)`` density matrix of every qubit passed through the channel.
    """
    state = np.asarray(state, dtype=np.complex128)
    n = _exact_qubits(state)
    if noise_kind not in NOISE_KINDS:
        raise ShadowlabError(f"unknown noise kind {noise_kind!r}; expected one of {', '.join(NOISE_KINDS)}")
    rho = np.outer(state, state.conj()) if state.ndim == 1 else state.copy()
    errors = [(noise / 3.0, p) for p in _PAULIS] if noise_kind == "depolarize" else [(noise, _PAULIS[2])]
    for q in range(n):
        a, c = 1 << q, 1 << (n - q - 1)
        t = rho.reshape(a, 2, c, a, 2, c)
        out = (1.0 - noise) * t
        for weight, pauli in errors:
            out = out + weight * np.einsum("ij,ajbckd,lk->aibcld", pauli, t, pauli.conj())
        rho = out.reshape(1 << n, 1 << n)
    return rho
