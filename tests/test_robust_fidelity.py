"""Robust fidelity from noisy global-Clifford shadows (Chen, Yu, Zeng, Flammia, PRX Quantum 2, 030348 (2021)).

Model under test: measurement noise after the random global Clifford (measurement-layer flips,
asymmetric readout) turns the shadow channel into ``f rho + (1 - f) tr(rho) I / 2^n``; a
calibration on ``|0...0>`` measures ``f`` and ``F = (mean x - 2^-n) / f + 2^-n`` is unbiased.

* Exact: the formula ``E[x] = f F + (1 - f) / 2^n`` and the product-noise value
  ``f = (prod_i (1 + lambda_i) - 1) / (4^n - 1)``, ``lambda_i = (1 - 4p/3)(1 - p01_i - p10_i)``, are
  checked by averaging over the whole 2-qubit Clifford group (11,520 elements).
* Statistical (fixed seeds, 5-standard-error tolerances): GHZ on 4 to 16 qubits with readout
  noise ``p01 = 0.05``, ``p10 = 0.15`` (and dephasing): the plain estimate is biased low by many
  standard errors, the calibrated one agrees with the exact fidelity, ``f_hat`` with the formula.
"""

from __future__ import annotations

import functools
import itertools
import json
import math

import numpy as np
import pytest
import stim

import shadowlab.cli_fidelity  # noqa: F401  (registers the commands)
from shadowlab.acquire.clifford_shadows import iter_clifford_snapshots, make_state, provenance, sample_snapshots
from shadowlab.acquire.noise import NoiseModel
from shadowlab.data.clifford_store import CliffordSnapshots, CliffordStore
from shadowlab.errors import EstimationError, QubitCountMismatchError, ShadowlabError
from shadowlab.estimate.calibration import CalibrationWarning
from shadowlab.estimate.fidelity import (
    CliffordCalibration,
    calibrate_clifford,
    estimate_fidelity,
    fidelity_values,
    ideal_shadow_factor,
    predicted_shadow_factor,
    read_clifford_calibration,
    summarize,
)

READOUT = NoiseModel(readout_p01=0.05, readout_p10=0.15)
Z = 5.0  # tolerance in standard errors


@functools.cache
def _snapshots(spec: str, n_snapshots: int, seed: int, noise: NoiseModel | None = READOUT,
               dephasing: float = 0.0) -> CliffordSnapshots:
    state = make_state(spec, noise=noise, dephasing=dephasing)
    tabs: list[stim.Tableau] = []
    outs = []
    for t, o in iter_clifford_snapshots(state, n_snapshots, seed=seed):
        tabs += t
        outs.append(o)
    meta = provenance(state, n_snapshots=n_snapshots, seed=seed, batch_snapshots=256)
    return CliffordSnapshots.from_tableaux(tabs, np.concatenate(outs), meta)


# -- exact checks of the model ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _two_qubit_clifford_unitaries() -> list[np.ndarray]:
    """All 11,520 two-qubit Cliffords modulo phase (a closure of H, S and CX), as unitaries (qubit 0 = MSB)."""
    def gate(name: str, qubits: list[int]) -> stim.Tableau:
        c = stim.Circuit()
        c.append(name, qubits)
        c.append("I", [1])
        return stim.Tableau.from_circuit(c)

    generators = [gate("H", [0]), gate("H", [1]), gate("S", [0]), gate("S", [1]), gate("CX", [0, 1])]
    seen = {str(stim.Tableau(2)): stim.Tableau(2)}
    frontier = list(seen.values())
    while frontier:
        new = []
        for t in frontier:
            for g in generators:
                u = g * t
                if str(u) not in seen:
                    seen[str(u)] = u
                    new.append(u)
        frontier = new
    return [t.to_unitary_matrix(endian="big").astype(np.complex128) for t in seen.values()]


