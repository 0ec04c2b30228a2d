"""Global Clifford shadows: uniform sampling, the store, the fidelity estimator and its CLI.

Acceptance: GHZ states with per-qubit Z dephasing ``p`` have fidelity ``(1 + (1 - 2p)^n) / 2`` with
the GHZ target; estimates from 2,000 snapshots must lie within 5 standard errors of it, their
standard error must respect the variance bound 3 of the estimator (``se <= sqrt(3 / N)`` up to
sampling slack) and the interval width must not grow with ``n``. The 200-qubit sweep is marked slow.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter

import numpy as np
import pytest
import stim

import shadowlab.cli_fidelity  # noqa: F401  (registers the commands)
from shadowlab.acquire.clifford_shadows import (
    apply_tableau_statevector,
    iter_clifford_snapshots,
    make_state,
    random_clifford,
    random_cliffords,
    sample_snapshots,
)
from shadowlab.acquire.states import haar_random_state
from shadowlab.data.clifford_store import (
    CliffordSnapshots,
    CliffordStore,
    is_clifford_store,
    write_clifford_store,
)
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError, StoreFormatError
from shadowlab.estimate.fidelity import (
    estimate_fidelity,
    make_target,
    snapshot_values,
    stabilizer_overlap,
    statevector_overlap,
    summarize,
)

N_SNAPSHOTS = 2000
SE_BOUND = math.sqrt(3 / N_SNAPSHOTS) * 1.25  # variance <= 3 for any n; 25% slack for the sample s.d.


def _symplectic_ok(t: stim.Tableau) -> bool:
    n = len(t)
    xs = [t.x_output(i) for i in range(n)]
    zs = [t.z_output(i) for i in range(n)]
    for i in range(n):
        for j in range(n):
            if not (xs[i].commutes(xs[j]) and zs[i].commutes(zs[j]) and xs[i].commutes(zs[j]) == (i != j)):
                return False
    return True


# -- uniform sampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7, 63, 64, 65])
def test_random_clifford_is_a_valid_tableau(n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        t = random_clifford(n, rng)
        assert len(t) == n
        assert t * t.inverse() == stim.Tableau(n)
        if n <= 16:
            assert _symplectic_ok(t)


def test_random_clifford_is_reproducible():
    a = [random_clifford(5, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    assert random_clifford(5, np.random.default_rng(8)) != a[0]


def _chi2_ok(counts: list[int], quantile_999: float) -> bool:
    counts_arr = np.asarray(counts, dtype=float)
    expected = counts_arr.sum() / counts_arr.size
    return float(((counts_arr - expected) ** 2 / expected).sum()) < quantile_999


def test_one_qubit_cliffords_are_uniform():
    rng = np.random.default_rng(2024)
    counts = Counter(str(random_clifford(1, rng)) for _ in range(24 * 200))
    assert len(counts) == 24  # the whole single-qubit Clifford group (mod phase)
    assert _chi2_ok(list(counts.values()), 49.73)  # chi^2_{23} 99.9% quantile


def test_two_qubit_clifford_marginals_are_uniform():
    rng = np.random.default_rng(99)
    z_images, pairs, signs = Counter(), Counter(), Counter()
    for _ in range(6000):
        t = random_clifford(2, rng)
        z, x = t.z_output(0), t.x_output(0)
        z_images[str(z)[1:]] += 1  # Pauli letters, sign dropped
        pairs[(str(x)[1:], str(z)[1:])] += 1
        signs[(x.sign.real > 0, z.sign.real > 0)] += 1
    assert len(z_images) == 15 and "__" not in z_images
    assert _chi2_ok(list(z_images.values()), 36.12)  # chi^2_{14}
    assert len(pairs) == 15 * 8  # anticommuting ordered pairs
    assert _chi2_ok(list(pairs.values()), 172.4)  # chi^2_{119}
    assert len(signs) == 4 and _chi2_ok(list(signs.values()), 16.27)  # chi^2_3


def test_three_qubit_z_image_is_uniform():
    counts = Counter(str(t.z_output(0))[1:] for t in random_cliffords(3, 63 * 60, np.random.default_rng(31)))
    assert len(counts) == 63 and "___" not in counts
    assert _chi2_ok(list(counts.values()), 102.2)  # chi^2_{62}


def test_bad_sampling_arguments():
    with pytest.raises(ShadowlabError, match="positive integer"):
        random_clifford(0, np.random.default_rng(0))
    with pytest.raises(ShadowlabError, match="Generator"):
        random_clifford(2, 3)  # type: ignore[arg-type]
    with pytest.raises(ShadowlabError, match="dephasing"):
        make_state("ghz:3", dephasing=1.5)
    with pytest.raises(ShadowlabError, match="stim circuits only"):
        make_state(haar_random_state(2, np.random.default_rng(0)), dephasing=0.1)
    with pytest.raises(StateError, match="measure"):
        make_state(stim.Circuit("H 0\nM 0"))
    with pytest.raises(ShadowlabError, match="unknown Clifford state"):
        make_state("bell:2")


# -- the fidelity estimator: exactness of the overlaps ----------------------------------------------
def _vector(tableau: stim.Tableau) -> np.ndarray:
    """``C|0...0>`` in complex128 (stim's own state vectors are complex64)."""
    zero = np.zeros(2 ** len(tableau), dtype=np.complex128)
    zero[0] = 1
    return apply_tableau_statevector(zero, tableau)


def test_stabilizer_overlap_equals_statevector_overlap():
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 4, 5):
        for _ in range(15):
            target = make_target(random_clifford(n, rng))
            psi = _vector(target.tableau)
            u = random_clifford(n, rng)
            b = rng.integers(0, 2, size=n).astype(np.uint8)
            exact = stabilizer_overlap(target, u, b)
            assert exact == 0 or math.log2(exact).is_integer()
            assert abs(exact - statevector_overlap(psi, u, b)) < 1e-12
            # The outcome that U|psi> surely contains has a non-zero overlap.
            sim = stim.TableauSimulator()
            sim.do_tableau(target.tableau, list(range(n)))
            sim.do_tableau(u, list(range(n)))
            sure = np.array([sim.peek_z(q) < 0 if sim.peek_z(q) else 0 for q in range(n)], dtype=np.uint8)
            assert abs(stabilizer_overlap(target, u, sure) - statevector_overlap(psi, u, sure)) < 1e-12


