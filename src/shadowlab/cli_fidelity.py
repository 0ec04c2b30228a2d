"""Commands for global-Clifford shadows: ``simulate-clifford``, ``calibrate-clifford`` and ``fidelity``.

Registered on :data:`shadowlab.cli.app` when this module is imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shadowlab.cli import (
    DEFAULT_MEMORY,
    ChunkOpt,
    ForceOpt,
    MemoryOpt,
    NoiseOpt,
    QuietOpt,
    SchedulerOpt,
    WorkersOpt,
    _progress,
    _user_errors,
    app,
    err,
    make_execution,
    out,
)
from shadowlab.errors import ShadowlabError

FIDELITY_FORMATS = ("table", "json")
#: Points of the running estimate drawn by ``fidelity --plot`` (log-spaced snapshot counts).
RUNNING_POINTS = 256
CliffordCalibrationOpt = Annotated[Path | None, typer.Option(
    "--calibration", help="Robust shadows: a calibration file from 'shadowlab calibrate-clifford' (snapshots of "
                          "|0...0> on the same device and qubits); corrects measurement and readout noise, and the "
                          "error bar includes the calibration's.")]


@app.command("simulate-clifford")
@_user_errors
def simulate_clifford(
    state: Annotated[str, typer.Argument(help="Stabilizer state: ghz:N, cluster:N, cluster2d:RxC, toric:L, a "
                                              ".stim circuit (unitary Clifford gates), or zero:N (|0...0>, the "
                                              "calibration state for 'shadowlab calibrate-clifford').")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Store to create (a .zarr directory).")],
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Number of snapshots.")] = 1000,
    dephasing: Annotated[float, typer.Option(help="Probability of a Z error on each qubit after preparation, "
                                                  "drawn per snapshot.")] = 0.0,
    noise: NoiseOpt = None,
    seed: Annotated[int, typer.Option(help="Seed; the same arguments give identical data.")] = 0,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure a stabilizer state in uniformly random n-qubit Clifford bases and store the snapshots.

    With --noise, gate depolarizing acts after each gate of the state preparation and as a flip
    2p/3 of each measured bit (the measurement layer), then the readout flips p01/p10 act."""
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
    from shadowlab.acquire.noise import parse_noise_spec

    model = None if noise is None else parse_noise_spec(noise)
    prepared = make_state(state, dephasing=dephasing, noise=model)
    meta = provenance(prepared, n_snapshots=snapshots, seed=seed, batch_snapshots=DEFAULT_BATCH_SNAPSHOTS)
    with atomic_path(output, force=force) as tmp:
        store = CliffordStore.create(tmp, prepared.n_qubits, provenance=meta)
        with _progress(snapshots, f"sampling {prepared.description}", quiet=quiet) as advance:
            for tableaux, outcomes in iter_clifford_snapshots(prepared, snapshots, seed=seed):
                store.append(CliffordSnapshots.from_tableaux(tableaux, outcomes, meta), provenance=meta)
                advance(len(tableaux))
    if not quiet:
        err.print(f"wrote {snapshots:,} global-Clifford snapshots of {prepared.n_qubits} qubits to {output}")


