"""Estimation on a Dask cluster: the same numbers as in this process, whatever fails or however work is split.

One local cluster of two worker processes serves the module; each distributed result is compared
with the single-process one for exact equality (integer counts are summed exactly and
floating-point partial sums are reduced in chunk order, so nothing may differ at all).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from shadowlab.acquire.simulate import simulate
from shadowlab.data.store import write_store
from shadowlab.errors import ShadowlabError
from shadowlab.estimate import pauli as pauli_module
from shadowlab.estimate.hamiltonian import estimate_energy_variance
from shadowlab.estimate.pauli import estimate_paulis, estimate_sum, estimate_two_point
from shadowlab.execution import Execution, parse_memory
from shadowlab.paulis import PauliArrays, PauliSum

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  memory_limit=0) as c, distributed.Client(c, set_as_default=False) as client:
        yield c, client


@pytest.fixture(scope="module")
def remote(cluster) -> Execution:
    return Execution(scheduler=cluster[0].scheduler_address)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A fresh-setting store and a settings-x-repeats store, with store chunks smaller than the data."""
    root = tmp_path_factory.mktemp("stores")
    fresh = simulate("cluster:12", 6000, seed=11)
    repeated = simulate("ghz:10", 6400, repeats=50, seed=12)
    return (write_store(fresh, root / "fresh.zarr", chunk_snapshots=1024),
            write_store(repeated, root / "repeated.zarr", chunk_snapshots=640))


def _same(a, b) -> None:
    assert a.labels == b.labels
    for field in ("estimate", "stderr", "ci_low", "ci_high", "n_matched"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("estimator", ["mean", "mom", "matched"])
def test_paulis_identical_on_the_cluster(stores, remote, which, estimator):
    store = stores[which]
    obs = PauliArrays.up_to_weight(store.n_qubits, 2)
    local = estimate_paulis(store, obs, estimator=estimator, on_unmatched="omit")
    dist = estimate_paulis(store, obs, estimator=estimator, on_unmatched="omit", execution=remote)
    _same(local, dist)
    # Chunks cut across the median-of-means blocks and batches, and in-memory data, change nothing.
    cut = estimate_paulis(store.load(), obs, estimator=estimator, on_unmatched="omit",
                          execution=Execution(scheduler=remote.scheduler, chunk_snapshots=333))
    _same(local, cut)


def test_observable_batches_split_across_workers(stores, remote, monkeypatch):
    store = stores[0]
    obs = PauliArrays.up_to_weight(store.n_qubits, 3)
    local = estimate_paulis(store, obs, estimator="mom", n_blocks=7)
    monkeypatch.setattr(pauli_module, "OBSERVABLE_BATCH", 1000)  # 6 chunks x 8 observable batches
    _same(local, estimate_paulis(store, obs, estimator="mom", n_blocks=7, execution=remote))


@pytest.mark.parametrize("which", [0, 1])
def test_two_point_sum_and_variance_identical(stores, remote, which):
    store = stores[which]
    _same(estimate_two_point(store, estimator="mom"), estimate_two_point(store, estimator="mom", execution=remote))
    h = PauliSum.from_labels([f"Z{q} Z{q + 1}" for q in range(store.n_qubits - 1)] + ["X0", "I"],
                             [0.5] * (store.n_qubits - 1) + [-1.0, 0.25], n_qubits=store.n_qubits)
    for estimator in ("mean", "mom", "matched"):
        _same(estimate_sum(store, h, estimator=estimator), estimate_sum(store, h, estimator=estimator,
                                                                         execution=remote))
    _same(estimate_energy_variance(store, h), estimate_energy_variance(store, h, execution=remote))


def test_killed_worker_changes_nothing(stores, cluster, remote):
    """A worker process is killed while tasks are running; the scheduler re-runs its tasks elsewhere
    (the nanny restarts it), and the result is bit-identical."""
    _, client = cluster
    store = stores[0]
    obs = PauliArrays.up_to_weight(store.n_qubits, 3)
    execution = Execution(scheduler=remote.scheduler, chunk_snapshots=64)  # ~94 chunk tasks
    local = estimate_paulis(store, obs, estimator="mom", n_blocks=5)
    pids = client.run(os.getpid)  # worker address -> process id
    killed: list[tuple[int, int]] = []  # (pid, tasks it was running)
    after_kill = [0]

    def progress(n: int) -> None:
        if not killed:
            running = client.processing()
            victim = max(pids, key=lambda address: len(running.get(address, ())))
            os.kill(pids[victim], signal.SIGKILL)
            killed.append((pids[victim], len(running.get(victim, ()))))
        else:
            after_kill[0] += n

    dist = estimate_paulis(store, obs, estimator="mom", n_blocks=5, execution=execution, progress=progress)
    _same(local, dist)
    # The worker died holding tasks, and work was still outstanding: those tasks were re-run elsewhere.
    assert killed and killed[0][1] > 0 and after_kill[0] > 0
    deadline = time.monotonic() + 30
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)


