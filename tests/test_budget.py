"""Sample-size planning: the predicted snapshots achieve the requested accuracy often enough."""

from __future__ import annotations

import numpy as np
import pytest

from shadowlab.acquire.states import haar_random_state
from shadowlab.acquire.statevector import exact_pauli_expectations, sample_statevector
from shadowlab.data.dataset import uniform_settings
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.pauli import estimate_paulis
from shadowlab.paulis import PauliSum
from shadowlab.plan.budget import pilot_budget, rigorous_budget, shadow_norms_sq

N_QUBITS = 4
OBSERVABLES = PauliSum.from_labels(["ZZII", "IXXI", "IIYZ", "XIIX", "ZIII", "IIIY", "XYII", "IZZI"], n_qubits=4)


def _sample(state: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    return sample_statevector(state, uniform_settings(N_QUBITS, n, rng), 1, rng)


def test_rigorous_budget_achieves_epsilon_with_median_of_means() -> None:
    epsilon, delta = 0.3, 0.2
    b = rigorous_budget(OBSERVABLES, epsilon, delta)
    assert b.blocks == int(np.ceil(2 * np.log(2 * len(OBSERVABLES) / delta)))
    assert b.max_shadow_norm_sq == 9.0
    state = haar_random_state(N_QUBITS, np.random.default_rng(1))
    exact = exact_pauli_expectations(state, OBSERVABLES)
    reps = 20
    ok = 0
    for seed in range(reps):
        r = estimate_paulis(_sample(state, b.snapshots, seed), OBSERVABLES, estimator="mom", n_blocks=b.blocks)
        ok += bool(np.all(np.abs(r.estimate - exact) <= epsilon))
    assert ok / reps >= 1 - delta


def test_pilot_budget_achieves_epsilon_in_1_minus_delta_of_repetitions() -> None:
    epsilon, delta = 0.1, 0.1
    state = haar_random_state(N_QUBITS, np.random.default_rng(2))
    exact = exact_pauli_expectations(state, OBSERVABLES)
    n, worst = pilot_budget(OBSERVABLES, epsilon, delta, _sample(state, 3000, 99))
    assert n < rigorous_budget(OBSERVABLES, epsilon, delta).snapshots / 10
    # The per-snapshot variance of a weight-2 Pauli is at most 9; its pilot estimate 81 c / N - m^2
    # (c ~ Binomial(N, 1/9) matches) has relative standard error sqrt(8 / N): allow 5 of them.
    assert 0 < worst <= 9.0 * (1 + 5 * np.sqrt(8 / 3000))
    reps = 60
    ok = sum(bool(np.all(np.abs(estimate_paulis(_sample(state, n, s), OBSERVABLES).estimate - exact) <= epsilon))
             for s in range(reps))
    assert ok / reps >= 1 - delta


def test_shadow_norms() -> None:
    assert shadow_norms_sq(OBSERVABLES).tolist() == [9.0, 9.0, 9.0, 9.0, 3.0, 3.0, 9.0, 9.0]
    h = PauliSum.from_labels(["ZZ", "X0", "II"], [0.5, -2.0, 7.0])
    assert shadow_norms_sq(h, as_sum=True)[0] == pytest.approx((0.5 * 3 + 2 * np.sqrt(3)) ** 2)
    biased = np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    assert shadow_norms_sq(h, probabilities=biased)[0] == pytest.approx(1 / (0.25 * 0.6))
    assert shadow_norms_sq(h, ensemble="global_clifford").tolist() == [12.0, 12.0, 0.0]
    assert shadow_norms_sq(h, ensemble="global_clifford", fidelity=True).tolist() == [3.0]


@pytest.mark.parametrize(("epsilon", "delta", "message"), [(0.0, 0.1, "epsilon"), (0.1, 1.0, "delta"),
                                                           (0.1, 0.0, "delta")])
def test_bad_budget_arguments(epsilon: float, delta: float, message: str) -> None:
    with pytest.raises(ShadowlabError, match=message):
        rigorous_budget(OBSERVABLES, epsilon, delta)
    with pytest.raises(ShadowlabError, match="fidelity budgets are for global Clifford"):
        rigorous_budget(OBSERVABLES, 0.1, 0.1, fidelity=True)
