"""The ``shadowlab surface-code`` command: shadows of a noisy surface-code state, checked against stim.

Registered on :data:`shadowlab.cli.app` when imported. The work is done by
:func:`shadowlab.estimate.stabilizers.surface_code_experiment`; this module parses options,
prints the tables and writes the JSON report and the stabilizer map.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from shadowlab.cli import ForceOpt, QuietOpt, _check_outputs, _progress, _user_errors, _write_json, app, err, out
from shadowlab.errors import ShadowlabError

if TYPE_CHECKING:
    from shadowlab.estimate.stabilizers import SurfaceCodeExperiment


@app.command("surface-code")
@_user_errors
def surface_code(
    distance: Annotated[int, typer.Option("--distance", "-d", help="Code distance (odd, >= 3).")] = 5,
    noise: Annotated[str, typer.Option("--noise", help="Device noise, e.g. 'depolarizing=0.003,p01=0.02,p10=0.05': "
                                                       "DEPOLARIZE1(p) after every 1-qubit gate and on the "
                                                       "measurement layer, DEPOLARIZE2(p) after every 2-qubit "
                                                       "gate, readout flips 0->1 and 1->0.")
                 ] = "depolarizing=0.001",
    twirl: Annotated[bool, typer.Option("--twirl/--no-twirl", help="Readout twirling (needed for asymmetric "
                                                                   "readout to be calibrated away).")] = True,
    logical: Annotated[str, typer.Option("--logical", help="Code state: 0 (|0_L>) or + (|+_L>).")] = "0",
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Snapshots of the code state.")] = 200_000,
    calibration_snapshots: Annotated[int | None, typer.Option(
        "--calibration-snapshots", help="Snapshots of |0...0> for the robust-shadow calibration (default: "
                                        "--snapshots); only used when the measurement is noisy.")] = None,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the simulation (data and calibration).")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON report here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the stabilizer map (estimated error rate per "
                                                   "stabilizer) here (.png/.pdf/.svg).")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Prepare a rotated surface-code state under circuit noise, estimate every stabilizer and both
    logicals from noisy classical shadows, and compare with stim's exact noisy values.

    Reports, per stabilizer, the violation probability (1 - <S>)/2 and the circuit-noise rate p
    that would explain the estimate, plus a joint fit of p over all stabilizers.
    """
    from shadowlab.acquire.codes import rotated_surface_code
    from shadowlab.acquire.noise import parse_noise_spec
    from shadowlab.estimate.stabilizers import surface_code_experiment

    _check_outputs(output, force=force, figures=(plot,))  # refuse before any work
    rotated_surface_code(distance)  # validates the distance
    if logical not in ("0", "+"):
        raise ShadowlabError(f"--logical must be 0 or +, got {logical!r}")
    if snapshots < 2:
        raise ShadowlabError(f"--snapshots must be >= 2, got {snapshots}")
    if calibration_snapshots is not None and calibration_snapshots < 2:
        raise ShadowlabError(f"--calibration-snapshots must be >= 2, got {calibration_snapshots}")
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"--level must lie strictly between 0 and 1, got {level:g}")
    model = parse_noise_spec(noise)
    if model.p2 != model.depolarizing:
        raise ShadowlabError("--noise: the surface-code experiment uses one circuit-noise rate for one- and "
                             "two-qubit gates; leave two_qubit_depolarizing out")
    p, readout_p01, readout_p10 = model.depolarizing, float(model.readout_p01), float(model.readout_p10)
    if not quiet and model.readout_p01 != model.readout_p10 and not twirl:
        err.print("note: asymmetric readout without twirling biases the estimates (a |0...0> calibration only "
                  "sees 0 -> 1 flips); use --twirl", highlight=False)
    with _progress(snapshots, f"surface code d={distance}: sampling", quiet=quiet) as advance:
        result = surface_code_experiment(
            distance, p, logical=logical, readout_p01=readout_p01, readout_p10=readout_p10,
            readout_twirl=twirl, n_snapshots=snapshots, n_calibration_snapshots=calibration_snapshots, seed=seed,
            level=level, progress=advance)
    _print_report(result)
    if plot is not None:
        from shadowlab.plots import stabilizer_map_figure

        state = "|0_L>" if logical == "0" else "|+_L>"
        stabilizer_map_figure(
            result.code, result.rates.p_hat, plot, force=force,
            title=f"surface code d={distance}, {state}, circuit noise p={p:g}: estimated p per stabilizer\n"
                  f"(joint fit {result.rates.p_fit:.2g} ± {result.rates.p_fit_stderr:.1g}; {snapshots:,} snapshots)",
            label="estimated circuit-noise rate p_hat", vmin=0.0)
        err.print(f"wrote {plot}")
    if output is not None:
        _write_json(output, result.to_dict(), force)


def _print_report(result: SurfaceCodeExperiment) -> None:
    """Per-stabilizer table, logicals and the summary, on stdout."""
    r = result
    code, est, exact, rates, noise = r.code, r.estimates, r.exact, r.rates, r.noise
    z, inside = r.z_scores, r.inside
    readout = f"readout {noise.readout_p01:g}/{noise.readout_p10:g}" + (" twirled" if r.readout_twirl else "")
    table = Table(title=f"d={code.distance} |{r.logical}_L>, circuit p={noise.depolarizing:g}, {readout}, "
                        f"{'robust' if r.calibrated else 'plain'} shadows")
    for col in ("check", "w", "estimate", "exact", "z", "eps", f"p_hat [{est.level:.0%}]"):
        table.add_column(col, justify="right")
    m = code.n_stabilizers
    for i in range(len(est)):
        mark = "" if inside[i] else "*"
        row = [est.labels[i], str(code.stabilizers[i].weight if i < m else code.distance),
               f"{est.estimate[i]:.3f}±{est.stderr[i]:.3f}", f"{exact[i]:.4f}", f"{z[i]:+.1f}{mark}"]
        if i < m:
            flag = "0 (none)" if rates.no_detectable_error[i] else f"{rates.p_hat[i]:.2g}"
            row += [f"{rates.violation[i]:.3f}", f"{flag} [{rates.p_low[i]:.2g}, {rates.p_high[i]:.2g}]"]
        else:
            row += ["", ""]
        table.add_row(*row)
    out.print(table)
    cmp = r.comparison()
    lr = r.logical_rates
    k = m + (1 if r.logical == "0" else 0)
    out.print(f"* = stim's exact value outside the {est.level:.0%} interval. Stabilizers inside their interval: "
              f"{cmp['n_inside_interval']}/{cmp['n_stabilizers']}; within 5 standard errors: "
              f"{cmp['n_within_5_stderr']}/{cmp['n_stabilizers']}; max |z| {cmp['max_abs_z']:.2f}",
              highlight=False, soft_wrap=True)
    out.print(f"circuit-noise rate, joint fit over the stabilizers: p = {rates.p_fit:.4g} ± {rates.p_fit_stderr:.2g} "
              f"({est.level:.0%}: [{rates.p_fit_low:.4g}, {rates.p_fit_high:.4g}]); true p = {noise.depolarizing:g}",
              highlight=False, soft_wrap=True)
    out.print(f"logical {lr.labels[0]}: violation {lr.violation[0]:.4f} (exact {(1 - lr.sign[0] * exact[k]) / 2:.4f}), "
              f"p_hat = {lr.p_hat[0]:.4g} [{lr.p_low[0]:.3g}, {lr.p_high[0]:.3g}]", highlight=False, soft_wrap=True)
    if not np.all(np.isfinite(rates.p_hat)):
        out.print("(p_hat is undefined for stabilizers that no noise location can flip)", highlight=False)
