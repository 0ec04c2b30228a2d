"""Out-of-core and distributed runs of the nonlinear, Clifford, readout and two-copy estimators.

Every estimator must give on a Dask cluster what it gives in this process (exactly where the
results are integer counts, to 1e-12 otherwise), the same result with a tiny memory bound or
small chunks as with the defaults, and refuse an explicit chunk that does not fit the bound.
One local cluster (two worker processes) serves the whole module.
"""

from __future__ import annotations

import numpy as np
import pytest
import stim
from typer.testing import CliRunner

from shadowlab.acquire.clifford_shadows import make_state, sample_snapshots
from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import simulate
from shadowlab.cli import app
from shadowlab.data.clifford_store import CliffordSnapshots, write_clifford_store
from shadowlab.data.store import write_store
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.correlations import correlation_matrix
from shadowlab.estimate.entropy import estimate_renyi2, pattern_counts
from shadowlab.estimate.fidelity import calibrate_clifford, estimate_fidelity, fidelity_values, summarize
from shadowlab.estimate.noise_report import readout_report
from shadowlab.estimate.rdm import estimate_rdm
from shadowlab.execution import Execution
from shadowlab.twocopy.estimate import estimate_pauli_squares, estimate_purities
from shadowlab.twocopy.simulate import sample_bell_stim
from shadowlab.twocopy.store import write_bell_store

distributed = pytest.importorskip("distributed")

