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


def lattice_positions(lattice: str | None, n_qubits: int) -> np.ndarray:
    """``(n, 2)`` drawing positions: ``grid:RxC`` row-major (row 0 on top), chains on a line,
    anything else on a circle."""
    kind, _, size = (lattice or "").partition(":")
    q = np.arange(n_qubits)
    if kind == "grid" and "x" in size:
        cols = int(size.split("x")[1])
        return np.stack([q % cols, -(q // cols)], axis=1).astype(float)
    if kind in ("chain", "ring"):
        return np.stack([q, np.zeros(n_qubits)], axis=1).astype(float)
    angle = 2 * np.pi * q / max(n_qubits, 1)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _pair_map(ax: plt.Axes, pos: np.ndarray, pairs: np.ndarray, values: np.ndarray, title: str,
              norm: matplotlib.colors.Normalize, cmap: str) -> matplotlib.cm.ScalarMappable:
    from matplotlib.collections import LineCollection

    segments = np.stack([pos[pairs[:, 0]], pos[pairs[:, 1]]], axis=1)
    lines = LineCollection(segments, array=values, cmap=cmap, norm=norm, linewidths=4)
    ax.add_collection(lines)
    ax.scatter(pos[:, 0], pos[:, 1], s=12, color="0.3", zorder=3)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.autoscale()
    ax.margins(0.08)
    ax.axis("off")
    return lines


def _prediction_scatter(ax: plt.Axes, results: Sequence[object]) -> None:
    """Predictions against exact values (or held-out shadow labels), every held-out instance and column."""
    first = results[0]
    reference = first.exact if first.exact is not None else first.test_labels
    ref_name = "exact" if first.exact is not None else "held-out shadow label"
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, r in enumerate(results):
        rmse = r.rmse if r.rmse is not None else r.rmse_vs_labels
        ax.scatter(reference.ravel(), r.predictions.ravel(), s=3, alpha=0.4, color=colors[c % len(colors)],
                   label=f"{r.model} (RMSE {rmse:.3f})")
    lo, hi = float(reference.min()), float(reference.max())
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xlabel(f"{ref_name}: {first.target} ({len(first.test_index)} held-out instances x "
                  f"{reference.shape[1]} columns)")
    ax.set_ylabel("predicted")
    ax.legend(fontsize=7, markerscale=3)


def correlation_map_figure(family: object, results: Sequence[object], path: Path, *, force: bool = False,
                           instance: int = 0) -> None:
    """Predicted against exact correlation maps for one held-out instance, and a scatter of all.

    Top row: the lattice with each target pair coloured by its value, exact (when known), the
    instance's own shadow labels and each model's prediction. Bottom: predictions against
    exact values (or against held-out shadow labels) over every held-out instance and pair.
    """
    first = results[0]
    if len(first.pairs) == 0:  # a per-instance scalar (the energy): no map, only the scatter
        _prediction_scatter(plt.figure(figsize=(5.0, 4.2), layout="constrained").add_subplot(), results)
        _save(plt.gcf(), path, force)
        return
    pos = lattice_positions(family.metadata.get("lattice"), family.n_qubits)
    k = int(np.clip(instance, 0, len(first.test_index) - 1))
    panels = ([("exact", first.exact[k])] if first.exact is not None else []) + [("shadow labels",
                                                                                  first.test_labels[k])]
    panels += [(f"{r.model} prediction", r.predictions[k]) for r in results]
    values = np.concatenate([v for _, v in panels])
    lo_v, hi_v = float(values.min()), float(values.max())
    if lo_v < 0 < hi_v:  # signed values: a diverging map centred on zero
        lim = max(-lo_v, hi_v)
        norm, cmap = matplotlib.colors.Normalize(-lim, lim), "coolwarm"
    else:
        norm, cmap = matplotlib.colors.Normalize(lo_v, hi_v if hi_v > lo_v else lo_v + 1), "viridis"
    n_col = max(len(panels), 3)
    fig = plt.figure(figsize=(2.9 * n_col, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, n_col)
    inst = int(family.instance_ids[first.test_index[k]])
    top = [fig.add_subplot(grid[0, c]) for c in range(len(panels))]
    for ax, (title, v) in zip(top, panels, strict=True):
        mappable = _pair_map(ax, pos, first.pairs, v, f"{title}\n(held-out instance {inst})", norm, cmap)
    fig.colorbar(mappable, ax=top, shrink=0.8, label=first.target)
    _prediction_scatter(fig.add_subplot(grid[1, : max(n_col // 2, 1)]), results)
    best = min(results, key=lambda r: r.rmse if r.rmse is not None else r.rmse_vs_labels)
    per_pair = best.rmse_per_pair if best.rmse_per_pair is not None else np.sqrt(
        ((best.predictions - best.test_labels) ** 2).mean(axis=0))
    ax = fig.add_subplot(grid[1, max(n_col // 2, 1):])
    m = _pair_map(ax, pos, best.pairs, per_pair, f"{best.model}: RMSE per pair over held-out instances",
                  matplotlib.colors.Normalize(0, float(per_pair.max()) or 1.0), "magma_r")
    fig.colorbar(m, ax=ax, shrink=0.8, label="RMSE")
    _save(fig, path, force)


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


def phase_embedding_figure(study: object, path: Path, *, force: bool = False) -> None:
    """Kernel-PCA embedding (PC1 vs PC2) of each depth of a phase-classification study.

    ``study`` is a :class:`shadowlab.learn.phases.PhaseStudy`; one panel per circuit depth,
    topological states in blue, trivial ones in red, the AUC of PC1 in the panel title.
    """
    results = list(study.results)  # type: ignore[attr-defined]
    if not results:
        from shadowlab.errors import ShadowlabError

        raise ShadowlabError("the study has no depths to draw")
    cols = min(len(results), 5)
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows + 0.4), constrained_layout=True,
                             squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, results, strict=False):
        emb = np.asarray(r.embedding)
        labels = np.asarray(r.labels)
        pc2 = emb[:, 1] if emb.shape[1] > 1 else np.zeros(len(emb))
        for value, name, color, marker in ((1, "topological", "tab:blue", "o"), (0, "trivial", "tab:red", "s")):
            sel = labels == value
            ax.scatter(emb[sel, 0], pc2[sel], s=22, color=color, marker=marker, alpha=0.8, label=name)
        ax.set_title(f"depth {r.depth}: AUC {r.auc:.2f}", fontsize=10)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7, loc="best")
    kernel = (f"exp(-tau/2 d^2), tau = {study.tau:g}" if study.tau is not None and study.normalize  # type: ignore[attr-defined]
              else "shadow kernel")
    fig.suptitle(f"Kernel PCA, toric code vs trivial: {study.n_qubits} qubits, {study.n_states} states, "  # type: ignore[attr-defined]
                 f"{study.n_snapshots} snapshots each, gamma = {study.gamma:g}, {kernel}", fontsize=10)  # type: ignore[attr-defined]
    _save(fig, path, force)


def stabilizer_map_figure(code: object, values: np.ndarray, path: Path, *, title: str, label: str,
                          force: bool = False, annotate: bool = True, vmin: float | None = None,
                          vmax: float | None = None, value_format: str = "{:.2g}") -> None:
    """Map of a surface code's stabilizers, each plaquette coloured by a value, saved to ``path``.

    Data qubits are dots on the ``d x d`` grid (column to the right, row 0 at the top, index
    ``r * d + c`` printed beside each). Weight-4 stabilizers are squares between four qubits,
    weight-2 boundary ones half discs outside their edge. ``X`` checks have a solid dark-red
    outline, ``Z`` checks a dashed dark-blue outline with hatching. NaN values are drawn grey.

    Parameters
    ----------
    code:
        A :class:`shadowlab.acquire.codes.SurfaceCode` (uses ``distance``, ``faces``, ``kinds``).
    values:
        ``(n_stabilizers,)`` float values in the code's stabilizer order (e.g. estimated error
        rates ``p_hat``).
    path:
        Output file; the extension picks the format. Written atomically.
    title, label:
        Figure title and colour-bar label (with units).
    force:
        Overwrite an existing file.
    annotate:
        Print each value inside its plaquette (``value_format``).
    vmin, vmax:
        Colour-scale limits (default: the finite values' range).
    """
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon, Wedge

    from shadowlab.errors import ShadowlabError

    d = int(code.distance)  # type: ignore[attr-defined]
    faces = np.asarray(code.faces)  # type: ignore[attr-defined]
    kinds = tuple(code.kinds)  # type: ignore[attr-defined]
    vals = np.asarray(values, dtype=np.float64)
    if vals.shape != (len(kinds),):
        raise ShadowlabError(f"need one value per stabilizer ({len(kinds)}), got shape {vals.shape}")
    finite = vals[np.isfinite(vals)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    norm = Normalize(lo, hi)
    cmap = plt.get_cmap("viridis")
    size = max(4.5, 1.2 + 0.75 * d)
    fig, ax = plt.subplots(figsize=(size + 2.0, size + 0.6), layout="constrained")
    style = {"X": {"edgecolor": "darkred", "linestyle": "-", "hatch": None},
             "Z": {"edgecolor": "navy", "linestyle": "--", "hatch": "//"}}
    for (r, c), kind, v in zip(faces.tolist(), kinds, vals, strict=True):
        color = cmap(norm(v)) if np.isfinite(v) else (0.75, 0.75, 0.75, 1.0)
        s = style[kind]
        if 0 <= r <= d - 2 and 0 <= c <= d - 2:
            patch = Polygon([(c, r), (c + 1, r), (c + 1, r + 1), (c, r + 1)], closed=True)
            centre = (c + 0.5, r + 0.5)
        else:
            # Half disc outside the boundary edge (the y axis points down: row 0 at the top).
            if r == -1:
                centre, angles, text_at = (c + 0.5, 0.0), (180.0, 360.0), (c + 0.5, -0.25)
            elif r == d - 1:
                centre, angles, text_at = (c + 0.5, float(d - 1)), (0.0, 180.0), (c + 0.5, d - 0.75)
            elif c == -1:
                centre, angles, text_at = (0.0, r + 0.5), (90.0, 270.0), (-0.25, r + 0.5)
            else:
                centre, angles, text_at = (float(d - 1), r + 0.5), (270.0, 450.0), (d - 0.75, r + 0.5)
            patch = Wedge(centre, 0.5, *angles)
            centre = text_at
        patch.set_facecolor(color)
        patch.set_edgecolor(s["edgecolor"])
        patch.set_linestyle(s["linestyle"])
        patch.set_linewidth(1.4)
        if s["hatch"]:
            patch.set_hatch(s["hatch"])
        ax.add_patch(patch)
        if annotate and np.isfinite(v):
            shade = norm(v)
            ax.text(*centre, value_format.format(v), ha="center", va="center", fontsize=max(5, 9 - d // 2),
                    color="white" if shade < 0.55 else "black")
    rr, cc = np.divmod(np.arange(d * d), d)
    ax.scatter(cc, rr, s=30, color="black", zorder=3)
    if d <= 9:
        for q in range(d * d):
            ax.text(cc[q] + 0.07, rr[q] - 0.07, str(q), fontsize=6, color="dimgray", zorder=4)
    ax.set_xlim(-0.7, d - 0.3)
    ax.set_ylim(d - 0.3, -0.7)
    ax.set_aspect("equal")
    ax.set_xticks(range(d))
    ax.set_yticks(range(d))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title(title, fontsize=9)
    handles = [Line2D([], [], color="darkred", lw=1.4, ls="-", label="X check"),
               Line2D([], [], color="navy", lw=1.4, ls="--", label="Z check (hatched)")]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=2, frameon=False)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label, shrink=0.8)
    _save(fig, path, force)
