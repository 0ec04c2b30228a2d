"""``shadowlab twocopy ...``: two-copy Bell-basis measurements (learning with quantum memory).

Registered on :data:`shadowlab.cli.app` as the ``twocopy`` command group when imported.
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
    ChunkOpt,
    ForceOpt,
    MemoryOpt,
    QuietOpt,
    SchedulerOpt,
    WorkersOpt,
    _check_outputs,
    _int_list,
    _progress,
    _user_errors,
    _write_json,
    app,
    err,
    make_execution,
    out,
)
from shadowlab.errors import ShadowlabError

twocopy_app = typer.Typer(
    name="twocopy",
    help="Two-copy Bell-basis measurements: learning with quantum memory (Huang et al., Science 2022).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(twocopy_app, name="twocopy")

_STATE_HELP = ("State of one copy: a built-in Clifford spec for stim, any size (ghz:100, cluster:50, toric:4), "
               "hidden:<dense Pauli>[:sign=-1][:strength=0.9] (the hidden-Pauli state (I + strength sign P)/2^n), "
               "a small built-in state vector (random:6, w:5, tfim:8, ...; at most 11 qubits) or a "
               ".stim/.npy/.qasm file.")


LevelOpt = Annotated[float, typer.Option(help="Confidence level.")]
IntervalOpt = Annotated[str, typer.Option(help="wilson or hoeffding.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write results here (csv/json).")]


def resolve_two_copy_state(spec: str, *, seed: int, depolarize: float) -> tuple[str, Any, int]:
    """``('stim', circuit, n)`` or ``('exact', density_matrix, n)`` for a state spec (see ``--help``)."""
    import numpy as np

    from shadowlab.acquire.simulate import prepare_state
    from shadowlab.twocopy.simulate import MAX_EXACT_QUBITS, hidden_pauli_circuit
    from shadowlab.twocopy.simulate import depolarize as depolarize_rho

    if spec.lower().startswith("hidden:"):
        parts = spec.split(":")[1:]
        if not parts or not parts[0]:
            raise ShadowlabError(f"{spec!r}: expected hidden:<dense Pauli label>[:sign=-1][:strength=0.9]")
        label = parts[0].strip().upper()
        opts: dict[str, str] = {}
        for part in parts[1:]:
            key, eq, value = part.partition("=")
            if not eq or key.strip() not in ("sign", "strength"):
                raise ShadowlabError(f"{spec!r}: unknown option {part!r}; expected sign=+1|-1 or strength=<0..1>")
            opts[key.strip()] = value.strip()
        if set(label) - set("IXYZ"):
            raise ShadowlabError(f"{spec!r}: the hidden Pauli must be a dense label of I, X, Y, Z (e.g. XIZY)")
        try:
            sign = int(opts.get("sign", "1"))
            strength = float(opts.get("strength", "0.9"))
        except ValueError as exc:
            raise ShadowlabError(f"{spec!r}: {exc}") from None
        circuit = hidden_pauli_circuit(label, len(label), sign=sign, strength=strength)
    else:
        prepared = prepare_state(spec, seed=seed)
        if prepared.circuit is not None:
            circuit = prepared.circuit
        else:
            if prepared.n_qubits > MAX_EXACT_QUBITS:
                raise ShadowlabError(f"{spec}: two copies of a {prepared.n_qubits}-qubit state vector is beyond the "
                                     f"exact sampler (at most {MAX_EXACT_QUBITS} qubits); use a Clifford state")
            rho = np.outer(prepared.statevector, prepared.statevector.conj())
            if depolarize:
                rho = depolarize_rho(rho, depolarize)
            return "exact", rho, prepared.n_qubits
    if depolarize:
        if not 0.0 <= depolarize <= 0.75:
            raise ShadowlabError(f"--depolarize must be in [0, 0.75], got {depolarize}")
        circuit = circuit.copy()
        circuit.append("DEPOLARIZE1", list(range(circuit.num_qubits)), depolarize)
    return "stim", circuit, circuit.num_qubits


@twocopy_app.command()
@_user_errors
def simulate(
    state: Annotated[str, typer.Argument(help=_STATE_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Two-copy store to write (Zarr).")],
    shots: Annotated[int, typer.Option("--shots", "-n", help="Bell shots (each uses two copies).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the simulation (and of random:N states).")] = 0,
    depolarize: Annotated[float, typer.Option(help="Per-qubit depolarizing probability after preparation, "
                                                   "drawn independently in each copy.")] = 0.0,
    force: ForceOpt = False,
) -> None:
    """Simulate Bell-basis shots on two copies of a state (stim at any size, exact at small size)."""
    import numpy as np

    from shadowlab.atomic import check_can_write
    from shadowlab.twocopy.simulate import sample_bell_state, sample_bell_stim
    from shadowlab.twocopy.store import write_bell_store

    check_can_write(output, force=force)
    if shots < 1:
        raise ShadowlabError(f"--shots must be >= 1, got {shots}")
    kind, obj, n = resolve_two_copy_state(state, seed=seed, depolarize=depolarize)
    rng = np.random.default_rng([seed, 2])  # a stream apart from the one that drew random:N states
    data = sample_bell_stim(obj, shots, rng) if kind == "stim" else sample_bell_state(obj, shots, rng)
    provenance = {**data.metadata, "state": state, "seed": seed, "depolarize": depolarize, "shots": shots}
    write_bell_store(data, output, force=force, provenance=provenance)
    err.print(f"wrote {shots:,} Bell shots ({2 * shots:,} copies) of {n} qubit pairs ({kind}) to {output}")


def _write_or_print(result: Any, fmt: str, output: Path | None, force: bool, title: str) -> None:
    from shadowlab.estimate.results import OUTPUT_FORMATS

    if fmt not in OUTPUT_FORMATS:
        raise ShadowlabError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if fmt == "table":
        if output is not None:
            raise ShadowlabError("--output needs --format csv or json")
        pct = f"{100 * result.level:g}%"
        table = Table(title=f"{title}, {result.interval} {pct} intervals, {result.n_snapshots:,} Bell shots")
        for col in ("observable", "estimate", "stderr", f"{pct} interval"):
            table.add_column(col, justify="left" if col == "observable" else "right")
        for r in result.rows():
            table.add_row(r["observable"], f"{r['estimate']:+.5f}", f"{r['stderr']:.5f}",
                          f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]")
        out.print(table)
    elif output is None:
        sys.stdout.write(result.to_csv() if fmt == "csv" else result.to_json() + "\n")
    else:
        result.write(output, fmt, force=force)
        err.print(f"wrote {len(result)} estimates to {output}")


@twocopy_app.command()
@_user_errors
def predict(
    store: Annotated[str, typer.Argument(help="Two-copy store.")],
    paulis: Annotated[list[str] | None, typer.Argument(help="Pauli labels (dense 'XIZ' or sparse 'X0 Z2').")] = None,
    observables: Annotated[Path | None, typer.Option("--observables", help="Observable file (one Pauli per line, "
                                                                           "any format 'shadowlab predict' reads).")
                           ] = None,
    absolute: Annotated[bool, typer.Option("--abs", help="Report |tr(P rho)| instead of tr(P rho)^2.")] = False,
    level: LevelOpt = 0.95,
    interval: IntervalOpt = "wilson",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Predict tr(P rho)^2 (or |tr(P rho)|) for Paulis of any weight from one two-copy data set."""
    from shadowlab.execution import connect
    from shadowlab.observables import read_observables
    from shadowlab.twocopy.estimate import abs_from_squares, estimate_pauli_squares, open_bell

    _check_outputs(output, force=force)
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    data = open_bell(store)
    if (observables is None) == (not paulis):
        raise ShadowlabError("give Pauli labels or --observables FILE (one of them)")
    obs: Any = read_observables(observables, n_qubits=data.n_qubits) if observables is not None else list(paulis or [])
    with connect(execution), _progress(data.n_shots, "counting parities", quiet=quiet) as advance:
        result = estimate_pauli_squares(data, obs, level=level, interval=interval, execution=execution,
                                        progress=advance)
    if absolute:
        result = abs_from_squares(result)
    _write_or_print(result, fmt, output, force, "|tr(P rho)|" if absolute else "tr(P rho)^2 (two copies)")


