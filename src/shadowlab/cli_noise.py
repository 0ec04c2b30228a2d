"""``shadowlab calibrate`` and ``shadowlab noise-report``: robust shadows on noisy devices.

Registered on :data:`shadowlab.cli.app` when imported (``shadowlab.cli`` imports this module).
"""

from __future__ import annotations

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
    _check_outputs,
    _progress,
    _user_errors,
    _write_json,
    app,
    err,
    load_calibration,
    make_execution,
    open_source,
    out,
)
from shadowlab.errors import ShadowlabError


@app.command()
@_user_errors
def calibrate(
    data: Annotated[str, typer.Argument(help="Snapshots of |0...0> measured like the data (e.g. 'shadowlab "
                                              "simulate zero:N' or 'shadowlab acquire --state zero:N').")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Calibration file to write (JSON).")],
    locality: Annotated[int | None, typer.Option(help="Calibrate every qubit subset of up to K qubits "
                                                      "(observables up to weight K).")] = None,
    observables: Annotated[Path | None, typer.Option(help="Calibrate exactly the supports of these observables "
                                                          "(any weight) instead of a locality.")] = None,
    obs_format: Annotated[str | None, typer.Option(help="Observable file format (default: detect).")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Robust shadows: learn the noisy measurement's attenuation per qubit subset from |0...0>."""
    from shadowlab.estimate.calibration import calibrate as run_calibrate

    _check_outputs(output, force=force)
    if (locality is None) == (observables is None):
        raise ShadowlabError("give --locality K or --observables FILE (one of them)")
    source = open_source(data)
    subsets = None
    if observables is not None:
        from shadowlab.observables import read_observables

        obs = read_observables(observables, obs_format, n_qubits=source.n_qubits)
        obs.check_n_qubits(source.n_qubits, what=f"the calibration data {data}")
        subsets = [t.qubits for t in obs.terms if t.weight]
    with _progress(source.n_snapshots, "calibrating", quiet=quiet):
        cal = run_calibrate(source, locality=locality, subsets=subsets)
    cal.write(output, force=force)
    g, se = cal.per_qubit()
    if not quiet:
        kind = f"all subsets up to {cal.locality} qubits" if cal.complete else f"{len(cal.subsets)} listed subsets"
        err.print(f"wrote {output}: {len(cal.subsets):,} factors ({kind}) from {cal.n_snapshots:,} snapshots, "
                  f"readout {'twirled' if cal.readout_twirl else 'untwirled'}")
        table = Table(title="per-qubit attenuation g (1 = ideal); effective flip (1 - g) / 2")
        for col in ("qubit", "g", "stderr", "flip"):
            table.add_column(col, justify="right")
        for q in range(cal.n_qubits):
            if g[q] == g[q]:  # calibrated alone (not NaN)
                table.add_row(str(q), f"{g[q]:.4f}", f"{se[q]:.4f}", f"{(1 - g[q]) / 2:.4f}")
        if table.row_count:
            out.print(table)


@app.command("noise-report")
@_user_errors
def noise_report(
    data: Annotated[str, typer.Argument(help="Shadow data: calibration snapshots of |0...0> (readout report) or "
                                              "snapshots of a stabilizer state (gate-error report).")],
    state: Annotated[str | None, typer.Option(help="The state the data were taken on (default: the one the data "
                                                   "record); 'zero:N' means calibration data.")] = None,
    calibration: CalibrationOpt = None,
    max_weight: Annotated[int, typer.Option(help="Without a calibration: largest stabilizer generator weight "
                                                 "used.")] = 6,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the report as JSON.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Estimated noise figures: readout flips per qubit (from |0...0> data) or, for a known stabilizer state,
    each generator's violation probability and the gate depolarizing rate that explains it."""
    from shadowlab.execution import connect

    _check_outputs(output, force=force)
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    source = open_source(data)
    from shadowlab.data.dataset import recorded_state

    spec = state or recorded_state(source)
    if spec is None:
        raise ShadowlabError(f"{data} does not record the state it was taken on; pass --state (e.g. zero:N for "
                             "calibration data, or the stabilizer state's spec or .stim file)")
    if spec.split(":", 1)[0].strip().lower() == "zero":
        if calibration is not None:
            raise ShadowlabError(f"{data} holds calibration snapshots of |0...0>: its readout report needs no "
                                 "--calibration (give one with data of another state, for the gate-error report)")
        with connect(execution):
            doc = _readout(source, execution, quiet=quiet)
    else:
        cal = load_calibration(calibration)
        with connect(execution):
            doc = _gates(source, spec, cal, max_weight, execution, quiet=quiet)
    if output is not None:
        _write_json(output, doc, force)


def _recorded_noise(source: Any) -> dict[str, Any] | None:
    from shadowlab.data.dataset import recorded_provenance

    prov = recorded_provenance(source)
    noise = prov.get("noise") or (prov.get("backend") or {}).get("noise_model")
    return noise if isinstance(noise, dict) else None


def _readout(source: Any, execution: Any, *, quiet: bool) -> dict[str, Any]:
    from shadowlab.estimate.noise_report import readout_report

    with _progress(source.n_snapshots, "counting readout flips", quiet=quiet) as advance:
        report = readout_report(source, execution=execution, progress=advance)
    table = Table(title=f"effective readout flips from {report.n_snapshots:,} snapshots of |0...0> "
                        f"({'twirled' if report.twirled else 'untwirled: p(1->0) is not observable'})")
    for col in ("qubit", "p(0->1)", "p(1->0)", "symmetric flip", "Z snapshots"):
        table.add_column(col, justify="right")
    for r in report.rows():
        table.add_row(str(r["qubit"]), _pm(r["p01"], r["p01_stderr"]), _pm(r["p10"], r["p10_stderr"]),
                      "-" if r["symmetric_flip"] is None else f"{r['symmetric_flip']:.4f}", f"{r['z_snapshots']:,}")
    out.print(table)
    truth = _recorded_noise(source)
    if truth is not None:
        out.print(f"recorded noise model: readout p01={truth.get('readout_p01')}, p10={truth.get('readout_p10')}, "
                  f"depolarizing={truth.get('depolarizing')} (the measurement gate's flips, 2p/3 before readout, "
                  "are included in both)")
    return {"kind": "readout", **{"summary": report.summary(), "qubits": report.rows()}, "recorded_noise": truth}


def _pm(value: float | None, se: float | None) -> str:
    return "-" if value is None else f"{value:.4f} ± {se:.4f}"


def _gates(source: Any, spec: str, cal: Any, max_weight: int, execution: Any, *, quiet: bool) -> dict[str, Any]:
    from shadowlab.acquire.simulate import prepare_state
    from shadowlab.estimate.noise_report import stabilizer_generators
    from shadowlab.estimate.pauli import estimate_paulis
    from shadowlab.estimate.stabilizers import stabilizer_error_rates

    prepared = prepare_state(spec)
    if prepared.circuit is None:
        raise ShadowlabError(f"{spec!r} is not a stabilizer (stim) state; the gate-error report needs one")
    if prepared.n_qubits != source.n_qubits:
        raise ShadowlabError(f"the state {spec!r} has {prepared.n_qubits} qubits but the data have "
                             f"{source.n_qubits}")
    limit = cal.locality if cal is not None else max_weight
    generators, skipped = stabilizer_generators(prepared.circuit, prepared.n_qubits, max_weight=limit)
    if not generators:
        raise ShadowlabError(f"every stabilizer generator of {spec!r} is heavier than {limit}; calibrate a higher "
                             "locality (or raise --max-weight)")
    if skipped:
        err.print(f"[yellow]{len(skipped)} generator(s) heavier than {limit} skipped, e.g. {skipped[0]}[/]")
    with _progress(source.n_snapshots, "estimating stabilizers", quiet=quiet) as advance:
        est = estimate_paulis(source, generators, calibration=cal, progress=advance, execution=execution)
    rates = stabilizer_error_rates(est, generators, prepared.circuit.without_noise())
    title = (f"{spec}: {len(generators)} stabilizer generators, "
             f"{'robust (calibrated)' if cal is not None else 'uncalibrated: readout errors count as gate errors'}")
    table = Table(title=title)
    for col in ("generator", "estimate", "violation", "implied p", f"{rates.level:.0%} interval of p"):
        table.add_column(col, justify="left" if col == "generator" else "right")
    for r in rates.rows():
        table.add_row(r["stabilizer"], _pm(r["estimate"], r["stderr"]), f"{r['violation']:.4f}",
                      "-" if r["p_hat"] is None else f"{r['p_hat']:.5f}",
                      "-" if r["p_low"] is None else f"[{r['p_low']:.5f}, {r['p_high']:.5f}]")
    out.print(table)
    s = rates.summary()
    out.print(f"gate depolarizing rate fitted over all generators: p = {s['p_fit']:.5f} ± {s['p_fit_stderr']:.5f} "
              f"({rates.level:.0%} interval [{s['p_fit_low']:.5f}, {s['p_fit_high']:.5f}])")
    truth = _recorded_noise(source)
    if truth is not None:
        out.print(f"recorded noise model: depolarizing={truth.get('depolarizing')}, two-qubit "
                  f"{truth.get('two_qubit_depolarizing')}")
    if not quiet and cal is None:
        err.print("[yellow]no --calibration: measurement and readout noise are attributed to the gates[/]")
    sys.stdout.flush()
    return {"kind": "gates", "state": spec, "calibrated": cal is not None, **rates.to_dict(),
            "skipped_generators": skipped, "recorded_noise": truth}
