"""Energy and energy variance by Pauli algebra: H^2 expansion, unbiased estimates, intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shadowlab.acquire.states import haar_random_state
from shadowlab.acquire.statevector import sample_statevector
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.hamiltonian import estimate_energy_variance
from shadowlab.paulis import PauliSum, square_pauli_sum
from shadowlab.plan.scheme import Scheme


def _hamiltonian(n: int, seed: int) -> PauliSum:
    rng = np.random.default_rng(seed)
    labels = sorted({"".join(rng.choice(list("IXYZ"), size=n, p=[0.55, 0.15, 0.15, 0.15])) for _ in range(25)})
    return PauliSum.from_labels(labels, rng.normal(size=len(labels)))


def _exact(h: PauliSum, state: np.ndarray) -> tuple[float, float]:
    hm = h.to_matrix()
    e = float(np.real(state.conj() @ hm @ state))
    e2 = float(np.real(state.conj() @ hm @ hm @ state))
    return e, e2 - e * e


def test_square_matches_the_matrix_square() -> None:
    h = _hamiltonian(5, 1)
    hm = h.to_matrix()
    assert np.abs(square_pauli_sum(h).to_matrix() - hm @ hm).max() < 1e-12


def test_variance_within_5_standard_errors_and_covered_at_nominal_rate() -> None:
    n = 5
    h = _hamiltonian(n, 2)
    state = haar_random_state(n, np.random.default_rng(3))
    energy, variance = _exact(h, state)
    covered = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        data = sample_statevector(state, uniform_settings(n, 4000, rng), 1, rng)
        r = estimate_energy_variance(data, h)
        assert abs(r.estimate[0] - energy) < 5 * r.stderr[0]
        assert abs(r.estimate[2] - variance) < 5 * r.stderr[2]
        covered.append(r.ci_low[2] <= variance <= r.ci_high[2])
    # 95% nominal, 5 binomial standard errors over 40 runs.
    assert np.mean(covered) >= 0.95 - 5 * math.sqrt(0.95 * 0.05 / 40)


def test_repeated_settings_use_cluster_robust_errors() -> None:
    n = 4
    h = _hamiltonian(n, 5)
    state = haar_random_state(n, np.random.default_rng(6))
    _, variance = _exact(h, state)
    rng = np.random.default_rng(7)
    data = sample_statevector(state, uniform_settings(n, 400, rng), 20, rng)
    r = estimate_energy_variance(data, h)
    assert abs(r.estimate[2] - variance) < 5 * r.stderr[2]


def test_deterministic_schemes_are_refused() -> None:
    state = haar_random_state(2, np.random.default_rng(1))
    scheme = Scheme.from_labels(["ZZ", "XX"], repeats=[10, 10], kind="derandomized")
    d = sample_statevector(state, scheme.settings, scheme.repeats, np.random.default_rng(2))
    data = ShadowData(d.bases, d.outcomes, d.settings, {"scheme": scheme.record()})
    with pytest.raises(ShadowlabError, match="deterministic scheme"):
        estimate_energy_variance(data, PauliSum.from_labels(["ZZ"]))


def test_repeated_settings_variance_is_unbiased() -> None:
    """Review finding: with 20 settings x 100 shots the variance of sum Z on |0000> averaged -0.6."""
    n = 4
    state = np.zeros(16, dtype=complex)
    state[0] = 1.0
    h = PauliSum.from_labels(["Z0", "Z1", "Z2", "Z3"])
    values, errors = [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        r = estimate_energy_variance(sample_statevector(state, uniform_settings(n, 20, rng), 100, rng), h)
        values.append(r.estimate[2])
        errors.append(r.stderr[2])
    # Exact variance 0; the mean of 100 independent estimates within 5 of its standard errors.
    assert abs(np.mean(values)) < 5 * np.std(values) / np.sqrt(len(values))
