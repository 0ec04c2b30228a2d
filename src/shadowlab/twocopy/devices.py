"""Two-copy Bell circuits for devices: Qiskit (Aer) and Amazon Braket, export and result import.

The circuit on ``2n`` qubits prepares the state on qubits ``0..n-1`` (copy A) and again on
``n..2n-1`` (copy B), applies ``CNOT(k -> n+k)`` and ``H(k)`` for every pair and measures qubit
``j`` into classical bit ``j``. So the record is ``a_0..a_{n-1}, c_0..c_{n-1}`` and
:meth:`BellData.from_bits` turns it into Bell data (Qiskit's little-endian bit strings are
reversed at the boundary by the result readers). The SDKs are optional extras, imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.errors import ShadowlabError
from shadowlab.twocopy.data import BellData

_CIRCUIT_NAME = "shadowlab_two_copy"


def two_copy_circuit_qiskit(state: Any, *, vector_preparation: str = "state_preparation") -> Any:
    """A Qiskit ``QuantumCircuit`` on ``2n`` qubits: two preparations of ``state``, Bell measurement.

    ``state`` is anything :func:`shadowlab.acquire.qiskit_backend.state_circuit_qiskit` accepts
    (a ``QuantumCircuit``, an OpenQASM file, a spec such as ``"ghz:4"``, a stim circuit, ...);
    ``vector_preparation`` is passed on to it (``"initialize"``: a state vector is one Aer-native
    ``Initialize`` per copy, which gets no gate noise).
    """
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    from shadowlab.acquire.qiskit_backend import state_circuit_qiskit
    from shadowlab.acquire.result_files import QISKIT_REGISTER

    prep = state_circuit_qiskit(state, vector_preparation=vector_preparation)
    n = prep.num_qubits
    qc = QuantumCircuit(QuantumRegister(2 * n, "q"), ClassicalRegister(2 * n, QISKIT_REGISTER), name=_CIRCUIT_NAME,
                        metadata={"shadowlab_two_copy_n": n})
    qc.compose(prep, qubits=list(range(n)), inplace=True)
    qc.compose(prep, qubits=list(range(n, 2 * n)), inplace=True)
    qc.barrier()
    for k in range(n):
        qc.cx(k, n + k)
    qc.h(list(range(n)))
    qc.measure(list(range(2 * n)), list(range(2 * n)))
    return qc


def run_two_copy_qiskit(state: Any, shots: int, *, seed: int = 0, noise_model: Any = None,
                        save_to: str | os.PathLike[str] | None = None) -> BellData:
    """Run the two-copy circuit on Qiskit Aer's ``SamplerV2`` (seeded).

    ``noise_model``: ``None``; a :class:`shadowlab.acquire.noise.NoiseModel` or a spec dict
    :meth:`~shadowlab.acquire.noise.NoiseModel.from_spec` reads (``{"depolarizing": 0.01,
    "readout": 0.02}``), converted with
    :func:`~shadowlab.acquire.qiskit_backend.noise_model_from_spec` (stim's ``DEPOLARIZE1(p)``
    after every one-qubit gate, ``DEPOLARIZE2(p2)`` after every two-qubit gate -- the
    preparations', the CNOTs and the Hadamards -- and the readout flips; per-qubit readout lists
    have ``2n`` entries); or a ``qiskit_aer.noise.NoiseModel`` passed through. A state vector is
    prepared by one ``Initialize`` per copy, which gets no gate noise (as on Braket,
    :func:`run_two_copy_braket`), so the same model means the same on both back ends.

    ``save_to`` also writes the per-shot bit strings as a shadowlab Qiskit result file, which
    :func:`read_two_copy_results` reads back to the same data.
    """
    from shadowlab.acquire.qiskit_backend import _require_qiskit

    _require_qiskit("run_two_copy_qiskit", aer=True)
    from qiskit import transpile
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2

    from shadowlab.acquire.result_files import QISKIT_REGISTER, write_qiskit_results

    if shots < 1:
        raise ShadowlabError(f"shots must be >= 1, got {shots}")
    two_copy = two_copy_circuit_qiskit(state, vector_preparation="initialize")
    model, recorded = _aer_noise(noise_model, two_copy.num_qubits)
    simulator = AerSimulator(**({"noise_model": model} if model is not None else {}))
    circuit = transpile(two_copy, backend=simulator, optimization_level=0, seed_transpiler=0)
    result = SamplerV2.from_backend(simulator, seed=int(seed)).run([(circuit, None, int(shots))]).result()
    bits = getattr(result[0].data, QISKIT_REGISTER)
    rows = bits.to_bool_array(order="little").astype(np.uint8)
    meta = {"source": "qiskit-aer", "seed": int(seed), "noise_model": recorded}
    if save_to is not None:
        write_qiskit_results(save_to, [{"name": circuit.name, "num_bits": rows.shape[1],
                                        "bitstrings": bits.get_bitstrings()}], metadata=meta)
    return BellData.from_bits(rows, meta)


def _shadowlab_noise(noise: Any) -> Any:
    """A shadowlab ``NoiseModel`` from one or a spec mapping; ``None`` for anything else."""
    from shadowlab.acquire.noise import NoiseModel

    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, Mapping):
        return NoiseModel.from_spec(noise)
    return None


def _aer_noise(noise_model: Any, n_qubits: int) -> tuple[Any, Any]:
    """(the Aer noise model to simulate, its JSON-serializable record)."""
    if noise_model is None:
        return None, None
    spec = _shadowlab_noise(noise_model)
    if spec is None:
        return noise_model, str(noise_model)
    from shadowlab.acquire.qiskit_backend import noise_model_from_spec

    spec.readout(n_qubits)  # per-qubit lists must cover both copies
    return noise_model_from_spec(spec, n_qubits), spec.record()


def two_copy_circuit_braket(state: Any) -> Any:
    """A Braket ``Circuit`` on ``2n`` qubits: two preparations of ``state``, then CNOT/H per pair.

    Braket measures every qubit at the end (qubit ``j`` is column ``j`` of the measurements).
    """
    from braket.circuits import Circuit

    from shadowlab.acquire.braket_backend import _braket_state

    prep, n, _ = _braket_state(state)
    circuit = Circuit().add_circuit(prep).add_circuit(prep, target=list(range(n, 2 * n)))
    for k in range(n):
        circuit.cnot(k, n + k)
    for k in range(n):
        circuit.h(k)
    return circuit


def run_two_copy_braket(state: Any, shots: int, *, noise: Any = None) -> BellData:
    """Run the two-copy circuit on the Braket local simulator (not seedable: Braket offers no seed).

    ``noise``: ``None``, a :class:`shadowlab.acquire.noise.NoiseModel` or a spec dict
    :meth:`~shadowlab.acquire.noise.NoiseModel.from_spec` reads (``{"depolarizing": 0.01,
    "readout": 0.02}``), with the semantics of :func:`run_two_copy_qiskit`: ``Depolarizing(p)``
    (stim's ``DEPOLARIZE1``, ``p/3`` per Pauli) after every one-qubit gate,
    ``TwoQubitDepolarizing(p2)`` (``DEPOLARIZE2``, ``p2/15`` per Pauli pair) after every
    two-qubit gate (the preparations', the CNOTs and the Hadamards), none after a state
    vector's preparation ``unitary``, and the readout flips (``p01``, ``p10``) as a Kraus
    channel just before each measurement. Noise selects the density-matrix simulator.
    """
    from shadowlab.acquire.braket_backend import _gate_noise_by_arity, _readout_noise, _require_braket

    _require_braket("run_two_copy_braket")
    from braket.devices import LocalSimulator

    if shots < 1:
        raise ShadowlabError(f"shots must be >= 1, got {shots}")
    spec = None if noise is None else _shadowlab_noise(noise)
    if noise is not None and spec is None:
        raise ShadowlabError("noise must be a shadowlab.acquire.noise.NoiseModel or a spec dict such as "
                             f"{{'depolarizing': 0.01, 'readout': 0.02}}, got {type(noise).__name__}")
    circuit = two_copy_circuit_braket(state)
    device = "braket_sv"
    if spec is not None and not spec.is_noiseless:
        n_total = circuit.qubit_count
        circuit = _gate_noise_by_arity(circuit, float(spec.depolarizing), float(spec.p2))
        circuit = _readout_noise(circuit, *spec.readout(n_total))
        device = "braket_dm"
    result = LocalSimulator(device).run(circuit, shots=int(shots)).result()
    measured = [int(q) for q in result.measured_qubits]
    if sorted(measured) != list(range(circuit.qubit_count)):
        raise ShadowlabError(f"the Braket result measured qubits {measured}, expected each of "
                             f"0..{circuit.qubit_count - 1}")
    arr = np.asarray(result.measurements, dtype=np.uint8)
    rows = np.empty_like(arr)
    rows[:, measured] = arr
    return BellData.from_bits(rows, {"source": "braket-local", "device": device,
                                     "noise": None if spec is None else spec.record(), "seeded": False})


def write_two_copy_qasm(state: Any, path: str | os.PathLike[str], *, force: bool = False) -> int:
    """Write the two-copy circuit as OpenQASM 3 (through Qiskit); returns the qubits per copy."""
    from qiskit import qasm3

    from shadowlab.atomic import atomic_path

    qc = two_copy_circuit_qiskit(state)
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(qasm3.dumps(qc))
    return qc.num_qubits // 2


def read_two_copy_results(path: str | os.PathLike[str], n_qubits: int, *, fmt: str = "auto") -> BellData:
    """Bell data from saved results of the two-copy circuit (``n_qubits`` per copy).

    ``fmt``: ``"qiskit"`` (any Qiskit result file :func:`read_qiskit_results` reads),
    ``"braket"`` (``GateModelTaskResult`` JSON: a file, a list in one file or a directory) or
    ``"auto"`` (Braket if the JSON names the Braket schema, else Qiskit).
    """
    from shadowlab.acquire.result_files import BRAKET_RESULT_SCHEMA, read_braket_bits, read_qiskit_bits

    if n_qubits < 1:
        raise ShadowlabError(f"qubits per copy must be >= 1, got {n_qubits}")
    p = Path(path)
    if not p.exists():
        raise ShadowlabError(f"{p}: no such file or directory")
    if fmt == "auto" and p.is_dir():
        fmt = "braket"
    elif fmt == "auto":
        with p.open("rb") as fh:  # the head of the file is enough to tell
            head = fh.read(4096).decode("utf-8", errors="replace")
        fmt = "braket" if BRAKET_RESULT_SCHEMA in head else "qiskit"
    if fmt == "qiskit":
        bits = read_qiskit_bits(p, 2 * n_qubits)
    elif fmt == "braket":
        bits = read_braket_bits(p, 2 * n_qubits)
    else:
        raise ShadowlabError(f"unknown result format {fmt!r}; expected auto, qiskit or braket")
    return BellData.from_bits(bits, {"source": f"imported {fmt} results", "file": str(p)})
