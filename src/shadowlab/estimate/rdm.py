"""Reduced density matrices of a few qubits from classical shadows, and plug-in entropies.

Estimate
--------
For a subsystem ``A = (q_0, ..., q_{k-1})`` the estimate is the snapshot average

    rho_hat = 1/N sum_s tensor_{j} (3 |s_{q_j}><s_{q_j}| - I),

unbiased for ``rho_A`` under uniformly random local Pauli measurements. It is computed from the
``6^k`` pattern counts of :func:`shadowlab.estimate.entropy.pattern_counts` (one streaming pass)
by contracting the counts, qubit by qubit, with the six single-qubit matrices
``(I + 3 (-1)^o P_b) / 2``. Matrix convention: ``q_0`` is the most significant bit of the row
and column index (as shadowlab's state vectors: qubit 0 = most significant bit).
Per-entry standard errors (real and imaginary parts separately) are the sample standard
deviations of the per-snapshot entries over ``sqrt(N)``, also from the counts.

Repeated settings make snapshots of one setting correlated; the estimate stays unbiased but
the per-entry standard errors then understate the error (they assume independent snapshots).

Projection and entropies
------------------------
``rho_hat`` is Hermitian with trace 1 but usually has negative eigenvalues. The *projected*
state is the density matrix nearest to it in Frobenius norm: keep the eigenvectors, and
replace the eigenvalues by their Euclidean projection onto the probability simplex
(Smolin, Gambetta and Smith, PRL 108, 070502 (2012)).

The von Neumann and Renyi-alpha entropies reported are *plug-in* values of the projected
state, and are biased:

* the unprojected plug-in purity is biased upward by an exact amount,
  ``E[tr rho_hat^2] = tr rho^2 + (5^k - tr rho^2) / N``, so its ``-log`` is biased downward
  (the unbiased purity is :func:`shadowlab.estimate.entropy.estimate_renyi2`);
* for a (nearly) pure reduced state, the true entropy is (nearly) 0, the lowest possible
  value, and any estimation noise spreads the projected spectrum: the plug-in entropies are
  biased upward;
* for a (nearly) maximally mixed reduced state, the true entropy is (nearly) ``k`` bits, the
  highest possible, and noise can only lower it: the plug-in entropies are biased downward.

In between the direction depends on the spectrum; the bias shrinks like ``1/N`` times a
factor growing exponentially with ``k``. Use these numbers for small ``k`` and many snapshots.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shadowlab.atomic import atomic_path
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.entropy import check_subsystems, pattern_counts, require_uniform_scheme
from shadowlab.estimate.pauli import DEFAULT_CHUNK_SNAPSHOTS, SnapshotSource

Progress = Callable[[int], None]

#: Largest subsystem accepted by default.
DEFAULT_MAX_QUBITS = 8
#: Memory allowed for the counts, contraction intermediates and matrices.
DEFAULT_MEMORY_LIMIT = 2 * 2**30

_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)
# _SIGMA[2 b + o] = 3 |s><s| - I = (I + 3 (-1)^o P_b) / 2.
_SIGMA = np.array([(np.eye(2) + 3.0 * (1 - 2 * o) * _PAULI[b]) / 2.0 for b in range(3) for o in range(2)])


def rdm_bytes(n_qubits: int) -> int:
    """Memory to estimate a ``n_qubits`` reduced state: ``6^k`` counts, intermediates, ``4^k`` matrices."""
    return 8 * 6**n_qubits + 32 * 6**n_qubits + 5 * 16 * 4**n_qubits


def _contract(counts: np.ndarray, k: int, single: np.ndarray) -> np.ndarray:
    """``sum_p counts[p] tensor_j single[d_j(p)]`` as a ``(2^k, 2^k)`` matrix, axis by axis."""
    t: np.ndarray = counts.astype(np.complex128).reshape((6,) * k)
    for _ in range(k):
        # Contract the leading pattern axis; the new (row, col) pair goes to the end.
        t = np.tensordot(t, single, axes=([0], [0]))
    # Axes are (r_0, c_0, r_1, c_1, ...): rows first, then columns.
    t = t.transpose(list(range(0, 2 * k, 2)) + list(range(1, 2 * k, 2)))
    return t.reshape(2**k, 2**k)


def project_simplex(values: np.ndarray) -> np.ndarray:
    """Euclidean projection of a real vector onto the probability simplex (``x >= 0``, ``sum x = 1``)."""
    v = np.asarray(values, dtype=np.float64)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, v.size + 1)
    rho = int(np.nonzero(u - css / idx > 0)[0][-1])
    theta = css[rho] / (rho + 1.0)
    return np.maximum(v - theta, 0.0)


def project_to_density_matrix(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The density matrix nearest to a Hermitian ``matrix`` in Frobenius norm, and its eigenvalues.

    Eigen-decomposes ``matrix`` and projects its eigenvalues onto the probability simplex; the
    result is positive semidefinite with trace 1. Eigenvalues are returned in ascending order.
    """
    h = np.asarray(matrix, dtype=np.complex128)
    h = (h + h.conj().T) / 2.0
    evals, evecs = np.linalg.eigh(h)
    lam = project_simplex(evals)
    return (evecs * lam) @ evecs.conj().T, lam


