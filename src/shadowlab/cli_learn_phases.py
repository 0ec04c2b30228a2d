"""``shadowlab learn phases``: unsupervised classification of topological vs trivial phases.

Registers the ``phases`` command on :data:`shadowlab.cli_learn.learn_app` when imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shadowlab.cli import ForceOpt, QuietOpt, _check_outputs, _int_list, _progress, _user_errors, _write_json, err, out
from shadowlab.cli_learn import learn_app
from shadowlab.errors import ShadowlabError


@learn_app.command("phases")
@_user_errors
def phases(
    size: Annotated[int, typer.Option("--size", "-L", help="Torus size L (2 L^2 qubits; 10 gives 200).")] = 10,
    depths: Annotated[str, typer.Option(help="Depths of the random local Clifford circuits, comma-separated.")
                      ] = "0,1,2,3,4",
    states: Annotated[int, typer.Option(help="States per depth (half toric code, half trivial).")] = 20,
    snapshots: Annotated[int, typer.Option(help="Random-Pauli snapshots per state.")] = 500,
    gamma: Annotated[float, typer.Option(help="Inner scale gamma of the shadow kernel.")] = 1.0,
    tau: Annotated[float, typer.Option(help="Outer scale tau: kernel exp(tau k), normalized (a Gaussian in the "
                                            "shadow-kernel feature distance); 0 = the plain inner kernel.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of the study (circuits, bases and outcomes).")] = 2022,
    plot: Annotated[Path | None, typer.Option(help="Write the PC1/PC2 embedding figure here (.png/.pdf).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full results (AUCs, timings, "
                                                                 "embeddings, kernels) here.")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Toric code vs trivial states under shallow random circuits: kernel PCA of the shadow kernel
    (Huang et al., Science 2022), AUC of the first principal component per depth."""
    from shadowlab.learn.phases import phase_classification_study

    _check_outputs(json_out, force=force, figures=(plot,))  # refuse before any work
    depth_values = _int_list(depths, "--depths", minimum=0)
    if tau < 0:
        raise ShadowlabError(f"--tau must be >= 0 (0: the plain inner kernel), got {tau}")
    with _progress(len(depth_values), f"phases, L = {size}", quiet=quiet) as advance:
        study = phase_classification_study(size, depth_values, states, snapshots, gamma=gamma,
                                           tau=tau if tau > 0 else None, normalize=tau > 0, seed=seed,
                                           progress=lambda _msg: advance(1))
    kernel = f"normalized exp({tau:g} k)" if tau > 0 else "inner kernel k"
    table = Table(title=f"toric code vs trivial, {study.n_qubits} qubits, {states} states x {snapshots:,} snapshots, "
                        f"gamma = {gamma:g}, {kernel}")
    for col in ("depth", "AUC (PC1)", "AUC inner kernel", "kernel s", "sampling s"):
        table.add_column(col, justify="right")
    for r in study.results:
        table.add_row(str(r.depth), f"{r.auc:.3f}", f"{r.auc_inner:.3f}", f"{r.kernel_seconds:.2f}",
                      f"{r.sample_seconds:.2f}")
    out.print(table)
    if plot is not None:
        from shadowlab.plots import phase_embedding_figure

        phase_embedding_figure(study, plot, force=force)
        err.print(f"wrote {plot}")
    if json_out is not None:
        _write_json(json_out, study.to_dict(), force)
