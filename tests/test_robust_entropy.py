"""Robust (calibrated) Renyi-2 purities and reduced density matrices under noisy measurements.

The exact values are those of the *noisy state*: a robust estimate removes the measurement
noise (the basis-rotation layer's depolarizing gate and the readout flips, calibrated on
``|0...0>``), not the state-preparation gate noise, which is part of the state. The exact noisy
state is the dense density matrix of the stim circuit with its ``DEPOLARIZE1``/``DEPOLARIZE2``
channels (``NoiseModel.state_circuit``), from
:func:`shadowlab.acquire.density_matrix.density_matrix_from_stim` (checked in
``tests/test_density_matrix.py``).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from shadowlab.acquire.density_matrix import density_matrix_from_stim
from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import calibration_state, prepare_state, simulate
from shadowlab.data.dataset import ShadowData
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.calibration import Calibration, CalibrationWarning, calibrate
from shadowlab.estimate.entropy import (
    estimate_renyi2,
    pattern_counts,
    purity_from_counts,
    robust_purity_from_counts,
    subset_masks,
)
from shadowlab.estimate.rdm import _SIGMA, estimate_rdm, rdm_from_counts

NOISE = NoiseModel(depolarizing=0.01, readout_p01=0.05, readout_p10=0.15)
N_DATA = 20_000
N_CAL = 100_000


# --------------------------------------------------------------------------------------------
# Exact noisy states (dense, qubit 0 = most significant bit)
# --------------------------------------------------------------------------------------------


def reduced(rho: np.ndarray, sub: tuple[int, ...], n: int) -> np.ndarray:
    """Partial trace onto ``sub`` (its first qubit the most significant bit)."""
    rest = [q for q in range(n) if q not in sub]
    k = len(sub)
    t = rho.reshape((2,) * (2 * n)).transpose(list(sub) + rest + [n + q for q in sub] + [n + q for q in rest])
    return np.einsum("ajbj->ab", t.reshape(2**k, 2 ** (n - k), 2**k, 2 ** (n - k)))


def exact_noisy_state(spec: str) -> np.ndarray:
    state = prepare_state(spec)
    if state.circuit is not None:
        return density_matrix_from_stim(NOISE.state_circuit(state.circuit), n_qubits=state.n_qubits)
    psi = state.statevector  # a state vector has no gates, hence no state-preparation noise
    return np.outer(psi, psi.conj())


def exact_purity(rho: np.ndarray, sub: tuple[int, ...], n: int) -> float:
    r = reduced(rho, sub, n)
    return float(np.real(np.trace(r @ r)))


@pytest.fixture(scope="module")
def cal4() -> Calibration:
    """Locality-3 calibration of the 4-qubit noisy twirled measurement."""
    data = simulate(calibration_state(4), N_CAL, seed=101, noise=NOISE, readout_twirl=True)
    return calibrate(data, locality=3)


def identity_of(cal: Calibration) -> Calibration:
    """The same calibration with every factor exactly 1 (ideal measurement, no error)."""
    return dataclasses.replace(cal, attenuation=np.ones_like(cal.attenuation), stderr=np.zeros_like(cal.stderr))


SUBSYSTEMS = [(0,), (2,), (0, 1), (1, 3), (0, 1, 2), (3, 1, 2)]


# --------------------------------------------------------------------------------------------
# Exact identities on tiny data
# --------------------------------------------------------------------------------------------


def _tiny(seed: int = 0, n_snap: int = 40) -> ShadowData:
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 3, (n_snap, 4)).astype(np.uint8)
    o = rng.integers(0, 2, (n_snap, 4)).astype(np.uint8)
    b[: n_snap // 2, 1] = 2  # some structure, so that <Z_1> is not 0
    o[:, 1] = 0
    return ShadowData(b, o)


def test_robust_purity_is_the_u_statistic_of_the_robust_kernel_by_brute_force():
    # h(s, t) = 2^-k sum_B 9^|B| / g_B^2 prod_{q in B} [b_sq = b_tq] (-1)^(o_sq + o_tq) over ordered
    # pairs s != t, and Hoeffding's variance with the unbiased zeta estimates of purity_from_counts.
    data, sub = _tiny(), (1, 3, 0)
    k, n = len(sub), data.n_snapshots
    (counts,) = pattern_counts(data, [sub])
    rng = np.random.default_rng(5)
    g = np.concatenate([[1.0], rng.uniform(0.5, 1.0, 2**k - 1)])
    masks = subset_masks(k)

    def h(s: int, t: int) -> float:
        total = 0.0
        for m, pos in enumerate(masks):
            v = 9.0 ** len(pos) / g[m] ** 2
            for j in pos:
                q = sub[j]
                v *= 0.0 if data.bases[s, q] != data.bases[t, q] else (-1.0) ** (
                    int(data.outcomes[s, q]) + int(data.outcomes[t, q]))
            total += v
        return total / 2**k

    kern = np.array([[h(s, t) for t in range(n)] for s in range(n)])
    np.fill_diagonal(kern, 0.0)
    pairs = n * (n - 1.0)
    u = kern.sum() / pairs
    a = kern.sum(axis=1)
    sum_b = float((kern**2).sum())
    eh1 = (float(a @ a) - sum_b) / (pairs * (n - 2))
    var = (4 * (n - 2) * max(eh1 - u * u, 0.0) + 2 * max(sum_b / pairs - u * u, 0.0)) / pairs
    stats = robust_purity_from_counts(counts, k, g, np.zeros(2**k))
    assert stats.purity == pytest.approx(u, rel=1e-12)
    assert stats.stderr == pytest.approx(np.sqrt(var), rel=1e-10)
    # Calibration part: the bound sum_B |d purity / d g_B| se_B (derivatives by finite differences).
    se_g = np.concatenate([[0.0], np.full(2**k - 1, 0.01)])
    with_cal = robust_purity_from_counts(counts, k, g, se_g)
    bound = 0.0
    for m in range(1, 2**k):
        gg = g.copy()
        gg[m] += 1e-7
        bound += abs(robust_purity_from_counts(counts, k, gg, 0 * se_g).purity - u) / 1e-7 * se_g[m]
    assert with_cal.calibration_stderr == pytest.approx(bound, rel=1e-5)
    assert with_cal.stderr == pytest.approx(np.hypot(np.sqrt(var), bound), rel=1e-5)


def test_unit_attenuations_give_the_plain_estimator_exactly():
    data, sub = _tiny(1, 60), (2, 0, 3)
    (counts,) = pattern_counts(data, [sub])
    plain = purity_from_counts(counts, 3)
    robust = robust_purity_from_counts(counts, 3, np.ones(8), np.zeros(8))
    assert robust.purity == pytest.approx(plain.purity, rel=1e-12, abs=1e-12)
    assert robust.stderr == pytest.approx(plain.stderr, rel=1e-12, abs=1e-12)
    r0 = rdm_from_counts(counts, sub)
    r1 = rdm_from_counts(counts, sub, attenuation=(np.ones(8), np.zeros(8)))
    for field in ("matrix", "stderr_real", "stderr_imag"):
        np.testing.assert_allclose(getattr(r1, field), getattr(r0, field), rtol=0, atol=1e-12)
    assert r1.calibrated and not r0.calibrated


def test_robust_rdm_is_the_average_of_robust_snapshot_matrices_by_brute_force():
    # X_s = sum_B (1 / g_B) tensor_j (q_j in B ? 3 (-1)^o P_b / 2 : I / 2); mean and per-entry s.e.
    data, sub = _tiny(2, 50), (1, 3, 0)
    k, n = len(sub), data.n_snapshots
    (counts,) = pattern_counts(data, [sub])
    g = np.concatenate([[1.0], np.random.default_rng(3).uniform(0.5, 1.0, 2**k - 1)])
    half = np.eye(2) / 2
    snaps = []
    for s in range(n):
        total = np.zeros((2**k, 2**k), dtype=complex)
        for m, pos in enumerate(subset_masks(k)):
            mat = np.eye(1)
            for j, q in enumerate(sub):
                d = 2 * int(data.bases[s, q]) + int(data.outcomes[s, q])
                mat = np.kron(mat, _SIGMA[d] - half if j in pos else half)
            total += mat / g[m]
        snaps.append(total)
    x = np.array(snaps)
    r = rdm_from_counts(counts, sub, attenuation=(g, np.zeros(2**k)))
    np.testing.assert_allclose(r.matrix, x.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(r.stderr_real, x.real.std(axis=0, ddof=1) / np.sqrt(n), atol=1e-12)
    np.testing.assert_allclose(r.stderr_imag, x.imag.std(axis=0, ddof=1) / np.sqrt(n), atol=1e-12)


# --------------------------------------------------------------------------------------------
# Statistical tests against exact noisy states
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,seed", [("ghz:4", 11), ("cluster:4", 12), ("product:0+1-", 13)])
def test_robust_purity_matches_the_noisy_state_and_the_plain_one_is_biased(cal4, spec, seed):
    rho = exact_noisy_state(spec)
    data = simulate(spec, N_DATA, seed=seed, noise=NOISE, readout_twirl=True)
    robust = estimate_renyi2(data, SUBSYSTEMS, calibration=cal4)
    plain = estimate_renyi2(data, SUBSYSTEMS)
    assert robust.calibrated and not plain.calibrated
    assert robust.describe()["calibrated"] is True
    biased = 0
    for i, sub in enumerate(SUBSYSTEMS):
        exact = exact_purity(rho, sub, 4)
        assert abs(robust.purity[i] - exact) <= 5 * robust.purity_stderr[i], (spec, sub, robust.purity[i], exact)
        # The calibration is one of the error sources: the robust s.e. exceeds the plain one.
        assert robust.purity_stderr[i] >= plain.purity_stderr[i]
        # Noise shrinks every Pauli expectation: the plain purity is low wherever some <P> != 0 on the
        # subsystem (not for a maximally mixed one, such as one qubit of a GHZ or cluster state).
        if exact > 2.0 ** -len(sub) + 0.05:
            assert plain.purity[i] + 5 * plain.purity_stderr[i] < exact, (spec, sub, plain.purity[i], exact)
            biased += 1
    assert biased >= 3


def test_robust_purity_with_repeated_settings(cal4):
    # Same-setting pairs excluded per Pauli, delete-one-setting jackknife s.e.
    rho = exact_noisy_state("ghz:4")
    data = simulate("ghz:4", N_DATA, repeats=5, seed=21, noise=NOISE, readout_twirl=True)
    robust = estimate_renyi2(data, SUBSYSTEMS, calibration=cal4, chunk_snapshots=3001)  # runs split across chunks
    assert robust.same_setting_excluded and robust.calibrated
    for i, sub in enumerate(SUBSYSTEMS):
        exact = exact_purity(rho, sub, 4)
        assert abs(robust.purity[i] - exact) <= 5 * robust.purity_stderr[i], (sub, robust.purity[i], exact)


@pytest.mark.parametrize("repeats", [1, 4])
def test_identity_calibration_reproduces_the_plain_estimator(cal4, repeats):
    data = simulate("cluster:4", 6000, repeats=repeats, seed=31, noise=NOISE, readout_twirl=True)
    plain = estimate_renyi2(data, SUBSYSTEMS)
    robust = estimate_renyi2(data, SUBSYSTEMS, calibration=identity_of(cal4), chunk_snapshots=1000)
    np.testing.assert_allclose(robust.purity, plain.purity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(robust.purity_stderr, plain.purity_stderr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(robust.entropy, plain.entropy, rtol=0, atol=1e-12)


def test_without_noise_exact_calibration_equals_plain():
    data = simulate("ghz:4", 5000, seed=41)
    cal = identity_of(calibrate(simulate(calibration_state(4), 2000, seed=42), locality=2))
    plain = estimate_renyi2(data, [(0, 1), (2, 3)])
    robust = estimate_renyi2(data, [(0, 1), (2, 3)], calibration=cal)
    np.testing.assert_allclose(robust.purity, plain.purity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(robust.purity_stderr, plain.purity_stderr, rtol=0, atol=1e-12)


def test_robust_rdm_matches_the_noisy_state(cal4):
    rho = exact_noisy_state("ghz:4")
    data = simulate("ghz:4", N_DATA, seed=51, noise=NOISE, readout_twirl=True)
    for sub in [(0, 1), (2, 0, 3)]:
        exact = reduced(rho, sub, 4)
        robust = estimate_rdm(data, sub, calibration=cal4)
        plain = estimate_rdm(data, sub)
        assert robust.calibrated and robust.to_dict()["calibrated"] is True
        assert np.all(np.abs(robust.matrix.real - exact.real) <= 5 * robust.stderr_real + 1e-12)
        assert np.all(np.abs(robust.matrix.imag - exact.imag) <= 5 * robust.stderr_imag + 1e-12)
        assert np.trace(robust.matrix).real == pytest.approx(1.0, abs=1e-12)
        # <0..0|rho|0..0> = 2^-k sum_{P in {I, Z}^k} <P> is about 1/2: the noise shrinks the ZZ terms
        # in the plain estimate (towards 2^-k), not in the robust one.
        assert plain.matrix[0, 0].real + 5 * plain.stderr_real[0, 0] < exact[0, 0].real
        assert abs(robust.matrix[0, 0].real - exact[0, 0].real) <= 5 * robust.stderr_real[0, 0]


# --------------------------------------------------------------------------------------------
# Refusals and warnings
# --------------------------------------------------------------------------------------------


def test_calibration_of_lower_locality_is_refused():
    cal1 = calibrate(simulate(calibration_state(4), 5000, seed=61, noise=NOISE, readout_twirl=True), locality=1)
    data = simulate("ghz:4", 1000, seed=62, noise=NOISE, readout_twirl=True)
    with pytest.raises(EstimationError, match=r"subsystem \[0, 1\].*locality >= 2"):
        estimate_renyi2(data, [(0,), (0, 1)], calibration=cal1)
    with pytest.raises(EstimationError, match="locality >= 2"):
        estimate_rdm(data, (0, 1), calibration=cal1)
    # One qubit is fine with locality 1.
    assert estimate_renyi2(data, [(0,), (3,)], calibration=cal1).calibrated


def test_missing_subsets_message_asks_for_a_complete_locality():
    # A robust purity needs every subset of the subsystem: calibrating observables' supports
    # cannot supply them, so the message must ask for a complete locality, not --observables.
    zero = simulate(calibration_state(4), 2000, seed=64, noise=NOISE, readout_twirl=True)
    data = simulate("ghz:4", 500, seed=65, noise=NOISE, readout_twirl=True)
    listed = calibrate(zero, subsets=[(0,), (1,), (2,), (0, 1)])
    for cal, kind in ((calibrate(zero, locality=1), "complete to locality 1"), (listed, "listed subsets only")):
        for estimate in (lambda c: estimate_renyi2(data, [(0, 1, 2)], calibration=c),
                         lambda c: estimate_rdm(data, (0, 1, 2), calibration=c)):
            with pytest.raises(EstimationError) as info:
                estimate(cal)
            message = str(info.value)
            assert "subsystem [0, 1, 2]" in message and kind in message, message
            assert "shadowlab calibrate --locality 3" in message and "--observables" not in message, message
    # A listed-subset calibration that holds every subset is enough.
    assert estimate_renyi2(data, [(0, 1)], calibration=listed).calibrated


def test_calibration_of_another_register_is_refused(cal4):
    data = simulate("ghz:3", 500, seed=63, noise=NOISE, readout_twirl=True)
    with pytest.raises(ShadowlabError, match="calibration is for 4 qubits"):
        estimate_renyi2(data, [(0,)], calibration=cal4)
    with pytest.raises(ShadowlabError, match="calibration is for 4 qubits"):
        estimate_rdm(data, (0,), calibration=cal4)


def test_twirl_mismatch_warns(cal4):
    data = simulate("ghz:4", 1000, seed=64, noise=NOISE, readout_twirl=False)
    with pytest.warns(CalibrationWarning, match="twirl"):
        estimate_renyi2(data, [(0, 1)], calibration=cal4)
    with pytest.warns(CalibrationWarning, match="twirl"):
        estimate_rdm(data, (0, 1), calibration=cal4)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, cal4):
    from shadowlab.data.store import write_store

    write_store(simulate("ghz:4", 8000, seed=71, noise=NOISE, readout_twirl=True), tmp_path / "d.zarr")
    write_store(simulate("ghz:4", 2000, seed=72, noise=NOISE, readout_twirl=False), tmp_path / "untwirled.zarr")
    cal4.write(tmp_path / "cal.json")
    return tmp_path


def test_cli_entropy_and_rdm_with_calibration(run, files, cal4):
    from shadowlab.data.store import ShadowStore

    r = run("entropy", "d.zarr", "--subsystems", "0,1;1,2,3", "--calibration", "cal.json", "--format", "json", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["method"]["calibrated"] is True
    assert "calibrated (robust shadows)" in r.stderr
    lib = estimate_renyi2(ShadowStore.open(files / "d.zarr"), [(0, 1), (1, 2, 3)], calibration=cal4)
    np.testing.assert_allclose([row["purity"] for row in doc["entropies"]], lib.purity, rtol=1e-12)
    np.testing.assert_allclose([row["purity_stderr"] for row in doc["entropies"]], lib.purity_stderr, rtol=1e-12)
    table = run("entropy", "d.zarr", "--max-size", "2", "--calibration", "cal.json", "-q")
    assert table.exit_code == 0, table.stderr
    assert "calibrated" in table.stdout.replace("\n", " ")
    r = run("rdm", "d.zarr", "--qubits", "0,1", "--calibration", "cal.json", "--format", "json", "--no-project", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["calibrated"] is True
    lib_rdm = estimate_rdm(ShadowStore.open(files / "d.zarr"), (0, 1), calibration=cal4)
    np.testing.assert_allclose(doc["matrix_real"], lib_rdm.matrix.real, atol=1e-12)
    table = run("rdm", "d.zarr", "--qubits", "0,1", "--calibration", "cal.json", "-q")
    assert table.exit_code == 0, table.stderr
    assert "calibrated" in table.stdout


def test_cli_twirl_mismatch_is_a_one_line_warning(run, files):
    r = run("entropy", "untwirled.zarr", "--subsystems", "0,1", "--calibration", "cal.json", "-q")
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "twirl" in line]
    assert len(lines) == 1 and lines[0].startswith("warning:"), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("command", [("entropy", "--subsystems", "0,1"), ("rdm", "--qubits", "0,1")])
def test_cli_bad_calibration_files(run, files, command):
    name, *opts = command
    (files / "garbage.json").write_text("this is not JSON {")
    (files / "other.json").write_text(json.dumps({"format": "something-else"}))
    for path, fragment in [("missing.json", "no such calibration file"), ("garbage.json", "not a JSON calibration"),
                           ("other.json", "not a shadowlab calibration")]:
        r = run(name, "d.zarr", *opts, "--calibration", path, "-q")
        assert r.exit_code == 1, (path, r.stdout, r.stderr)
        assert r.stderr.startswith("error:") and path in r.stderr and fragment in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_cli_low_locality_is_a_clear_error(run, files):
    cal1 = calibrate(simulate(calibration_state(4), 3000, seed=73, noise=NOISE, readout_twirl=True), locality=1)
    cal1.write(files / "cal1.json")
    r = run("entropy", "d.zarr", "--subsystems", "0,1", "--calibration", "cal1.json", "-q")
    assert r.exit_code == 1, r.stdout
    assert r.stderr.startswith("error:") and "locality >= 2" in r.stderr, r.stderr
    r = run("rdm", "d.zarr", "--qubits", "0,1,2", "--calibration", "cal1.json", "-q")
    assert r.exit_code == 1 and "locality >= 3" in r.stderr, r.stderr
