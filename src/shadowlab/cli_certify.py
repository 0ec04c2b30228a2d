"""The ``shadowlab certify`` command: shadow-overlap certification of a pure target state.

Registered on :data:`shadowlab.cli.app` when imported. The exit status is 0 whether or not the
state is certified (1 only for errors); the verdict is printed (and is the ``verdict`` key of
the JSON output).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from shadowlab.cli import ForceOpt, QuietOpt, _user_errors, app, err, out
from shadowlab.errors import ShadowlabError

_VERDICT_STYLE = {"certified": "bold green", "rejected": "bold red", "not certifiable": "bold yellow"}


@app.command()
@_user_errors
def certify(
    target: Annotated[str, typer.Option("--target", "-t", help="Target state: built-in spec (cluster:24, "
                                                              "cluster2d:5x5, random:8, ...) or a .stim/.npy/.qasm "
                                                              "file. Clifford specs and .stim files are stabilizer "
                                                              "targets (any size).")],
    prepared: Annotated[str | None, typer.Option("--prepared", "-p", help="What the simulated device prepares "
                                                                          "(same forms as --target).")] = None,
    rounds_file: Annotated[Path | None, typer.Option("--rounds-file", help="Certify saved rounds (.npz from "
                                                                           "--save-rounds) instead of simulating.")
                           ] = None,
    rounds: Annotated[int, typer.Option("--rounds", "-n", help="Rounds to simulate (copies measured).")] = 100000,
    seed: Annotated[int, typer.Option(help="Seed of the simulation (and of random:N states).")] = 0,
    noise: Annotated[float, typer.Option(help="Per-qubit noise probability after preparation.")] = 0.0,
    noise_kind: Annotated[str, typer.Option(help="depolarize or dephase.")] = "depolarize",
    level: Annotated[float, typer.Option(help="One-sided confidence level.")] = 0.95,
    threshold: Annotated[float, typer.Option(help="Fidelity to certify.")] = 0.9,
    method: Annotated[str, typer.Option(help="Confidence bound: hoeffding (rigorous), bernstein (rigorous), "
                                             "normal (asymptotic).")] = "hoeffding",
    save_rounds: Annotated[Path | None, typer.Option("--save-rounds", help="Also save the simulated rounds "
                                                                           "(.npz).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Certify that a state has fidelity above a threshold with a target (Huang-Preskill-Soleimanifar).

    Each round measures one qubit in a random Pauli basis and the others in Z; the fidelity
    bound is F >= 1 - tau (1 - shadow overlap), tau the relaxation time of the target.
    """
    import numpy as np

    from shadowlab.acquire.certify_sampling import CertificationRounds, sample_certification_rounds
    from shadowlab.acquire.simulate import prepare_state
    from shadowlab.atomic import check_can_write
    from shadowlab.estimate.certify import certify as run_certify

    if fmt not in ("table", "json"):
        raise ShadowlabError(f"--format must be table or json, got {fmt!r}")
    if (prepared is None) == (rounds_file is None):
        raise ShadowlabError("give --prepared (simulate rounds) or --rounds-file (saved rounds), not both")
    if rounds_file is not None and save_rounds is not None:
        raise ShadowlabError("--save-rounds only applies to simulated rounds (--prepared)")
    if rounds_file is not None and noise:
        raise ShadowlabError("--noise only applies to simulated rounds (--prepared); saved rounds carry their own")
    if save_rounds is not None:
        check_can_write(save_rounds, force=force)
    target_state = prepare_state(target, seed=seed)
    target_obj = target_state.circuit if target_state.circuit is not None else target_state.statevector
    if rounds_file is not None:
        data = CertificationRounds.load(rounds_file)
        source = str(rounds_file)
    else:
        assert prepared is not None
        prep = prepare_state(prepared, seed=seed)
        prep_obj = prep.circuit if prep.circuit is not None else prep.statevector
        if prep.n_qubits != target_state.n_qubits:
            from shadowlab.errors import QubitCountMismatchError

            raise QubitCountMismatchError(f"--prepared {prepared} has {prep.n_qubits} qubits but --target "
                                          f"{target} has {target_state.n_qubits}")
        if not quiet:
            err.print(f"simulating {rounds:,} rounds of {prepared} ({prep.simulator})", highlight=False)
        data = sample_certification_rounds(prep_obj, rounds, np.random.default_rng(seed), noise=noise,
                                           noise_kind=noise_kind)
        source = f"{prepared} (simulated, seed {seed}" + (f", {noise_kind} noise {noise:g})" if noise else ")")
        if save_rounds is not None:
            data.save(save_rounds, force=force)
            if not quiet:
                err.print(f"wrote {data.n_rounds:,} rounds to {save_rounds}", highlight=False)
    result = run_certify(data, target_obj, level=level, threshold=threshold, method=method)
    if fmt == "json":
        payload = {"target": target, "data": source, **result.to_dict()}
        out.print_json(json.dumps(payload))
        return
    table = Table(title=f"certification of {target} ({result.n_qubits} qubits)", show_header=False)
    tau = result.relaxation_time
    rows = [
        ("data", source),
        ("rounds", f"{result.n_rounds:,}"),
        ("shadow overlap", f"{result.shadow_overlap:.5f} +- {result.standard_error:.5f}"),
        ("relaxation time", f"{tau:.4g}" if math.isfinite(tau) else "inf (not certifiable)"),
    ]
    for name, value in result.fidelity_lower_bounds.items():
        mark = " (used)" if name == result.method else ""
        rows.append((f"fidelity >= ({name}, {result.level:.0%}){mark}",
                     f"{value:.4f}  [overlap >= {result.overlap_lower_bounds[name]:.5f}]"))
    rows.append(("threshold", f"{result.threshold:g}"))
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    style = _VERDICT_STYLE[result.verdict]
    out.print(f"verdict: [{style}]{result.verdict.upper()}[/] - {escape(result.reason)}", highlight=False,
              soft_wrap=True)
