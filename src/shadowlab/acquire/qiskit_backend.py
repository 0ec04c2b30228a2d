"""Run shadow measurement plans with Qiskit: setting circuits, and the Qiskit Aer back end.

Needs the ``qiskit`` extra (``pip install 'shadowlab[qiskit]'``: qiskit, qiskit-aer and
qiskit-qasm3-import). This module imports without it; the functions that need Qiskit raise a
:class:`~shadowlab.errors.ShadowlabError` saying which extra to install.

Conventions
-----------
* Qubits: shadowlab qubit ``q`` is Qiskit qubit ``q`` (``circuit.qubits[q]``). Qiskit's own state
  vectors are little-endian (qubit 0 = least significant bit of the index) while shadowlab's
  have qubit 0 as the most significant bit; :func:`state_circuit_qiskit` converts.
* Setting circuits (:func:`setting_circuits_qiskit`): the state preparation, a barrier, then
  per qubit ``H`` (X basis), ``Sdg`` then ``H`` (Y basis) or nothing (Z basis), then qubit ``q``
  measured into bit ``q`` of the classical register ``meas``. Bit 0 is eigenvalue +1 of the
  measured Pauli. Circuit ``g`` is named ``shadowlab_<g>_<LETTERS>`` (letters X/Y/Z, qubit 0
  first) and carries ``metadata = {"shadowlab_index": g, "shadowlab_setting": LETTERS}``.
* Outcomes: ``(shots, n)`` uint8, 0 = eigenvalue +1, qubit 0 first. Qiskit bit strings are
  little-endian (the rightmost character is classical bit 0 = qubit 0) and are converted.

Noise and the measurement layer
-------------------------------
:func:`noise_model_from_spec` turns a :class:`shadowlab.acquire.noise.NoiseModel` into an Aer
noise model with the same semantics (stim's ``DEPOLARIZE1``/``DEPOLARIZE2`` as Pauli errors
after every one-/two-qubit gate, asymmetric readout). Under such a model the Aer back end uses
the *uniform measurement layer*: exactly one ``u`` gate per qubit for every basis (``u(pi/2, 0,
pi)`` = ``H`` for X, ``u(pi/2, 0, pi/2)`` = ``H S^dagger`` for Y, ``u(0, 0, 0)`` = identity for
Z), so every outcome sees the same depolarizing gate whatever its basis, as a device that always
plays a rotation pulse does (the robust-shadow assumption; see :mod:`shadowlab.acquire.noise`).
With readout twirling the twirl ``X`` is folded into that gate (``X u``: one noisy gate, the
same noise). Circuits exported for devices (:func:`setting_circuits_qiskit` by default) keep the
minimal form above; there the device's own pulses decide the noise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from importlib import metadata as _metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import stim

from shadowlab.acquire.result_files import (
    QISKIT_REGISTER,
    check_settings,
    check_settings_repeats,
    setting_circuit_name,
    setting_labels,
    write_qiskit_results,
)
from shadowlab.acquire.simulate import PreparedState, prepare_state
from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.acquire.twirl import check_twirl_masks, group_shots
from shadowlab.atomic import check_can_write
from shadowlab.errors import InputFormatError, ShadowlabError, StateError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel

    from shadowlab.acquire.noise import NoiseModel as ShadowlabNoiseModel

__all__ = [
    "AER_NOISY_1Q_GATES",
    "AER_NOISY_2Q_GATES",
    "QASM_SUFFIXES",
    "VECTOR_PREPARATIONS",
    "QiskitAerBackend",
    "measurement_u_angles",
    "noise_model_from_spec",
    "qasm_version",
    "setting_circuits_qiskit",
    "state_circuit_qiskit",
    "stim_gate_sequence",
]

QISKIT_EXTRA = "pip install 'shadowlab[qiskit]'"
#: File suffixes read as OpenQASM programs (the version comes from the ``OPENQASM`` header).
QASM_SUFFIXES = (".qasm", ".qasm2", ".qasm3", ".openqasm")

# stim gates both Qiskit and Braket have under a name of their own; every other unitary stim gate
# is decomposed into H, S and CX (stim's tableau synthesis, exact up to a global phase).
_STIM_DIRECT = frozenset({"I", "X", "Y", "Z", "H", "S", "S_DAG", "SQRT_X", "SQRT_X_DAG",
                          "CX", "CY", "CZ", "SWAP", "ISWAP"})
_STIM_ANNOTATIONS = frozenset({"TICK", "QUBIT_COORDS", "SHIFT_COORDS"})
_QISKIT_GATES = {"I": "id", "X": "x", "Y": "y", "Z": "z", "H": "h", "S": "s", "S_DAG": "sdg", "SQRT_X": "sx",
                 "SQRT_X_DAG": "sxdg", "CX": "cx", "CY": "cy", "CZ": "cz", "SWAP": "swap", "ISWAP": "iswap"}

#: One-qubit gates that :func:`noise_model_from_spec` makes noisy (and keeps as simulator basis gates).
AER_NOISY_1Q_GATES = ("id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg", "rx", "ry", "rz", "p", "r",
                      "u", "u1", "u2", "u3")
#: Two-qubit gates that :func:`noise_model_from_spec` makes noisy (Aer's native two-qubit gates; others,
#: such as ``iswap``, are decomposed into these by the transpiler, each piece with its own noise).
AER_NOISY_2Q_GATES = ("cx", "cy", "cz", "swap", "ecr", "cp", "crx", "cry", "crz", "cu", "rxx", "ryy", "rzz", "rzx",
                      "csx")

# u(theta, phi, lambda) of the measurement gate of basis b (0/1/2 = X/Y/Z) followed by X^t (twirl):
# u = [[cos(t/2), -e^{il} sin(t/2)], [e^{ip} sin(t/2), e^{i(p+l)} cos(t/2)]]; H = u(pi/2, 0, pi),
# H S^dagger = u(pi/2, 0, pi/2), X H = u(pi/2, 0, 0), X H S^dagger = u(pi/2, 0, -pi/2), X = u(pi, 0, pi).
_MEASUREMENT_U = {
    (0, 0): (np.pi / 2, 0.0, np.pi), (1, 0): (np.pi / 2, 0.0, np.pi / 2), (2, 0): (0.0, 0.0, 0.0),
    (0, 1): (np.pi / 2, 0.0, 0.0), (1, 1): (np.pi / 2, 0.0, -np.pi / 2), (2, 1): (np.pi, 0.0, np.pi),
}


def _require_qiskit(what: str, *, aer: bool = False) -> None:
    try:
        import qiskit  # noqa: F401

        if aer:
            import qiskit_aer  # noqa: F401
    except ImportError as exc:
        raise ShadowlabError(f"{what} needs the 'qiskit' extra: {QISKIT_EXTRA} ({exc})") from None


# --------------------------------------------------------------------------------------------
# State circuits
# --------------------------------------------------------------------------------------------


def stim_gate_sequence(circuit: stim.Circuit) -> list[tuple[str, tuple[int, ...]]]:
    """The gates of a stim state-preparation circuit as ``(name, qubits)`` pairs.

    Names are stim's canonical names from a small set every SDK has (``I X Y Z H S S_DAG SQRT_X
    SQRT_X_DAG CX CY CZ SWAP ISWAP``); other unitary gates (``SQRT_Y``, ``H_YZ``, ``C_XYZ``,
    ``XCZ``, ...) are replaced by stim's exact H/S/CX decomposition of their tableau, which
    equals the gate up to a global phase. ``REPEAT`` blocks are unrolled; ``TICK`` and coordinate
    annotations are dropped. For two-qubit gates the first qubit is the control (stim's order).

    Raises
    ------
    StateError
        For measurements, resets and other non-unitary operations.
    ShadowlabError
        For noise channels (use the back end's own noise model instead).
    """
    check_state_circuit(circuit)
    out: list[tuple[str, tuple[int, ...]]] = []
    for op in circuit.flattened():
        if op.name in _STIM_ANNOTATIONS:
            continue
        data = stim.gate_data(op.name)
        if data.is_noisy_gate:
            raise ShadowlabError(f"the stim circuit contains the noise channel {op.name!r}, which is not translated "
                                 "to other SDKs; remove it and give the back end a noise model instead")
        qubits = [t.value for t in op.targets_copy()]
        arity = 2 if data.is_two_qubit_gate else 1
        for k in range(0, len(qubits), arity):
            group = tuple(qubits[k:k + arity])
            if data.name in _STIM_DIRECT:
                out.append((data.name, group))
                continue
            for sub in stim.Tableau.from_named_gate(data.name).to_circuit("elimination"):
                sub_qubits = [group[t.value] for t in sub.targets_copy()]
                sub_arity = 2 if stim.gate_data(sub.name).is_two_qubit_gate else 1
                if sub.name not in _STIM_DIRECT:  # pragma: no cover - stim synthesizes H, S, CX only
                    raise ShadowlabError(f"cannot translate stim gate {op.name!r}")
                for j in range(0, len(sub_qubits), sub_arity):
                    out.append((sub.name, tuple(sub_qubits[j:j + sub_arity])))
    return out


def qasm_version(text: str, *, path: str | os.PathLike[str] | None = None) -> int:
    """Major OpenQASM version (2 or 3) from a program's ``OPENQASM x.y;`` header.

    Raises :class:`InputFormatError` if the first statement is not such a header.

    Examples
    --------
    >>> qasm_version('// a comment\\nOPENQASM 3.0;\\nqubit q;')
    3
    """
    body = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    body = re.sub(r"//[^\n]*", " ", body)
    m = re.match(r"\s*OPENQASM\s+(\d+)(?:\.\d+)?\s*;", body)
    if m is None or m.group(1) not in ("2", "3"):
        raise InputFormatError("expected an 'OPENQASM 2.0;' or 'OPENQASM 3.0;' header as the first statement",
                               path=path)
    return int(m.group(1))


def _looks_like_program(s: str) -> bool:
    return ("\n" in s or ";" in s) and "OPENQASM" in s


def _qiskit_from_qasm(text: str, path: Path | None) -> QuantumCircuit:
    from qiskit import qasm2, qasm3

    version = qasm_version(text, path=path)
    where = path if path is not None else None
    if version == 2:
        include = (str(path.parent), *qasm2.LEGACY_INCLUDE_PATH) if path is not None else qasm2.LEGACY_INCLUDE_PATH
        try:
            circuit = qasm2.loads(text, include_path=include, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
                                  custom_classical=qasm2.LEGACY_CUSTOM_CLASSICAL)
        except qasm2.QASM2ParseError as exc:
            raise InputFormatError(f"not a valid OpenQASM 2 program for Qiskit: {exc}", path=where) from None
    else:
        try:
            circuit = qasm3.loads(text)
        except ImportError as exc:
            raise ShadowlabError(f"reading OpenQASM 3 needs the 'qiskit' extra (qiskit-qasm3-import): "
                                 f"{QISKIT_EXTRA} ({exc})") from None
        except Exception as exc:  # the importer raises several exception types for bad programs
            raise InputFormatError(f"not a valid OpenQASM 3 program for Qiskit: {exc}", path=where) from None
    if path is not None:
        circuit.name = path.stem
    return circuit


def _unitary_part(circuit: QuantumCircuit, what: str) -> QuantumCircuit:
    """``circuit`` without its terminal measurements and classical bits; refuses anything non-unitary."""
    from qiskit import QuantumCircuit, QuantumRegister
    from qiskit.circuit import ControlFlowOp

    if circuit.parameters:
        raise StateError(f"{what} has unbound parameters {sorted(p.name for p in circuit.parameters)}; "
                         "assign them (circuit.assign_parameters) before measuring")
    stripped = circuit.remove_final_measurements(inplace=False)
    out = QuantumCircuit(QuantumRegister(stripped.num_qubits, "q"), name=circuit.name,
                         global_phase=stripped.global_phase)
    for inst in stripped.data:
        op = inst.operation
        if isinstance(op, ControlFlowOp) or inst.clbits or op.name in ("measure", "reset") or getattr(
                op, "condition", None) is not None:
            qubits = [stripped.find_bit(q).index for q in inst.qubits]
            raise StateError(f"{what} has {op.name!r} on qubits {qubits} before other operations: mid-circuit "
                             "measurements, resets and classically controlled operations are not supported; a "
                             "state-preparation circuit must be unitary (terminal measurements are removed)")
        out.append(op, [stripped.find_bit(q).index for q in inst.qubits])
    return out


#: How :func:`state_circuit_qiskit` prepares a state vector (its ``vector_preparation`` choices).
VECTOR_PREPARATIONS = ("state_preparation", "initialize")


def _qiskit_from_statevector(psi: np.ndarray, n: int, name: str, how: str = "state_preparation") -> QuantumCircuit:
    from qiskit import QuantumCircuit, QuantumRegister
    from qiskit.circuit.library import Initialize, StatePreparation

    # shadowlab: qubit 0 = most significant bit; Qiskit: qubit 0 = least significant bit.
    little = np.asarray(psi, dtype=np.complex128).reshape((2,) * n).transpose(tuple(range(n))[::-1]).ravel()
    qc = QuantumCircuit(QuantumRegister(n, "q"), name=name)
    qc.append((Initialize if how == "initialize" else StatePreparation)(little), list(range(n)))
    return qc


def _qiskit_from_stim(circuit: stim.Circuit, n: int, name: str) -> QuantumCircuit:
    from qiskit import QuantumCircuit, QuantumRegister

    qc = QuantumCircuit(QuantumRegister(n, "q"), name=name)
    for gate, qubits in stim_gate_sequence(circuit):
        getattr(qc, _QISKIT_GATES[gate])(*qubits)
    return qc


def _qiskit_from_prepared(state: PreparedState, how: str = "state_preparation") -> QuantumCircuit:
    if state.circuit is not None:
        return _qiskit_from_stim(state.circuit, state.n_qubits, _safe_name(state.description))
    return _qiskit_from_statevector(state.statevector, state.n_qubits, _safe_name(state.description), how)


def _safe_name(description: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", Path(description).name).strip("_") or "state"


def state_circuit_qiskit(state: Any, *, vector_preparation: str = "state_preparation") -> QuantumCircuit:
    """A Qiskit circuit preparing ``state`` from ``|0...0>``, without measurements.

    Parameters
    ----------
    state:
        One of

        * a ``qiskit.QuantumCircuit``: terminal measurements and barriers after them are
          removed, classical bits dropped; mid-circuit measurements, resets, classical control
          and unbound parameters are refused (:class:`StateError`);
        * an OpenQASM 2 or 3 file (suffix ``.qasm``, ``.qasm2``, ``.qasm3`` or ``.openqasm``,
          or any file starting with an ``OPENQASM`` header) or program text; the version comes
          from the header (``qiskit.qasm2`` with the legacy ``qelib1.inc`` gates, or
          ``qiskit.qasm3.loads`` via qiskit-qasm3-import);
        * a :class:`~shadowlab.acquire.simulate.PreparedState`, a ``stim.Circuit`` or a state
          spec / file that :func:`~shadowlab.acquire.simulate.prepare_state` resolves (``"ghz:4"``,
          ``"tfim:6"``, ``state.npy``, ``prep.stim``): stim circuits are translated gate by gate
          (:func:`stim_gate_sequence`); state vectors become a ``StatePreparation`` gate (its
          synthesis grows as ``2^n``: fine for small ``n``);
        * a state vector (``numpy`` array of length ``2^n``, qubit 0 = most significant bit).
    vector_preparation:
        How a state vector (from a ``PreparedState``, a spec, a ``.npy`` file or an array) is
        prepared: ``"state_preparation"`` (default) a ``StatePreparation`` gate, which the
        transpiler synthesizes into basis gates (for devices and exported programs);
        ``"initialize"`` one ``Initialize`` instruction, which Aer executes natively (it sets
        the state; no synthesis) and to which no gate-noise model attaches errors -- what
        :class:`QiskitAerBackend` uses, so that a state vector gets no gate noise, as in
        shadowlab's simulator and on Braket. Circuits and programs are not affected.

    Returns
    -------
    qiskit.QuantumCircuit
        On one register ``q`` of ``n`` qubits, no classical bits; Qiskit qubit ``q`` is shadowlab
        qubit ``q`` (for state vectors the little-endian reordering is done here).
    """
    _require_qiskit("state_circuit_qiskit")
    from qiskit import QuantumCircuit

    if vector_preparation not in VECTOR_PREPARATIONS:
        raise ShadowlabError(f"vector_preparation must be one of {', '.join(VECTOR_PREPARATIONS)}, got "
                             f"{vector_preparation!r}")
    if isinstance(state, QuantumCircuit):
        return _unitary_part(state, f"circuit {state.name!r}")
    if isinstance(state, PreparedState):
        return _qiskit_from_prepared(state, vector_preparation)
    if isinstance(state, stim.Circuit):
        return _qiskit_from_stim(state, state.num_qubits, "stim_circuit")
    if isinstance(state, np.ndarray):
        from shadowlab.acquire.statevector import validate_statevector

        psi, n = validate_statevector(state, what="state vector")
        return _qiskit_from_statevector(psi, n, "statevector", vector_preparation)
    if isinstance(state, str) and _looks_like_program(state):
        return _unitary_part(_qiskit_from_qasm(state, None), "the OpenQASM program")
    if isinstance(state, str | os.PathLike):
        p = Path(state)
        if p.suffix.lower() in QASM_SUFFIXES or (p.is_file() and _starts_with_openqasm(p)):
            if not p.is_file():
                raise ShadowlabError(f"{p}: no such OpenQASM file")
            try:
                text = p.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise InputFormatError(f"not UTF-8 text ({exc.reason})", path=p) from None
            return _unitary_part(_qiskit_from_qasm(text, p), f"{p}")
        return _qiskit_from_prepared(prepare_state(os.fspath(state)), vector_preparation)
    raise ShadowlabError(f"state: expected a qiskit QuantumCircuit, an OpenQASM file, a PreparedState, a stim "
                         f"circuit, a state vector or a state spec such as 'ghz:4'; got {type(state).__name__}")


def _starts_with_openqasm(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", errors="ignore")
    except OSError:
        return False
    try:
        qasm_version(head)
    except InputFormatError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Setting circuits
# --------------------------------------------------------------------------------------------


def measurement_u_angles(basis: int, flip: int = 0) -> tuple[float, float, float]:
    """``(theta, phi, lambda)`` of the single ``u`` gate that measures ``basis`` (0/1/2 = X/Y/Z)
    in Z, times ``X`` when ``flip`` (a readout-twirl flip), up to a global phase.

    Examples
    --------
    >>> measurement_u_angles(2)
    (0.0, 0.0, 0.0)
    """
    return _MEASUREMENT_U[(int(basis), int(flip))]


def setting_circuits_qiskit(state_circuit: Any, settings: Any, *, first_index: int = 0, twirl: Any = None,
                            uniform_layer: bool = False) -> list[QuantumCircuit]:
    """One measurement circuit per setting: state preparation, barrier, basis rotations, measure all.

    Parameters
    ----------
    state_circuit:
        A state-preparation ``QuantumCircuit`` on ``n`` qubits, or anything
        :func:`state_circuit_qiskit` accepts.
    settings:
        ``(G, n)`` basis codes 0/1/2 = X/Y/Z, qubit 0 first, or a
        :class:`~shadowlab.plan.scheme.Scheme` (its settings).
    first_index:
        Plan index of ``settings[0]`` (for circuit names when a plan is submitted in slices).
    twirl:
        Optional ``(G, n)`` 0/1 readout-twirl masks, one per circuit: an ``X`` on the qubits with
        a 1 just before measuring (the raw bits are then the measured Pauli's bits XOR the mask;
        undoing it is the caller's job). Recorded as ``metadata["shadowlab_twirl"]`` (a 0/1
        string, qubit 0 first).
    uniform_layer:
        If true, the basis change is exactly one ``u`` gate per qubit for every basis, the twirl
        ``X`` folded in (:func:`measurement_u_angles`), so that a gate-noise model gives every
        basis the same noise; default ``False``: the minimal form below.

    Returns
    -------
    list of qiskit.QuantumCircuit
        Circuit ``g`` is named ``shadowlab_<first_index + g>_<LETTERS>`` and measures qubit ``q``
        into bit ``q`` of the register ``meas``: X basis ``H``, Y basis ``Sdg`` then ``H``, Z basis
        nothing before the measurement (bit 0 = eigenvalue +1), then ``X`` on twirled qubits.
    """
    _require_qiskit("setting_circuits_qiskit")
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    prep = state_circuit_qiskit(state_circuit)
    n = prep.num_qubits
    sets = check_settings(settings, n)
    masks = None if twirl is None else check_twirl_masks(twirl, sets.shape[0], n, "twirl")
    circuits = []
    for g, (row, label) in enumerate(zip(sets, setting_labels(sets), strict=True)):
        index = first_index + g
        metadata: dict[str, Any] = {"shadowlab_index": index, "shadowlab_setting": label}
        mask = np.zeros(n, dtype=np.uint8) if masks is None else masks[g]
        if masks is not None:
            metadata["shadowlab_twirl"] = "".join(str(int(b)) for b in mask)
        qc = QuantumCircuit(QuantumRegister(n, "q"), ClassicalRegister(n, QISKIT_REGISTER),
                            name=setting_circuit_name(index, label), metadata=metadata)
        qc.compose(prep, qubits=list(range(n)), inplace=True)
        qc.barrier()
        if uniform_layer:
            for q in range(n):
                qc.u(*measurement_u_angles(int(row[q]), int(mask[q])), q)
        else:
            ys = np.flatnonzero(row == 1).tolist()
            rotated = np.flatnonzero(row != 2).tolist()
            flipped = np.flatnonzero(mask).tolist()
            if ys:
                qc.sdg(ys)
            if rotated:
                qc.h(rotated)
            if flipped:
                qc.x(flipped)
        qc.measure(list(range(n)), list(range(n)))
        circuits.append(qc)
    return circuits


# --------------------------------------------------------------------------------------------
# Aer back end
# --------------------------------------------------------------------------------------------


def noise_model_from_spec(noise: ShadowlabNoiseModel | Mapping[str, Any], n_qubits: int | None = None) -> NoiseModel:
    """The Qiskit Aer noise model of a :class:`shadowlab.acquire.noise.NoiseModel` (same semantics).

    Parameters
    ----------
    noise:
        A shadowlab ``NoiseModel``, or a spec mapping :meth:`NoiseModel.from_spec` reads
        (``{"depolarizing": 0.01, "readout_p01": 0.05, "readout_p10": 0.15}``).
    n_qubits:
        Needed only for per-qubit readout probabilities (one ``ReadoutError`` per qubit).

    Returns
    -------
    qiskit_aer.noise.NoiseModel
        * after every one-qubit gate of :data:`AER_NOISY_1Q_GATES` (``u`` included, so the
          measurement layer's rotation too): the Pauli error ``X``, ``Y``, ``Z`` each with
          probability ``p/3`` -- stim's ``DEPOLARIZE1(p)``, which is Aer's
          ``depolarizing_error(4p/3, 1)``;
        * after every two-qubit gate of :data:`AER_NOISY_2Q_GATES`: each of the 15 non-identity
          Pauli pairs with probability ``p2/15`` (stim's ``DEPOLARIZE2``);
        * on every measurement: ``ReadoutError([[1 - p01, p01], [p10, 1 - p10]])`` (row: the
          measured bit, column: the bit read).

        The basis gates are the two lists above, so the transpiler keeps those gates as written.

    Examples
    --------
    >>> model = noise_model_from_spec({"depolarizing": 0.01, "p01": 0.05, "p10": 0.15})  # doctest: +SKIP
    >>> {"u", "cx", "measure"} <= set(model.noise_instructions)  # doctest: +SKIP
    True
    """
    _require_qiskit("noise_model_from_spec", aer=True)
    from qiskit_aer.noise import NoiseModel, ReadoutError, pauli_error

    from shadowlab.acquire.noise import NoiseModel as ShadowlabNoise

    spec = noise if isinstance(noise, ShadowlabNoise) else ShadowlabNoise.from_spec(noise)
    model = NoiseModel(basis_gates=[*AER_NOISY_1Q_GATES, *AER_NOISY_2Q_GATES])
    p1, p2 = float(spec.depolarizing), float(spec.p2)
    if p1 > 0:
        error1 = pauli_error([("I", 1.0 - p1), ("X", p1 / 3), ("Y", p1 / 3), ("Z", p1 / 3)])
        model.add_all_qubit_quantum_error(error1, list(AER_NOISY_1Q_GATES))
    if p2 > 0:
        pairs = [a + b for a in "IXYZ" for b in "IXYZ"][1:]
        error2 = pauli_error([("II", 1.0 - p2), *((label, p2 / 15) for label in pairs)])
        model.add_all_qubit_quantum_error(error2, list(AER_NOISY_2Q_GATES))
    per_qubit = isinstance(spec.readout_p01, tuple) or isinstance(spec.readout_p10, tuple)
    if per_qubit:
        if n_qubits is None:
            raise ShadowlabError("per-qubit readout probabilities need n_qubits (noise_model_from_spec(noise, n))")
        p01, p10 = spec.readout(int(n_qubits))
        for q in range(int(n_qubits)):
            if p01[q] > 0 or p10[q] > 0:
                model.add_readout_error(_readout_error(ReadoutError, p01[q], p10[q]), [q])
    elif spec.readout_p01 or spec.readout_p10:
        model.add_all_qubit_readout_error(_readout_error(ReadoutError, float(spec.readout_p01),
                                                         float(spec.readout_p10)))
    return model


def _readout_error(cls: Any, p01: float, p10: float) -> Any:
    return cls([[1.0 - float(p01), float(p01)], [float(p10), 1.0 - float(p10)]])


def _noise_summary(noise_model: NoiseModel | None) -> dict[str, Any] | None:
    if noise_model is None:
        return None
    described = noise_model.to_dict(serializable=True)
    # Aer gives every error a random id; without them equal models hash equally (resume checks).
    described["errors"] = [{k: v for k, v in e.items() if k != "id"} for e in described.get("errors", [])]
    full = json.dumps(described, sort_keys=True, default=str)
    return {
        "basis_gates": sorted(noise_model.basis_gates),
        "noise_instructions": sorted(noise_model.noise_instructions),
        "noise_qubits": sorted(int(q) for q in noise_model.noise_qubits),
        "ideal": bool(noise_model.is_ideal()),
        "sha256": hashlib.sha256(full.encode()).hexdigest(),
    }


def _version(dist: str) -> str | None:
    try:
        return _metadata.version(dist)
    except _metadata.PackageNotFoundError:
        return None


def _check_seed(seed: Any, what: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ShadowlabError(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


class QiskitAerBackend:
    """Measure a state under a plan's settings with Qiskit Aer's ``SamplerV2``.

    Parameters
    ----------
    state:
        Anything :func:`state_circuit_qiskit` accepts (a ``QuantumCircuit``, an OpenQASM file, a
        ``PreparedState``, a spec such as ``"ghz:4"``, ...).
    noise_model:
        ``None``; a :class:`shadowlab.acquire.noise.NoiseModel` (converted with
        :func:`noise_model_from_spec`, recorded in :meth:`describe` and measured with the uniform
        measurement layer); or a ``qiskit_aer.noise.NoiseModel`` passed to the ``AerSimulator``
        as is (gate errors apply to the gates after transpilation to the simulator's basis;
        readout errors to the measurements).
    seed_offset:
        Non-negative integer mixed into every run's seed: the same ``(settings, repeats, seed)``
        give identical outcomes for the same offset, independent ones for another offset.
    backend_options:
        Extra ``AerSimulator`` options (e.g. ``{"method": "density_matrix"}``).
    optimization_level:
        Transpiler optimization level for the state preparation (0 keeps the gates as given,
        so a noise model applies to exactly the gates written).
    readout_twirl:
        Whether runs are readout-twirled: :meth:`describe` records it, and :meth:`run_batch`
        then refuses to run without one X-flip mask per shot (``twirl=``). (Masks given to a
        back end built without it are applied all the same.)
    uniform_measurement_layer:
        Measure every basis with exactly one ``u`` gate per qubit (see the module
        documentation); default: on for a shadowlab ``NoiseModel``, off otherwise (the minimal
        ``Sdg``/``H`` layer that a hand-made Aer noise model may target).

    Notes
    -----
    What gets gate noise. A gate-noise model (a shadowlab ``NoiseModel`` or a hand-made Aer model)
    acts on the preparation's gates *after transpilation* to the simulator's basis, so:

    * a state vector (a spec such as ``"random:4"``, a ``.npy`` file, a ``PreparedState`` or an
      array) is prepared by one ``Initialize`` instruction, which Aer runs natively and no noise
      model covers: it gets **no** gate noise, as in shadowlab's own simulator
      (:mod:`shadowlab.acquire.simulate`) and on Braket (only the measurement layer and readout
      are noisy);
    * a stim circuit is translated by :func:`stim_gate_sequence`: a gate outside ``I X Y Z H S
      S_DAG SQRT_X SQRT_X_DAG CX CY CZ SWAP`` (``SQRT_Y``, ``H_YZ``, ``C_XYZ``, ``XCZ``,
      ``SQRT_XX``, ...) becomes several H/S/CX gates, and ``ISWAP`` (not an Aer basis gate) is
      decomposed by the transpiler, each piece with its own depolarizing channel, where
      :func:`shadowlab.acquire.noise.add_circuit_noise` (shadowlab's simulator, and exact values
      computed from ``NoiseModel.state_circuit``) adds one channel per stim gate. For
      circuits of the directly translated gates the two agree exactly; :meth:`describe` lists
      the stim gates that do not (``gate_noise_scope``);
    * a ``QuantumCircuit`` or OpenQASM program is noisy gate by gate (shadowlab's simulator runs
      an OpenQASM file as a noise-free state vector).

    A batch runs one pub per distinct (setting, twirl mask) (shots = its count), all pubs with
    the same shot count in a single ``SamplerV2.run`` call -- so a plan with equal repeats and no
    twirl is one sampler run. Pubs with different shot counts go into separate runs (Aer's
    sampler splits them into separate simulator jobs anyway), each seeded with
    ``SeedSequence(seed, spawn_key=(seed_offset, shots))`` rather than all with ``seed`` (Aer
    derives the seed of the ``i``-th circuit of a job from the job's seed and ``i``, so equal job
    seeds would make circuits of different runs reuse each other's random numbers).

    Examples
    --------
    >>> from shadowlab.acquire.noise import NoiseModel
    >>> backend = QiskitAerBackend("ghz:3", noise_model=NoiseModel(depolarizing=0.01),
    ...                            readout_twirl=True)  # doctest: +SKIP
    >>> masks = np.random.default_rng(0).integers(0, 2, size=(10, 3), dtype=np.uint8)  # doctest: +SKIP
    >>> backend.run_batch(np.array([[0, 0, 0]]), np.array([10]), seed=1, twirl=masks).shape  # doctest: +SKIP
    (10, 3)
    """

    name = "qiskit-aer"

    def __init__(self, state: Any, *, noise_model: NoiseModel | ShadowlabNoiseModel | None = None,
                 seed_offset: int = 0, backend_options: dict[str, Any] | None = None, optimization_level: int = 0,
                 readout_twirl: bool = False, uniform_measurement_layer: bool | None = None) -> None:
        _require_qiskit("QiskitAerBackend", aer=True)
        from qiskit import transpile
        from qiskit_aer import AerSimulator
        from qiskit_aer.noise import NoiseModel

        from shadowlab.acquire.noise import NoiseModel as ShadowlabNoise

        if noise_model is not None and not isinstance(noise_model, NoiseModel | ShadowlabNoise):
            raise ShadowlabError(f"noise_model must be a shadowlab.acquire.noise.NoiseModel or a "
                                 f"qiskit_aer.noise.NoiseModel, got {type(noise_model).__name__}")
        self.seed_offset = _check_seed(seed_offset, "seed_offset")
        state = _resolve_spec(state)
        # A state vector is one Initialize instruction (native in Aer, never given gate noise).
        circuit = state_circuit_qiskit(state, vector_preparation="initialize")
        self.state_description = _describe_state(state, circuit)
        self._vector_state = any(inst.operation.name == "initialize" for inst in circuit.data)
        self._multi_gate_stim = _multi_gate_stim_gates(state)
        self.n_qubits = int(circuit.num_qubits)
        self.noise = noise_model if isinstance(noise_model, ShadowlabNoise) else None
        if self.noise is not None:
            self.noise.readout(self.n_qubits)  # per-qubit lists must match the qubit count
            noise_model = noise_model_from_spec(self.noise, self.n_qubits)
        self.noise_model = noise_model
        self.readout_twirl = bool(readout_twirl)
        self.uniform_measurement_layer = (self.noise is not None if uniform_measurement_layer is None
                                          else bool(uniform_measurement_layer))
        self.backend_options = dict(backend_options or {})
        self.optimization_level = int(optimization_level)
        options = dict(self.backend_options)
        if noise_model is not None:
            options["noise_model"] = noise_model
        self._simulator = AerSimulator(**options)
        self._prep = transpile(circuit, backend=self._simulator, optimization_level=self.optimization_level,
                               seed_transpiler=0)
        names = set(self._simulator.target.operation_names)
        needed = {"u", "measure"} if self.uniform_measurement_layer else {"h", "sdg", "measure"}
        if self.readout_twirl and not self.uniform_measurement_layer:
            needed.add("x")
        self._rotations_native = needed <= names
        if self.uniform_measurement_layer:
            self._build_layer_circuit()

    def _build_layer_circuit(self) -> None:
        """The parametrized circuit of the uniform layer: preparation, barrier, ``u(theta_q, phi_q, lambda_q)``."""
        from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
        from qiskit.circuit import ParameterVector

        n = self.n_qubits
        params = ParameterVector("shadowlab_u", 3 * n)
        qc = QuantumCircuit(QuantumRegister(n, "q"), ClassicalRegister(n, QISKIT_REGISTER), name="shadowlab_layer")
        qc.compose(self._prep, qubits=list(range(n)), inplace=True)
        qc.barrier()
        for q in range(n):
            qc.u(params[3 * q], params[3 * q + 1], params[3 * q + 2], q)
        qc.measure(list(range(n)), list(range(n)))
        if not self._rotations_native:  # a hand-made noise model whose basis lacks u
            from qiskit import transpile

            qc = transpile(qc, backend=self._simulator, optimization_level=0, seed_transpiler=0)
        self._layer_circuit = qc
        self._layer_parameters = list(params)

    def _layer_angles(self, settings: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """``(G, 3 n)`` u angles (qubit-major ``theta, phi, lambda``) of settings with optional masks."""
        table = np.array([[_MEASUREMENT_U[(b, t)] for t in range(2)] for b in range(3)])  # (3, 2, 3)
        flips = np.zeros_like(settings) if masks is None else masks
        return table[settings.astype(np.int64), flips.astype(np.int64)].reshape(settings.shape[0], -1)

    def setting_circuits(self, settings: np.ndarray, twirl: np.ndarray | None = None) -> list[QuantumCircuit]:
        """The circuits a batch runs (state preparation already transpiled for the simulator).

        ``twirl`` holds one 0/1 mask per circuit (``(G, n)``), see :func:`setting_circuits_qiskit`.
        With the uniform measurement layer, :meth:`run_batch` runs the same circuits as one
        parametrized circuit whose ``u`` angles are bound per (setting, mask).
        """
        from qiskit import transpile

        circuits = setting_circuits_qiskit(self._prep, settings, twirl=twirl,
                                           uniform_layer=self.uniform_measurement_layer)
        if not self._rotations_native:
            circuits = transpile(circuits, backend=self._simulator, optimization_level=0, seed_transpiler=0)
        return circuits

    def run_batch(self, settings: np.ndarray, repeats: np.ndarray, seed: int, *, twirl: np.ndarray | None = None,
                  save_to: str | os.PathLike[str] | None = None) -> np.ndarray:
        """Measure ``repeats[g]`` shots of every setting ``g``.

        Parameters
        ----------
        settings:
            ``(G, n)`` basis codes 0/1/2 = X/Y/Z, qubit 0 first.
        repeats:
            ``(G,)`` positive shot counts.
        seed:
            Non-negative integer; the same ``(settings, repeats, seed, twirl)`` (and
            ``seed_offset``) give identical outcomes.
        twirl:
            Readout-twirl masks, required when the back end was built with
            ``readout_twirl=True``: ``(repeats.sum(), n)`` 0/1, one row per shot in output order.
            Shots with the same (setting, mask) run as one circuit with ``X`` before the
            measurement of the masked qubits (folded into the ``u`` gate of the uniform layer);
            the returned bits have the mask XORed back out.
        save_to:
            If given, also write the per-shot bit strings to this JSON file (format (c) of
            :mod:`shadowlab.acquire.result_files`, one entry per setting; an existing file is an
            error), which :func:`~shadowlab.acquire.result_files.read_qiskit_results` reads back
            to exactly the returned outcomes. With twirling the saved strings are the corrected
            bits and ``metadata["readout_twirl_masks"]`` lists each shot's mask (0/1 strings,
            qubit 0 first), so the raw device bits are ``outcomes ^ masks``.

        Returns
        -------
        numpy.ndarray
            ``(repeats.sum(), n)`` uint8, 0 = eigenvalue +1, qubit 0 first; all shots of setting
            0 first, then setting 1, ..., each in the sampler's shot order (with twirling: the
            shots of each (setting, mask) circuit fill that mask's rows in order).
        """
        from qiskit_aer.primitives import SamplerV2

        sets, reps = check_settings_repeats(settings, repeats, self.n_qubits)
        seed = _check_seed(seed, "seed")
        total = int(reps.sum())
        masks = None
        if twirl is not None:
            masks = check_twirl_masks(twirl, total, self.n_qubits, "twirl")
        elif self.readout_twirl:
            raise ShadowlabError(f"this back end was built with readout_twirl=True: pass the per-shot X-flip masks, "
                                 f"twirl=<({total}, {self.n_qubits}) uint8 array>")
        if save_to is not None:
            check_can_write(save_to, force=False)
        # One circuit per distinct (setting, mask); rows[j] are the output rows of circuit j.
        groups = group_shots(sets, reps, masks)
        circuit_masks, rows = groups.masks, groups.rows
        shots_per_circuit = groups.shots
        outcomes = np.empty((total, self.n_qubits), dtype=np.uint8)
        if self.uniform_measurement_layer:
            # One parametrized circuit: the setting and the mask only change the u angles, bound
            # per (setting, mask); one pub per shot count (much faster than a circuit each).
            angles = self._layer_angles(groups.settings, circuit_masks)
            for shots in dict.fromkeys(shots_per_circuit.tolist()):
                index = np.flatnonzero(shots_per_circuit == shots)
                sampler = SamplerV2.from_backend(self._simulator, seed=self._run_seed(seed, shots))
                pub = (self._layer_circuit, {tuple(self._layer_parameters): angles[index]}, int(shots))
                bits = getattr(sampler.run([pub]).result()[0].data, QISKIT_REGISTER)
                block = bits.to_bool_array(order="little").astype(np.uint8).reshape(index.size, int(shots), -1)
                for k, i in enumerate(index):
                    outcomes[rows[i]] = block[k]
        else:
            circuits = self.setting_circuits(groups.settings, circuit_masks)
            for shots in dict.fromkeys(shots_per_circuit.tolist()):
                index = np.flatnonzero(shots_per_circuit == shots)
                sampler = SamplerV2.from_backend(self._simulator, seed=self._run_seed(seed, shots))
                result = sampler.run([(circuits[i], None, int(shots)) for i in index]).result()
                for i, pub in zip(index, result, strict=True):
                    bits = getattr(pub.data, QISKIT_REGISTER)
                    outcomes[rows[i]] = bits.to_bool_array(order="little").astype(np.uint8)
        if masks is not None:
            outcomes ^= masks
        if save_to is not None:
            # Qiskit strings are little-endian: qubit 0 is the rightmost character.
            strings = ["".join("1" if b else "0" for b in row[::-1]) for row in outcomes]
            offsets = np.concatenate([[0], np.cumsum(reps)])
            labels = setting_labels(sets)
            pubs = [{"name": setting_circuit_name(g, labels[g]), "num_bits": self.n_qubits,
                     "bitstrings": strings[offsets[g]:offsets[g + 1]]} for g in range(sets.shape[0])]
            metadata: dict[str, Any] = {**self.describe(), "seed": seed}
            if masks is not None:
                metadata["readout_twirl_masks"] = ["".join(str(int(b)) for b in row) for row in masks]
            write_qiskit_results(save_to, pubs, metadata=metadata)
        return outcomes

    def _run_seed(self, seed: int, shots: int) -> int:
        ss = np.random.SeedSequence(seed, spawn_key=(self.seed_offset, int(shots)))
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def describe(self) -> dict[str, Any]:
        """JSON-serializable provenance: back end, versions, state, noise, twirl, measurement layer, seeding.

        ``noise`` is the shadowlab noise model's :meth:`~shadowlab.acquire.noise.NoiseModel.record`
        (readout asymmetry included) when one was given, else ``None``; ``noise_model`` summarizes
        the Aer model actually simulated (instructions, qubits, SHA-256 of its full description).
        """
        return {
            "backend": self.name,
            "primitive": "qiskit_aer.primitives.SamplerV2",
            "qiskit_version": _version("qiskit"),
            "qiskit_aer_version": _version("qiskit-aer"),
            "state": self.state_description,
            "n_qubits": self.n_qubits,
            "noise": None if self.noise is None else self.noise.record(),
            "noise_model": _noise_summary(self.noise_model),
            "readout_twirl": self.readout_twirl,
            "measurement_layer": ("one u gate per qubit, every basis" if self.uniform_measurement_layer
                                  else "sdg/h on X and Y qubits, nothing on Z"),
            "gate_noise_scope": {
                "applies_to": "the preparation's gates after transpilation to the simulator's basis",
                "state_vector_preparation": ("one Initialize instruction, no gate noise" if self._vector_state
                                             else None),
                "stim_gates_as_several_noisy_gates": self._multi_gate_stim,
            },
            "backend_options": {k: repr(v) for k, v in self.backend_options.items()},
            "optimization_level": self.optimization_level,
            "seeded": True,
            "seed_offset": self.seed_offset,
        }


def _resolve_spec(state: Any) -> Any:
    """A state spec or a non-OpenQASM file resolved once (a PreparedState); anything else unchanged."""
    if isinstance(state, str) and _looks_like_program(state):
        return state
    if isinstance(state, str | os.PathLike):
        p = Path(state)
        if not (p.suffix.lower() in QASM_SUFFIXES or (p.is_file() and _starts_with_openqasm(p))):
            return prepare_state(os.fspath(state))
    return state


def _multi_gate_stim_gates(state: Any) -> list[str]:
    """Stim gates of ``state``'s circuit that Aer runs as several gates, each with its own gate noise.

    The gates :func:`stim_gate_sequence` decomposes into H/S/CX, and ``ISWAP`` (not an Aer basis
    gate: the transpiler decomposes it). Empty for anything but a stim state.
    """
    circuit = state.circuit if isinstance(state, PreparedState) else state
    if not isinstance(circuit, stim.Circuit):
        return []
    names = set()
    for op in circuit.flattened():
        if op.name in _STIM_ANNOTATIONS:
            continue
        data = stim.gate_data(op.name)
        if data.is_unitary and (data.name not in _STIM_DIRECT or data.name == "ISWAP"):
            names.add(data.name)
    return sorted(names)


def _describe_state(state: Any, circuit: QuantumCircuit) -> str:
    if isinstance(state, PreparedState):
        return state.description
    if isinstance(state, str | os.PathLike) and not (isinstance(state, str) and _looks_like_program(state)):
        return os.fspath(state)
    return f"{type(state).__name__} {circuit.name!r}"
