"""Learning physical dynamics: time-reversal-symmetric versus scrambling circuits.

A reproduction, by state-vector simulation, of the dynamics experiment of Huang et al.,
"Quantum advantage in learning from experiments", Science 376, 1182 (2022): tell apart
evolutions ``U`` that are time-reversal (T) symmetric, here real orthogonal circuits
(``U = U*``), from scrambling ones (general unitary circuits), with and without a quantum memory.

Circuits
--------
An ``n``-qubit brickwork of ``depth`` layers; layer ``l`` applies two-qubit gates to the pairs
``(q, q + 1)`` with ``q = l mod 2, l mod 2 + 2, ...`` (open boundary). T-symmetric class: every
gate a Haar-random element of O(4); scrambling class: every gate Haar-random in U(4). A gate
matrix acts on the pair with qubit ``q`` as the more significant bit of its 4-dim index.

Qubit order everywhere: qubit 0 is the most significant bit of a state index.

Two-copy protocol (quantum memory)
----------------------------------
``2n`` qubits: system ``S`` = qubits ``0..n-1``, memory ``M`` = qubits ``n..2n-1``. Prepare ``n``
Bell pairs ``|Phi+>`` on ``(S_k, M_k)``; apply ``U`` to ``S``; swap ``S`` and ``M``; apply ``U`` to
``S``; measure every pair in the Bell basis with shadowlab's convention (CNOT ``S_k -> M_k``, then
H on ``S_k``; bit ``a_k`` from ``S_k``, ``c_k`` from ``M_k``; ``X (x) X = (-1)**a``,
``Z (x) Z = (-1)**c``, ``|Phi+> <-> (a, c) = (0, 0)``). The state before the Bell measurement is
``(U U^T (x) I) |Phi+>``, so the outcome ``(a, c)`` has probability
``|tr(sigma^dagger U U^T)|**2 / 4**n`` with ``sigma = (x)_k Z**a_k X**c_k``; for real orthogonal
``U`` every pair is found in ``|Phi+>`` on every shot, for scrambling ``U`` almost never all of them.

One-copy protocol (conventional)
--------------------------------
Prepare ``U |0^n>`` and measure every qubit in the Y basis (``H S^dagger``, then Z); bit 0 is the
``+1`` eigenvalue of Y. A real state has ``<Y_A> = 0`` for every odd-size subset ``A`` (the
expectation is both real and purely imaginary); a scrambling state has ``<Y_A>**2 ~ 2**-n``.

Classification
--------------
Per circuit, a feature vector of *T-violation* measures, each zero in expectation for the
T-symmetric class and positive for the scrambling class:

* two-copy: for every pair ``k``, the fraction of shots in which the pair was *not* found in
  ``|Phi+>`` (``a_k | c_k``);
* one-copy: for every odd subset ``A`` (all of them, or those of weight ``<= max_weight``), the
  unbiased estimate ``(N m_A**2 - 1) / (N - 1)`` of ``<Y_A>**2`` from the ``N`` shots' sample mean
  ``m_A`` of ``(-1)**(parity of the bits in A)``; by default these are summed over the subsets of
  each odd weight (:func:`weight_spectrum`, ``ceil(n / 2)`` features), because PCA on the
  ``2**(n-1)`` individual estimates follows the circuit-to-circuit spread of single ``<Y_A>**2``
  rather than the class difference (measured at n = 8, depth 8, 2 repeats of 50 circuits per class,
  two-means clustering: about 85% accuracy from 10**3 to 10**4 shots, against 99-100% with the
  weight sums).

The features of all circuits are projected on their first principal component (PCA of the
centred feature matrix, no scaling: all features of a protocol share one scale). Unsupervised
rule (labels never used): PC1 is oriented so that its loadings sum to a non-negative number
(a larger score means more T-violation), the scores are cut in two clusters by minimum-error
thresholding (the best split into two Gaussians of unequal variances; the T-symmetric cluster is
tight and the scrambling one broad, which makes plain two-means / Otsu cut through the
scrambling cluster), and the low-score cluster is labelled T-symmetric. Supervised variant: PCA
fitted on a stratified half of the circuits, the threshold and orientation chosen to maximize
the accuracy on that half, accuracy reported on the other half.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.errors import ShadowlabError

MAX_QUBITS = 12
"""Largest ``n`` accepted: the two-copy state has ``2n`` qubits (``4**12`` amplitudes = 256 MiB)."""

PROTOCOLS = ("two_copy", "one_copy")
"""Protocol names used as keys in :class:`DynamicsResult`."""

_H = np.array([[1.0, 1.0], [1.0, -1.0]], dtype=np.complex128) / math.sqrt(2.0)
# H S^dagger maps the +1 eigenvector of Y, (|0> + i|1>)/sqrt(2), to |0>.
_Y_TO_Z = _H @ np.diag([1.0, -1j]).astype(np.complex128)
_CNOT = np.eye(4, dtype=np.complex128)[[0, 1, 3, 2]]
_SWAP = np.eye(4, dtype=np.complex128)[[0, 2, 1, 3]]


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------


def _check_n(n_qubits: int) -> int:
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, int | np.integer):
        raise ShadowlabError(f"n_qubits must be an integer, got {n_qubits!r}")
    n = int(n_qubits)
    if n < 2:
        raise ShadowlabError(f"n_qubits must be >= 2 (a brickwork needs two-qubit gates), got {n}")
    if n > MAX_QUBITS:
        raise ShadowlabError(
            f"n_qubits = {n} is too large for state-vector simulation: the two-copy state has 2n = {2 * n} "
            f"qubits; at most n = {MAX_QUBITS} is supported"
        )
    return n


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ShadowlabError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ShadowlabError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ShadowlabError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    return rng


def _check_shots_grid(shots_grid: Sequence[int] | np.ndarray) -> np.ndarray:
    grid = np.asarray(shots_grid)
    if grid.ndim != 1 or grid.size == 0:
        raise ShadowlabError(f"shots_grid must be a non-empty 1-D sequence of shot counts, got shape {grid.shape}")
    if not np.issubdtype(grid.dtype, np.integer):
        if not np.all(np.isfinite(grid)) or np.any(grid != np.round(grid)):
            raise ShadowlabError(f"shots_grid must hold integers, got {grid.tolist()}")
        grid = grid.astype(np.int64)
    if grid.min() < 1:
        raise ShadowlabError(f"every shot count must be >= 1, got {grid.tolist()}")
    if np.any(np.diff(grid) <= 0):
        raise ShadowlabError(f"shots_grid must be strictly increasing, got {grid.tolist()}")
    return grid.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# circuits
# ----------------------------------------------------------------------------------------------


def haar_orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random real orthogonal ``dim x dim`` matrix (the whole of O(dim), both determinants).

    QR of a real Gaussian matrix, with the signs of R's diagonal moved into Q: without that
    correction Q is not Haar distributed (Mezzadri, Notices AMS 54, 592 (2007)).
    """
    z = rng.standard_normal((dim, dim))
    q, r = np.linalg.qr(z)
    return q * np.sign(np.diag(r))[None, :]


