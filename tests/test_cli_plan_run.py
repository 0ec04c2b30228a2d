"""plan -> acquire (Qiskit Aer, Braket local) -> import -> predict, end to end through the CLI.

The acceptance round trip: a 4-qubit GHZ state planned, run, imported and predicted, matching
exact values within 5 standard errors; imported result files give the same data set as the
direct run; bad inputs are clear errors with nothing written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from shadowlab.data.store import ShadowStore
from shadowlab.plan.scheme import read_scheme

GHZ4_EXACT = {"Z0 Z1": 1.0, "Z2 Z3": 1.0, "X0 X1 X2 X3": 1.0, "Y0 Y1 X2 X3": -1.0, "Z0": 0.0, "X0 X1": 0.0,
              "Y0 Y1 Y2 Y3": 1.0}


def _observables(path: Path) -> Path:
    path.write_text("n = 4\n" + "".join(f"{label}\n" for label in GHZ4_EXACT))
    return path


def _check_ghz(run, store: str, tmp_path: Path) -> None:
    r = run("predict", store, _observables(tmp_path / "obs.txt"), "--format", "json", "-q")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)["estimates"]
    assert len(rows) == len(GHZ4_EXACT)
    for row in rows:
        exact = GHZ4_EXACT[row["observable"]]
        # 5 standard errors; a +-1 expectation has zero variance, so allow the s.e. floor of 1e-12.
        assert abs(row["estimate"] - exact) <= 5 * row["stderr"] + 1e-12, row


@pytest.mark.parametrize("backend", ["qiskit-aer", "braket-local"])
def test_plan_acquire_predict_ghz4(run, tmp_path: Path, backend: str) -> None:
    r = run("plan", "--qubits", "4", "-n", "5000", "--repeats", "10", "--seed", "2", "-o", "plan.txt", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("acquire", "plan.txt", "--state", "ghz:4", "--backend", backend, "-o", "ghz.zarr", "--seed", "5", "-q")
    assert r.exit_code == 0, r.stderr
    store = ShadowStore.open(tmp_path / "ghz.zarr")
    assert store.n_snapshots == 5000
    assert store.metadata["provenance"]["backend"]["backend"] == backend
    _check_ghz(run, "ghz.zarr", tmp_path)


def test_qiskit_noise_is_one_flag_away(run, tmp_path: Path) -> None:
    run("plan", "--qubits", "4", "-n", "5000", "-o", "plan.txt", "-q")
    r = run("acquire", "plan.txt", "--state", "ghz:4", "--backend", "qiskit-aer", "--noise",
            "depolarizing=0.05,readout=0.05", "-o", "noisy.zarr", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("predict", "noisy.zarr", _observables(tmp_path / "obs.txt"), "--format", "json", "-q")
    assert r.exit_code == 0, r.stderr
    rows = {row["observable"]: row for row in json.loads(r.stdout)["estimates"]}
    # Readout flips alone shrink <Z0 Z1> = 1 to (1 - 2 * 0.05)^2 = 0.81, and gate noise only lowers
    # it further: the estimate is below 1 and consistent with at most 0.81, each by 5 s.e.
    zz = rows["Z0 Z1"]
    assert zz["estimate"] + 5 * zz["stderr"] < 1.0
    assert zz["estimate"] - 5 * zz["stderr"] <= (1 - 2 * 0.05) ** 2


def test_imported_qiskit_results_equal_the_direct_run(run, tmp_path: Path) -> None:
    from shadowlab.acquire.qiskit_backend import QiskitAerBackend

    run("plan", "--qubits", "4", "-n", "600", "--repeats", "30", "--seed", "4", "-o", "plan.txt", "-q")
    scheme = read_scheme(tmp_path / "plan.txt")
    direct = QiskitAerBackend("ghz:4").run_batch(scheme.settings, scheme.repeats, 9, save_to=tmp_path / "res.json")
    r = run("import", "res.json", "--plan", "plan.txt", "-o", "imported.zarr")
    assert r.exit_code == 0, r.stderr
    data = ShadowStore.open(tmp_path / "imported.zarr").load()
    assert np.array_equal(data.outcomes, direct)
    assert np.array_equal(data.bases, scheme.settings[scheme.snapshot_settings()])
    assert data.scheme_record["sha256"] == scheme.digest()


def test_imported_braket_results_equal_the_direct_run(run, tmp_path: Path) -> None:
    from shadowlab.acquire.braket_backend import BraketLocalBackend

    run("plan", "--qubits", "4", "-n", "200", "--repeats", "20", "--seed", "4", "-o", "plan.txt", "-q")
    scheme = read_scheme(tmp_path / "plan.txt")
    direct = BraketLocalBackend("ghz:4").run_batch(scheme.settings, scheme.repeats, save_to=tmp_path / "tasks")
    r = run("import", "tasks", "--plan", "plan.txt", "-o", "imported.zarr")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(ShadowStore.open(tmp_path / "imported.zarr").load().outcomes, direct)


def test_result_file_of_another_plan_is_refused(run, tmp_path: Path) -> None:
    from shadowlab.acquire.qiskit_backend import QiskitAerBackend

    run("plan", "--qubits", "4", "-n", "100", "--repeats", "10", "--seed", "1", "-o", "plan.txt", "-q")
    run("plan", "--qubits", "4", "-n", "100", "--repeats", "10", "--seed", "2", "-o", "other.txt", "-q")
    run("plan", "--qubits", "3", "-n", "100", "--repeats", "10", "--seed", "1", "-o", "three.txt", "-q")
    scheme = read_scheme(tmp_path / "plan.txt")
    QiskitAerBackend("ghz:4").run_batch(scheme.settings, scheme.repeats, 1, save_to=tmp_path / "res.json")
    for plan in ("other.txt", "three.txt"):
        r = run("import", "res.json", "--plan", plan, "-o", "x.zarr")
        assert r.exit_code == 1
        assert "error:" in r.stderr and "res.json" in r.stderr
        assert not (tmp_path / "x.zarr").exists()


def test_bad_plans_and_missing_extras_append_nothing(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.txt").write_text("XYZZ\nXYQZ\n")
    r = run("acquire", "bad.txt", "--state", "ghz:4", "-o", "s.zarr")
    assert r.exit_code == 1 and "bad.txt:2:" in r.stderr
    (tmp_path / "short.txt").write_text("XYZZ\nXYZ\n")
    r = run("acquire", "short.txt", "--state", "ghz:4", "-o", "s.zarr")
    assert r.exit_code == 1 and "3 letters" in r.stderr
    (tmp_path / "five.txt").write_text("XYZZX\n")
    r = run("acquire", "five.txt", "--state", "ghz:4", "-o", "s.zarr")
    assert r.exit_code == 1 and "plan has 5 qubits but the state has 4" in r.stderr
    assert not (tmp_path / "s.zarr").exists()
    # An observable on a qubit the plan does not have.
    (tmp_path / "obs.txt").write_text("n = 4\nZ0 Z7\n")
    r = run("plan", "obs.txt", "--scheme", "derandomized", "--hits", "3", "-o", "p.txt")
    assert r.exit_code == 1 and "obs.txt" in r.stderr and not (tmp_path / "p.txt").exists()
    (tmp_path / "obs4.txt").write_text("n = 4\nZ0 Z3\n")
    r = run("plan", "obs4.txt", "--qubits", "3", "--scheme", "uniform", "-n", "10", "-o", "p.txt")
    assert r.exit_code == 1 and not (tmp_path / "p.txt").exists()
    # A back end whose extra is not installed: a clear error, and an existing store is untouched.
    (tmp_path / "good.txt").write_text("XYZZ 5\nZZZZ 5\n")
    assert run("acquire", "good.txt", "--state", "ghz:4", "-o", "s.zarr", "-q").exit_code == 0
    before = ShadowStore.open(tmp_path / "s.zarr").metadata
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    monkeypatch.delitem(sys.modules, "shadowlab.acquire.qiskit_backend", raising=False)
    r = run("acquire", "good.txt", "--state", "ghz:4", "--backend", "qiskit-aer", "-o", "s.zarr")
    assert r.exit_code == 1 and "pip install 'shadowlab[qiskit]'" in r.stderr
    assert ShadowStore.open(tmp_path / "s.zarr").metadata == before


def test_derandomized_plan_takes_weights_from_the_reference_file(run, tmp_path: Path) -> None:
    from shadowlab.observables import read_reference_observables
    from shadowlab.plan.derandomize import hit_counts

    # Reference format: n, then "k P q P q ... [weight]".
    (tmp_path / "obs.txt").write_text("5\n2 Z 0 Z 1 1.0\n2 X 1 X 2 0.5\n3 Y 2 Y 3 X 4 0.25\n1 Z 4\n")
    r = run("plan", "obs.txt", "--scheme", "derandomized", "--hits", "40", "-o", "derand.txt")
    assert r.exit_code == 0, r.stderr
    scheme = read_scheme(tmp_path / "derand.txt")
    assert scheme.kind == "derandomized" and scheme.n_qubits == 5
    obs, weights = read_reference_observables(tmp_path / "obs.txt")
    hits = hit_counts(scheme, obs)
    assert np.all(hits >= np.floor(np.asarray(weights) * 40))
    # Acquired and predicted with the matched estimator, chosen from the recorded scheme.
    assert run("acquire", "derand.txt", "--state", "ghz:5", "-o", "d.zarr", "-q").exit_code == 0
    r = run("predict", "d.zarr", "obs.txt", "--format", "json", "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["method"]["estimator"] == "matched"
    r = run("predict", "d.zarr", "obs.txt", "--estimator", "mean", "-q")
    assert r.exit_code == 1 and "would be biased" in r.stderr
