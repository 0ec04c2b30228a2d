"""Tests of the Braket local-simulator back end (shadowlab.acquire.braket_backend): bit order,
GHZ estimates from three kinds of input, saved results, noise and bad inputs."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import stim

from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.qasm import simulate_qasm2
from shadowlab.acquire.simulate import PreparedState, prepare_state
from shadowlab.acquire.statevector import exact_pauli_expectations
from shadowlab.errors import InputFormatError, ShadowlabError, StateError
from shadowlab.plan.scheme import Scheme, uniform_scheme

pytest.importorskip("braket.circuits")
pytest.importorskip("braket.devices")

from braket.circuits import Circuit, noises
from braket.devices import LocalSimulator
from braket.task_result import GateModelTaskResult

from shadowlab.acquire.braket_backend import (
    BraketLocalBackend,
    setting_circuits_braket,
    state_circuit_braket,
)
from shadowlab.acquire.result_files import braket_record_outcomes, read_braket_results
from shadowlab.data.dataset import ShadowData
from shadowlab.estimate.pauli import estimate_paulis
from shadowlab.paulis import PauliSum

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

# |1> |-i> |+> |0> |->: deterministic in Z Y X Z X with the non-palindromic outcome 1 1 0 0 1.
PRODUCT = "product:1l+0-"
PRODUCT_SETTING = "ZYXZX"
PRODUCT_OUTCOME = [1, 1, 0, 0, 1]


def parity_expectation(outcomes: np.ndarray) -> float:
    return float(np.mean(1 - 2 * (outcomes.astype(np.int64).sum(axis=1) % 2)))


def state_vector(circuit: Circuit) -> np.ndarray:
    """Braket's exact state vector (big-endian: qubit 0 = most significant bit)."""
    c = circuit.copy()
    c.state_vector()
    return np.asarray(LocalSimulator("braket_sv").run(c, shots=0).result().values[0])


@pytest.fixture(scope="module")
def ghz_scheme() -> Scheme:
    return uniform_scheme(4, 300, np.random.default_rng(2025), repeats=10)


def check_ghz(scheme: Scheme, outcomes: np.ndarray) -> None:
    assert outcomes.shape == (scheme.n_snapshots, 4) and outcomes.dtype == np.uint8
    data = ShadowData.from_settings(scheme.settings, scheme.repeats, outcomes)
    observables = PauliSum.from_labels(OBSERVABLES)
    result = estimate_paulis(data, observables)
    exact = exact_pauli_expectations(prepare_state("ghz:4", simulator="statevector").statevector, observables)
    assert np.all(result.stderr > 0)
    assert np.all(np.abs(result.estimate - exact) <= 5 * result.stderr), (result.estimate, exact, result.stderr)


# ------------------------------------------------------------------------------------------ bit order


@pytest.mark.parametrize("source", ["statevector", "circuit", "stim", "qasm3", "qasm2"])
def test_product_state_bit_order(source: str, tmp_path: Path) -> None:
    if source == "statevector":
        state = prepare_state(PRODUCT)
    elif source == "circuit":
        state = Circuit().x(0).h(1).si(1).h(2).x(4).h(4)
    elif source == "stim":
        state = PreparedState("stim product", 5, circuit=stim.Circuit("X 0\nH 1\nS_DAG 1\nH 2\nX 4\nH 4"))
    elif source == "qasm3":
        state = tmp_path / "product.qasm"
        state.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[5] q;\nx q[0];\nh q[1];\nsdg q[1];\n'
                         "h q[2];\nx q[4];\nh q[4];\n")
    else:
        state = tmp_path / "product.qasm"
        state.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\nx q[0];\nh q[1];\nsdg q[1];\nh q[2];\n'
                         "x q[4];\nh q[4];\n")
    backend = BraketLocalBackend(state)
    assert backend.n_qubits == 5
    scheme = Scheme.from_labels([PRODUCT_SETTING, "ZZZZZ", PRODUCT_SETTING], repeats=[7, 4, 5])
    out = backend.run_batch(scheme.settings, scheme.repeats, seed=0)
    assert out.shape == (16, 5)
    assert np.array_equal(out[:7], np.tile(PRODUCT_OUTCOME, (7, 1)))
    assert np.array_equal(out[11:], np.tile(PRODUCT_OUTCOME, (5, 1)))
    assert np.all(out[7:11, 0] == 1) and np.all(out[7:11, 3] == 0)