#: The smallest memory bound, with the smallest chunk: many chunks, each a separate task.
TINY = Execution(memory="16MiB", chunk_snapshots=64)
#: An explicit chunk far beyond the bound.
TOO_BIG = Execution(memory="16MiB", chunk_snapshots=64 * 2**20)
SUBSYSTEMS = [(0,), (1, 2), (0, 3, 4)]
PAULIS = ["Z0 Z1", "X0 X1 X2 X3", "Y1 Y2", "Z3"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def dist(cluster) -> Execution:
    return Execution(scheduler=cluster.scheduler_address)


@pytest.fixture(scope="module")
def ghz(tmp_path_factory):
    data = simulate("ghz:5", 2000, seed=3, simulator="statevector")
    store = write_store(data, tmp_path_factory.mktemp("pauli") / "g.zarr", chunk_snapshots=256)
    return data, store


@pytest.fixture(scope="module")
def zero(tmp_path_factory):
    data = simulate("zero:4", 1500, seed=6, noise=NoiseModel(readout_p01=0.05, readout_p10=0.1), readout_twirl=True)
    return write_store(data, tmp_path_factory.mktemp("zero") / "z.zarr", chunk_snapshots=256)


@pytest.fixture(scope="module")
def clifford(tmp_path_factory):
    tabs, b = sample_snapshots(make_state("ghz:4"), 700, np.random.default_rng(5))
    data = CliffordSnapshots.from_tableaux(tabs, b)
    return data, write_clifford_store(data, tmp_path_factory.mktemp("cl") / "c.zarr", chunk_snapshots=100)


@pytest.fixture(scope="module")
def bell(tmp_path_factory):
    circuit = stim.Circuit("H 0\nCX 0 1\nCX 1 2\nDEPOLARIZE1(0.1) 0 1 2 3")
    data = sample_bell_stim(circuit, 3000, np.random.default_rng(2), n_qubits=4)
    return data, write_bell_store(data, tmp_path_factory.mktemp("bell") / "b.zarr", chunk_snapshots=512)


def _same(a, b) -> None:
    """Equal up to the rounding of floating-point sums cut into other chunks."""
    for name in ("estimate", "stderr", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12)


def _identical(a, b) -> None:
    """Bit for bit: integer counts, or floating-point sums over the same chunks reduced in chunk order."""
    for name in ("estimate", "stderr", "ci_low", "ci_high"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_pattern_counts_entropy_and_rdm_on_the_cluster_equal_in_process(ghz, dist):
    data, store = ghz
    local = pattern_counts(store, SUBSYSTEMS)
    for source in (data, store):  # in-memory data are scattered, a store is read by each task
        for a, b in zip(pattern_counts(source, SUBSYSTEMS, execution=dist), local, strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(pattern_counts(store, SUBSYSTEMS, execution=TINY), local, strict=True):
        np.testing.assert_array_equal(a, b)
    ref = estimate_renyi2(store, SUBSYSTEMS)
    for ex in (dist, TINY):
        got = estimate_renyi2(store, SUBSYSTEMS, execution=ex)
        np.testing.assert_allclose(got.purity, ref.purity, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.purity_stderr, ref.purity_stderr, rtol=0, atol=1e-12)
    rho = estimate_rdm(store, [0, 4])
    for ex in (dist, TINY):
        got = estimate_rdm(store, [0, 4], execution=ex)
        np.testing.assert_allclose(got.matrix, rho.matrix, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.stderr_real, rho.stderr_real, rtol=0, atol=1e-12)
    with pytest.raises(ShadowlabError, match="memory bound"):
        estimate_renyi2(store, SUBSYSTEMS, execution=TOO_BIG)
    with pytest.raises(ShadowlabError, match="memory bound"):
        estimate_rdm(store, [0, 4], chunk_snapshots=10**7, execution=Execution(memory="16MiB"))


def test_large_tables_come_back_sparse_and_count_the_same(dist):
    wide = simulate("ghz:8", 1500, seed=7, simulator="statevector")
    subs = [tuple(range(7)), (7, 0, 3, 1, 2, 5, 4, 6)]  # 6^7 and 6^8 patterns: more than a default chunk
    digits = 2 * wide.bases.astype(np.int64) + wide.outcomes
    local = pattern_counts(wide, subs)
    for sub, c in zip(subs, local, strict=True):
        index = digits[:, list(sub)] @ 6 ** np.arange(len(sub) - 1, -1, -1)
        np.testing.assert_array_equal(c, np.bincount(index, minlength=6 ** len(sub)))
    for ex in (dist, TINY):
        for a, b in zip(pattern_counts(wide, subs, execution=ex), local, strict=True):
            np.testing.assert_array_equal(a, b)


def test_progress_advances_by_every_snapshot_on_the_cluster(ghz, dist):
    _, store = ghz
    done: list[int] = []
    pattern_counts(store, SUBSYSTEMS, execution=dist, progress=done.append)
    assert sum(done) == store.n_snapshots and len(done) > 1


def test_repeated_settings_stream_in_process_with_a_distributed_execution(dist):
    data = simulate("ghz:4", 200, repeats=8, seed=4, simulator="statevector")
    ref = estimate_renyi2(data, [(0,), (1, 2)])
    for ex in (dist, TINY):
        got = estimate_renyi2(data, [(0,), (1, 2)], execution=ex)
        np.testing.assert_allclose(got.purity, ref.purity, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.purity_stderr, ref.purity_stderr, rtol=0, atol=1e-12)


def test_correlations_on_the_cluster_equal_in_process(ghz, dist):
    _, store = ghz
    est, se = correlation_matrix(store, "xz")
    for ex in (dist, TINY):
        e2, s2 = correlation_matrix(store, "xz", execution=ex)
        np.testing.assert_allclose(e2, est, rtol=0, atol=1e-12)
        np.testing.assert_allclose(s2, se, rtol=0, atol=1e-12)
    with pytest.raises(ShadowlabError, match="memory bound"):
        correlation_matrix(store, execution=TOO_BIG)


def test_readout_report_on_the_cluster_equals_in_process(zero, dist):
    store = zero
    ref = readout_report(store)
    for ex in (dist, TINY):
        got = readout_report(store, execution=ex)
        np.testing.assert_array_equal(got.z_snapshots, ref.z_snapshots)
        np.testing.assert_array_equal(got.p01, ref.p01)
        np.testing.assert_array_equal(got.p10, ref.p10)
    with pytest.raises(ShadowlabError, match="memory bound"):
        readout_report(store, execution=TOO_BIG)


def test_two_copy_estimates_on_the_cluster_equal_in_process(bell, dist):
    data, store = bell
    squares, purities = estimate_pauli_squares(store, PAULIS), estimate_purities(store, [(0,), (0, 1), (1, 2, 3)])
    for source in (data, store):
        for ex in (dist, TINY):
            got = estimate_pauli_squares(source, PAULIS, execution=ex)
            _identical(got, squares)  # functions of integer odd counts, however the shots are split
            _identical(estimate_purities(source, [(0,), (0, 1), (1, 2, 3)], execution=ex), purities)
    with pytest.raises(ShadowlabError, match="memory bound"):
        estimate_purities(store, execution=TOO_BIG)


def test_fidelity_and_calibration_on_the_cluster_equal_in_process(clifford, dist):
    data, store = clifford
    for estimator in ("mean", "mom"):
        ref = estimate_fidelity(store, "ghz:4", estimator=estimator, n_blocks=7)
        # Blocks are fixed by the snapshot count, not the chunks: chunks of 64 cut them differently.
        _identical(estimate_fidelity(store, "ghz:4", estimator=estimator, n_blocks=7, execution=dist), ref)
        for source, ex in ((data, dist), (store, TINY)):  # other chunks: the sums round differently
            _same(estimate_fidelity(source, "ghz:4", estimator=estimator, n_blocks=7, execution=ex), ref)
        # ... and the streamed moments agree with the per-snapshot values.
        _same(summarize(fidelity_values(store, "ghz:4"), estimator=estimator, n_blocks=7), ref)
    tabs, b = sample_snapshots(make_state("zero:4", noise=NoiseModel(readout_p01=0.03)), 600,
                               np.random.default_rng(8))
    zero = CliffordSnapshots.from_tableaux(tabs, b)
    cal = calibrate_clifford(zero)
    got = calibrate_clifford(zero, execution=dist)
    assert (got.f_hat, got.stderr) == (cal.f_hat, cal.stderr)
    _identical(estimate_fidelity(store, "ghz:4", calibration=cal, execution=dist),
          estimate_fidelity(store, "ghz:4", calibration=cal))
    with pytest.raises(ShadowlabError, match="memory bound"):
        estimate_fidelity(store, "ghz:4", execution=TOO_BIG)


def test_cli_estimates_on_the_cluster(ghz, zero, bell, clifford, dist):
    runner = CliRunner()
    address = dist.scheduler
    _, store = ghz
    runs = [
        ["entropy", str(store.path), "--subsystems", "0;1,2", "--format", "json"],
        ["rdm", str(store.path), "--qubits", "0,1", "--format", "json"],
        ["twocopy", "purity", str(bell[1].path), "-s", "0,1", "--format", "json"],
        ["twocopy", "predict", str(bell[1].path), "Z0 Z1", "--format", "json"],
        ["fidelity", str(clifford[1].path), "--target", "ghz:4", "--format", "json", "--estimator", "mom"],
        ["noise-report", str(zero.path)],  # readout flips
        ["noise-report", str(store.path)],  # stabilizer generators of ghz:5
    ]
    for args in runs:
        here = runner.invoke(app, [*args, "-q"])
        there = runner.invoke(app, [*args, "-q", "--scheduler", address, "--memory", "64MiB"])
        assert here.exit_code == 0 and there.exit_code == 0, (args, here.stderr, there.stderr)
        assert here.stdout == there.stdout
    r = runner.invoke(app, ["rdm", str(store.path), "--qubits", "0", "--memory", "16MiB", "--chunk-snapshots",
                            str(64 * 2**20)])
    assert r.exit_code != 0 and "memory bound" in r.stderr
