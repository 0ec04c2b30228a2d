"""The ``shadowlab`` command line: one thin command per user task.

Results go to standard output or a file; progress and errors go to standard error. A failed
command prints ``error: <message>`` (no traceback), exits with status 1 and leaves no partial
output file.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from shadowlab.errors import ShadowlabError, ShadowlabWarning
from shadowlab.execution import DEFAULT_MEMORY_BYTES

app = typer.Typer(
    name="shadowlab",
    help="Classical shadows: measure first, ask questions later.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(func: F) -> F:
    """Turn user-facing errors into one line on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        caught: list[warnings.WarningMessage] = []
        try:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ShadowlabWarning)
                    return func(*args, **kwargs)
            finally:
                # Shown after the recording context is left: inside it, showwarning would record
                # the re-shown warnings into the very list being shown.
                _show_warnings(caught)
        except ShadowlabError as exc:
            # Escaped: messages carry brackets ("pip install 'shadowlab[qiskit]'") that are not markup.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            err.print(f"[bold red]error:[/] {exc.filename or ''}: {exc.strerror}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted; no output was written (an interrupted 'acquire' keeps its finished batches: "
                      "rerun the same command to resume)")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """shadowlab's own warnings as one ``warning:`` line each; others as Python shows them."""
    for w in caught:
        if issubclass(w.category, ShadowlabWarning):
            err.print(f"[bold yellow]warning:[/] {escape(str(w.message))}", highlight=False, soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@contextmanager
def _progress(total: int, what: str, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr; yields a callback advancing it by a count.

    Only on a terminal: in logs and pipes a redrawn bar is noise.
    """
    if quiet or not err.is_terminal:
        yield lambda _n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            elapsed = bar.tasks[0].elapsed or 0.0
            if elapsed > 0:
                bar.update(task, rate=f"{bar.tasks[0].completed / elapsed:,.0f}/s")

        yield advance


def _int_list(text: str, what: str, *, minimum: int | None = None) -> list[int]:
    """Comma-separated integers of option ``what`` (each at least ``minimum`` when given)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ShadowlabError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ShadowlabError(f"{what} is empty")
    if minimum is not None and min(values) < minimum:
        raise ShadowlabError(f"{what} must list integers >= {minimum}, got {text!r}")
    return values


def _write_json(path: Path, doc: dict[str, Any], force: bool) -> None:
    """Write ``doc`` as JSON atomically and say so on stderr."""
    from shadowlab.atomic import atomic_path

    with atomic_path(path, force=force) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    err.print(f"wrote {path}")


def _check_outputs(*paths: Path | None, force: bool, figures: tuple[Path | None, ...] = ()) -> None:
    """Refuse, before any work, outputs that exist (without ``--force``) or cannot be written,
    and figure paths whose extension matplotlib cannot write."""
    from shadowlab.atomic import check_can_write

    for path in (*paths, *figures):
        if path is not None:
            check_can_write(path, force=force)
    for path in figures:
        if path is not None:
            from matplotlib.figure import Figure

            formats = Figure().canvas.get_supported_filetypes()
            if path.suffix.lstrip(".").lower() not in formats:
                raise ShadowlabError(f"{path}: cannot write a figure with extension {path.suffix!r}; use one of "
                                     f"{', '.join('.' + f for f in sorted(formats))}")


def open_source(location: str | Path, fmt: str | None = None) -> Any:
    """A shadow store (opened lazily; a local path or a URL such as ``s3://bucket/run.zarr``) or any
    importable snapshot file (read into memory)."""
    from shadowlab.data.formats import read_snapshots
    from shadowlab.data.store import ShadowStore, is_store, is_url

    if is_url(location):
        if fmt not in (None, "zarr"):
            raise ShadowlabError(f"{location}: snapshot files are read from local paths only; at a URL give a "
                                 "shadow store (or download the file)")
        return ShadowStore.open(location)
    path = Path(location)
    if is_store(path) and fmt in (None, "zarr"):
        return ShadowStore.open(path)
    if not path.exists():
        raise ShadowlabError(f"{path}: no such file or store")
    return read_snapshots(path, fmt)


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
CalibrationOpt = Annotated[Path | None, typer.Option(
    "--calibration", help="Robust shadows: a calibration file from 'shadowlab calibrate' (same qubits and "
                          "measurement); estimates are divided by its factors, errors include its own.")]
NoiseOpt = Annotated[str | None, typer.Option(
    "--noise", help="Device noise, e.g. 'depolarizing=0.01,p01=0.05,p10=0.15' (gate depolarizing, readout "
                    "0->1 and 1->0 flips; also two_qubit_depolarizing, readout).")]
TwirlOpt = Annotated[bool, typer.Option("--twirl/--no-twirl", help="Readout twirling: a random X flip before "
                                                                   "each measurement, undone and recorded.")]


def load_calibration(path: Path | None) -> Any:
    """The calibration of ``--calibration`` (None when not given)."""
    if path is None:
        return None
    from shadowlab.estimate.calibration import read_calibration

    return read_calibration(path)
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
#: The --memory default: shadowlab.execution's default bound, as the option writes it.
DEFAULT_MEMORY = f"{DEFAULT_MEMORY_BYTES >> 30}GiB"
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", help="Run on this Dask cluster (scheduler address, e.g. tcp://host:8786).")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", help="Run on a local Dask cluster of this many worker processes.")]
MemoryOpt = Annotated[str, typer.Option(
    "--memory", help="Memory bound of one chunk task (e.g. 512MB, 1GiB): chunks are sized to fit it.")]
ChunkOpt = Annotated[int | None, typer.Option(
    "--chunk-snapshots", help="Snapshots per chunk task (default: the largest the memory bound allows).")]


def make_execution(scheduler: str | None, workers: int | None, memory: str, chunk_snapshots: int | None) -> Any:
    """The :class:`~shadowlab.execution.Execution` of the options ``--scheduler``, ``--workers``, ``--memory``
    and ``--chunk-snapshots``."""
    from shadowlab.execution import Execution

    return Execution(scheduler=scheduler, workers=workers, memory=memory, chunk_snapshots=chunk_snapshots)


@app.command()
@_user_errors
def simulate(
    state: Annotated[str, typer.Argument(help="State: built-in spec (ghz:100, cluster:50, toric:5, tfim:12, "
                                              "heisenberg:10, random:8, ...) or a .qasm/.npy/.stim file.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Store to create: a .zarr directory, or a URL "
                                                               "such as s3://bucket/prefix/name.zarr.")],
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Number of snapshots.")] = 10000,
    repeats: Annotated[int, typer.Option(help="Snapshots per random setting (settings x repeats).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed; the same arguments give identical data.")] = 0,
    simulator: Annotated[str, typer.Option(help="auto, statevector or stim.")] = "auto",
    chunk_snapshots: Annotated[int | None, typer.Option(help="Snapshots per on-disk chunk (multiple of 64; default "
                                                              "65536 or what --memory allows, in whole seeded "
                                                              "batches on a cluster).")] = None,
    noise: NoiseOpt = None,
    twirl: TwirlOpt = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
) -> None:
    """Simulate random local-Pauli measurements of a state and store the snapshots.

    With --noise the device is noisy (gate noise in stim circuits, a noisy rotation gate per qubit
    and asymmetric readout); 'zero:N' is the calibration state |0...0> for 'shadowlab calibrate'.
    With --workers or --scheduler the store's chunks are simulated in parallel, one task per chunk
    (--chunk-snapshots must then be a multiple of the 16384-snapshot seeded batch, rounded down to
    whole settings); the data are the same whatever runs them.
    """
    from shadowlab.acquire.distributed import simulate_to_store
    from shadowlab.acquire.noise import parse_noise_spec
    from shadowlab.acquire.simulate import prepare_state
    from shadowlab.data.store import check_can_create

    check_can_create(output, force=force)
    execution = make_execution(scheduler, workers, memory, None)
    model = parse_noise_spec(noise) if noise is not None else None
    prepared = prepare_state(state, simulator=simulator, seed=seed)
    if model is not None and model.depolarizing > 0 and prepared.circuit is None and not quiet:
        err.print(f"[yellow]note: {prepared.description} is a state vector, prepared without gates: the "
                  "depolarizing noise acts only on the measurement layer's rotation gates[/]")
    with _progress(snapshots, f"sampling {prepared.description}", quiet=quiet) as advance:
        simulate_to_store(prepared, output, snapshots, repeats=repeats, seed=seed, chunk_snapshots=chunk_snapshots,
                          noise=model, readout_twirl=twirl, execution=execution, progress=advance, force=force)
    if not quiet:
        err.print(f"wrote {snapshots:,} snapshots of {prepared.n_qubits} qubits ({prepared.simulator}) to {output}")


@app.command()
@_user_errors
def plan(
    observables: Annotated[Path | None, typer.Argument(help="Observables (reference 'k P q ... [weight]' format, "
                                                            "one term per line, or a molecule Hamiltonian); "
                                                            "needed for biased and derandomized schemes.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Scheme file to write.")] = Path("plan.txt"),
    scheme: Annotated[str, typer.Option(help="uniform, biased or derandomized.")] = "uniform",
    snapshots: Annotated[int | None, typer.Option("--snapshots", "-n", help="Total snapshots (uniform, biased: "
                                                  "required; derandomized: stop after this many settings).")] = None,
    repeats: Annotated[int, typer.Option(help="Shots per setting (uniform, biased).")] = 1,
    hits: Annotated[int | None, typer.Option(help="Derandomized: hits per observable of weight 1 (target "
                                                  "floor(w * hits)).")] = None,
    eta: Annotated[float, typer.Option(help="Derandomized: the greedy rule's eta.")] = 0.9,
    qubits: Annotated[int | None, typer.Option(help="Number of qubits (uniform without observables).")] = None,
    obs_format: Annotated[str | None, typer.Option(help="Observable file format (default: detect).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random schemes.")] = 0,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Plan measurements: uniform random, locally biased or derandomized local Pauli settings."""
    import numpy as np

    from shadowlab.atomic import check_can_write
    from shadowlab.plan.scheme import random_scheme, uniform_scheme, write_scheme

    check_can_write(output, force=force)
    kinds = ("uniform", "biased", "derandomized")
    if scheme not in kinds:
        raise ShadowlabError(f"--scheme must be one of {', '.join(kinds)}, got {scheme!r}")
    if repeats < 1:
        raise ShadowlabError(f"--repeats must be >= 1, got {repeats}")
    obs = weights = None
    if observables is not None:
        obs, weights = _read_planning_observables(observables, obs_format, qubits)
    elif scheme != "uniform":
        raise ShadowlabError(f"a {scheme} scheme needs an observable file")
    n_qubits = obs.n_qubits if obs is not None else qubits
    if n_qubits is None:
        raise ShadowlabError("give an observable file or --qubits")
    info: dict[str, Any] = {"seed": seed, **({"observables": str(observables)} if observables else {})}
    if scheme in ("uniform", "biased"):
        if snapshots is None or snapshots < 1 or snapshots % repeats:
            raise ShadowlabError(f"--snapshots must be a positive multiple of --repeats ({repeats}), got {snapshots}")
        rng = np.random.default_rng(seed)
        if scheme == "uniform":
            result = uniform_scheme(n_qubits, snapshots // repeats, rng, repeats=repeats, info=info)
        else:
            from shadowlab.plan.biased import optimize_probabilities

            opt = optimize_probabilities(obs)
            info |= {"variance_bound": opt.cost, "uniform_variance_bound": opt.uniform_cost}
            result = random_scheme(opt.probabilities, snapshots // repeats, rng, repeats=repeats, kind="biased",
                                   info=info)
            if not quiet:
                err.print(f"biased probabilities: diagonal (maximally mixed state) second moment {opt.cost:.6g} "
                          f"against {opt.uniform_cost:.6g} uniform; the gain on a particular state may differ")
    else:
        from shadowlab.plan.derandomize import derandomize

        if hits is None and snapshots is None:
            raise ShadowlabError("a derandomized scheme needs --hits (hits per observable) or --snapshots (budget)")
        result = derandomize(obs, hits=hits if hits is not None else snapshots, weights=weights, eta=eta,
                             budget=snapshots)
    write_scheme(result, output, force=force)
    if not quiet:
        err.print(f"wrote a {result.kind} scheme of {result.n_settings:,} settings, {result.n_snapshots:,} snapshots "
                  f"on {result.n_qubits} qubits to {output}")


def _read_planning_observables(path: Path, fmt: str | None, n_qubits: int | None) -> tuple[Any, Any]:
    """Observables and their derandomization weights (reference files may carry a trailing weight)."""
    from shadowlab.observables import detect_observable_format, read_observables, read_reference_observables

    fmt = detect_observable_format(path) if fmt is None else fmt
    weights = None
    if fmt == "reference":
        obs, weights = read_reference_observables(path)
    else:
        obs = read_observables(path, fmt, n_qubits=n_qubits)
    if n_qubits is not None and obs.n_qubits != n_qubits:
        raise ShadowlabError(f"{path}: the observables are on {obs.n_qubits} qubits but --qubits is {n_qubits}")
    return obs, weights


@app.command()
@_user_errors
def acquire(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="Scheme file from 'shadowlab plan'.")],
    state: Annotated[str, typer.Option(help="State: built-in spec (ghz:4, cluster:50, tfim:8, ...) or a "
                                            ".qasm/.npy/.stim file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Store to create, or to resume.")],
    backend: Annotated[str, typer.Option(help="auto (stim for Clifford states, else statevector), statevector, "
                                              "stim, qiskit-aer or braket-local.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed; the same arguments give identical data (except on "
                                           "braket-local, which cannot be seeded).")] = 0,
    batch_snapshots: Annotated[int, typer.Option(help="Snapshots per appended batch (the unit of resuming).")
                               ] = 4096,
    noise: NoiseOpt = None,
    twirl: TwirlOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a plan on a back end, appending finished batches to a store; rerun to resume."""
    from shadowlab.acquire.run import acquire as run_acquire
    from shadowlab.acquire.run import make_backend
    from shadowlab.acquire.simulate import prepare_state
    from shadowlab.plan.scheme import read_scheme

    scheme = read_scheme(plan_file)
    if backend == "auto":
        prepared = prepare_state(state, seed=seed)
        backend, target = prepared.simulator, prepared
    else:
        target = state
    from shadowlab.acquire.noise import parse_noise_spec

    engine = make_backend(backend, target, seed=seed, noise=parse_noise_spec(noise) if noise is not None else None,
                          readout_twirl=twirl)
    with _settings_progress(scheme.n_settings, f"{engine.name}: settings", quiet=quiet) as report:
        store = run_acquire(scheme, engine, output, seed=seed, batch_snapshots=batch_snapshots, progress=report,
                            readout_twirl=twirl)
    if not quiet:
        err.print(f"{output}: {store.n_snapshots:,} of {scheme.n_snapshots:,} snapshots ({scheme.n_settings:,} "
                  f"settings) on {engine.name}")


@contextmanager
def _settings_progress(total: int, what: str, *, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over settings that can start part-way (a resumed acquisition)."""
    if quiet or not err.is_terminal:
        yield lambda _done, _total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: list[Any] = []

        def report(done: int, _total: int) -> None:
            # The task starts at the resumed count, so rate and time left count this run only.
            if not tasks:
                tasks.append(bar.add_task(what, total=total, completed=done, rate=""))
            task = tasks[0]
            bar.update(task, completed=done)
            speed = bar.tasks[0].speed
            if speed:
                bar.update(task, rate=f"{speed:,.1f} settings/s")

        yield report


@app.command()
@_user_errors
def energy(
    hamiltonian: Annotated[Path, typer.Argument(help="Hamiltonian file, or a molecule folder of "
                                                     "shared/data/molecules (with --encoding).")],
    encoding: Annotated[str, typer.Option(help="Molecule folders: jw, parity or bk.")] = "jw",
    scheme: Annotated[list[str] | None, typer.Option(help="uniform, biased, derandomized (repeat the option; "
                                                          "default: all three).")] = None,
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Snapshots per run (the budget).")] = 1000,
    seeds: Annotated[int, typer.Option(help="Independent runs per scheme.")] = 1,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    data: Annotated[str | None, typer.Option(help="Estimate <H>, <H^2> and Var(H) from this shadow store or "
                                                   "snapshot file instead of simulating the ground state.")
                    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every run as JSON.")] = False,
    calibration: CalibrationOpt = None,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Energy from shadows: simulated runs on the exact ground state under each scheme, or, with
    --data, the energy and its variance from measured snapshots (with --calibration: robust
    estimates; the calibration must cover the supports of H^2's terms)."""
    from shadowlab.energy import ENERGY_SCHEMES, exact_ground_state, read_hamiltonian, run_energy, summarize

    schemes = tuple(scheme) if scheme else ENERGY_SCHEMES
    h, name = read_hamiltonian(hamiltonian, encoding)
    if calibration is not None and data is None:
        raise ShadowlabError("--calibration applies to measured data: give --data")
    if data is None and (scheduler or workers or chunk_snapshots):
        raise ShadowlabError("--scheduler, --workers and --chunk-snapshots apply to measured data: give --data")
    if data is not None:
        from shadowlab.estimate.hamiltonian import estimate_energy_variance
        from shadowlab.execution import connect

        execution = make_execution(scheduler, workers, memory, chunk_snapshots)
        source = open_source(data)
        with connect(execution), _progress(source.n_snapshots, "estimating", quiet=quiet or as_json) as advance:
            result = estimate_energy_variance(source, h, level=level, calibration=load_calibration(calibration),
                                              execution=execution, progress=advance)
        if as_json:
            sys.stdout.write(result.to_json() + "\n")
        else:
            _print_table(result)
        return
    exact, state = exact_ground_state(h)
    runs = []
    failures: dict[str, str] = {}
    # One scheme failing (e.g. a derandomized plan too small to measure every term) must not hide
    # the others' results; it is reported, and the exit status says so.
    for name_of_scheme in schemes:
        try:
            runs += run_energy(h, state, exact, schemes=(name_of_scheme,), snapshots=snapshots, seeds=seeds,
                               seed=seed, level=level)
        except ShadowlabError as exc:
            failures[name_of_scheme] = str(exc)
    if not runs:
        raise ShadowlabError("; ".join(f"{k}: {v}" for k, v in failures.items()))
    if as_json:
        out.print_json(json.dumps({"hamiltonian": name, "n_qubits": h.n_qubits, "terms": len(h), "exact": exact,
                                   "runs": [r.as_dict() for r in runs], "summary": summarize(runs),
                                   "failures": failures}, default=float))
        _energy_failures(failures)
        return
    pct = f"{100 * level:g}%"
    table = Table(title=f"{name}: {h.n_qubits} qubits, {len(h)} terms, exact ground energy {exact:.8f} Ha, "
                        f"{snapshots:,} snapshots x {seeds} seed(s)")
    for col in ("scheme", "estimate (Ha)" if seeds == 1 else "mean |error| (Ha)", "std. error" if seeds == 1
                else "s.e. of mean", f"{pct} coverage" if seeds > 1 else f"{pct} interval", "time / run"):
        table.add_column(col, justify="left" if col == "scheme" else "right")
    for row in summarize(runs):
        mine = [r for r in runs if r.scheme == row["scheme"]]
        if seeds == 1:
            r = mine[0]
            table.add_row(r.scheme, f"{r.estimate:.6f} (error {r.error:.4f})", f"{r.stderr:.4f}",
                          f"[{r.ci_low:.4f}, {r.ci_high:.4f}]", f"{r.seconds:.2f} s")
        else:
            table.add_row(str(row["scheme"]), f"{row['mean_abs_error']:.4f}", f"{row['mae_stderr']:.4f}",
                          f"{row['coverage']:.0%}", f"{row['seconds_per_run']:.2f} s")
    out.print(table)
    _energy_failures(failures)


def _energy_failures(failures: dict[str, str]) -> None:
    """Name each failed scheme and exit with status 1 (the other schemes' results are printed)."""
    if failures:
        for name, reason in failures.items():
            err.print(f"[bold red]error:[/] scheme {name} failed: {escape(reason)}", soft_wrap=True)
        raise typer.Exit(1)


@app.command()
@_user_errors
def budget(
    observables: Annotated[Path | None, typer.Argument(help="Observable file (as for predict); not needed with "
                                                            "--fidelity.")] = None,
    epsilon: Annotated[float, typer.Option(help="Accuracy: every estimate within +-epsilon.")] = 0.1,
    delta: Annotated[float, typer.Option(help="Failure probability (for all observables at once).")] = 0.05,
    ensemble: Annotated[str, typer.Option(help="local_pauli or global_clifford.")] = "local_pauli",
    pilot: Annotated[Path | None, typer.Option(help="Pilot shadow data: add the plug-in figure from its "
                                                    "empirical variances.")] = None,
    plan_file: Annotated[Path | None, typer.Option("--plan", help="A biased scheme file: use its basis "
                                                                  "probabilities.")] = None,
    as_sum: Annotated[bool, typer.Option("--sum", help="One observable: the weighted sum of the file's terms.")
                      ] = False,
    fidelity: Annotated[bool, typer.Option(help="Budget for a pure-state fidelity (global Clifford).")] = False,
    qubits: Annotated[int | None, typer.Option(help="Number of qubits (files that state none).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Snapshots needed for a set of observables at accuracy epsilon and failure probability delta."""
    from shadowlab.observables import read_observables
    from shadowlab.paulis import PauliSum
    from shadowlab.plan.budget import pilot_budget, rigorous_budget

    if observables is None:
        if not fidelity:
            raise ShadowlabError("give an observable file, or --fidelity")
        obs = PauliSum.from_labels(["I"], n_qubits=qubits or 1)
    else:
        obs = read_observables(observables, n_qubits=qubits)
    probs = None
    if plan_file is not None:
        from shadowlab.plan.scheme import read_scheme

        probs = read_scheme(plan_file, n_qubits=obs.n_qubits).probabilities
    result = rigorous_budget(obs, epsilon, delta, ensemble=ensemble, probabilities=probs, as_sum=as_sum,
                             fidelity=fidelity)
    rows = dict(result.__dict__)
    if pilot is not None:
        if as_sum or fidelity or ensemble != "local_pauli":
            raise ShadowlabError("--pilot applies to lists of observables under local Pauli measurements")
        source = open_source(pilot)
        obs.check_n_qubits(source.n_qubits, what=f"pilot data {pilot}")
        n, worst = pilot_budget(obs, epsilon, delta, source)
        rows |= {"pilot_snapshots": n, "pilot_max_variance": worst}
    if as_json:
        out.print_json(json.dumps(rows, default=float))
        return
    table = Table(title=f"snapshots for {rows['n_observables']} observable(s), epsilon {epsilon:g}, "
                        f"delta {delta:g}, {ensemble}")
    table.add_column("bound")
    table.add_column("snapshots", justify="right")
    table.add_column("how", justify="left")
    table.add_row("rigorous (median of means)", f"{result.snapshots:,}",
                  f"K = {result.blocks} blocks x B = {result.block_size:,}; max shadow norm^2 "
                  f"{result.max_shadow_norm_sq:.4g}")
    if rows.get("pilot_snapshots") is not None:
        table.add_row("from pilot variances", f"{rows['pilot_snapshots']:,}",
                      f"max per-snapshot variance {rows['pilot_max_variance']:.4g}, Bonferroni normal")
    out.print(table)


@app.command("import")
@_user_errors
def import_(
    sources: Annotated[list[Path], typer.Argument(help="Snapshot file: PennyLane .npz (bits, recipes) or a pair "
                                                       "'bits.npy recipes.npy', Huang et al. text, or .npz of "
                                                       "bases/outcomes.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Store to create: a .zarr directory, or a URL "
                                                               "such as s3://bucket/prefix/name.zarr.")],
    fmt: Annotated[str | None, typer.Option("--format", help="pennylane, huang or npz (default: detect); with "
                                                             "--plan: qiskit or braket (default: detect).")] = None,
    plan_file: Annotated[Path | None, typer.Option("--plan", help="Scheme the results were measured with: the "
                                                                  "sources are then SDK result files (Qiskit "
                                                                  "JSON, or Braket task results: files or a "
                                                                  "directory).")] = None,
    chunk_snapshots: Annotated[int, typer.Option(help="Snapshots per on-disk chunk (multiple of 64).")] = 65536,
    force: ForceOpt = False,
) -> None:
    """Import snapshots, or SDK result files of a plan, into a shadow store."""
    from shadowlab.data.formats import read_snapshots
    from shadowlab.data.store import check_can_create, write_store

    if plan_file is not None:
        data = _import_results(sources, plan_file, fmt)
        check_can_create(output, force=force)
        write_store(data, output, force=force, chunk_snapshots=chunk_snapshots, provenance=data.metadata)
        err.print(f"imported {data.n_snapshots:,} snapshots of {data.n_qubits} qubits ({fmt or 'detected'} results "
                  f"of {plan_file}) into {output}")
        return
    if len(sources) > 2:
        raise ShadowlabError(f"import takes one snapshot file, or two .npy files (bits, recipes); got {len(sources)}")
    check_can_create(output, force=force)
    data = read_snapshots(sources[0] if len(sources) == 1 else (sources[0], sources[1]),
                          "pennylane" if len(sources) == 2 and fmt is None else fmt)
    write_store(data, output, force=force, chunk_snapshots=chunk_snapshots, provenance=data.metadata)
    err.print(f"imported {data.n_snapshots:,} snapshots of {data.n_qubits} qubits into {output}")


def _import_results(sources: list[Path], plan_file: Path, fmt: str | None) -> Any:
    """Outcomes of a plan from Qiskit or Braket result files, as a data set recording the plan."""
    from shadowlab.acquire.result_files import read_braket_results, read_qiskit_results
    from shadowlab.data.dataset import ShadowData
    from shadowlab.plan.scheme import read_scheme

    scheme = read_scheme(plan_file)
    if fmt is None:
        fmt = _detect_result_format(sources)
    if fmt == "qiskit":
        if len(sources) != 1:
            raise ShadowlabError(f"Qiskit results of a plan come in one JSON file; got {len(sources)} paths")
        outcomes = read_qiskit_results(sources[0], scheme)
        twirl = _saved_twirl_masks(sources[0], outcomes.shape)
    elif fmt == "braket":
        outcomes = read_braket_results(sources[0] if len(sources) == 1 else sources, scheme)
        twirl = None
    else:
        raise ShadowlabError(f"--format with --plan must be qiskit or braket, got {fmt!r}")
    index = scheme.snapshot_settings()
    meta = {"source": f"{fmt} results", "files": [str(p) for p in sources], "scheme": scheme.record(),
            "readout_twirl": twirl is not None}
    return ShadowData(scheme.settings[index], outcomes, index, meta, twirl)


def _saved_twirl_masks(path: Path, shape: tuple[int, ...]) -> Any:
    """Per-shot readout-twirl masks that shadowlab's Aer back end saved beside its results (None if absent)."""
    import numpy as np

    masks = json.loads(path.read_text()).get("metadata", {}).get("readout_twirl_masks")
    if masks is None:
        return None
    if not isinstance(masks, list) or len(masks) != shape[0] or any(
            not isinstance(m, str) or len(m) != shape[1] or set(m) - {"0", "1"} for m in masks):
        raise ShadowlabError(f"{path}: metadata.readout_twirl_masks must list one 0/1 string of {shape[1]} "
                             f"characters per shot ({shape[0]} shots)")
    return np.array([[c == "1" for c in m] for m in masks], dtype=np.uint8)


def _detect_result_format(sources: list[Path]) -> str:
    """``braket`` for directories or JSON carrying Braket's schema header, else ``qiskit``."""
    first = sources[0]
    if first.is_dir():
        return "braket"
    if not first.is_file():
        raise ShadowlabError(f"{first}: no such result file")
    head = first.read_text(encoding="utf-8", errors="replace")[:4096]
    return "braket" if "braketSchemaHeader" in head else "qiskit"


@app.command()
@_user_errors
def circuits(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="Scheme file from 'shadowlab plan'.")],
    state: Annotated[str, typer.Option(help="State: built-in spec or an OpenQASM 2/3 file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to create, one OpenQASM 3 file "
                                                                "per setting.")],
    sdk: Annotated[str, typer.Option(help="qiskit or braket: whose OpenQASM 3 dialect to write.")] = "qiskit",
    seed: Annotated[int, typer.Option(help="Seed of random built-in states (as for acquire).")] = 0,
    force: ForceOpt = False,
) -> None:
    """Write the circuit of every setting (state preparation, basis rotations, measurement) as OpenQASM 3."""
    from shadowlab.atomic import atomic_path, check_can_write
    from shadowlab.plan.scheme import read_scheme

    check_can_write(output, force=force)
    scheme = read_scheme(plan_file)
    labels = scheme.labels()
    if not Path(state).suffix:  # a built-in spec: resolve it with the seed, as acquire does
        from shadowlab.acquire.simulate import prepare_state

        state = prepare_state(state, seed=seed)  # type: ignore[assignment]
    if sdk == "qiskit":
        from shadowlab.acquire.qiskit_backend import setting_circuits_qiskit, state_circuit_qiskit

        prep = state_circuit_qiskit(state)  # checks the 'qiskit' extra first, with a clear error
        from qiskit import qasm3

        if prep.num_qubits != scheme.n_qubits:
            raise ShadowlabError(f"the plan has {scheme.n_qubits} qubits but the state has {prep.num_qubits}")

        texts = [qasm3.dumps(c) for c in setting_circuits_qiskit(prep, scheme.settings)]
    elif sdk == "braket":
        from shadowlab.acquire.braket_backend import setting_circuits_braket, state_circuit_braket

        prep = state_circuit_braket(state)
        texts = [c.to_ir("OPENQASM").source for c in setting_circuits_braket(prep, scheme.settings)]
    else:
        raise ShadowlabError(f"--sdk must be qiskit or braket, got {sdk!r}")
    # (the setting-circuit builders refuse a plan and a state of different sizes)
    with atomic_path(output, force=force) as tmp:
        tmp.mkdir()
        width = len(str(scheme.n_settings - 1))
        for g, (label, text) in enumerate(zip(labels, texts, strict=True)):
            (tmp / f"setting_{g:0{width}d}_{label}.qasm").write_text(text, encoding="utf-8")
        (tmp / "shots.txt").write_text("".join(f"setting_{g:0{width}d}_{label}.qasm {int(r)}\n"
                                               for g, (label, r) in enumerate(zip(labels, scheme.repeats,
                                                                                  strict=True))))
    err.print(f"wrote {scheme.n_settings:,} circuits ({sdk} OpenQASM 3) and shots.txt to {output}")


@app.command()
@_user_errors
def export(
    store: Annotated[str, typer.Argument(help="Shadow store to export (a path or a URL such as s3://...).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str | None, typer.Option("--format", help="pennylane, huang or npz (default: from extension).")
                   ] = None,
    force: ForceOpt = False,
) -> None:
    """Export a shadow store to PennyLane, Huang et al. text or plain npz format."""
    from shadowlab.atomic import check_can_write
    from shadowlab.data.formats import write_snapshots

    check_can_write(output, force=force)
    data = open_source(store).load()
    written = write_snapshots(data, output, fmt, force=force)
    err.print(f"exported {data.n_snapshots:,} snapshots to {output}")
    if data.twirl is not None and written != "npz":
        err.print("[yellow]note: this format has no place for readout-twirl masks; the outcomes written are the "
                  "corrected ones, and the file reads back as untwirled data (use npz to keep the masks)[/]")


@app.command()
@_user_errors
def info(
    store: Annotated[str, typer.Argument(help="Shadow store (a path or a URL such as s3://...), or any importable "
                                              "snapshot file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Summarize a shadow data set: sizes, settings, basis balance, provenance."""
    from shadowlab.data.clifford_store import ENSEMBLE_GLOBAL_CLIFFORD, CliffordStore
    from shadowlab.data.store import ShadowStore, read_store_metadata
    from shadowlab.twocopy.data import ENSEMBLE_BELL
    from shadowlab.twocopy.store import BellStore

    ensemble = (read_store_metadata(store) or {}).get("ensemble")
    if ensemble in (ENSEMBLE_GLOBAL_CLIFFORD, ENSEMBLE_BELL):
        summary = (CliffordStore if ensemble == ENSEMBLE_GLOBAL_CLIFFORD else BellStore).open(store).summary()
        if as_json:
            out.print_json(json.dumps(summary, default=float))
        else:
            table = Table(title=f"{summary['ensemble']} data set {store}", show_header=False)
            for key, value in summary.items():
                table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
            out.print(table)
        return
    source = open_source(store)
    if isinstance(source, ShadowStore):
        from shadowlab.acquire.run import acquisition_status

        summary = source.summary()
        status = acquisition_status(source)
        if status is not None:
            summary["acquisition"] = (f"{status['snapshots_done']:,} of {status['snapshots_total']:,} snapshots, "
                                      f"{status['settings_done']:,} of {status['settings_total']:,} settings"
                                      + ("" if status["complete"] else " (incomplete: rerun the same 'acquire' "
                                                                       "command to resume)"))
    else:
        import numpy as np

        counts = np.bincount(source.bases.ravel(), minlength=3)[:3] / max(source.bases.size, 1)
        summary = {"path": str(store), "n_qubits": source.n_qubits, "n_snapshots": source.n_snapshots,
                   "n_settings": source.n_settings,
                   "basis_fractions": dict(zip("XYZ", counts.tolist(), strict=True)),
                   "provenance": source.metadata}
    if as_json:
        out.print_json(json.dumps(summary, default=float))
        return
    table = Table(title=f"shadow data set {store}", show_header=False)
    for key, value in summary.items():
        if key == "basis_fractions":
            value = "  ".join(f"{k} {v:.3f}" for k, v in value.items())
        elif key == "provenance":
            value = json.dumps(value)
        elif key == "disk_bytes":
            value = f"{value / 2**20:.2f} MiB"
        table.add_row(key, str(value))
    out.print(table)


@app.command()
@_user_errors
def predict(
    data: Annotated[str, typer.Argument(help="Shadow store or importable snapshot file.")],
    observables: Annotated[Path | None, typer.Argument(help="Observable file (reference 'k P q ...' format, "
                                                            "one term per line, or a molecule Hamiltonian).")] = None,
    estimator: Annotated[str, typer.Option(help="auto (matched for derandomized or custom schemes, else mean), "
                                           "mean, matched or mom (median of means).")] = "auto",
    blocks: Annotated[int | None, typer.Option(help="Median-of-means blocks K (default 2 ln(2M/(1-level))).")
                      ] = None,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    interval: Annotated[str, typer.Option(help="normal, or hkp (rigorous median-of-means bound).")] = "normal",
    sum_: Annotated[bool, typer.Option("--sum", help="Also estimate the weighted sum of the observables "
                                                     "(e.g. an energy).")] = False,
    all_pairs: Annotated[bool, typer.Option("--all-pairs", help="All two-point correlators P_i Q_j (fast path).")
                         ] = False,
    skip_unmatched: Annotated[bool, typer.Option("--skip-unmatched", help="Drop observables no snapshot matches "
                                                                          "instead of failing.")] = False,
    obs_format: Annotated[str | None, typer.Option(help="Observable file format (default: detect).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write results here instead of stdout.")
                      ] = None,
    max_weight: Annotated[int | None, typer.Option("--max-weight", help="All Pauli strings of weight 1..K "
                                                   "(instead of an observable file).")] = None,
    calibration: CalibrationOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    memory: MemoryOpt = DEFAULT_MEMORY,
    chunk_snapshots: ChunkOpt = None,
) -> None:
    """Predict expectation values, with standard errors and confidence intervals.

    Large data sets and observable sets run out of core within --memory, and on a Dask cluster with
    --scheduler or --workers (same results as in this process)."""
    from shadowlab.estimate.pauli import estimate_paulis, estimate_sum, estimate_two_point
    from shadowlab.estimate.results import OUTPUT_FORMATS
    from shadowlab.execution import connect
    from shadowlab.observables import read_observables
    from shadowlab.paulis import PauliArrays

    if fmt not in OUTPUT_FORMATS:
        raise ShadowlabError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if output is not None and fmt == "table":
        raise ShadowlabError("--output needs --format csv or json")
    if output is not None and output.exists() and not force:
        raise ShadowlabError(f"{output} already exists; pass --force to overwrite it")
    if (observables is not None) + all_pairs + (max_weight is not None) != 1:
        raise ShadowlabError("give one of: an observable file, --all-pairs, --max-weight K")
    if sum_ and observables is None:
        raise ShadowlabError("--sum needs an observable file (the weighted sum of its terms)")
    execution = make_execution(scheduler, workers, memory, chunk_snapshots)
    source = open_source(data)
    cal = load_calibration(calibration)
    on_unmatched = "omit" if skip_unmatched else "raise"
    options = {"estimator": estimator, "n_blocks": blocks, "level": level, "interval": interval,
               "calibration": cal, "execution": execution}
    # One cluster (when distributed) for every pass of the command.
    with connect(execution), _progress(source.n_snapshots, "estimating", quiet=quiet) as advance:
        if all_pairs:
            result = estimate_two_point(source, on_unmatched=on_unmatched, progress=advance, **options)
        elif max_weight is not None:
            result = estimate_paulis(source, PauliArrays.up_to_weight(source.n_qubits, max_weight),
                                     on_unmatched=on_unmatched, progress=advance, **options)
        else:
            obs = read_observables(observables, obs_format, n_qubits=source.n_qubits)
            obs.check_n_qubits(source.n_qubits, what=f"the data set {data}")
            result = estimate_paulis(source, obs, on_unmatched=on_unmatched, progress=advance, **options)
            if sum_:
                result = _append(result, estimate_sum(source, obs, label="SUM", **options))
    if result.omitted:
        err.print(f"[yellow]skipped {len(result.omitted)} observable(s) that no snapshot matches[/]")
    if fmt == "table":
        _print_table(result)
    elif output is None:
        sys.stdout.write(result.to_csv() if fmt == "csv" else result.to_json() + "\n")
    else:
        result.write(output, fmt, force=force)
        err.print(f"wrote {len(result)} estimates to {output}")


def _append(result: Any, extra: Any) -> Any:
    import dataclasses

    import numpy as np

    return dataclasses.replace(
        result,
        labels=result.labels + extra.labels,
        **{f: np.concatenate([getattr(result, f), getattr(extra, f)])
           for f in ("estimate", "stderr", "ci_low", "ci_high", "n_matched")},
    )


def _print_table(result: Any) -> None:
    pct = f"{100 * result.level:g}%"
    table = Table(title=f"{result.estimator} estimator, {result.interval} {pct} intervals, "
                        f"{result.n_snapshots:,} snapshots" + (f", K={result.n_blocks}" if result.n_blocks > 1 else "")
                        + (", calibrated (robust shadows)" if result.calibrated else ""))
    for col in ("observable", "estimate", "stderr", f"{pct} interval", "matched"):
        table.add_column(col, justify="left" if col == "observable" else "right")
    for r in result.rows():
        table.add_row(r["observable"], f"{r['estimate']:+.5f}", f"{r['stderr']:.5f}",
                      f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", f"{r['n_matched']:,}")
    out.print(table)


@app.command()
@_user_errors
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo's plot and tables "
                                                               "(replaced on each run).")] = Path("shadowlab-demo"),
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Snapshots per experiment.")] = 20000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 2026,
    quiet: QuietOpt = False,
) -> None:
    """Run a complete experiment: two states, thousands of predictions, checked against exact values."""
    from shadowlab.demo import run_demo

    run_demo(output, n_snapshots=snapshots, seed=seed, console=out, quiet=quiet)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m shadowlab``."""
    app()


# Commands of later stages live in their own modules and register themselves on `app`.
from shadowlab import cli_certify, cli_codes, cli_entropy, cli_fidelity, cli_learn, cli_noise, cli_twocopy  # noqa: E402, F401
