"""A transverse-field Ising scan across the critical point: learn correlation functions from shadows.

The 1D chain ``H = -sum_i Z_i Z_{i+1} - h sum_i X_i`` (open boundaries) has its quantum critical
point at ``h = 1``. The study generates the exact ground states on a grid of fields through the
transition (:func:`shadowlab.learn.generate.generate_family`), measures ``n_snapshots``
random-Pauli snapshots of each, holds out a fraction of the fields, trains a model from ``h``
to the shadow-estimated correlation functions ``<Z_i Z_j>`` and ``<X_i X_j>`` of every qubit
pair, and compares the predictions for the held-out fields with the exact values.

The yardstick is the error of the shadow labels themselves: the held-out fields' own shadow
estimates against the exact values. A model trained on the other fields pools their snapshots
through the smooth dependence on ``h``, so its prediction error should not exceed that of
measuring the held-out state with the same number of snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.data.family import ShadowFamily
from shadowlab.errors import ShadowlabError
from shadowlab.learn.evaluate import LearningResult, PairTargets, evaluate_model, pair_targets

SCAN_TARGETS = ("zz", "xx")


@dataclass(frozen=True)
class TfimScan:
    """Result of :func:`tfim_scan_study`.

    Attributes
    ----------
    family:
        The generated instances (fields, snapshots, exact correlations).
    results:
        ``{target: LearningResult}`` for ``"zz"`` and ``"xx"`` on all qubit pairs.
    labels:
        ``{target: PairTargets}``: the shadow labels of every instance (training and held out).
    fine_fields, fine_predictions:
        A fine grid of fields and each target model's ``(F, P)`` predictions on it (for plots).
    """

    family: ShadowFamily
    results: dict[str, LearningResult]
    labels: dict[str, PairTargets]
    fine_fields: np.ndarray
    fine_predictions: dict[str, np.ndarray]

    def summary(self) -> dict[str, Any]:
        """Per target: model and label RMSE against exact values, and whether the model is within."""
        return {t: {**r.summary(), "within_label_error": bool(r.rmse <= r.label_rmse)}
                for t, r in self.results.items()}


def tfim_scan_study(n_qubits: int = 12, *, fields: Sequence[float] | None = None, n_snapshots: int = 500,
                    test_fraction: float = 0.5, model: str = "gaussian", seed: int = 0, cv: int = 4,
                    progress: Callable[[int], object] | None = None) -> TfimScan:
    """Generate, train and predict (see the module docs).

    Parameters
    ----------
    n_qubits:
        Length of the open chain (exact diagonalization, at most 20).
    fields:
        Transverse fields ``h`` (default: 40 values from 0.3 to 2.0, through ``h = 1``).
    n_snapshots:
        Snapshots per field, used for the labels and for the label-error yardstick.
    test_fraction, model, seed, cv:
        As in :func:`shadowlab.learn.evaluate.evaluate_model`.
    progress:
        Called with 1 after each generated instance.
    """
    from shadowlab.learn.generate import generate_family

    h = np.linspace(0.3, 2.0, 40) if fields is None else np.asarray(fields, dtype=np.float64).ravel()
    if h.size < 4 or np.any(h < 0):
        raise ShadowlabError(f"need at least 4 non-negative fields, got {h.size}")
    family = generate_family("tfim", f"chain:{n_qubits}", n_snapshots=n_snapshots, parameters=h[:, None],
                             form="uniform", seed=seed, method="exact", progress=progress)
    results, labels = {}, {}
    for target in SCAN_TARGETS:
        labels[target] = pair_targets(family, target=target, pairs="all")
        results[target] = evaluate_model(family, model, targets=labels[target], test_fraction=test_fraction,
                                         seed=seed, cv=cv)
    fine = np.linspace(float(h.min()), float(h.max()), 200)
    fine_pred = {t: np.asarray(r.estimator.predict(fine[:, None])).reshape(len(fine), -1) for t, r in results.items()}
    return TfimScan(family, results, labels, fine, fine_pred)


def tfim_scan_figure(scan: TfimScan, path: str | Path, *, force: bool = False, distances: Sequence[int] = (1, 3)
                     ) -> None:
    """Correlation functions against the field: exact, shadow labels (training and held-out), model.

    One panel per target; curves for the pairs ``(i0, i0 + r)`` centred on the chain, one per
    distance ``r`` in ``distances``.
    """
    import matplotlib.pyplot as plt

    from shadowlab.plots import _save

    n = scan.family.n_qubits
    h = scan.family.parameters[:, 0]
    fig, axes = plt.subplots(1, len(scan.results), figsize=(5.2 * len(scan.results), 4.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (target, r) in zip(axes[0], scan.results.items(), strict=True):
        order = np.argsort(h)
        labels_all = scan.labels[target]
        for c, dist in enumerate(d for d in distances if d < n):
            i0 = (n - dist) // 2
            col = int(np.flatnonzero((r.pairs[:, 0] == i0) & (r.pairs[:, 1] == i0 + dist))[0])
            color = colors[c % len(colors)]
            ax.plot(h[order], scan.family.exact[target][order, i0, i0 + dist], color=color, lw=1.2,
                    label=f"exact, r = {dist}")
            ax.plot(scan.fine_fields, scan.fine_predictions[target][:, col], color=color, ls="--", lw=1.2,
                    label=f"{r.model} model, r = {dist}")
            for idx, marker, name in ((r.train_index, "o", "training labels"), (r.test_index, "s", "held-out labels")):
                ax.errorbar(h[idx], labels_all.labels[idx, col], yerr=labels_all.stderr[idx, col], fmt=marker,
                            ms=3, lw=0.6, color=color, mfc="none" if marker == "s" else color, alpha=0.7,
                            label=f"{name}, r = {dist}")
        ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("transverse field h (critical point h = 1)")
        ax.set_ylabel(f"<{target[0].upper()}_i {target[1].upper()}_(i+r)>")
        ax.set_title(f"{target.upper()}: model RMSE {r.rmse:.3f} vs shadow labels {r.label_rmse:.3f} (all pairs, "
                     "held out)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle(f"TFIM chain of {n} qubits, {scan.family.n_snapshots} snapshots per field, "
                 f"{len(next(iter(scan.results.values())).test_index)} of {scan.family.n_instances} fields held out",
                 fontsize=10)
    fig.tight_layout()
    _save(fig, Path(path), force)
