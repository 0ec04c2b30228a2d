"""Tests of the result-file importers (shadowlab.acquire.result_files): every Qiskit and Braket
layout, bit order, count expansion, and an error naming the file for every mismatch."""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shadowlab.acquire.result_files import (
    QISKIT_FORMAT,
    braket_record_outcomes,
    read_braket_results,
    read_qiskit_results,
    setting_circuit_name,
    write_braket_results,
    write_qiskit_results,
)
from shadowlab.errors import InputFormatError, ShadowlabError
from shadowlab.plan.scheme import Scheme

# Two settings on three qubits; qubit 0 is the RIGHTMOST character of a Qiskit bit string.
SCHEME = Scheme.from_labels(["XYZ", "ZZX"], repeats=[3, 2])


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


# ------------------------------------------------------------------------------------------ Qiskit


def test_counts_list_little_endian_and_sorted_expansion(tmp_path: Path) -> None:
    path = write(tmp_path / "counts.json", [{"001": 2, "110": 1}, {"100": 2}])
    out = read_qiskit_results(path, SCHEME)
    # Sorted by bit string: "001" (qubit 0 = 1) twice, then "110" (qubits 1 and 2 = 1).
    assert out.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 1]]
    assert out.dtype == np.uint8
    # Keys in another order, hex keys, spaces: the same expansion.
    again = write(tmp_path / "again.json", [{"110": 1, "0x1": 2}, {"1 00": 2}])
    assert np.array_equal(read_qiskit_results(again, SCHEME), out)
    shots = write(tmp_path / "shots.json", [["110", "001", "001"], ["0x4", "0x4"]])
    assert read_qiskit_results(shots, SCHEME).tolist()[:3] == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]


def result_dict(names: list[str], memory: list[list[str]] | None, counts: list[dict[str, int]] | None,
                bits: int = 3) -> dict[str, Any]:
    results = []
    for i, name in enumerate(names):
        data: dict[str, Any] = {}
        if counts is not None:
            data["counts"] = counts[i]
        if memory is not None:
            data["memory"] = memory[i]
        shots = len(memory[i]) if memory is not None else sum(counts[i].values())
        results.append({"shots": shots, "success": True, "data": data, "meas_level": 2,
                        "header": {"name": name, "memory_slots": bits, "creg_sizes": [["meas", bits]]}})
    return {"backend_name": "test", "success": True, "results": results}


def test_result_dict_memory_keeps_shot_order(tmp_path: Path) -> None:
    memory = [["0x1", "0x6", "0x1"], ["0x4", "0x0"]]
    counts = [{"0x1": 2, "0x6": 1}, {"0x4": 1, "0x0": 1}]
    path = write(tmp_path / "result.json", result_dict(["shadowlab_0_XYZ", "shadowlab_1_ZZX"], memory, counts))
    assert read_qiskit_results(path, SCHEME).tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]]
    counts_only = write(tmp_path / "counts_only.json", result_dict(["shadowlab_0_XYZ", "shadowlab_1_ZZX"], None,
                                                                   counts))
    assert read_qiskit_results(counts_only, SCHEME).tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0],
                                                                  [0, 0, 1]]
    wrapped = write(tmp_path / "wrapped.json", {"__type__": "Result", "__value__": json.loads(path.read_text())})
    assert np.array_equal(read_qiskit_results(wrapped, SCHEME), read_qiskit_results(path, SCHEME))
    # A later slice of a plan: indices start at an offset but stay consecutive.
    offset = write(tmp_path / "offset.json", result_dict(["shadowlab_40_XYZ", "shadowlab_41_ZZX"], memory, None))
    assert read_qiskit_results(offset, SCHEME).shape == (5, 3)


def test_own_format_roundtrip(tmp_path: Path) -> None:
    pubs = [{"name": "shadowlab_0_XYZ", "num_bits": 3, "bitstrings": ["011", "100", "111"]},
            {"name": "shadowlab_1_ZZX", "num_bits": 3, "counts": {"001": 2}}]
    path = tmp_path / "own.json"
    write_qiskit_results(path, pubs, metadata={"backend": "test"})
    doc = json.loads(path.read_text())
    assert doc["format"] == QISKIT_FORMAT and doc["pubs"][0]["shots"] == 3 and doc["metadata"] == {"backend": "test"}
    assert read_qiskit_results(path, SCHEME).tolist() == [[1, 1, 0], [0, 0, 1], [1, 1, 1], [1, 0, 0], [1, 0, 0]]
    with pytest.raises(ShadowlabError, match="already exists"):
        write_qiskit_results(path, pubs)