def test_shadow_channel_is_depolarizing_with_the_predicted_factor():
    us = _two_qubit_clifford_unitaries()
    assert len(us) == 11520  # |C_2 / U(1)|
    noise = NoiseModel(depolarizing=0.03, readout_p01=(0.05, 0.2), readout_p10=(0.15, 0.02))
    q = noise.measurement_flip
    p01, p10 = noise.readout(2)
    # Classical readout matrix R[b, b'] = P(read b | ideal outcome b'): symmetric flip q, then readout.
    flip = np.array([[1 - q, q], [q, 1 - q]])
    r = np.kron(*[np.array([[1 - p01[i], p10[i]], [p01[i], 1 - p10[i]]]) @ flip for i in range(2)])
    f = predicted_shadow_factor(noise, 2)
    assert f < ideal_shadow_factor(2) == pytest.approx(1 / 5)
    rng = np.random.default_rng(7)
    for _ in range(3):
        a = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        rho = a @ a.conj().T
        rho /= np.trace(rho)
        psi = rng.normal(size=4) + 1j * rng.normal(size=4)
        psi /= np.linalg.norm(psi)
        big_f = float(np.real(psi.conj() @ rho @ psi))
        # E[x] = average over U and over the noisy outcome b of |<b|U|psi>|^2.
        ex = np.mean([(r @ np.real(np.diag(u @ rho @ u.conj().T))) @ (np.abs(u @ psi) ** 2) for u in us])
        assert ex == pytest.approx(f * big_f + (1 - f) / 4, abs=1e-6)  # unitaries are complex64 in stim
    # The calibration identity on |00> (F = 1): f = (E[x0] - 1/4) / (1 - 1/4).
    ex0 = np.mean([(r @ np.abs(u[:, 0]) ** 2) @ (np.abs(u[:, 0]) ** 2) for u in us])
    assert (ex0 - 0.25) / 0.75 == pytest.approx(f, abs=1e-6)


def test_predicted_factor_values():
    # Noiseless: (2^n - 1) / (4^n - 1) = 1 / (2^n + 1).
    for n in (1, 5, 30):
        assert predicted_shadow_factor(NoiseModel(), n) == pytest.approx(ideal_shadow_factor(n), rel=1e-12)
    # One qubit, lambda = 1 - 0.05 - 0.15 = 0.8: f = (1.8 - 1) / 3.
    assert predicted_shadow_factor(READOUT, 1) == pytest.approx(0.8 / 3)
    # Completely random readout (p01 + p10 = 1) destroys the signal.
    assert predicted_shadow_factor(NoiseModel(readout_p01=0.5, readout_p10=0.5), 4) == 0.0


def test_ideal_calibration_reproduces_the_plain_estimator():
    data = _snapshots("ghz:5", 200, 3, None)
    ideal = CliffordCalibration(ideal_shadow_factor(5), 0.0, 10**9, 5, {})
    assert np.allclose(fidelity_values(data, "ghz:5", calibration=ideal), fidelity_values(data, "ghz:5"),
                       atol=1e-9)


def test_summarize_adds_the_calibration_error_by_the_delta_method():
    values = np.array([0.5, 1.5, 0.8, 1.2, 1.0])
    cal = CliffordCalibration(0.01, 0.001, 1000, 3, {})
    plain, robust = summarize(values), summarize(values, calibration=cal)
    # se^2 = se_data^2 + ((F - 2^-n) se_f / f)^2 with F = 1, se_f / f = 0.1.
    expected = math.hypot(plain.stderr[0], (1.0 - 1 / 8) * 0.1)
    assert robust.stderr[0] == pytest.approx(expected) and robust.estimate[0] == plain.estimate[0]
    assert robust.calibrated and not plain.calibrated


# -- the noisy sampler ----------------------------------------------------------------------------------------
def test_readout_noise_flips_measured_bits_at_the_given_rates():
    n, count = 3, 4000
    ident = [stim.Tableau(n)] * count  # U = identity: ideal outcomes of |000> are all 0, of X|000> all 1
    _, b0 = sample_snapshots(make_state("zero:3", noise=READOUT), count, np.random.default_rng(1), cliffords=ident)
    flipped = make_state(stim.Circuit("X 0 1 2"), noise=READOUT)
    _, b1 = sample_snapshots(flipped, count, np.random.default_rng(2), cliffords=ident)
    for bits, rate in ((b0, 0.05), (1 - b1, 0.15)):
        se = math.sqrt(rate * (1 - rate) / bits.size)
        assert abs(bits.mean() - rate) < Z * se


def test_noisy_sampler_is_reproducible_and_recorded():
    a = _snapshots("ghz:6", 100, 4)
    b = _snapshots.__wrapped__("ghz:6", 100, 4)
    clean = _snapshots("ghz:6", 100, 4, None)
    assert np.array_equal(a.outcomes, b.outcomes) and np.array_equal(a.tableaux, clean.tableaux)
    assert not np.array_equal(a.outcomes, clean.outcomes)
    record = a.metadata["noise"]
    assert record["readout_p01"] == 0.05 and record["readout_p10"] == 0.15 and not record["readout_twirl"]
    assert clean.metadata["noise"] is None
    gate_noisy = make_state("ghz:3", noise=NoiseModel(depolarizing=0.1))
    prov = provenance(gate_noisy, n_snapshots=1, seed=0, batch_snapshots=1)
    assert prov["noise"]["state_gate_noise"] and prov["noise"]["depolarizing"] == 0.1
    assert not provenance(make_state("zero:3", noise=READOUT), n_snapshots=1, seed=0,
                          batch_snapshots=1)["noise"]["state_gate_noise"]
    with pytest.raises(ShadowlabError, match="3 per-qubit values"):
        make_state("ghz:4", noise=NoiseModel(readout_p01=(0.1, 0.1, 0.1)))
    with pytest.raises(ShadowlabError, match="zero:N"):
        make_state("zero:x")


