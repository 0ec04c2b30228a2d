#!/usr/bin/env python
"""Benchmark hidden-Pauli identification from two-copy Bell shots (information-set decoding).

What is measured
----------------
For each number of qubits ``n`` and copy constant ``C`` the script draws ``copies = C * n``
copies of ``rho = (I + lam * P) / 2**n`` (``shots = copies / 2`` Bell shots) for a uniformly
random non-identity Pauli ``P``, directly from the shot distribution
(:func:`shadowlab.twocopy.gf2.sample_hidden_pauli_shots`), and runs
:func:`shadowlab.twocopy.gf2.identify_hidden_pauli` with a per-solve wall-clock limit. It
reports over ``--seeds`` seeds:

* *success*: solves that returned the true Pauli (a wrong Pauli is counted and flagged
  separately; the acceptance rule makes it a 1e-6 event);
* *median s* / *median iters*: over all solves, censored at the time limit (a solve that ran out
  of time counts with the limit, so the median is a lower bound when success < 50%);
* *us/iter*: total time over total iterations, the cost of one information set (for small ``n``
  solved in a handful of iterations this is dominated by the ~2 ms per-solve setup);
* *P(iter)*: predicted success probability per iteration for independent information sets,
  ``sum_{q=1..p} C(k, q) C(m-k, w-q) / C(m, w)`` at ``w = round(eta * m)``, so
  ``us/iter / P(iter)`` is the predicted expected time of one solve;
* *miss*: probability that the true Pauli exceeds the acceptance threshold.

Configurations whose shot count is below what the acceptance threshold allows are reported as
"too few shots". Numba kernels are compiled (or loaded from cache) on a tiny problem first.

Usage::

    python benchmarks/bench_identify.py --quick
    python benchmarks/bench_identify.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
from scipy.special import gammaln

from shadowlab.errors import ShadowlabError
from shadowlab.twocopy.gf2 import identify_hidden_pauli, miss_probability, noise_rate, sample_hidden_pauli_shots


def _log_comb(a: float, b: float) -> float:
    return float(gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1))


def predicted_iteration_success(n: int, m: int, lam: float, p: int) -> float:
    """Chance that a random information set holds between 1 and ``p`` of the ``round(eta m)`` errors."""
    k = 2 * n + 1
    w = round(noise_rate(lam) * m)
    total = 0.0
    for q in range(1, p + 1):
        if q <= w and w - q <= m - k:
            total += math.exp(_log_comb(k, q) + _log_comb(m - k, w - q) - _log_comb(m, w))
    return total


def run_case(n: int, copies_per_qubit: float, seeds: int, limit: float, lam: float, p: int) -> dict[str, Any]:
    """Solve ``seeds`` random instances of one (n, C) configuration."""
    shots = round(copies_per_qubit * n / 2)
    row: dict[str, Any] = {"n": n, "C": copies_per_qubit, "copies": 2 * shots, "shots": shots, "p": p}
    row["miss"] = miss_probability(n, shots, lam)
    row["p_iter"] = predicted_iteration_success(n, shots, lam, p)
    times: list[float] = []
    iters: list[int] = []
    ok = wrong = 0
    for seed in range(seeds):
        rng = np.random.default_rng([n, shots, seed])
        while True:
            x = rng.integers(0, 2, n).astype(np.uint8)
            z = rng.integers(0, 2, n).astype(np.uint8)
            if x.any() or z.any():
                break
        a, c = sample_hidden_pauli_shots(x, z, lam, shots, rng)
        try:
            res = identify_hidden_pauli(a, c, rng=rng, max_seconds=limit, p=p, lam=lam)
        except ShadowlabError:
            row["status"] = "too few shots"
            return row
        if res.found:
            if np.array_equal(res.x, x) and np.array_equal(res.z, z):
                ok += 1
            else:
                wrong += 1
        # Failed solves enter the medians at their (censored) time and iteration count.
        times.append(res.seconds)
        iters.append(res.iterations)
    row.update(
        status="ok",
        success=ok,
        wrong=wrong,
        seeds=seeds,
        median_s=float(np.median(times)),
        median_iters=float(np.median(iters)),
        us_per_iter=1e6 * sum(times) / max(1, sum(iters)),
    )
    row["predicted_s"] = row["us_per_iter"] * 1e-6 / row["p_iter"] if row["p_iter"] > 0 else math.inf
    return row


def markdown(rows: list[dict[str, Any]], limit: float) -> str:
    """Render the results as a markdown table."""
    lines = [
        f"| n | C = copies/n | copies | shots | success | median s (limit {limit:g}) | median iters | us/iter "
        "| P(iter) | predicted s | miss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['n']} | {r['C']:g} | {r['copies']} | {r['shots']} "
        if r.get("status") != "ok":
            lines.append(head + f"| {r.get('status')} | | | | {r['p_iter']:.2e} | | {r['miss']:.2g} |")
            continue
        flag = f" ({r['wrong']} WRONG)" if r["wrong"] else ""
        lines.append(
            head + f"| {r['success']}/{r['seeds']}{flag} | {r['median_s']:.3g} | {r['median_iters']:.0f} "
            f"| {r['us_per_iter']:.1f} | {r['p_iter']:.2e} | {r['predicted_s']:.3g} | {r['miss']:.2g} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the grid and print (and optionally save) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--quick", action="store_true", help="small grid, a few seconds")
    parser.add_argument("--n", type=int, nargs="+", help="qubit counts (default 10 20 30 40 60 80 100)")
    parser.add_argument("--C", type=float, nargs="+", help="copies per qubit (default 10 12 16 20)")
    parser.add_argument("--seeds", type=int, default=5, help="instances per configuration")
    parser.add_argument("--limit", type=float, default=60.0, help="wall-clock limit per solve, seconds")
    parser.add_argument("--lam", type=float, default=0.9, help="strength of P in rho")
    parser.add_argument("--p", type=int, default=2, help="Lee-Brickell parameter (1, 2 or 3)")
    parser.add_argument("--skip-after-fail", action="store_true", help="skip larger n once a C fails every seed")
    parser.add_argument("--json", type=str, default=None, help="write the rows to this JSON file")
    args = parser.parse_args()
    if args.quick:
        ns = args.n or [10, 20, 30]
        cs = args.C or [20, 24]
        seeds, limit = min(args.seeds, 3), min(args.limit, 5.0)
    else:
        ns = args.n or [10, 20, 30, 40, 60, 80, 100]
        cs = args.C or [10, 12, 16, 20]
        seeds, limit = args.seeds, args.limit

    # Compile (or load) the numba kernels outside the timed solves.
    warm = np.random.default_rng(0)
    xw = np.array([1, 0, 1, 0], np.uint8)
    aw, cw = sample_hidden_pauli_shots(xw, xw, 1.0, 64, warm)
    identify_hidden_pauli(aw, cw, rng=warm, p=args.p)

    rows: list[dict[str, Any]] = []
    dead: set[float] = set()
    t_start = time.perf_counter()
    for n in ns:
        for C in cs:
            if C in dead:
                continue
            row = run_case(n, C, seeds, limit, args.lam, args.p)
            rows.append(row)
            print(markdown([row], limit).splitlines()[-1], flush=True)
            if args.skip_after_fail and row.get("status") == "ok" and row["success"] == 0:
                dead.add(C)
    print()
    print(markdown(rows, limit))
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"lam": args.lam, "p": args.p, "limit_s": limit, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
