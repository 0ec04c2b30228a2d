"""Two-point correlation matrices from shadows: ``<P_i P_j>`` averaged over a set of letters.

For a set ``A`` of letters (``"xyz"``, ``"z"``, ...) the target is
``C^A_ij = (1/|A|) sum_{a in A} <a_i a_j>``; ``A = "xyz"`` gives the isotropic correlation
``(1/3) <X_i X_j + Y_i Y_j + Z_i Z_j>``, the learning target of Huang et al. (Science 2022)
for SU(2)-symmetric models. Per snapshot the estimator is ``v = (9 / |A|) s`` when qubits ``i``
and ``j`` were both measured in the same letter of ``A`` (``s = +1`` for equal outcome bits,
``-1`` otherwise) and ``v = 0`` otherwise: the average of the classical-shadow estimators
``9 s`` of each ``<a_i a_j>``, unbiased for uniformly random local-Pauli bases. For ``"xyz"``
this is the paper's ``+3 / -3 / 0`` rule. The standard error is the sample standard deviation
of ``v`` over ``sqrt(S)``, computed exactly from the per-pair counts of matching snapshots and
of those with different bits.

The counts are integer sums over chunks of snapshots, computed by
:func:`shadowlab.execution.map_chunks` in this process or, with a distributed
:class:`~shadowlab.execution.Execution`, as Dask tasks; the results are identical either way.
A chunk task holds the chunk's rows (and their packed planes) and three ``(P,)`` int64 arrays
per pair list (the pairs' two qubits, and the two counters it returns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shadowlab import kernels
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.entropy import require_uniform_scheme
from shadowlab.estimate.pauli import SnapshotSource, chunk_rows
from shadowlab.execution import Execution, map_chunks

LETTERS = "xyz"


def _letter_codes(letters: str) -> np.ndarray:
    chosen = sorted({LETTERS.index(c) for c in letters.lower() if c in LETTERS})
    if not letters or len(chosen) != len(set(letters.lower())):
        raise ShadowlabError(f"letters must be a non-empty combination of x, y, z; got {letters!r}")
    return np.array(chosen, dtype=np.int64)


def _pair_count_chunk(chunk: Any, offset: int, pairs: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the chunk's snapshots measured in one letter of ``codes`` on both qubits, and those
    of them with different outcome bits (a :func:`map_chunks` task of :func:`pair_correlations`)."""
    same = np.zeros(len(pairs), dtype=np.int64)
    differ = np.zeros_like(same)
    kernels.pair_letter_counts(kernels.pack(chunk.bases, chunk.outcomes), pairs, codes, same, differ)
    return same, differ


def pair_correlations(source: SnapshotSource, pairs: np.ndarray, letters: str = "xyz", *,
                      chunk_snapshots: int | None = None, execution: Execution | None = None,
                      progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and standard errors of ``C^A_ij`` for the listed pairs (see the module docs).

    Parameters
    ----------
    source:
        A :class:`~shadowlab.data.dataset.ShadowData` or shadow store of uniformly random
        local-Pauli snapshots, one per setting (at least 2 snapshots). Other schemes and
        repeated settings are refused.
    pairs:
        ``(P, 2)`` pairs of different qubits.
    letters:
        The letter set ``A``: any non-empty combination of ``x``, ``y``, ``z`` (case-insensitive).
    chunk_snapshots, execution, progress:
        Snapshots per chunk (default: derived from ``execution``, see
        :func:`shadowlab.estimate.pauli.chunk_rows`), where the pass runs and its memory bound
        (default: this process, 1 GiB), and a callback with the snapshots done.

    Returns
    -------
    (estimate, stderr):
        ``(P,)`` float64 each.
    """
    codes = _letter_codes(letters)
    n_q, n_s = source.n_qubits, source.n_snapshots
    p = np.ascontiguousarray(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
    if p.size and (p.min() < 0 or p.max() >= n_q or np.any(p[:, 0] == p[:, 1])):
        raise ShadowlabError(f"pairs must join two different qubits in 0..{n_q - 1}")
    if n_s < 2:
        raise ShadowlabError(f"need at least 2 snapshots for an estimate with an error bar, got {n_s}")
    require_uniform_scheme(source, "pair correlations (the 9 s / |A| estimator)")
    n_settings = getattr(source, "n_settings", n_s)
    if n_settings < n_s:
        # Shots of one setting share their bases: the snapshots are not independent, and the
        # standard error below would be too small.
        raise ShadowlabError(f"pair correlations assume one snapshot per random setting; this data set has {n_s} "
                             f"snapshots of {n_settings} settings (use estimate_two_point, whose errors account "
                             "for repeated settings)")
    # The task's pair list and counters, and the totals here.
    step = chunk_rows(source, execution, chunk_snapshots, fixed_bytes=48.0 * len(p),
                      what=f"the correlations of {len(p)} pair(s)")
    same = np.zeros(len(p), dtype=np.int64)
    differ = np.zeros_like(same)

    def combine(_chunk: int, _batch: int, part: tuple[np.ndarray, np.ndarray]) -> None:
        same[:] += part[0]  # integer sums: exact in any completion order
        differ[:] += part[1]

    map_chunks(source, _pair_count_chunk, chunk_snapshots=step, combine=combine, batches=[(p, codes)],
               execution=execution, progress=progress)
    weight = 9.0 / len(codes)
    mean = weight * (same - 2.0 * differ) / n_s
    second = weight**2 * same / n_s  # v^2 = weight^2 on matching snapshots
    var = np.maximum(second - mean**2, 0.0) * n_s / (n_s - 1)
    return mean, np.sqrt(var / n_s)


def correlation_matrix(source: SnapshotSource, letters: str = "xyz", *, chunk_snapshots: int | None = None,
                       execution: Execution | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pair_correlations` for every pair, as ``(n, n)`` symmetric matrices.

    The diagonal is exactly 1 with standard error 0.
    """
    n_q = source.n_qubits
    if n_q < 2:
        raise ShadowlabError("two-point correlations need at least 2 qubits")
    i, j = np.triu_indices(n_q, k=1)
    est, se = pair_correlations(source, np.stack([i, j], axis=1), letters, chunk_snapshots=chunk_snapshots,
                                execution=execution)
    m_est = np.eye(n_q)
    m_se = np.zeros((n_q, n_q))
    m_est[i, j] = m_est[j, i] = est
    m_se[i, j] = m_se[j, i] = se
    return m_est, m_se