def _exact_noisy_ghz_fidelity(n: int, p1: float, p2: float) -> float:
    """``<GHZ| rho |GHZ>`` for the GHZ circuit with DEPOLARIZE1/2 after each gate, by enumerating the errors.

    An error ``P`` after gate ``g`` leaves ``E = C_rest P C_rest^dagger`` on the final state, and
    ``|<GHZ|E|GHZ>|^2`` is 1 if ``E`` commutes with every stabilizer generator and 0 otherwise.
    """
    circuit = make_state(f"ghz:{n}").circuit
    gates = []  # (name, qubits) one gate application at a time
    for op in circuit.flattened():
        qs = [t.value for t in op.targets_copy()]
        arity = 2 if stim.gate_data(op.name).is_two_qubit_gate else 1
        gates += [(op.name, qs[i:i + arity]) for i in range(0, len(qs), arity)]
    gens = [stim.Tableau.from_circuit(circuit).z_output(k) for k in range(n)]
    channels = []  # per gate: list of (probability, the error pushed to the end of the circuit)
    for i, (_, qs) in enumerate(gates):
        rest_circuit = stim.Circuit()
        for name, targets in gates[i + 1:]:
            rest_circuit.append(name, targets)
        rest_circuit.append("I", [n - 1])
        rest = stim.Tableau.from_circuit(rest_circuit)
        if len(qs) == 1:
            options = [(1 - p1, "I")] + [(p1 / 3, s) for s in "XYZ"]
        else:
            options = [(1 - p2 if s == "II" else p2 / 15, s) for s in map("".join, itertools.product("IXYZ", repeat=2))]
        chan = []
        for prob, letters in options:
            p = stim.PauliString(n)
            for q, c in zip(qs, letters, strict=True):
                p[q] = c
            chan.append((prob, rest(p)))
        channels.append(chan)
    total = 0.0
    for combo in itertools.product(*channels):
        e = stim.PauliString(n)
        prob = 1.0
        for pr, p in combo:
            prob *= pr
            e *= p
        if all(e.commutes(g) for g in gens):
            total += prob
    return total


def test_gate_noise_of_the_preparation_is_sampled_exactly():
    noise = NoiseModel(depolarizing=0.06)  # also flips measured bits with 2p/3: calibrated away
    exact = _exact_noisy_ghz_fidelity(3, 0.06, 0.06)
    assert 0.8 < exact < 0.95
    cal = calibrate_clifford(_snapshots("zero:3", 4000, 11, noise))
    assert abs(cal.f_hat - predicted_shadow_factor(noise, 3)) < Z * cal.stderr
    est = estimate_fidelity(_snapshots("ghz:3", 4000, 12, noise), "ghz:3", calibration=cal)
    assert abs(est.estimate[0] - exact) < Z * est.stderr[0]


# -- robust fidelity of GHZ states with asymmetric readout ------------------------------------------------------
@pytest.mark.parametrize(("n", "dephasing", "n_cal", "n_data"), [
    (4, 0.0, 4000, 3000),
    (10, 0.02, 3000, 3000),
    (16, 0.0, 4000, 2000),
])
def test_calibrated_ghz_fidelity_is_unbiased(n, dephasing, n_cal, n_data):
    cal = calibrate_clifford(_snapshots(f"zero:{n}", n_cal, 100 + n))
    assert cal.n_qubits == n and cal.n_snapshots == n_cal and cal.ensemble == "global_clifford"
    f_pred = predicted_shadow_factor(READOUT, n)
    assert abs(cal.f_hat - f_pred) < Z * cal.stderr
    assert cal.relative < 0.9  # noticeably below the ideal 1 / (2^n + 1)
    data = _snapshots(f"ghz:{n}", n_data, 200 + n, READOUT, dephasing)
    exact = (1 + (1 - 2 * dephasing) ** n) / 2  # dephased GHZ vs GHZ: even number of Z errors
    plain = estimate_fidelity(data, f"ghz:{n}")
    robust = estimate_fidelity(data, f"ghz:{n}", calibration=cal)
    assert plain.estimate[0] < exact - 2 * Z * plain.stderr[0]  # biased low by many standard errors
    assert abs(robust.estimate[0] - exact) < Z * robust.stderr[0]
    assert robust.calibrated and robust.stderr[0] > plain.stderr[0]
    mom = estimate_fidelity(data, f"ghz:{n}", calibration=cal, estimator="mom")
    assert abs(mom.estimate[0] - exact) < Z * mom.stderr[0]