def von_neumann_entropy(eigenvalues: np.ndarray, base: float = 2.0) -> float:
    """``-sum l log_base l`` over the positive eigenvalues (bits for ``base=2``)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    lam = lam[lam > 0]
    return float(-(lam * np.log(lam)).sum() / math.log(base))


def renyi_entropy(eigenvalues: np.ndarray, alpha: float, base: float = 2.0) -> float:
    """``log_base(sum l^alpha) / (1 - alpha)`` of a probability vector (``alpha = 1``: von Neumann)."""
    if alpha < 0:
        raise ShadowlabError(f"alpha must be >= 0, got {alpha}")
    if alpha == 1:
        return von_neumann_entropy(eigenvalues, base)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    lam = lam[lam > 0]
    return float(math.log(float(np.sum(lam**alpha))) / (1.0 - alpha) / math.log(base))


@dataclass(frozen=True)
class ReducedState:
    """A reduced density matrix estimated from shadows.

    Attributes
    ----------
    qubits:
        The subsystem; ``qubits[0]`` is the most significant bit of the matrix index.
    matrix:
        ``(2^k, 2^k)`` unbiased estimate (Hermitian, trace 1, possibly not positive).
    stderr_real, stderr_imag:
        ``(2^k, 2^k)`` standard errors of the real and imaginary parts of each entry.
    n_snapshots:
        Snapshots averaged.
    """

    qubits: tuple[int, ...]
    matrix: np.ndarray
    stderr_real: np.ndarray
    stderr_imag: np.ndarray
    n_snapshots: int

    def state(self, project: bool = True) -> np.ndarray:
        """The projected (nearest physical) state, or the raw estimate with ``project=False``."""
        return project_to_density_matrix(self.matrix)[0] if project else self.matrix

    def eigenvalues(self, project: bool = True) -> np.ndarray:
        """Ascending eigenvalues of the projected state (or of the raw estimate)."""
        if project:
            return project_to_density_matrix(self.matrix)[1]
        return np.linalg.eigvalsh((self.matrix + self.matrix.conj().T) / 2.0)

    def purity(self, project: bool = True) -> float:
        """Plug-in ``tr(rho^2)`` (biased upward for the raw estimate by ``(5^k - tr rho^2) / N``)."""
        return float(np.sum(self.eigenvalues(project) ** 2))

    def von_neumann(self, base: float = 2.0) -> float:
        """Plug-in von Neumann entropy of the projected state (biased; see the module docs)."""
        return von_neumann_entropy(self.eigenvalues(True), base)

    def renyi(self, alpha: float, base: float = 2.0) -> float:
        """Plug-in Renyi-``alpha`` entropy of the projected state (biased; see the module docs)."""
        return renyi_entropy(self.eigenvalues(True), alpha, base)

    def to_dict(self, project: bool = True, base: float = 2.0) -> dict[str, Any]:
        """Plain-Python summary: matrix as ``[[re, im], ...]`` rows, eigenvalues, purity, entropies."""
        m = self.state(project)
        return {
            "qubits": list(self.qubits),
            "n_snapshots": self.n_snapshots,
            "projected": project,
            "matrix_real": m.real.tolist(),
            "matrix_imag": m.imag.tolist(),
            "stderr_real": self.stderr_real.tolist(),
            "stderr_imag": self.stderr_imag.tolist(),
            "eigenvalues": self.eigenvalues(project).tolist(),
            "purity": self.purity(project),
            "von_neumann_entropy": self.von_neumann(base),
            "renyi2_entropy": self.renyi(2.0, base),
            "entropy_unit": "bits" if base == 2 else "nats" if base == math.e else f"log base {base}",
            "entropies_from": "projected state (plug-in, biased)",
        }

    def to_json(self, project: bool = True, base: float = 2.0) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(project, base), indent=1)

    def write(self, path: str | os.PathLike[str], *, project: bool = True, base: float = 2.0,
              force: bool = False) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        with atomic_path(path, force=force) as tmp:
            tmp.write_text(self.to_json(project, base))


def rdm_from_counts(counts: np.ndarray, qubits: Sequence[int]) -> ReducedState:
    """The reduced-state estimate and its per-entry standard errors from ``6^k`` pattern counts."""
    k = len(qubits)
    c = np.asarray(counts)
    n = float(c.sum())
    if n < 2:
        raise EstimationError(f"a reduced density matrix estimate needs at least 2 snapshots, got {int(n)}")
    mean = _contract(c, k, _SIGMA) / n
    abs2 = _contract(c, k, np.abs(_SIGMA) ** 2).real / n
    sq = _contract(c, k, _SIGMA * _SIGMA) / n
    corr = n / (n - 1.0)
    var_re = np.maximum((abs2 + sq.real) / 2.0 - mean.real**2, 0.0) * corr / n
    var_im = np.maximum((abs2 - sq.real) / 2.0 - mean.imag**2, 0.0) * corr / n
    return ReducedState(tuple(int(q) for q in qubits), mean, np.sqrt(var_re), np.sqrt(var_im), int(n))


def estimate_rdm(
    source: SnapshotSource,
    qubits: Sequence[int],
    *,
    max_qubits: int = DEFAULT_MAX_QUBITS,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    chunk_snapshots: int = DEFAULT_CHUNK_SNAPSHOTS,
    progress: Progress | None = None,
) -> ReducedState:
    """Estimate the reduced density matrix of ``qubits`` (see the module docs for conventions).

    Refuses, before allocating, subsystems larger than ``max_qubits`` or needing more than
    ``memory_limit`` bytes (:func:`rdm_bytes`).

    Examples
    --------
    >>> from shadowlab.acquire.simulate import simulate
    >>> r = estimate_rdm(simulate("ghz:3", 5000, seed=1, simulator="statevector"), [0, 2])
    >>> np.round(r.state().real[[0, 3], [0, 3]], 1).tolist()
    [0.5, 0.5]
    """
    require_uniform_scheme(source, "the reduced-density-matrix estimator")
    (qs,) = check_subsystems([qubits], source.n_qubits, max_size=max_qubits, what="qubits")
    need = rdm_bytes(len(qs))
    if need > memory_limit:
        raise ShadowlabError(f"qubits {list(qs)}: a {len(qs)}-qubit reduced state needs about {need / 2**30:.2f} GiB "
                             f"(6^{len(qs)} counts, 4^{len(qs)} matrix entries), more than memory_limit="
                             f"{memory_limit / 2**30:.2f} GiB; use fewer qubits")
    if source.n_snapshots < 2:
        raise EstimationError(f"a reduced density matrix estimate needs at least 2 snapshots; the data set has "
                              f"{source.n_snapshots}")
    (counts,) = pattern_counts(source, [qs], chunk_snapshots=chunk_snapshots, progress=progress)
    return rdm_from_counts(counts, qs)


__all__ = [
    "DEFAULT_MAX_QUBITS",
    "ReducedState",
    "estimate_rdm",
    "project_simplex",
    "project_to_density_matrix",
    "rdm_bytes",
    "rdm_from_counts",
    "renyi_entropy",
    "von_neumann_entropy",
]
