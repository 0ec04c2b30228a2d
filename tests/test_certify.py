"""Shadow-overlap certification: exact small-n checks, 20+ qubit acceptance, bad inputs, CLI."""

import json
import math
import os

import numpy as np
import pytest
import stim

import shadowlab.cli_certify  # noqa: F401 - registers the command
from shadowlab.acquire.certify_sampling import CertificationRounds, apply_noise, sample_certification_rounds
from shadowlab.acquire.clifford_states import builtin_clifford
from shadowlab.acquire.states import haar_random_state
from shadowlab.errors import InputFormatError, QubitCountMismatchError, ShadowlabError, StateError
from shadowlab.estimate.certify import certify, exact_shadow_overlap, relaxation_time, round_values

SMALL_SPECS = ["cluster:4", "cluster2d:2x3", "ghz:3", "toric:2"]


def vector(circuit):
    psi = circuit.to_tableau().to_state_vector(endian="big").astype(np.complex128)
    return psi / np.linalg.norm(psi)


def _seeded_clifford(n, seed):
    # stim.Tableau.random has no seed argument: build a random circuit from a numpy generator.
    rng = np.random.default_rng(seed)
    c = stim.Circuit()
    for _ in range(4 * n):
        q = int(rng.integers(n))
        gate = ["H", "S", "X", "Z"][rng.integers(4)]
        c.append(gate, [q])
        if n > 1 and rng.random() < 0.6:
            a, b = rng.choice(n, size=2, replace=False)
            c.append("CNOT" if rng.random() < 0.5 else "CZ", [int(a), int(b)])
    c.append("I", [n - 1])
    return c


def all_rounds(n):
    """Every (k, z_{-k}, basis, outcome) once, as CertificationRounds."""
    shifts = np.arange(n - 1, -1, -1)
    bits = ((np.arange(2**n)[:, None] >> shifts) & 1).astype(np.uint8)
    ks, zs, bs, os_ = [], [], [], []
    for k in range(n):
        for b in range(3):
            z = bits.copy()
            z[:, k] = 0
            ks.append(np.full(2**n, k))
            zs.append(z)
            bs.append(np.full(2**n, b))
            os_.append(bits[:, k])
    return CertificationRounds(n, np.concatenate(ks), np.concatenate(zs), np.concatenate(bs), np.concatenate(os_))


def shadow_operator(psi):
    """L = (1/n) sum_k sum_z |z_{-k}><z_{-k}| (x) |psi_kz><psi_kz| built directly (independent check)."""
    n = psi.size.bit_length() - 1
    dim = psi.size
    lop = np.zeros((dim, dim), dtype=complex)
    for k in range(n):
        bit = 1 << (n - 1 - k)
        for x in range(dim):
            if x & bit:
                continue
            amp = np.array([psi[x], psi[x | bit]])
            norm = np.linalg.norm(amp)
            if norm < 1e-12:
                continue
            v = np.zeros(dim, dtype=complex)
            v[x], v[x | bit] = amp / norm
            lop += np.outer(v, v.conj())
    return lop / n


# ----------------------------------------------------------------------------- exact, small n


