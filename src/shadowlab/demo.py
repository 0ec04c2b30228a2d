"""``shadowlab demo``: a complete experiment, checked against exact values.

Two simulated experiments with uniformly random local Pauli measurements:

1. a 100-qubit 1D cluster state (a stabilizer state, sampled with stim): every stabilizer
   generator ``Z X Z``, every product of two neighbouring generators ``Z Y Y Z``, and all
   two-point correlators of qubits up to three sites apart; exact values by stabilizer algebra;
2. the 12-qubit ground state of the critical transverse-field Ising chain (not a stabilizer
   state, exact state vector): all single-qubit and two-point expectation values and the energy.

Every prediction carries a standard error and a 95% interval; the demo reports how many
intervals contain the exact value (about 95% of them should), the RMS error, and a plot of
predicted against exact values and of the error against the number of snapshots.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from shadowlab.acquire.simulate import prepare_state, simulate
from shadowlab.atomic import atomic_path
from shadowlab.data.dataset import ShadowData
from shadowlab.estimate.pauli import estimate_paulis, estimate_sum
from shadowlab.estimate.results import Estimates
from shadowlab.paulis import PauliString, PauliSum

CLUSTER_QUBITS = 100
TFIM_QUBITS = 12
LEVEL = 0.95


@dataclass
class _System:
    name: str
    color: str
    observables: PauliSum
    exact: np.ndarray
    data: ShadowData
    result: Estimates | None = None
    seconds: float = 0.0


def cluster_observables(n: int) -> PauliSum:
    """Stabilizer generators, neighbouring generator products and 2-point correlators (distance <= 3)."""
    labels: list[str] = []
    for i in range(n):
        pairs = [("X", i)] + [("Z", j) for j in (i - 1, i + 1) if 0 <= j < n]
        labels.append(PauliString.from_pairs(pairs).to_sparse())
    for i in range(n - 1):
        pairs = [("Y", i), ("Y", i + 1)] + [("Z", j) for j in (i - 1, i + 2) if 0 <= j < n]
        labels.append(PauliString.from_pairs(pairs).to_sparse())
    for d in (1, 2, 3):
        for i in range(n - d):
            labels += [f"{a}{i} {b}{i + d}" for a in "XYZ" for b in "XYZ"]
    return PauliSum.from_labels(labels, n_qubits=n)


def tfim_observables(n: int) -> PauliSum:
    """All single-qubit Paulis and all two-point correlators of ``n`` qubits."""
    labels = [f"{a}{i}" for i in range(n) for a in "XYZ"]
    labels += [f"{a}{i} {b}{j}" for i in range(n) for j in range(i + 1, n) for a in "XYZ" for b in "XYZ"]
    return PauliSum.from_labels(labels, n_qubits=n)


def tfim_hamiltonian(n: int, h: float = 1.0) -> PauliSum:
    """Open transverse-field Ising chain ``-sum Z_i Z_i+1 - h sum X_i``."""
    labels = [f"Z{i} Z{i + 1}" for i in range(n - 1)] + [f"X{i}" for i in range(n)]
    return PauliSum.from_labels(labels, [-1.0] * (n - 1) + [-h] * n, n_qubits=n)


def _rms_vs_snapshots(data: ShadowData, obs: PauliSum, exact: np.ndarray, color: str
                      ) -> tuple[np.ndarray, np.ndarray, str]:
    grid = np.unique(np.geomspace(250, data.n_snapshots, 7).astype(int))
    rms = []
    for n in grid:
        r = estimate_paulis(data.subset(0, int(n)), obs, on_unmatched="omit")
        keep = np.isin(np.array(obs.labels), np.array(r.labels))
        rms.append(float(np.sqrt(np.mean((r.estimate - exact[keep]) ** 2))))
    return grid, np.array(rms), color


def run_demo(output: Path, *, n_snapshots: int = 20000, seed: int = 2026, console: Console | None = None,
             quiet: bool = False) -> dict[str, float]:
    """Run the demo, print its tables, write ``demo.png`` and ``predictions.csv`` into ``output``.

    ``output`` is replaced as a whole, atomically. Returns summary figures (for tests).
    """
    from shadowlab.acquire.clifford_states import stabilizer_expectations
    from shadowlab.acquire.statevector import exact_pauli_expectations
    from shadowlab.plots import demo_figure

    console = console or Console()
    t_start = time.perf_counter()
    say = (lambda _msg: None) if quiet else (lambda msg: console.print(msg, highlight=False))

    say(f"[bold]shadowlab demo[/]: {n_snapshots:,} random local-Pauli snapshots of each of two states")
    cluster_state = prepare_state(f"cluster:{CLUSTER_QUBITS}")
    t0 = time.perf_counter()
    cluster_obs = cluster_observables(CLUSTER_QUBITS)
    cluster = _System(f"cluster, {CLUSTER_QUBITS} qubits (stim)", "tab:blue", cluster_obs,
                      stabilizer_expectations(cluster_state.circuit, cluster_obs),
                      simulate(cluster_state, n_snapshots, seed=seed))
    say(f"  sampled the cluster state in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    tfim_state = prepare_state(f"tfim:{TFIM_QUBITS}")
    tfim_obs = tfim_observables(TFIM_QUBITS)
    tfim = _System(f"Ising chain, {TFIM_QUBITS} qubits", "tab:orange", tfim_obs,
                   exact_pauli_expectations(tfim_state.statevector, tfim_obs),
                   simulate(tfim_state, n_snapshots, seed=seed + 1))
    say(f"  sampled the Ising ground state in {time.perf_counter() - t0:.1f} s")

    for system in (cluster, tfim):
        t0 = time.perf_counter()
        system.result = estimate_paulis(system.data, system.observables, level=LEVEL)
        system.seconds = time.perf_counter() - t0

    hamiltonian = tfim_hamiltonian(TFIM_QUBITS)
    energy = estimate_sum(tfim.data, hamiltonian, level=LEVEL, label="energy")
    exact_energy = float(np.real(np.vdot(tfim_state.statevector, hamiltonian.to_matrix() @ tfim_state.statevector)))

    summary = _report(console, quiet, (cluster, tfim), energy, exact_energy)

    with atomic_path(output, force=True) as tmp:
        tmp.mkdir()
        panels = [{"label": s.name, "color": s.color, "exact": s.exact, "estimate": s.result.estimate,
                   "stderr": s.result.stderr} for s in (cluster, tfim) if s.result is not None]
        convergence = {
            "Ising: all 1- and 2-point": _rms_vs_snapshots(tfim.data, tfim.observables, tfim.exact, tfim.color),
            "cluster: stabilizers": _rms_vs_snapshots(
                cluster.data, PauliSum(CLUSTER_QUBITS, cluster.observables.terms[:CLUSTER_QUBITS],
                                       np.ones(CLUSTER_QUBITS)), cluster.exact[:CLUSTER_QUBITS], cluster.color),
        }
        demo_figure(tmp / "demo.png", panels, convergence)
        _write_predictions(tmp / "predictions.csv", (cluster, tfim), energy, exact_energy)
    summary["seconds"] = time.perf_counter() - t_start
    say(f"wrote {output / 'demo.png'} and {output / 'predictions.csv'}  "
        f"(total {summary['seconds']:.1f} s)")
    return summary


def _report(console: Console, quiet: bool, systems: tuple[_System, ...], energy: Estimates, exact_energy: float
            ) -> dict[str, float]:
    summary: dict[str, float] = {}
    table = Table(title="Predictions against exact values")
    for col in ("system", "properties", "in 95% CI", "RMS error", "median s.e.", "time"):
        table.add_column(col, justify="left" if col == "system" else "right")
    sample = Table(title="A few predictions")
    for col in ("system", "observable", "predicted ± s.e.", "exact", "|err|/s.e."):
        sample.add_column(col, justify="left" if col in ("system", "observable") else "right")
    total = 0
    for key, s in zip(("cluster", "tfim"), systems, strict=True):
        r = s.result
        assert r is not None
        inside = np.mean((r.ci_low <= s.exact) & (s.exact <= r.ci_high))
        rms = float(np.sqrt(np.mean((r.estimate - s.exact) ** 2)))
        total += len(r)
        summary[f"{key}_coverage"] = float(inside)
        summary[f"{key}_rms"] = rms
        table.add_row(s.name, f"{len(r):,}", f"{100 * inside:.1f}%", f"{rms:.4f}", f"{np.median(r.stderr):.4f}",
                      f"{1000 * s.seconds:.0f} ms")
        for i in np.linspace(0, len(r) - 1, 5).astype(int):
            z = abs(r.estimate[i] - s.exact[i]) / r.stderr[i] if r.stderr[i] > 0 else 0.0
            sample.add_row(s.name.split(",")[0], r.labels[i], f"{r.estimate[i]:+.4f} ± {r.stderr[i]:.4f}",
                           f"{s.exact[i]:+.4f}", f"{z:.2f}")
    e, se = float(energy.estimate[0]), float(energy.stderr[0])
    sample.add_row("Ising energy", "H = -Σ ZZ - Σ X", f"{e:+.4f} ± {se:.4f}", f"{exact_energy:+.4f}",
                   f"{abs(e - exact_energy) / se:.2f}")
    summary.update(n_properties=float(total + 1), energy=e, energy_stderr=se, exact_energy=exact_energy)
    if not quiet:
        console.print(sample)
        console.print(table)
        console.print(f"{total + 1:,} properties predicted from the same snapshots; about 95% of the 95% "
                      "intervals should contain the exact value.")
    return summary


def _write_predictions(path: Path, systems: tuple[_System, ...], energy: Estimates, exact_energy: float) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "observable", "estimate", "stderr", "ci_low", "ci_high", "n_matched", "exact"])
        for s in systems:
            r = s.result
            assert r is not None
            for i, label in enumerate(r.labels):
                numbers = (repr(float(v[i])) for v in (r.estimate, r.stderr, r.ci_low, r.ci_high))
                writer.writerow([s.name, label, *numbers, int(r.n_matched[i]), repr(float(s.exact[i]))])
        writer.writerow([systems[1].name, "energy",
                         *(repr(float(v[0])) for v in (energy.estimate, energy.stderr, energy.ci_low, energy.ci_high)),
                         int(energy.n_matched[0]), repr(exact_energy)])


__all__ = ["cluster_observables", "run_demo", "tfim_hamiltonian", "tfim_observables"]
