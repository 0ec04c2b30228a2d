"""``shadowlab learn generate``: families of ground states with classical shadows.

Importing this module registers the command on :data:`shadowlab.cli_learn.learn_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shadowlab.cli import ForceOpt, QuietOpt, _progress, _user_errors, err
from shadowlab.cli_learn import learn_app
from shadowlab.errors import ShadowlabError


def _parse_range(text: str) -> tuple[float, float]:
    parts = text.replace(",", ":").split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ShadowlabError(f"--random-range must be LOW:HIGH (e.g. 0:2), got {text!r}") from None
    return low, high


@learn_app.command("generate")
@_user_errors
def generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Family to write (Zarr directory).")],
    model: Annotated[str, typer.Option(help="tfim (-ZZ - hX), xxz (J(XX+YY+Delta ZZ), J1/J2 alternating) "
                                            "or heisenberg (J(XX+YY+ZZ)).")],
    lattice: Annotated[str, typer.Option(help="chain:N (open), ring:N (periodic) or grid:LxW (open).")],
    grid: Annotated[str | None, typer.Option(help="Grid over uniform parameters: 'h=0.2:2.0:10' (start:stop:num, "
                                                  "inclusive) or 'J2=0.5,1,1.5;Delta=0.5' (';' = product). "
                                                  "Parameters: tfim h; xxz J1, J2, Delta; heisenberg J.")
                ] = None,
    random: Annotated[int | None, typer.Option("--random", help="Number of random instances: every parameter "
                                                                "of the form uniform in --random-range "
                                                                "(local form: per-edge J, per-site h).")
                      ] = None,
    form: Annotated[str | None, typer.Option(help="Parameter form: uniform or local (default: uniform for "
                                                  "--grid, local for --random).")] = None,
    random_range: Annotated[str, typer.Option(help="LOW:HIGH of the random parameters.")] = "0:2",
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Snapshots per instance.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of everything random (parameters, bases, outcomes).")] = 0,
    method: Annotated[str, typer.Option(help="exact (<= 20 qubits), dmrg (open chains) or auto (exact up to 16 "
                                             "qubits and on rings/grids, DMRG on longer chains).")] = "auto",
    max_bond: Annotated[int, typer.Option(help="DMRG bond-dimension cap.")] = 64,
    engine: Annotated[str, typer.Option(help="DMRG engine: quimb (quimb's DMRG2, needs the learn extra) or numpy "
                                             "(shadowlab's own, an independent cross-check).")] = "quimb",
    workers: Annotated[int, typer.Option(help="Processes generating instances in parallel (results do not "
                                              "depend on it).")] = 1,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate ground states of a model across parameters, with shadows and exact correlations."""
    from shadowlab.atomic import check_can_write
    from shadowlab.learn.generate import generate_family

    check_can_write(output, force=force)
    if (grid is None) == (random is None):
        raise ShadowlabError("give --grid (e.g. 'h=0.2:2.0:10') or --random N (one of them)")
    if random is not None and random < 1:
        raise ShadowlabError(f"--random must be >= 1, got {random}")
    if snapshots < 1:
        raise ShadowlabError(f"--snapshots must be >= 1, got {snapshots}")
    kwargs = {"grid": grid} if grid is not None else {"n_random": random,
                                                        "random_range": _parse_range(random_range)}
    total = _count_instances(grid, random)
    with _progress(total, "instances", quiet=quiet) as advance:
        family = generate_family(model, lattice, n_snapshots=snapshots, form=form, seed=seed, method=method,
                                 max_bond=max_bond, engine=engine, workers=workers, progress=advance, **kwargs)
    family.save(output, force=force)
    meta = family.metadata
    how = f"dmrg, {meta['dmrg']['engine']}" if "dmrg" in meta else meta["method"]
    err.print(f"wrote {family.n_instances} {meta['model']} ground states on {meta['lattice']} "
              f"({how}), {family.n_snapshots:,} snapshots each, to {output}")
    n_deg = meta.get("exact_diagonalization", {}).get("n_degenerate", 0)
    if n_deg:
        err.print(f"[yellow]warning:[/] {n_deg} instance(s) have a (near-)degenerate ground space; their state is "
                  "one vector of it (see metadata exact_diagonalization.degenerate)")
    dmrg = meta.get("dmrg")
    if dmrg and not all(dmrg["converged"]):
        err.print(f"[yellow]warning:[/] DMRG did not converge for {dmrg['converged'].count(False)} instance(s); "
                  "raise --max-bond or check metadata dmrg")


def _count_instances(grid: str | None, random: int | None) -> int:
    """Number of instances a --grid or --random request makes (for the progress bar)."""
    if grid is None:
        return int(random or 0)
    from shadowlab.learn.generate import parse_grid

    count = 1
    for values in parse_grid(grid).values():
        count *= values.size
    return count
