"""Noise figures of a device from its shadow data: readout flips per qubit, gate error from stabilizers.

Readout (from calibration data: snapshots of ``|0...0>``)
---------------------------------------------------------
A qubit measured in Z on ``|0>`` ideally reads 0 (eigenvalue +1). With readout twirling the raw
bit the device read is ``outcome ^ twirl``, and the bit it should have read is the twirl bit
``t``. So among Z-basis snapshots of qubit ``q``:

* ``p01[q]`` = fraction of outcome 1 among those with ``t = 0`` (a raw 0 read as 1),
* ``p10[q]`` = fraction of outcome 1 among those with ``t = 1`` (a raw 1 read as 0),

with binomial standard errors. These are *effective* readout flips: any flip of the measurement
layer before readout (e.g. a depolarizing rotation gate, ``2p/3``) is included, since ``|0...0>``
alone cannot tell them apart. Without twirling only ``p01`` is observable (``|0>`` never reads a
raw 1), and the report says so. The symmetric flip that twirling leaves is ``(p01 + p10) / 2``,
and ``g = 1 - 2 * flip`` is the qubit's calibration factor.

The counts are integer sums over chunks of snapshots (:func:`shadowlab.execution.map_chunks`:
in this process or, with a distributed :class:`~shadowlab.execution.Execution`, as Dask
tasks, with identical results).

Gate error (from data of a known stabilizer state)
--------------------------------------------------
For a state prepared by a stim circuit, every generator ``C Z_k C^dagger`` of its stabilizer
group is estimated (robustly with a calibration, which removes the measurement's share) and
:func:`shadowlab.estimate.stabilizers.stabilizer_error_rates` turns each into a violation
probability and the depolarizing rate ``p`` of the circuit-noise model that would explain it, with
a joint fit over all generators.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import stim

from shadowlab.errors import ShadowlabError
from shadowlab.estimate.pauli import chunk_rows
from shadowlab.execution import Execution, map_chunks
from shadowlab.paulis import PauliString

__all__ = ["ReadoutReport", "readout_report", "stabilizer_generators"]


@dataclass(frozen=True)
class ReadoutReport:
    """Per-qubit effective readout flips estimated from calibration snapshots of ``|0...0>``.

    Attributes
    ----------
    p01, p01_stderr:
        ``(n,)`` probability that a raw 0 reads as 1, and its standard error.
    p10, p10_stderr:
        ``(n,)`` probability that a raw 1 reads as 0 (``nan`` without twirling: not observable).
    z_snapshots:
        ``(n,)`` Z-basis snapshots per qubit used.
    twirled:
        Whether the data were readout-twirled.
    n_snapshots:
        Calibration snapshots read.
    """

    p01: np.ndarray
    p01_stderr: np.ndarray
    p10: np.ndarray
    p10_stderr: np.ndarray
    z_snapshots: np.ndarray
    twirled: bool
    n_snapshots: int

    @property
    def symmetric_flip(self) -> np.ndarray:
        """``(p01 + p10) / 2``: the flip probability twirling leaves (``nan`` untwirled)."""
        return (self.p01 + self.p10) / 2.0

    def rows(self) -> list[dict[str, Any]]:
        """One dict per qubit (``None`` for unobservable values)."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return [{"qubit": q, "p01": num(self.p01[q]), "p01_stderr": num(self.p01_stderr[q]), "p10": num(self.p10[q]),
                 "p10_stderr": num(self.p10_stderr[q]), "symmetric_flip": num(self.symmetric_flip[q]),
                 "z_snapshots": int(self.z_snapshots[q])} for q in range(len(self.p01))]

    def summary(self) -> dict[str, Any]:
        """Means over qubits and the largest asymmetry ``p10 - p01`` in standard errors."""
        asym = (self.p10 - self.p01) / np.sqrt(self.p01_stderr**2 + self.p10_stderr**2)
        twirled = self.twirled
        return {"mean_p01": float(np.mean(self.p01)), "mean_p10": float(np.mean(self.p10)) if twirled else None,
                "max_asymmetry_stderrs": float(np.max(np.abs(asym))) if twirled else None,
                "twirled": twirled, "n_snapshots": self.n_snapshots}

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary(), "qubits": self.rows()}, indent=1)