def test_measured_qubits_order_is_mapped_back() -> None:
    # Measure in the order 2, 0, 1: Braket's columns follow measured_qubits, not qubit indices.
    circuit = Circuit().x(2).measure([2, 0, 1])
    result = LocalSimulator("braket_sv").run(circuit, shots=5).result()
    assert list(result.measured_qubits) == [2, 0, 1]
    record = json.loads(GateModelTaskResult(measurements=result.measurements.tolist(),
                                            measuredQubits=list(result.measured_qubits),
                                            taskMetadata=result.task_metadata,
                                            additionalMetadata=result.additional_metadata).json())
    assert np.array_equal(braket_record_outcomes(record, 3), np.tile([0, 0, 1], (5, 1)))


def test_statevector_preparation_keeps_qubit_order() -> None:
    state = prepare_state("random:4", seed=3)
    psi = state_vector(state_circuit_braket(state))
    assert abs(np.vdot(state.statevector, psi)) == pytest.approx(1.0, abs=1e-9)


def test_stim_translation_all_gates() -> None:
    circuit = stim.Circuit("H 0 1 2\nS 0\nSQRT_Y 1\nH_YZ 2\nC_XYZ 0\nCX 0 1\nXCZ 1 2\nCY 2 0\nISWAP 0 2\n"
                           "SQRT_XX 1 2\nSWAP 0 1\nS_DAG 2\nSQRT_X_DAG 1\nCZ 0 2\nSQRT_X 0\n")
    sim = stim.TableauSimulator()
    sim.do(circuit)
    ref = sim.state_vector(endian="big").astype(np.complex128)
    psi = state_vector(state_circuit_braket(PreparedState("mix", 3, circuit=circuit)))
    assert abs(np.vdot(ref, psi)) == pytest.approx(1.0, abs=1e-6)


def test_qasm_gate_translations_match_reference(tmp_path: Path) -> None:
    body = ("h q[0];\nch q[0], q[1];\ncrz(0.3) q[1], q[2];\ncu(0.4, 0.5, 0.6, 0.7) q[2], q[0];\n"
            "u3(0.1, 0.2, 0.3) q[1];\nsx q[2];\nsdg q[0];\np(0.9) q[1];\ncry(1.1) q[0], q[2];\ncp(0.4) q[1], q[0];\n"
            "u2(0.3, 0.8) q[2];\nrx(0.7) q[0];\ntdg q[1];\nccx q[0], q[1], q[2];\n")
    reference = simulate_qasm2('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\n' + body + "rzz(0.5) q[0], q[2];\n")
    qasm2 = tmp_path / "gates2.qasm"
    qasm2.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\n' + body + "rzz(0.5) q[0], q[2];\n")
    qasm3 = tmp_path / "gates3.qasm"
    qasm3.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\n' + body
                     + "cnot q[0], q[2];\nrz(0.5) q[2];\ncnot q[0], q[2];\n")
    for path in (qasm2, qasm3):
        psi = state_vector(state_circuit_braket(path))
        assert abs(np.vdot(reference, psi)) == pytest.approx(1.0, abs=1e-9), path.name


# ------------------------------------------------------------------------------------------ GHZ


def test_ghz_prepared_state_and_saved_results(ghz_scheme: Scheme, tmp_path: Path) -> None:
    backend = BraketLocalBackend(prepare_state("ghz:4"))
    out = backend.run_batch(ghz_scheme.settings, ghz_scheme.repeats, seed=0, save_to=tmp_path / "ghz")
    check_ghz(ghz_scheme, out)
    files = sorted((tmp_path / "ghz").glob("*.json"))
    assert len(files) == ghz_scheme.n_settings
    assert np.array_equal(read_braket_results(tmp_path / "ghz", ghz_scheme), out)
    assert np.array_equal(read_braket_results(files, ghz_scheme), out)
    with pytest.raises(ShadowlabError, match="already exists"):
        backend.run_batch(ghz_scheme.settings, ghz_scheme.repeats, save_to=tmp_path / "ghz")


