"""Measurement schemes: the file format, random and biased settings, and the estimators they imply."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from shadowlab.acquire.states import haar_random_state
from shadowlab.acquire.statevector import exact_pauli_expectations, sample_statevector
from shadowlab.data.dataset import ShadowData
from shadowlab.errors import InputFormatError, ShadowlabError
from shadowlab.estimate.pauli import estimate_paulis, estimate_sum, estimate_two_point
from shadowlab.paulis import PauliSum
from shadowlab.plan.biased import optimize_probabilities, variance_bound
from shadowlab.plan.scheme import Scheme, random_scheme, read_scheme, uniform_scheme, write_scheme


def _measure(state: np.ndarray, scheme: Scheme, seed: int) -> ShadowData:
    data = sample_statevector(state, scheme.settings, scheme.repeats, np.random.default_rng(seed))
    return ShadowData(data.bases, data.outcomes, data.settings, {"scheme": scheme.record()})


def test_scheme_file_round_trip(tmp_path: Path) -> None:
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7], [1 / 3, 1 / 3, 1 / 3]])
    scheme = random_scheme(probs, 50, np.random.default_rng(1), repeats=4, info={"seed": 1})
    write_scheme(scheme, tmp_path / "p.txt")
    back = read_scheme(tmp_path / "p.txt")
    assert back.equals(scheme) and back.kind == "biased" and back.info == {"seed": 1}
    assert np.array_equal(back.probabilities, probs)
    with pytest.raises(ShadowlabError, match="exists"):
        write_scheme(scheme, tmp_path / "p.txt")


@pytest.mark.parametrize(("text", "message", "line"), [
    ("XYZ\nXQZ\n", "letter 'Q'", 2),
    ("XYZ\nXY\n", "has 2 letters but the first setting has 3", 2),
    ("XYZ 0\n", "repeat count must be positive", 1),
    ("XYZ three\n", "not an integer", 1),
    ("XYZ 2 extra\n", "3 fields", 1),
    ("# qubits: 4\nXYZ\n", "header says 4 qubits", None),
    ("# kind: clever\nXYZ\n", "kind 'clever'", None),
    ("# kind: biased\n# probabilities: [[1, 0, 0]]\nXYZ\n", "probabilities", None),
    ("# only comments\n", "no settings", None),
])
def test_bad_scheme_files_name_file_and_line(tmp_path: Path, text: str, message: str, line: int | None) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputFormatError, match=message) as info:
        read_scheme(path)
    assert str(path) in str(info.value)
    assert info.value.line == line


def test_scheme_file_qubit_count_is_checked(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("XYZZ\n")
    with pytest.raises(InputFormatError, match="4 letters but 5 qubits"):
        read_scheme(tmp_path / "p.txt", n_qubits=5)


def test_random_settings_follow_their_probabilities() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.0, 0.5, 0.5]])
    n = 20000
    scheme = random_scheme(probs, n, np.random.default_rng(3))
    for q in range(2):
        freq = np.bincount(scheme.settings[:, q], minlength=3) / n
        tolerance = 5 * np.sqrt(probs[q] * (1 - probs[q]) / n) + 1e-12  # 5 binomial standard errors
        assert np.all(np.abs(freq - probs[q]) <= tolerance)


def test_batches_cover_the_plan_in_order() -> None:
    scheme = Scheme.from_labels(["X", "Y", "Z", "X"], repeats=[3, 9, 2, 2])
    assert list(scheme.batches(5)) == [(0, 1), (1, 2), (2, 4)]


def _random_hamiltonian(n: int, m: int, seed: int) -> PauliSum:
    rng = np.random.default_rng(seed)
    labels = {"".join(rng.choice(list("IXYZ"), size=n)) for _ in range(m)} - {"I" * n}
    labels = sorted(labels)
    return PauliSum.from_labels(labels, rng.normal(size=len(labels)))


def test_biased_optimum_matches_a_generic_optimizer() -> None:
    h = _random_hamiltonian(4, 25, seed=2)
    result = optimize_probabilities(h)

    def cost(logits: np.ndarray) -> float:
        p = np.exp(logits.reshape(4, 3))
        return variance_bound(h, p / p.sum(axis=1, keepdims=True))

    generic = min((minimize(cost, np.random.default_rng(s).normal(size=12), method="BFGS") for s in range(3)),
                  key=lambda r: r.fun)
    assert result.cost <= generic.fun * (1 + 1e-6)
    assert result.cost < result.uniform_cost
    assert math.isclose(result.uniform_cost, variance_bound(h, np.full((4, 3), 1 / 3)), rel_tol=1e-12)


def test_min_probability_keeps_every_basis() -> None:
    h = PauliSum.from_labels(["ZZ", "ZI"], [1.0, 0.5])
    free = optimize_probabilities(h)
    assert free.probabilities[:, :2].max() == 0.0
    floored = optimize_probabilities(h, min_probability=0.05)
    assert floored.probabilities.min() >= 0.05 - 1e-15
    assert np.allclose(floored.probabilities.sum(axis=1), 1.0)


def test_biased_estimates_are_unbiased_within_5_standard_errors() -> None:
    n = 4
    state = haar_random_state(n, np.random.default_rng(8))
    h = _random_hamiltonian(n, 30, seed=4)
    probs = optimize_probabilities(h, min_probability=0.05).probabilities
    data = _measure(state, random_scheme(probs, 40000, np.random.default_rng(9)), seed=10)
    exact = exact_pauli_expectations(state, h)
    result = estimate_paulis(data, h)
    assert result.estimator == "mean"
    z = (result.estimate - exact) / result.stderr
    assert np.all(np.abs(z) < 5)
    # The standard errors are right, not just small: the z-scores have variance ~1
    # (chi-square with 29 degrees of freedom; 5-sigma band of its mean).
    assert abs(np.mean(z * z) - 1) < 5 * math.sqrt(2 / len(z))
    # The sum, with its importance weights, agrees with the exact energy.
    energy = float(exact @ h.coeffs)
    total = estimate_sum(data, h)
    assert abs(total.estimate[0] - energy) < 5 * total.stderr[0]


def test_biased_measurements_beat_uniform_for_their_hamiltonian() -> None:
    n = 4
    state = haar_random_state(n, np.random.default_rng(18))
    h = PauliSum.from_labels(["ZZII", "IZZI", "IIZZ", "ZIIZ", "XIII", "IIXI"], [1.0, 1.0, 1.0, 1.0, 0.3, 0.3])
    probs = optimize_probabilities(h, min_probability=0.02).probabilities
    budget = 20000
    biased = estimate_sum(_measure(state, random_scheme(probs, budget, np.random.default_rng(1)), 2), h)
    uniform = estimate_sum(_measure(state, uniform_scheme(n, budget, np.random.default_rng(1)), 2), h)
    # Exact single-snapshot moments by enumerating every setting and outcome; the measured s.e.
    # ratio must agree with the exact one within 5 of its own standard errors (the sample s.d.
    # has relative error sqrt((m4 / var^2 - 1) / 4N)).
    m_b, m_u = _exact_moments(state, h, probs), _exact_moments(state, h, np.full((n, 3), 1 / 3))
    ratio = math.sqrt(m_b[0] / m_u[0])
    rel = math.sqrt(sum((m[1] / m[0] ** 2 - 1) / (4 * budget) for m in (m_b, m_u)))
    assert ratio < 1.0
    assert abs(biased.stderr[0] / uniform.stderr[0] - ratio) < 5 * rel * ratio


def _exact_moments(state: np.ndarray, h: PauliSum, probs: np.ndarray) -> tuple[float, float]:
    """Variance and fourth central moment of the importance-weighted single-snapshot energy."""
    import itertools

    n = h.n_qubits
    rotate = [np.array([[1, 1], [1, -1]]) / math.sqrt(2), np.array([[1, -1j], [1, 1j]]) / math.sqrt(2), np.eye(2)]
    values, weights = [], []
    for setting in itertools.product(range(3), repeat=n):
        p_setting = float(np.prod([probs[q, b] for q, b in enumerate(setting)]))
        if p_setting == 0:
            continue
        u = rotate[setting[0]]
        for b in setting[1:]:
            u = np.kron(u, rotate[b])
        born = np.abs(u @ state) ** 2
        for outcome in range(2**n):
            bits = [(outcome >> (n - 1 - q)) & 1 for q in range(n)]
            x = 0.0
            for term, c in zip(h.terms, h.coeffs, strict=True):
                if all(setting[q] == code for q, code in zip(term.qubits, term.codes, strict=True)):
                    inv = np.prod([1 / probs[q, code] for q, code in zip(term.qubits, term.codes, strict=True)])
                    x += c * inv * (-1) ** sum(bits[q] for q in term.qubits)
            values.append(x)
            weights.append(p_setting * born[outcome])
    v, w = np.array(values), np.array(weights)
    mean = float(w @ v)
    return float(w @ (v - mean) ** 2), float(w @ (v - mean) ** 4)


def test_two_point_fast_path_uses_the_biased_weights() -> None:
    state = haar_random_state(3, np.random.default_rng(5))
    probs = np.array([[0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.1, 0.6, 0.3]])
    data = _measure(state, random_scheme(probs, 3000, np.random.default_rng(6)), seed=7)
    fast = estimate_two_point(data)
    general = estimate_paulis(data, PauliSum.from_labels(list(fast.labels), n_qubits=3))
    assert np.allclose(fast.estimate, general.estimate, rtol=0, atol=1e-12)
    assert np.allclose(fast.stderr, general.stderr, rtol=0, atol=1e-12)


def test_deterministic_schemes_refuse_the_mean_estimator_and_auto_picks_matched() -> None:
    state = haar_random_state(2, np.random.default_rng(1))
    scheme = Scheme.from_labels(["ZZ", "XX", "ZX"], repeats=[50, 50, 50], kind="derandomized")
    data = _measure(state, scheme, seed=3)
    obs = PauliSum.from_labels(["ZZ", "XX", "ZI"])
    with pytest.raises(ShadowlabError, match=r"derandomized scheme.*'mean' estimator would be biased"):
        estimate_paulis(data, obs, estimator="mean")
    auto = estimate_paulis(data, obs)
    assert auto.estimator == "matched"
    assert np.array_equal(auto.n_matched, [50, 50, 100])


def test_a_basis_the_scheme_never_measures_is_an_error_not_a_zero() -> None:
    state = haar_random_state(2, np.random.default_rng(1))
    probs = np.array([[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    data = _measure(state, random_scheme(probs, 200, np.random.default_rng(2)), seed=3)
    with pytest.raises(ShadowlabError, match="never measures"):
        estimate_sum(data, PauliSum.from_labels(["XZ", "ZZ"], [1.0, 1.0]))
    with pytest.raises(ShadowlabError, match="no snapshot matches"):
        estimate_paulis(data, PauliSum.from_labels(["XZ"]))
