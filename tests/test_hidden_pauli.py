"""The hidden-Pauli task: query lists, both learners, and the study's bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shadowlab.acquire.stim_sampler import sample_stim
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.pauli import estimate_paulis
from shadowlab.twocopy.hidden_pauli import (
    decide_two_copy,
    hidden_pauli_study,
    one_copy_estimates,
    query_list,
    random_pauli,
)
from shadowlab.twocopy.simulate import hidden_pauli_circuit, sample_bell_stim


def _hoeffding_shots(n_queries: int, delta: float, strength: float) -> int:
    """Shots after which every query's tr(Q rho)^2 estimate is within strength^2 / 2 of its value with
    probability 1 - delta (Hoeffding for +-1 means, union bound over the queries)."""
    return math.ceil(8 * math.log(2 * n_queries / delta) / strength**4)


def test_query_list_is_distinct_and_contains_the_hidden_pauli() -> None:
    rng = np.random.default_rng(1)
    for n in (3, 10, 100):
        hidden = random_pauli(n, rng)
        queries, pos = query_list(hidden, n, 60 if n == 3 else 1000, rng)
        assert queries[pos] == hidden and len(set(queries)) == len(queries)
        assert all(q.weight >= 1 for q in queries)
    weights = {q.weight for q in query_list(random_pauli(100, rng), 100, 1000, rng)[0]}
    assert min(weights) <= 5 and max(weights) >= 95  # every weight is represented
    with pytest.raises(ShadowlabError, match="only 15"):
        query_list(random_pauli(2, rng), 2, 16, rng)


@pytest.mark.parametrize("n", [10, 100])
def test_two_copy_decides_all_queries_with_an_n_independent_budget(n: int) -> None:
    """At the Hoeffding budget for delta = 1e-3 every one of 5 seeded trials decides all 1,000 queries."""
    shots = _hoeffding_shots(1000, 1e-3, 0.9)
    for trial in range(5):
        rng = np.random.default_rng([n, trial])
        hidden = random_pauli(n, rng)
        queries, pos = query_list(hidden, n, 1000, rng)
        data = sample_bell_stim(hidden_pauli_circuit(hidden, n, sign=int(rng.choice([-1, 1]))), shots, rng)
        decided = decide_two_copy(data, queries)
        assert decided[pos] and decided.sum() == 1


def test_one_copy_estimates_equal_the_mean_estimator() -> None:
    rng = np.random.default_rng(3)
    n = 5
    hidden = random_pauli(n, rng)
    queries, _ = query_list(hidden, n, 30, rng)
    settings = rng.integers(0, 3, (3000, n), dtype=np.uint8)
    data = sample_stim(hidden_pauli_circuit(hidden, n), settings, 1, rng)
    est = one_copy_estimates(data, queries, [1000, 3000])
    ref = estimate_paulis(data.subset(0, 1000), queries, estimator="mean", on_unmatched="omit")
    by_label = dict(zip(ref.labels, ref.estimate, strict=True))
    np.testing.assert_allclose(est[0], [by_label.get(q.to_sparse(), 0.0) for q in queries], atol=1e-12)


def test_study_two_copy_flat_one_copy_grows() -> None:
    study = hidden_pauli_study([5, 7], two_copy_grid=(60, 400), one_copy_grid=(256, 2**17), trials=4,
                               n_queries=200, seed=5)
    for n in (5, 7):
        # The Hoeffding budget for 200 queries at delta = 1e-3 is 316 copies.
        assert study.copies_needed("two_copy", n) == 400
    assert study.rates["one_copy"][5][0][1] == 0.0  # 256 snapshots cannot resolve weight-5 queries
    # A union bound over weight-5 queries asks for about 88 * 3^5 ~ 21,000 snapshots, far below 2^17.
    assert study.copies_needed("one_copy", 5) == 2**17
    assert list(study.to_dict()["rates"]["two_copy"]["5"][1]) == [400, 1.0]
    with pytest.raises(ShadowlabError, match="even"):
        hidden_pauli_study([5], two_copy_grid=(61,), trials=1)


def test_identify_from_stim_shots_and_cli(run, tmp_path) -> None:
    """The decoder finds P from the pipeline's own Bell shots (stim), and the CLI reports it."""
    from shadowlab.twocopy.gf2 import identify_hidden_pauli, shots_needed

    rng = np.random.default_rng(21)
    n = 12
    hidden = random_pauli(n, rng)
    data = sample_bell_stim(hidden_pauli_circuit(hidden, n, sign=-1), shots_needed(n, 0.9, miss=0.01), rng)
    result = identify_hidden_pauli(data.a, data.c, rng=rng, max_seconds=60)
    assert result.found and result.label == hidden.to_sparse()
    r = run("twocopy", "simulate", "hidden:XIYZIIXZ", "-n", "150", "-o", "h.zarr", "--seed", "2")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "identify", "h.zarr")
    assert r.exit_code == 0 and "P = X0 Y2 Z3 X6 Z7" in r.output, r.output
    run("twocopy", "simulate", "hidden:XIYZIIXZ", "-n", "10", "-o", "few.zarr")
    r = run("twocopy", "identify", "few.zarr")
    assert r.exit_code == 1 and "Need at least" in r.output
