#!/usr/bin/env python
"""GHZ fidelity from global-Clifford shadows, against the exact value, for n up to hundreds of qubits.

For each ``n`` and dephasing ``p`` (a Z error with probability ``p`` on each qubit after
preparation), the exact fidelity of the dephased GHZ state with the GHZ target is
``(1 + (1 - 2p)^n) / 2``. Per ``n``, ``--snapshots`` uniformly random Cliffords are drawn once
(timed: "draw") and used for every ``p``; per ``(n, p)`` the outcomes are sampled with stim
("measure") and the fidelity is estimated by stabilizer algebra ("estimate"). Sampling time per
snapshot = draw + measure. The table shows the estimate with its standard error, whether the exact
value is inside the 95% normal interval and within 5 standard errors, and the bound
``sqrt(3 / N)`` on the standard error (the estimator's variance is at most 3 for any ``n``).

Usage: ``python benchmarks/bench_fidelity.py [--ns 10,50,100,200] [--ps 0,0.01,0.05]
[--snapshots 2000] [--large-ns 500] [--large-snapshots 100] [--seed 1] [--json PATH] [--quick]``;
prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from typing import Any

import numpy as np

from shadowlab.acquire.clifford_shadows import make_state, random_cliffords, sample_snapshots
from shadowlab.data.clifford_store import CliffordSnapshots
from shadowlab.estimate.fidelity import estimate_fidelity


def run_case(n: int, snapshots: int, ps: list[float], seed: int) -> list[dict[str, Any]]:
    """All rows for one ``n``: shared Cliffords, one row per dephasing ``p``."""
    t0 = time.perf_counter()
    cliffords = random_cliffords(n, snapshots, np.random.default_rng([seed, n]))
    draw = (time.perf_counter() - t0) / snapshots
    rows = []
    for p in ps:
        rng = np.random.default_rng([seed, n, round(p * 1e6)])
        t0 = time.perf_counter()
        tabs, b = sample_snapshots(make_state(f"ghz:{n}", dephasing=p), snapshots, rng, cliffords=cliffords)
        measure = (time.perf_counter() - t0) / snapshots
        t0 = time.perf_counter()
        est = estimate_fidelity(CliffordSnapshots.from_tableaux(tabs, b), f"ghz:{n}")
        estimate = (time.perf_counter() - t0) / snapshots
        exact = (1 + (1 - 2 * p) ** n) / 2
        value, se = float(est.estimate[0]), float(est.stderr[0])
        rows.append({
            "n": n, "p": p, "snapshots": snapshots, "exact": exact, "estimate": value, "stderr": se,
            "ci_low": float(est.ci_low[0]), "ci_high": float(est.ci_high[0]),
            "inside_95": bool(est.ci_low[0] <= exact <= est.ci_high[0]),
            "within_5se": bool(abs(value - exact) <= 5 * se), "se_bound": math.sqrt(3 / snapshots),
            "draw_ms": 1e3 * draw, "measure_ms": 1e3 * measure, "estimate_ms": 1e3 * estimate,
        })
        print(f"n={n} p={p}: {value:.4f} +- {se:.4f} (exact {exact:.4f})", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The results table as Markdown, with the command line and the machine."""
    lines = [
        "## GHZ fidelity from global-Clifford shadows",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}",
        "",
        "| n | p | snapshots | exact F | estimate ± s.e. | in 95% CI | within 5 s.e. | s.e. bound sqrt(3/N) "
        "| draw ms/snap | measure ms/snap | sampling ms/snap | estimate ms/snap |",
        "|---:|---:|---:|---:|---:|:---:|:---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['p']:g} | {r['snapshots']:,} | {r['exact']:.4f} "
            f"| {r['estimate']:.4f} ± {r['stderr']:.4f} "
            f"| {'yes' if r['inside_95'] else 'no'} | {'yes' if r['within_5se'] else 'no'} | {r['se_bound']:.4f} "
            f"| {r['draw_ms']:.2f} | {r['measure_ms']:.2f} | {r['draw_ms'] + r['measure_ms']:.2f} "
            f"| {r['estimate_ms']:.2f} |")
    inside = sum(r["inside_95"] for r in rows)
    lines += ["", f"{inside} of {len(rows)} exact values inside the 95% interval; "
                  f"{sum(r['within_5se'] for r in rows)} of {len(rows)} within 5 standard errors."]
    return "\n".join(lines)


def plot_rows(rows: list[dict[str, Any]], path: str) -> None:
    """Fidelity against n for each dephasing p: estimates with 95% intervals, exact curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, p in enumerate(sorted({r["p"] for r in rows})):
        mine = sorted((r for r in rows if r["p"] == p), key=lambda r: r["n"])
        ns = np.array([r["n"] for r in mine])
        grid = np.unique(np.geomspace(ns.min(), ns.max(), 200).round().astype(int))
        colour = f"C{i}"
        ax.plot(grid, (1 + (1 - 2 * p) ** grid) / 2, color=colour, lw=1, label=f"exact, p = {p:g}")
        ax.errorbar(ns, [r["estimate"] for r in mine],
                    yerr=[[r["estimate"] - r["ci_low"] for r in mine], [r["ci_high"] - r["estimate"] for r in mine]],
                    fmt="o", color=colour, capsize=3, label=f"estimate (95% interval), p = {p:g}")
    ax.set_xscale("log")
    ax.set_xlabel("qubits n (GHZ state)")
    ax.set_ylabel("fidelity with the ideal GHZ state")
    ax.set_title("Global Clifford shadows: fidelity under Z-dephasing")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", default="10,50,100,200", help="qubit counts (comma separated)")
    parser.add_argument("--ps", default="0,0.01,0.05", help="dephasing probabilities (comma separated)")
    parser.add_argument("--snapshots", type=int, default=2000)
    parser.add_argument("--large-ns", default="", help="extra qubit counts run with --large-snapshots (e.g. 500)")
    parser.add_argument("--large-snapshots", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--quick", action="store_true", help="smoke run: n 10 and 50, p 0 and 0.05, 200 snapshots")
    parser.add_argument("--plot", help="also write a PNG: estimated and exact fidelity against n, per p")
    args = parser.parse_args(argv)
    if args.quick:
        args.ns, args.ps, args.snapshots, args.large_ns = "10,50", "0,0.05", 200, ""
    ns = [int(x) for x in args.ns.split(",") if x]
    ps = [float(x) for x in args.ps.split(",") if x]
    large = [int(x) for x in args.large_ns.split(",") if x]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n in ns:
        rows += run_case(n, args.snapshots, ps, args.seed)
    for n in large:
        rows += run_case(n, args.large_snapshots, ps, args.seed)
    command = "python benchmarks/bench_fidelity.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(markdown(rows, command.strip()))
    print(f"\nTotal time {time.perf_counter() - started:.1f} s.")
    if args.plot:
        plot_rows(rows, args.plot)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
