"""Tests of the Qiskit back end (shadowlab.acquire.qiskit_backend): bit order, GHZ estimates from
three kinds of input, saved results, seeding, noise pass-through and bad inputs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import stim

from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import PreparedState, prepare_state
from shadowlab.acquire.statevector import exact_pauli_expectations
from shadowlab.errors import InputFormatError, ShadowlabError, StateError
from shadowlab.plan.scheme import Scheme, uniform_scheme

pytest.importorskip("qiskit")
pytest.importorskip("qiskit_aer")

from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from shadowlab.acquire.qiskit_backend import (
    QiskitAerBackend,
    setting_circuits_qiskit,
    state_circuit_qiskit,
)
from shadowlab.acquire.result_files import read_qiskit_results
from shadowlab.data.dataset import ShadowData
from shadowlab.estimate.pauli import estimate_paulis
from shadowlab.paulis import PauliSum

GHZ_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
h q[0];
cx q[0], q[1];
cx q[1], q[2];
cx q[2], q[3];
measure q -> c;
"""

GHZ_QASM3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[4] q;
bit[4] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
cx q[2], q[3];
c = measure q;
"""

OBSERVABLES = ["ZZII", "XXXX", "YYXX", "ZIIZ", "XIII", "YYYY", "XYXY", "IZZI", "ZZZZ", "IIYI", "XXII"]

# Product state |1> |-i> |+> |0> |->: measured in Z Y X Z X every qubit is deterministic and the
# outcome pattern 1 1 0 0 1 is not a palindrome, so a reversed qubit order would show.
PRODUCT = "product:1l+0-"
PRODUCT_SETTING = "ZYXZX"
PRODUCT_OUTCOME = [1, 1, 0, 0, 1]


def product_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(5)
    qc.x(0)
    qc.h(1)
    qc.sdg(1)  # Sdg |+> = |-i>
    qc.h(2)
    qc.x(4)
    qc.h(4)  # H |1> = |->
    return qc


def product_stim() -> PreparedState:
    return PreparedState("stim product", 5, circuit=stim.Circuit("X 0\nH 1\nS_DAG 1\nH 2\nX 4\nH 4"))


@pytest.fixture(scope="module")
def ghz_scheme() -> Scheme:
    return uniform_scheme(4, 300, np.random.default_rng(2024), repeats=10)


def check_ghz(scheme: Scheme, outcomes: np.ndarray) -> None:
    assert outcomes.shape == (scheme.n_snapshots, 4) and outcomes.dtype == np.uint8
    data = ShadowData.from_settings(scheme.settings, scheme.repeats, outcomes)
    observables = PauliSum.from_labels(OBSERVABLES)
    result = estimate_paulis(data, observables)
    exact = exact_pauli_expectations(prepare_state("ghz:4", simulator="statevector").statevector, observables)
    assert np.all(result.stderr > 0)
    assert np.all(np.abs(result.estimate - exact) <= 5 * result.stderr), (result.estimate, exact, result.stderr)


def parity_expectation(outcomes: np.ndarray) -> float:
    """Mean eigenvalue of the measured Pauli string (product of the per-qubit +-1)."""
    return float(np.mean(1 - 2 * (outcomes.astype(np.int64).sum(axis=1) % 2)))


# ------------------------------------------------------------------------------------------ bit order


@pytest.mark.parametrize("source", ["prepared", "circuit", "stim", "qasm"])
def test_product_state_bit_order(source: str, tmp_path: Path) -> None:
    if source == "prepared":
        state = prepare_state(PRODUCT)
    elif source == "circuit":
        state = product_circuit()
    elif source == "stim":
        state = product_stim()
    else:
        path = tmp_path / "product.qasm"
        path.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\nx q[0];\nh q[1];\nsdg q[1];\nh q[2];\n'
                        "x q[4];\nh q[4];\n")
        state = path
    backend = QiskitAerBackend(state)
    scheme = Scheme.from_labels([PRODUCT_SETTING, "ZZZZZ", PRODUCT_SETTING], repeats=[7, 4, 5])
    out = backend.run_batch(scheme.settings, scheme.repeats, seed=3)
    assert out.shape == (16, 5)
    assert np.array_equal(out[:7], np.tile(PRODUCT_OUTCOME, (7, 1)))
    assert np.array_equal(out[11:], np.tile(PRODUCT_OUTCOME, (5, 1)))
    # Z basis: qubit 0 is |1>, qubit 3 is |0>; the others are random.
    assert np.all(out[7:11, 0] == 1) and np.all(out[7:11, 3] == 0)


@pytest.mark.parametrize("spec", ["random:3", "tfim:4", "w:3"])
def test_statevector_preparation_keeps_qubit_order(spec: str) -> None:
    state = prepare_state(spec, seed=5)
    qc = state_circuit_qiskit(state)
    n = state.n_qubits
    little = Statevector(qc).data
    ours = little.reshape((2,) * n).transpose(tuple(range(n))[::-1]).ravel()
    assert abs(np.vdot(state.statevector, ours)) == pytest.approx(1.0, abs=1e-9)


def test_stim_translation_all_gates() -> None:
    text = ("H 0 1 2\nS 0\nSQRT_Y 1\nH_YZ 2\nC_XYZ 0\nCX 0 1\nXCZ 1 2\nCY 2 0\nISWAP 0 2\nSQRT_XX 1 2\n"
            "SWAP 0 1\nS_DAG 2\nSQRT_X_DAG 1\nREPEAT 2 {\n  CZ 0 2\n  SQRT_X 0\n}\nTICK\n")
    circuit = stim.Circuit(text)
    qc = state_circuit_qiskit(PreparedState("mix", 3, circuit=circuit))
    little = Statevector(qc).data
    expected = stim.TableauSimulator()
    expected.do(circuit)
    ref = expected.state_vector(endian="little").astype(np.complex128)
    assert abs(np.vdot(ref, little)) == pytest.approx(1.0, abs=1e-6)


def test_stim_noise_refused() -> None:
    with pytest.raises(ShadowlabError, match="noise"):
        state_circuit_qiskit(PreparedState("noisy", 2, circuit=stim.Circuit("H 0\nDEPOLARIZE1(0.1) 0\nCX 0 1")))


# ------------------------------------------------------------------------------------------ GHZ


def test_ghz_prepared_state(ghz_scheme: Scheme, tmp_path: Path) -> None:
    backend = QiskitAerBackend(prepare_state("ghz:4"))
    saved = tmp_path / "ghz.json"
    out = backend.run_batch(ghz_scheme.settings, ghz_scheme.repeats, seed=11, save_to=saved)
    check_ghz(ghz_scheme, out)
    assert np.array_equal(read_qiskit_results(saved, ghz_scheme), out)
    with pytest.raises(ShadowlabError, match="already exists"):
        backend.run_batch(ghz_scheme.settings, ghz_scheme.repeats, seed=11, save_to=saved)


@pytest.mark.parametrize("version", [2, 3])
def test_ghz_qasm_file(ghz_scheme: Scheme, tmp_path: Path, version: int) -> None:
    path = tmp_path / f"ghz{version}.qasm"
    path.write_text(GHZ_QASM2 if version == 2 else GHZ_QASM3)
    backend = QiskitAerBackend(path)
    assert backend.n_qubits == 4 and backend.describe()["state"] == str(path)
    check_ghz(ghz_scheme, backend.run_batch(ghz_scheme.settings, ghz_scheme.repeats, seed=12))


def test_ghz_native_circuit(ghz_scheme: Scheme) -> None:
    qc = QuantumCircuit(4, 4)
    qc.h(0)
    for q in range(3):
        qc.cx(q, q + 1)
    qc.measure(range(4), range(4))
    check_ghz(ghz_scheme, QiskitAerBackend(qc).run_batch(ghz_scheme.settings, ghz_scheme.repeats, seed=13))


# ------------------------------------------------------------------------------------------ seeding


def test_seeded_reproducibility() -> None:
    scheme = Scheme.from_labels(["XXXX", "YZXY", "XXXX", "ZZYX"], repeats=[30, 10, 30, 20])
    backend = QiskitAerBackend("ghz:4")
    a = backend.run_batch(scheme.settings, scheme.repeats, seed=7)
    b = backend.run_batch(scheme.settings, scheme.repeats, seed=7)
    again = QiskitAerBackend("ghz:4").run_batch(scheme.settings, scheme.repeats, seed=7)
    assert np.array_equal(a, b) and np.array_equal(a, again)
    assert not np.array_equal(a, backend.run_batch(scheme.settings, scheme.repeats, seed=8))
    offset = QiskitAerBackend("ghz:4", seed_offset=1).run_batch(scheme.settings, scheme.repeats, seed=7)
    assert not np.array_equal(a, offset)
    # Two settings with the same repeat count run in one sampler call with their own streams.
    assert not np.array_equal(a[:30], a[40:70])
    # GHZ in XXXX: even parity in every shot.
    assert np.all(a[:30].sum(axis=1) % 2 == 0) and np.all(a[40:70].sum(axis=1) % 2 == 0)


# ------------------------------------------------------------------------------------------ noise


def test_noise_model_passes_through() -> None:
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["h", "sdg"])
    noise.add_all_qubit_quantum_error(depolarizing_error(0.1, 2), ["cx"])
    noise.add_all_qubit_readout_error(ReadoutError([[0.95, 0.05], [0.05, 0.95]]))
    scheme = Scheme.from_labels(["XXXX"], repeats=[4000])
    ideal = QiskitAerBackend("ghz:4").run_batch(scheme.settings, scheme.repeats, seed=1)
    noisy_backend = QiskitAerBackend("ghz:4", noise_model=noise)
    noisy = noisy_backend.run_batch(scheme.settings, scheme.repeats, seed=1)
    ideal_value = parity_expectation(ideal)
    noisy_value = parity_expectation(noisy)
    se = np.sqrt((1 - noisy_value**2) / (scheme.n_snapshots - 1))
    assert ideal_value == 1.0
    assert noisy_value < 1 - 10 * se and noisy_value < 0.8
    summary = noisy_backend.describe()["noise_model"]
    assert "cx" in summary["noise_instructions"] and "measure" in summary["noise_instructions"]
    assert QiskitAerBackend("ghz:4").describe()["noise_model"] is None


# ------------------------------------------------------------------------------------------ circuits


def test_setting_circuits_names_rotations_and_measurements() -> None:
    circuits = setting_circuits_qiskit("ghz:3", np.array([[0, 1, 2], [2, 2, 2]], dtype=np.uint8), first_index=5)
    assert [c.name for c in circuits] == ["shadowlab_5_XYZ", "shadowlab_6_ZZZ"]
    assert circuits[0].metadata == {"shadowlab_index": 5, "shadowlab_setting": "XYZ"}
    first = circuits[0]
    after_barrier = [i for i, inst in enumerate(first.data) if inst.operation.name == "barrier"][-1]
    ops = [(inst.operation.name, [first.find_bit(q).index for q in inst.qubits],
            [first.find_bit(c).index for c in inst.clbits]) for inst in first.data[after_barrier + 1:]]
    assert ("sdg", [1], []) in ops and ("h", [0], []) in ops and ("h", [1], []) in ops
    assert ops.index(("sdg", [1], [])) < ops.index(("h", [1], []))
    assert not any(name in ("h", "sdg") and q == [2] for name, q, _ in ops)
    assert sorted((q[0], c[0]) for name, q, c in ops if name == "measure") == [(0, 0), (1, 1), (2, 2)]
    assert first.cregs[0].name == "meas" and first.num_clbits == 3


def test_terminal_measurements_stripped_mid_circuit_refused() -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    qc.cx(0, 1)
    with pytest.raises(StateError, match="mid-circuit"):
        state_circuit_qiskit(qc)
    reset = QuantumCircuit(1)
    reset.h(0)
    reset.reset(0)
    with pytest.raises(StateError, match="reset"):
        state_circuit_qiskit(reset)
    ok = QuantumCircuit(2, 2)
    ok.h(0)
    ok.measure([0, 1], [0, 1])
    stripped = state_circuit_qiskit(ok)
    assert stripped.num_clbits == 0 and [i.operation.name for i in stripped.data] == ["h"]


def test_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qasm"
    bad.write_text("qreg q[2];\nh q[0];\n")
    with pytest.raises(InputFormatError, match=r"bad\.qasm.*OPENQASM"):
        QiskitAerBackend(bad)
    broken = tmp_path / "broken.qasm"
    broken.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nfoo q[0];\n')
    with pytest.raises(InputFormatError, match=r"broken\.qasm"):
        state_circuit_qiskit(broken)
    with pytest.raises(ShadowlabError, match="no such"):
        state_circuit_qiskit(tmp_path / "missing.qasm")
    backend = QiskitAerBackend("ghz:3")
    with pytest.raises(ShadowlabError, match=r"\(n_settings, 3\)"):
        backend.run_batch(np.zeros((2, 4), dtype=np.uint8), np.array([1, 1]), seed=0)
    with pytest.raises(ShadowlabError, match="repeats"):
        backend.run_batch(np.zeros((2, 3), dtype=np.uint8), np.array([1, 0]), seed=0)
    with pytest.raises(ShadowlabError, match="seed"):
        backend.run_batch(np.zeros((1, 3), dtype=np.uint8), np.array([1]), seed=-1)
    with pytest.raises(ShadowlabError, match="NoiseModel"):
        QiskitAerBackend("ghz:3", noise_model={"depolarizing": 0.1})


def test_describe_is_json() -> None:
    import json

    info = QiskitAerBackend("ghz:2").describe()
    assert json.loads(json.dumps(info)) == info
    assert info["backend"] == "qiskit-aer" and info["qiskit_version"] and info["qiskit_aer_version"]


# ------------------------------------------------------------------------------------------ extras


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    with pytest.raises(ShadowlabError, match=r"'qiskit' extra: pip install 'shadowlab\[qiskit\]'"):
        QiskitAerBackend("ghz:2")


def test_module_imports_without_qiskit(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("qiskit", "qiskit_aer"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "shadowlab.acquire.qiskit_backend")
    module = importlib.import_module("shadowlab.acquire.qiskit_backend")
    with pytest.raises(ShadowlabError, match="'qiskit' extra"):
        module.state_circuit_qiskit("ghz:2")


# ------------------------------------------------------------------------------------------ shadowlab noise models

# The device of issue 7: 1% depolarizing gates, asymmetric readout (0 -> 1: 5%, 1 -> 0: 15%).
DEVICE = {"depolarizing": 0.01, "readout_p01": 0.05, "readout_p10": 0.15}
# Single u gates preparing the +1 eigenstate of X, Y, Z (|+>, |+i>, |0>) and |1>.
EIGEN_U = {0: (np.pi / 2, 0.0, np.pi), 1: (np.pi / 2, np.pi / 2, np.pi), 2: (0.0, 0.0, 0.0), "1": (np.pi, 0.0, np.pi)}


def device_noise(**changes: float) -> NoiseModel:
    return NoiseModel(**{**DEVICE, **changes})


def product_u(n: int, key: int | str) -> QuantumCircuit:
    """Every qubit prepared by one u gate (so it carries exactly one gate's noise)."""
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.u(*EIGEN_U[key], q)
    return qc


def wrong_rate_bound(observed: float, expected: float, shots: int) -> bool:
    return abs(observed - expected) <= 5 * np.sqrt(expected * (1 - expected) / shots)


def test_measurement_u_angles_match_rotation_convention() -> None:
    from qiskit.quantum_info import Operator

    from shadowlab.acquire.qiskit_backend import measurement_u_angles
    from shadowlab.acquire.statevector import _ROTATION

    x = np.array([[0, 1], [1, 0]])
    for basis in range(3):
        for flip in range(2):
            qc = QuantumCircuit(1)
            qc.u(*measurement_u_angles(basis, flip), 0)
            u = Operator(qc).data
            target = np.linalg.matrix_power(x, flip) @ _ROTATION[basis]
            overlap = np.vdot(target.ravel(), u.ravel()) / 2  # |overlap| = 1 iff equal up to a phase
            assert abs(abs(overlap) - 1) < 1e-12, (basis, flip)
    for key in (0, 1, 2):  # EIGEN_U prepares the +1 eigenstate: R_b u |0> = |0>
        qc = QuantumCircuit(1)
        qc.u(*EIGEN_U[key], 0)
        assert abs((_ROTATION[key] @ Operator(qc).data)[0, 0]) == pytest.approx(1.0)


def test_noise_model_from_spec_semantics() -> None:
    from qiskit_aer.noise import NoiseModel as AerNoiseModel

    from shadowlab.acquire.qiskit_backend import noise_model_from_spec

    model = noise_model_from_spec(device_noise())
    assert isinstance(model, AerNoiseModel)
    assert {"u", "h", "sdg", "x", "id", "cx", "cz", "measure"} <= set(model.noise_instructions)
    readout = model.to_dict()["errors"][-1]
    assert readout["type"] == "roerror"
    np.testing.assert_allclose(readout["probabilities"], [[0.95, 0.05], [0.15, 0.85]])
    # Same model from a spec dict (short names too).
    again = noise_model_from_spec({"depolarizing": 0.01, "p01": 0.05, "p10": 0.15})
    summary = QiskitAerBackend("ghz:2", noise_model=again).describe()["noise_model"]
    # Equal models hash equally (Aer's random error ids are left out), so a resumed run matches.
    assert summary == QiskitAerBackend("ghz:2", noise_model=model).describe()["noise_model"]
    assert summary == QiskitAerBackend("ghz:2", noise_model=device_noise()).describe()["noise_model"]
    per_qubit = NoiseModel(readout_p01=(0.1, 0.0), readout_p10=(0.0, 0.2))
    with pytest.raises(ShadowlabError, match="n_qubits"):
        noise_model_from_spec(per_qubit)
    assert set(noise_model_from_spec(per_qubit, 2).noise_qubits) == {0, 1}
    with pytest.raises(ShadowlabError, match="2 per-qubit values but the data have 3 qubits"):
        QiskitAerBackend("ghz:3", noise_model=per_qubit)


def test_measurement_layer_is_basis_independent() -> None:
    n, shots = 6, 8000
    f = 2 * DEVICE["depolarizing"] / 3  # one depolarizing gate flips a Pauli outcome with 2p/3
    f2 = 2 * f * (1 - f)  # two noisy gates: the preparing u and the measuring u
    expected = f2 * (1 - DEVICE["readout_p10"]) + (1 - f2) * DEVICE["readout_p01"]
    rates = {}
    for basis in range(3):
        backend = QiskitAerBackend(product_u(n, basis), noise_model=device_noise())
        out = backend.run_batch(np.full((1, n), basis, dtype=np.uint8), np.array([shots]), seed=basis)
        rates[basis] = float(out.mean())  # ideal outcome is 0 (+1 eigenstate) on every qubit
        assert wrong_rate_bound(rates[basis], expected, shots * n), (basis, rates[basis], expected)
    # The minimal layer (no gate on Z qubits) would give Z outcomes only the preparation's noise.
    minimal = QiskitAerBackend(product_u(n, 2), noise_model=device_noise(), uniform_measurement_layer=False)
    out = minimal.run_batch(np.full((1, n), 2, dtype=np.uint8), np.array([shots]), seed=9)
    assert wrong_rate_bound(float(out.mean()), f * (1 - 0.15) + (1 - f) * 0.05, shots * n)
    assert minimal.describe()["measurement_layer"] != QiskitAerBackend("ghz:2", noise_model=device_noise()).describe()[
        "measurement_layer"]


def test_ghz_distribution_matches_density_matrix_of_noise_semantics() -> None:
    from shadowlab.acquire.density_matrix import density_matrix_from_stim, depolarizing_kraus, outcome_probabilities

    noise = device_noise()
    state = prepare_state("ghz:4")
    settings = Scheme.from_labels(["XXXX", "ZZZZ", "YYXZ"], repeats=[6000] * 3)
    out = QiskitAerBackend(state, noise_model=noise).run_batch(settings.settings, settings.repeats, seed=4)
    # noise.py's semantics: DEPOLARIZE after every gate of the preparation, one depolarizing
    # gate in the measurement layer, then asymmetric readout of each bit.
    rho = density_matrix_from_stim(noise.state_circuit(state.circuit))
    probs = outcome_probabilities(rho, settings.settings, measurement_channel=depolarizing_kraus(noise.depolarizing))
    confusion = np.array([[0.95, 0.05], [0.15, 0.85]])  # [true bit, read bit]
    read = probs.reshape(3, *(2,) * 4)
    for q in range(4):
        read = np.moveaxis(np.tensordot(read, confusion, axes=([q + 1], [0])), -1, q + 1)
    read = read.reshape(3, 16)
    for g in range(3):
        index = out[g * 6000:(g + 1) * 6000].astype(np.int64) @ (1 << np.arange(3, -1, -1))
        freq = np.bincount(index, minlength=16) / 6000
        se = np.sqrt(read[g] * (1 - read[g]) / 6000)
        assert np.all(np.abs(freq - read[g]) <= 5 * se + 1e-9), (g, freq, read[g])


def test_readout_twirl_symmetrizes_asymmetric_readout() -> None:
    n, shots = 5, 8000
    f = 2 * DEVICE["depolarizing"] / 3
    f2 = 2 * f * (1 - f)
    symmetric = f2 + (1 - 2 * f2) * (DEVICE["readout_p01"] + DEVICE["readout_p10"]) / 2
    rng = np.random.default_rng(2027)
    for key, ideal in ((2, 0), ("1", 1)):  # |0...0> and |1...1>, measured in Z
        twirled = QiskitAerBackend(product_u(n, key), noise_model=device_noise(), readout_twirl=True)
        masks = rng.integers(0, 2, size=(shots, n), dtype=np.uint8)
        out = twirled.run_batch(np.full((1, n), 2, dtype=np.uint8), np.array([shots]), seed=3, twirl=masks)
        assert wrong_rate_bound(float((out != ideal).mean()), symmetric, shots * n)
        plain = QiskitAerBackend(product_u(n, key), noise_model=device_noise())
        raw = plain.run_batch(np.full((1, n), 2, dtype=np.uint8), np.array([shots]), seed=3)
        asymmetric = f2 * 0.85 + (1 - f2) * 0.05 if ideal == 0 else f2 * 0.95 + (1 - f2) * 0.15
        assert wrong_rate_bound(float((raw != ideal).mean()), asymmetric, shots * n)


def test_twirl_masks_recorded_grouped_and_reproducible(tmp_path: Path) -> None:
    import json

    n = 4
    scheme = Scheme.from_labels(["XXXX", "ZZZZ", "YZXY"], repeats=[40, 25, 35])
    masks = np.random.default_rng(1).integers(0, 2, size=(scheme.n_snapshots, n), dtype=np.uint8)
    backend = QiskitAerBackend("ghz:4", noise_model=device_noise(), readout_twirl=True)
    saved = tmp_path / "twirled.json"
    a = backend.run_batch(scheme.settings, scheme.repeats, seed=5, twirl=masks, save_to=saved)
    b = backend.run_batch(scheme.settings, scheme.repeats, seed=5, twirl=masks)
    assert a.shape == (100, n) and np.array_equal(a, b)
    assert not np.array_equal(a, backend.run_batch(scheme.settings, scheme.repeats, seed=6, twirl=masks))
    # Saved strings are the corrected outcomes; the masks are in the metadata.
    assert np.array_equal(read_qiskit_results(saved, scheme), a)
    doc = json.loads(saved.read_text())
    assert doc["metadata"]["readout_twirl_masks"][7] == "".join(map(str, masks[7]))
    info = backend.describe()
    assert info["readout_twirl"] is True and info["noise"]["readout_p10"] == 0.15
    assert info["noise"]["readout_p01"] == 0.05 and json.loads(json.dumps(info)) == info
    assert QiskitAerBackend("ghz:2").describe()["readout_twirl"] is False
    # Without noise, a twirled GHZ in XXXX still has even parity: the masks are undone.
    clean = QiskitAerBackend("ghz:4", readout_twirl=True)
    out = clean.run_batch(scheme.settings[:1], np.array([40]), seed=1, twirl=masks[:40])
    assert np.all(out.sum(axis=1) % 2 == 0) and np.all((out ^ masks[:40]).sum(axis=1) % 2 == masks[:40].sum(1) % 2)
    with pytest.raises(ShadowlabError, match="readout_twirl=True: pass"):
        backend.run_batch(scheme.settings, scheme.repeats, seed=5)
    # Masks given to a back end built without readout_twirl=True are applied all the same.
    plain = QiskitAerBackend("ghz:4", noise_model=device_noise())
    assert np.array_equal(plain.run_batch(scheme.settings, scheme.repeats, seed=5, twirl=masks), a)
    with pytest.raises(ShadowlabError, match=r"\(100, 4\)"):
        backend.run_batch(scheme.settings, scheme.repeats, seed=5, twirl=masks[:10])
    with pytest.raises(ShadowlabError, match="0/1"):
        backend.run_batch(scheme.settings, scheme.repeats, seed=5, twirl=masks * 2)


def test_setting_circuits_uniform_layer_and_twirl() -> None:
    circuits = setting_circuits_qiskit("ghz:3", np.array([[0, 1, 2]], dtype=np.uint8),
                                       twirl=np.array([[0, 1, 1]]), uniform_layer=True)
    qc = circuits[0]
    after = [i for i, inst in enumerate(qc.data) if inst.operation.name == "barrier"][-1]
    layer = [(inst.operation.name, qc.find_bit(inst.qubits[0]).index) for inst in qc.data[after + 1:]]
    assert [q for name, q in layer if name == "u"] == [0, 1, 2]
    assert {name for name, _ in layer} == {"u", "measure"}
    assert qc.metadata["shadowlab_twirl"] == "011"
    minimal = setting_circuits_qiskit("ghz:3", np.array([[0, 1, 2]], dtype=np.uint8), twirl=np.array([[0, 1, 1]]))[0]
    names = [(inst.operation.name, minimal.find_bit(inst.qubits[0]).index) for inst in minimal.data]
    assert ("x", 1) in names and ("x", 2) in names and ("x", 0) not in names


# ------------------------------------------------------------------------------------------ what gets gate noise


def test_statevector_preparation_gets_no_gate_noise() -> None:
    # |10> as a state vector: only the measurement layer's depolarizing gate (flip 2p/3 per
    # qubit) acts, as in shadowlab's simulator and on Braket. A synthesized StatePreparation
    # would add the noise of its u/cx gates (a wrong rate well above 2p/3 at p = 0.3).
    p, shots = 0.3, 6000
    psi = np.zeros(4, dtype=np.complex128)
    psi[2] = 1.0  # qubit 0 (most significant bit) is 1
    backend = QiskitAerBackend(psi, noise_model=NoiseModel(depolarizing=p))
    assert [inst.operation.name for inst in backend._prep.data] == ["initialize"]
    out = backend.run_batch(np.full((1, 2), 2, dtype=np.uint8), np.array([shots]), seed=8)
    wrong = float((out != np.array([1, 0])).mean())
    assert wrong_rate_bound(wrong, 2 * p / 3, 2 * shots), wrong
    scope = backend.describe()["gate_noise_scope"]
    assert scope["state_vector_preparation"] == "one Initialize instruction, no gate noise"
    assert QiskitAerBackend("random:2").describe()["gate_noise_scope"]["state_vector_preparation"] is not None
    # Exported circuits keep a synthesizable StatePreparation.
    assert state_circuit_qiskit(psi).data[0].operation.name == "state_preparation"
    with pytest.raises(ShadowlabError, match="vector_preparation"):
        state_circuit_qiskit(psi, vector_preparation="isometry")


def test_describe_lists_stim_gates_run_as_several_noisy_gates() -> None:
    state = PreparedState("mix", 3, circuit=stim.Circuit("H 0\nSQRT_Y 1\nCX 0 1\nXCZ 1 2\nISWAP 0 2\nC_XYZ 2"))
    scope = QiskitAerBackend(state).describe()["gate_noise_scope"]
    assert scope["stim_gates_as_several_noisy_gates"] == ["C_XYZ", "ISWAP", "SQRT_Y", "XCZ"]
    assert scope["state_vector_preparation"] is None
    assert QiskitAerBackend("ghz:3").describe()["gate_noise_scope"]["stim_gates_as_several_noisy_gates"] == []


# ------------------------------------------------------------------------------------------ twirl grouping
# (shadowlab.acquire.twirl needs no SDK; the tests are here with the back ends that use it.)


def test_twirled_run_on_70_qubits_undoes_every_mask() -> None:
    # |0...0> on 70 qubits (Aer's stabilizer method): every corrected Z outcome is 0. Masks that
    # differ only in qubits >= 63 must run as different circuits.
    n, shots = 70, 40
    rng = np.random.default_rng(3)
    masks = np.zeros((shots, n), dtype=np.uint8)
    masks[:, 63:] = rng.integers(0, 2, size=(shots, n - 63))
    backend = QiskitAerBackend(QuantumCircuit(n), readout_twirl=True, backend_options={"method": "stabilizer"})
    out = backend.run_batch(np.full((1, n), 2, dtype=np.uint8), np.array([shots]), seed=1, twirl=masks)
    assert out.shape == (shots, n) and not out.any()
