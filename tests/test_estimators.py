"""Estimators against exact state-vector values, interval coverage, peers, and refusals.

Tolerances are derived, never tuned: an estimate must lie within 5 of its own standard errors of
the exact value, and an interval's empirical coverage over R seeded repetitions within 5
binomial standard errors, sqrt(level (1 - level) / R), of its nominal level.
"""

import math

import numpy as np
import pytest

from shadowlab.acquire.statevector import exact_pauli_expectations, sample_statevector
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.data.store import write_store
from shadowlab.errors import EstimationError, QubitCountMismatchError, ShadowlabError
from shadowlab.estimate.pauli import estimate_paulis, estimate_sum, estimate_two_point, hkp_blocks
from shadowlab.paulis import PauliSum


def _haar(n, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return v / np.linalg.norm(v)


def _sample(state, n_snap, seed, repeats=1):
    rng = np.random.default_rng(seed)
    n = int(np.log2(state.size))
    return sample_statevector(state, uniform_settings(n, n_snap // repeats, rng), repeats, rng)


def _all_low_weight(n):
    labels = [f"{a}{i}" for i in range(n) for a in "XYZ"]
    labels += [f"{a}{i} {b}{j}" for i in range(n) for j in range(i + 1, n) for a in "XYZ" for b in "XYZ"]
    labels += [f"{a}0 {b}1 {c}{n - 1}" for a in "XYZ" for b in "XYZ" for c in "XYZ"]
    return PauliSum.from_labels(labels, n_qubits=n)


@pytest.fixture(scope="module")
def random_state_data():
    state = _haar(5, 11)
    return state, _sample(state, 40000, 12)


@pytest.mark.parametrize("estimator", ["mean", "matched", "mom"])
def test_estimates_agree_with_exact_values(random_state_data, estimator):
    state, data = random_state_data
    obs = _all_low_weight(5)
    exact = exact_pauli_expectations(state, obs)
    r = estimate_paulis(data, obs, estimator=estimator)
    z = np.abs(r.estimate - exact) / r.stderr
    assert z.max() < 5, (estimator, r.labels[int(z.argmax())], z.max())
    # The standard errors are calibrated, not just wide: for M estimates with standard-normal
    # errors, mean(z^2) is 1 with standard deviation sqrt(2 / M); allow 5 of them.
    assert abs(np.mean(z**2) - 1.0) <= 5 * math.sqrt(2.0 / len(z))


@pytest.mark.parametrize("estimator", ["mean", "matched", "mom"])
def test_energy_of_a_pauli_sum(random_state_data, estimator):
    state, data = random_state_data
    h = PauliSum.from_labels(["Z0 Z1", "Z1 Z2", "X0", "X3", "Y2 Y3 Z4", "IIIII"], [-1.0, -0.7, 0.4, 0.3, 1.1, 2.5])
    exact = float(np.real(np.vdot(state, h.to_matrix() @ state)))
    r = estimate_sum(data, h, estimator=estimator)
    assert abs(r.estimate[0] - exact) < 5 * r.stderr[0]
    if estimator == "mean":
        # The sum's s.e. includes the covariance of its terms: it is the sample s.d. of the
        # per-snapshot values of the whole sum, recomputed here straight from the definition.
        values = np.zeros(data.n_snapshots)
        for c, t in zip(h.coeffs, h.terms, strict=True):
            if t.weight:
                q, letters = list(t.qubits), list(t.codes)
                match = np.all(data.bases[:, q] == letters, axis=1)
                sign = 1 - 2 * (data.outcomes[:, q].astype(np.int64).sum(axis=1) % 2)
                values += c * 3.0**t.weight * match * sign
        assert r.stderr[0] == pytest.approx(values.std(ddof=1) / math.sqrt(data.n_snapshots), rel=1e-12)


def test_identity_is_exact_and_matches_everything(random_state_data):
    _, data = random_state_data
    r = estimate_paulis(data, PauliSum.from_labels(["IIIII"]))
    assert r.estimate[0] == 1.0 and r.stderr[0] == 0.0 and r.n_matched[0] == data.n_snapshots


def _coverage(estimator, interval, level=0.95, reps=200, n_snap=600, n_blocks=None):
    state = _haar(3, 5)
    obs = PauliSum.from_labels(["Z0", "X0 Y1", "Z0 Z1 X2"], n_qubits=3)
    exact = exact_pauli_expectations(state, obs)
    hits = np.zeros(len(obs))
    for rep in range(reps):
        r = estimate_paulis(_sample(state, n_snap, 1000 + rep), obs, estimator=estimator, interval=interval,
                            level=level, n_blocks=n_blocks)
        hits += (r.ci_low <= exact) & (exact <= r.ci_high)
    return hits / reps


@pytest.mark.parametrize("estimator", ["mean", "matched", "mom"])
def test_normal_interval_coverage_is_nominal(estimator):
    level, reps = 0.9, 200
    tol = 5 * math.sqrt(level * (1 - level) / reps)
    cov = _coverage(estimator, "normal", level=level, reps=reps)
    assert np.all(np.abs(cov - level) <= tol), cov


def test_hkp_interval_is_conservative():
    level, reps = 0.9, 200
    cov = _coverage("mom", "hkp", level=level, reps=reps)
    assert np.all(cov >= level - 5 * math.sqrt(level * (1 - level) / reps)), cov


def test_sum_interval_coverage_is_nominal():
    state = _haar(3, 8)
    h = PauliSum.from_labels(["Z0 Z1", "X1 X2", "Y0", "Z2"], [1.0, -0.5, 0.8, 0.3])
    exact = float(np.real(np.vdot(state, h.to_matrix() @ state)))
    level, reps = 0.9, 200
    for estimator in ("mean", "matched"):
        hits = 0
        for rep in range(reps):
            r = estimate_sum(_sample(state, 600, 5000 + rep), h, estimator=estimator, level=level)
            hits += r.ci_low[0] <= exact <= r.ci_high[0]
        assert abs(hits / reps - level) <= 5 * math.sqrt(level * (1 - level) / reps), (estimator, hits)


@pytest.mark.parametrize("estimator", ["mean", "matched", "mom"])
def test_repeated_settings_get_cluster_robust_intervals(estimator):
    # 20 shots of each of 200 random settings: shots of one setting share their bases, so the
    # i.i.d. formulas would understate the error; batch means must keep the coverage nominal.
    state = _haar(3, 21)
    obs = PauliSum.from_labels(["Z0", "X0 Y1", "Z1 X2"], n_qubits=3)
    exact = exact_pauli_expectations(state, obs)
    level, reps = 0.9, 200
    hits = np.zeros(len(obs))
    for rep in range(reps):
        data = _sample(state, 4000, 7000 + rep, repeats=20)
        r = estimate_paulis(data, obs, estimator=estimator, level=level, n_blocks=4 if estimator == "mom" else None)
        hits += (r.ci_low <= exact) & (exact <= r.ci_high)
    assert np.all(np.abs(hits / reps - level) <= 5 * math.sqrt(level * (1 - level) / reps)), hits / reps


def test_repeated_settings_refuse_the_hkp_bound():
    data = _sample(_haar(2, 1), 200, 1, repeats=10)
    with pytest.raises(ShadowlabError, match="fresh random setting per snapshot"):
        estimate_paulis(data, PauliSum.from_labels(["ZZ"]), estimator="mom", interval="hkp")


def test_chunking_and_store_do_not_change_results(random_state_data, tmp_path):
    _, data = random_state_data
    obs = _all_low_weight(5)
    ref = estimate_paulis(data, obs, estimator="mom", n_blocks=7)
    small = estimate_paulis(data, obs, estimator="mom", n_blocks=7, chunk_snapshots=640)
    store = write_store(data, tmp_path / "s.zarr", chunk_snapshots=1024)
    disk = estimate_paulis(store, obs, estimator="mom", n_blocks=7, chunk_snapshots=3000)
    for r in (small, disk):
        np.testing.assert_array_equal(r.estimate, ref.estimate)
        np.testing.assert_array_equal(r.n_matched, ref.n_matched)
    h = PauliSum.from_labels(["Z0 Z1", "X2 X3", "Y4"], [1.0, 2.0, -1.0])
    a = estimate_sum(data, h, estimator="mom", n_blocks=5)
    b = estimate_sum(store, h, estimator="mom", n_blocks=5, chunk_snapshots=999)
    assert a.estimate[0] == pytest.approx(b.estimate[0], abs=1e-12)
    assert a.stderr[0] == pytest.approx(b.stderr[0], rel=1e-12)


def test_two_point_fast_path_equals_general_path(random_state_data):
    _, data = random_state_data
    for estimator, blocks in (("mean", None), ("matched", None), ("mom", 4)):
        fast = estimate_two_point(data, estimator=estimator, n_blocks=blocks)
        general = estimate_paulis(data, PauliSum.from_labels(list(fast.labels), n_qubits=5), estimator=estimator,
                                  n_blocks=fast.n_blocks)
        np.testing.assert_array_equal(fast.estimate, general.estimate)
        np.testing.assert_array_equal(fast.stderr, general.stderr)
        np.testing.assert_array_equal(fast.n_matched, general.n_matched)
    assert len(fast) == 9 * 10


def test_mean_estimator_equals_pennylane_classical_shadow():
    qml = pytest.importorskip("pennylane")
    rng = np.random.default_rng(4)
    n = 6
    bits = rng.integers(0, 2, (3000, n))
    recipes = rng.integers(0, 3, (3000, n))
    data = ShadowData(recipes, bits)
    letters = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
    labels = ["Z0", "X1 Y2", "Z0 Z5", "X0 X1 X2", "Y1 Z3 X4 Y5"] + [
        f"{a}{i} {b}{j}" for i in range(n) for j in range(i + 1, n) for a in "XYZ" for b in "XZ"
    ]
    obs = PauliSum.from_labels(labels, n_qubits=n)
    ours = estimate_paulis(data, obs, estimator="mean")
    ops = []
    for t in obs.terms:
        op = letters["XYZ"[t.codes[0]]](t.qubits[0])
        for q, c in zip(t.qubits[1:], t.codes[1:], strict=True):
            op = op @ letters["XYZ"[c]](q)
        ops.append(op)
    shadow = qml.ClassicalShadow(bits, recipes)
    theirs = np.array([shadow.expval(op, k=1) for op in ops])
    np.testing.assert_allclose(ours.estimate, theirs, rtol=0, atol=1e-12)
    coeffs = rng.normal(size=len(ops))
    total = estimate_sum(data, PauliSum(n, obs.terms, coeffs), estimator="mean")
    assert total.estimate[0] == pytest.approx(float(shadow.expval(qml.Hamiltonian(coeffs, ops), k=1)), abs=1e-12)


# --- refusals -------------------------------------------------------------------------------


def _tiny():
    return ShadowData(np.array([[2, 2], [0, 2], [1, 1]]), np.array([[0, 0], [1, 0], [0, 1]]))


def test_more_blocks_than_snapshots_is_an_error():
    with pytest.raises(ShadowlabError, match="K=4 blocks needs at least 4 snapshots"):
        estimate_paulis(_tiny(), PauliSum.from_labels(["ZZ"]), estimator="mom", n_blocks=4)


def test_empty_data_set_is_an_error():
    empty = ShadowData(np.zeros((0, 2), np.uint8), np.zeros((0, 2), np.uint8))
    with pytest.raises(ShadowlabError, match="empty"):
        estimate_paulis(empty, PauliSum.from_labels(["ZZ"]))
    with pytest.raises(ShadowlabError, match="empty"):
        estimate_sum(empty, PauliSum.from_labels(["ZZ"]))


def test_qubit_count_mismatch_is_an_error():
    with pytest.raises(QubitCountMismatchError, match="3 qubits but the data has 2"):
        estimate_paulis(_tiny(), PauliSum.from_labels(["ZZZ"]))


def test_unmatched_observable_is_an_error_not_a_zero():
    obs = PauliSum.from_labels(["XX", "ZZ"])
    for estimator in ("mean", "matched", "mom"):
        with pytest.raises(EstimationError, match="no snapshot matches 1 observable"):
            estimate_paulis(_tiny(), obs, estimator=estimator, n_blocks=None if estimator != "mom" else 1)
    r = estimate_paulis(_tiny(), obs, on_unmatched="omit")
    assert r.labels == ("Z0 Z1",) and r.omitted == ("X0 X1",)
    with pytest.raises(EstimationError, match="no snapshot matches 1 term"):
        estimate_sum(_tiny(), obs, estimator="matched")


def test_bad_options_are_errors():
    obs = PauliSum.from_labels(["ZZ"])
    with pytest.raises(ShadowlabError, match="strictly between 0 and 1"):
        estimate_paulis(_tiny(), obs, level=1.0)
    with pytest.raises(ShadowlabError, match="unknown estimator"):
        estimate_paulis(_tiny(), obs, estimator="median")
    with pytest.raises(ShadowlabError, match="use it with estimator 'mom'"):
        estimate_paulis(_tiny(), obs, interval="hkp")
    with pytest.raises(ShadowlabError, match="needs K >= "):
        estimate_paulis(_tiny(), obs, estimator="mom", interval="hkp", n_blocks=2)
    with pytest.raises(ShadowlabError, match="applies to the 'mom' estimator only"):
        estimate_paulis(_tiny(), obs, n_blocks=3)


def test_hkp_block_count():
    # K = ceil(2 ln(2M / delta)): M = 1, delta = 0.05 gives ceil(7.38) = 8.
    assert hkp_blocks(1, 0.95) == 8
    assert hkp_blocks(1000, 0.95) == math.ceil(2 * math.log(2000 / 0.05))


def test_few_repeated_settings_keep_nominal_coverage():
    """Fewer settings than batches: batches must not split a setting (review finding: 67% coverage)."""
    n = 4
    state = _haar(n, 21)
    h = PauliSum.from_labels(["Z0", "Z1", "Z2 Z3", "X0 X1"], [1.0, 1.0, 0.5, 0.7])
    exact = float(exact_pauli_expectations(state, h) @ h.coeffs)
    covered = []
    for seed in range(200):
        data = _sample(state, 48 * 25, 1000 + seed, repeats=25)  # 48 settings < 64 batches
        r = estimate_sum(data, h)
        covered.append(r.ci_low[0] <= exact <= r.ci_high[0])
    # 95% nominal, less 5 binomial standard errors over 200 runs.
    assert np.mean(covered) >= 0.95 - 5 * math.sqrt(0.95 * 0.05 / 200)
