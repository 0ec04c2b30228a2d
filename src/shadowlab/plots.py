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
