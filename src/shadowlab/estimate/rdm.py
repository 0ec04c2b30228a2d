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

Robust estimate (``calibration=``)
----------------------------------
Written in Paulis, ``rho_hat = 2^-k sum_P r_P P`` with ``r_P = 3^|P| S_P / N`` (``S_P`` the sum of
the signs of the snapshots matching ``P``). Under noisy measurements ``E[r_P] = g_B <P>`` for the
support ``B`` of ``P`` (:mod:`shadowlab.estimate.calibration`); the robust estimate divides each
coefficient by the calibrated ``g_B`` (every subset of the qubits needs a factor: a complete
calibration of locality ``>= k``), and is then unbiased for the state before the measurement
noise, up to the calibration's error. Projection and entropies as above. Per-entry standard
errors: the sample standard deviation of the robust per-snapshot matrices (their second
moments per entry from the ``7^k`` per-qubit count sums, ``O(k 8^k)``), combined in quadrature
with the calibration's delta-method bound ``sum_B |part_B[i, j]| se_B / g_B`` (``part_B`` the
terms with support ``B``; real and imaginary parts separately), a bound valid for any
correlation between the factors.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shadowlab.atomic import atomic_path
from shadowlab.errors import EstimationError, ShadowlabError
from shadowlab.estimate.entropy import (
    TO_CLASS_SPAN,
    axiswise,
    check_subsystems,
    pattern_counts,
    pauli_sums,
    require_uniform_scheme,
    subset_attenuations,
)
from shadowlab.estimate.pauli import SnapshotSource
from shadowlab.execution import Execution

if TYPE_CHECKING:
    from shadowlab.estimate.calibration import Calibration

Progress = Callable[[int], None]

#: Largest subsystem accepted by default.
DEFAULT_MAX_QUBITS = 8
#: Memory allowed for the counts, contraction intermediates and matrices.
DEFAULT_MEMORY_LIMIT = 2 * 2**30

_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)
# _SIGMA[2 b + o] = 3 |s><s| - I = (I + 3 (-1)^o P_b) / 2.
_SIGMA = np.array([(np.eye(2) + 3.0 * (1 - 2 * o) * _PAULI[b]) / 2.0 for b in range(3) for o in range(2)])


# Pauli letters I, X, Y, Z as matrices, and the robust estimate's per-qubit tables.
_PAULI4 = np.concatenate([np.eye(2, dtype=np.complex128)[None], _PAULI])
# Support indicator -> letter weight 3^[q in supp]: I -> 1, X/Y/Z -> 3.
_SUPPORT_TO_PAULI3 = np.array([[1.0, 0.0], [0.0, 3.0], [0.0, 3.0], [0.0, 3.0]])
# Letter I, X, Y, Z -> (in support, x, i) = 4 b + 2 x + i with value P[i, i ^ x]: I -> (0, 0, i) 1,
# Z -> (1, 0, i) (-1)^i, X -> (1, 1, i) 1, Y -> (1, 1, i) -i (-1)^i.
_LETTER_PARTS = np.zeros((8, 4), dtype=np.complex128)
_LETTER_PARTS[[0, 1], 0] = 1.0
_LETTER_PARTS[[4, 5], 3] = [1.0, -1.0]
_LETTER_PARTS[[6, 7], 1] = 1.0
_LETTER_PARTS[[6, 7], 2] = [-1j, 1j]


def _pauli_matrix(coef: np.ndarray, k: int) -> np.ndarray:
    """``2^-k sum_P coef[P] P`` for a ``(4,) * k`` coefficient tensor (letters I, X, Y, Z; qubit 0 = MSB)."""
    t: np.ndarray = np.asarray(coef, dtype=np.complex128).reshape((4,) * k)
    for _ in range(k):
        t = np.tensordot(t, _PAULI4, axes=([0], [0]))  # the new (row, col) pair goes to the end
    t = t.transpose(list(range(0, 2 * k, 2)) + list(range(1, 2 * k, 2)))
    return t.reshape(2**k, 2**k) / 2.0**k


