"""Molecular energies: exact ground states of the shared Hamiltonians, estimates under each scheme."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shadowlab.cli import app
from shadowlab.energy import (
    ENERGY_SCHEMES,
    derandomization_weights,
    exact_ground_state,
    plan_energy,
    read_hamiltonian,
    run_energy,
    summarize,
)
from shadowlab.errors import ShadowlabError
from shadowlab.plan.derandomize import hit_counts

MOLECULES = Path(__file__).resolve().parents[2] / "shared" / "data" / "molecules"
H2 = MOLECULES / "H2_STO3g_4qubits"
H2_EXACT = -1.8572750302  # the data set's README, checked fact
pytestmark = pytest.mark.skipif(not H2.is_dir(), reason="shared molecule data not present")


def test_cli_energy_reports_every_scheme_within_5_standard_errors() -> None:
    r = CliRunner().invoke(app, ["energy", str(H2), "--encoding", "parity", "-n", "2000", "--json"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n_qubits"] == 4 and report["terms"] == 15
    assert math.isclose(report["exact"], H2_EXACT, abs_tol=1e-9)
    assert [run["scheme"] for run in report["runs"]] == list(ENERGY_SCHEMES)
    for run in report["runs"]:
        assert abs(run["estimate"] - report["exact"]) <= 5 * run["stderr"], run


def test_intervals_cover_the_exact_energy_at_the_nominal_rate() -> None:
    h, _ = read_hamiltonian(H2, "jw")
    exact, state = exact_ground_state(h)
    runs = run_energy(h, state, exact, snapshots=500, seeds=60)
    for row in summarize(runs):
        # 95% nominal; 5 binomial standard errors over 60 runs.
        assert row["coverage"] >= 0.95 - 5 * math.sqrt(0.95 * 0.05 / 60), row


def test_derandomized_energy_plan_hits_every_term_and_favours_large_ones() -> None:
    h, _ = read_hamiltonian(MOLECULES / "LiH_STO3g_12qubits", "jw")
    plan = plan_energy(h, "derandomized", 1000, seed=0)
    assert plan.n_settings == 1000 and plan.kind == "derandomized"
    assert plan.equals(plan_energy(h, "derandomized", 1000, seed=7))  # deterministic
    terms, weights = derandomization_weights(h, 10_000)
    hits = hit_counts(plan, terms)
    assert hits.min() >= 1
    big, small = weights >= 0.5, weights <= 0.01
    assert hits[big].mean() > 5 * hits[small].mean()


def test_bad_energy_inputs(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["energy", str(H2), "--encoding", "ternary"])
    assert r.exit_code == 1 and "encoding must be one of" in r.stderr
    r = runner.invoke(app, ["energy", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "no such Hamiltonian" in r.stderr
    r = runner.invoke(app, ["energy", str(H2), "--scheme", "clever"])
    assert r.exit_code == 1 and "scheme must be one of" in r.stderr
    with pytest.raises(ShadowlabError, match="snapshots must be >= 2"):
        run_energy(*read_hamiltonian(H2)[:1], np.ones(16) / 4, 0.0, snapshots=1)


def test_energy_benchmark_quick_run() -> None:
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_energy.py"
    done = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| H2_STO3g_4qubits/jw | 4 | 15 |" in done.stdout
    assert "PennyLane" in done.stdout
