"""``shadowlab learn ...``: machine learning across related systems from classical shadows.

Registered on :data:`shadowlab.cli.app` as the ``learn`` command group when imported. The
commands of this group live in this module and in the ``cli_learn_*`` modules imported at the
bottom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shadowlab.cli import ForceOpt, QuietOpt, _check_outputs, _progress, _user_errors, _write_json, app, err, out
from shadowlab.errors import ShadowlabError

learn_app = typer.Typer(
    name="learn",
    help="Learn across related systems: predict properties of unmeasured states from shadows of others, "
         "classify phases (Huang et al., Science 2022; Lewis et al., Nat. Commun. 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(learn_app, name="learn")


def _model_list(text: str) -> list[str]:
    """The comma-separated model names of ``--model``, checked before any work."""
    from shadowlab.learn.models import MODELS

    kinds = [m.strip() for m in text.split(",") if m.strip()]
    if not kinds:
        raise ShadowlabError("--model: give at least one model")
    for kind in kinds:
        if kind not in MODELS:
            raise ShadowlabError(f"--model: unknown model {kind!r}; choose from {', '.join(MODELS)}")
    return kinds


def _load_family(path: Path, rows: int | None) -> Any:
    """A saved family, or (with ``--rows``) the heisenberg-2d data folder read directly."""
    from shadowlab.data.family import ShadowFamily
    from shadowlab.data.heisenberg import load_heisenberg_2d

    if rows is not None:
        return load_heisenberg_2d(path, rows)
    if path.is_dir() and not (path / "zarr.json").exists() and any(path.glob("heisenberg_*_couplings.txt")):
        raise ShadowlabError(f"{path} is the heisenberg-2d data folder: say which grid with --rows L (4 to 9)")
    return ShadowFamily.load(path)


@learn_app.command("import-heisenberg")
@_user_errors
def import_heisenberg(
    folder: Annotated[Path, typer.Argument(help="The heisenberg-2d data folder (heisenberg_LxW_id*_*.txt files).")],
    rows: Annotated[int, typer.Option("--rows", "-L", help="Grid rows L (4 to 9); n = 5 L qubits.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the family (a Zarr folder) here.")],
    force: ForceOpt = False,
) -> None:
    """Read the 2D random-Heisenberg shadows of Huang et al. (2022) into a shadow family."""
    from shadowlab.atomic import check_can_write
    from shadowlab.data.heisenberg import load_heisenberg_2d

    check_can_write(output, force=force)
    family = load_heisenberg_2d(folder, rows)
    family.save(output, force=force)
    out.print(f"wrote {output}: {family.n_instances} instances x {family.n_snapshots} snapshots of "
              f"{family.n_qubits} qubits, {family.parameters.shape[1]} couplings each")


@learn_app.command("fit")
@_user_errors
def fit(
    family_path: Annotated[Path, typer.Argument(
        metavar="FAMILY", help="A shadow family (from 'learn generate' or 'learn import-heisenberg'), or the "
                               "heisenberg-2d folder with --rows.")],
    rows: Annotated[int | None, typer.Option("--rows", "-L", help="Read the heisenberg-2d folder's L x 5 grid."
                                             )] = None,
    models: Annotated[str, typer.Option("--model", "-m", help="Models, comma-separated: rff, gaussian, dirichlet.")
                      ] = "rff,gaussian,dirichlet",
    target: Annotated[str, typer.Option(help="correlations (1/3 <XX+YY+ZZ>), xx, yy, zz, purity (of each pair) or "
                                             "energy (<H> of each instance).")] = "correlations",
    pairs: Annotated[str, typer.Option(help="edges (interaction edges) or all (every qubit pair).")] = "edges",
    snapshots: Annotated[int | None, typer.Option("--snapshots", "-n", help="Snapshots per instance for the labels "
                                                  "(default: all).")] = None,
    test_fraction: Annotated[float, typer.Option(help="Fraction of instances held out.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the split, folds and random features.")] = 0,
    cv: Annotated[int, typer.Option(help="Cross-validation folds for the hyperparameters.")] = 4,
    fast: Annotated[bool, typer.Option("--fast", help="Smaller hyperparameter grids.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel fits (-1: all cores); results do not "
                                      "depend on it.")] = 1,
    plot: Annotated[Path | None, typer.Option(help="Write a predicted-vs-exact correlation map here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics and predictions here.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train on the shadows of some instances, predict the held-out ones, print the errors."""
    from shadowlab.learn.evaluate import count_fits, evaluate_model, pair_targets

    kinds = _model_list(models)
    _check_outputs(json_out, force=force, figures=(plot,))
    family = _load_family(family_path, rows)
    if snapshots is not None and not 1 <= snapshots <= family.n_snapshots:
        raise ShadowlabError(f"--snapshots must be in 1..{family.n_snapshots} (the family's snapshots per instance), "
                             f"got {snapshots}")
    with _progress(family.n_instances, "shadow labels", quiet=quiet) as advance:
        targets = pair_targets(family, target=target, n_snapshots=snapshots, pairs=pairs, progress=advance)
    results = []
    for kind in kinds:
        total = count_fits(family, kind, cv=cv, fast=fast, test_fraction=test_fraction)
        with _progress(total, f"{kind} cross-validation", quiet=quiet) as adv:
            results.append(evaluate_model(family, kind, targets=targets, test_fraction=test_fraction, seed=seed,
                                          cv=cv, fast=fast, progress=adv, n_jobs=jobs))
    r0 = results[0]
    what = f"{target} on {len(targets.pairs)} pairs" if len(targets.pairs) else f"{target} of each instance"
    table = Table(title=f"{family.metadata.get('lattice', '?')} {family.metadata.get('model', '')}: {what}, "
                        f"{len(r0.train_index)} training / {len(r0.test_index)} held-out instances, "
                        f"{targets.n_snapshots} snapshots each")
    for col in ("model", "RMSE vs exact", "RMSE vs held-out labels", "debiased", "fit s"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r.model, "-" if r.rmse is None else f"{r.rmse:.4f}", f"{r.rmse_vs_labels:.4f}",
                      f"{r.rmse_debiased:.4f}", f"{r.fit_seconds:.1f}")
    if r0.label_rmse is not None:
        table.add_row("(shadow labels)", f"{r0.label_rmse:.4f}", "", "", "")
    out.print(table)
    if plot is not None:
        from shadowlab.plots import correlation_map_figure

        correlation_map_figure(family, results, plot, force=force)
        err.print(f"wrote {plot}")
    if json_out is not None:
        _write_json(json_out, {"family": str(family_path), "results": [
            {**r.summary(), "pairs": r.pairs.tolist(), "test_instances": family.instance_ids[r.test_index].tolist(),
             "rmse_per_pair": None if r.rmse_per_pair is None else r.rmse_per_pair.tolist(),
             "predictions": r.predictions.tolist()} for r in results]}, force)


