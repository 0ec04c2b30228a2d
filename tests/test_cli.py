"""The command line, run in a temporary directory: happy paths and the catalogue of bad inputs.

Each bad input must give a one-line ``error:`` naming the file, line or option, exit status 1,
and leave no output file behind.
"""

import csv
import io
import json

import numpy as np
import pytest
import zarr

from shadowlab.data.store import ShadowStore


@pytest.fixture
def store(run, tmp_path):
    r = run("simulate", "ghz:4", "--simulator", "statevector", "-n", "4000", "--seed", "3", "-o", "ghz.zarr", "-q")
    assert r.exit_code == 0, r.stderr
    return tmp_path / "ghz.zarr"


def _obs(tmp_path, text, name="obs.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _fails(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in result.stderr.replace("\n", " "), (f, result.stderr)


def _no_stray_files(tmp_path, expected):
    names = {p.name for p in tmp_path.iterdir()}
    assert names == set(expected), names


def test_simulate_info_predict(run, store, tmp_path):
    info = run("info", store, "--json")
    assert info.exit_code == 0
    summary = json.loads(info.stdout)
    assert summary["n_qubits"] == 4 and summary["n_snapshots"] == 4000
    assert summary["provenance"]["state"] == "ghz:4"
    obs = _obs(tmp_path, "4\n2 Z 0 Z 1\n1 X 2\n4 X 0 X 1 X 2 X 3\n")
    table = run("predict", store, obs)
    assert table.exit_code == 0, table.stderr
    assert "Z0 Z1" in table.stdout and "X0 X1 X2 X3" in table.stdout
    out = run("predict", store, obs, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["observable"] for r in rows] == ["Z0 Z1", "X2", "X0 X1 X2 X3"]
    # GHZ: <Z0 Z1> = <X0 X1 X2 X3> = 1, <X2> = 0 (exact); 5 standard errors.
    for r, exact in zip(rows, (1.0, 0.0, 1.0), strict=True):
        assert abs(float(r["estimate"]) - exact) <= 5 * float(r["stderr"]) + 1e-12
        assert int(r["n_snapshots"]) == 4000


def test_predict_writes_json_and_sum(run, store, tmp_path):
    obs = _obs(tmp_path, "0.5 Z0 Z1\n-1.0 Z2 Z3\n2.0 IIII\n")
    r = run("predict", store, obs, "--sum", "--format", "json", "-o", "res.json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "res.json").read_text())
    assert doc["method"]["estimator"] == "mean"
    total = doc["estimates"][-1]
    assert total["observable"] == "SUM"
    # Exact: 0.5 - 1.0 + 2.0 = 1.5.
    assert abs(total["estimate"] - 1.5) <= 5 * total["stderr"]
    again = run("predict", store, obs, "--format", "json", "-o", "res.json")
    _fails(again, "res.json", "--force")


def test_all_pairs_and_mom(run, store):
    r = run("predict", store, "--all-pairs", "--estimator", "mom", "--blocks", "10", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 9 * 6


def test_import_export_round_trip(run, store, tmp_path):
    for fmt, name in (("huang", "s.txt"), ("pennylane", "s_pl.npz"), ("npz", "s.npz")):
        assert run("export", store, "-o", name, "--format", fmt).exit_code == 0
        r = run("import", name, "-o", f"{fmt}.zarr", "--format", fmt)
        assert r.exit_code == 0, r.stderr
        a = ShadowStore.open(store).load()
        b = ShadowStore.open(tmp_path / f"{fmt}.zarr").load()
        assert np.array_equal(a.bases, b.bases) and np.array_equal(a.outcomes, b.outcomes)


def test_import_pennylane_npy_pair(run, store, tmp_path):
    data = ShadowStore.open(store).load()
    np.save(tmp_path / "bits.npy", data.outcomes.astype(np.int8))
    np.save(tmp_path / "recipes.npy", data.bases.astype(np.int8))
    r = run("import", "bits.npy", "recipes.npy", "-o", "pair.zarr")
    assert r.exit_code == 0, r.stderr
    back = ShadowStore.open(tmp_path / "pair.zarr").load()
    assert np.array_equal(back.bases, data.bases) and np.array_equal(back.outcomes, data.outcomes)
    _fails(run("import", "bits.npy", "recipes.npy", "bits.npy", "-o", "three.zarr"), "two .npy files")


# --- the catalogue of bad inputs ------------------------------------------------------------


def test_malformed_observable_line(run, store, tmp_path):
    obs = _obs(tmp_path, "4\n2 Z 0 Z 1\n2 Z 0\n")
    _fails(run("predict", store, obs, "--format", "csv", "-o", "r.csv"), "obs.txt:3")
    _no_stray_files(tmp_path, {"ghz.zarr", "obs.txt"})


def test_unknown_letter(run, store, tmp_path):
    obs = _obs(tmp_path, "0.5 Z0 Q1\n")
    _fails(run("predict", store, obs), "obs.txt:1")


def test_qubit_index_out_of_range(run, store, tmp_path):
    obs = _obs(tmp_path, "4\n1 Z 4\n")
    _fails(run("predict", store, obs), "obs.txt:2", "qubit")


def test_qubit_count_mismatch(run, store, tmp_path):
    obs = _obs(tmp_path, "ZZZZZ\n")
    _fails(run("predict", store, obs, "--format", "csv", "-o", "r.csv"), "5 qubits", "4")
    _no_stray_files(tmp_path, {"ghz.zarr", "obs.txt"})


def test_more_blocks_than_snapshots(run, store, tmp_path):
    obs = _obs(tmp_path, "Z0 Z1\n")
    _fails(run("predict", store, obs, "--estimator", "mom", "--blocks", "5000"), "K=5000", "4000")


def test_empty_data_set(run, tmp_path):
    (tmp_path / "empty.txt").write_text("3\n")
    _fails(run("import", "empty.txt", "-o", "e.zarr", "--format", "huang"), "empty.txt", "no snapshots")
    _no_stray_files(tmp_path, {"empty.txt"})


def test_empty_store(run, tmp_path):
    ShadowStore.create(tmp_path / "e.zarr", 2)
    obs = _obs(tmp_path, "Z0 Z1\n")
    _fails(run("predict", "e.zarr", obs), "empty")


def test_corrupted_store(run, store, tmp_path):
    (store / "zarr.json").write_text("{ broken")
    obs = _obs(tmp_path, "Z0 Z1\n")
    _fails(run("predict", store, obs), "ghz.zarr", "cannot open")


def test_foreign_store(run, tmp_path):
    zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w").attrs["x"] = 1
    _fails(run("info", "foreign.zarr"), "foreign.zarr", "not a shadowlab")


def test_non_normalized_state_vector(run, tmp_path):
    np.save(tmp_path / "psi.npy", np.array([1.0, 1.0, 0.0, 0.0], dtype=complex))
    _fails(run("simulate", "psi.npy", "-n", "100", "-o", "p.zarr"), "psi.npy", "not normalized")
    _no_stray_files(tmp_path, {"psi.npy"})


def test_unknown_state_and_existing_output(run, store, tmp_path):
    _fails(run("simulate", "nosuchstate:3", "-n", "10", "-o", "x.zarr"), "nosuchstate")
    _fails(run("simulate", "ghz:3", "-n", "10", "-o", "ghz.zarr"), "ghz.zarr", "--force")
    assert ShadowStore.open(store).n_qubits == 4


def test_unmatched_observable(run, tmp_path):
    r = run("simulate", "ghz:12", "--simulator", "statevector", "-n", "50", "-o", "few.zarr", "-q")
    assert r.exit_code == 0, r.stderr
    obs = _obs(tmp_path, "XXXXXXXXXXXX\nZ0 Z1\n")
    _fails(run("predict", "few.zarr", obs), "no snapshot matches", "X0 X1")
    ok = run("predict", "few.zarr", obs, "--skip-unmatched", "--format", "csv")
    assert ok.exit_code == 0 and "Z0 Z1" in ok.stdout and "X0 X1" not in ok.stdout


def test_bad_options(run, store, tmp_path):
    obs = _obs(tmp_path, "Z0 Z1\n")
    _fails(run("predict", store, obs, "--level", "1.5"), "between 0 and 1")
    _fails(run("predict", store, obs, "--format", "xml"), "--format")
    _fails(run("predict", store), "observable file")
