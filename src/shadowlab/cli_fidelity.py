"""Commands for global-Clifford shadows: ``simulate-clifford`` and ``fidelity``.

Registered on :data:`shadowlab.cli.app` when this module is imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shadowlab.cli import ForceOpt, QuietOpt, _progress, _user_errors, app, err, out
from shadowlab.errors import ShadowlabError

FIDELITY_FORMATS = ("table", "json")


@app.command("simulate-clifford")
@_user_errors
def simulate_clifford(
    state: Annotated[str, typer.Argument(help="Stabilizer state: ghz:N, cluster:N, cluster2d:RxC, toric:L, or a "
                                              ".stim circuit (unitary Clifford gates).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Store to create (a .zarr directory).")],
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Number of snapshots.")] = 1000,
    dephasing: Annotated[float, typer.Option(help="Probability of a Z error on each qubit after preparation, "
                                                  "drawn per snapshot.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed; the same arguments give identical data.")] = 0,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure a stabilizer state in uniformly random n-qubit Clifford bases and store the snapshots."""
    from shadowlab.acquire.clifford_shadows import (
        DEFAULT_BATCH_SNAPSHOTS,
        iter_clifford_snapshots,
        make_state,
        provenance,
    )
    from shadowlab.atomic import atomic_path, check_can_write
    from shadowlab.data.clifford_store import CliffordSnapshots, CliffordStore

    check_can_write(output, force=force)
    if snapshots < 1:
        raise ShadowlabError(f"--snapshots must be >= 1, got {snapshots}")
    prepared = make_state(state, dephasing=dephasing)
    meta = provenance(prepared, n_snapshots=snapshots, seed=seed, batch_snapshots=DEFAULT_BATCH_SNAPSHOTS)
    with atomic_path(output, force=force) as tmp:
        store = CliffordStore.create(tmp, prepared.n_qubits, provenance=meta)
        with _progress(snapshots, f"sampling {prepared.description}", quiet=quiet) as advance:
            for tableaux, outcomes in iter_clifford_snapshots(prepared, snapshots, seed=seed):
                store.append(CliffordSnapshots.from_tableaux(tableaux, outcomes, meta), provenance=meta)
                advance(len(tableaux))
    if not quiet:
        err.print(f"wrote {snapshots:,} global-Clifford snapshots of {prepared.n_qubits} qubits to {output}")


@app.command()
@_user_errors
def fidelity(
    store: Annotated[Path, typer.Argument(help="Global-Clifford store from 'shadowlab simulate-clifford'.")],
    target: Annotated[str, typer.Option(help="Pure target: ghz:N, cluster:N, cluster2d:RxC, toric:L, a .stim "
                                             "circuit, or a .npy state vector (at most 16 qubits).")],
    level: Annotated[float, typer.Option(help="Confidence level of the normal interval.")] = 0.95,
    estimator: Annotated[str, typer.Option(help="mean, or mom (median of means).")] = "mean",
    blocks: Annotated[int, typer.Option(help="Median-of-means blocks.")] = 10,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG of the running estimate against the number "
                                                   "of snapshots.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Estimate the fidelity <psi|rho|psi> of the measured state with a pure target."""
    from shadowlab.data.clifford_store import CliffordStore
    from shadowlab.estimate.fidelity import fidelity_values, make_target, summarize

    if fmt not in FIDELITY_FORMATS:
        raise ShadowlabError(f"--format must be one of {', '.join(FIDELITY_FORMATS)}, got {fmt!r}")
    if plot is not None:
        from shadowlab.atomic import check_can_write

        check_can_write(plot, force=force)
        if plot.suffix.lower() != ".png":
            raise ShadowlabError(f"--plot {plot}: expected a .png file name")
    source = CliffordStore.open(store)
    tgt = make_target(target)
    if tgt.n_qubits != source.n_qubits:
        raise ShadowlabError(f"--target {target}: the target has {tgt.n_qubits} qubits but the store {store} "
                             f"holds {source.n_qubits}-qubit snapshots")
    with _progress(source.n_snapshots, "estimating", quiet=quiet) as advance:
        values = fidelity_values(source, tgt, progress=advance)
    result = summarize(values, level=level, estimator=estimator, n_blocks=blocks)
    row = result.rows()[0]
    if plot is not None:
        _plot_running(values, plot, level=level, title=f"{store.name} vs {target}", force=force)
    if fmt == "json":
        payload = {"store": str(store), "target": target, "n_qubits": source.n_qubits, "method": result.describe(),
                   **{k: row[k] for k in ("estimate", "stderr", "ci_low", "ci_high", "n_snapshots")}}
        sys.stdout.write(json.dumps(payload, indent=1) + "\n")
        return
    pct = f"{100 * level:g}%"
    table = Table(title=f"fidelity with {target}: {source.n_qubits} qubits, {result.n_snapshots:,} snapshots, "
                        f"{result.estimator} estimator" + (f", K={result.n_blocks}" if result.n_blocks > 1 else ""))
    for col in ("estimate", "stderr", f"{pct} interval"):
        table.add_column(col, justify="right")
    table.add_row(f"{row['estimate']:+.5f}", f"{row['stderr']:.5f}", f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]")
    out.print(table)
    if plot is not None and not quiet:
        err.print(f"wrote {plot}")


def _plot_running(values: object, path: Path, *, level: float, title: str, force: bool) -> None:
    """Running mean of the single-snapshot values with its normal band, against the number of snapshots."""
    from statistics import NormalDist

    import numpy as np

    from shadowlab.atomic import atomic_path
    from shadowlab.plots import plt

    v = np.asarray(values, dtype=np.float64)
    k = np.arange(1, v.size + 1)
    mean = np.cumsum(v) / k
    var = np.maximum(np.cumsum(v * v) / k - mean * mean, 0.0) * k / np.maximum(k - 1, 1)
    half = NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(var / k)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    start = min(10, v.size - 1)
    ax.plot(k[start:], mean[start:], lw=1.2, label="running estimate")
    ax.fill_between(k[start:], (mean - half)[start:], (mean + half)[start:], alpha=0.25,
                    label=f"{100 * level:g}% normal interval")
    ax.set_xscale("log")
    ax.set_xlabel("number of snapshots N")
    ax.set_ylabel("fidelity estimate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    with atomic_path(path, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
