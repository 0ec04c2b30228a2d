#!/usr/bin/env python
"""Two copies against one: the hidden-Pauli and purity reproductions, and the Bell kernel's speed.

1. Hidden Pauli (Huang et al., Science 2022): for each ``n``, ``--trials`` seeded trials of
   ``rho = (I + 0.9 s P) / 2^n`` with a random ``P`` (weight uniform in 1..n) and 1,000 queries
   (``P`` among them, the others random of all weights). A trial succeeds at a copy count if
   every query is decided right. "Copies needed": the smallest count in the grid from which on
   at least 95% of trials succeed. Two-copy copies = 2 x Bell shots; one-copy = snapshots.
2. Purity of a GHZ state with qubit 0 depolarized (purity 0.5833 for every n): copies for an
   RMSE of 0.05 over seeded trials, two-copy SWAP test against the one-copy U-statistic.
3. Identifying P itself (noisy linear algebra over GF(2), :mod:`shadowlab.twocopy.gf2`): for
   each ``n``, the shots at which the true ``P`` passes the acceptance threshold with probability
   0.99 (``shots_needed(n, 0.9, miss=0.01)``; the threshold lets a wrong Pauli through with
   probability <= 1e-6), stim-simulated Bell data of random hidden-Pauli states, and the
   information-set decoder with a time limit per solve. Copies per qubit = the constant.
4. Kernel speed: ``tr(P rho)^2`` of 10,000 random Paulis (weights 1..n) on 100,000 Bell shots of
   100 qubit pairs, shadowlab's bit-packed kernel against a numpy baseline (the same parities by
   integer matrix products, ``(a @ x + c @ z) mod 2``), both on identical data; results must agree
   exactly.

Usage: ``python benchmarks/bench_twocopy.py [--quick] [--sections hidden,purity,identify,kernel]
[--json PATH] [--plot-dir DIR] [--hidden-json PATH]``; prints
Markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.estimate import pauli_odd_counts
from shadowlab.twocopy.gf2 import identify_hidden_pauli, shots_needed
from shadowlab.twocopy.hidden_pauli import HiddenPauliStudy, hidden_pauli_study, random_pauli
from shadowlab.twocopy.purity_study import purity_study
from shadowlab.twocopy.simulate import hidden_pauli_circuit, sample_bell_stim

SECTIONS = ("hidden", "purity", "identify", "kernel")


def identify_case(n: int, seeds: int, limit: float) -> dict[str, Any]:
    """Identify random hidden Paulis from stim-simulated Bell shots at the 99% shot count."""
    shots = shots_needed(n, 0.9, miss=0.01)
    found = correct = 0
    seconds = []
    for seed in range(seeds):
        rng = np.random.default_rng([n, seed, 5])
        hidden = random_pauli(n, rng)
        data = sample_bell_stim(hidden_pauli_circuit(hidden, n, sign=int(rng.choice([-1, 1]))), shots, rng)
        r = identify_hidden_pauli(data.a, data.c, rng=rng, max_seconds=limit)
        found += r.found
        correct += r.found and r.label == hidden.to_sparse()
        seconds.append(r.seconds)
    return {"n": n, "shots": shots, "copies": 2 * shots, "copies_per_qubit": 2 * shots / n, "seeds": seeds,
            "found": found, "correct": correct, "median_s": float(np.median(seconds)), "max_s": float(max(seconds)),
            "limit_s": limit}


def kernel_case(shots: int, n: int, m: int, seed: int) -> dict[str, Any]:
    """Time shadowlab's kernel and a numpy baseline on identical random Bell data."""
    rng = np.random.default_rng(seed)
    data = BellData(rng.integers(0, 2, (shots, n), dtype=np.uint8), rng.integers(0, 2, (shots, n), dtype=np.uint8))
    paulis = [random_pauli(n, rng) for _ in range(m)]
    pauli_odd_counts(data.head(64), paulis[:2])  # compile / load the kernels before timing
    t0 = time.perf_counter()
    odd, _, _, _ = pauli_odd_counts(data, paulis)
    ours = time.perf_counter() - t0
    x = np.zeros((n, m), np.float32)
    z = np.zeros((n, m), np.float32)
    for j, p in enumerate(paulis):
        for q, code in zip(p.qubits, p.codes, strict=True):
            x[q, j] = code in (0, 1)
            z[q, j] = code in (1, 2)
    t0 = time.perf_counter()
    ref = np.zeros(m, np.int64)
    for lo in range(0, shots, 8192):  # float32 BLAS in slices: exact (sums <= 2n), bounded memory
        par = (data.a[lo:lo + 8192].astype(np.float32) @ x + data.c[lo:lo + 8192].astype(np.float32) @ z)
        ref += (par.astype(np.int64) % 2).sum(axis=0)
    base = time.perf_counter() - t0
    return {"shots": shots, "n": n, "paulis": m, "shadowlab_s": ours, "numpy_s": base, "speedup": base / ours,
            "identical": bool(np.array_equal(odd, ref)),
            "evaluations_per_s": shots * m / ours}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a few trials (a smoke test)")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--plot-dir", type=Path, help="write hidden_pauli.png and purity.png here")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--hidden-json", type=Path, help="with the hidden section skipped: redraw its figure from the "
                                                     "'hidden_pauli' record of an earlier --json file")
    args = ap.parse_args(argv)
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; expected some of {SECTIONS}")
    t_start = time.perf_counter()

    def note(msg: str) -> None:
        print(f"# done {msg} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)

    if args.quick:
        hp_n, hp_trials, one_max = [6, 10, 50], 5, 6
        pu_n, pu_trials, pu_one_max = [2, 4, 20], 10, 4
        id_n, id_seeds, id_stat_n = [10, 20], 2, [100]
        kernel_size = (10000, 100, 1000)
    else:
        hp_n, hp_trials, one_max = [6, 7, 8, 9, 10, 20, 50, 100, 200], 40, 9
        pu_n, pu_trials, pu_one_max = [2, 3, 4, 5, 6, 7, 8, 20, 50, 100], 100, 8
        id_n, id_seeds, id_stat_n = [10, 20, 30, 40, 50, 60], 10, [80, 100, 200]
        kernel_size = (100000, 100, 10000)
    grid = (40, 80, 120, 160, 200, 240, 280, 320, 400)
    results: dict[str, Any] = {}
    hp = None
    if "hidden" in sections:
        hp = hidden_pauli_study(hp_n, two_copy_grid=grid, one_copy_max_n=one_max, trials=hp_trials, progress=note)
        results["hidden_pauli"] = hp.to_dict()
    elif args.hidden_json is not None:
        hp = HiddenPauliStudy.from_dict(json.loads(args.hidden_json.read_text())["hidden_pauli"])
    if "purity" in sections:
        pu = purity_study(pu_n, trials=pu_trials, one_copy_max_n=pu_one_max,
                          two_copy_grid=(64, 128, 192, 256, 320, 384, 448, 512, 640, 768, 1024, 2048), progress=note)
        results["purity"] = pu.to_dict()
    if "identify" in sections:
        results["identify"] = [identify_case(n, id_seeds, 60.0) for n in id_n]
        results["identify_statistical"] = [{"n": n, "copies": 2 * shots_needed(n, 0.9, miss=0.01)} for n in id_stat_n]
        note("identify")
    if "kernel" in sections:
        results["kernel"] = kernel_case(*kernel_size, 1)
    print(f"# Two copies vs one (shadowlab, Python {platform.python_version()}, {platform.machine()}, "
          f"{time.perf_counter() - t_start:.0f} s)\n")
    if "hidden" in sections and hp is not None:
        print(f"## Hidden Pauli: copies for all 1,000 queries right in >= 95% of {hp_trials} trials\n")
        print("| n | two-copy copies | two-copy s | one-copy copies | one-copy s |")
        print("|---:|---:|---:|---:|---:|")
        for n in hp_n:
            two, one = hp.copies_needed("two_copy", n), hp.copies_needed("one_copy", n)
            one_text = "not run" if n > one_max else (f"{one:,}" if one else "> grid")
            one_s = f"{hp.seconds['one_copy'][n]:.1f}" if n in hp.seconds["one_copy"] else "-"
            print(f"| {n} | {two if two else '> grid'} | {hp.seconds['two_copy'][n]:.1f} | {one_text} | {one_s} |")
        print("\nTwo-copy success rate per copy count:\n")
        print("| n | " + " | ".join(str(c) for c in grid) + " |")
        print("|---:|" + "---:|" * len(grid))
        for n in hp_n:
            print(f"| {n} | " + " | ".join(f"{r:.3f}" for _, r in hp.rates["two_copy"][n]) + " |")
    if "purity" in sections:
        print(f"\n## Purity {pu.purity:.4f}: copies for RMSE <= {pu.target_rmse} ({pu_trials} trials)\n")
        print("| n | two-copy copies | one-copy copies |")
        print("|---:|---:|---:|")
        for n in pu_n:
            two, one = pu.copies_needed("two_copy", n), pu.copies_needed("one_copy", n)
            one_text = "not run" if n > pu_one_max else (f"{one:,}" if one else "> grid")
            print(f"| {n} | {two if two else '> grid'} | {one_text} |")
    if "identify" in sections:
        print("\n## Identifying P: copies for a 99% chance, and solves within 60 s\n")
        print("| n | copies | copies / n | found | correct | median s | max s |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in results["identify"]:
            print(f"| {r['n']} | {r['copies']:,} | {r['copies_per_qubit']:.2f} | {r['found']}/{r['seeds']} | "
                  f"{r['correct']}/{r['seeds']} | {r['median_s']:.2f} | {r['max_s']:.2f} |")
        for r in results["identify_statistical"]:
            print(f"| {r['n']} | {r['copies']:,} | {r['copies'] / r['n']:.2f} | (not run) | | | |")
    if "kernel" in sections:
        print("\n## Bell kernel: tr(P rho)^2 of many Paulis\n")
        print("| shots | pairs | Paulis | shadowlab s | numpy baseline s | speed-up | identical | evaluations/s |")
        print("|---:|---:|---:|---:|---:|---:|---|---:|")
        k = results["kernel"]
        print(f"| {k['shots']:,} | {k['n']} | {k['paulis']:,} | {k['shadowlab_s']:.3f} | {k['numpy_s']:.2f} | "
              f"{k['speedup']:.0f}x | {k['identical']} | {k['evaluations_per_s']:.2e} |")
    if args.plot_dir is not None:
        from shadowlab.plots import hidden_pauli_figure, purity_scan_figure

        args.plot_dir.mkdir(parents=True, exist_ok=True)
        if hp is not None:
            ident = {r["n"]: r["copies"] for r in results.get("identify", []) if r["correct"] == r["seeds"]}
            hidden_pauli_figure(hp, args.plot_dir / "hidden_pauli.png", identify=ident or None, force=True)
        if "purity" in sections:
            purity_scan_figure(pu, args.plot_dir / "purity.png", force=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    ok = all(r["correct"] == r["found"] for r in results.get("identify", []))  # never a wrong Pauli
    return 0 if ok and results.get("kernel", {"identical": True})["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
