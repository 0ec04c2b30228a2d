"""Matplotlib figures used by the CLI and notebooks. No estimation logic lives here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, not windows: the CLI runs headless
import matplotlib.pyplot as plt
import numpy as np


def predicted_vs_exact(
    ax: plt.Axes, exact: np.ndarray, estimate: np.ndarray, stderr: np.ndarray, *, label: str, color: str
) -> None:
    """Scatter of estimates against exact values with 1-standard-error bars."""
    ax.errorbar(exact, estimate, yerr=stderr, fmt="o", ms=2.5, lw=0.6, alpha=0.6, color=color, label=label)


def demo_figure(
    path: Path,
    panels: Sequence[Mapping[str, np.ndarray | str]],
    convergence: Mapping[str, tuple[np.ndarray, np.ndarray, str]],
) -> None:
    """The demo's two-panel figure, saved as PNG.

    Parameters
    ----------
    path:
        Output PNG file.
    panels:
        One mapping per system with keys ``label``, ``color``, ``exact``, ``estimate``, ``stderr``.
    convergence:
        ``label -> (n_snapshots, rms_error, color)`` curves for the error-versus-snapshots panel.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    lo, hi = -1.1, 1.1
    for p in panels:
        predicted_vs_exact(left, np.asarray(p["exact"]), np.asarray(p["estimate"]), np.asarray(p["stderr"]),
                           label=str(p["label"]), color=str(p["color"]))
    left.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="predicted = exact")
    left.set_xlim(lo, hi)
    left.set_xlabel("exact expectation value")
    left.set_ylabel("shadow prediction (± 1 s.e.)")
    left.set_title("Predicted vs exact")
    left.legend(fontsize=8, loc="upper left")

    ref_n = None
    for label, (n, rms, color) in convergence.items():
        right.loglog(n, rms, "o-", label=label, color=color)
        ref_n = (n, rms) if ref_n is None else ref_n
    if ref_n is not None:
        n, rms = ref_n
        right.loglog(n, rms[0] * np.sqrt(n[0] / n), "k:", label=r"$\propto 1/\sqrt{N}$")
    right.set_xlabel("number of snapshots N")
    right.set_ylabel("RMS prediction error")
    right.set_title("Error vs number of snapshots")
    right.legend(fontsize=8)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _save(fig: plt.Figure, path: Path, force: bool) -> None:
    """Save atomically (temporary name, then rename), keeping the extension for the format."""
    from shadowlab.atomic import atomic_path

    path = Path(path)
    with atomic_path(path, force=force, suffix=path.suffix) as tmp:
        fig.savefig(tmp, dpi=150, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)


def _copies_curve(ax: plt.Axes, points: Sequence[tuple[int, int | None]], *, label: str, color: str,
                  marker: str = "o", ceiling: float | None = None) -> None:
    """Copies needed against n; an n where the grid never reached the target is drawn as an open
    up-arrow at ``ceiling`` (the largest count tried), not silently left out."""
    xs = [n for n, c in points if c is not None]
    ys = [c for _, c in points if c is not None]
    ax.semilogy(xs, ys, marker + "-", color=color, label=label)
    failed = [n for n, c in points if c is None]
    if failed and ceiling is not None:
        ax.semilogy(failed, [ceiling] * len(failed), "^", mfc="none", color=color,
                    label=f"{label}: not reached within {ceiling:,.0f}")


def hidden_pauli_figure(study: object, path: Path, *, identify: Mapping[int, float] | None = None,
                        force: bool = False) -> None:
    """Copies needed against ``n`` for the hidden-Pauli task (two copies flat, one copy exponential).

    ``study`` is a :class:`shadowlab.twocopy.hidden_pauli.HiddenPauliStudy`; ``identify`` maps
    ``n`` to the copies the two-copy learner needed to identify ``P`` itself, when measured.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    for learner, label, color in (("two_copy", "two copies (Bell basis): decide all queries", "tab:blue"),
                                  ("one_copy", "one copy (random Pauli shadows)", "tab:red")):
        rates = study.rates[learner]  # type: ignore[attr-defined]
        ns = sorted(rates)
        top = max((c for n in ns for c, _ in rates[n]), default=None)
        _copies_curve(ax, [(n, study.copies_needed(learner, n)) for n in ns], label=label, color=color,  # type: ignore[attr-defined]
                      ceiling=top)
    if identify:
        ns = sorted(identify)
        _copies_curve(ax, [(n, identify[n]) for n in ns], label="two copies: identify P", color="tab:green",
                      marker="s")
    ax.set_xlabel("qubits n")
    ax.set_ylabel("copies of rho for >= 95% success")
    ax.set_title(f"Hidden Pauli, {study.n_queries:,} queries, {study.trials} trials per point")  # type: ignore[attr-defined]
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path, force)


def purity_scan_figure(study: object, path: Path, *, force: bool = False) -> None:
    """Copies for a fixed purity RMSE against ``n``: two copies flat, one copy exponential."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    for learner, label, color in (("two_copy", "two copies (SWAP test)", "tab:blue"),
                                  ("one_copy", "one copy (random Pauli U-statistic)", "tab:red")):
        rmse = study.rmse[learner]  # type: ignore[attr-defined]
        ns = sorted(rmse)
        top = max((c for n in ns for c, _ in rmse[n]), default=None)
        _copies_curve(left, [(n, study.copies_needed(learner, n)) for n in ns], label=label, color=color,  # type: ignore[attr-defined]
                      ceiling=top)
        for n in ns:
            c, e = zip(*rmse[n], strict=True)
            right.loglog(c, e, "-", color=color, alpha=0.35 + 0.65 * n / max(ns), lw=1)
    right.axhline(study.target_rmse, color="k", ls=":", lw=0.8)  # type: ignore[attr-defined]
    right.set_xlabel("copies of rho")
    right.set_ylabel("RMSE of the purity")
    right.set_title("RMSE vs copies (darker: larger n)")
    left.set_xlabel("qubits n")
    left.set_ylabel(f"copies for RMSE <= {study.target_rmse}")  # type: ignore[attr-defined]
    left.set_title(f"Purity {study.purity:.3f} (GHZ, qubit 0 depolarized)")  # type: ignore[attr-defined]
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    _save(fig, path, force)