@app.command("calibrate-clifford")
@_user_errors
def calibrate_clifford_command(
    store: Annotated[str, typer.Argument(help="Global-Clifford snapshots of |0...0> from the same device (e.g. "
                                              "'shadowlab simulate-clifford zero:N --noise ...').")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Calibration file to write (JSON).")],
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Robust shadows: learn the noisy global-Clifford shadow factor f from snapshots of |0...0>."""
    from shadowlab.atomic import check_can_write
    from shadowlab.data.clifford_store import CliffordStore
    from shadowlab.estimate.fidelity import calibrate_clifford
    from shadowlab.execution import connect

    check_can_write(output, force=force)
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    source = CliffordStore.open(store)
    with connect(execution), _progress(source.n_snapshots, "calibrating", quiet=quiet) as advance:
        cal = calibrate_clifford(source, progress=advance, execution=execution)
    cal.write(output, force=force)
    if not quiet:
        err.print(f"wrote {output}: f = {cal.f_hat:.6g} +- {cal.stderr:.2g} from {cal.n_snapshots:,} snapshots of "
                  f"{cal.n_qubits} qubits; f / f_ideal = {cal.relative:.4f} +- {cal.stderr / cal.f_ideal:.4f} "
                  f"(1 = noiseless, f_ideal = 1/(2^{cal.n_qubits}+1))")


@app.command()
@_user_errors
def fidelity(
    store: Annotated[str, typer.Argument(help="Global-Clifford store from 'shadowlab simulate-clifford'.")],
    target: Annotated[str, typer.Option(help="Pure target: ghz:N, cluster:N, cluster2d:RxC, toric:L, a .stim "
                                             "circuit, or a .npy state vector (at most 16 qubits).")],
    level: Annotated[float, typer.Option(help="Confidence level of the normal interval.")] = 0.95,
    estimator: Annotated[str, typer.Option(help="mean, or mom (median of means).")] = "mean",
    blocks: Annotated[int, typer.Option(help="Median-of-means blocks.")] = 10,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG of the running estimate against the number "
                                                   "of snapshots.")] = None,
    calibration: CliffordCalibrationOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Estimate the fidelity <psi|rho|psi> of the measured state with a pure target.

    The snapshots are streamed chunk by chunk (on Dask with --scheduler/--workers), keeping a few
    moments per chunk, so memory does not grow with the store; the result is the same either way.
    """
    import numpy as np

    from shadowlab.data.clifford_store import CliffordStore
    from shadowlab.estimate.fidelity import (
        fidelity_moments,
        make_target,
        mom_bounds,
        read_clifford_calibration,
        summarize_moments,
    )
    from shadowlab.execution import connect

    if fmt not in FIDELITY_FORMATS:
        raise ShadowlabError(f"--format must be one of {', '.join(FIDELITY_FORMATS)}, got {fmt!r}")
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
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
    cal = None
    if calibration is not None:
        cal = read_clifford_calibration(calibration)
        if cal.n_qubits != source.n_qubits:
            raise ShadowlabError(f"--calibration {calibration}: the calibration is for {cal.n_qubits} qubits but the "
                                 f"store {store} holds {source.n_qubits}-qubit snapshots; calibrate with "
                                 f"'shadowlab simulate-clifford zero:{source.n_qubits}' data of the same device")
    n = source.n_snapshots
    cuts = [*(mom_bounds(n, blocks) if estimator == "mom" else ()),
            *(np.geomspace(1, max(n, 1), RUNNING_POINTS).astype(np.int64) if plot is not None else ())]
    with connect(execution), _progress(n, "estimating", quiet=quiet) as advance:
        moments = fidelity_moments(source, tgt, calibration=cal, cuts=cuts, execution=execution, progress=advance)
    result = summarize_moments(moments, level=level, estimator=estimator, n_blocks=blocks, calibration=cal)
    row = result.rows()[0]
    if plot is not None:
        name = store.rstrip("/").rsplit("/", 1)[-1]  # a local path or a URL
        title = f"{name} vs {target}" + (" (calibrated)" if cal is not None else "")
        _plot_running(moments, plot, level=level, title=title, force=force)
    if fmt == "json":
        payload = {"store": str(store), "target": target, "n_qubits": source.n_qubits, "method": result.describe(),
                   **{k: row[k] for k in ("estimate", "stderr", "ci_low", "ci_high", "n_snapshots")}}
        if cal is not None:
            payload["calibration"] = {"path": str(calibration), "f_hat": cal.f_hat, "stderr": cal.stderr,
                                      "n_snapshots": cal.n_snapshots, "f_ideal": cal.f_ideal}
        sys.stdout.write(json.dumps(payload, indent=1) + "\n")
        return
    pct = f"{100 * level:g}%"
    table = Table(title=f"fidelity with {target}: {source.n_qubits} qubits, {result.n_snapshots:,} snapshots, "
                        f"{result.estimator} estimator" + (f", K={result.n_blocks}" if result.n_blocks > 1 else "")
                        + (", calibrated (robust shadows)" if cal is not None else ""))
    for col in ("estimate", "stderr", f"{pct} interval"):
        table.add_column(col, justify="right")
    table.add_row(f"{row['estimate']:+.5f}", f"{row['stderr']:.5f}", f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]")
    out.print(table)
    if plot is not None and not quiet:
        err.print(f"wrote {plot}")


def _plot_running(moments: Any, path: Path, *, level: float, title: str, force: bool) -> None:
    """Running mean of the single-snapshot values with its normal band, against the number of snapshots,
    at the end of each segment of ``moments`` (:class:`~shadowlab.estimate.fidelity.ValueMoments`)."""
    from statistics import NormalDist

    import numpy as np

    from shadowlab.atomic import atomic_path
    from shadowlab.plots import plt

    k, mean, var = moments.running()
    half = NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(var / k)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    shown = k >= min(10, int(k[-1]) - 1)
    ax.plot(k[shown], mean[shown], lw=1.2, label="running estimate")
    ax.fill_between(k[shown], (mean - half)[shown], (mean + half)[shown], alpha=0.25,
                    label=f"{100 * level:g}% normal interval")
    ax.set_xscale("log")
    ax.set_xlabel("number of snapshots N")
    ax.set_ylabel("fidelity estimate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    with atomic_path(path, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
