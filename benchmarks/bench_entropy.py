#!/usr/bin/env python
"""Benchmark shadowlab's Renyi-2 entropies of many subsystems against PennyLane, on identical data.

What is measured
----------------
Case ``A`` (the target): 100,000 snapshots of 16 qubits, 100 subsystems of 8 qubits. Case
``B``: the same data, 100 subsystems of 4 qubits (small enough for PennyLane to run). The
snapshots are uniformly random bases and outcome bits from a seed (the timing does not depend
on the state); subsystems are random sets of distinct qubits from a seed. Every tool sees
identical data.

* shadowlab: ``estimate_renyi2(data, subsystems)`` (unbiased U-statistic, standard errors),
  one call for all subsystems; numba kernels are compiled or loaded from cache on tiny data
  first (not timed).
* PennyLane: ``qml.ClassicalShadow(bits, recipes).entropy(wires, alpha=2)`` per subsystem
  (the plug-in estimate of the projected mean snapshot; it builds a ``(T, 2^k, 2^k)`` complex
  array, 16 T 4^k bytes). Subsystems are run one after the other until ``--pl-cap`` seconds
  have passed; the time for all of them is then *extrapolated* linearly (labelled so). When
  that array cannot fit in ``--mem-limit-gb``, PennyLane is timed on the first
  ``--pl-subset`` snapshots instead and the time is extrapolated linearly in the snapshot
  count (its cost is linear in T), again labelled.

Each tool runs in its own child process (this script with ``--tool``) under an address-space
limit. *Peak increase* is the largest resident set after the common setup (imports and data)
minus the resident set after it (the kernel's high-water mark is reset with
``/proc/self/clear_refs``; where that is not allowed, ``ru_maxrss`` minus the baseline).

Usage: ``python benchmarks/bench_entropy.py`` (Markdown table on stdout), ``--quick`` for a
smoke run in seconds, ``--json PATH`` to also write the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np
from _measure import reset_peak_rss, status_mb


@dataclass(frozen=True)
class Case:
    """One benchmark size."""

    name: str
    n_snapshots: int
    n_qubits: int
    n_subsystems: int
    size: int


FULL = {"A": Case("A", 100_000, 16, 100, 8), "B": Case("B", 100_000, 16, 100, 4)}
QUICK = {"A": Case("A", 3_000, 10, 6, 5), "B": Case("B", 3_000, 10, 6, 3)}


def make_data(case: Case, seed: int = 2026) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """Uniformly random bases and bits, and random subsystems, from ``seed``."""
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, 3, (case.n_snapshots, case.n_qubits), dtype=np.uint8)
    bits = rng.integers(0, 2, (case.n_snapshots, case.n_qubits), dtype=np.uint8)
    subs = [tuple(sorted(int(q) for q in rng.choice(case.n_qubits, case.size, replace=False)))
            for _ in range(case.n_subsystems)]
    return bases, bits, subs


def _rss_mb() -> float:
    rss = status_mb("VmRSS")
    return float("nan") if rss is None else rss


def _hwm_mb() -> float:
    hwm = status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if hwm is None else hwm


_reset_hwm = reset_peak_rss


def child(tool: str, case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Run one tool on one case in this process; return a result row."""
    row: dict[str, Any] = {"case": case.name, "tool": tool, "subsystems": case.n_subsystems, "size": case.size,
                           "n_snapshots": case.n_snapshots}
    if tool == "shadowlab":
        from shadowlab.data.dataset import ShadowData
        from shadowlab.estimate.entropy import estimate_renyi2

        bases, bits, subs = make_data(case)
        data = ShadowData(bases, bits)
        estimate_renyi2(ShadowData(bases[:50], bits[:50]), subs[:2])  # compile / load kernels
        base = _rss_mb()
        reset = _reset_hwm()
        t0 = time.perf_counter()
        res = estimate_renyi2(data, subs, base="e")
        row["seconds"] = time.perf_counter() - t0
        row["peak_increase_mb"] = _hwm_mb() - base if reset else float("nan")
        row["done"] = case.n_subsystems
        row["seconds_all"] = row["seconds"]
        row["entropy_nats"] = [None if not ok else float(x) for x, ok in zip(res.entropy, res.defined, strict=True)]
        row["status"] = "ok"
        return row
    import pennylane as qml

    bases, bits, subs = make_data(case)
    need = 16.0 * case.n_snapshots * 4**case.size
    base = _rss_mb()
    reset = _reset_hwm()
    limit = args.mem_limit_gb * 2**30
    if need > 0.5 * limit:
        # The (T, 2^k, 2^k) array cannot fit: time a subset and extrapolate in T.
        t_sub = min(args.pl_subset, case.n_snapshots)
        shadow = qml.ClassicalShadow(bits[:t_sub].astype(np.int64), bases[:t_sub].astype(np.int64))
        t0 = time.perf_counter()
        shadow.entropy(list(subs[0]), alpha=2)
        dt = time.perf_counter() - t0
        row.update(status=f"out of memory at full size (needs {need / 2**30:.0f} GiB for the snapshot array)",
                   done=0, seconds=None, subset_snapshots=t_sub, subset_seconds=dt,
                   seconds_all=dt * case.n_snapshots / t_sub * case.n_subsystems, extrapolated=True,
                   peak_increase_mb=_hwm_mb() - base if reset else float("nan"),
                   peak_full_mb_estimate=need / 2**20)
        return row
    shadow = qml.ClassicalShadow(bits.astype(np.int64), bases.astype(np.int64))
    values = []
    t0 = time.perf_counter()
    for sub in subs:
        values.append(float(shadow.entropy(list(sub), alpha=2)))
        if time.perf_counter() - t0 > args.pl_cap:
            break
    dt = time.perf_counter() - t0
    done = len(values)
    row.update(status="ok", done=done, seconds=dt, seconds_all=dt * case.n_subsystems / done,
               extrapolated=done < case.n_subsystems, entropy_nats=values,
               peak_increase_mb=_hwm_mb() - base if reset else float("nan"))
    # PennyLane's value is the plug-in entropy of the projected mean snapshot: rebuild it from
    # shadowlab's pattern counts to show the two compute the same object.
    from shadowlab.data.dataset import ShadowData
    from shadowlab.estimate.rdm import estimate_rdm

    data = ShadowData(bases, bits)
    check = min(done, 5)
    row["max_abs_diff_vs_shadowlab_plugin"] = max(
        abs(estimate_rdm(data, subs[i]).renyi(2.0, base=math.e) - values[i]) for i in range(check))
    return row


