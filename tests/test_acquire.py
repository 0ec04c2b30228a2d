"""Resumable acquisition: plan -> back end -> store, killed and resumed, identical to one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shadowlab.acquire.run import acquire, acquisition_status, make_backend
from shadowlab.data.store import ShadowStore
from shadowlab.errors import ShadowlabError
from shadowlab.plan.scheme import Scheme, uniform_scheme, write_scheme


def _plan(n_qubits: int, n_settings: int, repeats: int, seed: int = 5) -> Scheme:
    return uniform_scheme(n_qubits, n_settings, np.random.default_rng(seed), repeats=repeats)


def test_acquire_records_scheme_and_plan_indices(tmp_path: Path) -> None:
    scheme = _plan(5, 40, 3)
    store = acquire(scheme, make_backend("statevector", "ghz:5"), tmp_path / "s.zarr", seed=1, batch_snapshots=20)
    data = store.load()
    assert data.n_snapshots == scheme.n_snapshots
    # Setting indices are the plan's, and every snapshot carries its setting's bases.
    assert np.array_equal(data.settings, scheme.snapshot_settings())
    assert np.array_equal(data.bases, scheme.settings[data.settings])
    assert store.scheme_record["kind"] == "uniform"
    assert store.scheme_record["sha256"] == scheme.digest()
    status = acquisition_status(store)
    assert status == {"settings_done": 40, "settings_total": 40, "snapshots_done": 120, "snapshots_total": 120,
                      "complete": True}


class _Interrupt(Exception):
    pass


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    scheme = _plan(6, 90, 2)
    backend = make_backend("statevector", "ghz:6")
    whole = acquire(scheme, backend, tmp_path / "whole.zarr", seed=7, batch_snapshots=30).load()

    def stop_after_two_batches(done: int, _total: int) -> None:
        if done >= 30:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        acquire(scheme, backend, tmp_path / "parts.zarr", seed=7, batch_snapshots=30, progress=stop_after_two_batches)
    partial = ShadowStore.open(tmp_path / "parts.zarr")
    assert 0 < partial.n_snapshots < scheme.n_snapshots
    assert acquisition_status(partial)["complete"] is False
    resumed = acquire(scheme, backend, tmp_path / "parts.zarr", seed=7, batch_snapshots=30)
    assert resumed.load().equals(whole)
    # Running a finished acquisition again changes nothing.
    again = acquire(scheme, backend, tmp_path / "parts.zarr", seed=7, batch_snapshots=30)
    assert again.n_snapshots == scheme.n_snapshots
    assert len(again.metadata["batches"]) == len(resumed.metadata["batches"])


def test_resume_with_different_arguments_is_refused(tmp_path: Path) -> None:
    scheme = _plan(4, 20, 1)
    backend = make_backend("statevector", "ghz:4")
    acquire(scheme, backend, tmp_path / "s.zarr", seed=1, batch_snapshots=8)
    before = ShadowStore.open(tmp_path / "s.zarr").n_snapshots
    for kwargs in ({"seed": 2, "batch_snapshots": 8}, {"seed": 1, "batch_snapshots": 4}):
        with pytest.raises(ShadowlabError, match="different acquisition"):
            acquire(scheme, backend, tmp_path / "s.zarr", **kwargs)
    with pytest.raises(ShadowlabError, match="scheme_sha256"):
        acquire(_plan(4, 20, 1, seed=6), backend, tmp_path / "s.zarr", seed=1, batch_snapshots=8)
    with pytest.raises(ShadowlabError, match="state"):
        acquire(scheme, make_backend("statevector", "w:4"), tmp_path / "s.zarr", seed=1, batch_snapshots=8)
    assert ShadowStore.open(tmp_path / "s.zarr").n_snapshots == before


def test_qubit_count_mismatch_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ShadowlabError, match="plan has 5 qubits but the state has 4"):
        acquire(_plan(5, 10, 1), make_backend("statevector", "ghz:4"), tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_unknown_backend_and_foreign_noise_on_local_simulator() -> None:
    with pytest.raises(ShadowlabError, match="unknown back end"):
        make_backend("ibm-eagle", "ghz:4")
    with pytest.raises(ShadowlabError, match="takes a shadowlab NoiseModel"):
        make_backend("stim", "ghz:4", noise=object())
    with pytest.raises(ShadowlabError, match="unknown noise parameter"):
        make_backend("stim", "ghz:4", noise={"amplitude_damping": 0.1})
    with pytest.raises(ShadowlabError, match="is a stim state"):
        make_backend("statevector", make_backend("stim", "ghz:4").state)


def _committed(path: Path) -> int:
    """Committed snapshots of a store being written by another process (0 if not readable yet)."""
    try:
        meta = json.loads((path / "zarr.json").read_text())
        return int(meta["attributes"]["shadowlab"]["n_snapshots"])
    except (OSError, ValueError, KeyError):
        return 0


def test_sigkill_and_resume_gives_the_uninterrupted_data_set(tmp_path: Path) -> None:
    """The acceptance test: kill -9 the CLI mid-acquisition, several times, then finish it."""
    scheme = _plan(60, 3000, 2, seed=11)
    plan_file = tmp_path / "plan.txt"
    write_scheme(scheme, plan_file)
    store = tmp_path / "killed.zarr"
    command = [sys.executable, "-m", "shadowlab", "acquire", str(plan_file), "--state", "ghz:60", "--backend", "stim",
               "-o", str(store), "--seed", "3", "--batch-snapshots", "64", "-q"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        start = _committed(store)
        deadline = time.monotonic() + 120
        # Wait until this run has committed at least one new batch, then kill it at a random moment.
        while proc.poll() is None and _committed(store) <= start and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.3)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()
        proc.stderr.close()
    assert kills >= 1, "the acquisition finished before it could be killed; make the plan longer"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = acquire(scheme, make_backend("stim", "ghz:60"), tmp_path / "whole.zarr", seed=3, batch_snapshots=64)
    resumed = ShadowStore.open(store)
    assert resumed.n_snapshots == scheme.n_snapshots
    assert resumed.load().equals(reference.load())
    batches = [b["provenance"]["batch"] for b in resumed.metadata["batches"]]
    assert batches == list(range(len(batches)))


class _Recording:
    """A back end that records the jobs it is given and answers deterministically per setting."""

    name = "recording"
    n_qubits = 2

    def __init__(self) -> None:
        self.jobs: list[tuple[list[str], list[int]]] = []

    def run_batch(self, settings: np.ndarray, repeats: np.ndarray, seed: int) -> np.ndarray:
        self.jobs.append((["".join("XYZ"[c] for c in row) for row in settings], repeats.tolist()))
        # Outcome row = (setting's first letter is Z, shot number within the job mod 2): traceable rows.
        rows = [[int(row[0] == 2), k % 2] for row, r in zip(settings, repeats, strict=True) for k in range(int(r))]
        return np.array(rows, dtype=np.uint8)

    def describe(self) -> dict:
        return {"backend": self.name, "state": "test"}


def test_identical_settings_in_a_batch_run_as_one_job(tmp_path: Path) -> None:
    scheme = Scheme.from_labels(["ZZ", "XX", "ZZ", "YX"], repeats=[2, 3, 4, 1])
    backend = _Recording()
    data = acquire(scheme, backend, tmp_path / "s.zarr", batch_snapshots=100).load()
    assert backend.jobs == [(["ZZ", "XX", "YX"], [6, 3, 1])]
    # Every snapshot got an outcome of its own setting (first bit = its first letter is Z).
    assert np.array_equal(data.outcomes[:, 0], data.bases[:, 0] == 2)
    assert np.array_equal(data.settings, [0, 0, 1, 1, 1, 2, 2, 2, 2, 3])
    # The merged job's 6 ZZ shots were handed out in order: 2 to setting 0, 4 to setting 2.
    zz = data.outcomes[data.bases[:, 0] == 2, 1]
    assert zz.tolist() == [0, 1, 0, 1, 0, 1]


def test_openqasm3_files_run_on_the_state_vector_sampler(tmp_path: Path) -> None:
    from shadowlab.acquire.simulate import prepare_state

    (tmp_path / "p.qasm").write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nx q[0];\nh q[2];\n')
    state = prepare_state(str(tmp_path / "p.qasm")).statevector
    expected = np.zeros(8, dtype=complex)
    expected[[0b100, 0b101]] = 1 / np.sqrt(2)  # |1>|0>|+>, qubit 0 the most significant bit
    assert np.allclose(state, expected, atol=1e-12)
    (tmp_path / "ghz3.qasm").write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nh q[0];\n'
                                        "cx q[0], q[1];\ncx q[1], q[2];\n")
    (tmp_path / "ghz2.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\nh q[0];\n'
                                        "cx q[0],q[1];\ncx q[1],q[2];\n")
    scheme = _plan(3, 30, 4)
    via3 = acquire(scheme, make_backend("statevector", str(tmp_path / "ghz3.qasm")), tmp_path / "a.zarr", seed=2)
    via2 = acquire(scheme, make_backend("statevector", str(tmp_path / "ghz2.qasm")), tmp_path / "b.zarr", seed=2)
    assert np.array_equal(via3.load().outcomes, via2.load().outcomes)


def test_resume_refuses_a_changed_noise_model_state_file_or_scheme_header(tmp_path: Path) -> None:
    scheme = _plan(3, 12, 2)
    acquire(scheme, make_backend("qiskit-aer", "ghz:3", noise={"readout": 0.0}), tmp_path / "q.zarr", seed=1,
            batch_snapshots=4)
    with pytest.raises(ShadowlabError, match="backend_settings"):
        acquire(scheme, make_backend("qiskit-aer", "ghz:3", noise={"readout": 0.5}), tmp_path / "q.zarr", seed=1,
                batch_snapshots=4)
    state = tmp_path / "s.qasm"
    state.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\nh q[0];\n')
    acquire(scheme, make_backend("statevector", str(state)), tmp_path / "f.zarr", batch_snapshots=4)
    state.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\nx q[0];\n')
    with pytest.raises(ShadowlabError, match="state_sha256"):
        acquire(scheme, make_backend("statevector", str(state)), tmp_path / "f.zarr", batch_snapshots=4)
    relabelled = Scheme(scheme.settings, scheme.repeats, kind="custom")
    with pytest.raises(ShadowlabError, match="scheme_kind"):
        acquire(relabelled, make_backend("statevector", str(state)), tmp_path / "f.zarr", batch_snapshots=4)
