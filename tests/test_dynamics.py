"""Tests of the T-symmetry dynamics study (:mod:`shadowlab.twocopy.dynamics`).

Oracles are computed independently of the module's gate-by-gate simulation: dense circuit
unitaries, Kronecker products of Pauli matrices, and the trace formula for Bell outcomes.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from shadowlab.errors import ShadowlabError
from shadowlab.twocopy.dynamics import (
    MAX_QUBITS,
    BrickworkCircuit,
    brickwork_circuit,
    classify_supervised,
    classify_unsupervised,
    dynamics_study,
    haar_orthogonal,
    haar_unitary,
    one_copy_features,
    one_copy_state,
    plot_dynamics,
    sample_one_copy,
    sample_two_copy,
    two_copy_features,
    two_copy_state,
)

I2 = np.eye(2, dtype=np.complex128)
X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
Y = np.array([[0, -1j], [1j, 0]], dtype=np.complex128)
Z = np.diag([1.0, -1.0]).astype(np.complex128)
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dynamics.py"
# Statistical tests use seeded generators; the thresholds correspond to a false-alarm
# probability of 1e-6 for fresh seeds, so a failure means a real discrepancy.
ALPHA = 1e-6


def kron_all(mats: list[np.ndarray]) -> np.ndarray:
    return functools.reduce(np.kron, mats)


def phi_plus(n: int) -> np.ndarray:
    """|Phi+>^{(x) n} on (S_k, M_k), as a 4^n vector with S = the high n bits of the index."""
    dim = 1 << n
    return np.eye(dim, dtype=np.complex128).reshape(-1) / np.sqrt(dim)


# ---------------------------------------------------------------------------------------------
# gates and circuits
# ---------------------------------------------------------------------------------------------


def test_haar_gates_are_orthogonal_and_unitary() -> None:
    rng = np.random.default_rng(0)
    dets = []
    for _ in range(40):
        o = haar_orthogonal(4, rng)
        u = haar_unitary(4, rng)
        assert np.allclose(o.T @ o, np.eye(4), atol=1e-12) and np.isrealobj(o)
        assert np.allclose(u.conj().T @ u, np.eye(4), atol=1e-12)
        dets.append(np.linalg.det(o))
    # Haar measure on O(4), not SO(4): both determinants occur.
    assert np.allclose(np.abs(dets), 1.0) and min(dets) < 0 < max(dets)


def test_brickwork_layout_and_reality() -> None:
    rng = np.random.default_rng(1)
    c = brickwork_circuit(5, 3, rng, time_symmetric=True)
    assert [q for q, _ in c.gates] == [0, 2, 1, 3, 0, 2]
    u = c.unitary()
    assert np.allclose(u.imag, 0.0, atol=1e-12) and np.allclose(u.T @ u, np.eye(32), atol=1e-10)
    s = brickwork_circuit(5, 3, rng, time_symmetric=False).unitary()
    assert np.allclose(s.conj().T @ s, np.eye(32), atol=1e-10) and np.abs(s.imag).max() > 0.1


def test_gate_convention_matches_kron() -> None:
    """A gate on (q, q+1) acts as I (x) G (x) I with qubit q as the gate's high bit."""
    rng = np.random.default_rng(2)
    g = haar_unitary(4, rng)
    c = BrickworkCircuit(3, 1, ((1, g),), False)
    assert np.allclose(c.unitary(), np.kron(I2, g), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# two-copy protocol: the Bell-convention identity
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("time_symmetric", [True, False])
def test_two_copy_state_is_u_ut_on_phi_plus(time_symmetric: bool) -> None:
    n = 3
    c = brickwork_circuit(n, 4, np.random.default_rng(3), time_symmetric=time_symmetric)
    u = c.unitary()
    expected = np.kron(u @ u.T, np.eye(1 << n)) @ phi_plus(n)
    assert np.allclose(two_copy_state(c, bell_rotate=False), expected, atol=1e-12)


def test_real_orthogonal_gives_all_zero_shots() -> None:
    rng = np.random.default_rng(4)
    c = brickwork_circuit(4, 4, rng, time_symmetric=True)
    probs = np.abs(two_copy_state(c)) ** 2
    assert probs[0] == pytest.approx(1.0, abs=1e-12)
    a, cbits = sample_two_copy(c, 200, rng)
    assert a.shape == cbits.shape == (200, 4) and a.dtype == np.uint8
    assert not a.any() and not cbits.any()
    assert np.all(two_copy_features(a, cbits) == 0.0)


def test_bell_distribution_matches_trace_formula() -> None:
    """p(a, c) = |tr(sigma^dagger U U^T)|^2 / 4^n with sigma = (x)_k Z^a_k X^c_k, exactly and in samples."""
    n = 3
    rng = np.random.default_rng(5)
    c = brickwork_circuit(n, 3, rng, time_symmetric=False)
    u = c.unitary()
    w = u @ u.T
    dim = 1 << n
    oracle = np.empty((dim, dim))
    for a in range(dim):
        for cc in range(dim):
            bits_a = [(a >> (n - 1 - k)) & 1 for k in range(n)]
            bits_c = [(cc >> (n - 1 - k)) & 1 for k in range(n)]
            sigma = kron_all([np.linalg.matrix_power(Z, ba) @ np.linalg.matrix_power(X, bc)
                              for ba, bc in zip(bits_a, bits_c, strict=True)])
            oracle[a, cc] = abs(np.trace(sigma.conj().T @ w)) ** 2 / 4**n
    assert oracle.sum() == pytest.approx(1.0, abs=1e-12)
    simulated = (np.abs(two_copy_state(c)) ** 2).reshape(dim, dim)  # [a, c]: S bits are the high bits
    assert np.allclose(simulated, oracle, atol=1e-12)

    shots = 20000
    a_bits, c_bits = sample_two_copy(c, shots, rng)
    weights = 1 << np.arange(n - 1, -1, -1)
    idx = (a_bits.astype(np.int64) @ weights) * dim + c_bits.astype(np.int64) @ weights
    counts = np.bincount(idx, minlength=dim * dim)
    expected = oracle.ravel() * shots
    # Pearson chi-square over cells with >= 5 expected counts, the rest pooled into one cell.
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    chi2 = float(np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep]))
    dof = int(keep.sum()) - 1
    assert chi2 < stats.chi2.ppf(1.0 - ALPHA, dof), (chi2, dof)
    # Zero-probability outcomes never occur.
    assert counts[expected == 0].sum() == 0


