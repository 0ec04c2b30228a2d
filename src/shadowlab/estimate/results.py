"""Estimates with their uncertainty: the record every estimator returns, and its writers."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.atomic import atomic_path

ESTIMATORS = ("mean", "matched", "mom")
INTERVALS = ("normal", "hkp")
OUTPUT_FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Estimates:
    """Estimates of expectation values, one row per observable.

    Attributes
    ----------
    labels:
        Observable labels (sparse Pauli labels such as ``'X0 Z3'``, or a name for a sum).
    estimate:
        ``(M,)`` float64 point estimates of the expectation values.
    stderr:
        ``(M,)`` float64 standard errors (see the estimator's documentation for how).
    ci_low, ci_high:
        ``(M,)`` float64 confidence interval at level ``level``.
    n_matched:
        ``(M,)`` int64 snapshots that informed each estimate: those whose bases match the Pauli
        on its support (for a sum: that match at least one non-identity term).
    n_snapshots:
        Total snapshots in the data set.
    estimator, interval, level, n_blocks:
        How the estimates were made: ``'mean' | 'matched' | 'mom'``, ``'normal' | 'hkp'``, the
        confidence level in (0, 1), and the number of median-of-means blocks (1 otherwise).
    omitted:
        Labels of observables dropped because no snapshot matched them (only when asked to
        omit rather than raise).
    calibrated:
        Whether the estimates are robust-shadow ones, divided by a calibration's factors (their
        errors include the calibration's).
    """

    labels: tuple[str, ...]
    estimate: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_matched: np.ndarray
    n_snapshots: int
    estimator: str
    interval: str
    level: float
    n_blocks: int = 1
    omitted: tuple[str, ...] = field(default=())
    calibrated: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per observable, with plain Python numbers."""
        return [
            {
                "observable": self.labels[i],
                "estimate": float(self.estimate[i]),
                "stderr": float(self.stderr[i]),
                "ci_low": float(self.ci_low[i]),
                "ci_high": float(self.ci_high[i]),
                "n_matched": int(self.n_matched[i]),
                "n_snapshots": int(self.n_snapshots),
            }
            for i in range(len(self.labels))
        ]

    def describe(self) -> dict[str, Any]:
        """How the estimates were made (written in JSON output beside the rows)."""
        return {
            "estimator": self.estimator,
            "interval": self.interval,
            "level": self.level,
            "n_blocks": self.n_blocks,
            "n_snapshots": self.n_snapshots,
            "omitted": list(self.omitted),
            "calibrated": self.calibrated,
        }

    def to_csv(self) -> str:
        """CSV text with a header row."""
        buf = io.StringIO()
        rows = self.rows()
        writer = csv.DictWriter(buf, fieldnames=list(_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        """JSON text: ``{"method": {...}, "estimates": [rows]}``."""
        return json.dumps({"method": self.describe(), "estimates": self.rows()}, indent=1)

    def write(self, path: str | os.PathLike[str], fmt: str, *, force: bool = False) -> None:
        """Write as ``'csv'`` or ``'json'`` to ``path``, atomically."""
        text = self.to_csv() if fmt == "csv" else self.to_json()
        with atomic_path(path, force=force) as tmp:
            tmp.write_text(text)


_COLUMNS = ("observable", "estimate", "stderr", "ci_low", "ci_high", "n_matched", "n_snapshots")