def run_child(tool: str, case: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--tool", tool, "--case", case, "--pl-cap", str(args.pl_cap),
           "--pl-subset", str(args.pl_subset), "--mem-limit-gb", str(args.mem_limit_gb)]
    if args.quick:
        cmd.append("--quick")
    limit = int(args.mem_limit_gb * 2**30)

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        return {"case": case, "tool": tool, "status": "timeout"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        status = "out of memory" if "MemoryError" in proc.stderr else f"failed: {tail[0][:120]}"
        return {"case": case, "tool": tool, "status": status}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def report(rows: list[dict[str, Any]], cases: dict[str, Case], argv: list[str]) -> str:
    lines = ["| case | tool | status | subsystems timed | time (s) | time for all (s) | peak increase (MB) | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = cases[r["case"]]
        label = f"{r['case']}: {c.n_snapshots:,} snapshots, {c.n_subsystems} x {c.size} qubits"
        note = ""
        if r.get("extrapolated"):
            if r.get("subset_snapshots"):
                note = (f"extrapolated from 1 subsystem on {r['subset_snapshots']:,} snapshots "
                        f"({r['subset_seconds']:.2f} s); full-size array ~{r['peak_full_mb_estimate'] / 1024:,.0f} GiB")
            else:
                note = f"extrapolated from {r['done']} subsystems (cap {r.get('cap', '')}s)"
        if "max_abs_diff_vs_shadowlab_plugin" in r:
            note += f"; equals shadowlab's projected plug-in to {r['max_abs_diff_vs_shadowlab_plugin']:.1e} nats"
        if r["tool"] == "pennylane" and r.get("entropy_nats") and r["case"] in {x["case"] for x in rows}:
            ours = next((x for x in rows if x["case"] == r["case"] and x["tool"] == "shadowlab"), None)
            if ours and ours.get("entropy_nats"):
                diffs = [p - s for p, s in zip(r["entropy_nats"], ours["entropy_nats"], strict=False)
                         if s is not None]
                if diffs:
                    note += (f"; mean(PennyLane - shadowlab) = {np.mean(diffs):+.4f} nats (PennyLane's "
                                 "self-pair bias and projection)")
        note = note.removeprefix("; ")
        lines.append(f"| {label} | {r['tool']} | {r['status']} | {r.get('done', '-')} | {_fmt(r.get('seconds'))} | "
                     f"{_fmt(r.get('seconds_all'))}{' (extrapolated)' if r.get('extrapolated') else ''} | "
                     f"{_fmt(r.get('peak_increase_mb'), 0)} | {note} |")
    cmd = " ".join(shlex.quote(a) for a in ["python", "benchmarks/bench_entropy.py", *argv])
    lines += ["", f"Command: `{cmd}`", f"Machine: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="Tiny sizes, a few seconds (smoke test).")
    p.add_argument("--json", type=Path, help="Also write the rows as JSON here.")
    p.add_argument("--cases", default=None, help="Cases to run (default A,B; with --quick: A).")
    p.add_argument("--tools", default="shadowlab,pennylane", help="Tools to run.")
    p.add_argument("--pl-cap", type=float, default=60.0, help="Seconds of PennyLane runs per case before "
                                                                "extrapolating.")
    p.add_argument("--pl-subset", type=int, default=500, help="Snapshots for PennyLane when the full array "
                                                               "does not fit.")
    p.add_argument("--mem-limit-gb", type=float, default=12.0, help="Address-space limit of each child.")
    p.add_argument("--timeout", type=float, default=900.0, help="Wall-clock limit of each child (s).")
    p.add_argument("--tool", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    raw = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw)
    cases = QUICK if args.quick else FULL
    if args.tool:
        row = child(args.tool, cases[args.case], args)
        row["cap"] = args.pl_cap
        print(json.dumps(row))
        return 0
    rows = []
    for name in (args.cases or ("A" if args.quick else "A,B")).split(","):
        for tool in args.tools.split(","):
            if tool == "pennylane" and util.find_spec("pennylane") is None:
                rows.append({"case": name, "tool": tool, "status": "not installed"})
                continue
            rows.append(run_child(tool, name, args))
    text = report(rows, cases, raw)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cases": {k: vars(v) for k, v in cases.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