# -- errors ---------------------------------------------------------------------------------------------------
def test_unresolved_factor_says_how_many_more_snapshots():
    data = _snapshots("zero:20", 300, 5)
    with pytest.raises(EstimationError, match=r"indistinguishable from zero.*more") as info:
        calibrate_clifford(data)
    assert "300 calibration snapshots" in str(info.value)


def test_calibration_data_inconsistent_with_zero_state():
    ident = [stim.Tableau(3)] * 50  # x0 = 1 always: f_hat = 1 > 1/9, impossible for any noise
    tabs, b = sample_snapshots(make_state("zero:3"), 50, np.random.default_rng(0), cliffords=ident)
    with pytest.raises(ShadowlabError, match="not global-Clifford snapshots of"):
        calibrate_clifford(CliffordSnapshots.from_tableaux(tabs, b))
    with pytest.raises(ShadowlabError, match="at least 2"):
        calibrate_clifford(CliffordSnapshots.from_tableaux(tabs[:1], b[:1]))
    with pytest.warns(CalibrationWarning, match="'ghz:4', not the calibration state zero:4"):
        calibrate_clifford(_snapshots("ghz:4", 400, 1, None))


def test_calibration_mismatches_are_refused(tmp_path):
    cal = CliffordCalibration(0.05, 0.001, 1000, 4, {})
    with pytest.raises(QubitCountMismatchError, match="calibration is for 4 qubits but the data have 5"):
        estimate_fidelity(_snapshots("ghz:5", 20, 1), "ghz:5", calibration=cal)
    from shadowlab.acquire.simulate import simulate
    from shadowlab.estimate.calibration import calibrate

    local = calibrate(simulate("zero:4", 300, seed=1), locality=1)
    with pytest.raises(ShadowlabError, match="local-Pauli calibration"):
        estimate_fidelity(_snapshots("ghz:4", 20, 1), "ghz:4", calibration=local)
    local.write(tmp_path / "local.json")
    with pytest.raises(ShadowlabError, match=r"local_pauli calibration.*calibrate-clifford"):
        estimate_fidelity(_snapshots("ghz:4", 20, 1), "ghz:4", calibration=tmp_path / "local.json")
    noisier = CliffordCalibration(0.05, 0.001, 1000, 4, {"noise": {"readout_p01": 0.2, "readout_p10": 0.2}})
    with pytest.warns(CalibrationWarning, match="only corrects the noise it measured"):
        estimate_fidelity(_snapshots("ghz:4", 20, 1), "ghz:4", calibration=noisier)
    with pytest.raises(ShadowlabError, match="CliffordCalibration or the path"):
        estimate_fidelity(_snapshots("ghz:4", 20, 1), "ghz:4", calibration=0.05)
    with pytest.raises(ShadowlabError, match="positive"):
        CliffordCalibration(-0.1, 0.01, 10, 4, {})


def test_calibration_file_round_trip_and_errors(tmp_path):
    cal = calibrate_clifford(_snapshots("zero:4", 4000, 104))
    path = tmp_path / "cal.json"
    cal.write(path)
    assert read_clifford_calibration(path) == cal
    doc = json.loads(path.read_text())
    assert doc["format"] == "shadowlab-calibration" and doc["ensemble"] == "global_clifford"
    with pytest.raises(ShadowlabError, match="already exists"):
        cal.write(path)
    cal.write(path, force=True)
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind
    # The local-Pauli reader refuses it (whatever its message).
    from shadowlab.estimate.calibration import read_calibration

    with pytest.raises(ShadowlabError, match=str(path)):
        read_calibration(path)
    for name, text, message in (
        ("missing.json", None, "no such calibration file"),
        ("bad.json", "{", "not a JSON calibration"),
        ("other.json", '{"format": "x"}', "not a shadowlab calibration"),
        ("v2.json", json.dumps({**doc, "version": 2}), "version 2"),
        ("field.json", json.dumps({k: v for k, v in doc.items() if k != "f_hat"}), "f_hat"),
    ):
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ShadowlabError, match=message):
            read_clifford_calibration(tmp_path / name)


