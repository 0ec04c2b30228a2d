#!/usr/bin/env python
"""Robust shadows under readout and gate noise: uncalibrated vs calibrated, twirled vs not.

Device (issue 7's acceptance): readout flips p(0->1) = 0.05, p(1->0) = 0.15; 1% depolarizing
after every gate: the state preparation's gates (``DEPOLARIZE1``/``DEPOLARIZE2``, part of the
prepared state) and the measurement layer's rotation gate on every qubit (part of the
measurement, which the calibration learns). States: GHZ and 1D cluster on 6, 12 and 20 qubits,
prepared by stim circuits. Observables per state: 200 Paulis of weight 2 to 4, half of them
stabilizer-group elements (non-zero exact values), half uniformly random (mostly zero).

The *target* is the exact expectation value in the noisy prepared state, computed by stim's
detector error model (:func:`shadowlab.acquire.stim_exact.exact_noisy_pauli_expectations`): what
an ideal measurement of that state would give. Per case, with ``--snapshots`` data snapshots and
``--calibration-snapshots`` snapshots of ``|0...0>`` (same measurement, locality-4 calibration):

* ``raw``: the standard estimator on twirled data (what PennyLane's ``ClassicalShadow.expval``
  returns on the same data; agreement is checked in the same run);
* ``robust``: calibrated and twirled;
* ``robust, untwirled``: calibrated, no twirling (calibration and data both untwirled).

Columns: mean ratio estimate/exact over the observables with a non-zero exact value (1 = unbiased), fraction of the
200 observables within 5 standard errors of exact, and coverage of the 95% intervals; the
acceptance asks >= 95% within 5 s.e. and coverage within binomial tolerance of 95%. Pooled
coverage over ``--coverage-seeds`` independent runs of the largest GHZ and cluster cases follows.

Usage: ``python benchmarks/bench_robust.py [--ns 6,12,20] [--snapshots 100000]
[--calibration-snapshots 100000] [--seed 7] [--coverage-seeds 10] [--figure PATH] [--json PATH]``;
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

from shadowlab.acquire.clifford_states import local_stabilizer_elements
from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import calibration_state, prepare_state, simulate
from shadowlab.acquire.stim_exact import exact_noisy_pauli_expectations
from shadowlab.estimate.calibration import calibrate
from shadowlab.estimate.pauli import estimate_paulis
from shadowlab.paulis import PauliString

NOISE = NoiseModel(depolarizing=0.01, readout_p01=0.05, readout_p10=0.15)
LOCALITY = 4


def observables(circuit: Any, n: int, rng: np.random.Generator, count: int = 200) -> list[PauliString]:
    """``count // 2`` stabilizer elements of weight 2-4, then random weight 2-4 Paulis."""
    stab = local_stabilizer_elements(circuit, n, count // 2, rng)
    seen = {p.to_sparse() for p in stab}
    rand: list[PauliString] = []
    while len(stab) + len(rand) < count:
        w = int(rng.integers(2, 5))
        qubits = tuple(sorted(rng.choice(n, size=w, replace=False).tolist()))
        p = PauliString(qubits, tuple(int(c) for c in rng.integers(0, 3, size=w)))
        if p.to_sparse() not in seen:
            seen.add(p.to_sparse())
            rand.append(p)
    return stab + rand


def summarize(est: Any, exact: np.ndarray) -> dict[str, float]:
    z = (est.estimate - exact) / est.stderr
    nonzero = exact != 0
    return {
        "ratio": float(np.mean(est.estimate[nonzero] / exact[nonzero])),
        "within_5se": float(np.mean(np.abs(z) <= 5)),
        "coverage": float(np.mean((est.ci_low <= exact) & (exact <= est.ci_high))),
        "max_abs_z": float(np.max(np.abs(z))),
    }


def run_case(kind: str, n: int, snapshots: int, cal_snapshots: int, seed: int) -> dict[str, Any]:
    state = prepare_state(f"{kind}:{n}")
    rng = np.random.default_rng([seed, n, len(kind)])
    obs = observables(state.circuit, n, rng)
    exact = exact_noisy_pauli_expectations(NOISE.state_circuit(state.circuit), obs, n_qubits=n)
    row: dict[str, Any] = {"state": f"{kind}:{n}", "n_stabilizer_elements": int(np.count_nonzero(exact)),
                           "n_observables": len(obs)}
    for twirl in (True, False):
        t0 = time.perf_counter()
        data = simulate(state, snapshots, seed=seed, noise=NOISE, readout_twirl=twirl)
        cal_data = simulate(calibration_state(n), cal_snapshots, seed=seed + 1, noise=NOISE, readout_twirl=twirl)
        sim_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cal = calibrate(cal_data, locality=LOCALITY)
        cal_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        robust = estimate_paulis(data, obs, calibration=cal)
        est_s = time.perf_counter() - t0
        key = "twirled" if twirl else "untwirled"
        row[f"robust_{key}"] = summarize(robust, exact)
        row[f"seconds_{key}"] = {"simulate": sim_s, "calibrate": cal_s, "estimate": est_s,
                                 "subsets": len(cal.subsets)}
        if twirl:
            t0 = time.perf_counter()
            raw = estimate_paulis(data, obs)
            row[f"seconds_{key}"]["raw"] = time.perf_counter() - t0
            row["raw"] = summarize(raw, exact)
            row["_arrays"] = (exact, raw, robust)
            row["_data"] = (data, obs, raw)
    return row


def pennylane_check(data: Any, obs: list[PauliString], raw: Any) -> tuple[float, float] | None:
    """Largest |PennyLane expval - shadowlab raw estimate| on identical data, and PennyLane's time."""
    try:
        import pennylane as qml
    except ImportError:
        return None
    shadow = qml.ClassicalShadow(data.outcomes.astype(np.int64), data.bases.astype(np.int64))
    letters = (qml.PauliX, qml.PauliY, qml.PauliZ)
    t0 = time.perf_counter()
    values = []
    for p in obs:
        op = letters[p.codes[0]](p.qubits[0])
        for q, c in zip(p.qubits[1:], p.codes[1:], strict=True):
            op = op @ letters[c](q)
        values.append(float(shadow.expval(op, k=1)))
    seconds = time.perf_counter() - t0
    return float(np.max(np.abs(np.array(values) - raw.estimate))), seconds


def coverage_study(kind: str, n: int, snapshots: int, cal_snapshots: int, seeds: int, first: int) -> dict[str, Any]:
    """Pooled coverage and 5-s.e. agreement of the robust twirled estimates over independent seeds."""
    state = prepare_state(f"{kind}:{n}")
    obs = observables(state.circuit, n, np.random.default_rng([first, n]))
    exact = exact_noisy_pauli_expectations(NOISE.state_circuit(state.circuit), obs, n_qubits=n)
    covered = within = total = 0
    for s in range(seeds):
        seed = 1000 * (first + s)
        data = simulate(state, snapshots, seed=seed, noise=NOISE, readout_twirl=True)
        cal = calibrate(simulate(calibration_state(n), cal_snapshots, seed=seed + 1, noise=NOISE,
                                 readout_twirl=True), locality=LOCALITY)
        est = estimate_paulis(data, obs, calibration=cal)
        covered += int(np.sum((est.ci_low <= exact) & (exact <= est.ci_high)))
        within += int(np.sum(np.abs(est.estimate - exact) <= 5 * est.stderr))
        total += len(obs)
    tol = 5 * math.sqrt(0.95 * 0.05 / total)
    return {"state": f"{kind}:{n}", "runs": seeds, "observables": total, "coverage": covered / total,
            "tolerance": tol, "within_5se": within / total}


def figure(row: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact, raw, robust = row["_arrays"]
    fig, ax = plt.subplots(figsize=(5.2, 4.6), constrained_layout=True)
    ax.errorbar(exact, raw.estimate, yerr=raw.stderr, fmt="o", ms=3, lw=0.6, color="tab:red", alpha=0.7,
                label="uncalibrated (twirled)")
    ax.errorbar(exact + 0.01, robust.estimate, yerr=robust.stderr, fmt="s", ms=3, lw=0.6, color="tab:blue",
                alpha=0.7, label="robust: calibrated + twirled")
    ax.plot([-1.05, 1.05], [-1.05, 1.05], "k--", lw=0.8, label="estimate = exact")
    ax.set_xlabel("exact value in the noisy prepared state")
    ax.set_ylabel("shadow estimate (± 1 s.e.)")
    ax.set_title(f"{row['state']}: p01=0.05, p10=0.15, 1% depolarizing")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ns", default="6,12,20")
    ap.add_argument("--snapshots", type=int, default=100_000)
    ap.add_argument("--calibration-snapshots", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--coverage-seeds", type=int, default=10)
    ap.add_argument("--figure", default=None, help="PNG of estimates vs exact for the first cluster case")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    ns = [int(x) for x in args.ns.split(",")]
    print(f"Command: `python benchmarks/bench_robust.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ")
    print(f"Machine: {platform.machine()}, {platform.python_version()}; data {args.snapshots:,} snapshots, "
          f"calibration {args.calibration_snapshots:,} snapshots of |0...0>, locality {LOCALITY}\n")
    rows = [run_case(kind, n, args.snapshots, args.calibration_snapshots, args.seed)
            for kind in ("ghz", "cluster") for n in ns]
    print("| state | stabilizer elements | raw: est/exact | raw: within 5 s.e. | robust: est/exact | "
          "robust: within 5 s.e. | robust: 95% coverage | untwirled robust: est/exact | untwirled: within 5 s.e. | "
          "calibrate + estimate (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        raw, rob, unt = r["raw"], r["robust_twirled"], r["robust_untwirled"]
        sec = r["seconds_twirled"]
        print(f"| {r['state']} | {r['n_stabilizer_elements']} | {raw['ratio']:.3f} | {raw['within_5se']:.1%} | "
              f"{rob['ratio']:.4f} | {rob['within_5se']:.1%} | {rob['coverage']:.1%} | {unt['ratio']:.3f} | "
              f"{unt['within_5se']:.1%} | {sec['calibrate']:.2f} + {sec['estimate']:.2f} |")
    first = rows[0]
    check = pennylane_check(*first["_data"])
    if check is not None:
        print(f"\nPeer on identical data ({first['state']}, 200 observables): PennyLane "
              f"`ClassicalShadow.expval(k=1)` vs shadowlab's uncalibrated estimate: max |difference| = "
              f"{check[0]:.1e}; PennyLane took {check[1]:.2f} s for them, shadowlab "
              f"{first['seconds_twirled']['raw']:.3f} s (uncalibrated) and "
              f"{first['seconds_twirled']['estimate']:.3f} s (calibrated).")
    studies = [coverage_study(kind, ns[-1], args.snapshots, args.calibration_snapshots, args.coverage_seeds,
                              args.seed) for kind in ("ghz", "cluster")]
    print(f"\nRobust, twirled, pooled over {args.coverage_seeds} independent runs (fresh data and calibration):\n")
    print("| state | estimates | 95% interval coverage | binomial 5-sigma tolerance | within 5 s.e. |")
    print("|---|---|---|---|---|")
    for st in studies:
        print(f"| {st['state']} | {st['observables']:,} | {st['coverage']:.1%} | ±{st['tolerance']:.1%} | "
              f"{st['within_5se']:.1%} |")
    if args.figure:
        figure(next(r for r in rows if r["state"].startswith("cluster")), args.figure)
        print(f"\nFigure: `{args.figure}`")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
                       "coverage": studies}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
