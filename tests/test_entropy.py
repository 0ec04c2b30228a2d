"""Renyi-2 entropies by the purity U-statistic: exactness against brute force, calibration on
exact states, PennyLane's biased plug-in reconstructed from our counts, bad inputs, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import shadowlab.cli_entropy  # noqa: F401  (registers the commands)
from shadowlab.acquire.simulate import simulate
from shadowlab.acquire.states import haar_random_state
from shadowlab.acquire.statevector import sample_statevector
from shadowlab.cli import app
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.entropy import (
    contiguous_subsystems,
    estimate_renyi2,
    parse_subsystems,
    pattern_counts,
    purity_from_counts,
)
from shadowlab.estimate.rdm import estimate_rdm

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_entropy.py"


def _kernel(bs, os_, bt, ot, sub):
    v = 1.0
    for q in sub:
        if bs[q] != bt[q]:
            v *= 0.5
        elif os_[q] == ot[q]:
            v *= 5.0
        else:
            v *= -4.0
    return v


def _random_data(rng, n_snap, n_q):
    return (rng.integers(0, 3, (n_snap, n_q)).astype(np.uint8), rng.integers(0, 2, (n_snap, n_q)).astype(np.uint8))


def _reduced(psi, sub, n):
    rho = np.outer(psi, psi.conj()).reshape((2,) * (2 * n))
    rest = [q for q in range(n) if q not in sub]
    k = len(sub)
    t = np.transpose(rho, list(sub) + rest + [n + q for q in sub] + [n + q for q in rest])
    t = t.reshape(2**k, 2 ** (n - k), 2**k, 2 ** (n - k))
    return np.einsum("ajbj->ab", t)


def test_u_statistic_equals_brute_force_over_distinct_pairs():
    rng = np.random.default_rng(0)
    n_snap, n_q = 23, 5
    b, o = _random_data(rng, n_snap, n_q)
    subs = [(0,), (3, 1), (4, 0, 2), (0, 1, 2, 3, 4)]
    res = estimate_renyi2(ShadowData(b, o), subs, chunk_snapshots=64)
    for i, sub in enumerate(subs):
        k = np.array([[_kernel(b[s], o[s], b[t], o[t], sub) for t in range(n_snap)] for s in range(n_snap)])
        off = ~np.eye(n_snap, dtype=bool)
        u = k[off].mean()
        assert res.purity[i] == pytest.approx(u, abs=1e-12, rel=1e-12)
        # Hoeffding variance ingredients by brute force: E[k^2] over pairs, E[h1^2] over triples.
        ek2 = (k[off] ** 2).mean()
        row = np.where(off, k, 0.0).sum(axis=1)
        row2 = np.where(off, k**2, 0.0).sum(axis=1)
        eh1 = (row**2 - row2).sum() / (n_snap * (n_snap - 1) * (n_snap - 2))
        var = (4 * (n_snap - 2) * max(eh1 - u * u, 0) + 2 * max(ek2 - u * u, 0)) / (n_snap * (n_snap - 1))
        assert res.purity_stderr[i] == pytest.approx(np.sqrt(var), rel=1e-10)


def test_repeated_settings_exclude_same_setting_pairs():
    rng = np.random.default_rng(1)
    n_q, reps = 4, [3, 1, 4, 2, 5, 3]
    sb = uniform_settings(n_q, len(reps), rng)
    idx = np.repeat(np.arange(len(reps)), reps)
    o = rng.integers(0, 2, (idx.size, n_q)).astype(np.uint8)
    data = ShadowData(sb[idx], o, idx)
    subs = [(0, 2), (1, 2, 3)]
    # Chunks of 5 split setting runs across chunk boundaries.
    res = estimate_renyi2(data, subs, chunk_snapshots=5)
    assert res.same_setting_excluded
    for i, sub in enumerate(subs):
        vals = [_kernel(data.bases[s], o[s], data.bases[t], o[t], sub)
                for s in range(idx.size) for t in range(idx.size) if idx[s] != idx[t]]
        assert res.n_pairs[i] == len(vals)
        assert res.purity[i] == pytest.approx(np.mean(vals), abs=1e-12)
        # Standard error: the delete-one-setting jackknife, by brute force.
        loo = np.array([np.mean([_kernel(data.bases[s], o[s], data.bases[t], o[t], sub)
                                 for s in range(idx.size) for t in range(idx.size)
                                 if idx[s] != idx[t] and g not in (idx[s], idx[t])]) for g in range(len(reps))])
        g_n = len(reps)
        jack = np.sqrt((g_n - 1) / g_n * np.sum((loo - loo.mean()) ** 2))
        assert res.purity_stderr[i] == pytest.approx(jack, rel=1e-9)
    shuffled = ShadowData(data.bases[::-1], o[::-1], idx[::-1])
    with pytest.raises(EstimationError, match="non-decreasing"):
        estimate_renyi2(shuffled, subs)


def test_repeated_settings_ghz_unbiased_within_error():
    data = simulate("ghz:6", 12000, repeats=20, seed=4, simulator="statevector")
    assert data.n_settings < data.n_snapshots
    res = estimate_renyi2(data, [(0,), (1, 2), (0, 3, 5)], level=0.999)
    assert res.same_setting_excluded
    assert np.all((res.ci_low <= 1.0) & (res.ci_high >= 1.0)), res.rows()


def test_ghz10_every_subsystem_is_one_bit():
    data = simulate("ghz:10", 10_000, seed=1, simulator="statevector")
    assert data.n_settings == data.n_snapshots
    subs = [*contiguous_subsystems(10, 5), (0, 9), (2, 7), (1, 4, 8), (0, 3, 6, 9), (0, 2, 4, 6, 8), (9, 1, 5)]
    # The acceptance: every subsystem's default (95%) interval contains 1 bit, on this fixed seed.
    res = estimate_renyi2(data, subs)
    assert res.level == 0.95
    assert np.all(res.defined)
    inside = (res.ci_low <= 1.0) & (res.ci_high >= 1.0)
    assert inside.all(), [r for r, ok in zip(res.rows(), inside, strict=True) if not ok]
    z = (res.entropy - 1.0) / res.entropy_stderr
    assert np.abs(z).max() < 4
    # The intervals lie in the physical range [0, |A|] bits.
    sizes = np.array([len(s) for s in subs])
    assert np.all(res.ci_low >= 0) and np.all(res.ci_high <= sizes + 1e-12)


def test_random_states_match_exact_renyi2():
    n = 8
    subs = [*contiguous_subsystems(n, 4), (0, 7), (1, 5), (0, 2, 6), (7, 3, 1), (0, 2, 4, 6), (1, 3, 5, 7, 0)]
    zs = []
    for seed in (11, 12, 13):
        rng = np.random.default_rng(seed)
        psi = haar_random_state(n, rng)
        data = sample_statevector(psi, uniform_settings(n, 10_000, rng), 1, rng)
        res = estimate_renyi2(data, subs)
        exact = np.array([-np.log2(np.trace(np.linalg.matrix_power(_reduced(psi, s, n), 2)).real) for s in subs])
        z = (res.entropy - exact) / res.entropy_stderr
        zs.append(z)
    z = np.concatenate(zs)
    assert np.abs(z).max() < 5, z
    assert 0.6 < z.std() < 1.5, z.std()
    assert abs(z.mean()) < 0.5


def test_pennylane_is_the_plug_in_with_self_pairs():
    qml = pytest.importorskip("pennylane")
    rng = np.random.default_rng(3)
    n = 6
    psi = haar_random_state(n, rng)
    data = sample_statevector(psi, uniform_settings(n, 4000, rng), 1, rng)
    shadow = qml.ClassicalShadow(data.outcomes.astype(np.int64), data.bases.astype(np.int64))
    big_n = data.n_snapshots
    psd_seen = 0
    for sub in [(0,), (2,), (1, 4), (0, 3, 5)]:
        pl = float(shadow.entropy(list(sub), alpha=2))  # nats, of the projected plug-in estimate
        # Reconstructed from our pattern counts: the mean-snapshot matrix, projected.
        state = estimate_rdm(data, sub)
        assert state.renyi(2.0, base=np.e) == pytest.approx(pl, abs=1e-10)
        # Where the raw estimate is already physical, PennyLane's purity is exactly the U-statistic
        # plus the self-pair bias: (N - 1)/N * U + 5^k / N.
        if state.eigenvalues(project=False).min() >= 0:
            psd_seen += 1
            (c,) = pattern_counts(data, [sub])
            u = purity_from_counts(c, len(sub)).purity
            plug_in = (big_n - 1) / big_n * u + 5.0 ** len(sub) / big_n
            assert -np.log(plug_in) == pytest.approx(pl, abs=1e-10)
            assert pl - (-np.log(u)) == pytest.approx(-np.log(plug_in / u), abs=1e-10)
    assert psd_seen >= 2


def test_undefined_entropy_is_flagged_not_printed():
    rng = np.random.default_rng(5)
    b, o = _random_data(rng, 40, 8)
    res = estimate_renyi2(ShadowData(b, o), [tuple(range(8)), (0, 1, 2, 3, 4, 5, 6)])
    # With 40 snapshots an 8-qubit purity is noise: this seed gives a row with purity <= 0.
    rows = res.rows()
    for r, ok in zip(rows, res.defined, strict=True):
        if not ok:
            assert r["entropy"] is None and r["status"].startswith("undefined")
    bad = [i for i in range(len(res)) if not res.defined[i]]
    if not bad:  # the seed must give one; keep the test honest if it does not
        pytest.fail(f"expected a non-positive purity with 40 snapshots, got {res.purity}")
    assert np.isnan(res.entropy[bad[0]])
    row = list(csv.DictReader(io.StringIO(res.to_csv())))[bad[0]]
    assert row["entropy"] == "" and row["entropy_stderr"] == "" and row["status"].startswith("undefined")
    assert json.loads(res.to_json())["entropies"][bad[0]]["entropy"] is None


def test_bad_subsystems_are_refused():
    data = simulate("ghz:12", 200, seed=1, simulator="statevector")
    for subs, msg in [([()], "empty"), ([(0, 0)], "repeated"), ([(3, 12)], "out of range"), ([(-1,)], "out of range")]:
        with pytest.raises(ShadowlabError, match=msg):
            estimate_renyi2(data, subs)
    with pytest.raises(ShadowlabError, match="base"):
        estimate_renyi2(data, [(0,)], base=10)
    with pytest.raises(ShadowlabError, match="no subsystem"):
        estimate_renyi2(data, [])
    with pytest.raises(ShadowlabError, match="qubit indices"):
        parse_subsystems("0,a")
    tracemalloc.start()
    try:
        with pytest.raises(ShadowlabError, match=r"6\^11-entry .* GiB"):
            estimate_renyi2(data, [(0,), tuple(range(11))])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20  # refused before any table was allocated


def test_cli_entropy_and_rdm(tmp_path):
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = runner.invoke(app, ["simulate", "ghz:5", "--simulator", "statevector", "-n", "3000", "--seed", "2",
                                "-o", "g.zarr", "-q"])
        assert r.exit_code == 0, r.stderr
        r = runner.invoke(app, ["entropy", "g.zarr", "--max-size", "3", "-q"])
        assert r.exit_code == 0, r.stderr
        assert "Renyi-2 entropy (bits)" in r.stdout and "0,1,2" in r.stdout
        r = runner.invoke(app, ["entropy", "g.zarr", "--subsystems", "0;1,3", "--base", "e", "--format", "json",
                                "-o", "e.json", "--plot", "e.png", "-q"])
        assert r.exit_code == 0, r.stderr
        doc = json.loads(Path("e.json").read_text())
        assert doc["method"]["unit"] == "nats" and len(doc["entropies"]) == 2
        assert abs(doc["entropies"][1]["entropy"] - np.log(2)) < 0.1
        assert Path("e.png").read_bytes()[:4] == b"\x89PNG"
        r = runner.invoke(app, ["entropy", "g.zarr", "--subsystems", "0,0", "--format", "csv"])
        assert r.exit_code == 1 and "error:" in r.stderr and "repeated" in r.stderr
        r = runner.invoke(app, ["entropy", "g.zarr", "--format", "csv"])
        assert r.exit_code == 1 and "--max-size" in r.stderr
        r = runner.invoke(app, ["entropy", "g.zarr", "--max-size", "2", "--format", "json", "-o", "e.json"])
        assert r.exit_code == 1 and "already exists" in r.stderr
        r = runner.invoke(app, ["rdm", "g.zarr", "--qubits", "0,4", "-q"])
        assert r.exit_code == 0, r.stderr
        assert "eigenvalues" in r.stdout and "von Neumann" in r.stdout
        r = runner.invoke(app, ["rdm", "g.zarr", "--qubits", "0,4", "--no-project", "--format", "json", "-q"])
        assert r.exit_code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["projected"] is False and len(doc["matrix_real"]) == 4
        assert abs(doc["matrix_real"][0][0] - 0.5) < 0.1
        r = runner.invoke(app, ["rdm", "g.zarr", "--qubits", "0,9"])
        assert r.exit_code == 1 and "out of range" in r.stderr
    finally:
        os.chdir(cwd)


def test_quick_benchmark_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| tool |" in proc.stdout
    doc = json.loads((tmp_path / "b.json").read_text())
    ours = [r for r in doc["rows"] if r["tool"] == "shadowlab"]
    assert ours and ours[0]["status"] == "ok"


def test_non_uniform_schemes_are_refused():
    """Review finding: a biased scheme gave purity 3.4-11.4 for |00> silently."""
    from shadowlab.acquire.statevector import sample_statevector
    from shadowlab.data.dataset import ShadowData
    from shadowlab.errors import ShadowlabError
    from shadowlab.estimate.rdm import estimate_rdm
    from shadowlab.plan.scheme import random_scheme

    state = np.zeros(4, dtype=complex)
    state[0] = 1
    scheme = random_scheme(np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]), 500, np.random.default_rng(1))
    d = sample_statevector(state, scheme.settings, scheme.repeats, np.random.default_rng(2))
    data = ShadowData(d.bases, d.outcomes, d.settings, {"scheme": scheme.record()})
    with pytest.raises(ShadowlabError, match="biased scheme"):
        estimate_renyi2(data, [(0,)])
    with pytest.raises(ShadowlabError, match="biased scheme"):
        estimate_rdm(data, [0])


def test_memory_limit_is_checked_before_allocating():
    from shadowlab.errors import ShadowlabError

    data = simulate("ghz:8", 100, seed=1, simulator="statevector")
    with pytest.raises(ShadowlabError, match=r"8-qubit subsystem needs about .* GiB"):
        estimate_renyi2(data, [tuple(range(8))], memory_limit=2**20)