# -- the command line -----------------------------------------------------------------------------------------
def test_cli_calibrate_and_robust_fidelity(run, tmp_path):
    noise = "p01=0.05,p10=0.15"
    assert run("simulate-clifford", "zero:6", "-n", "3000", "--noise", noise, "--seed", "1", "-o", "z.zarr",
               "-q").exit_code == 0
    assert run("simulate-clifford", "ghz:6", "-n", "2000", "--noise", noise, "--seed", "2", "-o", "g.zarr",
               "-q").exit_code == 0
    assert CliffordStore.open(tmp_path / "g.zarr").metadata["provenance"]["noise"]["readout_p10"] == 0.15
    r = run("calibrate-clifford", "z.zarr", "-o", "cal.json")
    assert r.exit_code == 0, r.stderr
    assert "f / f_ideal" in " ".join(r.stderr.split())
    cal = read_clifford_calibration(tmp_path / "cal.json")
    assert abs(cal.f_hat - predicted_shadow_factor(READOUT, 6)) < Z * cal.stderr
    r = run("fidelity", "g.zarr", "--target", "ghz:6", "--format", "json", "-q")
    plain = json.loads(r.stdout)
    r = run("fidelity", "g.zarr", "--target", "ghz:6", "--calibration", "cal.json", "--format", "json", "-q")
    assert r.exit_code == 0, r.stderr
    robust = json.loads(r.stdout)
    assert robust["method"]["calibrated"] and robust["calibration"]["f_hat"] == cal.f_hat
    assert plain["estimate"] < 1 - 2 * Z * plain["stderr"]
    assert abs(robust["estimate"] - 1) < Z * robust["stderr"]
    r = run("fidelity", "g.zarr", "--target", "ghz:6", "--calibration", "cal.json")
    assert r.exit_code == 0 and "calibrated" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("calibrate-clifford", "z20.zarr", "-o", "x.json"), "more"),
    (("calibrate-clifford", "z.zarr", "-o", "exists.json"), "already exists"),
    (("calibrate-clifford", "missing.zarr", "-o", "x.json"), "no such store"),
    (("fidelity", "g.zarr", "--target", "ghz:4", "--calibration", "cal5.json"), "5 qubits"),
    (("fidelity", "g.zarr", "--target", "ghz:4", "--calibration", "local.json"), "calibrate-clifford"),
    (("fidelity", "g.zarr", "--target", "ghz:4", "--calibration", "nope.json"), "no such calibration file"),
    (("simulate-clifford", "ghz:4", "-n", "10", "--noise", "p01=2", "-o", "x.zarr"), "--noise"),
    (("simulate-clifford", "ghz:4", "-n", "10", "--noise", "flip=0.1", "-o", "x.zarr"), "--noise"),
])
def test_cli_errors(run, tmp_path, args, message):
    assert run("simulate-clifford", "zero:20", "-n", "100", "--noise", "p01=0.05,p10=0.15", "-o", "z20.zarr",
               "-q").exit_code == 0
    assert run("simulate-clifford", "zero:4", "-n", "100", "-o", "z.zarr", "-q").exit_code == 0
    assert run("simulate-clifford", "ghz:4", "-n", "20", "-o", "g.zarr", "-q").exit_code == 0
    (tmp_path / "exists.json").write_text("{}")
    CliffordCalibration(0.03, 0.001, 100, 5, {}).write(tmp_path / "cal5.json")
    (tmp_path / "local.json").write_text(json.dumps({"format": "shadowlab-calibration", "version": 1,
                                                     "ensemble": {"family": "local_pauli", "scheme": "uniform"}}))
    r = run(*args)
    assert r.exit_code == 1
    assert r.stderr.startswith("error:") and message in r.stderr and r.stderr.count("\n") <= 3, r.stderr
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.zarr").exists()
    assert (tmp_path / "exists.json").read_text() == "{}"


def test_zero_spec_has_one_parser():
    # calibration_state_size reads zero:N with prepare_state's parser: same sizes, same errors.
    from shadowlab.acquire.clifford_shadows import calibration_state_size
    from shadowlab.acquire.simulate import prepare_state

    assert calibration_state_size("zero:5") == prepare_state("zero:5").n_qubits == 5
    assert calibration_state_size(" Zero:2") == 2 and calibration_state_size("ghz:3") is None
    for bad in ("zero", "zero:x", "zero:0"):
        with pytest.raises(ShadowlabError) as ours:
            calibration_state_size(bad)
        with pytest.raises(ShadowlabError) as theirs:
            prepare_state(bad)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ShadowlabError, match="zero:N"):
        make_state("zero")