# ---------------------------------------------------------------------------------------------
# one-copy protocol: Y basis
# ---------------------------------------------------------------------------------------------


def y_string_expectations(psi: np.ndarray, n: int) -> np.ndarray:
    """<psi| Y_A |psi> for every subset mask A (bit n-1-k = qubit k), from dense Kronecker products."""
    out = np.empty(1 << n, dtype=np.complex128)
    for mask in range(1 << n):
        op = kron_all([Y if (mask >> (n - 1 - k)) & 1 else I2 for k in range(n)])
        out[mask] = np.vdot(psi, op @ psi)
    return out


def test_odd_y_expectations_vanish_exactly_for_real_circuits() -> None:
    n = 4
    rng = np.random.default_rng(6)
    masks = np.arange(1 << n)
    odd = np.bitwise_count(masks) % 2 == 1
    real = y_string_expectations(one_copy_state(brickwork_circuit(n, n, rng, time_symmetric=True), y_rotate=False), n)
    assert np.abs(real[odd]).max() < 1e-12
    scr = y_string_expectations(one_copy_state(brickwork_circuit(n, n, rng, time_symmetric=False), y_rotate=False), n)
    assert np.abs(scr[odd]).max() > 1e-2
    assert np.abs(scr.imag).max() < 1e-12  # Hermitian observables


def test_y_basis_outcome_convention() -> None:
    """Bit 0 is the +1 eigenvalue of Y: the outcome distribution reproduces every <Y_A> exactly."""
    n = 3
    rng = np.random.default_rng(7)
    c = brickwork_circuit(n, 3, rng, time_symmetric=False)
    exact = y_string_expectations(one_copy_state(c, y_rotate=False), n).real
    p = np.abs(one_copy_state(c)) ** 2
    ys = np.arange(1 << n)
    parity = [np.bitwise_count(ys & mask).astype(np.int64) % 2 for mask in ys]  # uint8 counts: cast before 1 - 2x
    from_dist = np.array([np.sum(p * (1 - 2 * par)) for par in parity])
    assert np.allclose(from_dist, exact, atol=1e-12)
    bits = sample_one_copy(c, 5, rng)
    assert bits.shape == (5, n) and bits.dtype == np.uint8


