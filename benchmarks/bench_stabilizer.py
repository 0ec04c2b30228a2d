#!/usr/bin/env python
"""Learning unknown stabilizer states by Bell sampling (Montanaro 2017) at 50 to 400 qubits.

For each ``n``, ``--trials`` seeded uniformly random stabilizer states (trial ``t`` uses
``numpy.random.default_rng([seed, n, t])``) are learned from simulated copies: Bell shots (two
copies each) until the differences span the ``n``-dimensional stabilizer subspace, ``3`` copies
for the signs (majority vote) and ``10`` copies for the experimental verification. *Success* =
the learner returned a state, the verification accepted it and it is exactly the true state
(checked with stim). Copies are counted per trial; the table gives their mean and maximum, the
constant ``copies / n`` and the wall time of a trial (learning, including the stim simulation of
every copy; generating the random state is timed separately).

Acceptance target: at ``n = 200`` success in at least 95% of the trials, with at most 2,000
copies (linear in ``n``).

Usage: ``python benchmarks/bench_stabilizer.py [--ns 50,100,200,400] [--trials 40] [--seed 1]
[--noise 0] [--json PATH] [--plot PATH] [--quick]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import numpy as np
import stim

from shadowlab.twocopy.stabilizer import plot_stabilizer_learning, stabilizer_learning_study

TARGET_N = 200
TARGET_SUCCESS = 0.95
TARGET_COPIES = 2000


def markdown(result: dict[str, Any], command: str, wall: float) -> str:
    """The results table as Markdown, with the command line, the machine and the acceptance check."""
    p = result["params"]
    lines = [
        "## Stabilizer-state learning by Bell sampling",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"stim {stim.__version__}  ",
        f"Family {p['family']}, noise {p['noise']}, extra shots {p['extra_shots']}, sign copies "
        f"{p['sign_copies']}, verification copies {p['verify_copies']}; total wall time {wall:.1f} s",
        "",
        "| n | trials | success | exact | verified | false accepts | copies mean | copies max | Bell copies mean "
        "| minimal Bell copies mean | copies/n mean | copies/n max | learn s/trial (mean, max) | generate s/trial |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['n']} | {r['trials']} | {r['success_rate']:.3f} | {r['exact_rate']:.3f} | {r['verified_rate']:.3f} "
            f"| {r['false_accepts']} | {r['copies_mean']:.1f} | {r['copies_max']} | {r['bell_copies_mean']:.1f} "
            f"| {r['min_bell_copies_mean']:.1f} | {r['copies_per_n_mean']:.3f} | {r['copies_per_n_max']:.3f} "
            f"| {r['learn_s_mean']:.3f}, {r['learn_s_max']:.3f} | {r['generate_s_mean']:.3f} |")
    lines += ["", "Minimal Bell copies: twice the shots up to the one that completed the span (the learner "
              "draws its first batch of n + 1 + extra shots at once)."]
    target = [r for r in result["rows"] if r["n"] == TARGET_N]
    if target:
        r = target[0]
        ok = r["success_rate"] >= TARGET_SUCCESS and r["copies_max"] <= TARGET_COPIES
        lines += ["", f"Acceptance at n = {TARGET_N}: success {r['success_rate']:.3f} (target >= {TARGET_SUCCESS}), "
                  f"copies max {r['copies_max']} (target <= {TARGET_COPIES}), copies/n {r['copies_per_n_mean']:.3f}: "
                  f"**{'PASS' if ok else 'FAIL'}**"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", default="50,100,200,400", help="comma-separated qubit counts")
    parser.add_argument("--trials", type=int, default=40, help="seeded trials per n")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", type=float, default=0.0, help="DEPOLARIZE1 probability after preparation")
    parser.add_argument("--family", default="random", choices=["random", "ghz", "cluster"])
    parser.add_argument("--extra-shots", type=int, default=8)
    parser.add_argument("--sign-copies", type=int, default=3)
    parser.add_argument("--verify-copies", type=int, default=10)
    parser.add_argument("--json", help="write the full results (rows and per-trial records) here")
    parser.add_argument("--plot", help="write the copies-versus-n figure here (PNG)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    args = parser.parse_args(argv)
    ns = [20, 50] if args.quick else [int(v) for v in args.ns.split(",") if v.strip()]
    trials = 5 if args.quick else args.trials
    t0 = time.perf_counter()
    result = stabilizer_learning_study(
        ns, trials, args.seed, family=args.family, noise=args.noise, extra_shots=args.extra_shots,
        sign_copies=args.sign_copies, verify_copies=args.verify_copies,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    command = "python benchmarks/bench_stabilizer.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(markdown(result, command.strip(), wall))
    if args.json:
        result["machine"] = {"machine": platform.machine(), "python": platform.python_version(),
                             "numpy": np.__version__, "stim": stim.__version__}
        result["wall_s"] = wall
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot:
        plot_stabilizer_learning(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