def test_statevector_gate_applier_matches_stim():
    rng = np.random.default_rng(11)
    for n in (1, 3, 5):
        u = random_clifford(n, rng)
        start = random_clifford(n, rng)
        psi = start.to_state_vector(endian="big")
        ours = apply_tableau_statevector(psi, u)
        theirs = (start.then(u)).to_state_vector(endian="big")
        assert abs(abs(np.vdot(ours, theirs)) - 1) < 1e-6  # stim's vectors are complex64


def test_stabilizer_and_statevector_targets_give_equal_values():
    rng = np.random.default_rng(3)
    state = make_state("cluster:5")
    tabs, b = sample_snapshots(state, 200, rng)
    psi = _vector(stim.Tableau.from_circuit(state.circuit))
    a = snapshot_values(make_target("cluster:5"), zip(tabs, b, strict=True), 5)
    v = snapshot_values(make_target(psi), zip(tabs, b, strict=True), 5)
    np.testing.assert_allclose(a, v, atol=1e-9)


# -- acceptance: GHZ with dephasing -------------------------------------------------------------------
@functools.cache
def _cliffords(n: int, count: int) -> tuple[stim.Tableau, ...]:
    return tuple(random_cliffords(n, count, np.random.default_rng(1000 + n)))


def _ghz_case(n: int, p: float, snapshots: int = N_SNAPSHOTS) -> tuple[float, float, float, float, float]:
    """(exact, estimate, stderr, ci_low, ci_high); the Cliffords are shared across p."""
    state = make_state(f"ghz:{n}", dephasing=p)
    rng = np.random.default_rng(int(1e6 * p) + n)
    tabs, b = sample_snapshots(state, snapshots, rng, cliffords=_cliffords(n, snapshots))
    est = estimate_fidelity(CliffordSnapshots.from_tableaux(tabs, b), f"ghz:{n}")
    exact = (1 + (1 - 2 * p) ** n) / 2
    return exact, float(est.estimate[0]), float(est.stderr[0]), float(est.ci_low[0]), float(est.ci_high[0])