@pytest.mark.parametrize("spec", SMALL_SPECS)
def test_stabilizer_round_values_match_statevector(spec):
    c = builtin_clifford(spec)
    rounds = all_rounds(c.num_qubits)
    np.testing.assert_allclose(round_values(rounds, c), round_values(rounds, vector(c)), atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_random_clifford_round_values_match_statevector(seed):
    c = _seeded_clifford(4, seed)
    rounds = all_rounds(4)
    np.testing.assert_allclose(round_values(rounds, c), round_values(rounds, vector(c)), atol=1e-6)


def test_exact_target_has_shadow_overlap_one():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        psi = haar_random_state(n, rng)
        assert exact_shadow_overlap(psi, psi) == pytest.approx(1.0, abs=1e-12)
    for spec in SMALL_SPECS:
        c = builtin_clifford(spec)
        assert exact_shadow_overlap(c, c) == pytest.approx(1.0, abs=1e-12)
        assert exact_shadow_overlap(vector(c), vector(c)) == pytest.approx(1.0, abs=1e-12)


def test_exact_overlap_is_trace_of_shadow_operator():
    rng = np.random.default_rng(1)
    psi = haar_random_state(3, rng)
    other = haar_random_state(3, rng)
    rho = apply_noise(0.7 * np.outer(psi, psi.conj()) + 0.3 * np.outer(other, other.conj()), 0.1)
    assert exact_shadow_overlap(psi, rho) == pytest.approx(np.trace(shadow_operator(psi) @ rho).real, abs=1e-12)


@pytest.mark.parametrize(("spec", "tau"), [("cluster:4", 4), ("cluster2d:2x3", 6), ("ghz:3", math.inf),
                                           ("toric:2", math.inf)])
def test_relaxation_time_builtin(spec, tau):
    c = builtin_clifford(spec)
    assert relaxation_time(c) == tau
    assert relaxation_time(vector(c)) == pytest.approx(tau, rel=1e-9)


@pytest.mark.parametrize("text", ["H 0\nI 2", "H 0\nH 2\nI 1", "X 1\nI 2", "H 0\nCNOT 0 1\nI 2",
                                  "H 0\nH 1\nCNOT 0 2\nCNOT 1 2", "H 0 1 2\nCZ 0 1 1 2\nX 1"])
def test_analytic_tau_matches_transition_matrix(text):
    c = stim.Circuit(text)
    assert relaxation_time(c) == pytest.approx(relaxation_time(vector(c)), rel=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_analytic_tau_matches_transition_matrix_random(seed):
    c = _seeded_clifford(5, seed)
    assert relaxation_time(c) == pytest.approx(relaxation_time(vector(c)), rel=1e-9)


def test_bound_never_exceeds_true_fidelity():
    rng = np.random.default_rng(2)
    checked = 0
    for trial in range(30):
        n = 3 if trial % 2 else 4
        psi = haar_random_state(n, rng)
        tau = relaxation_time(psi)
        lop = shadow_operator(psi)
        eig = np.linalg.eigvalsh(lop)
        assert eig[-1] == pytest.approx(1.0)
        assert 1.0 - eig[-2] >= 1.0 / tau - 1e-9  # the lemma behind the bound
        other = haar_random_state(n, rng)
        mix = rng.uniform(0.0, 0.3)
        rho = (1 - mix) * np.outer(psi, psi.conj()) + mix * np.outer(other, other.conj())
        rho = apply_noise(rho, rng.uniform(0.0, 0.05), "depolarize" if trial % 3 else "dephase")
        fidelity = np.vdot(psi, rho @ psi).real
        overlap = exact_shadow_overlap(psi, rho)
        assert 1.0 - tau * (1.0 - overlap) <= fidelity + 1e-9
        checked += fidelity > 1.0 - tau * (1.0 - overlap) > 0  # a non-vacuous bound
    assert checked > 5


@pytest.mark.parametrize("seed", range(8))
def test_bound_never_exceeds_true_fidelity_stabilizer(seed):
    rng = np.random.default_rng(100 + seed)
    target = _seeded_clifford(4, seed)
    psi = vector(target)
    tau = relaxation_time(target)
    eig = np.linalg.eigvalsh(shadow_operator(psi))
    if math.isfinite(tau):
        assert 1.0 - eig[-2] >= 1.0 / tau - 1e-9
    else:
        assert eig[-2] == pytest.approx(1.0)  # another state with overlap 1: nothing can be certified
    wrong = target.copy()
    wrong.append(["X", "S", "H"][seed % 3], [seed % 4])
    mix = rng.uniform(0.0, 0.2)
    rho = (1 - mix) * np.outer(psi, psi.conj()) + mix * np.outer(vector(wrong), vector(wrong).conj())
    rho = apply_noise(rho, rng.uniform(0.0, 0.05))
    fidelity = np.vdot(psi, rho @ psi).real
    overlap = exact_shadow_overlap(target, rho)
    assert overlap == pytest.approx(exact_shadow_overlap(psi, rho), abs=1e-9)
    assert 1.0 - tau * (1.0 - overlap) <= fidelity + 1e-9


@pytest.mark.parametrize(("kind", "noise"), [("depolarize", 0.15), ("dephase", 0.2)])
def test_sampled_mean_matches_exact_statevector(kind, noise):
    rng = np.random.default_rng(3)
    target = haar_random_state(4, rng)
    prepared = 0.9 * target + 0.1 * haar_random_state(4, rng)
    prepared /= np.linalg.norm(prepared)
    rounds = sample_certification_rounds(prepared, 40000, rng, noise=noise, noise_kind=kind)
    omega = round_values(rounds, target)
    exact = exact_shadow_overlap(target, apply_noise(prepared, noise, kind))
    assert abs(omega.mean() - exact) < 5 * omega.std() / np.sqrt(omega.size)


@pytest.mark.parametrize(("kind", "noise"), [("depolarize", 0.1), ("dephase", 0.2)])
def test_sampled_mean_matches_exact_stim(kind, noise):
    rng = np.random.default_rng(4)
    target = builtin_clifford("cluster2d:2x3")
    prepared = target.copy()
    prepared.append("S", [2])  # a wrong preparation
    rounds = sample_certification_rounds(prepared, 40000, rng, noise=noise, noise_kind=kind)
    omega = round_values(rounds, target)
    exact = exact_shadow_overlap(target, apply_noise(vector(prepared), noise, kind))
    assert exact < 0.99
    assert abs(omega.mean() - exact) < 5 * omega.std() / np.sqrt(omega.size)


def test_density_matrix_sampling_matches_exact():
    rng = np.random.default_rng(5)
    target = builtin_clifford("cluster:3")
    rho = apply_noise(vector(target), 0.2)
    rounds = sample_certification_rounds(rho, 30000, rng)
    omega = round_values(rounds, target)
    assert abs(omega.mean() - exact_shadow_overlap(target, rho)) < 5 * omega.std() / np.sqrt(omega.size)


def test_sampling_is_reproducible():
    c = builtin_clifford("cluster:6")
    a = sample_certification_rounds(c, 500, np.random.default_rng(7), noise=0.1)
    b = sample_certification_rounds(c, 500, np.random.default_rng(7), noise=0.1)
    for f in ("qubit", "z", "basis", "outcome"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not a.z[np.arange(500), a.qubit].any()


# --------------------------------------------------------------------------- acceptance, 20+ qubits


def test_cluster24_correct_preparation_certified():
    c = builtin_clifford("cluster:24")
    rounds = sample_certification_rounds(c, 1_000_000, np.random.default_rng(10))
    res = certify(rounds, c)
    assert res.relaxation_time == 24
    assert res.method == "hoeffding"
    assert res.verdict == "certified" and res.certified
    assert res.fidelity_lower_bound > 0.9
    assert res.fidelity_lower_bounds["normal"] >= res.fidelity_lower_bounds["hoeffding"]


def test_cluster2d_correct_preparation_certified():
    c = builtin_clifford("cluster2d:5x5")
    rounds = sample_certification_rounds(c, 1_000_000, np.random.default_rng(11))
    res = certify(rounds, c, method="bernstein")
    assert res.relaxation_time == 25
    assert res.verdict == "certified", res.reason


def test_cluster24_orthogonal_and_wrong_preparations_rejected():
    target = builtin_clifford("cluster:24")
    flipped = target.copy()
    flipped.append("Z", [11])  # flips the sign of one stabilizer: orthogonal to the target
    product = stim.Circuit("I " + " ".join(map(str, range(24))))
    noisy = target.copy()
    noisy.append("DEPOLARIZE1", range(24), 0.05)
    rng = np.random.default_rng(12)
    for prepared, expected_mean in ((flipped, 1 - 1 / 24), (product, 0.5), (noisy, None)):
        rounds = sample_certification_rounds(prepared, 200_000, rng)
        res = certify(rounds, target)
        assert res.verdict == "rejected", res.reason
        assert res.fidelity_lower_bounds["normal"] < 0.9
        if expected_mean is not None:
            assert abs(res.shadow_overlap - expected_mean) < 5 * res.standard_error
    # Noise given to the sampler instead of the circuit: also rejected.
    res = certify(sample_certification_rounds(target, 200_000, rng, noise=0.05), target)
    assert res.verdict == "rejected"


def test_ghz_not_certifiable():
    for target in (builtin_clifford("ghz:30"), vector(builtin_clifford("ghz:5"))):
        rounds = sample_certification_rounds(target, 2000, np.random.default_rng(13))
        res = certify(rounds, target)
        assert res.relaxation_time == math.inf
        assert res.verdict == "not certifiable"
        assert res.fidelity_lower_bound == 0.0
        assert res.to_dict()["relaxation_time"] is None
        assert "not connected" in res.reason


def test_statevector_target_certified():
    rng = np.random.default_rng(14)
    psi = haar_random_state(6, rng)
    tau = relaxation_time(psi)
    rounds = sample_certification_rounds(psi, 300_000, rng)
    res = certify(rounds, psi, threshold=max(0.0, 1 - 3 * tau * 3 * np.sqrt(np.log(20) / 600_000)))
    assert res.relaxation_time == pytest.approx(tau)
    assert res.verdict == "certified", res.reason


# ---------------------------------------------------------------------------------------- bad inputs


def test_qubit_count_mismatch():
    rounds = sample_certification_rounds(builtin_clifford("cluster:5"), 100, np.random.default_rng(0))
    with pytest.raises(QubitCountMismatchError, match="6 qubits"):
        certify(rounds, builtin_clifford("cluster:6"))
    with pytest.raises(QubitCountMismatchError):
        certify(rounds, haar_random_state(4, np.random.default_rng(0)))


@pytest.mark.parametrize("text", ["H 0\nDEPOLARIZE1(0.1) 0", "H 0\nM 0", "H 0\nR 1"])
def test_non_clifford_state_target_rejected(text):
    rounds = sample_certification_rounds(stim.Circuit("H 0\nI 1"), 100, np.random.default_rng(0))
    with pytest.raises(StateError, match="target"):
        certify(rounds, stim.Circuit(text + "\nI 1"))


def test_bad_arguments():
    c = builtin_clifford("cluster:4")
    rng = np.random.default_rng(0)
    rounds = sample_certification_rounds(c, 100, rng)
    with pytest.raises(ShadowlabError, match="level"):
        certify(rounds, c, level=1.0)
    with pytest.raises(ShadowlabError, match="method"):
        certify(rounds, c, method="chebyshev")
    with pytest.raises(ShadowlabError, match="noise"):
        sample_certification_rounds(c, 10, rng, noise=1.5)
    with pytest.raises(ShadowlabError, match="noise kind"):
        sample_certification_rounds(c, 10, rng, noise=0.1, noise_kind="amplitude")
    with pytest.raises(StateError, match="normalized"):
        sample_certification_rounds(np.ones(4), 10, rng)
    with pytest.raises(ShadowlabError, match="shape"):
        CertificationRounds(3, [0], [[0, 0]], [0], [0])


def test_rounds_file_roundtrip_and_errors(tmp_path):
    c = builtin_clifford("cluster:21")
    rounds = sample_certification_rounds(c, 1000, np.random.default_rng(0))
    path = rounds.save(tmp_path / "r.npz")
    back = CertificationRounds.load(path)
    for f in ("qubit", "z", "basis", "outcome"):
        np.testing.assert_array_equal(getattr(rounds, f), getattr(back, f))
    assert back.n_qubits == 21
    with pytest.raises(ShadowlabError, match="exists"):
        rounds.save(path)
    rounds.save(path, force=True)
    assert sorted(os.listdir(tmp_path)) == ["r.npz"]
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(InputFormatError, match=r"garbage\.npz"):
        CertificationRounds.load(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(InputFormatError, match=r"other\.npz.*missing"):
        CertificationRounds.load(other)
    bad = tmp_path / "bad.npz"
    with np.load(path) as data:
        fields = dict(data)
    fields["basis"] = fields["basis"][:-1]
    np.savez(bad, **fields)
    with pytest.raises(InputFormatError, match=r"bad\.npz.*malformed"):
        CertificationRounds.load(bad)
    with pytest.raises(InputFormatError, match=r"missing\.npz"):
        CertificationRounds.load(tmp_path / "missing.npz")


# --------------------------------------------------------------------------------------------- CLI


def test_cli_certified_json_and_saved_rounds(run, tmp_path):
    r = run("certify", "--prepared", "cluster:24", "--target", "cluster:24", "--rounds", 1_000_000, "--seed", 1,
            "--format", "json", "--save-rounds", "r.npz", "-q")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["verdict"] == "certified" and data["certified"] is True
    assert data["relaxation_time"] == 24
    r2 = run("certify", "--rounds-file", "r.npz", "--target", "cluster:24", "--format", "json")
    assert r2.exit_code == 0, r2.stderr
    assert json.loads(r2.stdout)["fidelity_lower_bound"] == data["fidelity_lower_bound"]


def test_cli_rejected_and_not_certifiable_exit_zero(run):
    r = run("certify", "--prepared", "cluster:20", "--target", "cluster:20", "--rounds", 20000, "--noise", 0.1,
            "-q")
    assert r.exit_code == 0, r.stderr
    assert "verdict: REJECTED" in r.stdout
    r = run("certify", "-p", "ghz:20", "-t", "ghz:20", "-n", 1000, "-q")
    assert r.exit_code == 0, r.stderr
    assert "NOT CERTIFIABLE" in r.stdout
    r = run("certify", "-p", "random:4", "-t", "random:4", "-n", 20000, "--threshold", 0.0, "-q")
    assert r.exit_code == 0, r.stderr
    assert "verdict: CERTIFIED" in r.stdout


def test_cli_errors(run, tmp_path):
    r = run("certify", "--target", "cluster:5")
    assert r.exit_code == 1 and "--prepared" in r.stderr
    r = run("certify", "-p", "cluster:5", "-t", "cluster:6", "-n", 10)
    assert r.exit_code == 1 and "qubits" in r.stderr
    (tmp_path / "junk.npz").write_text("junk")
    r = run("certify", "--rounds-file", "junk.npz", "-t", "cluster:5")
    assert r.exit_code == 1 and "junk.npz" in r.stderr
    r = run("certify", "-p", "cluster:5", "-t", "cluster:5", "--format", "csv")
    assert r.exit_code == 1 and "--format" in r.stderr
    r = run("certify", "-p", "cluster:5", "-t", "cluster:5", "-n", 10, "--save-rounds", "junk.npz")
    assert r.exit_code == 1 and "exists" in r.stderr