@learn_app.command("tfim-scan")
@_user_errors
def tfim_scan(
    qubits: Annotated[int, typer.Option("--qubits", "-N", help="Qubits of the open TFIM chain (exact, at most 20).")
                      ] = 12,
    fields: Annotated[str, typer.Option(help="Transverse fields: start:stop:count.")] = "0.3:2.0:40",
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Snapshots per field.")] = 500,
    test_fraction: Annotated[float, typer.Option(help="Fraction of fields held out.")] = 0.5,
    model: Annotated[str, typer.Option("--model", "-m", help="rff, gaussian or dirichlet.")] = "gaussian",
    seed: Annotated[int, typer.Option(help="Seed of the data, split and model.")] = 0,
    plot: Annotated[Path | None, typer.Option(help="Write the correlation-vs-field figure here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Learn TFIM correlation functions across the critical point from shadows; compare with the labels' own error."""
    from shadowlab.learn.generate import parse_grid
    from shadowlab.learn.tfim_scan import tfim_scan_figure, tfim_scan_study

    _model_list(model)
    try:
        grid = parse_grid(f"h={fields}")["h"]
    except ShadowlabError as exc:
        raise ShadowlabError(f"--fields: expected start:stop:count (e.g. 0.3:2.0:40), got {fields!r} ({exc})"
                             ) from None
    _check_outputs(json_out, force=force, figures=(plot,))
    with _progress(len(grid), "ground states", quiet=quiet) as advance:
        scan = tfim_scan_study(qubits, fields=grid, n_snapshots=snapshots, test_fraction=test_fraction, model=model,
                               seed=seed, progress=advance)
    summary = scan.summary()
    r0 = next(iter(scan.results.values()))
    table = Table(title=f"TFIM chain of {qubits} qubits, h = {grid.min():g}..{grid.max():g}: {model} model, all "
                        f"{len(r0.pairs)} pairs, {len(r0.test_index)} of {len(grid)} fields held out, {snapshots} "
                        "snapshots per field")
    for col in ("target", "model RMSE vs exact", "shadow-label RMSE vs exact", "within label error", "fit s"):
        table.add_column(col, justify="right")
    for target, row in summary.items():
        table.add_row(target.upper(), f"{row['rmse']:.4f}", f"{row['label_rmse']:.4f}",
                      "yes" if row["within_label_error"] else "no", f"{row['fit_seconds']:.1f}")
    out.print(table)
    if plot is not None:
        tfim_scan_figure(scan, plot, force=force)
        err.print(f"wrote {plot}")
    if json_out is not None:
        _write_json(json_out, {"qubits": qubits, "fields": grid.tolist(), "snapshots": snapshots,
                               "results": summary}, force)

# Commands of this group that live in their own modules register themselves on `learn_app`.
from shadowlab import cli_learn_generate, cli_learn_phases  # noqa: E402, F401
