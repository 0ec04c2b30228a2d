"""Run shadow measurement plans on Amazon Braket's local simulator.

Needs the ``braket`` extra (``pip install 'shadowlab[braket]'``: amazon-braket-sdk and
amazon-braket-default-simulator). This module imports without it; the functions that need
Braket raise a :class:`~shadowlab.errors.ShadowlabError` saying which extra to install.

Conventions
-----------
* Qubits: shadowlab qubit ``q`` is Braket qubit ``q``. Braket state vectors and multi-qubit
  ``unitary`` matrices are big-endian (``targets[0]`` is the most significant bit), like
  shadowlab's.
* Setting circuits (:func:`setting_circuits_braket`): the state preparation, a ``barrier`` on
  all qubits, then per qubit ``h`` (X basis), ``si`` then ``h`` (Y basis) or nothing (Z basis),
  then ``measure`` of qubits ``0 .. n-1``. Bit 0 is eigenvalue +1 of the measured Pauli. The
  barrier lets :func:`~shadowlab.acquire.result_files.read_braket_results` find the basis
  rotations in a saved program and check them against the plan.
* Outcomes: ``(shots, n)`` uint8, 0 = eigenvalue +1, qubit 0 first. Braket's measurement arrays
  have one column per entry of ``measured_qubits`` (in that order) and are mapped back to qubits.

Noise
-----
A :class:`shadowlab.acquire.noise.NoiseModel` (or a spec dict :meth:`NoiseModel.from_spec`
reads) is simulated on the density-matrix simulator with the same semantics as the other back
ends: Braket's ``Depolarizing(p)`` (``X``, ``Y``, ``Z`` each with ``p/3``, stim's
``DEPOLARIZE1``) after every one-qubit gate instruction of the state preparation,
``TwoQubitDepolarizing(p2)`` (each of the 15 Pauli pairs with ``p2/15``, stim's ``DEPOLARIZE2``)
after every two-qubit one (controls count as qubits); gates on three or more qubits (``ccnot``)
get none, and a state vector's preparation (one ``unitary`` named :data:`STATE_UNITARY_NAME`)
gets none whatever its size: as in shadowlab's own simulator and on Aer, a state vector has no
gates. What counts as a gate follows the circuit Braket runs: a stim gate outside the small set
both SDKs name (``SQRT_Y``, ``C_XYZ``, ``XCZ``, ...) is several H/S/CX gates, each with its own
noise (:func:`~shadowlab.acquire.qiskit_backend.stim_gate_sequence`), where
:func:`~shadowlab.acquire.noise.add_circuit_noise` adds one channel per stim gate; OpenQASM files
are run gate by gate (shadowlab's simulator turns them into noise-free state vectors). The
*measurement layer* is the
noise-free rotation (``si``/``h``) followed by one explicit ``depolarizing(p)`` on **every**
qubit, whatever its basis -- exactly one noisy rotation gate per qubit, as the robust-shadow
assumption wants, while the saved program keeps the plain rotations that
:func:`~shadowlab.acquire.result_files.read_braket_results` checks (noise pragmas are ignored
there). **Readout**: Braket's readout noise is a channel inserted before the measurement and
its only ready-made one is the symmetric ``BitFlip``; the asymmetric flip (0 reads 1 with
``p01``, 1 reads 0 with ``p10``) is emulated by the Kraus channel ``sqrt(1-p01)|0><0|,
sqrt(p01)|1><0|, sqrt(p10)|0><1|, sqrt(1-p10)|1><1|`` just before each measurement, which gives
exactly those flip probabilities for a Z measurement (it also dephases, which a Z measurement
cannot see). Readout twirling puts ``x`` on the masked qubits after the rotations (noise-free;
the depolarizing channel commutes with it) and XORs the mask out of the returned bits.

Reproducibility
---------------
The Braket local simulators cannot be seeded: ``LocalSimulator.run`` takes no seed, and the
default simulator's state-vector and density-matrix simulations draw their shots from a fresh
``numpy.random.default_rng()`` (operating-system entropy) in every task. Runs of
:class:`BraketLocalBackend` are therefore **not reproducible**; ``run_batch`` accepts a ``seed``
for interface compatibility but cannot apply it, and :meth:`BraketLocalBackend.describe` records
``"seeded": False``. Save the raw results (``run_batch(..., save_to=...)``) to keep a run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata as _metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import stim

from shadowlab.acquire.qiskit_backend import QASM_SUFFIXES, _starts_with_openqasm, qasm_version, stim_gate_sequence
from shadowlab.acquire.result_files import (
    braket_record_outcomes,
    check_settings,
    check_settings_repeats,
    write_braket_results,
)
from shadowlab.acquire.simulate import PreparedState, prepare_state
from shadowlab.acquire.twirl import check_twirl_masks, group_shots
from shadowlab.atomic import check_can_write
from shadowlab.errors import InputFormatError, ShadowlabError, StateError

if TYPE_CHECKING:
    from braket.circuits import Circuit

__all__ = [
    "MAX_UNITARY_STATE_QUBITS",
    "STATE_UNITARY_NAME",
    "BraketLocalBackend",
    "setting_circuits_braket",
    "state_circuit_braket",
]

BRAKET_EXTRA = "pip install 'shadowlab[braket]'"
#: Largest state vector prepared with one Braket ``unitary`` instruction (its matrix travels as text).
MAX_UNITARY_STATE_QUBITS = 6
#: Display name of the ``unitary`` instruction that prepares a state vector; it gets no gate noise.
STATE_UNITARY_NAME = "StatePrep"

_BRAKET_GATES = {"I": "i", "X": "x", "Y": "y", "Z": "z", "H": "h", "S": "s", "S_DAG": "si", "SQRT_X": "v",
                 "SQRT_X_DAG": "vi", "CX": "cnot", "CY": "cy", "CZ": "cz", "SWAP": "swap", "ISWAP": "iswap"}
# OpenQASM 2 (qelib1.inc) gates with a Braket equivalent (same matrix up to a global phase, same
# argument order); every other gate goes in as a ``unitary`` of its matrix.
_QASM2_TO_BRAKET = {"id": "i", "x": "x", "y": "y", "z": "z", "h": "h", "s": "s", "sdg": "si", "t": "t", "tdg": "ti",
                    "sx": "v", "sxdg": "vi", "rx": "rx", "ry": "ry", "rz": "rz", "cx": "cnot", "cy": "cy",
                    "cz": "cz", "swap": "swap", "ccx": "ccnot", "cswap": "cswap"}
# Definitions of the OpenQASM 3 ``stdgates.inc`` gates Braket's parser lacks, in Braket's built-in
# gates (same matrices as the standard library, up to a global phase for the uncontrolled ones).
_STDGATES_PRELUDE = """
gate cx a, b { cnot a, b; }
gate CX a, b { cnot a, b; }
gate ccx a, b, c { ccnot a, b, c; }
gate id a { i a; }
gate sdg a { si a; }
gate tdg a { ti a; }
gate sx a { v a; }
gate p(l) a { phaseshift(l) a; }
gate phase(l) a { phaseshift(l) a; }
gate u1(l) a { phaseshift(l) a; }
gate u2(f, l) a { U(pi / 2, f, l) a; }
gate u3(t, f, l) a { U(t, f, l) a; }
gate cp(l) a, b { cphaseshift(l) a, b; }
gate cphase(l) a, b { cphaseshift(l) a, b; }
gate ch a, b { ctrl @ h a, b; }
gate crx(t) a, b { ctrl @ rx(t) a, b; }
gate cry(t) a, b { ctrl @ ry(t) a, b; }
gate crz(t) a, b { ctrl @ rz(t) a, b; }
gate cu(t, f, l, g) a, b { phaseshift(g) a; ctrl @ U(t, f, l) a, b; }
"""


def _require_braket(what: str) -> None:
    try:
        import braket.circuits
        import braket.devices  # noqa: F401
    except ImportError as exc:
        raise ShadowlabError(f"{what} needs the 'braket' extra: {BRAKET_EXTRA} ({exc})") from None


# --------------------------------------------------------------------------------------------
# State circuits
# --------------------------------------------------------------------------------------------


def _unitary_part(circuit: Circuit, what: str) -> tuple[Circuit, int]:
    """Drop terminal measurements and result types; refuse gates after a measurement."""
    from braket.circuits import Circuit
    from braket.circuits.measure import Measure

    out = Circuit()
    measured: set[int] = set()
    highest = -1
    for ins in circuit.instructions:
        qubits = [int(q) for q in ins.target] + [int(q) for q in getattr(ins, "control", ())]
        highest = max([highest, *qubits])
        if isinstance(ins.operator, Measure):
            measured.update(qubits)
            continue
        if measured.intersection(qubits):
            raise StateError(f"{what} applies {type(ins.operator).__name__} to qubits {qubits} after measuring them: "
                             "mid-circuit measurements are not supported (terminal measurements are removed)")
        out.add_instruction(ins)
    if highest < 0:
        raise StateError(f"{what} has no instructions; give a circuit on at least one qubit")
    return out, highest + 1


def _householder_unitary(psi: np.ndarray) -> np.ndarray:
    """A unitary ``U`` with ``U |0...0> = psi`` (a phase times a Householder reflection)."""
    psi = np.asarray(psi, dtype=np.complex128)
    phase = psi[0] / abs(psi[0]) if abs(psi[0]) > 1e-300 else 1.0
    y = psi * np.conj(phase)  # y[0] = |psi[0]| is real, so the reflection maps e0 to y exactly
    u = -y
    u[0] += 1.0
    norm2 = float(np.vdot(u, u).real)
    reflection = np.eye(psi.size, dtype=np.complex128)
    if norm2 > 1e-24:
        reflection -= (2.0 / norm2) * np.outer(u, np.conj(u))
    return phase * reflection


def _braket_from_statevector(psi: np.ndarray, n: int, what: str) -> Circuit:
    from braket.circuits import Circuit

    if n > MAX_UNITARY_STATE_QUBITS:
        raise ShadowlabError(f"{what}: Braket has no state-preparation instruction, and a {n}-qubit state vector is "
                             f"beyond the {MAX_UNITARY_STATE_QUBITS}-qubit limit for preparing it with one unitary "
                             "gate; give a circuit instead (a braket Circuit, an OpenQASM file or a stim circuit)")
    # Braket unitaries are big-endian in their targets, like shadowlab's state vectors.
    return Circuit().unitary(matrix=_householder_unitary(psi), targets=list(range(n)), display_name=STATE_UNITARY_NAME)


def _braket_from_stim(circuit: stim.Circuit) -> Circuit:
    from braket.circuits import Circuit

    out = Circuit()
    for gate, qubits in stim_gate_sequence(circuit):
        getattr(out, _BRAKET_GATES[gate])(*qubits)
    return out


def _braket_from_qasm2(text: str, path: Path | None) -> tuple[Circuit, int]:
    from braket.circuits import Circuit

    from shadowlab.acquire.qasm import read_qasm2

    parsed = read_qasm2(text if path is None else path)
    out = Circuit()
    for op in parsed.ops:
        name = _QASM2_TO_BRAKET.get(op.name)
        if name is not None:
            getattr(out, name)(*op.qubits, *op.params)
        else:  # matrix with the first argument as most significant bit, as Braket's unitary expects
            out.unitary(matrix=op.matrix(), targets=list(op.qubits))
    return out, parsed.n_qubits


def _braket_from_qasm3(text: str, path: Path | None) -> tuple[Circuit, int]:
    from braket.circuits import Circuit

    source = re.sub(r'include\s+"stdgates\.inc"\s*;', _STDGATES_PRELUDE, text, count=1)
    try:
        circuit = Circuit.from_ir(source)
    except Exception as exc:  # the OpenQASM interpreter raises many exception types
        raise InputFormatError(f"Braket cannot read this OpenQASM 3 program: {exc}", path=path) from None
    return _unitary_part(circuit, str(path) if path is not None else "the OpenQASM program")


def _braket_state(state: Any) -> tuple[Circuit, int, str]:
    """(circuit without measurements, number of qubits, description)."""
    from braket.circuits import Circuit

    if isinstance(state, Circuit):
        circuit, n = _unitary_part(state, "the Braket circuit")
        return circuit, n, "braket Circuit"
    if isinstance(state, PreparedState):
        if state.circuit is not None:
            return _braket_from_stim(state.circuit), state.n_qubits, state.description
        return _braket_from_statevector(state.statevector, state.n_qubits, state.description), state.n_qubits, (
            state.description)
    if isinstance(state, stim.Circuit):
        return _braket_from_stim(state), state.num_qubits, "stim circuit"
    if isinstance(state, np.ndarray):
        from shadowlab.acquire.statevector import validate_statevector

        psi, n = validate_statevector(state, what="state vector")
        return _braket_from_statevector(psi, n, "state vector"), n, "state vector"
    if isinstance(state, str) and ("\n" in state or ";" in state) and "OPENQASM" in state:
        circuit, n = _braket_from_qasm(state, None)
        return circuit, n, "OpenQASM program"
    if isinstance(state, str | os.PathLike):
        p = Path(state)
        if p.suffix.lower() in QASM_SUFFIXES or (p.is_file() and _starts_with_openqasm(p)):
            if not p.is_file():
                raise ShadowlabError(f"{p}: no such OpenQASM file")
            try:
                text = p.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise InputFormatError(f"not UTF-8 text ({exc.reason})", path=p) from None
            circuit, n = _braket_from_qasm(text, p)
            return circuit, n, str(p)
        return _braket_state(prepare_state(os.fspath(state)))
    raise ShadowlabError(f"state: expected a braket Circuit, an OpenQASM file, a PreparedState, a stim circuit, a "
                         f"state vector or a state spec such as 'ghz:4'; got {type(state).__name__}")


def _braket_from_qasm(text: str, path: Path | None) -> tuple[Circuit, int]:
    if qasm_version(text, path=path) == 2:
        return _braket_from_qasm2(text, path)
    return _braket_from_qasm3(text, path)


def state_circuit_braket(state: Any) -> Circuit:
    """A Braket circuit preparing ``state`` from ``|0...0>``, without measurements.

    Parameters
    ----------
    state:
        One of

        * a ``braket.circuits.Circuit``: terminal ``measure`` instructions and result types are
          dropped; gates after a measurement are refused (:class:`StateError`);
        * an OpenQASM file (``.qasm``, ``.qasm2``, ``.qasm3``, ``.openqasm``, or any file
          starting with an ``OPENQASM`` header) or program text:
          OpenQASM 3 is read by Braket (``Circuit.from_ir``); an ``include "stdgates.inc";`` is
          replaced by definitions of the standard gates Braket lacks (``cx``, ``sdg``, ``sx``,
          ``p``, ``u3``, ``crz``, ...). OpenQASM 2 is read by :func:`shadowlab.acquire.qasm.read_qasm2`
          and translated gate by gate (gates without a Braket equivalent become ``unitary``);
        * a :class:`~shadowlab.acquire.simulate.PreparedState`, a ``stim.Circuit`` or a spec /
          file :func:`~shadowlab.acquire.simulate.prepare_state` resolves: stim circuits are
          translated gate by gate; state vectors are prepared by one ``unitary`` instruction (a
          Householder reflection mapping ``|0...0>`` to the state), which Braket's simulators
          accept but QPUs do not, and only up to :data:`MAX_UNITARY_STATE_QUBITS` qubits --
          beyond that a :class:`ShadowlabError` asks for a circuit;
        * a state vector (``numpy`` array, qubit 0 = most significant bit).

    Returns
    -------
    braket.circuits.Circuit
        Braket qubit ``q`` is shadowlab qubit ``q``. A Braket circuit only knows the qubits its
        instructions touch: idle qubits above the highest one used are not part of it (setting
        circuits measure every qubit of the plan, which adds them in ``|0>``).
    """
    _require_braket("state_circuit_braket")
    return _braket_state(state)[0]


def setting_circuits_braket(state_circuit: Any, settings: Any) -> list[Circuit]:
    """One measurement circuit per setting: state preparation, barrier, basis rotations, measure all.

    Parameters
    ----------
    state_circuit:
        A Braket state-preparation circuit or anything :func:`state_circuit_braket` accepts.
    settings:
        ``(G, n)`` basis codes 0/1/2 = X/Y/Z, qubit 0 first, or a
        :class:`~shadowlab.plan.scheme.Scheme`. ``n`` must cover every qubit the state uses.

    Returns
    -------
    list of braket.circuits.Circuit
        Circuit ``g``: the preparation, ``barrier`` on qubits ``0..n-1``, ``si`` on Y qubits,
        ``h`` on X and Y qubits, ``measure`` of qubits ``0..n-1`` (bit 0 = eigenvalue +1).
    """
    _require_braket("setting_circuits_braket")
    prep, n_state, _ = _braket_state(state_circuit)
    raw = np.asarray(getattr(settings, "settings", settings))
    n = raw.shape[1] if raw.ndim == 2 else n_state
    if n < n_state:
        raise ShadowlabError(f"settings have {n} qubits but the state circuit acts on {n_state}")
    sets = check_settings(raw, n)
    return [_setting_circuit(prep, row, n) for row in sets]


def _rotations(row: np.ndarray) -> Circuit:
    from braket.circuits import Circuit

    rot = Circuit()
    for q in np.flatnonzero(row == 1).tolist():
        rot.si(q)
    for q in np.flatnonzero(row != 2).tolist():
        rot.h(q)
    return rot


def _assemble(prep: Circuit, rotations: Circuit, n: int) -> Circuit:
    from braket.circuits import Circuit

    out = Circuit().add_circuit(prep)
    out.barrier(list(range(n)))
    if rotations.instructions:
        out.add_circuit(rotations)
    return out.measure(list(range(n)))


def _setting_circuit(prep: Circuit, row: np.ndarray, n: int) -> Circuit:
    return _assemble(prep, _rotations(row), n)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def _asymmetric_readout_kraus(p01: float, p10: float) -> list[np.ndarray]:
    """Kraus operators flipping a Z-basis 0 to 1 with ``p01`` and 1 to 0 with ``p10`` (trace preserving)."""
    return [np.array([[np.sqrt(1 - p01), 0], [0, 0]]), np.array([[0, 0], [np.sqrt(p01), 0]]),
            np.array([[0, np.sqrt(p10)], [0, 0]]), np.array([[0, 0], [0, np.sqrt(1 - p10)]])]


def _gate_noise_by_arity(circuit: Circuit, p1: float, p2: float) -> Circuit:
    """A copy of ``circuit`` with gate noise after each gate instruction, by its number of qubits.

    ``Depolarizing(p1)`` after every gate instruction on one qubit, ``TwoQubitDepolarizing(p2)``
    (on control then target) after every one on two qubits (controls count: ``ctrl @ h`` is a
    two-qubit gate), nothing after gates on three or more qubits and nothing after the
    ``unitary`` that prepares a state vector (:data:`STATE_UNITARY_NAME`), whatever its size --
    as in shadowlab's own simulator, a state vector has no gates. Other ``unitary`` instructions
    (OpenQASM 2 gates without a Braket equivalent) count as gates of their size. Noise is
    inserted instruction by instruction, not with ``Circuit.apply_gate_noise``, which refuses
    gate types without a fixed qubit count (``Unitary``) and would put one-qubit noise on each
    qubit of a multi-qubit gate of a targeted type.
    """
    from braket.circuits import Circuit, Instruction, noises
    from braket.circuits.gate import Gate

    out = Circuit()
    for ins in circuit.instructions:
        out.add_instruction(ins)
        op = ins.operator
        if not isinstance(op, Gate) or _is_state_unitary(op):
            continue
        qubits = [int(q) for q in ins.control] + [int(q) for q in ins.target]
        if len(qubits) == 1 and p1 > 0:
            out.add_instruction(Instruction(noises.Depolarizing(p1), qubits))
        elif len(qubits) == 2 and p2 > 0:
            out.add_instruction(Instruction(noises.TwoQubitDepolarizing(p2), qubits))
    return out


def _is_state_unitary(operator: Any) -> bool:
    from braket.circuits.gates import Unitary

    return isinstance(operator, Unitary) and tuple(operator.ascii_symbols)[:1] == (STATE_UNITARY_NAME,)


def _readout_noise(circuit: Circuit, p01: np.ndarray, p10: np.ndarray) -> Circuit:
    """The asymmetric readout Kraus channel on every qubit ``q`` with ``p01[q]`` or ``p10[q]`` > 0 (appended)."""
    for q in range(len(p01)):
        if p01[q] > 0 or p10[q] > 0:
            circuit.kraus([q], _asymmetric_readout_kraus(float(p01[q]), float(p10[q])))
    return circuit


def _has_noise(circuit: Circuit) -> bool:
    from braket.circuits.noise import Noise

    return any(isinstance(ins.operator, Noise) for ins in circuit.instructions)


class _BraketNoiseObjects:
    """Braket ``Noise`` objects applied after every gate (of the state preparation and the rotations)."""

    def __init__(self, spec: Any) -> None:
        from braket.circuits.noise import Noise

        items = list(spec) if isinstance(spec, Sequence) else [spec]
        if not all(isinstance(x, Noise) for x in items):
            raise ShadowlabError("noise must be a shadowlab NoiseModel or spec dict, a braket NoiseModel, a callable, "
                                 f"or braket Noise objects (applied after every gate); got {type(spec).__name__}")
        self.gate = items
        self.summary = [repr(x) for x in items]

    def gates(self, circuit: Circuit) -> Circuit:
        from braket.circuits.gate import Gate

        # Explicit gate classes: with target_gates=None Braket would also add noise after barriers.
        gates = [ins.operator for ins in circuit.instructions if isinstance(ins.operator, Gate)]
        kinds = sorted({type(g) for g in gates}, key=lambda t: t.__name__)
        for noise in self.gate:
            if kinds:
                circuit.apply_gate_noise(noise, target_gates=kinds)
        return circuit


# --------------------------------------------------------------------------------------------
# Back end
# --------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return _metadata.version(dist)
    except _metadata.PackageNotFoundError:
        return None


class BraketLocalBackend:
    """Measure a state under a plan's settings with Braket's local simulator.

    **Not reproducible**: the Braket local simulators cannot be seeded (see the module
    documentation); ``run_batch``'s ``seed`` is accepted and ignored.

    Parameters
    ----------
    state:
        Anything :func:`state_circuit_braket` accepts.
    noise:
        ``None``; a :class:`shadowlab.acquire.noise.NoiseModel` or a spec dict
        (``{"depolarizing": 0.01, "readout_p01": 0.05, "readout_p10": 0.15}``, see
        :meth:`NoiseModel.from_spec`; ``"readout"`` is a symmetric flip), simulated as the
        module documentation describes (gate noise of the preparation, one depolarizing channel
        per qubit in the measurement layer, asymmetric readout as a Kraus channel); a braket
        ``Noise`` object or a list of them (applied after every gate, preparation and rotations,
        with ``Circuit.apply_gate_noise``); a ``braket.circuits.noise_model.NoiseModel`` (given
        to the ``LocalSimulator``); or a callable taking each complete setting circuit and
        returning the circuit to run. Gate noise never follows the barrier.
    device:
        Local simulator name; default ``"braket_sv"``, or ``"braket_dm"`` (density matrix) when
        there is noise, which the state-vector simulator cannot run.
    n_qubits:
        Number of qubits measured, if more than the state circuit uses (idle qubits in ``|0>``).
    readout_twirl:
        Whether runs are readout-twirled: :meth:`describe` records it, and :meth:`run_batch`
        then refuses to run without one X-flip mask per shot (``twirl=``).

    Notes
    -----
    Each distinct (setting, twirl mask) is one local task of its shot count, run one after the
    other: the local simulator's ``run_batch`` needs the same shot count for every task and
    starts a process pool.
    """

    name = "braket-local"

    def __init__(self, state: Any, *, noise: Any = None, device: str | None = None,
                 n_qubits: int | None = None, readout_twirl: bool = False) -> None:
        _require_braket("BraketLocalBackend")
        from braket.circuits.noise_model import NoiseModel
        from braket.devices import LocalSimulator

        from shadowlab.acquire.noise import NoiseModel as ShadowlabNoise

        prep, n_state, description = _braket_state(state)
        if n_qubits is not None and n_qubits < n_state:
            raise ShadowlabError(f"n_qubits={n_qubits} but the state circuit acts on {n_state} qubits")
        self.n_qubits = int(n_qubits if n_qubits is not None else n_state)
        self.state_description = description
        self.readout_twirl = bool(readout_twirl)
        self._noise_model = noise if isinstance(noise, NoiseModel) else None
        self._callable: Callable[[Circuit], Circuit] | None = None
        self._spec: _BraketNoiseObjects | None = None
        self.noise: ShadowlabNoise | None = None
        if isinstance(noise, Mapping):
            noise = ShadowlabNoise.from_spec(noise)
        if noise is None or self._noise_model is not None:
            pass
        elif isinstance(noise, ShadowlabNoise):
            noise.readout(self.n_qubits)  # per-qubit lists must match the qubit count
            self.noise = noise
        elif callable(noise):
            self._callable = noise
        else:
            self._spec = _BraketNoiseObjects(noise)
        noisy = (noise is not None and not (self.noise is not None and self.noise.is_noiseless)) or _has_noise(prep)
        self.device_name = device or ("braket_dm" if noisy else "braket_sv")
        if noisy and self.device_name == "braket_sv":
            raise ShadowlabError("noise needs the density-matrix simulator: use device='braket_dm' (or leave device "
                                 "unset)")
        try:
            if self._noise_model is not None:
                self._device = LocalSimulator(self.device_name, noise_model=self._noise_model)
            else:
                self._device = LocalSimulator(self.device_name)
        except ValueError as exc:
            raise ShadowlabError(f"Braket local simulator {self.device_name!r}: {exc}") from None
        if self._spec is not None:
            self._prep = self._spec.gates(prep.copy())
        elif self.noise is not None:
            self._prep = _gate_noise_by_arity(prep.copy(), float(self.noise.depolarizing), float(self.noise.p2))
        else:
            self._prep = prep
        self._noise_summary = self._describe_noise(noise)

    def _describe_noise(self, noise: Any) -> Any:
        if noise is None:
            return None
        if self.noise is not None:
            return {**self.noise.record(), "readout_emulation": "Kraus channel before each measurement",
                    "measurement_layer_emulation": "noise-free si/h, then depolarizing(p) on every qubit",
                    "gate_noise_scope": "after each one-/two-qubit gate instruction of the preparation; none after "
                                        "gates on 3+ qubits or a state vector's unitary"}
        if self._spec is not None:
            return self._spec.summary
        if self._callable is not None:
            return {"callable": getattr(noise, "__qualname__", repr(noise))}
        return {"noise_model": str(noise)}

    def setting_circuit(self, setting: np.ndarray, twirl: np.ndarray | None = None) -> Circuit:
        """The circuit run for one setting (``(n,)`` basis codes), noise included.

        ``twirl``: an optional ``(n,)`` 0/1 mask; ``x`` on the masked qubits after the rotations.
        """
        rotations = _rotations(np.asarray(setting))
        if self._spec is not None:
            rotations = self._spec.gates(rotations)
        if twirl is not None:
            for q in np.flatnonzero(np.asarray(twirl)).tolist():
                rotations.x(q)
        if self.noise is not None:
            if self.noise.depolarizing > 0:
                for q in range(self.n_qubits):
                    rotations.depolarizing(q, probability=float(self.noise.depolarizing))
            _readout_noise(rotations, *self.noise.readout(self.n_qubits))
        circuit = _assemble(self._prep, rotations, self.n_qubits)
        if self._callable is not None:
            circuit = self._callable(circuit)
            from braket.circuits import Circuit

            if not isinstance(circuit, Circuit):
                raise ShadowlabError(f"the noise callable must return a braket Circuit, got {type(circuit).__name__}")
        return circuit

    def run_batch(self, settings: np.ndarray, repeats: np.ndarray, seed: int | None = None, *,
                  twirl: np.ndarray | None = None, save_to: str | os.PathLike[str] | None = None) -> np.ndarray:
        """Measure ``repeats[g]`` shots of every setting ``g`` (one local task per setting and twirl mask).

        Parameters
        ----------
        settings:
            ``(G, n)`` basis codes 0/1/2 = X/Y/Z, qubit 0 first.
        repeats:
            ``(G,)`` positive shot counts.
        seed:
            Accepted for interface compatibility and **ignored**: the Braket local simulator
            cannot be seeded, so repeated calls give different outcomes.
        twirl:
            Readout-twirl masks (required when built with ``readout_twirl=True``):
            ``(repeats.sum(), n)`` 0/1, one row per shot in output order. Shots with the same
            (setting, mask) run as one task with ``x`` on the masked qubits before the
            measurement; the returned bits have the mask XORed back out.
        save_to:
            If given, also save each task's ``GateModelTaskResult`` JSON (a directory of
            ``result_<g>.json`` files, or one ``.json`` file holding a list; an existing path is
            an error), which :func:`~shadowlab.acquire.result_files.read_braket_results` reads
            back to exactly the returned outcomes. Not available with ``twirl`` (a setting is
            then several tasks, whose raw bits are not the returned ones).

        Returns
        -------
        numpy.ndarray
            ``(repeats.sum(), n)`` uint8, 0 = eigenvalue +1, qubit 0 first; all shots of
            setting 0 first, each setting's shots in the simulator's order (with twirling: the
            shots of each (setting, mask) task fill that mask's rows in order).
        """
        from braket.task_result import GateModelTaskResult

        sets, reps = check_settings_repeats(settings, repeats, self.n_qubits)
        total = int(reps.sum())
        masks = None
        if twirl is not None:
            masks = check_twirl_masks(twirl, total, self.n_qubits, "twirl")
            if save_to is not None:
                raise ShadowlabError("save_to is not available with readout twirling on the Braket back end: each "
                                     "setting runs as several tasks (one per mask) whose raw bits differ from the "
                                     "returned ones; save the returned outcomes and masks instead")
        elif self.readout_twirl:
            raise ShadowlabError(f"this back end was built with readout_twirl=True: pass the per-shot X-flip masks, "
                                 f"twirl=<({total}, {self.n_qubits}) uint8 array>")
        if save_to is not None:
            check_can_write(save_to, force=False)
        groups = group_shots(sets, reps, masks)
        tasks = [(groups.settings[j], None if groups.masks is None else groups.masks[j], groups.rows[j])
                 for j in range(len(groups.rows))]
        outcomes = np.empty((total, self.n_qubits), dtype=np.uint8)
        records = []
        for j, (setting, mask, rows) in enumerate(tasks):
            result = self._device.run(self.setting_circuit(setting, mask), shots=int(rows.size)).result()
            model = GateModelTaskResult(
                measurements=np.asarray(result.measurements, dtype=np.int64).tolist(),
                measuredQubits=[int(q) for q in result.measured_qubits],
                taskMetadata=result.task_metadata,
                additionalMetadata=result.additional_metadata,
            )
            record = json.loads(model.json())
            outcomes[rows] = braket_record_outcomes(record, self.n_qubits, where=f"task {j}")
            records.append(record)
        if masks is not None:
            outcomes ^= masks
        if save_to is not None:
            write_braket_results(save_to, records)
        return outcomes

    def describe(self) -> dict[str, Any]:
        """JSON-serializable provenance: back end, device, versions, state, noise, twirl, seeding."""
        return {
            "backend": self.name,
            "device": self.device_name,
            "amazon_braket_sdk_version": _version("amazon-braket-sdk"),
            "amazon_braket_default_simulator_version": _version("amazon-braket-default-simulator"),
            "state": self.state_description,
            "n_qubits": self.n_qubits,
            "noise": self._noise_summary,
            "readout_twirl": self.readout_twirl,
            "seeded": False,
            "reproducible": False,
            "note": "the Braket local simulator cannot be seeded; outcomes differ between runs",
        }