def _check_sweep(ns: list[int], ps: list[float]) -> None:
    widths: dict[tuple[int, float], float] = {}
    report = []
    for n in ns:
        for p in ps:
            exact, est, se, lo, hi = _ghz_case(n, p)
            report.append(f"n={n} p={p}: exact {exact:.4f} est {est:.4f} +- {se:.4f} "
                          f"inside 95% interval: {lo <= exact <= hi}")
            assert abs(est - exact) <= 5 * se, report[-1]
            assert se <= SE_BOUND, report[-1]
            widths[n, p] = hi - lo
    for p in ps:
        for n in ns:
            assert widths[n, p] <= 1.5 * widths[ns[0], p], (n, p, widths)
    print("\n".join(report))


def test_ghz_fidelity_with_dephasing_small():
    _check_sweep([10, 50], [0.0, 0.01, 0.05])


def test_ghz_fidelity_100_qubits():
    # 1,000 snapshots in the default run (time); the slow sweep has 2,000 at 100 and 200 qubits.
    exact, est, se, _, _ = _ghz_case(100, 0.01, snapshots=1000)
    assert abs(est - exact) <= 5 * se and se <= math.sqrt(3 / 1000) * 1.25


@pytest.mark.slow
def test_ghz_fidelity_with_dephasing_full_sweep():
    _check_sweep([10, 50, 100, 200], [0.0, 0.01, 0.05])


def test_cluster_and_toric_targets_of_128_qubits():
    cliffords = _cliffords(128, 150)
    for spec in ("cluster:128", "toric:8"):
        tabs, b = sample_snapshots(make_state(spec), 150, np.random.default_rng(4), cliffords=cliffords)
        est = estimate_fidelity(CliffordSnapshots.from_tableaux(tabs, b), spec)
        assert abs(est.estimate[0] - 1) <= 5 * est.stderr[0], (spec, est.rows())
        assert est.stderr[0] <= math.sqrt(3 / 150) * 1.5


def test_non_stabilizer_state_fidelity():
    rng = np.random.default_rng(8)
    psi = haar_random_state(6, rng)
    other = haar_random_state(6, rng)
    other = other - np.vdot(psi, other) * psi
    other /= np.linalg.norm(other)
    data = CliffordSnapshots.from_tableaux(*sample_snapshots(make_state(psi), N_SNAPSHOTS, rng))
    same = estimate_fidelity(data, psi)
    orth = estimate_fidelity(data, other)
    assert abs(same.estimate[0] - 1) <= 5 * same.stderr[0]
    assert abs(orth.estimate[0]) <= 5 * orth.stderr[0]


def test_summary_options_and_errors():
    values = np.array([1.0, 3.0, -1.0, 1.0, 1.0, 1.0])
    est = summarize(values)
    assert est.estimate[0] == pytest.approx(1.0)
    assert est.stderr[0] == pytest.approx(values.std(ddof=1) / math.sqrt(6))
    mom = summarize(values, estimator="mom", n_blocks=3)
    assert mom.n_blocks == 3 and mom.estimate[0] == pytest.approx(1.0)
    with pytest.raises(ShadowlabError, match="estimator"):
        summarize(values, estimator="best")
    with pytest.raises(ShadowlabError, match="level"):
        summarize(values, level=1.5)
    with pytest.raises(ShadowlabError, match="at least 2"):
        summarize(values[:1])