def encode_ndarray(a: np.ndarray) -> dict[str, str]:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return {"__type__": "ndarray", "__value__": base64.standard_b64encode(zlib.compress(buf.getvalue())).decode()}


def runtime_doc(rows_per_pub: list[np.ndarray], num_bits: int, register: str = "meas",
                metadata: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A SamplerV2 PrimitiveResult as RuntimeEncoder writes it (BitArray: packed big-endian bytes)."""
    pubs = []
    for i, rows in enumerate(rows_per_pub):
        n_bytes = (num_bits + 7) // 8
        padded = np.zeros((rows.shape[0], n_bytes * 8), dtype=np.uint8)
        padded[:, n_bytes * 8 - num_bits:] = rows[:, ::-1]  # bit string order: highest bit first
        packed = np.packbits(padded, axis=1)
        bit_array = {"__type__": "BitArray", "__value__": {"array": encode_ndarray(packed), "num_bits": num_bits}}
        pubs.append({"__type__": "SamplerPubResult", "__value__": {
            "data": {"__type__": "DataBin", "__value__": {"field_names": [register], "shape": [],
                                                           "fields": {register: bit_array}}},
            "metadata": (metadata or [{}] * len(rows_per_pub))[i]}})
    return {"__type__": "PrimitiveResult", "__value__": {"pub_results": pubs, "metadata": {"version": 2}}}


def test_runtime_encoder_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scheme = Scheme.from_labels(["XYZZXYZZXY", "ZZZZZZZZZZ"], repeats=[6, 4])
    rows = [rng.integers(0, 2, (6, 10), dtype=np.uint8), rng.integers(0, 2, (4, 10), dtype=np.uint8)]
    path = write(tmp_path / "runtime.json", runtime_doc(rows, 10, register="c"))
    assert np.array_equal(read_qiskit_results(path, scheme), np.concatenate(rows))
    meta = [{"circuit_metadata": {"shadowlab_index": 0, "shadowlab_setting": "XYZZXYZZXY"}},
            {"circuit_metadata": {"shadowlab_index": 1, "shadowlab_setting": "ZZZZZZZZZX"}}]
    wrong = write(tmp_path / "wrong.json", runtime_doc(rows, 10, metadata=meta))
    with pytest.raises(InputFormatError, match=r"wrong\.json.*shadowlab_1_ZZZZZZZZZX.*ZZZZZZZZZZ"):
        read_qiskit_results(wrong, scheme)
    assert np.array_equal(read_qiskit_results(wrong, scheme, check_circuits=False), np.concatenate(rows))
    bits = write(tmp_path / "bits.json", runtime_doc([r[:, :9] for r in rows], 9))
    with pytest.raises(InputFormatError, match=r"bits\.json.*9 classical bits.*10 qubits"):
        read_qiskit_results(bits, scheme)


def test_qiskit_errors_name_the_file(tmp_path: Path) -> None:
    memory = [["0x1", "0x6", "0x1"], ["0x4", "0x0"]]
    names = write(tmp_path / "names.json", result_dict(["shadowlab_0_XYZ", "shadowlab_1_ZZZ"], memory, None))
    with pytest.raises(InputFormatError, match=r"names\.json: results\[1\].*'shadowlab_1_ZZZ'.*ZZX"):
        read_qiskit_results(names, SCHEME)
    assert read_qiskit_results(names, SCHEME, check_circuits=False).shape == (5, 3)
    index = write(tmp_path / "index.json", result_dict(["shadowlab_0_XYZ", "shadowlab_2_ZZX"], memory, None))
    with pytest.raises(InputFormatError, match="expected circuit 'shadowlab_1_ZZX'"):
        read_qiskit_results(index, SCHEME)
    foreign = write(tmp_path / "foreign.json", result_dict(["circuit-17", "circuit-18"], memory, None))
    with pytest.raises(InputFormatError, match="not a shadowlab setting circuit name"):
        read_qiskit_results(foreign, SCHEME)
    qubits = write(tmp_path / "qubits.json", result_dict(["shadowlab_0_XYZ", "shadowlab_1_ZZX"],
                                                         [["0x1"] * 3, ["0x4"] * 2], None, bits=4))
    with pytest.raises(InputFormatError, match=r"qubits\.json.*4 classical bits.*3 qubits"):
        read_qiskit_results(qubits, SCHEME)
    shots = write(tmp_path / "shots.json", [{"001": 3}, {"100": 3}])
    with pytest.raises(InputFormatError, match=r"shots\.json: item \[1\]: 3 shots.*setting 1 \(ZZX\) 2 times"):
        read_qiskit_results(shots, SCHEME)
    count = write(tmp_path / "count.json", [{"001": 3}])
    with pytest.raises(InputFormatError, match=r"count\.json.*1 circuits.*2 settings"):
        read_qiskit_results(count, SCHEME)
    width = write(tmp_path / "width.json", [{"0001": 3}, {"100": 2}])
    with pytest.raises(InputFormatError, match=r"width\.json.*'0001' has 4 bits.*3 qubits"):
        read_qiskit_results(width, SCHEME)
    big = write(tmp_path / "big.json", [{"0x8": 3}, {"100": 2}])
    with pytest.raises(InputFormatError, match="more than 3 bits"):
        read_qiskit_results(big, SCHEME)
    declared = result_dict(["shadowlab_0_XYZ", "shadowlab_1_ZZX"], memory, None)
    declared["results"][0]["shots"] = 4
    with pytest.raises(InputFormatError, match="declares 4 shots but holds 3"):
        read_qiskit_results(write(tmp_path / "declared.json", declared), SCHEME)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"001": 3},\n {"100": }]')
    with pytest.raises(InputFormatError, match=r"broken\.json:2: not valid JSON"):
        read_qiskit_results(broken, SCHEME)
    with pytest.raises(InputFormatError, match="not a recognized Qiskit result file"):
        read_qiskit_results(write(tmp_path / "other.json", {"foo": 1}), SCHEME)
    with pytest.raises(ShadowlabError, match="no such file"):
        read_qiskit_results(tmp_path / "missing.json", SCHEME)


def test_real_aer_result_dict_and_runtime_encoding(tmp_path: Path) -> None:
    pytest.importorskip("qiskit_aer")
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2

    from shadowlab.acquire.qiskit_backend import setting_circuits_qiskit

    # |1> |-i> |+> |0> |-> in Z Y X Z X: always 1 1 0 0 1 (qubit 0 first).
    scheme = Scheme.from_labels(["ZYXZX", "ZYXZX"], repeats=[5, 3])
    circuits = setting_circuits_qiskit("product:1l+0-", scheme.settings)
    sim = AerSimulator()
    from qiskit import transpile

    result = sim.run(transpile(circuits, sim), shots=5, memory=True, seed_simulator=1).result().to_dict()
    result["results"][1]["data"]["memory"] = result["results"][1]["data"]["memory"][:3]
    result["results"][1]["shots"] = 3
    path = tmp_path / "aer.json"
    path.write_text(json.dumps(result, default=str))
    assert np.array_equal(read_qiskit_results(path, scheme), np.tile([1, 1, 0, 0, 1], (8, 1)))
    # SamplerV2 result, encoded the way RuntimeEncoder does.
    pubs = SamplerV2(seed=1).run([(transpile(c, sim), None, int(k)) for c, k in zip(circuits, scheme.repeats,
                                                                                   strict=True)]).result()
    doc = {"__type__": "PrimitiveResult", "__value__": {"metadata": {}, "pub_results": [
        {"__type__": "SamplerPubResult", "__value__": {"metadata": {"circuit_metadata": p.metadata["circuit_metadata"]},
         "data": {"__type__": "DataBin", "__value__": {"field_names": ["meas"], "shape": [], "fields": {"meas": {
             "__type__": "BitArray", "__value__": {"array": encode_ndarray(p.data.meas.array), "num_bits": 5}}}}}}}
        for p in pubs]}}
    assert np.array_equal(read_qiskit_results(write(tmp_path / "runtime.json", doc), scheme),
                          np.tile([1, 1, 0, 0, 1], (8, 1)))


# ------------------------------------------------------------------------------------------ Braket


def braket_record(setting: str, rows: list[list[int]], measured: list[int] | None = None, *,
                  barrier: bool = True, shots: int | None = None) -> dict[str, Any]:
    n = len(setting)
    measured = list(range(n)) if measured is None else measured
    lines = ["OPENQASM 3.0;", f"bit[{n}] b;", f"qubit[{n}] q;", "h q[0];", "#pragma braket noise bit_flip(0.1) q[0]"]
    if barrier:
        lines.append("barrier " + ", ".join(f"q[{q}]" for q in range(n)) + ";")
    for q, letter in enumerate(setting):
        if letter == "Y":
            lines.append(f"si q[{q}];")
    for q, letter in enumerate(setting):
        if letter in "XY":
            lines.append(f"h q[{q}];")
    lines += [f"b[{k}] = measure q[{q}];" for k, q in enumerate(measured)]
    return {
        "braketSchemaHeader": {"name": "braket.task_result.gate_model_task_result", "version": "1"},
        "measurements": rows,
        "measuredQubits": measured,
        "taskMetadata": {"braketSchemaHeader": {"name": "braket.task_result.task_metadata", "version": "1"},
                         "id": "t", "shots": len(rows) if shots is None else shots, "deviceId": "test"},
        "additionalMetadata": {"action": {"braketSchemaHeader": {"name": "braket.ir.openqasm.program",
                                                                 "version": "1"}, "source": "\n".join(lines)}},
    }


def test_braket_measured_qubits_mapping_and_layouts(tmp_path: Path) -> None:
    # measuredQubits [2, 0, 1]: column 0 is qubit 2.
    first = braket_record("XYZ", [[1, 0, 0], [0, 1, 0], [1, 1, 1]], measured=[2, 0, 1])
    second = braket_record("ZZX", [[0, 0, 1], [1, 0, 0]])
    expected = [[0, 0, 1], [1, 0, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]]
    write_braket_results(tmp_path / "dir", [first, second])
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["result_000000.json", "result_000001.json"]
    assert read_braket_results(tmp_path / "dir", SCHEME).tolist() == expected
    write_braket_results(tmp_path / "list.json", [first, second])
    assert read_braket_results(tmp_path / "list.json", SCHEME).tolist() == expected
    files = [write(tmp_path / "task_10.json", second), write(tmp_path / "task_2.json", first)]
    assert read_braket_results(files[::-1], SCHEME).tolist() == expected
    natural = tmp_path / "natural"
    natural.mkdir()
    write(natural / "task_10.json", second)
    write(natural / "task_2.json", first)
    assert read_braket_results(natural, SCHEME).tolist() == expected  # task_2 before task_10
    assert braket_record_outcomes(first, 3).tolist() == expected[:3]


def test_braket_errors_name_the_file(tmp_path: Path) -> None:
    good = braket_record("XYZ", [[1, 0, 0]] * 3)
    second = braket_record("ZZX", [[0, 0, 1]] * 2)
    qubits = write(tmp_path / "qubits.json", [good, braket_record("ZZXZ", [[0, 0, 1, 0]] * 2)])
    with pytest.raises(InputFormatError, match=r"qubits\.json\[1\]: measured qubits \[0, 1, 2, 3\].*3 qubits"):
        read_braket_results(qubits, SCHEME)
    shots = write(tmp_path / "shots.json", [good, braket_record("ZZX", [[0, 0, 1]] * 3)])
    with pytest.raises(InputFormatError, match=r"shots\.json\[1\]: 3 shots.*setting 1 \(ZZX\) 2 times"):
        read_braket_results(shots, SCHEME)
    program = write(tmp_path / "program.json", [good, braket_record("ZXX", [[0, 0, 1]] * 2)])
    with pytest.raises(InputFormatError, match=r"program\.json\[1\].*\['h'\] to qubit 1.*Z basis"):
        read_braket_results(program, SCHEME)
    assert read_braket_results(program, SCHEME, check_circuits=False).shape == (5, 3)
    no_barrier = write(tmp_path / "nobarrier.json", [good, braket_record("ZZX", [[0, 0, 1]] * 2, barrier=False)])
    with pytest.raises(InputFormatError, match="no barrier"):
        read_braket_results(no_barrier, SCHEME)
    declared = write(tmp_path / "declared.json", [good, braket_record("ZZX", [[0, 0, 1]] * 2, shots=5)])
    with pytest.raises(InputFormatError, match="taskMetadata says 5 shots"):
        read_braket_results(declared, SCHEME)
    count = write(tmp_path / "count.json", [good])
    with pytest.raises(InputFormatError, match=r"count\.json.*1 task results.*2 settings"):
        read_braket_results(count, SCHEME)
    no_shots = dict(second, measurements=None)
    with pytest.raises(InputFormatError, match="no per-shot 'measurements'"):
        read_braket_results(write(tmp_path / "noshots.json", [good, no_shots]), SCHEME)
    values = dict(second, measurements=[[0, 2, 1], [0, 0, 1]])
    with pytest.raises(InputFormatError, match="only 0 and 1"):
        read_braket_results(write(tmp_path / "values.json", [good, values]), SCHEME)
    kind = dict(second, braketSchemaHeader={"name": "braket.task_result.annealing_task_result", "version": "1"})
    with pytest.raises(InputFormatError, match="not a Braket gate-model task result"):
        read_braket_results(write(tmp_path / "kind.json", [good, kind]), SCHEME)
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(InputFormatError, match=r"broken\.json:1: not valid JSON"):
        read_braket_results(broken, SCHEME)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShadowlabError, match=r"no \*\.json result files"):
        read_braket_results(tmp_path / "empty", SCHEME)


def test_setting_circuit_name() -> None:
    assert setting_circuit_name(3, "XYZ") == "shadowlab_3_XYZ"
