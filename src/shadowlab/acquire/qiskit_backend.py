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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
from shadowlab.atomic import check_can_write
from shadowlab.errors import InputFormatError, ShadowlabError, StateError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel

__all__ = [
    "QASM_SUFFIXES",
    "QiskitAerBackend",
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


def _qiskit_from_statevector(psi: np.ndarray, n: int, name: str) -> QuantumCircuit:
    from qiskit import QuantumCircuit, QuantumRegister
    from qiskit.circuit.library import StatePreparation

    # shadowlab: qubit 0 = most significant bit; Qiskit: qubit 0 = least significant bit.
    little = np.asarray(psi, dtype=np.complex128).reshape((2,) * n).transpose(tuple(range(n))[::-1]).ravel()
    qc = QuantumCircuit(QuantumRegister(n, "q"), name=name)
    qc.append(StatePreparation(little), list(range(n)))
    return qc


def _qiskit_from_stim(circuit: stim.Circuit, n: int, name: str) -> QuantumCircuit:
    from qiskit import QuantumCircuit, QuantumRegister

    qc = QuantumCircuit(QuantumRegister(n, "q"), name=name)
    for gate, qubits in stim_gate_sequence(circuit):
        getattr(qc, _QISKIT_GATES[gate])(*qubits)
    return qc


def _qiskit_from_prepared(state: PreparedState) -> QuantumCircuit:
    if state.circuit is not None:
        return _qiskit_from_stim(state.circuit, state.n_qubits, _safe_name(state.description))
    return _qiskit_from_statevector(state.statevector, state.n_qubits, _safe_name(state.description))


def _safe_name(description: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", Path(description).name).strip("_") or "state"


def state_circuit_qiskit(state: Any) -> QuantumCircuit:
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

    Returns
    -------
    qiskit.QuantumCircuit
        On one register ``q`` of ``n`` qubits, no classical bits; Qiskit qubit ``q`` is shadowlab
        qubit ``q`` (for state vectors the little-endian reordering is done here).
    """
    _require_qiskit("state_circuit_qiskit")
    from qiskit import QuantumCircuit

    if isinstance(state, QuantumCircuit):
        return _unitary_part(state, f"circuit {state.name!r}")
    if isinstance(state, PreparedState):
        return _qiskit_from_prepared(state)
    if isinstance(state, stim.Circuit):
        return _qiskit_from_stim(state, state.num_qubits, "stim_circuit")
    if isinstance(state, np.ndarray):
        from shadowlab.acquire.statevector import validate_statevector

        psi, n = validate_statevector(state, what="state vector")
        return _qiskit_from_statevector(psi, n, "statevector")
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
        return _qiskit_from_prepared(prepare_state(os.fspath(state)))
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


def setting_circuits_qiskit(state_circuit: Any, settings: Any, *, first_index: int = 0) -> list[QuantumCircuit]:
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

    Returns
    -------
    list of qiskit.QuantumCircuit
        Circuit ``g`` is named ``shadowlab_<first_index + g>_<LETTERS>`` and measures qubit ``q``
        into bit ``q`` of the register ``meas``: X basis ``H``, Y basis ``Sdg`` then ``H``, Z basis
        nothing before the measurement (bit 0 = eigenvalue +1).
    """
    _require_qiskit("setting_circuits_qiskit")
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    prep = state_circuit_qiskit(state_circuit)
    n = prep.num_qubits
    sets = check_settings(settings, n)
    circuits = []
    for g, (row, label) in enumerate(zip(sets, setting_labels(sets), strict=True)):
        index = first_index + g
        qc = QuantumCircuit(QuantumRegister(n, "q"), ClassicalRegister(n, QISKIT_REGISTER),
                            name=setting_circuit_name(index, label),
                            metadata={"shadowlab_index": index, "shadowlab_setting": label})
        qc.compose(prep, qubits=list(range(n)), inplace=True)
        qc.barrier()
        ys = np.flatnonzero(row == 1).tolist()
        rotated = np.flatnonzero(row != 2).tolist()
        if ys:
            qc.sdg(ys)
        if rotated:
            qc.h(rotated)
        qc.measure(list(range(n)), list(range(n)))
        circuits.append(qc)
    return circuits


# --------------------------------------------------------------------------------------------
# Aer back end
# --------------------------------------------------------------------------------------------


def _noise_summary(noise_model: NoiseModel | None) -> dict[str, Any] | None:
    if noise_model is None:
        return None
    full = json.dumps(noise_model.to_dict(serializable=True), sort_keys=True, default=str)
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
        A ``qiskit_aer.noise.NoiseModel`` passed to the ``AerSimulator`` (gate errors apply to
        the gates after transpilation to the simulator's basis; readout errors to the
        measurements).
    seed_offset:
        Non-negative integer mixed into every run's seed: the same ``(settings, repeats, seed)``
        give identical outcomes for the same offset, independent ones for another offset.
    backend_options:
        Extra ``AerSimulator`` options (e.g. ``{"method": "density_matrix"}``).
    optimization_level:
        Transpiler optimization level for the state preparation (0 keeps the gates as given,
        so a noise model applies to exactly the gates written).

    Notes
    -----
    A batch runs one pub per setting (shots = its repeat count), all pubs with the same repeat
    count in a single ``SamplerV2.run`` call -- so a plan with equal repeats is one sampler run.
    Settings with different repeat counts go into separate runs (Aer's sampler splits them into
    separate simulator jobs anyway), each seeded with
    ``SeedSequence(seed, spawn_key=(seed_offset, shots))`` rather than all with ``seed`` (Aer
    derives the seed of the ``i``-th circuit of a job from the job's seed and ``i``, so equal job
    seeds would make circuits of different runs reuse each other's random numbers).
    """

    name = "qiskit-aer"

    def __init__(self, state: Any, *, noise_model: NoiseModel | None = None, seed_offset: int = 0,
                 backend_options: dict[str, Any] | None = None, optimization_level: int = 0) -> None:
        _require_qiskit("QiskitAerBackend", aer=True)
        from qiskit import transpile
        from qiskit_aer import AerSimulator
        from qiskit_aer.noise import NoiseModel

        if noise_model is not None and not isinstance(noise_model, NoiseModel):
            raise ShadowlabError(f"noise_model must be a qiskit_aer.noise.NoiseModel, got {type(noise_model).__name__}")
        self.seed_offset = _check_seed(seed_offset, "seed_offset")
        self.noise_model = noise_model
        self.backend_options = dict(backend_options or {})
        self.optimization_level = int(optimization_level)
        options = dict(self.backend_options)
        if noise_model is not None:
            options["noise_model"] = noise_model
        self._simulator = AerSimulator(**options)
        circuit = state_circuit_qiskit(state)
        self.state_description = _describe_state(state, circuit)
        self.n_qubits = int(circuit.num_qubits)
        self._prep = transpile(circuit, backend=self._simulator, optimization_level=self.optimization_level,
                               seed_transpiler=0)
        names = set(self._simulator.target.operation_names)
        self._rotations_native = {"h", "sdg", "measure"} <= names

    def setting_circuits(self, settings: np.ndarray) -> list[QuantumCircuit]:
        """The circuits a batch runs (state preparation already transpiled for the simulator)."""
        from qiskit import transpile

        circuits = setting_circuits_qiskit(self._prep, settings)
        if not self._rotations_native:
            circuits = transpile(circuits, backend=self._simulator, optimization_level=0, seed_transpiler=0)
        return circuits

    def run_batch(self, settings: np.ndarray, repeats: np.ndarray, seed: int, *,
                  save_to: str | os.PathLike[str] | None = None) -> np.ndarray:
        """Measure ``repeats[g]`` shots of every setting ``g``.

        Parameters
        ----------
        settings:
            ``(G, n)`` basis codes 0/1/2 = X/Y/Z, qubit 0 first.
        repeats:
            ``(G,)`` positive shot counts.
        seed:
            Non-negative integer; the same ``(settings, repeats, seed)`` (and ``seed_offset``)
            give identical outcomes.
        save_to:
            If given, also write the raw per-shot bit strings to this JSON file (format (c) of
            :mod:`shadowlab.acquire.result_files`; an existing file is an error), which
            :func:`~shadowlab.acquire.result_files.read_qiskit_results` reads back to exactly the
            returned outcomes.

        Returns
        -------
        numpy.ndarray
            ``(repeats.sum(), n)`` uint8, 0 = eigenvalue +1, qubit 0 first; all shots of setting
            0 first, then setting 1, ..., each in the sampler's shot order.
        """
        from qiskit_aer.primitives import SamplerV2

        sets, reps = check_settings_repeats(settings, repeats, self.n_qubits)
        seed = _check_seed(seed, "seed")
        if save_to is not None:
            check_can_write(save_to, force=False)
        circuits = self.setting_circuits(sets)
        rows: list[np.ndarray | None] = [None] * len(circuits)
        strings: list[list[str] | None] = [None] * len(circuits)
        for shots in dict.fromkeys(reps.tolist()):
            index = np.flatnonzero(reps == shots)
            sampler = SamplerV2.from_backend(self._simulator, seed=self._run_seed(seed, shots))
            result = sampler.run([(circuits[i], None, int(shots)) for i in index]).result()
            for i, pub in zip(index, result, strict=True):
                bits = getattr(pub.data, QISKIT_REGISTER)
                rows[i] = bits.to_bool_array(order="little").astype(np.uint8)
                if save_to is not None:
                    strings[i] = bits.get_bitstrings()
        outcomes = np.ascontiguousarray(np.concatenate(rows), dtype=np.uint8)
        if save_to is not None:
            pubs = [{"name": c.name, "num_bits": self.n_qubits, "bitstrings": s}
                    for c, s in zip(circuits, strings, strict=True)]
            write_qiskit_results(save_to, pubs, metadata={**self.describe(), "seed": seed})
        return outcomes

    def _run_seed(self, seed: int, shots: int) -> int:
        ss = np.random.SeedSequence(seed, spawn_key=(self.seed_offset, int(shots)))
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def describe(self) -> dict[str, Any]:
        """JSON-serializable provenance: back end, versions, state, noise model summary, seeding."""
        return {
            "backend": self.name,
            "primitive": "qiskit_aer.primitives.SamplerV2",
            "qiskit_version": _version("qiskit"),
            "qiskit_aer_version": _version("qiskit-aer"),
            "state": self.state_description,
            "n_qubits": self.n_qubits,
            "noise_model": _noise_summary(self.noise_model),
            "backend_options": {k: repr(v) for k, v in self.backend_options.items()},
            "optimization_level": self.optimization_level,
            "seeded": True,
            "seed_offset": self.seed_offset,
        }


def _describe_state(state: Any, circuit: QuantumCircuit) -> str:
    if isinstance(state, PreparedState):
        return state.description
    if isinstance(state, str | os.PathLike) and not (isinstance(state, str) and _looks_like_program(state)):
        return os.fspath(state)
    return f"{type(state).__name__} {circuit.name!r}"