def test_one_copy_features_are_unbiased() -> None:
    """Mean of the <Y_A>^2 estimates over many independent 5-shot data sets -> exact <Y_A>^2 (5 s.e.)."""
    n = 3
    rng = np.random.default_rng(8)
    c = brickwork_circuit(n, 3, rng, time_symmetric=False)
    exact = y_string_expectations(one_copy_state(c, y_rotate=False), n).real
    odd_masks = np.array([1, 2, 4, 7])
    reps = 4000
    est = np.array([one_copy_features(sample_one_copy(c, 5, rng)) for _ in range(reps)])
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(reps)
    assert np.all(np.abs(mean - exact[odd_masks] ** 2) < 5 * se + 1e-12), (mean, exact[odd_masks] ** 2, se)


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------


def test_classifiers_on_separable_features() -> None:
    rng = np.random.default_rng(9)
    labels = np.repeat([True, False], 10)
    feats = np.where(labels[:, None], 0.0, 0.5 + rng.random((20, 3)))
    pred, _ = classify_unsupervised(feats)
    assert np.array_equal(pred, labels)
    pred2, _ = classify_unsupervised(feats, rule="two_means")
    assert np.array_equal(pred2, labels)
    assert classify_supervised(feats, labels, rng) == 1.0


def test_study_small_n_separates_classes(tmp_path: Path) -> None:
    r = dynamics_study(4, [1, 10, 100, 3000], n_circuits=10, seed=11, n_repeats=2)
    two, one = r.mean_accuracy("two_copy"), r.mean_accuracy("one_copy")
    assert two[1] >= 0.95 and two[-1] == 1.0
    assert one[0] == 0.5  # a single Y-basis shot carries no information about <Y_A>^2
    assert one[-1] >= 0.95
    assert r.shots_needed["two_copy"] is not None and r.shots_needed["two_copy"] <= 10
    assert r.shots_needed["one_copy"] is not None and r.shots_needed["one_copy"] > r.shots_needed["two_copy"]
    assert r.pc1_scores["one_copy"].shape == (4, 20) and r.labels.shape == (20,)
    payload = json.loads(json.dumps(r.to_dict()))
    assert payload["shots_grid"] == [1, 10, 100, 3000]
    out = plot_dynamics(r, tmp_path / "dyn.png")
    assert out.exists() and out.stat().st_size > 1000


def test_study_is_reproducible() -> None:
    a = dynamics_study(3, [5, 50], n_circuits=3, seed=5, n_repeats=1)
    b = dynamics_study(3, [5, 50], n_circuits=3, seed=5, n_repeats=1)
    for p in a.protocols:
        assert np.array_equal(a.pc1_scores[p], b.pc1_scores[p])


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 1}, "n_qubits must be >= 2"),
        ({"n": MAX_QUBITS + 1}, "too large for state-vector"),
        ({"shots_grid": [0, 10]}, "shot count must be >= 1"),
        ({"shots_grid": []}, "non-empty"),
        ({"shots_grid": [10, 5]}, "strictly increasing"),
        ({"shots_grid": [1.5]}, "integers"),
        ({"n_circuits": 1}, ">= 2 per class"),
        ({"depth": 0}, "depth must be >= 1"),
        ({"target_accuracy": 0.0}, "target_accuracy"),
        ({"max_weight": 9}, "max_weight"),
        ({"seed": "x"}, "seed must be"),
        ({"rule": "kmeans"}, "rule must be"),
        ({"one_copy_feature_map": "x"}, "one_copy_feature_map"),
    ],
)
def test_study_rejects_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"n": 3, "shots_grid": [1, 2], "n_circuits": 2, "n_repeats": 1}
    args.update(kwargs)
    with pytest.raises(ShadowlabError, match=match):
        dynamics_study(**args)  # type: ignore[arg-type]


def test_samplers_reject_bad_input() -> None:
    rng = np.random.default_rng(0)
    c = brickwork_circuit(2, 1, rng, time_symmetric=True)
    with pytest.raises(ShadowlabError, match="shots must be >= 1"):
        sample_two_copy(c, 0, rng)
    with pytest.raises(ShadowlabError, match="shots must be >= 1"):
        sample_one_copy(c, -3, rng)
    with pytest.raises(ShadowlabError, match=r"numpy\.random\.Generator"):
        sample_one_copy(c, 3, 42)  # type: ignore[arg-type]
    with pytest.raises(ShadowlabError, match="too large"):
        brickwork_circuit(40, 1, rng, time_symmetric=True)


# ---------------------------------------------------------------------------------------------
# benchmark script
# ---------------------------------------------------------------------------------------------


def test_quick_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "dyn.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| shots | two-copy acc. (mean)" in proc.stdout
    data = json.loads(out.read_text())
    assert data["n_qubits"] == 4 and data["shots_needed"]["two_copy"] is not None
