"""``shadowlab entropy`` and ``shadowlab rdm``: subsystem entropies and reduced states from shadows.

Registered on :data:`shadowlab.cli.app` when imported (``shadowlab.cli`` imports this module).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shadowlab.cli import (
    DEFAULT_MEMORY,
    CalibrationOpt,
    ChunkOpt,
    ForceOpt,
    MemoryOpt,
    QuietOpt,
    SchedulerOpt,
    WorkersOpt,
    _progress,
    _user_errors,
    app,
    err,
    load_calibration,
    make_execution,
    open_source,
    out,
)
from shadowlab.errors import ShadowlabError


def _announce_calibration(cal: Any, path: Path | None) -> None:
    """One stderr line saying the estimates are calibrated, and with what."""
    if cal is not None:
        err.print(f"calibrated (robust shadows) with {path}: locality {cal.locality}, {cal.n_snapshots:,} calibration "
                  "snapshots; standard errors include the calibration's", highlight=False, soft_wrap=True)


def _check_output(fmt: str, output: Path | None, force: bool, formats: tuple[str, ...]) -> None:
    if fmt not in formats:
        raise ShadowlabError(f"--format must be one of {', '.join(formats)}, got {fmt!r}")
    if output is not None and fmt == "table":
        raise ShadowlabError("--output needs --format csv or json")
    if output is not None and output.exists() and not force:
        raise ShadowlabError(f"{output} already exists; pass --force to overwrite it")


@app.command()
@_user_errors
def entropy(
    data: Annotated[str, typer.Argument(help="Shadow store or importable snapshot file.")],
    subsystems: Annotated[str | None, typer.Option(help="Subsystems as qubit lists, e.g. '0,1,2;3,4'.")] = None,
    max_size: Annotated[int | None, typer.Option("--max-size", help="All contiguous subsystems of 1 to K "
                                                                    "qubits.")] = None,
    base: Annotated[str, typer.Option(help="Logarithm base: 2 (bits) or e (nats).")] = "2",
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    limit: Annotated[int, typer.Option("--size-limit", help="Largest subsystem accepted (its table has 6^size "
                                                            "entries).")] = 10,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write results here instead of stdout.")
                      ] = None,
    plot: Annotated[Path | None, typer.Option(help="Also save a PNG of entropy against subsystem size.")] = None,
    calibration: CalibrationOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Renyi-2 entropies of subsystems (unbiased purity U-statistic), with standard errors and intervals.

    With --calibration the purities are robust (each Pauli's term divided by its support's calibrated
    attenuation squared); the calibration must cover every subset of each subsystem (locality >= its size).
    With --scheduler/--workers the pattern counting runs on Dask (data with repeated settings stream in
    this process: their setting runs cross chunk boundaries); the results are the same.
    """
    from shadowlab.estimate.entropy import (
        OUTPUT_FORMATS,
        check_subsystems,
        contiguous_subsystems,
        counting_passes,
        estimate_renyi2,
        parse_subsystems,
    )
    from shadowlab.execution import connect

    _check_output(fmt, output, force, OUTPUT_FORMATS)
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    if plot is not None and plot.exists() and not force:
        raise ShadowlabError(f"{plot} already exists; pass --force to overwrite it")
    if (subsystems is None) == (max_size is None):
        raise ShadowlabError("give --subsystems '0,1;2,3' or --max-size K (one of them)")
    subs = parse_subsystems(subsystems) if subsystems is not None else None
    cal = load_calibration(calibration)
    source = open_source(data)
    if subs is None:
        assert max_size is not None
        subs = contiguous_subsystems(source.n_qubits, max_size)
    passes = counting_passes(check_subsystems(subs, source.n_qubits, max_size=limit), execution=execution)
    with connect(execution), _progress(passes * source.n_snapshots, "counting patterns", quiet=quiet) as advance:
        result = estimate_renyi2(source, subs, base=base, level=level, max_size=limit, progress=advance,
                                 calibration=cal, execution=execution)
    _announce_calibration(cal, calibration)
    undefined = int((~result.defined).sum())
    if undefined:
        err.print(f"[yellow]{undefined} subsystem(s) have a purity estimate <= 0: entropy undefined "
                  "(take more snapshots)[/]")
    if plot is not None:
        _plot_entropies(result, plot, force=force)
    if fmt == "table":
        _entropy_table(result)
    elif output is None:
        sys.stdout.write(result.to_csv() if fmt == "csv" else result.to_json() + "\n")
    else:
        result.write(output, fmt, force=force)
        err.print(f"wrote {len(result)} entropies to {output}")


def _entropy_table(result: Any) -> None:
    pct = f"{100 * result.level:g}%"
    title = (f"Renyi-2 entropy ({result.unit}), {result.n_snapshots:,} snapshots, {pct} intervals"
             + (", same-setting pairs excluded" if result.same_setting_excluded else "")
             + (", calibrated (robust shadows)" if result.calibrated else ""))
    table = Table(title=title)
    for col in ("subsystem", "purity", "s.e.", f"S2 ({result.unit})", "s.e.", f"{pct} interval"):
        table.add_column(col, justify="left" if col == "subsystem" else "right")
    for r in result.rows():
        s = f"{r['entropy']:.4f}" if r["entropy"] is not None else "undefined (purity <= 0)"
        se = f"{r['entropy_stderr']:.4f}" if r["entropy_stderr"] is not None else "-"
        table.add_row(r["subsystem"], f"{r['purity']:.5f}", f"{r['purity_stderr']:.5f}", s, se,
                      f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]")
    out.print(table)