def test_cli_workers_equal_in_process(run, stores, tmp_path):
    store = stores[1]
    base = run("predict", store.path, "--max-weight", "2", "--format", "json", "-o", tmp_path / "a.json")
    assert base.exit_code == 0, base.output
    dist = run("predict", store.path, "--max-weight", "2", "--format", "json", "-o", tmp_path / "b.json",
               "--workers", "2", "--memory", "64MB")
    assert dist.exit_code == 0, dist.output
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a == b and len(a["estimates"]) == 10 * 3 + 45 * 9


def test_unreachable_scheduler_is_a_clear_error(run, stores, tmp_path, monkeypatch):
    from shadowlab import execution

    monkeypatch.setattr(execution, "CONNECT_TIMEOUT_S", 1)
    out = tmp_path / "out.json"
    res = run("predict", stores[0].path, "--max-weight", "1", "--format", "json", "-o", out,
              "--scheduler", "tcp://127.0.0.1:9")
    assert res.exit_code == 1
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in res.output
    assert not out.exists()
    with pytest.raises(ShadowlabError, match="either a scheduler address"):
        Execution(scheduler="tcp://127.0.0.1:9", workers=2)


def test_chunk_larger_than_memory_bound_is_refused(run, stores, tmp_path):
    out = tmp_path / "out.json"
    res = run("predict", stores[0].path, "--max-weight", "2", "--format", "json", "-o", out,
              "--memory", "32MB", "--chunk-snapshots", "1000000")
    assert res.exit_code == 1
    assert "more than the memory bound of 32,000,000 bytes" in res.output
    assert "use at most" in res.output
    assert not out.exists()
    # Without an explicit chunk the bound picks one that fits, and the result is unchanged.
    obs = PauliArrays.up_to_weight(stores[0].n_qubits, 2)
    _same(estimate_paulis(stores[0], obs), estimate_paulis(stores[0], obs, execution=Execution(memory="32MB")))


def test_memory_bound_parsing():
    assert parse_memory("512MiB") == 512 * 2**20
    assert parse_memory("1.5GB") == 1_500_000_000
    for bad in ("lots", "1 XB", "1KB", True):
        with pytest.raises(ShadowlabError, match="memory bound"):
            parse_memory(bad)


def test_up_to_weight_counts_every_pauli_once():
    a = PauliArrays.up_to_weight(60, 3)
    assert len(a) == 3 * 60 + 9 * 1770 + 27 * 34220 == 940_050
    keys = {tuple(r) for r in np.concatenate([a.qubits, a.codes], axis=1)[::997].tolist()}
    assert len(keys) == len(range(0, len(a), 997))
    with pytest.raises(ShadowlabError, match="weight"):
        PauliArrays.up_to_weight(3, 4)


def test_store_pickles_as_its_location(stores):
    import pickle

    store = stores[0]
    again = pickle.loads(pickle.dumps(store))
    assert Path(again.path) == Path(store.path) and again.n_snapshots == store.n_snapshots
    np.testing.assert_array_equal(again.read(100, 200).bases, store.read(100, 200).bases)


@pytest.mark.parametrize("which", [0, 1])
def test_prefix_view_equals_the_prefix_in_memory(stores, remote, which):
    """``store.head(n)`` reads from disk exactly the rows ``store.read(0, n)`` loads, also on workers
    (it pickles as the prefix), and its setting count is the prefix's (so repeated settings are seen)."""
    import pickle

    store = stores[which]
    n = 3 * store.chunk_snapshots + 100
    view, rows = store.head(n), store.read(0, n)
    assert (view.n_snapshots, view.n_settings) == (n, int(rows.settings.max()) + 1)
    assert pickle.loads(pickle.dumps(view)).n_snapshots == n
    obs = PauliArrays.up_to_weight(store.n_qubits, 2)
    _same(estimate_paulis(rows, obs, estimator="mom", on_unmatched="omit"),
          estimate_paulis(view, obs, estimator="mom", on_unmatched="omit", execution=remote))
    with pytest.raises(ShadowlabError, match="a prefix of 0 snapshots"):
        store.head(0)
