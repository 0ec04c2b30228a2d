#!/usr/bin/env python
"""Benchmark: learning T-symmetric vs scrambling dynamics with and without quantum memory.

Reproduces the dynamics experiment of Huang et al., Science 376, 1182 (2022) by state-vector
simulation (:mod:`shadowlab.twocopy.dynamics`): ``--circuits`` brickwork circuits of each class
(Haar O(4) gates = T-symmetric, Haar U(4) gates = scrambling) on ``--n`` qubits, every circuit
measured with the two-copy protocol (Bell pairs with a memory, ``U``, swap, ``U``, Bell
measurement) and with the one-copy protocol (``U|0^n>`` in the Y basis), then classified by PCA
(first principal component, unsupervised minimum-error split; the low-score cluster is called
T-symmetric). Accuracy is averaged over ``--repeats`` independent sets of circuits.

Printed (Markdown): accuracy against shots per circuit for both protocols (mean and minimum over
repeats, and the supervised train/test variant), the shots from which each protocol's mean
accuracy stays at or above ``--target`` (0.95), their ratio, and the wall time.

Usage
-----
``python benchmarks/bench_dynamics.py`` runs the n = 8 study (a few minutes on two cores);
``--quick`` runs a tiny version in seconds; ``--json PATH`` writes the results;
``--plot PATH`` draws accuracy against shots and the PC1 scores.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from shadowlab.twocopy.dynamics import DynamicsResult, dynamics_study, plot_dynamics

FULL_GRID = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
QUICK_GRID = [1, 2, 5, 10, 100, 1000]


def markdown(result: DynamicsResult) -> str:
    """The report: accuracy table, shots needed for the target, ratio."""
    lines = [
        f"## T-symmetric vs scrambling dynamics, n = {result.n_qubits}, depth {result.depth}",
        "",
        f"{result.n_circuits} circuits per class, {result.n_repeats} repeats, seed {result.seed}; "
        f"one-copy features: {result.one_copy_feature_map}; unsupervised rule: {result.rule}.",
        "",
        "| shots | two-copy acc. (mean) | two-copy (min) | one-copy acc. (mean) | one-copy (min) "
        "| two-copy supervised | one-copy supervised |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    two, one = result.accuracy["two_copy"], result.accuracy["one_copy"]
    two_s = result.mean_accuracy("two_copy", supervised=True)
    one_s = result.mean_accuracy("one_copy", supervised=True)
    for j, s in enumerate(result.shots_grid):
        lines.append(f"| {s} | {two[:, j].mean():.3f} | {two[:, j].min():.3f} | {one[:, j].mean():.3f} "
                     f"| {one[:, j].min():.3f} | {two_s[j]:.3f} | {one_s[j]:.3f} |")
    t = result.target_accuracy

    def fmt(v: int | None) -> str:
        return f"> {result.shots_grid[-1]} (not reached)" if v is None else str(v)

    lines += [
        "",
        f"Shots per circuit from which the mean accuracy stays >= {t:g} (unsupervised): "
        f"two-copy {fmt(result.shots_needed['two_copy'])}, one-copy {fmt(result.shots_needed['one_copy'])}.",
    ]
    ratio = result.shot_ratio
    lines.append("One-copy / two-copy shots ratio: " + ("n/a" if ratio is None else f"{ratio:g}") + ".")
    lines.append(
        f"Supervised (test half): two-copy {fmt(result.shots_needed_supervised['two_copy'])}, "
        f"one-copy {fmt(result.shots_needed_supervised['one_copy'])}."
    )
    lines.append(f"Wall time of the study: {result.wall_time_s:.1f} s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the study, print the report; 0 on success."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run (n = 4, few circuits) for smoke tests")
    ap.add_argument("--n", type=int, default=None, help="qubits (default 8; 4 with --quick)")
    ap.add_argument("--depth", type=int, default=None, help="brickwork depth (default n)")
    ap.add_argument("--circuits", type=int, default=None, help="circuits per class (default 50; 8 with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="independent repeats (default 5; 1 with --quick)")
    ap.add_argument("--seed", type=int, default=2022)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--max-shots", type=int, default=None, help="drop grid values above this")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--plot", type=Path, default=None, help="write the figure here (e.g. dynamics.png)")
    args = ap.parse_args(argv)

    n = args.n if args.n is not None else (4 if args.quick else 8)
    circuits = args.circuits if args.circuits is not None else (8 if args.quick else 50)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    grid = QUICK_GRID if args.quick else FULL_GRID
    if args.max_shots is not None:
        grid = [g for g in grid if g <= args.max_shots]

    t0 = time.perf_counter()
    result = dynamics_study(n, grid, n_circuits=circuits, depth=args.depth, seed=args.seed, n_repeats=repeats,
                            target_accuracy=args.target)
    wall = time.perf_counter() - t0
    print(markdown(result))
    print(f"\nTotal wall time: {wall:.1f} s ({platform.python_implementation()} {platform.python_version()}, "
          f"numpy {np.__version__}, {platform.machine()}).")
    if args.json is not None:
        payload = result.to_dict()
        payload["total_wall_time_s"] = wall
        payload["argv"] = sys.argv[1:] if argv is None else list(argv)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.plot is not None:
        plot_dynamics(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