def _plot_entropies(result: Any, path: Path, *, force: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from shadowlab.atomic import atomic_path

    sizes = np.array([len(s) for s in result.subsystems])
    ok = result.defined
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    jitter = np.linspace(-0.15, 0.15, len(sizes)) if len(sizes) > 1 else np.zeros(1)
    x = sizes + jitter
    # An estimate outside the physical range lies outside its (clipped) interval: no negative bars.
    lo = np.maximum(result.entropy - result.ci_low, 0.0)
    hi = np.maximum(result.ci_high - result.entropy, 0.0)
    ax.errorbar(x[ok], result.entropy[ok], yerr=np.vstack([lo[ok], hi[ok]]), fmt="o", ms=3, lw=0.7,
                label=f"estimate ({100 * result.level:g}% interval)")
    top = int(sizes.max())
    ax.plot([0, top], [0, top], "k:", lw=0.8, label="maximum (|A| bits)" if result.base == "2" else None)
    ax.set_xlabel("subsystem size |A| (qubits)")
    ax.set_ylabel(f"Renyi-2 entropy ({result.unit})")
    ax.set_title(f"Renyi-2 entropy from {result.n_snapshots:,} snapshots")
    ax.legend(fontsize=8)
    with atomic_path(path, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    err.print(f"wrote plot to {path}")


@app.command()
@_user_errors
def rdm(
    data: Annotated[str, typer.Argument(help="Shadow store or importable snapshot file.")],
    qubits: Annotated[str, typer.Option(help="Subsystem qubits, e.g. '0,1,2' (qubit 0,1,2 order: the first is "
                                             "the most significant bit of the matrix index).")],
    project: Annotated[bool, typer.Option("--project/--no-project", help="Report the nearest physical state "
                                                                         "(default) or the raw estimate.")] = True,
    base: Annotated[str, typer.Option(help="Entropy logarithm base: 2 (bits) or e (nats).")] = "2",
    limit: Annotated[int, typer.Option("--size-limit", help="Largest subsystem accepted.")] = 8,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write JSON here instead of stdout.")
                      ] = None,
    calibration: CalibrationOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Reduced density matrix of a few qubits: matrix, eigenvalues, purity, von Neumann and Renyi-2 entropies.

    The entropies are plug-in values of the projected state (biased; see shadowlab.estimate.rdm).
    For an unbiased Renyi-2 entropy use 'shadowlab entropy'. With --calibration the state is the robust
    estimate (each Pauli coefficient divided by its support's calibrated attenuation; locality >= the qubits).
    """
    from shadowlab.estimate.entropy import parse_subsystems
    from shadowlab.estimate.rdm import estimate_rdm
    from shadowlab.execution import connect

    _check_output(fmt, output, force, ("table", "json"))
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    subs = parse_subsystems(qubits)
    if len(subs) != 1:
        raise ShadowlabError(f"--qubits takes one subsystem such as '0,1,2', got {len(subs)}")
    key = base.strip().lower()
    if key not in ("2", "e"):
        raise ShadowlabError(f"--base must be 2 or e, got {base!r}")
    b = 2.0 if key == "2" else math.e
    cal = load_calibration(calibration)
    source = open_source(data)
    with connect(execution), _progress(source.n_snapshots, "counting patterns", quiet=quiet) as advance:
        state = estimate_rdm(source, subs[0], max_qubits=limit, progress=advance, calibration=cal,
                             execution=execution)
    _announce_calibration(cal, calibration)
    if fmt == "json":
        if output is None:
            sys.stdout.write(state.to_json(project, b) + "\n")
        else:
            state.write(output, project=project, base=b, force=force)
            err.print(f"wrote the reduced state of qubits {list(state.qubits)} to {output}")
        return
    info = state.to_dict(project, b)
    unit = info["entropy_unit"]
    m = state.state(project)
    kind = "projected (nearest physical state)" if project else "raw unbiased estimate"
    if state.calibrated:
        kind += ", calibrated (robust shadows)"
    table = Table(title=f"reduced state of qubits {list(state.qubits)}, {kind}, {state.n_snapshots:,} snapshots")
    dim = m.shape[0]
    table.add_column("")
    k = len(state.qubits)
    for j in range(dim):
        table.add_column(format(j, f"0{k}b"), justify="right")
    for i in range(dim):
        table.add_row(format(i, f"0{k}b"), *(_complex(m[i, j]) for j in range(dim)))
    out.print(table)
    out.print("eigenvalues: " + ", ".join(f"{v:.5f}" for v in info["eigenvalues"][::-1]))
    out.print(f"purity: {info['purity']:.5f}")
    out.print(f"von Neumann entropy: {info['von_neumann_entropy']:.5f} {unit} (plug-in, projected state)")
    out.print(f"Renyi-2 entropy: {info['renyi2_entropy']:.5f} {unit} (plug-in, projected state)")


def _complex(z: complex) -> str:
    if abs(z.imag) < 5e-5:
        return f"{z.real:+.4f}"
    return f"{z.real:+.4f}{z.imag:+.4f}j"