def test_bad_targets(tmp_path):
    rng = np.random.default_rng(0)
    data = CliffordSnapshots.from_tableaux(*sample_snapshots(make_state("ghz:4"), 10, rng))
    with pytest.raises(QubitCountMismatchError, match="target has 5 qubits"):
        estimate_fidelity(data, "ghz:5")
    bad = tmp_path / "t.stim"
    bad.write_text("H 0\nT 0\n")
    with pytest.raises(StateError, match="Clifford"):
        make_target(str(bad))
    with pytest.raises(StateError, match="measure"):
        make_target(stim.Circuit("H 0\nM 0"))
    with pytest.raises(StateError, match="noise"):
        make_target(stim.Circuit("H 0\nZ_ERROR(0.1) 0"))
    with pytest.raises(StateError, match="16 qubits"):
        make_target(np.ones(2**17) / 2**8.5)
    with pytest.raises(ShadowlabError, match="unsupported target"):
        make_target("state.qasm")
    with pytest.raises(ShadowlabError, match="no such file"):
        make_target(str(tmp_path / "missing.npy"))


# -- the store ------------------------------------------------------------------------------------------
def test_store_round_trip_is_bit_exact(tmp_path):
    state = make_state("toric:2", dephasing=0.1)
    batches = list(iter_clifford_snapshots(state, 150, seed=4, batch_snapshots=64))
    assert [len(t) for t, _ in batches] == [64, 64, 22]
    path = tmp_path / "c.zarr"
    first = CliffordSnapshots.from_tableaux(*batches[0], {"state": "toric:2"})
    write_clifford_store(first, path, chunk_snapshots=32)
    store = CliffordStore.open(path, mode="a")
    for tabs, b in batches[1:]:
        store.append(CliffordSnapshots.from_tableaux(tabs, b))
    store = CliffordStore.open(path)
    assert is_clifford_store(path) and store.n_snapshots == 150 and store.n_qubits == 8
    all_tabs = [t for tabs, _ in batches for t in tabs]
    all_b = np.concatenate([b for _, b in batches])
    loaded = store.load()
    assert [loaded.tableau(i) for i in range(150)] == all_tabs
    np.testing.assert_array_equal(loaded.outcomes, all_b)
    offsets = [off for off, _ in store.iter_chunks(50)]
    assert offsets == [0, 50, 100]
    assert store.metadata["provenance"] == {"state": "toric:2"}
    assert len(store.metadata["batches"]) == 3 and store.summary()["ensemble"] == "global_clifford"
    # Same seed, same data.
    again = list(iter_clifford_snapshots(state, 150, seed=4, batch_snapshots=64))
    assert all(np.array_equal(a[1], b[1]) and a[0] == b[0] for a, b in zip(batches, again, strict=True))


def test_store_ignores_uncommitted_rows(tmp_path):
    import zarr

    rng = np.random.default_rng(1)
    data = CliffordSnapshots.from_tableaux(*sample_snapshots(make_state("ghz:3"), 5, rng))
    path = tmp_path / "c.zarr"
    write_clifford_store(data, path)
    # A writer killed mid-append: rows written past the committed count, metadata not raised.
    group = zarr.open_group(str(path), mode="r+")
    for name in ("tableaux", "signs", "outcomes"):
        arr = group[name]
        arr.resize((8, *arr.shape[1:]))
        arr[5:8] = 255
    store = CliffordStore.open(path, mode="a")
    assert store.n_snapshots == 5
    more = CliffordSnapshots.from_tableaux(*sample_snapshots(make_state("ghz:3"), 2, rng))
    store.append(more)
    loaded = CliffordStore.open(path).load()
    assert loaded.n_snapshots == 7 and loaded.tableau(6) == more.tableau(1)