def haar_unitary(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random ``dim x dim`` unitary (QR of a complex Ginibre matrix with R's phases fixed)."""
    z = (rng.standard_normal((dim, dim)) + 1j * rng.standard_normal((dim, dim))) / math.sqrt(2.0)
    q, r = np.linalg.qr(z)
    d = np.diag(r)
    return q * (d / np.abs(d))[None, :]


@dataclass(frozen=True)
class BrickworkCircuit:
    """An ``n``-qubit brickwork of two-qubit gates.

    Parameters
    ----------
    n_qubits:
        Number of qubits ``n``.
    depth:
        Number of brick layers.
    gates:
        ``(q, G)`` in application order: the 4x4 matrix ``G`` acts on qubits ``(q, q + 1)``, qubit
        ``q`` being the more significant bit of ``G``'s index.
    time_symmetric:
        True if every gate is real orthogonal (then ``U = U*``).
    """

    n_qubits: int
    depth: int
    gates: tuple[tuple[int, np.ndarray], ...]
    time_symmetric: bool

    def apply(self, state: np.ndarray, *, offset: int = 0) -> np.ndarray:
        """Apply the circuit to qubits ``offset .. offset + n - 1`` of a state tensor of shape ``(2,) * N``."""
        for q, g in self.gates:
            state = _apply_2q(state, g, offset + q, offset + q + 1)
        return state

    def unitary(self) -> np.ndarray:
        """The dense ``2**n x 2**n`` matrix of the circuit (for tests; columns are ``U|j>``)."""
        n = self.n_qubits
        dim = 1 << n
        # Columns of the identity, evolved as a batch: the last axis is the batch index.
        cols = np.eye(dim, dtype=np.complex128).reshape((2,) * n + (dim,))
        return self.apply(cols).reshape(dim, dim)


def brickwork_circuit(
    n_qubits: int, depth: int, rng: np.random.Generator, *, time_symmetric: bool
) -> BrickworkCircuit:
    """A random brickwork circuit of Haar-random O(4) (T-symmetric) or U(4) (scrambling) gates.

    Parameters
    ----------
    n_qubits:
        Number of qubits, ``2 <= n <= MAX_QUBITS``.
    depth:
        Number of layers (>= 1); layer ``l`` starts at qubit ``l mod 2``.
    rng:
        The only source of randomness.
    time_symmetric:
        True for real orthogonal gates, False for general unitary gates.

    Examples
    --------
    >>> import numpy as np
    >>> c = brickwork_circuit(3, 2, np.random.default_rng(0), time_symmetric=True)
    >>> [q for q, _ in c.gates], bool(np.allclose(c.unitary().imag, 0))
    ([0, 1], True)
    """
    n = _check_n(n_qubits)
    d = _check_positive("depth", depth)
    _check_rng(rng)
    gates: list[tuple[int, np.ndarray]] = []
    for layer in range(d):
        for q in range(layer % 2, n - 1, 2):
            g = haar_orthogonal(4, rng).astype(np.complex128) if time_symmetric else haar_unitary(4, rng)
            gates.append((q, g))
    return BrickworkCircuit(n, d, tuple(gates), bool(time_symmetric))


def _apply_2q(state: np.ndarray, gate: np.ndarray, q1: int, q2: int) -> np.ndarray:
    """Apply a 4x4 gate to axes ``(q1, q2)`` of a state tensor (``q1`` = the gate's high bit)."""
    g = gate.reshape(2, 2, 2, 2)
    out = np.tensordot(g, state, axes=([2, 3], [q1, q2]))
    return np.moveaxis(out, [0, 1], [q1, q2])


def _apply_1q(state: np.ndarray, gate: np.ndarray, q: int) -> np.ndarray:
    out = np.tensordot(gate, state, axes=([1], [q]))
    return np.moveaxis(out, 0, q)


# ----------------------------------------------------------------------------------------------
# the two protocols
# ----------------------------------------------------------------------------------------------


def two_copy_state(circuit: BrickworkCircuit, *, bell_rotate: bool = True) -> np.ndarray:
    """The ``2n``-qubit state vector of the two-copy protocol, simulated gate by gate.

    Bell pairs on ``(S_k, M_k) = (k, n + k)``, ``U`` on S, SWAP gates ``S_k <-> M_k``, ``U`` on S,
    then (if ``bell_rotate``) the Bell-measurement rotation CNOT ``S_k -> M_k`` and H on ``S_k``.
    Without the rotation the result equals ``(U U^T (x) I)|Phi+>``.

    Returns
    -------
    numpy.ndarray
        Complex vector of length ``4**n``, qubit 0 the most significant bit of the index.
    """
    n = circuit.n_qubits
    dim = 1 << n
    # |Phi+>^{(x) n} on (S_k, M_k): amplitude 2^{-n/2} where the S bits equal the M bits.
    psi = np.zeros((dim, dim), dtype=np.complex128)
    psi[np.arange(dim), np.arange(dim)] = 1.0 / math.sqrt(dim)
    psi = psi.reshape((2,) * (2 * n))
    psi = circuit.apply(psi)
    for k in range(n):
        psi = _apply_2q(psi, _SWAP, k, n + k)
    psi = circuit.apply(psi)
    if bell_rotate:
        for k in range(n):
            psi = _apply_2q(psi, _CNOT, k, n + k)
            psi = _apply_1q(psi, _H, k)
    return psi.reshape(-1)


def one_copy_state(circuit: BrickworkCircuit, *, y_rotate: bool = True) -> np.ndarray:
    """``U|0^n>`` (length ``2**n``), followed by the Y-basis rotation ``H S^dagger`` on every qubit if ``y_rotate``."""
    n = circuit.n_qubits
    psi = np.zeros((2,) * n, dtype=np.complex128)
    psi[(0,) * n] = 1.0
    psi = circuit.apply(psi)
    if y_rotate:
        for k in range(n):
            psi = _apply_1q(psi, _Y_TO_Z, k)
    return psi.reshape(-1)


def _born_indices(state: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """``shots`` outcome indices drawn independently from the Born probabilities ``|state|**2``."""
    cdf = np.cumsum(np.abs(state) ** 2)
    # Normalize by the total, not by 1: the state's norm is 1 only up to rounding.
    u = rng.random(shots) * cdf[-1]
    idx = np.searchsorted(cdf, u, side="right")
    return np.minimum(idx, cdf.size - 1).astype(np.int64)


def _index_bits(idx: np.ndarray, n_bits: int) -> np.ndarray:
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.int64)
    return ((idx[:, None] >> shifts[None, :]) & 1).astype(np.uint8)


def sample_two_copy(circuit: BrickworkCircuit, shots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bell-basis shots of the two-copy protocol.

    Returns
    -------
    (a, c):
        uint8 arrays of shape ``(shots, n)``: ``a[s, k]`` read from ``S_k``, ``c[s, k]`` from ``M_k``.
        ``(a_k, c_k) = (0, 0)`` means pair ``k`` was found in ``|Phi+>``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> a, c = sample_two_copy(brickwork_circuit(3, 3, rng, time_symmetric=True), 4, rng)
    >>> int(a.sum() + c.sum())   # real orthogonal U: every pair in |Phi+> on every shot
    0
    """
    shots = _check_positive("shots", shots)
    _check_rng(rng)
    n = circuit.n_qubits
    idx = _born_indices(two_copy_state(circuit), shots, rng)
    bits = _index_bits(idx, 2 * n)
    return bits[:, :n], bits[:, n:]


def sample_one_copy(circuit: BrickworkCircuit, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Y-basis shots on ``U|0^n>``: uint8 ``(shots, n)``, bit 0 = eigenvalue ``+1`` of Y on that qubit."""
    shots = _check_positive("shots", shots)
    _check_rng(rng)
    idx = _born_indices(one_copy_state(circuit), shots, rng)
    return _index_bits(idx, circuit.n_qubits)


# ----------------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------------


def two_copy_features(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per-pair fraction of shots *not* in ``|Phi+>`` (``a_k | c_k``): shape ``(n,)``, 0 for T-symmetric U.

    Examples
    --------
    >>> import numpy as np
    >>> two_copy_features(np.array([[0, 1], [0, 0]]), np.array([[1, 0], [0, 0]])).tolist()
    [0.5, 0.5]
    """
    a = np.asarray(a)
    c = np.asarray(c)
    if a.ndim != 2 or a.shape != c.shape or a.shape[0] < 1:
        raise ShadowlabError(f"a and c must both be (shots >= 1, n) arrays, got shapes {a.shape} and {c.shape}")
    return np.mean((a | c) != 0, axis=0)


def odd_y_subsets(n_qubits: int, max_weight: int | None = None) -> np.ndarray:
    """Integer masks of the odd-size qubit subsets ``A`` with ``|A| <= max_weight`` (default: all).

    Bit ``n - 1 - k`` of a mask is qubit ``k`` (the state-index convention). Sorted ascending.

    Examples
    --------
    >>> odd_y_subsets(3).tolist()   # {2}, {1}, {0}, {0, 1, 2}
    [1, 2, 4, 7]
    >>> odd_y_subsets(3, max_weight=1).tolist()
    [1, 2, 4]
    """
    n = int(n_qubits)
    if n < 1:
        raise ShadowlabError(f"n_qubits must be >= 1, got {n}")
    w = n if max_weight is None else int(max_weight)
    if w < 1:
        raise ShadowlabError(f"max_weight must be >= 1 (the smallest odd subset has one qubit), got {w}")
    masks = np.arange(1 << n, dtype=np.int64)
    weight = np.bitwise_count(masks)
    return masks[(weight % 2 == 1) & (weight <= w)]


def _walsh_hadamard(v: np.ndarray) -> np.ndarray:
    """Unnormalized Walsh-Hadamard transform along the last axis (length a power of two).

    ``out[..., A] = sum_y v[..., y] (-1)**popcount(A & y)``.
    """
    out = np.array(v, dtype=np.float64, copy=True)
    shape = out.shape
    size = shape[-1]
    h = 1
    while h < size:
        out = out.reshape(*shape[:-1], size // (2 * h), 2, h)
        lo = out[..., 0, :].copy()
        out[..., 0, :] += out[..., 1, :]
        out[..., 1, :] = lo - out[..., 1, :]
        out = out.reshape(shape)
        h *= 2
    return out


def one_copy_features_from_counts(counts: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Unbiased estimates of ``<Y_A>**2`` for the subsets ``masks`` from Y-basis outcome counts.

    Parameters
    ----------
    counts:
        ``(..., 2**n)`` histogram(s) of outcome indices (qubit 0 = most significant bit).
    masks:
        Subset masks, e.g. from :func:`odd_y_subsets`.

    Returns
    -------
    numpy.ndarray
        ``(..., len(masks))``: ``(N m_A**2 - 1) / (N - 1)`` where ``m_A`` is the sample mean of
        ``(-1)**parity(A & y)`` over the ``N`` shots. With ``N = 1`` no unbiased estimate exists
        (``m_A**2 = 1`` always), and the feature is 0: a single shot says nothing about ``<Y_A>**2``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_shots = counts.sum(axis=-1, keepdims=True)
    if np.any(n_shots < 1):
        raise ShadowlabError("every histogram needs at least one shot")
    m = _walsh_hadamard(counts)[..., masks] / n_shots
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (n_shots * m * m - 1.0) / (n_shots - 1.0)
    return np.where(n_shots > 1, est, 0.0)


def weight_spectrum(features: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Sum per-subset features over the subsets of each weight: ``(..., K) -> (..., W)``.

    Column ``i`` is the sum over the subsets of the ``i``-th smallest weight present in ``masks``
    (``W`` distinct weights). Summing the ``C(n, w)`` unbiased ``<Y_A>**2`` estimates of a weight
    averages away most of their shot noise and of the circuit-to-circuit spread of individual
    ``<Y_A>**2`` values, which otherwise dominates the first principal component. Sums, not
    means: a weight class with more subsets has a better signal-to-noise ratio and should weigh
    more in the (unscaled) PCA; the sum over all odd weights is the total
    ``sum_{|A| odd} <Y_A>**2 = 2**(n-2) sum_y (p(y) - p(not y))**2``, the asymmetry of the Y-basis
    distribution under flipping every bit, which vanishes for every real state (then ``p(y) = p(not y)``).

    Examples
    --------
    >>> weight_spectrum(np.array([1.0, 2.0, 3.0, 4.0]), odd_y_subsets(3)).tolist()   # weights 1, 1, 1, 3
    [6.0, 4.0]
    """
    weights = np.bitwise_count(np.asarray(masks, dtype=np.int64))
    features = np.asarray(features, dtype=np.float64)
    return np.stack([features[..., weights == w].sum(axis=-1) for w in np.unique(weights)], axis=-1)


def one_copy_features(bits: np.ndarray, max_weight: int | None = None) -> np.ndarray:
    """Unbiased ``<Y_A>**2`` estimates for the odd subsets of weight ``<= max_weight`` from Y-basis shots.

    Examples
    --------
    >>> import numpy as np
    >>> f = one_copy_features(np.array([[0, 0], [0, 0], [1, 0]], dtype=np.uint8))
    >>> f.round(3).tolist()   # A = {1}: all +1 -> 1; A = {0}: m = 1/3 -> (3/9 - 1)/2 = -1/3
    [1.0, -0.333]
    """
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[0] < 1 or bits.shape[1] < 1:
        raise ShadowlabError(f"bits must be a (shots >= 1, n >= 1) array, got shape {bits.shape}")
    n = bits.shape[1]
    weights = 1 << np.arange(n - 1, -1, -1, dtype=np.int64)
    idx = bits.astype(np.int64) @ weights
    counts = np.bincount(idx, minlength=1 << n)
    return one_copy_features_from_counts(counts, odd_y_subsets(n, max_weight))


# ----------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------


def pca_first_component(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """First principal component of the rows of ``features`` (centred, not scaled).

    Returns
    -------
    (scores, loading, explained):
        PC1 scores of the rows, the unit loading vector, and the fraction of the total variance
        PC1 explains (0 if the features do not vary). The sign is fixed so that the loadings sum
        to ``>= 0``: with T-violation features, a larger score means more violation.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ShadowlabError(f"PCA needs a (samples >= 2, features) matrix, got shape {x.shape}")
    xc = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    loading = vt[0]
    if loading.sum() < 0:
        loading = -loading
    total = float(np.sum(s * s))
    explained = float(s[0] ** 2 / total) if total > 0 else 0.0
    return xc @ loading, loading, explained


def two_means_threshold(scores: np.ndarray) -> float:
    """Threshold splitting 1-D scores into two clusters with the largest between-cluster variance.

    The threshold lies midway between the two neighbouring distinct scores of the best split. If
    all scores are equal there is no split and ``+inf`` is returned (one cluster).

    Examples
    --------
    >>> two_means_threshold(np.array([0.0, 0.1, 0.2, 5.0, 5.2]))
    2.6
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))
    m = s.size
    if m < 2 or s[0] == s[-1]:
        return math.inf
    k = np.arange(1, m)  # split after k smallest
    csum = np.cumsum(s)
    mu_lo = csum[:-1] / k
    mu_hi = (csum[-1] - csum[:-1]) / (m - k)
    between = k * (m - k) * (mu_hi - mu_lo) ** 2
    # Only cut between distinct values; a cut between equal scores would split a tie arbitrarily.
    between[s[1:] == s[:-1]] = -1.0
    best = int(np.argmax(between))
    return float(0.5 * (s[best] + s[best + 1]))


def min_error_threshold(scores: np.ndarray, *, var_floor: float = 1e-4) -> float:
    """Threshold of the best two-Gaussian split of 1-D scores, each cluster with its own variance.

    Minimum-error thresholding (Kittler & Illingworth, Pattern Recognit. 19, 41 (1986)): over all
    cuts of the sorted scores leaving at least two points on each side, minimize the
    classification log-likelihood cost ``k log(s_lo) + (m - k) log(s_hi) - k log(k/m) -
    (m - k) log((m - k)/m)`` of Gaussians fitted to the two sides. Two-means
    (:func:`two_means_threshold`) assumes clusters of equal spread; here the T-symmetric cluster
    is tight (its features are zero up to shot noise) while the scrambling one is broad (its
    T-violation varies from circuit to circuit), and two-means then tends to cut through the
    broad cluster. Each variance is floored at ``var_floor`` times the total variance, so that a
    cluster of identical scores (noise-free T-symmetric circuits) has a finite cost. Every cut is
    scored exactly (``O(m)`` with cumulative sums), so there are no local optima as in EM.

    Returns
    -------
    float
        Midpoint between the two scores either side of the best cut; ``+inf`` if fewer than four
        points or all scores are equal (one cluster).

    Examples
    --------
    >>> s = np.array([0.0, 0.01, -0.01, 0.0, 0.3, 0.9, 1.6, 2.4])
    >>> min_error_threshold(s), two_means_threshold(s)
    (0.155, 1.25)
    """
    x = np.sort(np.asarray(scores, dtype=np.float64))
    m = x.size
    total = float(x.var())
    if m < 4 or total == 0.0:
        return math.inf
    k = np.arange(2, m - 1)  # cut after the k smallest scores
    c1 = np.cumsum(x)
    c2 = np.cumsum(x * x)
    mean_lo = c1[k - 1] / k
    var_lo = c2[k - 1] / k - mean_lo**2
    mean_hi = (c1[-1] - c1[k - 1]) / (m - k)
    var_hi = (c2[-1] - c2[k - 1]) / (m - k) - mean_hi**2
    floor = var_floor * total
    var_lo = np.maximum(var_lo, floor)
    var_hi = np.maximum(var_hi, floor)
    cost = 0.5 * (k * np.log(var_lo) + (m - k) * np.log(var_hi)) - k * np.log(k / m) - (m - k) * np.log((m - k) / m)
    # Only cut between distinct values; a cut between equal scores would split a tie arbitrarily.
    cost[x[k] == x[k - 1]] = np.inf
    if not np.isfinite(cost).any():
        return math.inf
    best = int(k[np.argmin(cost)])
    return float(0.5 * (x[best - 1] + x[best]))


def classify_unsupervised(features: np.ndarray, *, rule: str = "min_error") -> tuple[np.ndarray, np.ndarray]:
    """Label circuits T-symmetric without labels: PC1, two clusters, low-score cluster = T-symmetric.

    Parameters
    ----------
    features:
        ``(circuits, features)`` T-violation features.
    rule:
        ``"min_error"`` (default, :func:`min_error_threshold`) or ``"two_means"``
        (:func:`two_means_threshold`).

    Returns
    -------
    (predicted, scores):
        Boolean array (True = T-symmetric) and the PC1 scores.
    """
    scores, _, _ = pca_first_component(features)
    if rule == "min_error":
        return scores <= min_error_threshold(scores), scores
    if rule == "two_means":
        return scores <= two_means_threshold(scores), scores
    raise ShadowlabError(f"rule must be 'min_error' or 'two_means', got {rule!r}")


def _best_split(scores: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Threshold and orientation (+1: low score = T-symmetric) with the highest accuracy on labelled scores."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    y = labels[order].astype(np.int64)
    m = s.size
    # Cut after the first k sorted scores, k = 0..m; low side predicted T-symmetric (orientation +1).
    t_low = np.concatenate([[0], np.cumsum(y)])
    f_high = np.concatenate([np.cumsum((1 - y)[::-1])[::-1], [0]])  # scrambling among the last m - k
    correct_plus = t_low + f_high
    correct_minus = m - correct_plus
    valid = np.ones(m + 1, dtype=bool)
    valid[1:m] = s[1:] != s[:-1]
    best_plus = np.where(valid, correct_plus, -1)
    best_minus = np.where(valid, correct_minus, -1)
    if best_plus.max() >= best_minus.max():
        k, orient = int(np.argmax(best_plus)), 1
    else:
        k, orient = int(np.argmax(best_minus)), -1
    if k == 0:
        thr = -math.inf
    elif k == m:
        thr = math.inf
    else:
        thr = float(0.5 * (s[k - 1] + s[k]))
    return thr, orient


def classify_supervised(
    features: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, train_fraction: float = 0.5
) -> float:
    """Test accuracy of PCA + a threshold fitted on a stratified training split.

    PCA (centring and loading) and the threshold/orientation maximizing the training accuracy are
    fitted on the training circuits only; the returned accuracy is on the remaining circuits.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if not 0.0 < train_fraction < 1.0:
        raise ShadowlabError(f"train_fraction must be in (0, 1), got {train_fraction}")
    train = np.zeros(y.size, dtype=bool)
    for cls in (True, False):
        members = np.flatnonzero(y == cls)
        k = min(max(1, round(train_fraction * members.size)), members.size - 1)
        if k < 1:
            raise ShadowlabError("the supervised split needs at least two circuits of each class")
        train[rng.choice(members, size=k, replace=False)] = True
    mean = x[train].mean(axis=0, keepdims=True)
    _, loading, _ = pca_first_component(x[train])
    s_train = (x[train] - mean) @ loading
    s_test = (x[~train] - mean) @ loading
    thr, orient = _best_split(s_train, y[train])
    pred = (s_test <= thr) if orient == 1 else (s_test > thr)
    return float(np.mean(pred == y[~train]))


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of circuits whose predicted class equals the true one."""
    return float(np.mean(np.asarray(predicted, dtype=bool) == np.asarray(labels, dtype=bool)))


def shots_to_reach(shots_grid: np.ndarray, acc: np.ndarray, target: float) -> int | None:
    """Smallest grid value from which the accuracy stays ``>= target`` for every larger grid value.

    Requiring the target to hold from there on (not only at one grid point) keeps a lucky
    fluctuation at small shots from being reported. None if the last grid value misses the target.

    Examples
    --------
    >>> shots_to_reach(np.array([1, 10, 100, 1000]), np.array([0.5, 0.96, 0.94, 0.99]), 0.95)
    1000
    """
    ok = np.asarray(acc) >= target
    if not ok[-1]:
        return None
    first_fail_from_end = np.flatnonzero(~ok)
    start = 0 if first_fail_from_end.size == 0 else int(first_fail_from_end[-1]) + 1
    return int(np.asarray(shots_grid)[start])


# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------


@dataclass
class DynamicsResult:
    """Accuracy against shots per circuit for both protocols (see the module docstring for the rules).

    Attributes
    ----------
    n_qubits, depth, n_circuits, n_repeats:
        System size, brickwork depth, circuits *per class* in each repeat, independent repeats
        (fresh circuits and shots each time).
    shots_grid:
        Shots per circuit (per protocol; a two-copy shot uses two queries of ``U``).
    target_accuracy:
        The accuracy for which ``shots_needed`` is reported.
    accuracy:
        ``protocol -> (n_repeats, n_grid)`` unsupervised accuracies.
    accuracy_supervised:
        ``protocol -> (n_repeats, n_grid)`` test accuracies of the supervised variant.
    explained:
        ``protocol -> (n_repeats, n_grid)`` fraction of the feature variance on PC1.
    shots_needed, shots_needed_supervised:
        ``protocol -> shots`` from which the mean accuracy stays at or above the target, or None.
    pc1_scores:
        ``protocol -> (n_grid, 2 * n_circuits)`` PC1 scores in the first repeat.
    labels:
        ``(2 * n_circuits,)`` True for T-symmetric circuits, the order of ``pc1_scores``' columns.
    max_weight:
        Largest odd-subset weight of the one-copy features (None = all odd subsets).
    one_copy_feature_map:
        ``"weight"`` (per-weight sums) or ``"subset"`` (one feature per odd subset).
    rule:
        Unsupervised clustering rule of the PC1 scores (``"min_error"`` or ``"two_means"``).
    seed:
        The integer seed, if one was given.
    wall_time_s:
        Wall-clock seconds of the study.
    """

    n_qubits: int
    depth: int
    n_circuits: int
    n_repeats: int
    shots_grid: np.ndarray
    target_accuracy: float
    accuracy: dict[str, np.ndarray]
    accuracy_supervised: dict[str, np.ndarray]
    explained: dict[str, np.ndarray]
    shots_needed: dict[str, int | None]
    shots_needed_supervised: dict[str, int | None]
    pc1_scores: dict[str, np.ndarray]
    labels: np.ndarray
    max_weight: int | None = None
    one_copy_feature_map: str = "weight"
    rule: str = "min_error"
    seed: int | None = None
    wall_time_s: float = 0.0
    protocols: tuple[str, ...] = field(default=PROTOCOLS)

    def mean_accuracy(self, protocol: str, *, supervised: bool = False) -> np.ndarray:
        """Accuracy averaged over repeats, per grid value."""
        table = self.accuracy_supervised if supervised else self.accuracy
        if protocol not in table:
            raise ShadowlabError(f"unknown protocol {protocol!r}; expected one of {tuple(table)}")
        return table[protocol].mean(axis=0)

    @property
    def shot_ratio(self) -> float | None:
        """One-copy over two-copy shots needed for the target (unsupervised); None if either is missing."""
        one, two = self.shots_needed.get("one_copy"), self.shots_needed.get("two_copy")
        if one is None or two is None:
            return None
        return one / two

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary (arrays as nested lists)."""
        return {
            "n_qubits": self.n_qubits,
            "depth": self.depth,
            "n_circuits_per_class": self.n_circuits,
            "n_repeats": self.n_repeats,
            "seed": self.seed,
            "max_weight": self.max_weight,
            "one_copy_feature_map": self.one_copy_feature_map,
            "rule": self.rule,
            "target_accuracy": self.target_accuracy,
            "shots_grid": self.shots_grid.tolist(),
            "accuracy_mean": {p: self.mean_accuracy(p).tolist() for p in self.protocols},
            "accuracy_min": {p: self.accuracy[p].min(axis=0).tolist() for p in self.protocols},
            "accuracy_supervised_mean": {p: self.mean_accuracy(p, supervised=True).tolist() for p in self.protocols},
            "explained_mean": {p: self.explained[p].mean(axis=0).tolist() for p in self.protocols},
            "shots_needed": dict(self.shots_needed),
            "shots_needed_supervised": dict(self.shots_needed_supervised),
            "shot_ratio": self.shot_ratio,
            "wall_time_s": self.wall_time_s,
        }


def _prefix_counts(idx: np.ndarray, grid: np.ndarray, size: int) -> np.ndarray:
    """Histograms of the first ``g`` outcomes for every ``g`` in ``grid``: shape ``(n_grid, size)``."""
    out = np.empty((grid.size, size), dtype=np.int64)
    prev = np.zeros(size, dtype=np.int64)
    start = 0
    for j, g in enumerate(grid):
        # Incremental: each grid value adds only the shots since the previous one.
        prev = prev + np.bincount(idx[start:g], minlength=size)
        out[j] = prev
        start = int(g)
    return out


def _two_copy_prefix_features(idx: np.ndarray, n: int, grid: np.ndarray) -> np.ndarray:
    """:func:`two_copy_features` of the first ``g`` shots for every ``g`` in ``grid``: ``(n_grid, n)``."""
    low = (1 << n) - 1
    violated = (idx >> n) | (idx & low)  # bit of pair k set iff (a_k, c_k) != (0, 0)
    bits = _index_bits(violated, n).astype(np.int64)
    csum = np.cumsum(bits, axis=0)
    return csum[grid - 1] / grid[:, None]


def dynamics_study(
    n: int,
    shots_grid: Sequence[int] | np.ndarray,
    n_circuits: int = 50,
    depth: int | None = None,
    seed: int | np.random.Generator = 0,
    *,
    n_repeats: int = 5,
    target_accuracy: float = 0.95,
    max_weight: int | None = None,
    one_copy_feature_map: str = "weight",
    rule: str = "min_error",
) -> DynamicsResult:
    """Accuracy of PCA classification of T-symmetric vs scrambling circuits against shots per circuit.

    In each repeat, ``n_circuits`` circuits of each class are drawn; for every circuit the
    two-copy and one-copy protocols are each sampled ``max(shots_grid)`` times and the features at
    shot count ``g`` use the first ``g`` shots (so the curve is one experiment read at growing
    size). Both protocols see the same circuits.

    Parameters
    ----------
    n:
        Qubits per system, ``2 <= n <= MAX_QUBITS``.
    shots_grid:
        Strictly increasing shot counts per circuit (>= 1).
    n_circuits:
        Circuits per class in each repeat (>= 2; the supervised split needs two per class).
    depth:
        Brickwork depth (default ``n``).
    seed:
        Integer seed or a ``numpy.random.Generator``; repeats use independent child streams.
    n_repeats:
        Independent repeats; accuracies are averaged over them.
    target_accuracy:
        Accuracy in ``(0, 1]`` for which the shots needed are reported.
    max_weight:
        Largest odd-subset weight in the one-copy features (default: all odd subsets).
    one_copy_feature_map:
        ``"weight"`` (default): per-weight sums of the ``<Y_A>**2`` estimates; ``"subset"``: one
        feature per odd subset.
    rule:
        Unsupervised clustering of the PC1 scores: ``"min_error"`` (default) or ``"two_means"``.

    Examples
    --------
    >>> r = dynamics_study(4, [1, 30, 3000], n_circuits=8, seed=1, n_repeats=1)
    >>> r.accuracy["two_copy"][0].tolist(), float(r.accuracy["one_copy"][0, -1])
    ([1.0, 1.0, 1.0], 1.0)
    """
    t0 = time.perf_counter()
    n = _check_n(n)
    grid = _check_shots_grid(shots_grid)
    n_circuits = _check_positive("n_circuits", n_circuits)
    if n_circuits < 2:
        raise ShadowlabError(f"n_circuits must be >= 2 per class, got {n_circuits}")
    depth = n if depth is None else _check_positive("depth", depth)
    n_repeats = _check_positive("n_repeats", n_repeats)
    if not 0.0 < float(target_accuracy) <= 1.0:
        raise ShadowlabError(f"target_accuracy must be in (0, 1], got {target_accuracy}")
    if max_weight is not None and not 1 <= int(max_weight) <= n:
        raise ShadowlabError(f"max_weight must be between 1 and n = {n}, got {max_weight}")
    if one_copy_feature_map not in ("weight", "subset"):
        raise ShadowlabError(f"one_copy_feature_map must be 'weight' or 'subset', got {one_copy_feature_map!r}")
    if rule not in ("min_error", "two_means"):
        raise ShadowlabError(f"rule must be 'min_error' or 'two_means', got {rule!r}")
    if isinstance(seed, np.random.Generator):
        root, seed_int = seed, None
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        root, seed_int = np.random.default_rng(int(seed)), int(seed)
    else:
        raise ShadowlabError(f"seed must be an int or a numpy.random.Generator, got {seed!r}")

    masks = odd_y_subsets(n, max_weight)
    n_w = np.unique(np.bitwise_count(masks)).size
    max_shots = int(grid[-1])
    n_grid = grid.size
    labels = np.repeat([True, False], n_circuits)
    acc = {p: np.empty((n_repeats, n_grid)) for p in PROTOCOLS}
    acc_sup = {p: np.empty((n_repeats, n_grid)) for p in PROTOCOLS}
    expl = {p: np.empty((n_repeats, n_grid)) for p in PROTOCOLS}
    scores_first: dict[str, np.ndarray] = {}
    for r, rng in enumerate(root.spawn(n_repeats)):
        feats = {
            "two_copy": np.empty((n_grid, labels.size, n)),
            "one_copy": np.empty((n_grid, labels.size, masks.size if one_copy_feature_map == "subset" else n_w)),
        }
        for i, t_sym in enumerate(labels):
            circuit = brickwork_circuit(n, depth, rng, time_symmetric=bool(t_sym))
            idx2 = _born_indices(two_copy_state(circuit), max_shots, rng)
            feats["two_copy"][:, i] = _two_copy_prefix_features(idx2, n, grid)
            idx1 = _born_indices(one_copy_state(circuit), max_shots, rng)
            f1 = one_copy_features_from_counts(_prefix_counts(idx1, grid, 1 << n), masks)
            if one_copy_feature_map == "weight":
                f1 = weight_spectrum(f1, masks)
            feats["one_copy"][:, i] = f1
        for p in PROTOCOLS:
            if r == 0:
                scores_first[p] = np.empty((n_grid, labels.size))
            for j in range(n_grid):
                pred, scores = classify_unsupervised(feats[p][j], rule=rule)
                acc[p][r, j] = accuracy(pred, labels)
                expl[p][r, j] = pca_first_component(feats[p][j])[2]
                acc_sup[p][r, j] = classify_supervised(feats[p][j], labels, rng)
                if r == 0:
                    scores_first[p][j] = scores
    target = float(target_accuracy)
    return DynamicsResult(
        n_qubits=n,
        depth=depth,
        n_circuits=n_circuits,
        n_repeats=n_repeats,
        shots_grid=grid,
        target_accuracy=target,
        accuracy=acc,
        accuracy_supervised=acc_sup,
        explained=expl,
        shots_needed={p: shots_to_reach(grid, acc[p].mean(axis=0), target) for p in PROTOCOLS},
        shots_needed_supervised={p: shots_to_reach(grid, acc_sup[p].mean(axis=0), target) for p in PROTOCOLS},
        pc1_scores=scores_first,
        labels=labels,
        max_weight=None if max_weight is None else int(max_weight),
        one_copy_feature_map=one_copy_feature_map,
        rule=rule,
        seed=seed_int,
        wall_time_s=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------------------------
# figure
# ----------------------------------------------------------------------------------------------

_COLORS = {"two_copy": "tab:blue", "one_copy": "tab:orange"}
_NAMES = {"two_copy": "two-copy (quantum memory)", "one_copy": "one-copy (Y basis)"}


def plot_dynamics(result: DynamicsResult, path: str | Path, *, scatter_shots: int | None = None) -> Path:
    """Accuracy against shots per circuit (log x, both protocols) and the PC1 scores at one shot count.

    Parameters
    ----------
    result:
        A :func:`dynamics_study` result.
    path:
        Output image file (format from the suffix, e.g. ``.png``).
    scatter_shots:
        Grid value for the PC1 panel (first repeat); default the largest grid value <= 100 (the
        issue's two-copy budget), else the smallest grid value.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files, not windows: runs headless
    import matplotlib.pyplot as plt

    grid = result.shots_grid
    if scatter_shots is None:
        below = grid[grid <= 100]
        scatter_shots = int(below[-1]) if below.size else int(grid[0])
    hits = np.flatnonzero(grid == scatter_shots)
    if hits.size == 0:
        raise ShadowlabError(f"scatter_shots = {scatter_shots} is not in the shots grid {grid.tolist()}")
    j = int(hits[0])

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    for p in result.protocols:
        acc = result.accuracy[p]
        c = _COLORS.get(p)
        left.plot(grid, acc.mean(axis=0), "o-", color=c, label=f"{_NAMES.get(p, p)}, unsupervised")
        left.fill_between(grid, acc.min(axis=0), acc.max(axis=0), color=c, alpha=0.2, lw=0)
        left.plot(grid, result.mean_accuracy(p, supervised=True), "--", color=c, lw=1,
                  label=f"{_NAMES.get(p, p)}, supervised (test half)")
    left.axhline(result.target_accuracy, color="k", ls=":", lw=0.8, label=f"target {result.target_accuracy:g}")
    left.set_xscale("log")
    left.set_ylim(0.4, 1.02)
    left.set_xlabel("shots per circuit")
    left.set_ylabel("classification accuracy")
    left.set_title(f"T-symmetric vs scrambling, n = {result.n_qubits}, depth {result.depth}\n"
                   f"{result.n_circuits} circuits/class, {result.n_repeats} repeats (band: min-max)")
    left.legend(fontsize=7, loc="lower right")

    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, result.labels.size)
    for x0, p in enumerate(result.protocols):
        s = result.pc1_scores[p][j]
        sd = s.std()
        s = s / sd if sd > 0 else s  # one axis for both protocols: scores in units of their std
        for t_sym, marker in ((True, "o"), (False, "x")):
            sel = result.labels == t_sym
            right.scatter(x0 + jitter[sel], s[sel], marker=marker, s=14, color=_COLORS.get(p), alpha=0.7)
    # Legend entries in grey: the marker, not the colour, tells the true class.
    right.scatter([], [], marker="o", color="grey", label="T-symmetric (O(4) gates)")
    right.scatter([], [], marker="x", color="grey", label="scrambling (U(4) gates)")
    right.set_xticks(range(len(result.protocols)), [_NAMES.get(p, p) for p in result.protocols])
    right.set_ylabel("PC1 score / std")
    right.set_title(f"PC1 scores at {scatter_shots} shots per circuit (first repeat)")
    right.legend(fontsize=7)
    out = Path(path)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
