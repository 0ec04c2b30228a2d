"""The Zarr shadow store: round trips, appends, lazy chunked reads and refusals of bad stores."""

import json

import numpy as np
import pytest
import zarr

from shadowlab.data.dataset import ShadowData
from shadowlab.data.store import FORMAT_VERSION, ShadowStore, write_store
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StoreFormatError


def _data(seed, n_snap=500, n_q=7):
    rng = np.random.default_rng(seed)
    return ShadowData(
        rng.integers(0, 3, (n_snap, n_q)),
        rng.integers(0, 2, (n_snap, n_q)),
        np.repeat(np.arange(n_snap // 5), 5),
        {"seed": seed},
    )


def test_round_trip_is_bit_exact(tmp_path):
    d = _data(1)
    write_store(d, tmp_path / "s.zarr", chunk_snapshots=128)
    s = ShadowStore.open(tmp_path / "s.zarr")
    assert (s.n_qubits, s.n_snapshots, s.n_settings) == (7, 500, 100)
    assert s.load().equals(d)
    offsets = [off for off, _ in s.iter_chunks()]
    assert offsets == [0, 128, 256, 384]
    assert ShadowData.concatenate([c for _, c in s.iter_chunks(100)]).equals(d)
    assert s.metadata["provenance"] == {"seed": 1}
    assert s.metadata["format"] == FORMAT_VERSION


def test_append_batches_and_setting_offsets(tmp_path):
    s = ShadowStore.create(tmp_path / "a.zarr", 7, chunk_snapshots=64)
    a, b = _data(2, 100), _data(3, 60)
    s.append(a)
    s.append(b)
    again = ShadowStore.open(tmp_path / "a.zarr")
    assert again.n_snapshots == 160
    loaded = again.load()
    assert np.array_equal(loaded.bases, np.concatenate([a.bases, b.bases]))
    # The second batch's settings continue after the first batch's.
    assert np.array_equal(loaded.settings[100:], b.settings + 20)
    assert len(again.metadata["batches"]) == 2


def test_rows_past_the_committed_count_are_invisible(tmp_path):
    # A writer killed between writing rows and committing leaves extra rows; readers ignore them.
    s = ShadowStore.create(tmp_path / "k.zarr", 7, chunk_snapshots=64)
    s.append(_data(4, 50))
    group = zarr.open_group(str(tmp_path / "k.zarr"), mode="r+")
    for name in ("bases", "outcomes"):
        group[name].resize((80, 7))
        group[name][50:80] = 1
    group["settings"].resize((80,))
    reopened = ShadowStore.open(tmp_path / "k.zarr", mode="a")
    assert reopened.n_snapshots == 50
    reopened.append(_data(5, 40))
    assert ShadowStore.open(tmp_path / "k.zarr").load().bases[50:90].tolist() == _data(5, 40).bases.tolist()


def test_append_to_a_read_only_store_is_refused(tmp_path):
    write_store(_data(1, 10), tmp_path / "r.zarr")
    with pytest.raises(ShadowlabError, match="read-only"):
        ShadowStore.open(tmp_path / "r.zarr").append(_data(2, 10))
    assert ShadowStore.open(tmp_path / "r.zarr").n_snapshots == 10


def test_append_refuses_other_qubit_count(tmp_path):
    s = ShadowStore.create(tmp_path / "q.zarr", 7)
    with pytest.raises(QubitCountMismatchError, match="7 qubits"):
        s.append(_data(1, 10, n_q=5))
    assert ShadowStore.open(tmp_path / "q.zarr").n_snapshots == 0


def test_refuses_existing_path_without_force(tmp_path):
    write_store(_data(1), tmp_path / "x.zarr")
    with pytest.raises(ShadowlabError, match="already exists"):
        write_store(_data(2), tmp_path / "x.zarr")
    write_store(_data(2), tmp_path / "x.zarr", force=True)
    assert ShadowStore.open(tmp_path / "x.zarr").load().equals(_data(2))


def test_missing_path(tmp_path):
    with pytest.raises(StoreFormatError, match="no such store"):
        ShadowStore.open(tmp_path / "nothing.zarr")


def test_plain_directory_is_not_a_store(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(StoreFormatError, match=r"no zarr\.json"):
        ShadowStore.open(tmp_path / "dir")


def test_foreign_zarr_group(tmp_path):
    zarr.open_group(str(tmp_path / "f.zarr"), mode="w").attrs["other"] = 1
    with pytest.raises(StoreFormatError, match="not a shadowlab one"):
        ShadowStore.open(tmp_path / "f.zarr")


def test_unknown_format_version(tmp_path):
    write_store(_data(1), tmp_path / "v.zarr")
    meta_file = tmp_path / "v.zarr" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"]["shadowlab"]["format"] = 99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(StoreFormatError, match=r"format 99.*upgrade"):
        ShadowStore.open(tmp_path / "v.zarr")


def test_corrupted_metadata_and_missing_array(tmp_path):
    write_store(_data(1), tmp_path / "c.zarr")
    (tmp_path / "c.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreFormatError, match="cannot open"):
        ShadowStore.open(tmp_path / "c.zarr")
    write_store(_data(1), tmp_path / "m.zarr")
    import shutil

    shutil.rmtree(tmp_path / "m.zarr" / "outcomes")
    with pytest.raises(StoreFormatError, match="missing"):
        ShadowStore.open(tmp_path / "m.zarr")


def test_corrupted_values_are_refused_on_read(tmp_path):
    write_store(_data(1), tmp_path / "b.zarr")
    zarr.open_group(str(tmp_path / "b.zarr"), mode="r+")["bases"][3, 2] = 7
    with pytest.raises(StoreFormatError, match="invalid data"):
        ShadowStore.open(tmp_path / "b.zarr").load()


def test_summary_counts_bases(tmp_path):
    d = _data(9, 3000)
    s = write_store(d, tmp_path / "i.zarr")
    info = s.summary()
    assert info["n_snapshots"] == 3000
    assert info["basis_fractions"]["X"] == pytest.approx(np.mean(d.bases == 0))
    assert info["disk_bytes"] > 0
