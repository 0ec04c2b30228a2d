"""Simulated experiments: resolve a state description, sample snapshots in seeded batches.

A *state description* is one of

* a built-in Clifford state for stim, any size: ``ghz:100``, ``cluster:50``, ``cluster2d:10x10``,
  ``toric:5``, ``surface:5`` (the rotated surface code's ``|0_L>``) (chosen automatically for
  these names, or with ``simulator='stim'``), and ``zero:N``, the robust-shadow calibration state
  ``|0...0>``;
* a built-in state vector: ``ghz:10``, ``w:8``, ``tfim:12``, ``tfim:12:h=0.5``,
  ``heisenberg:10``, ``random:8``, ``product:01+-`` (see :mod:`shadowlab.acquire.states`);
* a file: OpenQASM 2 or 3 (``.qasm``, simulated as a state vector; version 3 through Qiskit, the
  ``qiskit`` extra), a state vector (``.npy``, complex,
  qubit 0 = most significant bit of the index), or a stim circuit (``.stim``).

Reproducibility: the snapshots are drawn in batches of ``batch_snapshots``; batch ``b`` uses a
generator seeded by ``numpy.random.SeedSequence(seed).spawn(...)[b]``, so the data depend only
on ``(state, n_snapshots, repeats, seed, batch_snapshots, noise, readout_twirl)``.

Noise: a :class:`~shadowlab.acquire.noise.NoiseModel` adds depolarizing noise after every gate of
a stim state's circuit (a state vector has no gates: only its measurement layer and readout are
noisy), then the measurement layer's depolarizing gate and asymmetric readout, optionally with
readout twirling (see :mod:`shadowlab.acquire.noise`). The model is recorded in the provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.noise import NoiseModel
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.errors import ShadowlabError

SIMULATORS = ("auto", "statevector", "stim")
CLIFFORD_NAMES = ("ghz", "cluster", "cluster2d", "toric", "surface")
DEFAULT_BATCH_SNAPSHOTS = 16384
MAX_STATEVECTOR_QUBITS = 26


@dataclass(frozen=True)
class PreparedState:
    """A state ready to sample: either a state vector or a stim circuit.

    Attributes
    ----------
    description:
        What the user asked for (spec or path), recorded in provenance.
    n_qubits:
        Number of qubits.
    statevector:
        ``(2^n,)`` complex128, qubit 0 = most significant bit; None for stim states.
    circuit:
        The stim circuit preparing the state from ``|0...0>``; None for state vectors.
    """

    description: str
    n_qubits: int
    statevector: np.ndarray | None = None
    circuit: stim.Circuit | None = None

    @property
    def simulator(self) -> str:
        """``'stim'`` or ``'statevector'``."""
        return "stim" if self.circuit is not None else "statevector"


def prepare_state(description: str, *, simulator: str = "auto", seed: int | None = None) -> PreparedState:
    """Resolve a state description (see the module documentation) into a :class:`PreparedState`.

    ``seed`` fixes random built-in states (``random:n``).
    """
    if simulator not in SIMULATORS:
        raise ShadowlabError(f"unknown simulator {simulator!r}; expected one of {', '.join(SIMULATORS)}")
    path = Path(description)
    if path.suffix in (".qasm", ".npy", ".stim"):
        if not path.is_file():
            raise ShadowlabError(f"{path}: no such file")
        return _prepare_file(path, simulator)
    name = description.split(":", 1)[0].strip().lower()
    if name == "zero":
        if simulator == "statevector":
            raise ShadowlabError("zero:N is the calibration state |0...0>, a stim state; use simulator auto or stim")
        try:
            n_zero = int(description.split(":", 1)[1])
        except (IndexError, ValueError):
            raise ShadowlabError(f"{description!r}: expected zero:N with N the number of qubits") from None
        return calibration_state(n_zero)
    if simulator == "stim" or (simulator == "auto" and name in CLIFFORD_NAMES):
        from shadowlab.acquire.clifford_states import builtin_clifford

        circuit = builtin_clifford(description)
        return PreparedState(description, circuit.num_qubits, circuit=circuit)
    from shadowlab.acquire.states import builtin_state

    state = builtin_state(description, np.random.default_rng(seed))
    return _from_vector(description, state)


def _from_vector(description: str, state: np.ndarray) -> PreparedState:
    from shadowlab.acquire.statevector import validate_statevector

    psi, n = validate_statevector(state, what=description)
    if n > MAX_STATEVECTOR_QUBITS:
        raise ShadowlabError(f"{description}: {n} qubits is beyond the state-vector simulator "
                             f"(at most {MAX_STATEVECTOR_QUBITS}); use a stim (Clifford) state")
    return PreparedState(description, n, statevector=psi)


def _prepare_file(path: Path, simulator: str) -> PreparedState:
    if path.suffix == ".stim":
        if simulator == "statevector":
            raise ShadowlabError(f"{path}: a stim circuit needs simulator 'stim' or 'auto'")
        try:
            circuit = stim.Circuit(path.read_text())
        except ValueError as exc:
            raise ShadowlabError(f"{path}: not a valid stim circuit: {exc}") from exc
        return PreparedState(str(path), circuit.num_qubits, circuit=circuit)
    if simulator == "stim":
        raise ShadowlabError(f"{path}: simulator 'stim' takes stim circuits (.stim) and built-in Clifford states")
    if path.suffix == ".qasm":
        from shadowlab.acquire.qasm import simulate_qasm2
        from shadowlab.acquire.qiskit_backend import qasm_version  # no SDK needed for the header

        if qasm_version(path.read_text(encoding="utf-8", errors="replace"), path=path) == 3:
            return _from_vector(str(path), _qasm3_statevector(path))
        return _from_vector(str(path), simulate_qasm2(path))
    try:
        state = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ShadowlabError(f"{path}: cannot read a state vector from this .npy file: {exc}") from exc
    return _from_vector(str(path), state)


def _qasm3_statevector(path: Path) -> np.ndarray:
    """State vector of an OpenQASM 3 program via Qiskit (the 'qiskit' extra), qubit 0 = MSB."""
    from shadowlab.acquire.qiskit_backend import state_circuit_qiskit

    circuit = state_circuit_qiskit(path)  # raises a clear error when the extra is missing
    from qiskit.quantum_info import Statevector

    n = circuit.num_qubits
    little_endian = np.asarray(Statevector(circuit).data)
    # Qiskit's index has qubit 0 as its least significant bit; reverse the qubit axes.
    return little_endian.reshape([2] * n).transpose(tuple(range(n - 1, -1, -1))).reshape(-1)


def calibration_state(n_qubits: int) -> PreparedState:
    """``|0...0>`` on ``n_qubits`` qubits as a (gate-free) stim state: the robust-shadow calibration state."""
    if n_qubits < 1:
        raise ShadowlabError(f"a calibration state needs at least one qubit, got {n_qubits}")
    return PreparedState(f"zero:{n_qubits}", n_qubits, circuit=stim.Circuit())


def sample_state(
    state: PreparedState,
    settings: np.ndarray,
    repeats: int | np.ndarray,
    rng: np.random.Generator,
    *,
    noise: NoiseModel | None = None,
    readout_twirl: bool | np.ndarray = False,
) -> ShadowData:
    """Snapshots of ``state`` for the given settings, through the noisy measurement of ``noise``.

    The state's gate noise (stim states) is added to its circuit, the outcomes of ideal
    measurements of that noisy state are drawn exactly, and the measurement layer and readout
    (with optional twirling: ``True`` draws the masks from ``rng``, an array gives them) act on
    them (:func:`~shadowlab.acquire.noise.apply_measurement_noise`).
    """
    if state.circuit is not None:
        from shadowlab.acquire.stim_sampler import sample_stim

        circuit = state.circuit if noise is None else noise.state_circuit(state.circuit)
        data = sample_stim(circuit, settings, repeats, rng)
    else:
        from shadowlab.acquire.statevector import sample_statevector

        data = sample_statevector(state.statevector, settings, repeats, rng)
    if noise is None and readout_twirl is False:
        return data
    from shadowlab.acquire.noise import apply_measurement_noise

    outcomes, twirl = apply_measurement_noise(data.outcomes, noise or NoiseModel(), rng, readout_twirl=readout_twirl)
    return ShadowData(data.bases, outcomes, data.settings, data.metadata, twirl)


def iter_batches(
    state: PreparedState,
    n_snapshots: int,
    *,
    repeats: int = 1,
    seed: int = 0,
    batch_snapshots: int = DEFAULT_BATCH_SNAPSHOTS,
    noise: NoiseModel | None = None,
    readout_twirl: bool = False,
) -> Iterator[ShadowData]:
    """Yield the snapshots of a simulated experiment batch by batch (see module docs).

    Parameters
    ----------
    n_snapshots:
        Total snapshots; must be a multiple of ``repeats``.
    repeats:
        Snapshots per measurement setting (1 = a fresh random setting for every snapshot).
    seed:
        Base seed; the same arguments give bit-identical data.
    batch_snapshots:
        Snapshots per batch (rounded down to whole settings); bounds memory.
    noise, readout_twirl:
        Device noise and readout twirling (see :func:`sample_state`).
    """
    if n_snapshots < 1:
        raise ShadowlabError(f"n_snapshots must be >= 1, got {n_snapshots}")
    if repeats < 1 or n_snapshots % repeats:
        raise ShadowlabError(f"n_snapshots ({n_snapshots}) must be a positive multiple of repeats ({repeats})")
    settings_per_batch = max(1, batch_snapshots // repeats)
    n_settings = n_snapshots // repeats
    n_batches = -(-n_settings // settings_per_batch)
    children = np.random.SeedSequence(seed).spawn(n_batches)
    for b in range(n_batches):
        g = min(settings_per_batch, n_settings - b * settings_per_batch)
        rng = np.random.default_rng(children[b])
        settings = uniform_settings(state.n_qubits, g, rng)
        yield sample_state(state, settings, repeats, rng, noise=noise, readout_twirl=readout_twirl)


def provenance(state: PreparedState, *, n_snapshots: int, repeats: int, seed: int, batch_snapshots: int,
               noise: NoiseModel | None = None, readout_twirl: bool = False) -> dict[str, Any]:
    """The record of how a simulated data set was made (stored with it)."""
    return {
        "source": "simulation",
        "state": state.description,
        "simulator": state.simulator,
        "n_snapshots": n_snapshots,
        "repeats": repeats,
        "seed": seed,
        "batch_snapshots": batch_snapshots,
        "scheme": {"kind": "uniform", "probabilities": None, "note": "a fresh uniformly random setting per "
                   "repeats snapshots"},
        "noise": None if noise is None else {**noise.record(), "state_gate_noise": state.circuit is not None},
        "readout_twirl": bool(readout_twirl),
    }


def simulate(
    description: str | PreparedState,
    n_snapshots: int,
    *,
    repeats: int = 1,
    seed: int = 0,
    simulator: str = "auto",
    batch_snapshots: int = DEFAULT_BATCH_SNAPSHOTS,
    progress: Callable[[int], None] | None = None,
    noise: NoiseModel | None = None,
    readout_twirl: bool = False,
) -> ShadowData:
    """Simulate a whole experiment in memory and return its snapshots.

    ``noise`` and ``readout_twirl`` describe the device (:mod:`shadowlab.acquire.noise`); both are
    recorded in the metadata, and twirled data carry their per-snapshot masks.

    Examples
    --------
    >>> d = simulate("ghz:3", 100, seed=1)
    >>> d.n_snapshots, d.n_qubits, d.metadata["state"]
    (100, 3, 'ghz:3')
    """
    state = description if isinstance(description, PreparedState) else prepare_state(
        description, simulator=simulator, seed=seed)
    parts = []
    for batch in iter_batches(state, n_snapshots, repeats=repeats, seed=seed, batch_snapshots=batch_snapshots,
                              noise=noise, readout_twirl=readout_twirl):
        parts.append(batch)
        if progress is not None:
            progress(batch.n_snapshots)
    data = ShadowData.concatenate(parts, disjoint_settings=True)
    meta = provenance(state, n_snapshots=n_snapshots, repeats=repeats, seed=seed, batch_snapshots=batch_snapshots,
                      noise=noise, readout_twirl=readout_twirl)
    return ShadowData(data.bases, data.outcomes, data.settings, meta, data.twirl)