def test_ghz_qasm_file(ghz_scheme: Scheme, tmp_path: Path) -> None:
    path = tmp_path / "ghz.qasm"
    path.write_text(GHZ_QASM3)
    saved = tmp_path / "ghz_results.json"
    out = BraketLocalBackend(path).run_batch(ghz_scheme.settings, ghz_scheme.repeats, save_to=saved)
    check_ghz(ghz_scheme, out)
    assert np.array_equal(read_braket_results(saved, ghz_scheme), out)


def test_ghz_native_circuit(ghz_scheme: Scheme) -> None:
    circuit = Circuit().h(0).cnot(0, 1).cnot(1, 2).cnot(2, 3).measure([0, 1, 2, 3])
    check_ghz(ghz_scheme, BraketLocalBackend(circuit).run_batch(ghz_scheme.settings, ghz_scheme.repeats))


def test_not_seeded_and_documented() -> None:
    backend = BraketLocalBackend("ghz:2")
    info = backend.describe()
    assert info["seeded"] is False and info["reproducible"] is False
    assert json.loads(json.dumps(info)) == info
    assert "cannot be seeded" in BraketLocalBackend.__doc__ and "seed" in backend.run_batch.__doc__


# ------------------------------------------------------------------------------------------ noise


def test_noise_spec_lowers_ghz_parity() -> None:
    scheme = Scheme.from_labels(["XXXX"], repeats=[3000])
    ideal = BraketLocalBackend("ghz:4").run_batch(scheme.settings, scheme.repeats)
    noisy_backend = BraketLocalBackend("ghz:4", noise={"depolarizing": 0.05, "readout": 0.05})
    assert noisy_backend.device_name == "braket_dm"
    noisy = noisy_backend.run_batch(scheme.settings, scheme.repeats)
    value = parity_expectation(noisy)
    se = np.sqrt((1 - value**2) / (scheme.n_snapshots - 1))
    assert parity_expectation(ideal) == 1.0
    assert value < 1 - 10 * se and value < 0.8
    # A spec dict is a shadowlab NoiseModel (symmetric 'readout'), recorded as such.
    recorded = noisy_backend.describe()["noise"]
    assert recorded["depolarizing"] == 0.05 and recorded["readout_p01"] == recorded["readout_p10"] == 0.05


def test_noise_other_forms() -> None:
    scheme = Scheme.from_labels(["ZZ"], repeats=[2000])
    # Readout only: |00> reads 1 on each qubit with probability 0.2.
    flips = BraketLocalBackend(Circuit().i(0).i(1), noise={"readout": 0.2}).run_batch(scheme.settings, scheme.repeats)
    assert 0.15 < flips.mean() < 0.25
    seen = []

    def noise(circuit: Circuit) -> Circuit:
        seen.append(circuit)
        return circuit.apply_readout_noise(noises.BitFlip(0.5))

    out = BraketLocalBackend(Circuit().i(0).i(1), noise=noise).run_batch(scheme.settings, scheme.repeats)
    assert len(seen) == 1 and 0.4 < out.mean() < 0.6
    objects = BraketLocalBackend(Circuit().x(0).x(1), noise=[noises.BitFlip(0.3)])
    assert 0.6 < objects.run_batch(scheme.settings, scheme.repeats).mean() < 0.8
    two = BraketLocalBackend("ghz:2", noise={"two_qubit_depolarizing": 0.3})
    program = two.setting_circuit(np.array([2, 2], dtype=np.uint8)).to_ir("OPENQASM").source
    assert "two_qubit_depolarizing(0.3)" in program and "depolarizing(0.3) q[0]\n" not in program


def test_noise_errors() -> None:
    with pytest.raises(ShadowlabError, match="braket_dm"):
        BraketLocalBackend("ghz:2", noise={"depolarizing": 0.1}, device="braket_sv")
    with pytest.raises(ShadowlabError, match="depolarising"):
        BraketLocalBackend("ghz:2", noise={"depolarising": 0.1})
    with pytest.raises(ShadowlabError, match="noise must be"):
        BraketLocalBackend("ghz:2", noise=0.1)


