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
"""

from __future__ import annotations

import numpy as np

from shadowlab import kernels
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.pauli import DEFAULT_CHUNK_SNAPSHOTS, SnapshotSource

LETTERS = "xyz"


def correlation_matrix(source: SnapshotSource, letters: str = "xyz", *,
                       chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and standard errors of ``C^A_ij`` for all qubit pairs (see the module docs).

    Parameters
    ----------
    source:
        A :class:`~shadowlab.data.dataset.ShadowData` or shadow store of uniformly random
        local-Pauli snapshots (at least 2 snapshots, 2 qubits).
    letters:
        The letter set ``A``: any non-empty combination of ``x``, ``y``, ``z`` (case-insensitive).

    Returns
    -------
    (estimate, stderr):
        ``(n, n)`` float64 symmetric matrices; the diagonal is exactly 1 with standard error 0.
    """
    chosen = sorted({LETTERS.index(c) for c in letters.lower() if c in LETTERS})
    if not letters or len(chosen) != len(set(letters.lower())):
        raise ShadowlabError(f"letters must be a non-empty combination of x, y, z; got {letters!r}")
    n_q, n_s = source.n_qubits, source.n_snapshots
    if n_q < 2:
        raise ShadowlabError("two-point correlations need at least 2 qubits")
    if n_s < 2:
        raise ShadowlabError(f"need at least 2 snapshots for an estimate with an error bar, got {n_s}")
    match = np.zeros((n_q, n_q, 3, 3), dtype=np.int64)
    odd = np.zeros_like(match)
    for _, chunk in source.iter_chunks(chunk_snapshots):
        kernels.two_point_counts(kernels.pack(chunk.bases, chunk.outcomes), 0, chunk.n_snapshots, match, odd)
    weight = 9.0 / len(chosen)
    same = match[:, :, chosen, chosen].sum(axis=2).astype(np.float64)  # both measured in one letter of A
    differ = odd[:, :, chosen, chosen].sum(axis=2).astype(np.float64)  # ... with different bits
    mean = weight * (same - 2.0 * differ) / n_s
    second = weight**2 * same / n_s  # v^2 = weight^2 on matching snapshots
    var = np.maximum(second - mean**2, 0.0) * n_s / (n_s - 1)
    se = np.sqrt(var / n_s)
    est = np.triu(mean, 1)
    se = np.triu(se, 1)
    est = est + est.T + np.eye(n_q)
    return est, se + se.T
