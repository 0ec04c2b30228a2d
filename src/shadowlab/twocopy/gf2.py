"""Identify a hidden Pauli from two-copy Bell shots by decoding over GF(2).

The problem
-----------
For ``rho = (I + lam * s * P) / 2**n`` every Bell shot gives bit rows ``a`` and ``c`` (see
:mod:`shadowlab.twocopy` for the convention). With ``P`` written as symplectic bits ``(x, z)``,
the parity ``x.a + z.c`` equals ``#Y(P) mod 2`` with probability ``(1 + lam**2) / 2`` and is
otherwise flipped, i.e. the shot disagrees with ``P`` with probability
``eta = (1 - lam**2) / 2`` (0.095 at ``lam = 0.9``), while every other Pauli agrees with exactly
half of the shots on average. The sign ``s`` never appears (Bell data only see ``tr(P rho)**2``).

Stacking the shots as the ``m x (2n+1)`` matrix ``G = [a | c | 1]``, the unknown
``v = (x, z, y)`` with ``y = #Y mod 2`` satisfies ``G v = e`` with a sparse error vector ``e`` of
weight about ``eta * m``. So ``e`` is a low-weight word of the binary linear code spanned by the
columns of ``G`` (length ``m``, dimension ``k = 2n + 1``): finding ``P`` is a learning-parity-
with-noise / minimum-weight-codeword problem. ``O(n)`` shots suffice statistically, but every
known algorithm costs exponential time in ``n``.

Conventions
-----------
* Bits are packed little-endian into ``uint64`` words: bit ``i`` of a row lives in word
  ``i >> 6`` at position ``i & 63``. Padding bits are zero.
* Unknown vector layout: bits ``0 .. n-1`` are ``x``, ``n .. 2n-1`` are ``z``, bit ``2n`` is ``y``.
* Codewords are indexed by shot (row of ``G``); an *information set* is a set of ``k`` shots
  whose rows of ``G`` are linearly independent.

Algorithm (information-set decoding)
------------------------------------
Gauss-Jordan column elimination brings the column space of ``G`` to systematic form on an
information set ``I``: column ``j`` becomes the codeword that is ``1`` on pivot shot ``r_j`` and
``0`` on the other pivot shots, and a transformation matrix ``T`` (carried along as extra words)
records which combination of original columns it is. Every codeword is then the XOR of the
columns whose pivot shots it hits. If the error ``e`` hits exactly ``q <= p`` shots of ``I``, it
is the XOR of ``q`` columns, so enumerating all sums of at most ``p`` columns finds it
(Lee-Brickell; ``p = 1`` is Prange's algorithm in its minimum-codeword form: ``2n`` error-free
shots and one erroneous one, i.e. the 1-dimensional kernel of the error-free rows, for every
choice of the erroneous pivot at once). Between iterations the information set is refreshed by
a few random pivot swaps (Canteaut-Chabaud), which costs ``O(k * m / 64)`` word operations per
swap instead of the ``O(k**2 * m / 64)`` of a fresh elimination. Sums of two or three columns
are first screened on the ``h`` non-pivot shots among the first 64 (one masked word): a wrong
combination disagrees with about ``h / 2`` of them, the true one with about ``h * eta``, so the
screen rejects almost all wrong sums after one popcount and (by binomial and hypergeometric
quantiles at the assumed ``lam``) lets the true one through in about 98% of the iterations where
the information set is right: a 2% increase in iterations, never a wrong answer.

Acceptance (never a wrong answer silently)
------------------------------------------
A candidate is declared found only if its number of disagreeing shots is at most a threshold
``t``. Each wrong candidate ``v' != v`` (with ``(x', z')`` different from ``(x, z)`` and nonzero)
disagrees with a shot exactly when ``(x + x', z + z').b`` takes a value that is an unbiased coin
independent of the shot's error, so its count is ``Binomial(m, 1/2)``. ``t`` is the largest
value with ``2**(2n+1) * P[Binomial(m, 1/2) <= t] <= 1e-6``; by the union bound over all
candidates the probability that *any* wrong Pauli passes is at most ``1e-6``. The probability
that the true ``P`` fails, ``P[Binomial(m, eta) > t]``, is reported as ``miss_probability``.
Candidates whose ``y`` bit is not ``popcount(x & z) mod 2`` are never accepted.

This module also holds the GF(2) kernels of :mod:`shadowlab.twocopy.stabilizer` (span of Bell
differences, graph form, square solves), so that the two-copy hot loops over GF(2) live in one
place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numba
import numpy as np
from scipy.stats import binom, hypergeom

from shadowlab.bitops import popcount, trailing_zeros
from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString

__all__ = [
    "IdentifyResult",
    "acceptance_threshold",
    "gf2_rank",
    "identify_hidden_pauli",
    "pack_bits",
    "sample_hidden_pauli_shots",
    "unpack_bits",
]

#: Bound on the probability that any wrong Pauli is accepted (union bound, see module docstring).
FALSE_IDENTIFICATION_BOUND = 1e-6

_SCREEN_LOSS = 1e-2  # chance that a quantile used by the one-word screen is exceeded (costs ~2% more iterations)


# --------------------------------------------------------------------------- bit packing


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack rows of 0/1 values into little-endian ``uint64`` words.

    Parameters
    ----------
    bits:
        ``(rows, L)`` array of 0/1 values.

    Returns
    -------
    numpy.ndarray
        ``(rows, ceil(L / 64))`` uint64 array; bit ``i`` of a row is word ``i >> 6``, position
        ``i & 63``; padding bits are zero.

    Examples
    --------
    >>> pack_bits(np.array([[1, 0, 1], [0, 1, 0]], np.uint8)).tolist()
    [[5], [2]]
    """
    arr = np.ascontiguousarray(bits, dtype=np.uint8)
    rows, length = arr.shape
    n_words = max(1, -(-length // 64))
    padded = np.zeros((rows, n_words * 64), np.uint8)
    padded[:, :length] = arr
    as_bytes = np.packbits(padded, axis=1, bitorder="little")
    # Eight little-endian bytes are one word with byte 0 lowest, matching bit i -> word i >> 6.
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64).reshape(rows, n_words)


def unpack_bits(words: np.ndarray, length: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``(rows, words)`` uint64 to ``(rows, length)`` uint8.

    Examples
    --------
    >>> unpack_bits(np.array([[5], [2]], np.uint64), 3).tolist()
    [[1, 0, 1], [0, 1, 0]]
    """
    w = np.ascontiguousarray(words, dtype="<u8")
    as_bytes = w.view(np.uint8).reshape(w.shape[0], -1)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :length].astype(np.uint8)


@numba.njit(cache=True)
def _rank_inplace(rows: np.ndarray, n_bits: int) -> int:
    """Rank of packed rows by forward elimination; destroys ``rows``."""
    n_rows, n_words = rows.shape
    rank = 0
    for col in range(n_bits):
        w = col >> 6
        mask = np.uint64(1) << np.uint64(col & 63)
        pivot = -1
        for r in range(rank, n_rows):
            if rows[r, w] & mask:
                pivot = r
                break
        if pivot < 0:
            continue
        if pivot != rank:
            for t in range(n_words):
                tmp = rows[rank, t]
                rows[rank, t] = rows[pivot, t]
                rows[pivot, t] = tmp
        for r in range(rank + 1, n_rows):
            if rows[r, w] & mask:
                for t in range(w, n_words):
                    rows[r, t] ^= rows[rank, t]
        rank += 1
        if rank == n_rows:
            break
    return rank


def gf2_rank(packed: np.ndarray, n_bits: int) -> int:
    """Rank over GF(2) of bit-packed rows (as produced by :func:`pack_bits`).

    Examples
    --------
    >>> gf2_rank(pack_bits(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], np.uint8)), 3)
    2
    """
    return int(_rank_inplace(np.array(packed, dtype=np.uint64, copy=True), int(n_bits)))


# --------------------------------------------------------------------------- numba kernels


@numba.njit(cache=True)
def _eliminate(cols: np.ndarray, row_order: np.ndarray, pivot_row: np.ndarray, is_pivot: np.ndarray) -> int:
    """Gauss-Jordan on packed columns, taking pivot shots in ``row_order``; returns the rank.

    Afterwards column ``j < rank`` is 1 on shot ``pivot_row[j]`` and 0 on every other pivot shot.
    Columns hold the code words (first words) and the transformation ``T`` (last words); both are
    XORed together so that ``T`` always says which original columns make up each column.
    """
    k, n_words = cols.shape
    rank = 0
    for idx in range(row_order.shape[0]):
        r = row_order[idx]
        w = r >> 6
        mask = np.uint64(1) << np.uint64(r & 63)
        found = -1
        for j in range(rank, k):
            if cols[j, w] & mask:
                found = j
                break
        if found < 0:
            continue  # this shot depends on the pivots already chosen
        if found != rank:
            for t in range(n_words):
                tmp = cols[rank, t]
                cols[rank, t] = cols[found, t]
                cols[found, t] = tmp
        for j in range(k):
            if j != rank and (cols[j, w] & mask):
                for t in range(n_words):
                    cols[j, t] ^= cols[rank, t]
        pivot_row[rank] = r
        is_pivot[r] = 1
        rank += 1
        if rank == k:
            break
    return rank


@numba.njit(cache=True)
def _swap_pivot(cols: np.ndarray, pivot_row: np.ndarray, is_pivot: np.ndarray, m: int, scratch: np.ndarray) -> None:
    """Replace one random pivot shot by a random non-pivot shot (one Canteaut-Chabaud step)."""
    k, n_words = cols.shape
    for _attempt in range(64):
        r = np.random.randint(0, m)  # noqa: NPY002 -- numba: legacy generator, seeded in _search
        if is_pivot[r]:
            continue
        w = r >> 6
        mask = np.uint64(1) << np.uint64(r & 63)
        count = 0
        for j in range(k):
            if cols[j, w] & mask:
                scratch[count] = j
                count += 1
        if count == 0:
            continue  # an all-zero shot row can never enter an information set
        jp = scratch[np.random.randint(0, count)]  # noqa: NPY002
        for j in range(k):
            if j != jp and (cols[j, w] & mask):
                for t in range(n_words):
                    cols[j, t] ^= cols[jp, t]
        is_pivot[pivot_row[jp]] = 0
        pivot_row[jp] = r
        is_pivot[r] = 1
        return


@numba.njit(cache=True)
def _weight_capped(cols: np.ndarray, i: int, j: int, k3: int, n_code: int, cap: int) -> int:
    """Weight of the XOR of columns i, j, k3 (``-1`` = absent) over the code words; stops above ``cap``."""
    total = 0
    for t in range(n_code):
        word = cols[i, t]
        if j >= 0:
            word ^= cols[j, t]
        if k3 >= 0:
            word ^= cols[k3, t]
        total += popcount(word)
        if total > cap:
            return total
    return total


@numba.njit(cache=True)
def _check_candidate(cols: np.ndarray, i: int, j: int, k3: int, n_code: int, n: int, out_v: np.ndarray) -> bool:
    """Build ``v`` from the ``T`` words of the chosen columns; accept only a consistent non-identity."""
    k, n_words = cols.shape
    n_t = n_words - n_code
    for t in range(n_t):
        word = cols[i, n_code + t]
        if j >= 0:
            word ^= cols[j, n_code + t]
        if k3 >= 0:
            word ^= cols[k3, n_code + t]
        for b in range(64):
            bit = t * 64 + b
            if bit < k:
                out_v[bit] = np.uint8((word >> np.uint64(b)) & np.uint64(1))
    nonzero = False
    n_y = 0
    for q in range(n):
        if out_v[q] or out_v[n + q]:
            nonzero = True
        if out_v[q] and out_v[n + q]:
            n_y += 1
    # v with x = z = 0 is the identity (weight 0 or m), not a Pauli; y must equal #Y mod 2.
    return nonzero and (n_y & 1) == out_v[2 * n]


@numba.njit(cache=True)
def _accept(
    cols: np.ndarray, i: int, j: int, k3: int, n_code: int, n: int, out_v: np.ndarray, stats: np.ndarray, wt: int
) -> bool:
    """Record a below-threshold candidate; True if it is a consistent Pauli (then ``out_v`` holds it)."""
    if wt < stats[1]:
        stats[1] = wt
    if _check_candidate(cols, i, j, k3, n_code, n, out_v):
        stats[2] = wt
        return True
    return False


@numba.njit(cache=True)
def _search(
    cols: np.ndarray,
    pivot_row: np.ndarray,
    is_pivot: np.ndarray,
    m: int,
    n_code: int,
    n: int,
    n_iter: int,
    swaps: int,
    p: int,
    threshold: int,
    screens: np.ndarray,
    seed: int,
    out_v: np.ndarray,
    stats: np.ndarray,
) -> bool:
    """Run ``n_iter`` Lee-Brickell iterations; stop at the first acceptable candidate.

    ``screens[h]`` is the largest masked word-0 weight worth a full check when ``h`` of the first
    64 shots are non-pivot. ``stats[0]`` counts iterations done, ``stats[1]`` keeps the smallest weight at or below the
    threshold seen (only those are computed exactly), ``stats[2]`` the accepted weight.
    """
    np.random.seed(seed)  # noqa: NPY002 -- numba only supports the legacy global generator
    k = cols.shape[0]
    scratch = np.empty(k, np.int64)
    first = np.empty(k, np.uint64)
    for _it in range(n_iter):
        for _s in range(swaps):
            _swap_pivot(cols, pivot_row, is_pivot, m, scratch)
        stats[0] += 1
        for i in range(k):
            wt = _weight_capped(cols, i, -1, -1, n_code, threshold)
            if wt <= threshold and _accept(cols, i, -1, -1, n_code, n, out_v, stats, wt):
                return True
        if p < 2:
            continue
        # Screen on the non-pivot shots of word 0 only: on pivot shots a sum of q columns has
        # exactly q ones whatever it is, which would let most wrong sums through.
        mask0 = np.uint64(0)
        n_free = 0
        for r in range(min(64, m)):
            if not is_pivot[r]:
                mask0 |= np.uint64(1) << np.uint64(r)
                n_free += 1
        screen = screens[n_free]
        # A contiguous copy of the masked word keeps the pair loop streaming through one array.
        for i in range(k):
            first[i] = cols[i, 0] & mask0
        for i in range(k):
            c0 = first[i]
            for j in range(i + 1, k):
                c01 = c0 ^ first[j]
                if popcount(c01) <= screen:
                    wt = _weight_capped(cols, i, j, -1, n_code, threshold)
                    if wt <= threshold and _accept(cols, i, j, -1, n_code, n, out_v, stats, wt):
                        return True
        if p < 3:
            continue
        for i in range(k):
            for j in range(i + 1, k):
                c01 = first[i] ^ first[j]
                for k3 in range(j + 1, k):
                    if popcount(c01 ^ first[k3]) <= screen:
                        wt = _weight_capped(cols, i, j, k3, n_code, threshold)
                        if wt <= threshold and _accept(cols, i, j, k3, n_code, n, out_v, stats, wt):
                            return True
    return False


# --------------------------------------------------------------------------- statistics


def noise_rate(lam: float) -> float:
    """Probability ``(1 - lam**2) / 2`` that a Bell shot disagrees with the hidden Pauli."""
    return (1.0 - lam * lam) / 2.0


def acceptance_threshold(n_qubits: int, n_shots: int, *, bound: float = FALSE_IDENTIFICATION_BOUND) -> int:
    """Largest disagreement count ``t`` such that no wrong Pauli passes, except with prob. <= ``bound``.

    There are fewer than ``2**(2n+1)`` wrong candidates ``(x, z, y)``; each has a
    ``Binomial(n_shots, 1/2)`` disagreement count, so ``t`` is the largest integer with
    ``2**(2n+1) * P[Binomial(n_shots, 1/2) <= t] <= bound``. Returns ``-1`` if no ``t >= 0`` works.

    Examples
    --------
    >>> acceptance_threshold(100, 500)
    66
    """
    log_budget = math.log(bound) - (2 * n_qubits + 1) * math.log(2.0)
    # logcdf is increasing in t: bisect for the last t under the budget.
    lo, hi = -1, n_shots
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if binom.logcdf(mid, n_shots, 0.5) <= log_budget:
            lo = mid
        else:
            hi = mid
    return lo


def miss_probability(n_qubits: int, n_shots: int, lam: float) -> float:
    """Probability that the true Pauli disagrees with more than the acceptance threshold of shots."""
    t = acceptance_threshold(n_qubits, n_shots)
    if t < 0:
        return 1.0
    return float(binom.sf(t, n_shots, noise_rate(lam)))


def shots_needed(n_qubits: int, lam: float, *, miss: float = 0.5) -> int:
    """Smallest number of shots whose threshold keeps the true Pauli's miss probability <= ``miss``."""
    if noise_rate(lam) >= 0.5 - 1e-6:
        raise ShadowlabError(f"lam={lam}: the Bell shots carry no information about P (need lam > 0)")
    lo, hi = 1, 2 * n_qubits + 2
    while miss_probability(n_qubits, hi, lam) > miss:
        lo, hi = hi, 2 * hi
        if hi > 1 << 40:
            raise ShadowlabError(f"lam={lam} is too small: more than 2**40 shots would be needed")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if miss_probability(n_qubits, mid, lam) <= miss:
            hi = mid
        else:
            lo = mid
    return hi


