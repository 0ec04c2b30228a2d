"""Noise models, readout twirling, robust-shadow calibration and the noise CLI (issue 7)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import stim
from typer.testing import CliRunner

from shadowlab.acquire.clifford_states import local_stabilizer_elements
from shadowlab.acquire.noise import NoiseModel, add_circuit_noise, apply_measurement_noise, parse_noise_spec
from shadowlab.acquire.run import acquire, make_backend
from shadowlab.acquire.simulate import calibration_state, prepare_state, simulate
from shadowlab.acquire.stim_exact import exact_noisy_pauli_expectations
from shadowlab.cli import app
from shadowlab.data.dataset import ShadowData
from shadowlab.data.store import ShadowStore, write_store
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.calibration import (
    Calibration,
    CalibrationWarning,
    _check_resolved,
    calibrate,
    read_calibration,
)
from shadowlab.estimate.pauli import estimate_paulis, estimate_sum, estimate_two_point
from shadowlab.paulis import PauliString, PauliSum
from shadowlab.plan.scheme import Scheme

NOISE = NoiseModel(depolarizing=0.01, readout_p01=0.05, readout_p10=0.15)
runner = CliRunner()


def _within(value: float, expected: float, se: float, k: float = 5.0) -> bool:
    return abs(value - expected) <= k * se


# --------------------------------------------------------------------------------------------
# Noise model
# --------------------------------------------------------------------------------------------


def test_noise_spec_parsing_and_errors() -> None:
    m = parse_noise_spec("depolarizing=0.01, p01=0.05,p10=0.15")
    assert (m.depolarizing, m.p2, m.readout_p01, m.readout_p10) == (0.01, 0.01, 0.05, 0.15)
    assert NoiseModel.from_spec(m.record()) == m
    assert NoiseModel.from_spec({"readout": 0.02}).readout(3)[1].tolist() == [0.02] * 3
    with pytest.raises(ShadowlabError, match="--noise: expected 'name=probability'"):
        parse_noise_spec("amplitude=0.1")
    with pytest.raises(ShadowlabError, match="not a number"):
        parse_noise_spec("p01=abc")
    with pytest.raises(ShadowlabError, match=r"must lie in \[0, 0.75\]"):
        NoiseModel(depolarizing=0.9)
    with pytest.raises(ShadowlabError, match="not both"):
        NoiseModel.from_spec({"readout": 0.1, "readout_p01": 0.2})
    with pytest.raises(ShadowlabError, match="lists 2 per-qubit values but the data have 3"):
        NoiseModel(readout_p01=(0.1, 0.2)).readout(3)


def test_circuit_noise_follows_every_gate_including_repeat_blocks() -> None:
    c = add_circuit_noise(stim.Circuit("H 0 1\nCX 0 1\nREPEAT 2 {\n  S 1\n}\nX_ERROR(0.2) 0"), 0.01, 0.02)
    text = str(c)
    assert "H 0 1\nDEPOLARIZE1(0.01) 0 1\nCX 0 1\nDEPOLARIZE2(0.02) 0 1" in text
    assert "S 1\n    DEPOLARIZE1(0.01) 1" in text
    assert text.count("X_ERROR(0.2) 0") == 1  # existing channels are kept, not noised again


@pytest.mark.parametrize("twirl", [True, False])
def test_readout_flip_rates_with_and_without_twirling(twirl: bool) -> None:
    n_snap = 200_000
    ideal = np.zeros((n_snap, 2), dtype=np.uint8)
    ideal[:, 1] = 1
    model = NoiseModel(readout_p01=0.05, readout_p10=0.15)
    out, masks = apply_measurement_noise(ideal, model, np.random.default_rng(3), readout_twirl=twirl)
    assert (masks is not None) == twirl
    rates = (out != ideal).mean(axis=0)
    expected = [0.1, 0.1] if twirl else [0.05, 0.15]
    for rate, p in zip(rates, expected, strict=True):
        assert _within(rate, p, math.sqrt(p * (1 - p) / n_snap))
    if twirl:
        # The raw device bits are the corrected outcomes XOR the masks: asymmetric again.
        raw = out ^ masks
        assert _within(float((raw[masks[:, 0] == 1, 0] == 0).mean()), 0.15, math.sqrt(0.15 * 0.85 / (n_snap / 2)))


def test_given_masks_are_used_and_checked() -> None:
    ideal = np.zeros((4, 3), dtype=np.uint8)
    masks = np.eye(4, 3, dtype=np.uint8)
    out, used = apply_measurement_noise(ideal, NoiseModel(), np.random.default_rng(0), readout_twirl=masks)
    assert used is masks or np.array_equal(used, masks)
    assert not out.any()  # noiseless: the flips are undone exactly
    with pytest.raises(ShadowlabError, match="twirl masks have shape"):
        apply_measurement_noise(ideal, NoiseModel(), np.random.default_rng(0), readout_twirl=masks[:2])


# --------------------------------------------------------------------------------------------
# Data and stores carry twirl masks
# --------------------------------------------------------------------------------------------


def test_twirl_masks_round_trip_through_a_store(tmp_path: Path) -> None:
    data = simulate("ghz:5", 3000, seed=2, noise=NOISE, readout_twirl=True, batch_snapshots=1000)
    assert data.twirl is not None and data.twirl.shape == (3000, 5)
    assert data.metadata["readout_twirl"] is True and data.metadata["noise"]["readout_p10"] == 0.15
    again = simulate("ghz:5", 3000, seed=2, noise=NOISE, readout_twirl=True, batch_snapshots=1000)
    assert data.equals(again)
    store = write_store(data, tmp_path / "t.zarr")
    assert store.readout_twirl and store.summary()["readout_twirl"]
    assert store.load().equals(data)
    with pytest.raises(ShadowlabError, match="holds readout-twirled snapshots and the batch is untwirled"):
        ShadowStore.open(tmp_path / "t.zarr", mode="a").append(ShadowData(data.bases, data.outcomes))
    with pytest.raises(ShadowlabError, match="cannot join readout-twirled and untwirled"):
        ShadowData.concatenate([data, ShadowData(data.bases, data.outcomes)])
    with pytest.raises(ShadowlabError, match="twirl masks must have the outcomes' shape"):
        ShadowData(data.bases, data.outcomes, twirl=data.twirl[:, :2])


def test_acquire_records_twirl_masks_and_refuses_a_changed_twirl_flag(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scheme = Scheme(rng.integers(0, 3, size=(300, 4)).astype(np.uint8), np.ones(300, dtype=np.int64), "uniform",
                    np.full((4, 3), 1 / 3))
    backend = make_backend("stim", "ghz:4", noise=NOISE)
    store = acquire(scheme, backend, tmp_path / "a.zarr", seed=5, batch_snapshots=100, readout_twirl=True)
    data = store.load()
    assert store.readout_twirl and data.twirl is not None and data.twirl.any()
    assert store.metadata["provenance"]["backend"]["noise_model"]["readout_p01"] == 0.05
    again = acquire(scheme, make_backend("stim", "ghz:4", noise=NOISE), tmp_path / "b.zarr", seed=5,
                    batch_snapshots=100, readout_twirl=True)
    assert again.load().equals(data)
    with pytest.raises(ShadowlabError, match="readout_twirl: store has True, now False"):
        acquire(scheme, backend, tmp_path / "a.zarr", seed=5, batch_snapshots=100)


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cal_data() -> ShadowData:
    return simulate(calibration_state(8), 100_000, seed=11, noise=NOISE, readout_twirl=True)


@pytest.fixture(scope="module")
def cal(cal_data: ShadowData) -> Calibration:
    return calibrate(cal_data, locality=4)


def test_per_qubit_factors_match_the_noise_model(cal: Calibration) -> None:
    # Twirled: symmetric flip (p01 + p10) / 2, times the measurement gate's 1 - 4p/3.
    expected = (1 - (0.05 + 0.15)) * (1 - 4 * 0.01 / 3)
    g, se = cal.per_qubit()
    assert all(_within(float(v), expected, float(s)) for v, s in zip(g, se, strict=True))
    assert cal.complete and cal.locality == 4 and len(cal.subsets) == 8 + 28 + 56 + 70
    # Product noise: a 4-qubit factor is the product of its qubits' factors.
    g4, se4 = cal.factor((0, 3, 5, 6))
    assert _within(g4, expected**4, se4)


def test_untwirled_calibration_only_sees_zero_to_one_flips() -> None:
    data = simulate(calibration_state(3), 100_000, seed=4, noise=NOISE)
    g, se = calibrate(data, locality=1).per_qubit()
    q = 2 * 0.01 / 3  # measurement-gate flip before readout
    expected = 1 - 2 * ((1 - q) * 0.05 + q * (1 - 0.15))
    assert all(_within(float(v), expected, float(s)) for v, s in zip(g, se, strict=True))


def test_calibration_file_round_trip_and_bad_files(cal: Calibration, tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    cal.write(path)
    back = read_calibration(path)
    assert back.subsets == cal.subsets and np.array_equal(back.attenuation, cal.attenuation)
    assert back.ensemble == cal.ensemble and back.readout_twirl
    with pytest.raises(ShadowlabError, match="already exists"):
        cal.write(path)
    with pytest.raises(ShadowlabError, match="no such calibration file"):
        read_calibration(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ShadowlabError, match="not a JSON calibration file"):
        read_calibration(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(ShadowlabError, match="not a shadowlab calibration"):
        read_calibration(tmp_path / "other.json")
    doc = cal.to_dict()
    doc["attenuation"] = doc["attenuation"][:-1]
    (tmp_path / "short.json").write_text(json.dumps(doc))
    with pytest.raises(ShadowlabError, match="disagree in length"):
        read_calibration(tmp_path / "short.json")


def test_bad_calibrations_are_clear_errors(cal_data: ShadowData) -> None:
    with pytest.raises(ShadowlabError, match="either a locality"):
        calibrate(cal_data)
    with pytest.raises(ShadowlabError, match="out of range"):
        calibrate(cal_data, subsets=[[0, 9]])
    with pytest.raises(ShadowlabError, match="locality 9 exceeds the 8 calibrated qubits"):
        calibrate(cal_data, locality=9)
    with pytest.raises(ShadowlabError, match=r"clearly negative: these are not snapshots of \|0...0>"):
        calibrate(simulate("product:1111", 20_000, seed=1), locality=1)


def test_unresolved_factor_says_how_many_more_snapshots() -> None:
    # g = 0.10 +- 0.03 from 1,000 snapshots: 5 standard errors need (5 * 0.03 / 0.10)^2 = 2.25 times the data.
    with pytest.raises(EstimationError, match=r"qubits \[0, 1\]: g = 0\.1000 \+- 0\.0300 .* about 2,250 in all "
                                              r"\(1,250 more"):
        _check_resolved([(0,), (0, 1)], np.array([0.5, 0.1]), np.array([0.01, 0.03]), 1000)
    # A factor within 2 standard errors of 0 is no basis for an extrapolation: the message asks instead.
    with pytest.raises(EstimationError, match=r"consistent with 0: are these snapshots of \|0\.\.\.0>"):
        _check_resolved([(0,)], np.array([0.01]), np.array([0.03]), 1000)
    # End to end: flips of 0.4 leave g = 0.2 per qubit and 0.008 per triple, unresolvable from 2,000 snapshots.
    data = simulate(calibration_state(3), 2000, seed=2, noise=NoiseModel(readout_p01=0.4, readout_p10=0.4),
                    readout_twirl=True)
    with pytest.raises(EstimationError, match="indistinguishable from zero"):
        calibrate(data, locality=3)


def test_heavier_or_missing_supports_are_errors(cal: Calibration, cal_data: ShadowData) -> None:
    data = simulate("cluster:8", 5000, seed=1, noise=NOISE, readout_twirl=True)
    heavy = [PauliString.from_label("Z0 X1 Z2 X3 Z4")]
    with pytest.raises(EstimationError, match=r"heavier than the calibrated locality 4.*locality >= 5"):
        estimate_paulis(data, heavy, calibration=cal)
    listed = calibrate(cal_data, subsets=[[0, 1, 2]])
    assert not listed.complete and listed.locality == 3
    with pytest.raises(EstimationError, match=r"not among them, e\.g\. X1 Z2"):
        estimate_paulis(data, [PauliString.from_label("X1 Z2")], calibration=listed)
    est = estimate_paulis(data, [PauliString.from_label("Z0 X1 Z2")], calibration=listed)
    assert est.calibrated


def test_calibration_for_another_register_or_ensemble_is_refused(cal: Calibration, tmp_path: Path) -> None:
    with pytest.raises(ShadowlabError, match="calibration is for 8 qubits but the data have 6"):
        estimate_paulis(simulate("ghz:6", 1000, seed=0), [PauliString.from_label("Z0 Z1")], calibration=cal)
    # Global-Clifford data are another measurement ensemble.
    from shadowlab.acquire.clifford_shadows import make_state, sample_snapshots
    from shadowlab.data.clifford_store import CliffordSnapshots, CliffordStore, write_clifford_store

    tabs, bits = sample_snapshots(make_state("ghz:8"), 20, np.random.default_rng(0))
    write_clifford_store(CliffordSnapshots.from_tableaux(tabs, bits), tmp_path / "cl.zarr")
    with pytest.raises(ShadowlabError, match="local_pauli ensemble but the data with the global_clifford one"):
        cal.check_data(CliffordStore.open(tmp_path / "cl.zarr"))
    data = simulate("ghz:8", 1000, seed=0, readout_twirl=True)
    with pytest.raises(ShadowlabError, match=r"hkp interval .* calibrated factor"):
        estimate_paulis(data, [PauliString.from_label("Z0 Z1")], calibration=cal, estimator="mom", interval="hkp")


def test_one_uniform_calibration_serves_a_biased_plan(cal: Calibration, tmp_path: Path) -> None:
    """The calibrated attenuation is that of a matched sign, whatever the basis probabilities."""
    from shadowlab.plan.scheme import random_scheme

    state = prepare_state("cluster:8")
    scheme = random_scheme(np.tile([0.5, 0.1, 0.4], (8, 1)), 60_000, np.random.default_rng(1))
    store = acquire(scheme, make_backend("stim", state, noise=NOISE), tmp_path / "b.zarr", seed=3,
                    batch_snapshots=20_000, readout_twirl=True)
    assert store.scheme_record["kind"] == "biased"
    obs = local_stabilizer_elements(state.circuit, 8, 20, np.random.default_rng(2), max_weight=3)
    exact = exact_noisy_pauli_expectations(NOISE.state_circuit(state.circuit), obs, n_qubits=8)
    robust = estimate_paulis(store, obs, calibration=cal)
    assert np.mean(np.abs(robust.estimate - exact) <= 5 * robust.stderr) >= 0.95


def test_twirl_mismatch_warns(cal: Calibration) -> None:
    untwirled = simulate("ghz:8", 2000, seed=0, noise=NOISE)
    with pytest.warns(CalibrationWarning, match="calibration readout was twirled but the data are untwirled"):
        estimate_paulis(untwirled, [PauliString.from_label("Z0 Z1")], calibration=cal)


def test_exact_calibration_divides_and_propagates_errors(cal: Calibration) -> None:
    data = simulate("cluster:8", 20_000, seed=3, noise=NOISE, readout_twirl=True)
    obs = [PauliString.from_label(s) for s in ("X0 Z1", "Z0 X1 Z2", "Z1 Y2 Y3 Z4")]
    raw = estimate_paulis(data, obs)
    robust = estimate_paulis(data, obs, calibration=cal)
    g, se_g = cal.pauli_factors(obs)
    assert np.allclose(robust.estimate, raw.estimate / g, rtol=1e-14, atol=0)
    expected_se = np.sqrt((raw.stderr / g) ** 2 + (robust.estimate * se_g / g) ** 2)
    assert np.allclose(robust.stderr, expected_se, rtol=1e-14)
    # An exactly known calibration (se = 0) only rescales.
    exact = Calibration(8, 4, True, cal.subsets, cal.attenuation, np.zeros_like(cal.stderr), cal.n_matched,
                        cal.n_snapshots, cal.ensemble, True, {})
    sharp = estimate_paulis(data, obs, calibration=exact)
    assert np.allclose(sharp.stderr, raw.stderr / g, rtol=1e-14)
    # The sum and the all-pairs fast path use the same factors.
    h = PauliSum(8, tuple(obs), np.array([0.5, -1.0, 2.0]))
    total = estimate_sum(data, h, calibration=cal)
    assert math.isclose(float(total.estimate[0]), float(h.coeffs @ robust.estimate), rel_tol=1e-12)
    assert float(total.stderr[0]) > float(estimate_sum(data, h).stderr[0] / g.max())
    pairs = estimate_two_point(data, calibration=cal)
    row = pairs.labels.index("X0 Z1")
    assert math.isclose(float(pairs.estimate[row]), float(robust.estimate[0]), rel_tol=1e-12)


@pytest.mark.parametrize("kind", ["ghz", "cluster"])
def test_robust_estimates_are_unbiased_and_raw_ones_are_not(kind: str, cal: Calibration) -> None:
    """Acceptance at 8 qubits: >= 95% of weight 2-4 Paulis within 5 s.e. of the noisy state's exact values."""
    n = 8
    state = prepare_state(f"{kind}:{n}")
    rng = np.random.default_rng(5)
    stab = local_stabilizer_elements(state.circuit, n, 40, rng)
    rand = []
    for _ in range(60):
        w = int(rng.integers(2, 5))
        q = tuple(sorted(rng.choice(n, size=w, replace=False).tolist()))
        rand.append(PauliString(q, tuple(int(c) for c in rng.integers(0, 3, size=w))))
    obs = stab + rand
    exact = exact_noisy_pauli_expectations(NOISE.state_circuit(state.circuit), obs, n_qubits=n)
    data = simulate(state, 100_000, seed=21, noise=NOISE, readout_twirl=True)
    robust = estimate_paulis(data, obs, calibration=cal)
    z = (robust.estimate - exact) / robust.stderr
    assert np.mean(np.abs(z) <= 5) >= 0.95
    covered = np.mean((robust.ci_low <= exact) & (exact <= robust.ci_high))
    assert covered >= 0.95 - 5 * math.sqrt(0.95 * 0.05 / len(obs))
    # Uncalibrated: the measurement attenuates <P> to g_A <P> (g_A from the calibration); the data
    # agree with that prediction, which is resolvably far from the exact value: a bias, measured.
    raw = estimate_paulis(data, stab)
    g, se_g = cal.pauli_factors(stab)
    target = exact[: len(stab)]
    predicted_se = np.hypot(raw.stderr, target * se_g)
    assert np.mean(np.abs(raw.estimate - g * target) <= 5 * predicted_se) >= 0.95
    assert np.all(np.abs(target - g * target) > 5 * predicted_se)
    # Untwirled data with an untwirled calibration: per qubit, E[sign] = a + b m with a = p10 - p01,
    # b = 1 - p01 - p10 and m the sign before readout (lambda <P> after the measurement gate,
    # lambda = 1 - 4p/3). Over a support A, E = sum_{B in A} a^|A-B| (b lambda)^|B| <P_B>, while
    # |0...0> calibrates (a + b lambda)^|A|: the offset terms do not cancel.
    a, b, lam = 0.15 - 0.05, 1 - 0.05 - 0.15, 1 - 4 * 0.01 / 3
    noisy = NOISE.state_circuit(state.circuit)
    predicted = []
    for p in stab:
        w = p.weight
        subs = [PauliString(tuple(p.qubits[i] for i in range(w) if mask >> i & 1),
                            tuple(p.codes[i] for i in range(w) if mask >> i & 1)) for mask in range(1 << w)]
        values = exact_noisy_pauli_expectations(noisy, subs, n_qubits=n)
        k = np.array([bin(mask).count("1") for mask in range(1 << w)])
        predicted.append(float(np.sum(a ** (w - k) * (b * lam) ** k * values)) / (a + b * lam) ** w)
    predicted = np.array(predicted)
    plain = simulate(state, 100_000, seed=22, noise=NOISE)
    plain_cal = calibrate(simulate(calibration_state(n), 100_000, seed=23, noise=NOISE), locality=4)
    biased = estimate_paulis(plain, stab, calibration=plain_cal)
    assert np.mean(np.abs(biased.estimate - predicted) <= 5 * biased.stderr) >= 0.95
    assert np.all(np.abs(predicted - target) > 5 * biased.stderr)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_cli_calibrate_predict_and_noise_report(tmp_path: Path) -> None:
    spec = "depolarizing=0.01,p01=0.05,p10=0.15"
    cal_store, data_store = str(tmp_path / "cal.zarr"), str(tmp_path / "data.zarr")
    assert _run("simulate", "zero:6", "-o", cal_store, "-n", "60000", "--noise", spec, "--twirl", "-q").exit_code == 0
    assert _run("simulate", "cluster:6", "-o", data_store, "-n", "60000", "--noise", spec, "--twirl", "--seed", "4",
                "-q").exit_code == 0
    cal_file = tmp_path / "cal.json"
    r = _run("calibrate", cal_store, "--locality", "3", "-o", str(cal_file))
    assert r.exit_code == 0, r.output
    obs = tmp_path / "obs.txt"
    obs.write_text("6\n3 Z 0 X 1 Z 2\n2 X 0 Z 1\n")
    r = _run("predict", data_store, str(obs), "--calibration", str(cal_file), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["method"]["calibrated"] is True
    state = prepare_state("cluster:6")
    exact = exact_noisy_pauli_expectations(NOISE.state_circuit(state.circuit),
                                            [PauliString.from_label(row["observable"]) for row in doc["estimates"]],
                                            n_qubits=6)
    for row, value in zip(doc["estimates"], exact, strict=True):
        assert _within(row["estimate"], float(value), row["stderr"])
    report = tmp_path / "readout.json"
    r = _run("noise-report", cal_store, "-o", str(report))
    assert r.exit_code == 0, r.output
    rd = json.loads(report.read_text())
    assert rd["kind"] == "readout" and len(rd["qubits"]) == 6
    # The measurement gate flips the raw bit with q = 2p/3 before readout: a raw t reads wrong with
    # (1 - q) p_t + q (1 - p_not_t) = p_t + q (1 - p01 - p10).
    q = 2 * 0.01 / 3
    for row in rd["qubits"]:
        assert _within(row["p01"], 0.05 + q * (1 - 0.05 - 0.15), row["p01_stderr"])
        assert _within(row["p10"], 0.15 + q * (1 - 0.05 - 0.15), row["p10_stderr"])
    gates = tmp_path / "gates.json"
    r = _run("noise-report", data_store, "--calibration", str(cal_file), "-o", str(gates), "-q")
    assert r.exit_code == 0, r.output
    gd = json.loads(gates.read_text())
    assert gd["kind"] == "gates" and gd["calibrated"] and len(gd["stabilizers"]) == 6
    assert _within(gd["summary"]["p_fit"], 0.01, gd["summary"]["p_fit_stderr"])


def test_cli_bad_calibration_input(tmp_path: Path) -> None:
    data_store = str(tmp_path / "d.zarr")
    assert _run("simulate", "ghz:4", "-o", data_store, "-n", "2000", "-q").exit_code == 0
    obs = tmp_path / "obs.txt"
    obs.write_text("4\n2 Z 0 Z 1\n")
    r = _run("predict", data_store, str(obs), "--calibration", str(tmp_path / "none.json"))
    assert r.exit_code == 1 and "no such calibration file" in r.output
    r = _run("calibrate", data_store, "-o", str(tmp_path / "c.json"))
    assert r.exit_code == 1 and "--locality K or --observables" in r.output
    # GHZ data are not |0...0>: Z0 averages 0, so the factor is unresolved; nothing is written.
    r = _run("calibrate", data_store, "--locality", "1", "-o", str(tmp_path / "c.json"))
    assert r.exit_code == 1 and "indistinguishable from zero" in r.output
    assert not (tmp_path / "c.json").exists()
    # A twirled calibration on untwirled data: the estimate is made, with a warning line.
    cal_store = str(tmp_path / "cal.zarr")
    assert _run("simulate", "zero:4", "-o", cal_store, "-n", "20000", "--twirl", "-q").exit_code == 0
    assert _run("calibrate", cal_store, "--locality", "2", "-o", str(tmp_path / "c.json")).exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = _run("predict", data_store, str(obs), "--calibration", str(tmp_path / "c.json"))
    assert r.exit_code == 0 and "warning: the calibration readout was twirled but the data are untwirled" in r.output


def test_cli_shows_other_warnings_once_and_finishes() -> None:
    """A non-shadowlab warning inside a command is shown as Python shows it, and the command ends."""
    import typer

    from shadowlab.cli import _user_errors

    @_user_errors
    def noisy() -> str:
        warnings.warn("something numpy-like", RuntimeWarning, stacklevel=1)
        return "done"

    with pytest.warns(RuntimeWarning, match="something numpy-like"):
        assert noisy() == "done"

    @_user_errors
    def failing() -> None:
        warnings.warn("calibration mismatch", CalibrationWarning, stacklevel=1)
        raise ShadowlabError("bad input")

    with pytest.raises(typer.Exit):
        failing()


def test_calibration_files_with_impossible_values_are_refused(cal: Calibration, tmp_path: Path) -> None:
    for field, value, message in (
        ("attenuation", 0.0, "indistinguishable from zero"),
        ("attenuation", float("nan"), "non-finite factors"),
        ("stderr", -0.1, "negative standard errors"),
        ("subsets", [1, 0], "not a sorted list of distinct qubits"),
        ("subsets", [0, 9], "not a sorted list of distinct qubits"),
    ):
        doc = cal.to_dict()
        doc[field] = list(doc[field])
        doc[field][0] = value
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(ShadowlabError, match=message):
            read_calibration(path)


def test_twirled_stores_are_format_2_and_npz_keeps_masks(tmp_path: Path) -> None:
    from shadowlab.data.formats import read_npz, write_npz

    data = simulate("ghz:3", 500, seed=1, noise=NOISE, readout_twirl=True)
    store = write_store(data, tmp_path / "t.zarr")
    assert store.metadata["format"] == 2
    assert write_store(simulate("ghz:3", 10, seed=1), tmp_path / "u.zarr").metadata["format"] == 1
    write_npz(data, tmp_path / "t.npz")
    assert read_npz(tmp_path / "t.npz").equals(data)
    r = _run("export", str(tmp_path / "t.zarr"), "-o", str(tmp_path / "t.txt"))
    assert r.exit_code == 0 and "no place for readout-twirl masks" in r.output


def test_aer_saved_twirl_masks_are_imported(tmp_path: Path) -> None:
    pytest.importorskip("qiskit_aer")
    from shadowlab.plan.scheme import write_scheme

    rng = np.random.default_rng(0)
    scheme = Scheme(rng.integers(0, 3, size=(6, 3)).astype(np.uint8), np.full(6, 20, dtype=np.int64), "uniform",
                    np.full((3, 3), 1 / 3))
    write_scheme(scheme, tmp_path / "plan.txt")
    backend = make_backend("qiskit-aer", "ghz:3", noise=NOISE, readout_twirl=True)
    masks = rng.integers(0, 2, size=(120, 3), dtype=np.uint8)
    outcomes = backend.run_batch(scheme.settings, scheme.repeats, 5, twirl=masks, save_to=tmp_path / "res.json")
    r = _run("import", str(tmp_path / "res.json"), "--plan", str(tmp_path / "plan.txt"), "-o",
             str(tmp_path / "imp.zarr"))
    assert r.exit_code == 0, r.output
    stored = ShadowStore.open(tmp_path / "imp.zarr")
    assert stored.readout_twirl
    back = stored.load()
    assert np.array_equal(back.twirl, masks) and np.array_equal(back.outcomes, outcomes)


def test_robust_energy_and_variance() -> None:
    """<H>, <H^2> and Var(H) of a noisy cluster state, calibrated: within 5 s.e. of the exact values."""
    from shadowlab.estimate.hamiltonian import estimate_energy_variance
    from shadowlab.paulis import square_pauli_sum

    n = 4
    state = prepare_state(f"cluster:{n}")
    h = PauliSum.from_labels(["X0 Z1", "Z0 X1 Z2", "Z1 X2 Z3", "Z2 X3", "Z0 Z1", "X1"], [1.0, 0.7, -0.5, 0.3, 0.2, 0.4],
                             n_qubits=n)
    noisy = NOISE.state_circuit(state.circuit)

    def exact(op: PauliSum) -> float:
        return float(op.coeffs @ exact_noisy_pauli_expectations(noisy, op, n_qubits=n))

    e, e2 = exact(h), exact(square_pauli_sum(h))
    data = simulate(state, 200_000, seed=31, noise=NOISE, readout_twirl=True)
    zero = simulate(calibration_state(n), 200_000, seed=32, noise=NOISE, readout_twirl=True)
    cal = calibrate(zero, locality=4)
    robust = estimate_energy_variance(data, h, calibration=cal)
    assert robust.calibrated
    for value, expected, se in zip(robust.estimate, (e, e2, e2 - e * e), robust.stderr, strict=True):
        assert _within(float(value), expected, float(se))
    # The energy row is the calibrated sum.
    total = estimate_sum(data, h, calibration=cal)
    assert math.isclose(float(robust.estimate[0]), float(total.estimate[0]), rel_tol=1e-12)
    # Uncalibrated, the energy is attenuated: far from exact in its own errors.
    raw = estimate_energy_variance(data, h)
    assert abs(float(raw.estimate[0]) - e) > 5 * float(raw.stderr[0])
    # H^2 has terms of weight 4: a locality-3 calibration cannot serve the variance.
    with pytest.raises(EstimationError, match="heavier than the calibrated locality 3"):
        estimate_energy_variance(data, h, calibration=calibrate(zero, locality=3))