# Second moments of the robust snapshot matrices, per entry (i, i ^ x) (see _robust_entry_moments).
# Per qubit a slot (x, p, q) = 4 x + 2 p + q: x = i_q ^ j_q, and the letters p, q of two Paulis with
# a non-zero (i, j) entry (x = 0: I or Z; x = 1: X or Y). Column of the 7-value span
# (TO_CLASS_SPAN: all, basis X/Y/Z, signed X/Y/Z) whose count sum is sum_s sigma_P(s) sigma_Q(s)
# on that qubit, or none (X with Y: never both matched).
_SLOT_SOURCE = {0: 0, 1: 6, 2: 6, 3: 3, 4: 1, 7: 2}
_SLOT_SELECT = np.zeros((8, 7))
for _slot, _col in _SLOT_SOURCE.items():
    _SLOT_SELECT[_slot, _col] = 1.0
# (x, letter) -> support indicator: I is outside the support, Z, X and Y inside.
_SLOT_SUPPORT = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
# The letter's entry P[i, i ^ x] as h_x[i, letter]: I -> 1, Z -> (-1)^i; X -> 1, Y -> -i (-1)^i.
_H_ENTRY = np.array([[[1.0, 1.0], [1.0, -1.0]], [[1.0, -1j], [1.0, 1j]]])
# Rows (x, i) = 2 x + i, columns slots (x', p, q): [x == x'] h_x[i, p] conj(h_x[i, q]) (or h h for sq).
_ENTRY_ABS = np.zeros((4, 8), dtype=np.complex128)
_ENTRY_SQ = np.zeros((4, 8), dtype=np.complex128)
for _x in range(2):
    for _i in range(2):
        for _p in range(2):
            for _q in range(2):
                _ENTRY_ABS[2 * _x + _i, 4 * _x + 2 * _p + _q] = _H_ENTRY[_x][_i, _p] * np.conj(_H_ENTRY[_x][_i, _q])
                _ENTRY_SQ[2 * _x + _i, 4 * _x + 2 * _p + _q] = _H_ENTRY[_x][_i, _p] * _H_ENTRY[_x][_i, _q]


