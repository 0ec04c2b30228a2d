"""Global Clifford shadows (Huang, Kueng, Preskill 2020): uniformly random n-qubit Cliffords.

A *snapshot* is a pair ``(U, b)``: ``U`` a uniformly random ``n``-qubit Clifford (a
:class:`stim.Tableau`) and ``b`` the computational-basis outcome of measuring ``U rho U^dagger``
(``b[q] = 1`` means qubit ``q`` read ``|1>``; qubit ``q`` is stim qubit ``q``, and for state vectors
qubit 0 is the most significant bit of the index).

Uniform sampling
----------------
:func:`random_clifford` builds the symplectic part of the tableau pair by pair: the image ``x_i``
of ``X_i`` is a uniformly random non-zero vector of the symplectic complement of the pairs
already chosen, the image ``z_i`` of ``Z_i`` a uniformly random vector of that complement with
``<x_i, z_i> = 1``. A vector uniform over the complement is obtained by projecting a uniform
vector of ``GF(2)^{2n}`` with ``r -> r + sum_j (<r, z_j> x_j + <r, x_j> z_j)`` (a linear surjection
whose fibres have equal size). Every symplectic matrix arises from exactly one sequence of
choices, so the matrix is uniform over ``Sp(2n, 2)``; the ``2n`` signs are then uniform
independent bits, which makes the tableau uniform over the Clifford group modulo phases
(24 elements for ``n = 1``, 11,520 for ``n = 2``). All randomness comes from the caller's
``numpy.random.Generator``; ``stim.Tableau.random`` is not used (it cannot be seeded).

The vectors are bit-packed into ``uint64`` words and the cost is ``O(n^3 / 64)`` word operations
per Clifford; :func:`random_cliffords` builds many at once to share the ``O(n)`` NumPy calls.

Noise
-----
A :class:`~shadowlab.acquire.noise.NoiseModel` describes the device, as for local-Pauli shadows:
its gate noise (``DEPOLARIZE1``/``DEPOLARIZE2`` after each gate of a stim state's preparation
circuit, Pauli errors drawn from the caller's generator), then the measurement: the random
Clifford is treated as the measurement layer, whose depolarizing gate flips each measured bit
with probability ``2p/3``, followed by asymmetric readout flips ``p01``/``p10``
(:func:`~shadowlab.acquire.noise.apply_measurement_noise`, without readout twirling: the global
Clifford ensemble twirls any gate-independent measurement noise into a depolarizing form by
itself, Chen, Yu, Zeng, Flammia, PRX Quantum 2, 030348 (2021); see
:mod:`shadowlab.estimate.fidelity` for the robust estimator). The state's ``dephasing`` option acts
after the preparation, as before. ``zero:N`` is the calibration state ``|0...0>`` (no gates, so
no gate noise).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.noise import NoiseModel
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError

DEFAULT_BATCH_SNAPSHOTS = 256
MAX_STATEVECTOR_QUBITS = 16
_CANDIDATES = 4  # random vectors projected together per step; usually enough for x and z
_GROUP_WORDS = 2**18  # bound on the (group, candidates, 2n, 2W) work arrays, in 64-bit words


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ShadowlabError("rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
                             f"got {type(rng).__name__}")
    return rng


def _symplectic_products(rows: np.ndarray, vecs: np.ndarray, words: int) -> np.ndarray:
    """``<vecs[b, k], rows[b, j]> mod 2`` as a ``(B, K, R)`` uint64 array.

    ``rows`` is ``(B, R, 2W)`` and ``vecs`` ``(B, K, 2W)``, vectors packed as ``[x words | z words]``.
    """
    swapped = np.concatenate([vecs[..., words:], vecs[..., :words]], axis=-1)
    counts = np.bitwise_count(rows[:, None, :, :] & swapped[:, :, None, :]).sum(axis=-1, dtype=np.uint64)
    return counts & np.uint64(1)


def _random_symplectic_packed(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Rows ``x_0, z_0, x_1, z_1, ...`` of ``count`` uniform symplectic matrices, packed: ``(count, 2n, 2W)``.

    The ``count`` matrices are built together (vectorized over the first axis); each one's
    choices use only its own random draws, so each is uniform and they are independent.
    """
    words = -(-n // 64)
    tail = np.uint64((1 << (n % 64)) - 1) if n % 64 else np.uint64(2**64 - 1)
    rows = np.zeros((count, 2 * n, 2 * words), dtype=np.uint64)
    k = _CANDIDATES
    for i in range(n):
        x = np.zeros((count, 2 * words), dtype=np.uint64)
        z = np.zeros((count, 2 * words), dtype=np.uint64)
        have_x = np.zeros(count, dtype=bool)
        have_z = np.zeros(count, dtype=bool)
        while not have_z.all():
            idx = np.flatnonzero(~have_z)
            m = idx.size
            cand = rng.integers(0, 2**64, size=(m, k, 2 * words), dtype=np.uint64)
            cand[..., words - 1] &= tail
            cand[..., 2 * words - 1] &= tail
            if i:
                done = rows[idx, : 2 * i]
                # Coefficient of x_j is <r, z_j> and of z_j is <r, x_j>: swap within each pair.
                c = _symplectic_products(done, cand, words).reshape(m, k, i, 2)[..., ::-1].reshape(m, k, 2 * i)
                cand ^= np.bitwise_xor.reduce(done[:, None, :, :] * c[..., None], axis=2)
            # x: the first non-zero candidate (for matrices still without one).
            need_x = ~have_x[idx]
            nonzero = cand.any(axis=-1)
            first = nonzero.argmax(axis=1)
            got_x = need_x & nonzero.any(axis=1)
            x[idx[got_x]] = cand[got_x, first[got_x]]
            have_x[idx[got_x]] = True
            # z: the first later candidate anticommuting with x.
            start = np.where(need_x, first + 1, 0)
            anti = _symplectic_products(cand, x[idx][:, None, :], words)[:, :, 0].astype(bool)
            usable = anti & (np.arange(k)[None, :] >= start[:, None]) & have_x[idx][:, None]
            got_z = usable.any(axis=1)
            pick = usable.argmax(axis=1)
            z[idx[got_z]] = cand[got_z, pick[got_z]]
            have_z[idx[got_z]] = True
        rows[:, 2 * i] = x
        rows[:, 2 * i + 1] = z
    return rows


def _unpack(words_: np.ndarray, n: int) -> np.ndarray:
    """``(..., W)`` uint64 -> ``(..., n)`` bool, bit ``q`` of the vector = bit ``q % 64`` of word ``q // 64``."""
    as_bytes = np.ascontiguousarray(words_.astype("<u8")).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little", count=n).astype(bool)


def random_clifford(n: int, rng: np.random.Generator) -> stim.Tableau:
    """A uniformly random ``n``-qubit Clifford (modulo global phase) as a :class:`stim.Tableau`.

    Parameters
    ----------
    n:
        Number of qubits, ``>= 1``.
    rng:
        The only source of randomness; the same generator state gives the same tableau.

    Examples
    --------
    >>> import numpy as np
    >>> t = random_clifford(3, np.random.default_rng(1))
    >>> len(t), t == random_clifford(3, np.random.default_rng(1))
    (3, True)
    """
    return random_cliffords(n, 1, rng)[0]


def random_cliffords(n: int, count: int, rng: np.random.Generator) -> list[stim.Tableau]:
    """``count`` independent uniformly random ``n``-qubit Cliffords (modulo global phase).

    Built in vectorized groups (2 to 4 times faster than one at a time); the result depends on
    ``(n, count)`` and the generator state only.
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise ShadowlabError(f"n must be a positive integer number of qubits, got {n!r}")
    if count < 0:
        raise ShadowlabError(f"count must be >= 0, got {count}")
    rng = _check_rng(rng)
    n = int(n)
    words = -(-n // 64)
    # Grouping removes the per-step Python overhead; the group is bounded so the work arrays stay small.
    group = int(max(1, min(count, _GROUP_WORDS // (_CANDIDATES * 4 * n * words))))
    out: list[stim.Tableau] = []
    for start in range(0, count, group):
        size = min(group, count - start)
        rows = _random_symplectic_packed(n, size, rng)
        bits = _unpack(rows.reshape(size, 2 * n, 2, words), n)  # (size, 2n, 2, n)
        signs = rng.integers(0, 2, size=(size, 2 * n)).astype(bool)
        for b in range(size):
            xs, zs = bits[b, 0::2], bits[b, 1::2]
            out.append(stim.Tableau.from_numpy(x2x=xs[:, 0], x2z=xs[:, 1], z2x=zs[:, 0], z2z=zs[:, 1],
                                               x_signs=signs[b, :n], z_signs=signs[b, n:]))
    return out


# -- states ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CliffordShadowState:
    """A state to measure with random Cliffords: a stim circuit (any size) or a state vector.

    Attributes
    ----------
    description:
        What the user asked for (spec or path), recorded in provenance.
    n_qubits:
        Number of qubits.
    circuit:
        Unitary Clifford stim circuit preparing the state from ``|0...0>``, or None.
    statevector:
        ``(2^n,)`` complex128 (qubit 0 = most significant bit), or None.
    dephasing:
        Probability ``p`` of a ``Z`` error on each qubit after preparation, drawn independently
        per qubit and per snapshot (stim circuits only).
    noise:
        Device noise (gate noise of the preparation circuit, measurement-layer and readout flips),
        or None for an ideal device.
    """

    description: str
    n_qubits: int
    circuit: stim.Circuit | None = None
    statevector: np.ndarray | None = field(default=None, repr=False)
    dephasing: float = 0.0
    noise: NoiseModel | None = None


def make_state(
    state: str | stim.Circuit | np.ndarray,
    *,
    dephasing: float = 0.0,
    noise: NoiseModel | None = None,
    description: str | None = None,
) -> CliffordShadowState:
    """Resolve ``state`` for :func:`iter_clifford_snapshots`.

    Parameters
    ----------
    state:
        A built-in Clifford spec (``ghz:100``, ``cluster:50``, ``cluster2d:10x10``, ``toric:3``), the
        calibration state ``zero:N`` (``|0...0>``), a path to a ``.stim`` file, a :class:`stim.Circuit`
        (unitary Clifford gates only), or a state vector (``n <= 16`` qubits, qubit 0 = most
        significant bit).
    dephasing:
        Per-qubit ``Z``-error probability in ``[0, 1]`` (stim circuits only).
    noise:
        Device noise (see the module documentation); default None, an ideal device. Per-qubit
        readout lists must have one entry per qubit.
    description:
        Name recorded in provenance (default: the spec, or a generic name).

    Raises
    ------
    StateError
        If the circuit measures, resets or contains noise channels, or the vector is invalid.
    ShadowlabError
        On an unknown spec, a bad dephasing probability, dephasing asked of a state vector, or a
        noise model whose per-qubit readout lists do not match the qubit count.

    Examples
    --------
    >>> from shadowlab.acquire.noise import NoiseModel
    >>> s = make_state("zero:3", noise=NoiseModel(readout_p01=0.05, readout_p10=0.15))
    >>> s.n_qubits, s.description
    (3, 'zero:3')
    """
    if not 0.0 <= float(dephasing) <= 1.0:
        raise ShadowlabError(f"dephasing must be a probability in [0, 1], got {dephasing}")
    if noise is not None and not isinstance(noise, NoiseModel):
        raise ShadowlabError("noise must be a shadowlab.acquire.noise.NoiseModel (or None), got "
                             f"{type(noise).__name__}")
    if isinstance(state, str):
        zero = calibration_state_size(state)
        if zero is not None:
            if noise is not None:
                noise.readout(zero)
            return CliffordShadowState(description or f"zero:{zero}", zero, circuit=stim.Circuit(),
                                       dephasing=float(dephasing), noise=noise)
        circuit = load_stabilizer_circuit(state)
        return make_state(circuit, dephasing=dephasing, noise=noise, description=description or state)
    if isinstance(state, stim.Circuit):
        from shadowlab.acquire.stim_sampler import check_state_circuit

        check_state_circuit(state, allow_noise=False)
        n = state.num_qubits
        if n < 1:
            raise StateError("the stim circuit acts on no qubits")
        if noise is not None:
            noise.readout(n)
        return CliffordShadowState(description or "stim circuit", n, circuit=state, dephasing=float(dephasing),
                                   noise=noise)
    from shadowlab.acquire.statevector import validate_statevector

    psi, n = validate_statevector(state, what=description or "state")
    if n > MAX_STATEVECTOR_QUBITS:
        raise StateError(f"{description or 'state'}: {n} qubits is beyond the global-Clifford state-vector "
                         f"simulator (at most {MAX_STATEVECTOR_QUBITS}); give a stabilizer state as a stim circuit")
    if dephasing:
        raise ShadowlabError("dephasing is supported for stim circuits only; apply it to the state vector yourself")
    if noise is not None:
        noise.readout(n)
    return CliffordShadowState(description or "state vector", n, statevector=psi, noise=noise)


def calibration_state_size(spec: str) -> int | None:
    """``N`` for the calibration spec ``zero:N`` (None for any other spec).

    ``zero:N`` is parsed and checked by :func:`shadowlab.acquire.simulate.prepare_state` (one
    parser for every simulator), which raises :class:`ShadowlabError` for ``zero``, ``zero:x``
    or ``zero:0``.

    Examples
    --------
    >>> calibration_state_size("zero:3"), calibration_state_size("ghz:3")
    (3, None)
    """
    from shadowlab.acquire.simulate import prepare_state

    if spec.split(":", 1)[0].strip().lower() != "zero":
        return None
    return prepare_state(spec.strip()).n_qubits


def load_stabilizer_circuit(spec: str) -> stim.Circuit:
    """A built-in Clifford spec (see :func:`shadowlab.acquire.clifford_states.builtin_clifford`) or a ``.stim`` file."""
    from pathlib import Path

    if spec.endswith(".stim"):
        path = Path(spec)
        if not path.is_file():
            raise ShadowlabError(f"{path}: no such file")
        try:
            return stim.Circuit(path.read_text())
        except ValueError as exc:
            raise StateError(f"{path}: not a valid stim circuit: {exc}") from exc
    from shadowlab.acquire.clifford_states import builtin_clifford

    return builtin_clifford(spec)


# -- measurement -----------------------------------------------------------------------------------
def measure_z_all(sim: stim.TableauSimulator, n: int, coins: np.ndarray) -> np.ndarray:
    """Measure qubits ``0..n-1`` of ``sim`` in the Z basis, taking random outcomes from ``coins``.

    Deterministic qubits give their value; for a random one the outcome is ``coins[q]`` and the
    simulator is post-selected on it. Returns ``(n,)`` uint8 (1 = ``|1>``).
    """
    b = np.empty(n, dtype=np.uint8)
    for q in range(n):
        v = sim.peek_z(q)
        if v == 0:
            bit = bool(coins[q])
            sim.postselect_z(q, desired_value=bit)
            b[q] = bit
        else:
            b[q] = v < 0
    return b


def apply_tableau_statevector(psi: np.ndarray, tableau: stim.Tableau) -> np.ndarray:
    """``U |psi>`` (up to a global phase) for the Clifford ``U`` of ``tableau``; qubit 0 = most significant bit."""
    n = len(tableau)
    state = np.asarray(psi, dtype=np.complex128).reshape((2,) * n).copy()
    return apply_circuit_statevector(state, tableau.to_circuit("elimination")).reshape(-1)


_H = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
_ONE_QUBIT = {
    "H": _H,
    "S": np.diag([1, 1j]),
    "S_DAG": np.diag([1, -1j]),
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.diag([1, -1]).astype(np.complex128),
    "I": np.eye(2, dtype=np.complex128),
    "SQRT_X": np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2,
    "SQRT_X_DAG": np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]]) / 2,
}


def apply_circuit_statevector(state: np.ndarray, circuit: stim.Circuit) -> np.ndarray:
    """Apply a unitary stim circuit of H/S/S_DAG/X/Y/Z/SQRT_X(_DAG)/CX/CZ/SWAP gates to a ``(2,)*n`` tensor.

    Axis ``q`` is qubit ``q``. Returns the new tensor (the input may be modified).
    """
    for op in circuit.flattened():
        name = op.name
        qs = [t.value for t in op.targets_copy()]
        if name in _ONE_QUBIT:
            m = _ONE_QUBIT[name]
            for q in qs:
                i0 = (slice(None),) * q + (0,)
                i1 = (slice(None),) * q + (1,)
                a = state[i0].copy()
                b = state[i1].copy()
                state[i0] = m[0, 0] * a + m[0, 1] * b
                state[i1] = m[1, 0] * a + m[1, 1] * b
        elif name in ("CX", "CNOT", "CZ", "SWAP"):
            for c, t in zip(qs[0::2], qs[1::2], strict=True):
                idx: list[Any] = [slice(None)] * state.ndim
                if name == "SWAP":
                    state = np.swapaxes(state, c, t).copy()
                    continue
                idx[c] = 1
                sub = state[tuple(idx)]  # view, control = 1; axis t shifts down by one if t > c
                tax = t - 1 if t > c else t
                if name == "CZ":
                    sl: list[Any] = [slice(None)] * sub.ndim
                    sl[tax] = 1
                    sub[tuple(sl)] *= -1
                else:
                    sub[...] = np.flip(sub, axis=tax).copy()
        elif name in ("TICK", "QUBIT_COORDS", "SHIFT_COORDS"):
            continue
        else:
            raise StateError(f"gate {name!r} is not supported by the small state-vector gate applier")
    return state


def _prepare_with_gate_noise(n: int, circuit: stim.Circuit, rng: np.random.Generator) -> stim.TableauSimulator:
    """Run ``circuit`` (with depolarizing channels) on ``|0...0>``, drawing its Pauli errors from ``rng``.

    ``DEPOLARIZE1(p)``: each target independently gets X, Y or Z with probability ``p/3`` each;
    ``DEPOLARIZE2(p)``: each target pair gets one of the 15 non-identity Pauli pairs with
    probability ``p/15`` each (stim's definitions). Every draw comes from ``rng`` (not stim's own
    generator), so the data are reproducible across machines and stim versions.
    """
    sim = stim.TableauSimulator()
    sim.set_num_qubits(n)
    paulis = (None, sim.x, sim.y, sim.z)
    for op in circuit.flattened():
        name = op.name
        if name in ("DEPOLARIZE1", "DEPOLARIZE2"):
            p = op.gate_args_copy()[0]
            qs = [t.value for t in op.targets_copy()]
            if name == "DEPOLARIZE1":
                for q in np.asarray(qs)[rng.random(len(qs)) < p].tolist():
                    paulis[int(rng.integers(1, 4))](q)
            else:
                pairs = np.asarray(qs).reshape(-1, 2)
                for a, b in pairs[rng.random(len(pairs)) < p].tolist():
                    first, second = divmod(int(rng.integers(1, 16)), 4)
                    if first:
                        paulis[first](a)
                    if second:
                        paulis[second](b)
        else:
            sim.do(op)
    return sim


def sample_snapshots(
    state: CliffordShadowState,
    n_snapshots: int,
    rng: np.random.Generator,
    *,
    cliffords: Sequence[stim.Tableau] | None = None,
    noise: NoiseModel | None = None,
) -> tuple[list[stim.Tableau], np.ndarray]:
    """Draw ``n_snapshots`` global-Clifford snapshots of ``state``.

    Parameters
    ----------
    state:
        From :func:`make_state`.
    n_snapshots:
        Number of snapshots.
    rng:
        The only source of randomness (Cliffords, gate errors, dephasing errors, outcomes, readout
        flips).
    cliffords:
        Measure in these Cliffords (``n_snapshots`` of them) instead of drawing new ones, e.g. to
        compare states on the same measurement settings.
    noise:
        Device noise; default None: ``state.noise``. Gate noise acts on a stim state's
        preparation circuit; the outcomes of measuring that state ideally are then passed through
        the measurement-layer and readout flips
        (:func:`~shadowlab.acquire.noise.apply_measurement_noise`, no readout twirling).

    Returns
    -------
    (tableaux, outcomes):
        The random Cliffords and ``(S, n)`` uint8 outcomes (1 = ``|1>``).

    Examples
    --------
    >>> from shadowlab.acquire.noise import NoiseModel
    >>> tabs, b = sample_snapshots(make_state("zero:2"), 3, np.random.default_rng(0),
    ...                            noise=NoiseModel(readout_p01=0.1))
    >>> len(tabs), b.shape, b.dtype
    (3, (3, 2), dtype('uint8'))
    """
    rng = _check_rng(rng)
    n = state.n_qubits
    noise = state.noise if noise is None else noise
    if noise is not None:
        if not isinstance(noise, NoiseModel):
            raise ShadowlabError(f"noise must be a NoiseModel (or None), got {type(noise).__name__}")
        noise.readout(n)  # per-qubit lists must fit
    if cliffords is not None and len(cliffords) != n_snapshots:
        raise ShadowlabError(f"cliffords: got {len(cliffords)} tableaux for {n_snapshots} snapshots")
    tableaux: list[stim.Tableau] = []
    outcomes = np.empty((n_snapshots, n), dtype=np.uint8)
    base = None
    noisy_circuit = None
    if state.circuit is not None:
        if noise is not None and (noise.depolarizing > 0 or noise.p2 > 0):
            noisy_circuit = noise.state_circuit(state.circuit)
        base = stim.TableauSimulator()
        base.set_num_qubits(n)
        base.do_circuit(state.circuit)
    drawn = random_cliffords(n, n_snapshots, rng) if cliffords is None else None
    for s in range(n_snapshots):
        if drawn is not None:
            u = drawn[s]
        else:
            assert cliffords is not None
            u = cliffords[s]
            if len(u) != n:
                raise QubitCountMismatchError(f"cliffords: tableau {s} acts on {len(u)} qubits, the state on {n}")
        tableaux.append(u)
        if base is not None:
            sim = base.copy() if noisy_circuit is None else _prepare_with_gate_noise(n, noisy_circuit, rng)
            if state.dephasing:
                flips = np.flatnonzero(rng.random(n) < state.dephasing)
                if flips.size:
                    sim.z(*flips.tolist())
            sim.do_tableau(u, list(range(n)))
            outcomes[s] = measure_z_all(sim, n, rng.integers(0, 2, size=n))
        else:
            assert state.statevector is not None
            amp = apply_tableau_statevector(state.statevector, u)
            probs = np.abs(amp) ** 2
            index = int(rng.choice(probs.size, p=probs / probs.sum()))
            outcomes[s] = [(index >> (n - 1 - q)) & 1 for q in range(n)]
    if noise is not None and not noise.is_noiseless:
        from shadowlab.acquire.noise import apply_measurement_noise

        outcomes, _ = apply_measurement_noise(outcomes, noise, rng, readout_twirl=False)
    return tableaux, outcomes


def iter_clifford_snapshots(
    state: CliffordShadowState,
    n_snapshots: int,
    *,
    seed: int = 0,
    batch_snapshots: int = DEFAULT_BATCH_SNAPSHOTS,
    noise: NoiseModel | None = None,
) -> Iterator[tuple[list[stim.Tableau], np.ndarray]]:
    """Yield the snapshots of a simulated experiment in seeded batches.

    Batch ``b`` uses ``numpy.random.default_rng(numpy.random.SeedSequence(seed).spawn(B)[b])``, so
    the data depend only on ``(state, n_snapshots, seed, batch_snapshots, noise)``. ``noise``
    defaults to ``state.noise`` (see :func:`sample_snapshots`).
    """
    if n_snapshots < 1:
        raise ShadowlabError(f"n_snapshots must be >= 1, got {n_snapshots}")
    if batch_snapshots < 1:
        raise ShadowlabError(f"batch_snapshots must be >= 1, got {batch_snapshots}")
    n_batches = -(-n_snapshots // batch_snapshots)
    for b, child in enumerate(np.random.SeedSequence(seed).spawn(n_batches)):
        size = min(batch_snapshots, n_snapshots - b * batch_snapshots)
        yield sample_snapshots(state, size, np.random.default_rng(child), noise=noise)


def provenance(state: CliffordShadowState, *, n_snapshots: int, seed: int, batch_snapshots: int,
               noise: NoiseModel | None = None) -> dict[str, Any]:
    """The record of how a simulated global-Clifford data set was made.

    ``noise`` (default: ``state.noise``) is recorded as :meth:`NoiseModel.record` plus
    ``state_gate_noise`` (whether the gate noise acted on a preparation circuit) and
    ``readout_twirl`` (always False: the Clifford ensemble needs none); None for an ideal device.
    """
    noise = state.noise if noise is None else noise
    record = None
    if noise is not None:
        record = {**noise.record(), "state_gate_noise": state.circuit is not None and len(state.circuit) > 0,
                  "measurement_layer": "the random global Clifford, then one depolarizing gate per qubit (flip "
                                       "2p/3), then readout", "readout_twirl": False}
    return {
        "source": "simulation",
        "ensemble": "global_clifford",
        "state": state.description,
        "simulator": "stim" if state.circuit is not None else "statevector",
        "dephasing": state.dephasing,
        "noise": record,
        "n_snapshots": n_snapshots,
        "seed": seed,
        "batch_snapshots": batch_snapshots,
    }
