"""Unsupervised classification of topological and trivial phases with the shadow kernel.

The experiment of Huang, Kueng, Torlai, Albert and Preskill (Science 377, eabk3333 (2022)):
for each circuit depth ``d``, half of the states are toric codes and half product states, each
dressed with a random depth-``d`` local Clifford circuit
(:func:`shadowlab.acquire.phases.phase_states`); each is measured ``T`` times in uniformly random
local Pauli bases (one snapshot per setting, :func:`shadowlab.acquire.stim_sampler.sample_stim`);
kernel PCA of the shadow kernel between the data sets embeds each state in the plane, and the
first principal component should separate the phases without ever seeing a label.

What is computed (the defaults; see :func:`phase_classification_study`)
-----------------------------------------------------------------------
1. The inner shadow kernel ``k_gamma`` with ``gamma = 1`` (the paper's choice), its diagonal
   over pairs of *distinct* snapshots (``self_pairs=False``, as the paper's code does: a pair of
   a snapshot with itself adds ``exp(5 gamma) / T`` to the diagonal and nothing else).
2. The paper's outer map ``exp(tau k)`` with ``tau = 30``, normalized to unit diagonal, i.e. the
   Gaussian kernel ``exp(-tau/2 ||phi_i - phi_j||^2)`` on the inner kernel's feature vectors.
3. Kernel PCA (:func:`kernel_pca`) and the AUC of the first component against the phase labels
   (``max(auc, 1 - auc)``: the sign of a principal component is arbitrary).

Why not kernel PCA of the inner kernel itself: with uniformly random single-qubit Cliffords in
every layer, the average over circuits of any state is maximally mixed, so for ``d >= 1`` the
expected kernel between two *different* states is the same constant whatever their phases;
only the diagonal differs (a shallow-circuit product state has purer small regions than a toric
code). In feature space the toric-code states sit together while each trivial state sticks out
in its own random direction, and the largest principal components lie *among* the trivial
states instead of between the phases: at L = 10, 500 snapshots, 20 states and gamma = 1, the
first component of the plain inner kernel gives AUC 0.51 to 0.72 at depths 1 to 4 (seeds 0 to
5 and 2022), and gamma in 0.5..4 does not help (0.5 to 0.8 in trial runs). The normalized outer
kernel decays with feature distance, so the tight toric cluster becomes one block and PC1
separates it from the rest (AUC 1.0 at every depth for each of those seeds; each result also
records the inner kernel's AUC, ``auc_inner``, for comparison). ``tau`` sets the distance
scale: the squared feature distances between states shrink with depth (median about 0.06 at
depth 4, gamma = 1, L = 10), and ``tau / 2`` times that should be of order one; tau = 10 to 100
worked in trial runs at L = 10, tau = 3 failed at depths 3 and 4. Those trial runs (seeds 0 to
5 and 2022) chose tau = 30; on held-out seeds 101 to 105, never used for the choice, it gives
AUC 1.0 at every depth as well (``benchmarks/bench_phases.py`` reports both).

(The paper's published analysis code also normalizes the inner kernel, ``K_ij / sqrt(K_ii
K_jj)``, but then runs linear PCA on the *rows* of that matrix, i.e. kernel PCA of its square;
that too separates the phases here, but it is not kernel PCA of the shadow kernel.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.errors import ShadowlabError

__all__ = ["PhaseDepthResult", "PhaseStudy", "kernel_pca", "phase_classification_study"]


def kernel_pca(K: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Kernel PCA of a precomputed Gram matrix: the ``(N, n_components)`` embedding.

    The Gram matrix is centered in feature space, ``Kc = H K H`` with ``H = I - 11^T / N``; the
    embedding's column ``c`` is the eigenvector of the ``c``-th largest eigenvalue ``lambda_c``
    of ``Kc`` times ``sqrt(lambda_c)`` (the projections of the centered feature vectors on the
    principal axes; what ``sklearn.decomposition.KernelPCA(kernel="precomputed")`` returns).
    Components with a non-positive eigenvalue are 0. Signs are fixed so that each column's
    entry of largest magnitude is positive.

    Raises
    ------
    ShadowlabError
        If ``K`` is not a finite, square, symmetric matrix or ``n_components`` is not in
        ``1..N``.
    """
    k = np.asarray(K, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] < 1:
        raise ShadowlabError(f"kernel PCA needs a square Gram matrix, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ShadowlabError("the Gram matrix has non-finite entries")
    scale = max(float(np.abs(k).max()), np.finfo(float).tiny)
    if not np.allclose(k, k.T, rtol=1e-10, atol=1e-12 * scale):
        raise ShadowlabError("the Gram matrix is not symmetric")
    n = k.shape[0]
    if not 1 <= n_components <= n:
        raise ShadowlabError(f"n_components must be in 1..{n}, got {n_components}")
    kc = k - k.mean(axis=0, keepdims=True)
    kc = kc - kc.mean(axis=1, keepdims=True)
    kc = 0.5 * (kc + kc.T)  # exact symmetry for eigh
    values, vectors = np.linalg.eigh(kc)
    order = np.argsort(values)[::-1][:n_components]
    values, vectors = values[order], vectors[:, order]
    big = np.argmax(np.abs(vectors), axis=0)
    vectors = vectors * np.sign(vectors[big, np.arange(n_components)])
    return vectors * np.sqrt(np.clip(values, 0.0, None))


@dataclass(frozen=True)
class PhaseDepthResult:
    """One circuit depth of :func:`phase_classification_study`.

    ``labels`` are 1 = topological, 0 = trivial; ``embedding`` is ``(N, 2)`` (PC1, PC2) of the
    study's kernel; ``auc`` its PC1's AUC for the labels, ``max(auc, 1 - auc)``; ``auc_inner``
    the same for kernel PCA of the plain inner kernel ``k_gamma`` (for comparison);
    ``kernel_seconds`` the wall time of the kernel matrix (packing, pair counts and maps) and
    ``sample_seconds`` of preparing and sampling the states.
    """

    depth: int
    auc: float
    auc_inner: float
    kernel_seconds: float
    sample_seconds: float
    embedding: np.ndarray
    labels: np.ndarray
    kernel: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (arrays as lists)."""
        return {"depth": self.depth, "auc": self.auc, "auc_inner": self.auc_inner,
                "kernel_seconds": self.kernel_seconds, "sample_seconds": self.sample_seconds,
                "embedding": self.embedding.tolist(), "labels": self.labels.tolist(), "kernel": self.kernel.tolist()}


@dataclass(frozen=True)
class PhaseStudy:
    """Result of :func:`phase_classification_study`: its parameters and one result per depth."""

    size: int
    n_qubits: int
    n_states: int
    n_snapshots: int
    gamma: float
    tau: float | None
    normalize: bool
    seed: int
    results: list[PhaseDepthResult] = field(default_factory=list)

    @property
    def depths(self) -> list[int]:
        """The circuit depths, in study order."""
        return [r.depth for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of the whole study."""
        return {"size": self.size, "n_qubits": self.n_qubits, "n_states": self.n_states,
                "n_snapshots": self.n_snapshots, "gamma": self.gamma, "tau": self.tau, "normalize": self.normalize,
                "seed": self.seed, "results": [r.to_dict() for r in self.results]}


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    a = float(roc_auc_score(labels, score))
    return max(a, 1.0 - a)


def phase_classification_study(
    size: int = 10,
    depths: Sequence[int] = (0, 1, 2, 3, 4),
    n_states: int = 20,
    n_snapshots: int = 500,
    *,
    gamma: float = 1.0,
    tau: float | None = 30.0,
    normalize: bool = True,
    seed: int = 2022,
    trivial: str = "zero",
    progress: Callable[[str], object] | None = None,
) -> PhaseStudy:
    """Kernel PCA of the shadow kernel on toric-code and trivial states, per circuit depth.

    Parameters
    ----------
    size:
        Torus size ``L``: ``2 L^2`` qubits (``L = 10``: 200).
    depths:
        Depths of the random local Clifford circuits (a fresh set of states per depth).
    n_states:
        States per depth, ``ceil(n/2)`` toric code and ``floor(n/2)`` trivial (at least 2).
    n_snapshots:
        Snapshots per state, each in its own uniformly random local Pauli basis.
    gamma, tau, normalize:
        The kernel (see :func:`shadowlab.learn.shadow_kernel.shadow_kernel_matrix`; the diagonal
        always uses distinct snapshot pairs). The defaults are the ones that separate the
        phases; ``tau=None, normalize=False`` is the plain inner kernel.
    seed:
        Depth ``d`` uses ``numpy.random.default_rng([seed, d])`` for its circuits, bases and
        outcomes, so a depth's data do not depend on which other depths are run.
    trivial:
        Product state of the trivial phase, ``"zero"`` or ``"plus"``.
    progress:
        Optional ``callable(message)`` called after each depth.

    Returns
    -------
    PhaseStudy
    """
    from shadowlab.acquire.phases import phase_states
    from shadowlab.acquire.stim_sampler import sample_stim
    from shadowlab.data.dataset import uniform_settings
    from shadowlab.learn.shadow_kernel import log_shadow_kernel_matrix, normalize_kernel, outer_kernel

    if size < 2:
        raise ShadowlabError(f"size L must be >= 2, got {size}")
    if n_states < 2:
        raise ShadowlabError(f"n_states must be >= 2 (both phases), got {n_states}")
    if n_snapshots < 2:
        raise ShadowlabError(f"n_snapshots must be >= 2, got {n_snapshots}")
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 0:
        raise ShadowlabError(f"depths must be a non-empty list of integers >= 0, got {depths}")
    n = 2 * size * size
    study = PhaseStudy(size, n, n_states, n_snapshots, float(gamma), None if tau is None else float(tau),
                       bool(normalize), int(seed))
    for depth in depths:
        rng = np.random.default_rng([seed, depth])
        t0 = time.perf_counter()
        states = phase_states(size, depth, n_states, rng, trivial=trivial)
        data = [sample_stim(circuit, uniform_settings(n, n_snapshots, rng), 1, rng) for circuit, _ in states]
        labels = np.array([label for _, label in states], dtype=np.int64)
        t1 = time.perf_counter()
        # The log domain keeps every form finite for any allowed gamma (see shadow_kernel).
        log_inner = log_shadow_kernel_matrix(data, gamma=gamma, self_pairs=False)
        if tau is not None:
            kernel = outer_kernel(log_inner, tau, normalize=normalize, log=True)
        else:
            kernel = normalize_kernel(log_inner, log=True) if normalize else np.exp(log_inner)
        t2 = time.perf_counter()
        embedding = kernel_pca(kernel, 2)
        # The plain inner kernel up to a positive factor (same principal axes, same AUC).
        inner = np.exp(log_inner - log_inner.max())
        result = PhaseDepthResult(depth, _auc(labels, embedding[:, 0]), _auc(labels, kernel_pca(inner, 1)[:, 0]),
                                  t2 - t1, t1 - t0, embedding, labels, kernel)
        study.results.append(result)
        if progress is not None:
            progress(f"depth {depth}: AUC {result.auc:.3f}, kernel {result.kernel_seconds:.2f} s")
    return study