def test_store_errors(tmp_path):
    from shadowlab.acquire.simulate import simulate
    from shadowlab.data.store import write_store

    with pytest.raises(StoreFormatError, match="no such store"):
        CliffordStore.open(tmp_path / "nothing.zarr")
    pauli = tmp_path / "pauli.zarr"
    write_store(simulate("ghz:3", 10, seed=0), pauli)
    assert not is_clifford_store(pauli)
    with pytest.raises(StoreFormatError, match="not a global-Clifford one"):
        CliffordStore.open(pauli)
    rng = np.random.default_rng(0)
    data = CliffordSnapshots.from_tableaux(*sample_snapshots(make_state("ghz:3"), 4, rng))
    path = tmp_path / "c.zarr"
    write_clifford_store(data, path)
    with pytest.raises(ShadowlabError, match="already exists"):
        write_clifford_store(data, path)
    with pytest.raises(ShadowlabError, match="read-only"):
        CliffordStore.open(path).append(data)
    wrong = CliffordSnapshots.from_tableaux(*sample_snapshots(make_state("ghz:4"), 2, rng))
    with pytest.raises(QubitCountMismatchError, match="store has 3 qubits"):
        CliffordStore.open(path, mode="a").append(wrong)
    meta_path = path / "zarr.json"
    doc = json.loads(meta_path.read_text())
    doc["attributes"]["shadowlab"]["format"] = 99
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(StoreFormatError, match="format 99"):
        CliffordStore.open(path)


# -- the command line -----------------------------------------------------------------------------------
def test_cli_simulate_and_fidelity(run, tmp_path):
    r = run("simulate-clifford", "ghz:8", "--dephasing", "0.02", "-n", "400", "--seed", "5", "-o", "g.zarr", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("fidelity", "g.zarr", "--target", "ghz:8", "--format", "json", "--plot", "f.png", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    exact = (1 + 0.96**8) / 2
    assert abs(doc["estimate"] - exact) <= 5 * doc["stderr"] and doc["n_snapshots"] == 400
    assert (tmp_path / "f.png").stat().st_size > 1000
    r = run("fidelity", "g.zarr", "--target", "ghz:8", "--estimator", "mom")
    assert r.exit_code == 0 and "fidelity with ghz:8" in r.stdout
    # The same seed gives the same store.
    r = run("simulate-clifford", "ghz:8", "--dephasing", "0.02", "-n", "400", "--seed", "5", "-o", "h.zarr", "-q")
    a, b = CliffordStore.open(tmp_path / "g.zarr").load(), CliffordStore.open(tmp_path / "h.zarr").load()
    assert np.array_equal(a.tableaux, b.tableaux) and np.array_equal(a.outcomes, b.outcomes)
    # A state-vector target from a file.
    np.save(tmp_path / "ghz.npy", _vector(stim.Tableau.from_circuit(make_state("ghz:8").circuit)))
    r = run("fidelity", "g.zarr", "--target", "ghz.npy", "--format", "json", "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["estimate"] == pytest.approx(doc["estimate"], abs=1e-9)


@pytest.mark.parametrize(("args", "message"), [
    (("simulate-clifford", "ghz:4", "-n", "10", "--dephasing", "2", "-o", "x.zarr"), "dephasing"),
    (("simulate-clifford", "nope:4", "-n", "10", "-o", "x.zarr"), "unknown Clifford state"),
    (("simulate-clifford", "ghz:4", "-n", "0", "-o", "x.zarr"), "--snapshots"),
    (("fidelity", "missing.zarr", "--target", "ghz:4"), "no such store"),
    (("fidelity", "s.zarr", "--target", "ghz:5"), "5 qubits"),
    (("fidelity", "s.zarr", "--target", "ghz:4", "--format", "xml"), "--format"),
    (("fidelity", "s.zarr", "--target", "bad.stim"), "Clifford"),
    (("fidelity", "s.zarr", "--target", "ghz:4", "--plot", "p.pdf"), ".png"),
])
def test_cli_errors(run, tmp_path, args, message):
    assert run("simulate-clifford", "ghz:4", "-n", "20", "-o", "s.zarr", "-q").exit_code == 0
    (tmp_path / "bad.stim").write_text("H 0\nT 0\n")
    r = run(*args)
    assert r.exit_code == 1
    assert r.stderr.startswith("error:") and message in r.stderr, r.stderr
    assert not (tmp_path / "x.zarr").exists() and not (tmp_path / "p.pdf").exists()


def test_fidelity_benchmark_quick_run(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fidelity.py"
    plot = tmp_path / "f.png"
    done = subprocess.run([sys.executable, str(bench), "--quick", "--plot", str(plot)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| 50 | 0.05 |" in done.stdout
    assert plot.stat().st_size > 10_000
