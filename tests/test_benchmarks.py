"""Smoke test of the benchmark script: ``benchmarks/bench_pauli.py --quick`` runs end to end.

Peers that are not installed are reported as such by the script and skipped here; every peer
that is installed must run at the quick sizes and agree with shadowlab to 1e-12 (they compute
the same mean estimator on identical data, so only summation-order rounding may differ).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pauli.py"
TOLERANCE = 1e-12


def test_quick_benchmark_runs_and_peers_agree(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The Markdown report went to stdout.
    assert "| case | tool | status |" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    ours = [r for r in rows if r["tool"] == "shadowlab"]
    assert ours and all(r["status"] == "ok" for r in ours), ours
    peers = [r for r in rows if r["tool"] != "shadowlab"]
    # Installed peers fit the quick sizes; the others are skipped, not failed.
    for r in peers:
        assert r["status"] in ("ok", "not installed"), r
    compared = [r for r in peers if r["status"] == "ok"]
    for r in compared:
        assert r["max_abs_diff"] <= TOLERANCE, r