# ------------------------------------------------------------------------------------------ circuits


def test_setting_circuits_program() -> None:
    circuits = setting_circuits_braket("ghz:3", np.array([[0, 1, 2]], dtype=np.uint8))
    source = circuits[0].to_ir("OPENQASM").source
    tail = source[source.index("barrier"):].splitlines()
    assert tail[1:] == ["si q[1];", "h q[0];", "h q[1];", "b[0] = measure q[0];", "b[1] = measure q[1];",
                        "b[2] = measure q[2];"]
    with pytest.raises(ShadowlabError, match="acts on 3"):
        setting_circuits_braket("ghz:3", np.array([[0, 1]], dtype=np.uint8))


def test_bad_states(tmp_path: Path) -> None:
    # Braket itself refuses gates after a measurement; from a file that is a format error.
    with pytest.raises(InputFormatError, match="measured qubits"):
        state_circuit_braket("OPENQASM 3.0;\nqubit[2] q;\nbit[1] b;\nh q[0];\nb[0] = measure q[0];\nx q[0];\n")
    with pytest.raises(StateError, match="no instructions"):
        state_circuit_braket(Circuit())
    with pytest.raises(ShadowlabError, match=r"needs a circuit|give a circuit"):
        BraketLocalBackend(prepare_state("random:7", seed=1))
    bad = tmp_path / "bad.qasm"
    bad.write_text("OPENQASM 3.0;\nqubit[2] q;\nfoo q[0];\n")
    with pytest.raises(InputFormatError, match=r"bad\.qasm"):
        BraketLocalBackend(bad)
    with pytest.raises(ShadowlabError, match=r"\(n_settings, 2\)"):
        BraketLocalBackend("ghz:2").run_batch(np.zeros((1, 3), dtype=np.uint8), np.array([1]))
    stripped = state_circuit_braket(Circuit().h(0).cnot(0, 1).measure([0, 1]))
    assert [type(i.operator).__name__ for i in stripped.instructions] == ["H", "CNot"]


# ------------------------------------------------------------------------------------------ extras


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("braket", "braket.circuits", "braket.devices"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ShadowlabError, match=r"'braket' extra: pip install 'shadowlab\[braket\]'"):
        BraketLocalBackend("ghz:2")


