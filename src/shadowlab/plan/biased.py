"""Locally biased classical shadows (Hadfield, Bravyi, Raymond, Mezzacapo, CMP 391, 951 (2022)).

Qubit ``q`` is measured in basis ``b`` with probability ``beta[q, b]`` instead of 1/3. For a
Hamiltonian ``H = sum_P a_P P`` the importance-weighted estimator (each matching snapshot
weighted by ``prod_{q in S_P} 1 / beta[q, P_q]``, see :mod:`shadowlab.estimate.pauli`) is
unbiased. Its single-snapshot second moment is the diagonal part

    cost(beta) = sum_P a_P^2 prod_{q in S_P} 1 / beta[q, P_q]

plus state-dependent cross terms between Paulis that the same setting can match (which can be
positive or negative). ``cost`` is exactly the second moment for the maximally mixed state, and
it is the state-independent figure of merit of Hadfield et al. — not an upper bound on the
variance for every state. The probabilities minimize it by exact block-coordinate descent: with every
other qubit fixed, ``cost`` is ``sum_b c[q, b] / beta[q, b] + const`` with
``c[q, b] = sum_{P: P_q = b} a_P^2 prod_{j != q} 1 / beta[j, P_j]``, minimized on the simplex by
``beta[q, b] = sqrt(c[q, b]) / sum_b' sqrt(c[q, b'])``. Each update lowers the cost, and the
sweeps stop when a sweep changes it by less than ``tol`` relative.

A basis that no term needs gets probability 0 (never measured); ``min_probability`` keeps every
basis in play, so that the data can still estimate observables outside ``H``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliArrays, PauliSum
from shadowlab.plan.scheme import UNIFORM_PROBABILITIES


@dataclass(frozen=True)
class BiasedProbabilities:
    """The optimized per-qubit basis probabilities and the variance bound they achieve.

    Attributes
    ----------
    probabilities:
        ``(n_qubits, 3)`` float64, columns X, Y, Z, rows summing to 1.
    cost:
        ``sum_P a_P^2 prod 1/beta`` at the optimum (Hartree^2 for a molecular Hamiltonian): the
        single-snapshot second moment for the maximally mixed state.
    uniform_cost:
        The same sum for uniform measurements, ``sum_P a_P^2 3^|P|``.
    sweeps:
        Coordinate-descent sweeps done.
    """

    probabilities: np.ndarray
    cost: float
    uniform_cost: float
    sweeps: int


def variance_bound(hamiltonian: PauliSum, probabilities: np.ndarray) -> float:
    """``sum_P a_P^2 prod_{q in S_P} 1 / beta[q, P_q]`` over the non-identity terms (``inf`` if a
    needed basis has probability 0)."""
    arrays, a2 = _terms(hamiltonian)
    with np.errstate(divide="ignore"):
        inverse = 1.0 / np.asarray(probabilities, dtype=np.float64)
    used = np.arange(arrays.qubits.shape[1])[None, :] < arrays.weights[:, None]
    factors = np.where(used, inverse[arrays.qubits, arrays.codes], 1.0)
    return float(a2 @ np.prod(factors, axis=1))


def _terms(hamiltonian: PauliSum) -> tuple[PauliArrays, np.ndarray]:
    # Identity terms are known exactly and zero-coefficient terms contribute nothing.
    keep = [i for i, t in enumerate(hamiltonian.terms) if t.weight > 0 and hamiltonian.coeffs[i] != 0]
    if not keep:
        raise ShadowlabError("the Hamiltonian has no non-identity terms; there is nothing to measure")
    arrays = PauliArrays.from_paulis([hamiltonian.terms[i] for i in keep])
    coeffs = np.asarray(hamiltonian.coeffs, dtype=np.float64)[keep]
    return arrays, coeffs * coeffs


def optimize_probabilities(
    hamiltonian: PauliSum, *, min_probability: float = 0.0, tol: float = 1e-10, max_sweeps: int = 1000,
) -> BiasedProbabilities:
    """Per-qubit basis probabilities that minimize the variance bound of ``hamiltonian``.

    Parameters
    ----------
    hamiltonian:
        Real-weighted Pauli sum (identity terms are ignored: they are known exactly).
    min_probability:
        Floor on every probability, in ``[0, 1/3]``; 0 lets unused bases drop out.
    tol:
        Stop when a sweep lowers the cost by less than ``tol`` times the cost.
    max_sweeps:
        Upper bound on the sweeps.

    Examples
    --------
    >>> h = PauliSum.from_labels(["ZZ", "ZI", "IZ"], [1.0, 0.5, 0.5])
    >>> r = optimize_probabilities(h)
    >>> r.probabilities.round(3).tolist(), round(r.cost, 6), round(r.uniform_cost, 6)
    ([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], 1.5, 10.5)
    """
    if not 0.0 <= min_probability <= UNIFORM_PROBABILITIES:
        raise ShadowlabError(f"min_probability must lie in [0, 1/3], got {min_probability}")
    if max_sweeps < 1 or not tol > 0:
        raise ShadowlabError("max_sweeps must be >= 1 and tol > 0")
    arrays, a2 = _terms(hamiltonian)
    n = hamiltonian.n_qubits
    beta = np.full((n, 3), UNIFORM_PROBABILITIES)
    used = np.arange(arrays.qubits.shape[1])[None, :] < arrays.weights[:, None]
    qubits, codes = arrays.qubits, arrays.codes
    # Which (term, slot) pairs touch each qubit, so a sweep costs O(total weight).
    slot_term, slot_pos = np.nonzero(used)
    slot_qubit = qubits[slot_term, slot_pos]
    order = np.argsort(slot_qubit, kind="stable")
    slot_term, slot_pos, slot_qubit = slot_term[order], slot_pos[order], slot_qubit[order]
    starts = np.searchsorted(slot_qubit, np.arange(n + 1))
    uniform_cost = float(a2 @ np.power(3.0, arrays.weights))
    # inverse probability product per term, kept up to date as qubits change
    product = np.power(3.0, arrays.weights.astype(np.float64))
    cost = uniform_cost
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):  # noqa: B007 (sweeps is reported)
        for q in range(n):
            terms = slot_term[starts[q]:starts[q + 1]]
            if terms.size == 0:
                continue
            letters = codes[terms, slot_pos[starts[q]:starts[q + 1]]]
            old = beta[q, letters]
            rest = a2[terms] * product[terms] * old  # a^2 prod_{j != q} 1/beta_j
            c = np.bincount(letters, weights=rest, minlength=3)
            root = np.sqrt(c)
            new_q = root / root.sum()
            if min_probability > 0:
                new_q = _floor_on_simplex(new_q, min_probability)
            beta[q] = new_q
            product[terms] = product[terms] * old / beta[q, letters]
        new_cost = float(a2 @ product)
        if not np.isfinite(new_cost):
            raise ShadowlabError("probability optimization diverged (a needed basis reached probability 0)")
        converged = cost - new_cost <= tol * new_cost
        cost = new_cost
        if converged:
            break
    return BiasedProbabilities(beta, variance_bound(hamiltonian, beta), uniform_cost, sweeps)


def _floor_on_simplex(p: np.ndarray, floor: float) -> np.ndarray:
    """Raise entries below ``floor`` to it and rescale the others so the row sums to 1.

    Keeps the ratio of the unfloored entries (the optimum of ``sum c/beta`` with lower bounds is
    ``beta proportional to sqrt(c)`` on the free entries).
    """
    out = p.copy()
    fixed = np.zeros(3, dtype=bool)
    for _ in range(3):
        low = (out < floor) & ~fixed
        if not low.any():
            break
        fixed |= low
        free_mass = 1.0 - floor * fixed.sum()
        free = ~fixed
        total = p[free].sum()
        out[fixed] = floor
        out[free] = p[free] / total * free_mass if total > 0 else free_mass / free.sum()
    return out