def _robust_entry_moments(counts: np.ndarray, k: int, inv_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per entry, the snapshot means of ``|X_s[i, j]|^2`` and ``X_s[i, j]^2`` of the robust snapshot matrices.

    ``X_s[i, j] = 2^-k sum_P r_P(s) P[i, j]`` with ``r_P(s) = 3^|P| sigma_P(s) / g_{supp P}``; only
    the ``2^k`` Paulis with ``X``/``Y`` where ``i_q != j_q`` and ``I``/``Z`` elsewhere contribute, so
    ``E|X_s[i, j]|^2 = 4^-k sum_{P, Q} P[i, j] conj(Q[i, j]) E[r_P r_Q]``, and ``E[r_P r_Q]`` is a
    product, per qubit, of the 7 count sums of :data:`~shadowlab.estimate.entropy.TO_CLASS_SPAN`. All entries at once in
    ``O(k 8^k)`` operations (``8^k`` work arrays).
    """
    n = float(counts.sum())
    span = axiswise(np.asarray(counts, dtype=np.float64).reshape((6,) * k), [TO_CLASS_SPAN] * k)
    moments = axiswise(span, [_SLOT_SELECT] * k)  # (8,)*k: sum_s sigma_P sigma_Q per slot string
    del span
    weight3 = inv_g * axiswise(np.ones((2,) * k), [np.diag([1.0, 3.0])] * k)  # 3^|B| / g_B
    u = axiswise(weight3, [_SLOT_SUPPORT] * k)  # (4,)*k over (x, letter): 3^|P| / g_{supp P}
    pair_weight = u.reshape((2, 2, 1) * k) * u.reshape((2, 1, 2) * k)
    moments = moments * pair_weight.reshape((8,) * k) / (n * 4.0**k)
    del pair_weight
    out = []
    for table in (_ENTRY_ABS, _ENTRY_SQ):
        r = axiswise(moments, [table] * k).reshape((2, 2) * k)  # axes (x_0, i_0, x_1, i_1, ...)
        r = r.transpose(list(range(0, 2 * k, 2)) + list(range(1, 2 * k, 2))).reshape(2**k, 2**k)  # [x, i]
        out.append(_entry_matrix(r))
    return out[0].real, out[1]


def _entry_matrix(by_offset: np.ndarray) -> np.ndarray:
    """The ``(2^k, 2^k)`` matrix ``m[i, i ^ x] = by_offset[x, i]``."""
    dim = by_offset.shape[0]
    rows = np.arange(dim)
    m = np.zeros((dim, dim), dtype=by_offset.dtype)
    m[rows[None, :], rows[None, :] ^ rows[:, None]] = by_offset
    return m


def rdm_bytes(n_qubits: int, *, calibrated: bool = False) -> int:
    """Memory to estimate a ``n_qubits`` reduced state: ``6^k`` counts, intermediates, ``4^k`` matrices
    (and, ``calibrated``, the robust estimate's ``8^k`` work arrays)."""
    return 8 * 6**n_qubits + 32 * 6**n_qubits + 5 * 16 * 4**n_qubits + (64 * 8**n_qubits if calibrated else 0)


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
    calibrated:
        True for a robust estimate (Pauli coefficients divided by a calibration's attenuations;
        the standard errors include the calibration's).
    """

    qubits: tuple[int, ...]
    matrix: np.ndarray
    stderr_real: np.ndarray
    stderr_imag: np.ndarray
    n_snapshots: int
    calibrated: bool = False

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
            "calibrated": self.calibrated,
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


def rdm_from_counts(counts: np.ndarray, qubits: Sequence[int], *,
                    attenuation: tuple[np.ndarray, np.ndarray] | None = None) -> ReducedState:
    """The reduced-state estimate and its per-entry standard errors from ``6^k`` pattern counts.

    ``attenuation``: ``(g, se)``, ``(2^k,)`` calibrated attenuations of the subsets of ``qubits``
    in :func:`shadowlab.estimate.entropy.subset_masks` order
    (:func:`shadowlab.estimate.entropy.subset_attenuations`): gives the robust estimate (see
    the module documentation). Without it, the plain estimate.
    """
    k = len(qubits)
    c = np.asarray(counts)
    n = float(c.sum())
    if n < 2:
        raise EstimationError(f"a reduced density matrix estimate needs at least 2 snapshots, got {int(n)}")
    if attenuation is not None:
        return _robust_rdm(c, tuple(int(q) for q in qubits), attenuation[0], attenuation[1])
    mean = _contract(c, k, _SIGMA) / n
    abs2 = _contract(c, k, np.abs(_SIGMA) ** 2).real / n
    sq = _contract(c, k, _SIGMA * _SIGMA) / n
    corr = n / (n - 1.0)
    var_re = np.maximum((abs2 + sq.real) / 2.0 - mean.real**2, 0.0) * corr / n
    var_im = np.maximum((abs2 - sq.real) / 2.0 - mean.imag**2, 0.0) * corr / n
    return ReducedState(tuple(int(q) for q in qubits), mean, np.sqrt(var_re), np.sqrt(var_im), int(n))


def _robust_rdm(counts: np.ndarray, qubits: tuple[int, ...], g: np.ndarray, se_g: np.ndarray) -> ReducedState:
    """Robust reduced state (each Pauli coefficient divided by ``g`` of its support) and its errors."""
    k = len(qubits)
    n = float(counts.sum())
    inv_g = 1.0 / np.asarray(g, dtype=np.float64).reshape((2,) * k)
    # r_P = 3^|P| S_P / (N g_{supp P}); matrix = 2^-k sum_P r_P P.
    coef = pauli_sums(counts, k) * axiswise(inv_g, [_SUPPORT_TO_PAULI3] * k) / n
    mean = _pauli_matrix(coef, k)
    abs2, sq = _robust_entry_moments(counts, k, inv_g)
    corr = n / (n - 1.0)
    var_re = np.maximum((abs2 + sq.real) / 2.0 - mean.real**2, 0.0) * corr / n
    var_im = np.maximum((abs2 - sq.real) / 2.0 - mean.imag**2, 0.0) * corr / n
    # Calibration: d entry / d g_B = -(B part of the matrix) / g_B; the bound sum_B |.| se_B / g_B.
    # The B part of entry (i, i ^ x) for all (B, x, i) at once: per qubit a letter goes to (in B, x, i).
    parts = axiswise(coef.astype(np.complex128), [_LETTER_PARTS] * k).reshape((2, 2, 2) * k) / 2.0**k
    parts = parts.transpose([3 * a + r for r in range(3) for a in range(k)]).reshape(2**k, 2**k, 2**k)
    slope = np.asarray(se_g, dtype=np.float64).reshape(-1) * inv_g.reshape(-1)  # se_B / g_B
    cal_re = _entry_matrix(np.tensordot(slope, np.abs(parts.real), axes=(0, 0)))
    cal_im = _entry_matrix(np.tensordot(slope, np.abs(parts.imag), axes=(0, 0)))
    return ReducedState(qubits, mean, np.hypot(np.sqrt(var_re), cal_re), np.hypot(np.sqrt(var_im), cal_im), int(n),
                        calibrated=True)


def estimate_rdm(
    source: SnapshotSource,
    qubits: Sequence[int],
    *,
    max_qubits: int = DEFAULT_MAX_QUBITS,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    chunk_snapshots: int | None = None,
    progress: Progress | None = None,
    calibration: Calibration | None = None,
    execution: Execution | None = None,
) -> ReducedState:
    """Estimate the reduced density matrix of ``qubits`` (see the module docs for conventions).

    Refuses, before allocating, subsystems larger than ``max_qubits`` or needing more than
    ``memory_limit`` bytes (:func:`rdm_bytes`).

    With a robust-shadow ``calibration``
    (:class:`~shadowlab.estimate.calibration.Calibration`) every Pauli coefficient is divided
    by the calibrated attenuation ``g_B`` of its support: the result estimates the state
    before the measurement noise (the robust reduced state; projection as before). The
    calibration must cover every subset of ``qubits`` (a complete locality ``>= len(qubits)``)
    and match the data (:meth:`Calibration.check_data`); the errors include its own.

    The one pass over the data is :func:`shadowlab.estimate.entropy.pattern_counts`: exact
    integer counts, in this process or on the cluster of ``execution`` (identical results), each
    chunk task within ``execution.memory`` (the rows and two copies of the ``8 * 6^k``-byte
    table); ``chunk_snapshots`` (default: from ``execution``) as there. Forming the matrix
    afterwards happens here and is bounded by ``memory_limit``.

    Examples
    --------
    >>> from shadowlab.acquire.simulate import simulate
    >>> r = estimate_rdm(simulate("ghz:3", 5000, seed=1, simulator="statevector"), [0, 2])
    >>> np.round(r.state().real[[0, 3], [0, 3]], 1).tolist()
    [0.5, 0.5]
    """
    require_uniform_scheme(source, "the reduced-density-matrix estimator")
    (qs,) = check_subsystems([qubits], source.n_qubits, max_size=max_qubits, what="qubits")
    need = rdm_bytes(len(qs), calibrated=calibration is not None)
    if need > memory_limit:
        raise ShadowlabError(f"qubits {list(qs)}: a {len(qs)}-qubit reduced state needs about {need / 2**30:.2f} GiB "
                             f"(6^{len(qs)} counts, 4^{len(qs)} matrix entries"
                             + (f", 8^{len(qs)} robust work arrays" if calibration is not None else "")
                             + "), more than memory_limit="
                             f"{memory_limit / 2**30:.2f} GiB; use fewer qubits")
    if source.n_snapshots < 2:
        raise EstimationError(f"a reduced density matrix estimate needs at least 2 snapshots; the data set has "
                              f"{source.n_snapshots}")
    attenuation = None
    if calibration is not None:
        calibration.check_data(source)
        attenuation = subset_attenuations(calibration, qs)
    (counts,) = pattern_counts(source, [qs], chunk_snapshots=chunk_snapshots, progress=progress, execution=execution)
    return rdm_from_counts(counts, qs, attenuation=attenuation)


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