@twocopy_app.command()
@_user_errors
def purity(
    store: Annotated[str, typer.Argument(help="Two-copy store.")],
    subsystem: Annotated[list[str] | None, typer.Option("--subsystem", "-s", help="Qubits of a subsystem, e.g. "
                                                                                  "0,1,2 (repeatable, or several "
                                                                                  "as '0,1;2,3'; default: the "
                                                                                  "whole state).")
                         ] = None,
    level: LevelOpt = 0.95,
    interval: IntervalOpt = "wilson",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Purities tr(rho_A^2) (the SWAP test on every shot) and Renyi-2 entropies of subsystems."""
    from shadowlab.estimate.entropy import parse_subsystems
    from shadowlab.execution import connect
    from shadowlab.twocopy.estimate import estimate_purities, open_bell, renyi2_from_purities

    _check_outputs(output, force=force)
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    data = open_bell(store)
    subs = None if not subsystem else [s for text in subsystem for s in parse_subsystems(text)]
    with connect(execution), _progress(data.n_shots, "counting parities", quiet=quiet) as advance:
        result = estimate_purities(data, subs, level=level, interval=interval, execution=execution,
                                   progress=advance)
    if fmt != "table":
        _write_or_print(result, fmt, output, force, "purity")
        return
    ent, lo, hi = renyi2_from_purities(result)
    pct = f"{100 * level:g}%"
    table = Table(title=f"purity (SWAP on two copies), {interval} {pct} intervals, {result.n_snapshots:,} Bell shots")
    for col in ("subsystem", "purity", "stderr", f"{pct} interval", "S2 (bits)", f"S2 {pct} interval"):
        table.add_column(col, justify="left" if col == "subsystem" else "right")
    for i, r in enumerate(result.rows()):
        s2 = "undefined (purity <= 0)" if math.isnan(ent[i]) else f"{ent[i]:.4f}"
        s2i = ("undefined" if math.isnan(lo[i]) else
               f"[{lo[i]:.4f}, {'unbounded' if math.isinf(hi[i]) else f'{hi[i]:.4f}'}]")
        table.add_row(r["observable"], f"{r['estimate']:+.5f}", f"{r['stderr']:.5f}",
                      f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", s2, s2i)
    out.print(table)


def _print_copies(title: str, study: Any, n_values: list[int], one_copy_max_n: int) -> None:
    """Copies needed by both learners per ``n``, with the wall time of each."""
    table = Table(title=title)
    for col in ("n", "two-copy copies", "one-copy copies", "two-copy s", "one-copy s"):
        table.add_column(col, justify="right")
    for k in n_values:
        two, one = study.copies_needed("two_copy", k), study.copies_needed("one_copy", k)
        one_text = "not run" if k > one_copy_max_n else (f"{one:,}" if one else "> grid")
        table.add_row(str(k), f"{two:,}" if two else "> grid", one_text, f"{study.seconds['two_copy'][k]:.1f}",
                      f"{study.seconds['one_copy'][k]:.1f}" if k in study.seconds["one_copy"] else "-")
    out.print(table)


@twocopy_app.command("hidden-pauli")
@_user_errors
def hidden_pauli(
    n: Annotated[str, typer.Option("--n", help="Qubit counts, comma-separated.")] = "6,8,10,20,50,100",
    trials: Annotated[int, typer.Option(help="Seeded trials per n.")] = 40,
    queries: Annotated[int, typer.Option(help="Queries Q per trial (the hidden P among them).")] = 1000,
    copies: Annotated[str, typer.Option(help="Two-copy grid: copies of rho (even), comma-separated.")
                      ] = "40,80,120,160,200,240,300,400",
    one_copy_max_n: Annotated[int, typer.Option(help="Run the one-copy learner up to this n.")] = 8,
    strength: Annotated[float, typer.Option(help="|tr(P rho)| of the hidden Pauli.")] = 0.9,
    seed: Annotated[int, typer.Option(help="Seed of the study.")] = 2022,
    plot: Annotated[Path | None, typer.Option(help="Write the copies-vs-n figure here (.png/.pdf).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write all success rates here.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Hidden Pauli: copies to decide 1,000 queries (|tr(Q rho)| = strength or 0), two copies vs one."""
    from shadowlab.twocopy.hidden_pauli import hidden_pauli_study

    _check_outputs(plot, json_out, force=force)
    n_values = _int_list(n, "--n")
    study = hidden_pauli_study(n_values, two_copy_grid=_int_list(copies, "--copies"), one_copy_max_n=one_copy_max_n,
                               trials=trials, n_queries=queries, strength=strength, seed=seed,
                               progress=None if quiet else (lambda msg: err.print(f"done: {msg}")))
    _print_copies(f"hidden Pauli: copies for all {queries:,} queries right in >= 95% of {trials} trials", study,
                  n_values, one_copy_max_n)
    if json_out is not None:
        _write_json(json_out, study.to_dict(), force)
    if plot is not None:
        from shadowlab.plots import hidden_pauli_figure

        hidden_pauli_figure(study, plot, force=force)
        err.print(f"wrote {plot}")


@twocopy_app.command("purity-scan")
@_user_errors
def purity_scan(
    n: Annotated[str, typer.Option("--n", help="Qubit counts, comma-separated.")] = "2,4,6,8,20,100",
    p: Annotated[float, typer.Option(help="Depolarizing probability on qubit 0 of the GHZ state.")] = 0.25,
    target: Annotated[float, typer.Option(help="Target root-mean-square error of the purity.")] = 0.05,
    trials: Annotated[int, typer.Option(help="Seeded trials per n and copy count.")] = 40,
    one_copy_max_n: Annotated[int, typer.Option(help="Run the one-copy learner up to this n.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the study.")] = 7,
    plot: Annotated[Path | None, typer.Option(help="Write the copies-vs-n figure here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write all RMSEs here.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Purity: copies for a fixed RMSE, two-copy SWAP test vs one-copy randomized measurements."""
    from shadowlab.twocopy.purity_study import purity_study

    _check_outputs(plot, json_out, force=force)
    n_values = _int_list(n, "--n")
    study = purity_study(n_values, p=p, target_rmse=target, trials=trials, one_copy_max_n=one_copy_max_n, seed=seed,
                         progress=None if quiet else (lambda msg: err.print(f"done: {msg}")))
    _print_copies(f"purity {study.purity:.4f}: copies for RMSE <= {target} over {trials} trials", study, n_values,
                  one_copy_max_n)
    if json_out is not None:
        _write_json(json_out, study.to_dict(), force)
    if plot is not None:
        from shadowlab.plots import purity_scan_figure

        purity_scan_figure(study, plot, force=force)
        err.print(f"wrote {plot}")


@twocopy_app.command("run")
@_user_errors
def run_device(
    state: Annotated[str, typer.Argument(help="State of one copy: a spec (ghz:4, random:3, ...) or an OpenQASM/"
                                              ".stim file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Two-copy store to write.")],
    backend: Annotated[str, typer.Option(help="qiskit-aer (seeded) or braket-local (cannot be seeded).")
                       ] = "qiskit-aer",
    shots: Annotated[int, typer.Option("--shots", "-n", help="Bell shots.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed (qiskit-aer).")] = 0,
    depolarizing: Annotated[float, typer.Option(help="Depolarizing probability after every gate.")] = 0.0,
    readout: Annotated[float, typer.Option(help="Readout bit-flip probability.")] = 0.0,
    save_results: Annotated[Path | None, typer.Option(help="Also save the raw results (qiskit-aer: a result "
                                                           "file 'twocopy import' reads).")] = None,
    force: ForceOpt = False,
) -> None:
    """Run the two-copy Bell circuit (2n qubits) on Qiskit Aer or the Braket local simulator."""
    from shadowlab.atomic import check_can_write
    from shadowlab.twocopy.devices import run_two_copy_braket, run_two_copy_qiskit
    from shadowlab.twocopy.store import write_bell_store

    check_can_write(output, force=force)
    if save_results is not None:
        check_can_write(save_results, force=force)
    noise = {k: v for k, v in (("depolarizing", depolarizing), ("readout", readout)) if v}
    if noise:
        from shadowlab.acquire.noise import NoiseModel

        try:
            NoiseModel.from_spec(noise)  # the same checks and meaning on both back ends
        except ShadowlabError as exc:
            raise ShadowlabError(f"--depolarizing/--readout: {exc}") from None
    if backend == "qiskit-aer":
        data = run_two_copy_qiskit(state, shots, seed=seed, noise_model=noise or None, save_to=save_results)
    elif backend == "braket-local":
        if save_results is not None:
            raise ShadowlabError("--save-results is available for qiskit-aer only")
        data = run_two_copy_braket(state, shots, noise=noise or None)
    else:
        raise ShadowlabError(f"--backend must be qiskit-aer or braket-local, got {backend!r}")
    write_bell_store(data, output, force=force, provenance={**data.metadata, "state": state, "noise": noise})
    err.print(f"wrote {shots:,} Bell shots of {data.n_qubits} qubit pairs ({backend}) to {output}")


@twocopy_app.command()
@_user_errors
def circuits(
    state: Annotated[str, typer.Argument(help="State of one copy: a spec or an OpenQASM/.stim file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="OpenQASM 3 file to write.")],
    force: ForceOpt = False,
) -> None:
    """Write the two-copy Bell circuit (2n qubits, qubit j measured into bit j) as OpenQASM 3."""
    from shadowlab.twocopy.devices import write_two_copy_qasm

    n = write_two_copy_qasm(state, output, force=force)
    err.print(f"wrote the two-copy circuit ({2 * n} qubits: copy A = 0..{n - 1}, copy B = {n}..{2 * n - 1}) to "
              f"{output}; import its results with 'shadowlab twocopy import RESULTS --qubits {n}'")


@twocopy_app.command("import")
@_user_errors
def import_results(
    results: Annotated[Path, typer.Argument(help="Saved results of the two-copy circuit: a Qiskit result file or "
                                                 "Braket GateModelTaskResult JSON (file or directory).")],
    qubits: Annotated[int, typer.Option("--qubits", help="Qubits per copy (the circuit has twice as many).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Two-copy store to write.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, qiskit or braket.")] = "auto",
    force: ForceOpt = False,
) -> None:
    """Import device results of the two-copy circuit into a two-copy store."""
    from shadowlab.atomic import check_can_write
    from shadowlab.twocopy.devices import read_two_copy_results
    from shadowlab.twocopy.store import write_bell_store

    check_can_write(output, force=force)
    data = read_two_copy_results(results, qubits, fmt=fmt)
    write_bell_store(data, output, force=force)
    err.print(f"imported {data.n_shots:,} Bell shots of {qubits} qubit pairs to {output}")


@twocopy_app.command()
@_user_errors
def stabilizer(
    n: Annotated[str, typer.Option("--n", help="Qubit counts, comma-separated.")] = "50,100,200",
    trials: Annotated[int, typer.Option(help="Seeded random states per n.")] = 40,
    family: Annotated[str, typer.Option(help="random, ghz or cluster.")] = "random",
    noise: Annotated[float, typer.Option(help="Depolarizing probability after the preparation.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the study.")] = 1,
    plot: Annotated[Path | None, typer.Option(help="Write the copies-vs-n figure here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every trial's record here.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Learn unknown stabilizer states from Bell-sampled copies (Montanaro 2017) and verify them."""
    from shadowlab.twocopy.stabilizer import plot_stabilizer_learning, stabilizer_learning_study

    _check_outputs(plot, json_out, force=force)
    result = stabilizer_learning_study(_int_list(n, "--n"), trials, seed, family=family, noise=noise,
                                       progress=None if quiet else (lambda msg: err.print(f"done: {msg}")))
    table = Table(title=f"stabilizer learning ({family}, noise {noise}): {trials} trials per n")
    for col in ("n", "success", "false accepts", "copies mean", "copies max", "copies / n", "s / trial"):
        table.add_column(col, justify="right")
    for r in result["rows"]:
        table.add_row(str(r["n"]), f"{r['success_rate']:.3f}", str(r["false_accepts"]), f"{r['copies_mean']:.1f}",
                      str(r["copies_max"]), f"{r['copies_per_n_mean']:.3f}", f"{r['learn_s_mean']:.2f}")
    out.print(table)
    if json_out is not None:
        _write_json(json_out, result, force)
    if plot is not None:
        from shadowlab.atomic import atomic_path

        with atomic_path(plot, force=force, suffix=plot.suffix) as tmp:
            plot_stabilizer_learning(result, tmp)
        err.print(f"wrote {plot}")


@twocopy_app.command()
@_user_errors
def dynamics(
    n: Annotated[int, typer.Option("--n", help="Qubits of the system (state vector; at most 12).")] = 8,
    shots: Annotated[str, typer.Option(help="Shots per circuit to try, comma-separated.")
                     ] = "1,2,5,10,20,50,100,200,500,1000,2000",
    circuits: Annotated[int, typer.Option(help="Circuits per class in each repeat.")] = 50,
    depth: Annotated[int | None, typer.Option(help="Brickwork depth (default n).")] = None,
    repeats: Annotated[int, typer.Option(help="Independent repeats (fresh circuits and shots).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the study.")] = 2022,
    plot: Annotated[Path | None, typer.Option(help="Write accuracy vs shots (and the PC1 scatter) here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the accuracies here.")] = None,
    force: ForceOpt = False,
) -> None:
    """Time-reversal symmetric vs scrambling circuits: PCA on two-copy vs one-copy data, accuracy vs shots."""
    from shadowlab.atomic import atomic_path
    from shadowlab.twocopy.dynamics import dynamics_study, plot_dynamics

    _check_outputs(plot, json_out, force=force)
    result = dynamics_study(n, _int_list(shots, "--shots"), circuits, depth, seed, n_repeats=repeats)
    table = Table(title=f"n = {n}, depth {result.depth}: unsupervised PCA accuracy, {circuits} circuits per class, "
                        f"{repeats} repeats")
    for col in ("shots", "two-copy", "one-copy"):
        table.add_column(col, justify="right")
    two, one = result.mean_accuracy("two_copy"), result.mean_accuracy("one_copy")
    for i, s in enumerate(result.shots_grid.tolist()):
        table.add_row(f"{s:,}", f"{two[i]:.3f}", f"{one[i]:.3f}")
    out.print(table)
    need = result.shots_needed
    ratio = result.shot_ratio
    out.print(f"shots for {result.target_accuracy:.0%}: two-copy {need['two_copy']}, one-copy {need['one_copy']}"
              + (f" (ratio {ratio:g})" if ratio is not None else ""))
    if json_out is not None:
        _write_json(json_out, result.to_dict(), force)
    if plot is not None:
        with atomic_path(plot, force=force, suffix=plot.suffix) as tmp:
            plot_dynamics(result, tmp)
        err.print(f"wrote {plot}")


@twocopy_app.command()
@_user_errors
def identify(
    store: Annotated[str, typer.Argument(help="Two-copy store of a hidden-Pauli state (I + lam s P) / 2^n.")],
    max_seconds: Annotated[float, typer.Option(help="Time budget of the search.")] = 60.0,
    strength: Annotated[float, typer.Option(help="Assumed |tr(P rho)| (sets the miss probability only).")] = 0.9,
    seed: Annotated[int, typer.Option(help="Seed of the randomized search.")] = 0,
) -> None:
    """Identify the hidden Pauli P from Bell shots (information-set decoding over GF(2)).

    The exit status is 0 whether or not P was found within the budget (1 only for errors); a
    Pauli is reported only if it passes a threshold that no wrong Pauli passes except with
    probability 1e-6.
    """
    import numpy as np

    from shadowlab.twocopy.gf2 import identify_hidden_pauli
    from shadowlab.twocopy.store import BellStore

    data = BellStore.open(store).load()  # the decoder needs every shot in memory (2n bits each)
    result = identify_hidden_pauli(data.a, data.c, rng=np.random.default_rng(seed), max_seconds=max_seconds,
                                   lam=strength)
    verdict = f"[bold green]P = {result.label}[/]" if result.found else "[bold yellow]not found[/]"
    out.print(f"{verdict}: {result.n_shots:,} Bell shots ({2 * result.n_shots:,} copies), "
              f"{result.iterations:,} information sets in {result.seconds:.1f} s; disagreements "
              f"{result.disagreements} (threshold {result.threshold}; a wrong Pauli passes with probability <= "
              f"{result.false_probability_bound:g}, the true one misses with probability "
              f"{result.miss_probability:.2g}). {result.message}")
