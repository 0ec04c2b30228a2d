"""Derandomized classical shadows against a plain pure-Python implementation of the rule.

The reference below follows the rule as stated in :mod:`shadowlab.plan.derandomize` literally:
for every qubit and every candidate letter it recomputes the full cost sum over all unfinished
observables with ``math.exp``/``math.log``. It knows nothing of the kernel's difference form,
tables, adjacency lists or underflow guard.

About rounding: the kernel compares only the terms that differ between the three choices,
while the reference sums every term in observable order, so the two round differently. Two
choices whose exact costs are equal (e.g. ``XX`` and ``YY`` with the same history, at their
first qubit) can come out one ulp apart in the reference, which would then pick either one. The
reference therefore treats costs within a relative ``rtol`` (1e-12) of the minimum as tied and
takes the first of them in X, Y, Z order -- what exact arithmetic does for exact ties, and what
the kernel does. Costs that differ by more than ``rtol`` but by less than rounding could still
disagree; :func:`_check_agrees` then replays the kernel's settings through the reference and
accepts a disagreement only where the reference's costs are tied to within its own rounding.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest

from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum
from shadowlab.plan.derandomize import derandomize, hit_counts
from shadowlab.plan.scheme import Scheme

RTOL = 1e-12


# ---------------------------------------------------------------------------------------------
# The reference: the rule as stated, in plain Python
# ---------------------------------------------------------------------------------------------


def _cost_terms(obs, assigned, h, weights, targets, eta, nu):
    """Exponents ``[-(eta/2) h_l + log(1 - nu 3^-m_l)] / w_l`` of the unfinished observables."""
    out = []
    for i, pauli in enumerate(obs):
        if h[i] >= targets[i]:
            continue
        conflict = False
        m = 0
        for q, c in pauli.items():
            if assigned[q] is None:
                m += 1
            elif assigned[q] != c:
                conflict = True
        log_term = 0.0 if conflict else math.log(1 - nu * 3.0 ** (-m))
        out.append((-(eta / 2) * h[i] + log_term) / weights[i])
    return out


def _cost_terms_decimal(obs, assigned, h, weights, targets, eta, nu):
    """The same exponents in Decimal arithmetic (for :func:`reference_derandomize` ``exact=True``)."""
    out = []
    for i, pauli in enumerate(obs):
        if h[i] >= targets[i]:
            continue
        conflict = False
        m = 0
        for q, c in pauli.items():
            if assigned[q] is None:
                m += 1
            elif assigned[q] != c:
                conflict = True
        log_term = Decimal(0) if conflict else (1 - nu / Decimal(3) ** m).ln()
        out.append((-(eta / 2) * h[i] + log_term) / Decimal(weights[i]))
    return out


def reference_derandomize(obs, n_qubits, weights, hits, eta, *, rtol=RTOL, exact=False, follow=None,
                          max_settings=10_000):
    """The rule, literally. ``obs``: list of ``{qubit: code}``. Returns ``(settings, decisions)``.

    ``decisions`` lists, per qubit decision, the three costs and the letter taken. Costs within
    a relative ``rtol`` of the minimum count as tied (the first in X, Y, Z order is taken). With
    ``exact=True`` costs are Decimal sums of Decimal exponentials at 50 significant digits:
    Decimal's exponent range is practically unbounded, so nothing underflows (the role a
    log-domain evaluation plays in float64), and rounding is 1e-50 relative. With ``follow`` (a
    list of settings) the reference takes those letters instead of its own choices, to replay
    another implementation's run and record the costs it would see.
    """
    targets = [math.floor(w * hits) for w in weights]
    h = [0] * len(obs)
    settings, decisions = [], []
    with localcontext() as ctx:
        ctx.prec = 50
        if exact:
            eta_x = Decimal(eta)
            nu_x = 1 - (-eta_x / 2).exp()
            tol = Decimal(rtol)
        while any(h[i] < targets[i] for i in range(len(obs))):
            if len(settings) >= max_settings:
                raise RuntimeError("reference did not converge")
            assigned = [None] * n_qubits
            for q in range(n_qubits):
                costs = []
                for b in range(3):
                    assigned[q] = b
                    if exact:
                        costs.append(sum((x.exp() for x in _cost_terms_decimal(obs, assigned, h, weights, targets,
                                                                              eta_x, nu_x)), Decimal(0)))
                    else:
                        nu = 1 - math.exp(-eta / 2)
                        costs.append(sum(math.exp(x) for x in _cost_terms(obs, assigned, h, weights, targets, eta,
                                                                          nu)))
                lowest = min(costs)
                bound = lowest * (1 + (tol if exact else rtol))
                choice = next(b for b in range(3) if costs[b] <= bound)
                if follow is not None:
                    choice = int(follow[len(settings)][q])
                assigned[q] = choice
                decisions.append((costs, choice))
            settings.append(assigned)
            for i, pauli in enumerate(obs):
                if all(assigned[q] == c for q, c in pauli.items()):
                    h[i] += 1
    return np.array(settings, dtype=np.uint8).reshape(-1, n_qubits), decisions


def _as_dicts(paulis):
    return [dict(zip(p.qubits, p.codes, strict=True)) for p in paulis]


def _random_instance(rng: random.Random):
    n = rng.randint(2, 8)
    m = rng.randint(1, 8)
    paulis = []
    for _ in range(m):
        k = rng.randint(1, min(4, n))
        qubits = rng.sample(range(n), k)
        paulis.append(PauliString.from_pairs((rng.randrange(3), q) for q in qubits))
    weights = [rng.choice([1.0, 1.0, 0.5, 0.3, 0.05, rng.uniform(0.05, 1.0)]) for _ in range(m)]
    hits = rng.randint(1, 20)
    eta = rng.choice([0.9, 2.0])
    return paulis, n, weights, hits, eta


def _check_agrees(fast: np.ndarray, paulis, n, weights, hits, eta) -> bool:
    """True if ``fast`` equals the reference run; else require every disagreement to be a rounding tie.

    Returns whether the settings were identical.
    """
    ref, _ = reference_derandomize(_as_dicts(paulis), n, weights, hits, eta)
    if ref.shape == fast.shape and np.array_equal(ref, fast):
        return True
    # Replay the fast run through the reference: each of its letters must be a minimizer of the
    # reference's costs up to the reference's own rounding (a few ulps of the sum).
    _, decisions = reference_derandomize(_as_dicts(paulis), n, weights, hits, eta, follow=fast)
    for costs, choice in decisions:
        assert costs[choice] <= min(costs) * (1 + 1e-9), (costs, choice)
    return False


# ---------------------------------------------------------------------------------------------
# Agreement with the reference
# ---------------------------------------------------------------------------------------------


def test_matches_reference_on_random_instances():
    rng = random.Random(20240611)
    identical = 0
    n_cases = 120
    for _ in range(n_cases):
        paulis, n, weights, hits, eta = _random_instance(rng)
        obs = PauliSum(n, tuple(paulis), np.ones(len(paulis)))
        if not any(math.floor(w * hits) > 0 for w in weights):
            with pytest.raises(ShadowlabError, match="nothing to plan"):
                derandomize(obs, hits=hits, weights=weights, eta=eta)
            identical += 1
            continue
        fast = derandomize(obs, hits=hits, weights=weights, eta=eta).settings
        identical += _check_agrees(fast, paulis, n, weights, hits, eta)
    # Rounding-level disagreements are allowed by _check_agrees but must be rare.
    assert identical >= n_cases - 3


def test_matches_reference_with_duplicates_and_identity():
    paulis = [PauliString.from_label(s) for s in ("X0 X1", "X0 X1", "Y0 Y1", "Z1 Z2", "I", "Z0", "X2")]
    weights = [1.0, 0.5, 1.0, 0.7, 1.0, 0.2, 0.05]
    for eta in (0.9, 2.0):
        fast = derandomize(paulis, hits=20, weights=weights, eta=eta).settings
        assert _check_agrees(fast, paulis, 3, weights, 20, eta)


def test_exact_ties_follow_xyz_order_despite_summation_order():
    # At qubit 0 of the first setting the X and Y choices have exactly equal costs: the same
    # three terms, in opposite orders. Summed in float64 they differ by one ulp, so a plain
    # argmax would follow rounding; the rule says X.
    nu = -math.expm1(-0.45)
    t = {w: -math.expm1(math.log1p(-nu / 3) / w) for w in (0.4, 0.6, 0.56)}
    assert (t[0.4] + t[0.6]) + t[0.56] < (t[0.56] + t[0.6]) + t[0.4]  # the premise
    paulis = [PauliString.from_label(s) for s in ("X0 Z1", "X0 Z2", "X0 Z3", "Y0 Z4", "Y0 Z5", "Y0 Z6")]
    weights = [0.4, 0.6, 0.56, 0.56, 0.6, 0.4]
    scheme = derandomize(paulis, hits=10, weights=weights)
    assert scheme.settings[0, 0] == 0
    assert _check_agrees(scheme.settings, paulis, 7, weights, 10, 0.9)


# ---------------------------------------------------------------------------------------------
# Targets and stopping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_every_target_met_and_stop_is_exact(seed):
    rng = np.random.default_rng(seed)
    n, m, hits = 12, 60, 15
    paulis = []
    for _ in range(m):
        k = int(rng.integers(1, 5))
        qubits = rng.choice(n, size=k, replace=False)
        paulis.append(PauliString.from_pairs(zip(rng.integers(0, 3, size=k).tolist(), qubits.tolist(), strict=True)))
    weights = rng.choice([1.0, 0.6, 0.25, 0.05], size=m)
    obs = PauliSum(n, tuple(paulis), np.ones(m))
    scheme = derandomize(obs, hits=hits, weights=weights)
    targets = np.floor(weights * hits).astype(np.int64)
    counts = hit_counts(scheme, obs)
    assert np.all(counts >= targets)
    # Without the last setting some target is not met: the run stopped as soon as it could.
    before = hit_counts(scheme.settings[:-1], obs)
    assert np.any(before < targets)
    assert scheme.kind == "derandomized" and scheme.probabilities is None
    assert np.all(scheme.repeats == 1)
    assert scheme.info == {"hits": hits, "eta": 0.9, "n_observables": m}
    # Cheaper than measuring each observable on its own settings.
    assert scheme.n_settings < int(targets.sum())


def test_hit_counts_against_brute_force():
    rng = np.random.default_rng(3)
    settings = rng.integers(0, 3, size=(200, 7), dtype=np.uint8)
    paulis = [PauliString.from_label(s) for s in ("X0", "Z1 Y3", "X2 X4 Z6", "I", "Y0 Y1 Y2 Y3")]
    expected = [sum(all(row[q] == c for q, c in zip(p.qubits, p.codes, strict=True)) for row in settings)
                for p in paulis]
    assert hit_counts(settings, paulis).tolist() == expected
    assert hit_counts(Scheme(settings, np.full(200, 3)), paulis).tolist() == expected


# ---------------------------------------------------------------------------------------------
# Known small cases
# ---------------------------------------------------------------------------------------------


def test_single_zz():
    scheme = derandomize(PauliSum.from_labels(["ZZ"]), hits=5)
    assert scheme.labels() == ["ZZ"] * 5


def test_commuting_pair_shares_settings():
    # X0 and X0 X1 are both hit by XX; every setting is XX, 4 of them.
    scheme = derandomize(PauliSum.from_labels(["XI", "XX"]), hits=4)
    assert scheme.labels() == ["XX"] * 4


def test_identity_only_and_target_zero():
    # The identity is hit by every setting; all-tied choices take X.
    assert derandomize(PauliSum.from_labels(["II"]), hits=3).labels() == ["XX"] * 3
    # Target floor(0.05 * 10) = 0: observable 1 is done from the start and never steers.
    scheme = derandomize(PauliSum.from_labels(["ZZ", "YY"]), hits=10, weights=[1.0, 0.05])
    assert scheme.labels() == ["ZZ"] * 10


def test_list_of_paulis_and_progress():
    calls = []
    paulis = [PauliString.from_label("X0 Z2"), PauliString.from_label("Y1")]
    scheme = derandomize(paulis, hits=3, progress=lambda *a: calls.append(a))
    assert scheme.n_qubits == 3
    assert calls and calls[-1] == (scheme.n_settings, 2, 2)


# ---------------------------------------------------------------------------------------------
# Underflow
# ---------------------------------------------------------------------------------------------


# Found by trying seeded random instances: settings identical to the Decimal reference, 11
# decisions in the all-underflowed regime, and a float64 reference that never finishes.
UNDERFLOW_CASE = (
    [PauliString.from_label(s) for s in ("X0 X1 Y3", "Z0", "X0", "Z1 Z2 Y3", "Z0 Y1 Y2", "Z0")],
    [0.00104, 0.00105, 0.00148, 0.00105, 0.00131, 0.00148],
)


def _replay_decisive_underflow(fast, paulis, n, weights, hits, eta):
    """Replay ``fast`` through the Decimal reference; check each letter; count decisive underflow decisions.

    Every letter of ``fast`` must minimize the exact cost up to ``RTOL`` relative (the rounding
    allowance). Returns the number of decisions taken where float64 sees nothing (the smallest
    cost is below 1e-300, so every term of a float64 sum has underflowed or lost its digits)
    and yet the exact costs differ by more than ``RTOL``: decisions the guard has to get right.
    """
    _, decisions = reference_derandomize(_as_dicts(paulis), n, weights, hits, eta, exact=True, follow=fast)
    decisive = 0
    for costs, choice in decisions:
        lowest = min(costs)
        assert costs[choice] <= lowest * (1 + Decimal(RTOL)), (costs, choice)
        if lowest < Decimal("1e-300") and max(costs) > lowest * (1 + Decimal(RTOL)):
            decisive += 1
    return decisive


def test_underflow_guard_matches_exact_reference():
    """Tiny weights: ``exp(-(eta/2) h / w)`` underflows in float64, yet the choices are exact.

    With ``w ~ 0.001`` and ``hits = 3000`` (targets 3 or 4), an observable hit twice has
    ``(eta/2) h / w ~ 860``: its cost term is ``exp(-900 + ...) = 0.0`` in float64. Once every
    unfinished observable is in that state, a plain float64 evaluation sees three equal (zero)
    costs everywhere and takes ``X`` at every qubit; the run never ends.

    The oracle is the reference in Decimal arithmetic, which does not underflow (the same sums a
    log-domain evaluation computes). On this instance the settings are identical. In general
    tiny weights also make rounding-level ties common (``1 - (1 - nu 3^-m)^(1/w)`` rounds to 1
    for several ``m``), which exact arithmetic may break either way; see the next test.
    """
    eta, hits = 0.9, 3000
    assert math.exp(-(eta / 2) * 2 / 0.00105) == 0.0  # the premise: float64 underflows
    paulis, weights = UNDERFLOW_CASE
    n = 1 + max(p.qubits[-1] for p in paulis)
    fast = derandomize(paulis, hits=hits, weights=weights, eta=eta)
    exact, _ = reference_derandomize(_as_dicts(paulis), n, weights, hits, eta, exact=True)
    assert np.array_equal(fast.settings, exact)
    assert _replay_decisive_underflow(fast.settings, paulis, n, weights, hits, eta) >= 10
    # The float64 reference without a guard goes wrong: with every term underflowed it keeps
    # choosing the same setting, which never completes the targets.
    with pytest.raises(RuntimeError, match="did not converge"):
        reference_derandomize(_as_dicts(paulis), n, weights, hits, eta, max_settings=200)


def test_underflow_guard_random_instances():
    """Random tiny-weight instances: every decision of the kernel is an exact minimizer up to rounding."""
    rng = random.Random(7)
    eta, hits = 0.9, 3000
    decisive = 0
    for _ in range(6):
        n = rng.randint(3, 5)
        paulis = []
        for _ in range(rng.randint(3, 6)):
            qubits = rng.sample(range(n), rng.randint(1, 3))
            paulis.append(PauliString.from_pairs((rng.randrange(3), q) for q in qubits))
        weights = [rng.uniform(0.001, 0.0015) for _ in paulis]
        obs = PauliSum(n, tuple(paulis), np.ones(len(paulis)))
        fast = derandomize(obs, hits=hits, weights=weights, eta=eta)
        targets = np.floor(np.array(weights) * hits)
        assert np.all(hit_counts(fast, obs) >= targets)
        assert np.any(hit_counts(fast.settings[:-1], obs) < targets)
        decisive += _replay_decisive_underflow(fast.settings, paulis, n, weights, hits, eta)
    assert decisive >= 10


def test_underflow_guard_large_eta():
    # eta = 20: exp(-10 h) underflows after 75 hits of a weight-1 observable.
    paulis = [PauliString.from_label(s) for s in ("X0 X1", "Z0 Z1", "Y0 X1", "Z1")]
    fast = derandomize(paulis, hits=90, eta=20.0)
    assert np.all(hit_counts(fast, paulis) >= 90)
    before = hit_counts(fast.settings[:-1], paulis)
    assert np.any(before < 90)
    # X0X1, Z0Z1 and Y0X1 are pairwise incompatible; Z1 can share with Z0 Z1: no waste.
    assert fast.n_settings == 270


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hits": 0}, "hits"),
        ({"hits": -3}, "hits"),
        ({"hits": 2.5}, "hits"),
        ({"hits": True}, "hits"),
        ({"hits": 5, "eta": 0.0}, "eta"),
        ({"hits": 5, "eta": -1.0}, "eta"),
        ({"hits": 5, "eta": float("nan")}, "eta"),
        ({"hits": 5, "weights": [1.0]}, "one weight per observable"),
        ({"hits": 5, "weights": [1.0, 0.0]}, r"\(0, 1\]"),
        ({"hits": 5, "weights": [1.0, -0.5]}, r"\(0, 1\]"),
        ({"hits": 5, "weights": [1.0, 1.5]}, r"\(0, 1\]"),
        ({"hits": 5, "weights": [1.0, float("nan")]}, r"\(0, 1\]"),
        ({"hits": 5, "weights": ["a", "b"]}, "weights"),
        ({"hits": 5, "max_settings": 0}, "max_settings"),
        ({"hits": 1, "weights": [0.5, 0.5]}, "nothing to plan"),
    ],
)
def test_bad_inputs(kwargs, match):
    with pytest.raises(ShadowlabError, match=match):
        derandomize(PauliSum.from_labels(["XX", "ZZ"]), **kwargs)


def test_bad_observables():
    with pytest.raises(ShadowlabError, match="at least one"):
        derandomize([], hits=3)
    with pytest.raises(ShadowlabError, match="PauliString"):
        derandomize(["XX"], hits=3)
    with pytest.raises(ShadowlabError, match="single PauliString"):
        derandomize(PauliString.from_label("XX"), hits=3)


def test_max_settings_exceeded():
    # XX, YY and ZZ need 3 * 4 = 12 settings; a cap of 5 is not enough.
    with pytest.raises(ShadowlabError, match="max_settings=5"):
        derandomize(PauliSum.from_labels(["XX", "YY", "ZZ"]), hits=4, max_settings=5)
    assert derandomize(PauliSum.from_labels(["XX", "YY", "ZZ"]), hits=4, max_settings=12).n_settings == 12


# ---------------------------------------------------------------------------------------------
# The benchmark script runs (smoke test, tiny sizes, no peers)
# ---------------------------------------------------------------------------------------------


def test_benchmark_quick_runs(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_derandomize.py"
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--cases", "A", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| case | tool | status |" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    ours = [r for r in rows if r["tool"] == "shadowlab"]
    assert ours and all(r["status"] == "ok" and r["targets_met"] and r["exact_stop"] for r in ours)
    assert all(r["status"] == "not given" for r in rows if r["tool"] != "shadowlab")


def test_budget_is_the_prefix_of_the_unbounded_run() -> None:
    obs = PauliSum.from_labels(["ZZI", "IZZ", "XIX", "YYI", "IXY"])
    full = derandomize(obs, hits=40)
    cut = derandomize(obs, hits=40, budget=25)
    assert cut.n_settings == 25 and cut.info["targets_met"] is False
    assert np.array_equal(cut.settings, full.settings[:25])
    roomy = derandomize(obs, hits=40, budget=full.n_settings + 10)
    assert roomy.equals(full) and roomy.info["targets_met"] is True
    with pytest.raises(ShadowlabError, match="budget must be a positive integer"):
        derandomize(obs, hits=4, budget=0)
    with pytest.raises(ShadowlabError, match="not both"):
        derandomize(obs, hits=4, budget=5, max_settings=5)