# --------------------------------------------------------------------------- sampling


def sample_hidden_pauli_shots(
    x: np.ndarray, z: np.ndarray, lam: float, m: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``m`` Bell shots of ``rho = (I + lam * s * P) / 2**n`` directly from their distribution.

    Each shot ``(a, c)`` is uniform on ``F2^(2n)`` subject to the parity ``x.a + z.c`` being
    ``#Y(P) mod 2`` with probability ``(1 + lam**2) / 2`` and the opposite otherwise. A uniform
    draw with the wrong parity is repaired by flipping one fixed bit in the support of ``P``: that
    is a bijection between the two parity classes, so the result is uniform within the right one.

    Parameters
    ----------
    x, z:
        Symplectic bits of ``P`` (uint8, length ``n``); ``P`` must not be the identity.
    lam:
        Strength in ``[0, 1]``; ``lam = 0`` gives pure noise, ``lam = 1`` noiseless parities.
    m:
        Number of shots.
    rng:
        Source of randomness.

    Returns
    -------
    tuple of numpy.ndarray
        ``a`` and ``c``, each ``(m, n)`` uint8.
    """
    x = np.asarray(x, np.uint8)
    z = np.asarray(z, np.uint8)
    if x.shape != z.shape or x.ndim != 1:
        raise ShadowlabError(f"x and z must be 1-D of equal length, got shapes {x.shape} and {z.shape}")
    if not (x.any() or z.any()):
        raise ShadowlabError("the hidden Pauli must not be the identity")
    if not 0.0 <= lam <= 1.0:
        raise ShadowlabError(f"lam must be in [0, 1], got {lam}")
    n = x.shape[0]
    a = rng.integers(0, 2, size=(m, n), dtype=np.uint8)
    c = rng.integers(0, 2, size=(m, n), dtype=np.uint8)
    parity = ((a.astype(np.int64) @ x + c.astype(np.int64) @ z) & 1).astype(np.uint8)
    n_y = int(np.sum(x & z)) & 1
    agree = rng.random(m) < (1.0 + lam * lam) / 2.0
    wanted = np.where(agree, n_y, 1 - n_y).astype(np.uint8)
    fix = parity != wanted
    if x.any():
        a[fix, int(np.flatnonzero(x)[0])] ^= 1
    else:
        c[fix, int(np.flatnonzero(z)[0])] ^= 1
    return a, c


# --------------------------------------------------------------------------- solver


@dataclass(frozen=True)
class IdentifyResult:
    """Outcome of :func:`identify_hidden_pauli`.

    Attributes
    ----------
    found:
        True only if a Pauli passed the acceptance threshold (see the module docstring).
    x, z:
        Symplectic bits (uint8, length ``n``) of the identified Pauli, or None if not found.
    label:
        Sparse label such as ``'X0 Y3 Z5'`` (qubit 0 first), or None if not found.
    disagreements:
        Shots that disagree with the identified Pauli; if not found, the smallest count of a
        rejected (inconsistent) candidate under the threshold, else None.
    threshold:
        Acceptance threshold on ``disagreements``.
    miss_probability:
        Probability that the true Pauli exceeds ``threshold`` (at the assumed ``lam``).
    false_probability_bound:
        Bound on the probability that any wrong Pauli passes ``threshold``.
    iterations:
        Information sets examined.
    seconds:
        Wall-clock time of the search (including numba compilation on a cold cache).
    n_shots:
        Number of Bell shots used (copies = 2 x shots).
    message:
        Why the search stopped.
    """

    found: bool
    x: np.ndarray | None
    z: np.ndarray | None
    label: str | None
    disagreements: int | None
    threshold: int
    miss_probability: float
    false_probability_bound: float
    iterations: int
    seconds: float
    n_shots: int
    message: str


def _label(x: np.ndarray, z: np.ndarray) -> str:
    # Codes 0 = X (x only), 1 = Y (both), 2 = Z (z only), as in shadowlab.paulis.
    pairs = [(int(2 * (1 - x[q]) + x[q] * z[q]), q) for q in range(x.shape[0]) if x[q] or z[q]]
    return PauliString.from_pairs(pairs).to_sparse()


def _validate(a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a_arr = np.asarray(a)
    c_arr = np.asarray(c)
    if a_arr.ndim != 2:
        raise ShadowlabError(f"Bell bits 'a' must be a 2-D (shots, n) array, got shape {a_arr.shape}")
    if c_arr.shape != a_arr.shape:
        raise ShadowlabError(
            f"Bell bits 'c' have shape {c_arr.shape} but 'a' has {a_arr.shape}; both must be (shots, n)"
        )
    if a_arr.shape[0] < 1 or a_arr.shape[1] < 1:
        raise ShadowlabError(f"need at least one shot and one qubit, got shape {a_arr.shape}")
    for name, arr in (("a", a_arr), ("c", c_arr)):
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
            raise ShadowlabError(f"Bell bits '{name}' must be integers 0/1, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() > 1:
            raise ShadowlabError(f"Bell bits '{name}' must be 0 or 1, found values in [{arr.min()}, {arr.max()}]")
    return a_arr.astype(np.uint8), c_arr.astype(np.uint8)


def identify_hidden_pauli(
    a: np.ndarray,
    c: np.ndarray,
    *,
    rng: np.random.Generator,
    max_seconds: float = 60.0,
    max_iterations: int | None = None,
    p: int = 2,
    swaps: int | None = None,
    lam: float = 0.9,
) -> IdentifyResult:
    """Find the hidden Pauli ``P`` of ``rho = (I + lam * s * P) / 2**n`` from two-copy Bell shots.

    Information-set decoding (Lee-Brickell with parameter ``p``, pivot-swap updates); see the
    module docstring for the algorithm, the conventions and the acceptance rule.

    Parameters
    ----------
    a, c:
        ``(shots, n)`` 0/1 arrays of Bell bits (copy A, copy B).
    rng:
        Randomness for the shot order and the information sets.
    max_seconds:
        Wall-clock budget; the search stops (``found=False``) once it is spent.
    max_iterations:
        Budget of information sets; None for no limit other than time.
    p:
        Largest number of errors allowed on the information set (1, 2 or 3). 2 is cheapest
        per success for ``n`` up to about 100.
    swaps:
        Pivot swaps between iterations; None picks ``max(1, (2n+1) // 16)`` so that the work of
        swapping stays below that of enumerating pairs while the sets decorrelate quickly.
    lam:
        Assumed strength. It sets ``miss_probability``, the refusal of hopeless inputs and the
        one-word screen; it never affects which Pauli is accepted, so a wrong guess can only
        cost iterations (too large) or screening efficiency (too small), not correctness.

    Returns
    -------
    IdentifyResult
        ``found=False`` (never a wrong Pauli, except with probability <= 1e-6) if the budget ran
        out, the data do not determine ``P``, or only inconsistent candidates were seen.

    Raises
    ------
    ShadowlabError
        On malformed input, or if there are too few shots for the threshold to let the true
        Pauli pass with probability >= 1/2 (the message says how many shots are needed).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = np.array([1, 0, 0, 1, 0, 0], np.uint8); z = np.array([0, 0, 0, 1, 0, 1], np.uint8)
    >>> a, c = sample_hidden_pauli_shots(x, z, 0.9, 60, rng)
    >>> identify_hidden_pauli(a, c, rng=rng).label
    'X0 Y3 Z5'
    """
    start = time.perf_counter()
    a_u8, c_u8 = _validate(a, c)
    if p not in (1, 2, 3):
        raise ShadowlabError(f"p must be 1, 2 or 3, got {p}")
    if not 0.0 <= lam <= 1.0:
        raise ShadowlabError(f"lam must be in [0, 1], got {lam}")
    m, n = a_u8.shape
    k = 2 * n + 1
    threshold = acceptance_threshold(n, m)
    miss = miss_probability(n, m, lam)
    if miss > 0.5:
        need = shots_needed(n, lam, miss=0.5)
        need99 = shots_needed(n, lam, miss=0.01)
        raise ShadowlabError(
            f"{m} Bell shots ({2 * m} copies) cannot identify a hidden Pauli on {n} qubits at lam={lam}: the "
            "threshold that "
            f"keeps false identifications below {FALSE_IDENTIFICATION_BOUND:g} is {threshold} disagreements, which "
            f"the true Pauli exceeds with probability {miss:.3g}. Need at least {need} shots ({2 * need} copies), "
            f"about {need99} shots ({2 * need99} copies) for a 99% chance"
        )

    # Shuffle the shots once so that the one-word screen sees a random subset of them.
    order = rng.permutation(m)
    g = np.concatenate([a_u8[order], c_u8[order], np.ones((m, 1), np.uint8)], axis=1)
    n_code = -(-m // 64)
    code_words = pack_bits(g.T)
    t_words = pack_bits(np.eye(k, dtype=np.uint8))
    cols = np.ascontiguousarray(np.concatenate([code_words, t_words], axis=1))
    pivot_row = np.zeros(k, np.int64)
    is_pivot = np.zeros(m, np.uint8)
    rank = int(_eliminate(cols, rng.permutation(m).astype(np.int64), pivot_row, is_pivot))

    def result(found: bool, v: np.ndarray | None, weight: int | None, iters: int, message: str) -> IdentifyResult:
        x = z = None
        label = None
        if v is not None:
            x = v[:n].copy()
            z = v[n : 2 * n].copy()
            label = _label(x, z)
        return IdentifyResult(
            found,
            x,
            z,
            label,
            weight,
            threshold,
            miss,
            FALSE_IDENTIFICATION_BOUND,
            iters,
            time.perf_counter() - start,
            m,
            message,
        )

    if rank < k:
        # The non-pivot columns are now zero codewords; their T words span the kernel of G, i.e.
        # every candidate that disagrees with no shot. One kernel vector is the noiseless case
        # (accept it if it is a consistent Pauli); several mean P is not determined by the shots.
        kernel = unpack_bits(cols[rank:, n_code:], k)
        if kernel.shape[0] == 1:
            v = kernel[0]
            x0, z0 = v[:n], v[n : 2 * n]
            if (x0.any() or z0.any()) and int(np.sum(x0 & z0)) % 2 == int(v[2 * n]):
                return result(True, v, 0, 0, "found (noiseless: the kernel of the shots)")
        return result(
            False, None, None, 0, f"the shots have rank {rank} < {k} - 1 or an inconsistent kernel: P is not determined"
        )

    # The true error has about eta * m ones (at most w_typ except with probability _SCREEN_LOSS),
    # spread at random over the m - k non-pivot shots (the shots were shuffled), so its count
    # among h of them is hypergeometric; screening at that quantile loses about 2 * _SCREEN_LOSS
    # of the successful iterations, a fair price for rejecting nearly all wrong sums in one word.
    w_typ = min(max(threshold, 0), m - k, int(binom.ppf(1.0 - _SCREEN_LOSS, m, noise_rate(lam))))
    # (h never exceeds m - k; the clamp only keeps the unused table entries finite).
    draws = np.minimum(np.arange(65), m - k)
    screens = hypergeom.ppf(1.0 - _SCREEN_LOSS, m - k, w_typ, draws).astype(np.int64)
    n_swaps = max(1, k // 16) if swaps is None else int(swaps)
    out_v = np.zeros(k, np.uint8)
    stats = np.array([0, m + 1, -1], np.int64)
    batch = 1
    while True:
        if max_iterations is not None and stats[0] >= max_iterations:
            msg = f"iteration budget ({max_iterations}) spent"
            break
        if time.perf_counter() - start >= max_seconds:
            msg = f"time budget ({max_seconds:g} s) spent"
            break
        todo = batch if max_iterations is None else min(batch, max_iterations - int(stats[0]))
        t0 = time.perf_counter()
        seed = int(rng.integers(0, 2**31 - 1))
        ok = _search(cols, pivot_row, is_pivot, m, n_code, n, todo, n_swaps, p, threshold, screens, seed, out_v, stats)
        if ok:
            return result(True, out_v.copy(), int(stats[2]), int(stats[0]), "found")
        # Grow batches towards ~0.1 s so the time budget is checked often but overhead stays small.
        if time.perf_counter() - t0 < 0.05:
            batch = min(batch * 2, 1 << 20)
    best = int(stats[1]) if stats[1] <= m else None
    return result(False, None, best, int(stats[0]), msg)


# --------------------------------------------------------------------------- kernels of stabilizer learning
# (used by :mod:`shadowlab.twocopy.stabilizer`; kept here so that GF(2) hot loops live in one module)


@numba.njit(cache=True)
def symplectic_parity(u: np.ndarray, v: np.ndarray, words: int) -> np.uint64:
    acc = np.uint64(0)
    for w in range(words):
        acc += popcount(u[w] & v[words + w]) + popcount(u[words + w] & v[w])
    return acc & np.uint64(1)


@numba.njit(cache=True)
def _reduce(v: np.ndarray, basis: np.ndarray, pivots: np.ndarray, rank: int) -> None:
    """Clear every basis pivot bit of ``v`` in place (rows in insertion order, see ``absorb_commuting``)."""
    for j in range(rank):
        p = pivots[j]
        if (v[p >> 6] >> np.uint64(p & 63)) & np.uint64(1):
            for w in range(v.shape[0]):
                v[w] ^= basis[j, w]


@numba.njit(cache=True)
def absorb_commuting(vecs: np.ndarray, anchor: np.ndarray, basis: np.ndarray, pivots: np.ndarray, rank: int,
            n: int, words: int) -> tuple[int, int, int, int]:
    """Reduce ``vecs[i] ^ anchor`` against the basis in order; add independent commuting ones.

    Basis row ``j`` has its pivot bit ``pivots[j]`` clear in every row added after it, so one
    pass in insertion order clears every pivot bit of a vector (see the module docstring).
    Returns ``(rank, dependent, rejected, used)``: the new rank, the number of vectors already in
    the span, the number rejected because they anticommute with the span, and how many vectors
    were consumed (processing stops once the rank reaches ``n``).
    """
    dependent = 0
    rejected = 0
    v = np.empty(2 * words, dtype=np.uint64)
    used = 0
    for i in range(vecs.shape[0]):
        if rank >= n:
            break
        used += 1
        for w in range(2 * words):
            v[w] = vecs[i, w] ^ anchor[w]
        _reduce(v, basis, pivots, rank)
        nonzero = -1
        for w in range(2 * words):
            if v[w] != 0:
                nonzero = w
                break
        if nonzero < 0:
            dependent += 1
            continue
        # The span of a pure state's differences is isotropic; an anticommuting vector is noise.
        bad = False
        for j in range(rank):
            if symplectic_parity(v, basis[j], words):
                bad = True
                break
        if bad:
            rejected += 1
            continue
        for w in range(2 * words):
            basis[rank, w] = v[w]
        pivots[rank] = 64 * nonzero + np.int64(trailing_zeros(v[nonzero]))
        rank += 1
    return rank, dependent, rejected, used


@numba.njit(cache=True)
def count_in_coset(vecs: np.ndarray, anchor: np.ndarray, basis: np.ndarray, pivots: np.ndarray, rank: int,
                    words: int) -> int:
    """How many ``vecs[i]`` lie in ``anchor + span(basis)`` (reduce the difference to zero)."""
    count = 0
    v = np.empty(2 * words, dtype=np.uint64)
    for i in range(vecs.shape[0]):
        for w in range(2 * words):
            v[w] = vecs[i, w] ^ anchor[w]
        _reduce(v, basis, pivots, rank)
        zero = True
        for w in range(2 * words):
            if v[w] != 0:
                zero = False
                break
        if zero:
            count += 1
    return count


@numba.njit(cache=True)
def _pivot(m: np.ndarray, row: int, col: int, lo: int, hi: int) -> bool:
    """One Gauss-Jordan step on the uint8 matrix ``m`` over GF(2), in place.

    Find a row ``>= row`` with a 1 in column ``col``, swap it into ``row`` and clear column
    ``col`` in the other rows of ``[lo, hi)``. Returns False (``m`` unchanged) if there is none.
    """
    n_rows, width = m.shape
    r = -1
    for i in range(row, n_rows):
        if m[i, col]:
            r = i
            break
    if r < 0:
        return False
    if r != row:
        for c in range(width):
            t = m[r, c]
            m[r, c] = m[row, c]
            m[row, c] = t
    for i in range(lo, hi):
        if i != row and m[i, col]:
            for c in range(width):
                m[i, c] ^= m[row, c]
    return True


@numba.njit(cache=True)
def graph_form(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Hadamard set and symmetric adjacency of a rank-``n`` isotropic ``(n, 2n)`` uint8 matrix ``[X | Z]``.

    Returns ``(had, b, ok)``: after swapping the ``x`` and ``z`` columns of the qubits with
    ``had[q] = 1`` and row reduction, the matrix is ``[I | b]``; ``ok`` is False if the rows are
    dependent or do not commute (``b`` not symmetric).
    """
    n = m.shape[0]
    m = m.copy()
    had = np.zeros(n, np.uint8)
    # RREF on the X block: rows [0, k) get X pivots; the rest have X = 0.
    k = 0
    xpivot = np.zeros(n, np.uint8)
    for col in range(n):
        if _pivot(m, k, col, 0, n):
            xpivot[col] = 1
            k += 1
    # Rows with X = 0 have full-rank Z on the non-X-pivot qubits (commutation with the X rows);
    # those Z pivots are the qubits to Hadamard.
    r0 = k
    for col in range(n):
        if not xpivot[col] and _pivot(m, r0, n + col, k, n):
            had[col] = 1
            r0 += 1
    if r0 != n:
        return had, np.zeros((n, n), np.uint8), False
    for q in range(n):
        if had[q]:
            for i in range(n):
                t = m[i, q]
                m[i, q] = m[i, n + q]
                m[i, n + q] = t
    # Gauss-Jordan to X = identity (row i gets pivot column i).
    for col in range(n):
        if not _pivot(m, col, col, 0, n):
            return had, np.zeros((n, n), np.uint8), False
    b = m[:, n:].copy()
    for i in range(n):
        for j in range(i + 1, n):
            if b[i, j] != b[j, i]:
                return had, b, False
    return had, b, True


@numba.njit(cache=True)
def solve_square(r: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, bool]:
    """Solve ``r m = rhs`` over ``GF(2)`` for a square ``r`` (uint8); ``ok`` is False if singular."""
    n = r.shape[0]
    a = np.zeros((n, n + 1), np.uint8)
    a[:, :n] = r
    a[:, n] = rhs
    for col in range(n):
        if not _pivot(a, col, col, 0, n):
            return np.zeros(n, np.uint8), False
    return a[:, n].copy(), True
