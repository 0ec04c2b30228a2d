"""Distributed simulation into a store: the data set is the same whatever runs it.

Reference = the serial recipe: ``iter_batches`` appended batch by batch with ``ShadowStore.append``
(which shifts each batch's setting indices past the previous ones). Every store written by
``simulate_to_store`` (in this process, on 1 or 3 local workers) must hold exactly its arrays,
and two stores of the same arguments exactly the same metadata but for the times.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shadowlab.acquire.distributed import simulate_to_store
from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import iter_batches, prepare_state
from shadowlab.data.store import ShadowStore
from shadowlab.errors import ShadowlabError
from shadowlab.execution import Execution, connect

N = 20_000
CHUNK = 4096
BATCH = 1024
NOISE = NoiseModel(depolarizing=0.01, readout_p01=0.02, readout_p10=0.05)


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Execution]:
    """A 2-process local cluster shared by the tests of this module (``connect`` reuses it)."""
    execution = Execution(workers=2)
    with connect(execution):
        yield execution


def _arrays(store: ShadowStore) -> dict[str, np.ndarray]:
    d = store.load()
    return {"bases": d.bases, "outcomes": d.outcomes, "settings": d.settings,
            **({"twirl": d.twirl} if d.twirl is not None else {})}


def _untimed(store: ShadowStore) -> dict[str, Any]:
    meta = store.metadata
    meta.pop("created")
    for record in meta["batches"]:
        record.pop("time")
    return meta


def _reference(path: Path, spec: str, n: int, **kw: Any) -> ShadowStore:
    state = prepare_state(spec)
    store = ShadowStore.create(path, state.n_qubits, chunk_snapshots=CHUNK, readout_twirl=kw.get("readout_twirl",
                                                                                                  False))
    for batch in iter_batches(state, n, **kw):
        store.append(batch)
    return store


def _assert_same(a: ShadowStore, b: ShadowStore) -> None:
    x, y = _arrays(a), _arrays(b)
    assert x.keys() == y.keys()
    for name in x:
        assert np.array_equal(x[name], y[name]), name


def test_one_and_three_workers_write_identical_stores(tmp_path: Path) -> None:
    kw = {"seed": 11, "batch_snapshots": BATCH}
    ref = _reference(tmp_path / "ref.zarr", "ghz:20", N, **kw)
    done: list[int] = []
    stores = {w: simulate_to_store("ghz:20", tmp_path / f"w{w}.zarr", N, chunk_snapshots=CHUNK,
                                   execution=Execution(workers=w), progress=done.append, **kw) for w in (1, 3)}
    local = simulate_to_store("ghz:20", tmp_path / "local.zarr", N, chunk_snapshots=CHUNK, **kw)
    assert sum(done) == 2 * N and max(done) == CHUNK
    for store in (*stores.values(), local):
        _assert_same(store, ref)
        assert store.n_snapshots == N and store.n_settings == ref.n_settings == N
        assert store.chunk_snapshots == CHUNK
        assert store.summary()["basis_fractions"] == ref.summary()["basis_fractions"]
    assert _untimed(stores[1]) == _untimed(stores[3]) == _untimed(local)
    meta = _untimed(local)
    assert "workers" not in meta["provenance"] and meta["provenance"]["seed"] == 11
    assert [r["rows"] for r in meta["batches"]] == [[s, min(s + CHUNK, N)] for s in range(0, N, CHUNK)]


def test_noise_and_twirl(tmp_path: Path, two_workers: Execution) -> None:
    kw = {"seed": 3, "batch_snapshots": BATCH, "noise": NOISE, "readout_twirl": True}
    ref = _reference(tmp_path / "ref.zarr", "cluster:12", N, **kw)
    a = simulate_to_store("cluster:12", tmp_path / "a.zarr", N, chunk_snapshots=CHUNK, execution=two_workers, **kw)
    b = simulate_to_store("cluster:12", tmp_path / "b.zarr", N, chunk_snapshots=CHUNK, **kw)
    assert a.readout_twirl
    _assert_same(a, ref)
    _assert_same(b, ref)
    assert _untimed(a) == _untimed(b)
    assert a.metadata["provenance"]["noise"]["depolarizing"] == 0.01


def test_repeats_and_a_partial_last_chunk(tmp_path: Path, two_workers: Execution) -> None:
    # 250 settings x 4 repeats per batch; a chunk of 8000 rows is 8 whole batches (and 125 x 64).
    kw = {"seed": 5, "repeats": 4, "batch_snapshots": 1000}
    ref = _reference(tmp_path / "ref.zarr", "ghz:10", N, **kw)
    a = simulate_to_store("ghz:10", tmp_path / "a.zarr", N, chunk_snapshots=8000, execution=two_workers, **kw)
    _assert_same(a, ref)
    assert a.n_settings == N // 4
    assert np.array_equal(np.bincount(a.read_settings()), np.full(N // 4, 4))


def test_in_process_chunks_need_not_be_whole_batches(tmp_path: Path) -> None:
    # 3000-snapshot batches cross the 4096-row chunk boundaries: each crossing batch is drawn twice.
    kw = {"seed": 2, "batch_snapshots": 3000, "noise": NOISE}
    ref = _reference(tmp_path / "ref.zarr", "ghz:6", N, **kw)
    _assert_same(simulate_to_store("ghz:6", tmp_path / "a.zarr", N, chunk_snapshots=CHUNK, **kw), ref)
    # A state vector goes through the same path.
    sv = prepare_state("ghz:6", simulator="statevector")
    batches = list(iter_batches(sv, 5000, seed=4, batch_snapshots=1500))
    store = simulate_to_store(sv, tmp_path / "sv.zarr", 5000, seed=4, batch_snapshots=1500, chunk_snapshots=1024)
    assert np.array_equal(store.load().outcomes, np.concatenate([b.outcomes for b in batches]))


def _left_nothing(parent: Path, name: str) -> bool:
    return not any(p.name.startswith((name, f".{name}")) for p in parent.iterdir())


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    cluster = Execution(workers=2)  # each error comes before any cluster is started
    with pytest.raises(ShadowlabError, match="multiple of the batch size"):
        simulate_to_store("ghz:5", tmp_path / "x.zarr", N, batch_snapshots=3000, chunk_snapshots=CHUNK,
                          execution=cluster)
    with pytest.raises(ShadowlabError, match="memory bound"):
        simulate_to_store("ghz:100", tmp_path / "x.zarr", N, chunk_snapshots=1 << 20,
                          execution=Execution(workers=2, memory="64MB"))
    with pytest.raises(ShadowlabError, match="repeats"):
        simulate_to_store("ghz:5", tmp_path / "x.zarr", 1001, repeats=2)
    assert _left_nothing(tmp_path, "x.zarr")
    first = simulate_to_store("ghz:5", tmp_path / "x.zarr", 1000, chunk_snapshots=512)
    with pytest.raises(ShadowlabError, match="already exists"):
        simulate_to_store("ghz:5", tmp_path / "x.zarr", 2000, execution=cluster)
    assert ShadowStore.open(tmp_path / "x.zarr").n_snapshots == 1000
    again = simulate_to_store("ghz:5", tmp_path / "x.zarr", 1000, chunk_snapshots=512, force=True)
    _assert_same(first, again)


def test_an_interrupted_run_leaves_no_store(tmp_path: Path) -> None:
    def stop(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate_to_store("ghz:5", tmp_path / "cut.zarr", N, chunk_snapshots=CHUNK, progress=stop)
    assert _left_nothing(tmp_path, "cut.zarr")


def test_cli_simulate_with_workers(run: Any, tmp_path: Path) -> None:
    args = ("simulate", "ghz:8", "-n", N, "--seed", 7, "-q")
    r = run(*args, "--chunk-snapshots", 16384, "-o", "serial.zarr")
    assert r.exit_code == 0, r.stderr
    r = run(*args, "--chunk-snapshots", 16384, "-o", "dist.zarr", "--workers", 2)
    assert r.exit_code == 0, r.stderr
    serial, dist = ShadowStore.open(tmp_path / "serial.zarr"), ShadowStore.open(tmp_path / "dist.zarr")
    _assert_same(serial, dist)
    assert _untimed(serial) == _untimed(dist)
    r = run(*args, "-o", "bad.zarr", "--workers", 2, "--chunk-snapshots", 4096)
    assert r.exit_code == 1 and "multiple of the batch size" in r.stderr
    assert _left_nothing(tmp_path, "bad.zarr")