def test_module_imports_without_braket(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("braket", "braket.circuits", "braket.devices", "qiskit", "qiskit_aer"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "shadowlab.acquire.braket_backend")
    module = importlib.import_module("shadowlab.acquire.braket_backend")
    with pytest.raises(ShadowlabError, match="'braket' extra"):
        module.state_circuit_braket("ghz:2")


# ------------------------------------------------------------------------------------------ shadowlab noise models

# The device of issue 7: 1% depolarizing gates, asymmetric readout (0 -> 1: 5%, 1 -> 0: 15%).
DEVICE = NoiseModel(depolarizing=0.01, readout_p01=0.05, readout_p10=0.15)
F = 2 * 0.01 / 3  # one depolarizing channel flips a Pauli outcome with 2p/3
F2 = 2 * F * (1 - F)  # two of them: the preparing gate and the measurement layer


def within_5se(observed: float, expected: float, count: int) -> bool:
    return abs(observed - expected) <= 5 * np.sqrt(expected * (1 - expected) / count)


def one_gate_eigenstates(n: int, basis: int) -> Circuit:
    """+1 eigenstates of X (h), Y (rx(-pi/2)) or Z (i), one gate per qubit."""
    c = Circuit()
    for q in range(n):
        if basis == 0:
            c.h(q)
        elif basis == 1:
            c.rx(q, -np.pi / 2)
        else:
            c.i(q)
    return c


def test_measurement_layer_is_basis_independent() -> None:
    n, shots = 4, 6000
    expected = F2 * 0.85 + (1 - F2) * 0.05  # ideal bit 0, then asymmetric readout
    for basis in range(3):
        backend = BraketLocalBackend(one_gate_eigenstates(n, basis), noise=DEVICE)
        assert backend.device_name == "braket_dm"
        out = backend.run_batch(np.full((1, n), basis, dtype=np.uint8), np.array([shots]))
        assert within_5se(float(out.mean()), expected, shots * n), (basis, out.mean(), expected)
    program = BraketLocalBackend("ghz:3", noise=DEVICE).setting_circuit(np.array([0, 1, 2])).to_ir("OPENQASM").source
    tail = program[program.index("barrier"):]
    # One depolarizing channel and one readout channel per qubit after the barrier, Z qubit included.
    assert all(f"depolarizing(0.01) q[{q}]" in tail for q in range(3)) and tail.count("kraus(") == 3


def test_ghz_distribution_matches_density_matrix_of_noise_semantics(tmp_path: Path) -> None:
    from shadowlab.acquire.density_matrix import density_matrix_from_stim, depolarizing_kraus, outcome_probabilities

    state = prepare_state("ghz:3")
    scheme = Scheme.from_labels(["XXX", "ZZZ", "YYX"], repeats=[4000] * 3)
    backend = BraketLocalBackend(state, noise={"depolarizing": 0.01, "p01": 0.05, "p10": 0.15})
    out = backend.run_batch(scheme.settings, scheme.repeats, save_to=tmp_path / "tasks")
    # Saved noisy programs keep the plain rotations after the barrier, so they are checked as usual.
    assert np.array_equal(read_braket_results(tmp_path / "tasks", scheme), out)
    rho = density_matrix_from_stim(DEVICE.state_circuit(state.circuit))
    probs = outcome_probabilities(rho, scheme.settings, measurement_channel=depolarizing_kraus(0.01))
    confusion = np.array([[0.95, 0.05], [0.15, 0.85]])  # [true bit, read bit]
    read = probs.reshape(3, 2, 2, 2)
    for q in range(3):
        read = np.moveaxis(np.tensordot(read, confusion, axes=([q + 1], [0])), -1, q + 1)
    read = read.reshape(3, 8)
    for g in range(3):
        index = out[g * 4000:(g + 1) * 4000].astype(np.int64) @ np.array([4, 2, 1])
        freq = np.bincount(index, minlength=8) / 4000
        assert np.all(np.abs(freq - read[g]) <= 5 * np.sqrt(read[g] * (1 - read[g]) / 4000) + 1e-9), (g, freq)


def test_readout_twirl_symmetrizes_asymmetric_readout() -> None:
    n, shots = 3, 6000
    symmetric = F2 + (1 - 2 * F2) * 0.1
    rng = np.random.default_rng(7)
    for ideal in (0, 1):
        prep = Circuit()
        for q in range(n):
            prep.x(q) if ideal else prep.i(q)
        twirled = BraketLocalBackend(prep, noise=DEVICE, readout_twirl=True)
        masks = rng.integers(0, 2, size=(shots, n), dtype=np.uint8)
        out = twirled.run_batch(np.full((1, n), 2, dtype=np.uint8), np.array([shots]), twirl=masks)
        assert within_5se(float((out != ideal).mean()), symmetric, shots * n)
        plain = BraketLocalBackend(prep, noise=DEVICE).run_batch(np.full((1, n), 2, dtype=np.uint8),
                                                                  np.array([shots]))
        asymmetric = F2 * 0.85 + (1 - F2) * 0.05 if ideal == 0 else F2 * 0.95 + (1 - F2) * 0.15
        assert within_5se(float((plain != ideal).mean()), asymmetric, shots * n)


def test_twirl_masks_and_description(tmp_path: Path) -> None:
    scheme = Scheme.from_labels(["XXX", "ZYZ"], repeats=[30, 20])
    masks = np.random.default_rng(3).integers(0, 2, size=(50, 3), dtype=np.uint8)
    clean = BraketLocalBackend("ghz:3", readout_twirl=True)
    out = clean.run_batch(scheme.settings, scheme.repeats, twirl=masks)
    # GHZ in XXX has even parity in every shot once the masks are undone.
    assert out.shape == (50, 3) and np.all(out[:30].sum(axis=1) % 2 == 0)
    info = BraketLocalBackend("ghz:3", noise=DEVICE, readout_twirl=True).describe()
    assert info["readout_twirl"] is True and info["noise"]["readout_p10"] == 0.15
    assert "Kraus" in info["noise"]["readout_emulation"] and json.loads(json.dumps(info)) == info
    assert BraketLocalBackend("ghz:2").describe()["readout_twirl"] is False
    with pytest.raises(ShadowlabError, match="readout_twirl=True: pass"):
        clean.run_batch(scheme.settings, scheme.repeats)
    with pytest.raises(ShadowlabError, match=r"\(50, 3\)"):
        clean.run_batch(scheme.settings, scheme.repeats, twirl=masks[:5])
    with pytest.raises(ShadowlabError, match="save_to is not available"):
        clean.run_batch(scheme.settings, scheme.repeats, twirl=masks, save_to=tmp_path / "x.json")
    with pytest.raises(ShadowlabError, match="per-qubit values"):
        BraketLocalBackend("ghz:3", noise=NoiseModel(readout_p01=(0.1, 0.2)))


# ------------------------------------------------------------------------------------------ what gets gate noise


def test_gate_noise_follows_each_instruction_by_its_qubit_count() -> None:
    from shadowlab.acquire.braket_backend import STATE_UNITARY_NAME, _gate_noise_by_arity

    c = (Circuit().unitary(matrix=np.eye(4), targets=[0, 1], display_name=STATE_UNITARY_NAME).h(0).cnot(0, 1)
         .ccnot(0, 1, 2).unitary(matrix=np.eye(2), targets=[2]).unitary(matrix=np.eye(4), targets=[1, 2]))
    c.add_circuit(Circuit.from_ir("OPENQASM 3.0;\nqubit[3] q;\nctrl @ h q[2], q[0];"))
    noisy = _gate_noise_by_arity(c, 0.1, 0.2)
    got = [(type(i.operator).__name__, [int(q) for q in (*i.control, *i.target)]) for i in noisy.instructions]
    assert got == [("Unitary", [0, 1]),  # a state vector's preparation: no gate noise
                   ("H", [0]), ("Depolarizing", [0]),
                   ("CNot", [0, 1]), ("TwoQubitDepolarizing", [0, 1]),
                   ("CCNot", [0, 1, 2]),  # three qubits: none
                   ("Unitary", [2]), ("Depolarizing", [2]),  # e.g. an OpenQASM 2 u3
                   ("Unitary", [1, 2]), ("TwoQubitDepolarizing", [1, 2]),
                   ("H", [2, 0]), ("TwoQubitDepolarizing", [2, 0])]  # ctrl @ h: control first
    assert len(c.instructions) == 7  # the input is not modified


@pytest.mark.parametrize("spec", ["random:1", "random:2", "random:3"])
def test_small_statevector_with_gate_noise_runs(spec: str) -> None:
    # Braket refused noise on the Unitary gate type (no fixed qubit count) for 1-2 qubit vectors.
    backend = BraketLocalBackend(spec, noise=NoiseModel(depolarizing=0.01))
    prep = backend.setting_circuit(np.full(backend.n_qubits, 2, dtype=np.uint8))
    before_barrier = prep.instructions[:[type(i.operator).__name__ for i in prep.instructions].index("Barrier")]
    assert [type(i.operator).__name__ for i in before_barrier] == ["Unitary"]
    out = backend.run_batch(np.zeros((2, backend.n_qubits), dtype=np.uint8), np.array([3, 2]))
    assert out.shape == (5, backend.n_qubits)


def test_statevector_preparation_gets_no_gate_noise() -> None:
    # |10> as a state vector at p = 0.3: only the measurement layer flips (2p/3 per qubit), as
    # in shadowlab's simulator and on Aer.
    p, shots = 0.3, 6000
    psi = np.zeros(4, dtype=np.complex128)
    psi[2] = 1.0
    out = BraketLocalBackend(psi, noise=NoiseModel(depolarizing=p)).run_batch(np.full((1, 2), 2, dtype=np.uint8),
                                                                           np.array([shots]))
    assert within_5se(float((out != np.array([1, 0])).mean()), 2 * p / 3, 2 * shots)
    assert "state vector's unitary" in BraketLocalBackend(psi, noise=NoiseModel(depolarizing=p)).describe()[
        "noise"]["gate_noise_scope"]