#: Per-snapshot and qubit temporaries of :func:`_readout_chunk`: the Z mask, the twirl values (when
#: untwirled, zeros), the selection and the selected ones (one byte each).
_READOUT_TEMP_BYTES_PER_QUBIT = 4.0


def _readout_chunk(chunk: Any, offset: int) -> np.ndarray:
    """``(2, 2, n)`` int64 of one chunk: per twirl value, Z-basis snapshots and those that read 1."""
    z = chunk.bases == 2
    t = chunk.twirl if chunk.twirl is not None else np.zeros_like(chunk.outcomes)
    out = np.zeros((2, 2, chunk.outcomes.shape[1]), dtype=np.int64)
    for value in (0, 1):
        sel = z & (t == value)
        out[0, value] = sel.sum(axis=0)
        out[1, value] = (sel & (chunk.outcomes == 1)).sum(axis=0)
    return out


def readout_report(source: Any, *, chunk_snapshots: int | None = None, execution: Execution | None = None,
                   progress: Callable[[int], None] | None = None) -> ReadoutReport:
    """Estimate per-qubit readout flips from snapshots of ``|0...0>`` (see the module documentation).

    ``chunk_snapshots`` (default: derived from ``execution``, see
    :func:`shadowlab.estimate.pauli.chunk_rows`), ``execution`` (where the counting runs and
    the memory bound of a chunk task; default this process, 1 GiB) and ``progress`` (called
    with the snapshots done) only change how the integer counts are gathered, not the result.

    Raises
    ------
    ShadowlabError
        If a qubit was never measured in Z, or (twirled) never with one of the twirl values.
    """
    n = source.n_qubits
    twirled = bool(getattr(source, "readout_twirl", False))
    # Counters: the task's (2, 2, n) result and the totals here.
    step = chunk_rows(source, execution, chunk_snapshots, extra_row_bytes=_READOUT_TEMP_BYTES_PER_QUBIT * n,
                      fixed_bytes=64.0 * n, what="the readout report")
    totals = np.zeros((2, 2, n), dtype=np.int64)

    def combine(_chunk: int, _batch: int, part: np.ndarray) -> None:
        np.add(totals, part, out=totals)  # integer sums: exact in any completion order

    map_chunks(source, _readout_chunk, chunk_snapshots=step, combine=combine, execution=execution, progress=progress)
    count, ones = totals  # Z-basis snapshots per twirl value, and those that read 1
    if np.any(count.sum(axis=0) == 0):
        q = int(np.flatnonzero(count.sum(axis=0) == 0)[0])
        raise ShadowlabError(f"qubit {q} was never measured in Z: readout flips need Z-basis snapshots of |0...0>")
    if twirled and np.any(count == 0):
        raise ShadowlabError("too few snapshots: some qubit has no Z-basis snapshot with one of the twirl values")

    def rate(v: int) -> tuple[np.ndarray, np.ndarray]:
        c = np.maximum(count[v], 1)
        p = ones[v] / c
        return p, np.sqrt(np.maximum(p * (1 - p), 1.0 / c) / c)

    p01, se01 = rate(0)
    if twirled:
        p10, se10 = rate(1)
    else:
        p10 = se10 = np.full(n, np.nan)
    return ReadoutReport(p01, se01, p10, se10, count.sum(axis=0), twirled, int(source.n_snapshots))


def stabilizer_generators(circuit: stim.Circuit, n: int, *, max_weight: int | None = None
                          ) -> tuple[list[PauliString], list[str]]:
    """The generators ``C Z_k C^dagger`` of the noiseless state's stabilizer group (signs dropped).

    Returns the generators of weight at most ``max_weight`` and the labels of those skipped.
    """
    tableau = circuit.without_noise().to_tableau()
    kept: list[PauliString] = []
    skipped: list[str] = []
    for k in range(n):
        # An untouched qubit stays in |0>: Z_k.
        p = PauliString.from_stim(tableau.z_output(k)) if k < len(tableau) else PauliString((k,), (2,))
        if max_weight is not None and p.weight > max_weight:
            skipped.append(p.to_sparse())
        else:
            kept.append(p)
    return kept, skipped
