"""Compiled hot loops over bit-packed local-Pauli snapshots: the only hot loops of shadowlab.

Bit-packed layout ("planes")
----------------------------
``planes`` is a ``(4, n_qubits, n_words)`` uint64 array for a chunk of ``n_valid`` snapshots,
``n_words = ceil(n_valid / 64)``. Snapshot ``s`` of the chunk is bit ``s % 64`` of word
``s // 64``:

* ``planes[b, q, w]`` for ``b`` in 0/1/2: bit set iff qubit ``q`` was measured in basis X/Y/Z;
* ``planes[3, q, w]``: bit set iff the outcome of qubit ``q`` was 1 (eigenvalue -1).

Padding bits past ``n_valid`` are 0 in every plane, so a padding snapshot never matches a
Pauli of weight >= 1; the kernels also mask words explicitly so that the identity is counted
right.

A Pauli string P with support S matches a snapshot iff every qubit of S was measured in P's
letter: the AND of one basis plane per qubit of S. Its outcome parity is the XOR of the outcome
planes over S. Counting matching snapshots and matching snapshots with odd parity per 64
snapshots costs ``2 |S|`` word operations and two popcounts, and no snapshot x observable array
is ever formed.

Everything else in shadowlab turns these integer counts into estimates.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shadowlab.bitops import popcount as _popcount
from shadowlab.bitops import trailing_zeros as _trailing_zeros

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


def n_words(n_snapshots: int) -> int:
    """Number of 64-bit words that hold ``n_snapshots`` bits."""
    return (n_snapshots + 63) // 64


@njit(parallel=True, cache=True)
def _pack(bases, outcomes, planes):
    n_snap, n_q = bases.shape
    for w in prange(planes.shape[2]):
        lo = w * 64
        hi = min(lo + 64, n_snap)
        # Build each qubit's four words in registers from the 64 rows (a few kB, in L1) and
        # store them once: scattering single bits straight into the planes is 2.5x slower.
        for q in range(n_q):
            x = np.uint64(0)
            y = np.uint64(0)
            z = np.uint64(0)
            o = np.uint64(0)
            for s in range(lo, hi):
                bit = _ONE << np.uint64(s - lo)
                b = bases[s, q]
                if b == 0:
                    x |= bit
                elif b == 1:
                    y |= bit
                else:
                    z |= bit
                if outcomes[s, q]:
                    o |= bit
            planes[0, q, w] = x
            planes[1, q, w] = y
            planes[2, q, w] = z
            planes[3, q, w] = o


def pack(bases: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """Pack snapshot-major ``(S, n)`` uint8 bases and outcomes into ``(4, n, ceil(S/64))`` planes.

    Inputs must already be validated (codes 0..2 and 0..1); see :class:`ShadowData`.
    """
    n_snap, n_q = bases.shape
    planes = np.zeros((4, n_q, n_words(n_snap)), dtype=np.uint64)
    if n_snap:
        _pack(np.ascontiguousarray(bases, dtype=np.uint8), np.ascontiguousarray(outcomes, dtype=np.uint8), planes)
    return planes


@njit(cache=True)
def _range_mask(w, lo, hi):
    """Mask of the bits of word ``w`` whose snapshot index lies in ``[lo, hi)``."""
    first = w * 64
    a = max(lo - first, 0)
    b = min(hi - first, 64)
    if b <= a:
        return np.uint64(0)
    width = b - a
    m = _ALL if width == 64 else ((_ONE << np.uint64(width)) - _ONE)
    return m << np.uint64(a)


@njit(parallel=True, cache=True)
def pauli_block_counts(planes, block_lo, block_hi, qubits, codes, weights, match_out, odd_out):
    """Accumulate, per Pauli and per block of snapshots, matches and matches with odd parity.

    Parameters
    ----------
    planes:
        ``(4, n_qubits, n_words)`` uint64 bit planes of one chunk.
    block_lo, block_hi:
        ``(K,)`` int64: block ``k`` covers chunk-local snapshots ``[block_lo[k], block_hi[k])``
        (empty ranges allowed, for blocks that do not meet this chunk).
    qubits, codes, weights:
        Padded Pauli arrays (see :class:`shadowlab.paulis.PauliArrays`).
    match_out, odd_out:
        ``(M, K)`` int64, added to in place: snapshots whose bases match Pauli ``m`` on its
        support, and those of them whose outcome parity on the support is odd (product of
        eigenvalues -1).
    """
    n_obs = weights.shape[0]
    n_blocks = block_lo.shape[0]
    for m in prange(n_obs):
        wt = weights[m]
        for k in range(n_blocks):
            lo = block_lo[k]
            hi = block_hi[k]
            if hi <= lo:
                continue
            n_match = np.uint64(0)
            n_odd = np.uint64(0)
            for w in range(lo // 64, (hi + 63) // 64):
                acc = _range_mask(w, lo, hi)
                par = np.uint64(0)
                for j in range(wt):
                    q = qubits[m, j]
                    acc &= planes[codes[m, j], q, w]
                    par ^= planes[3, q, w]
                n_match += _popcount(acc)
                n_odd += _popcount(acc & par)
            match_out[m, k] += np.int64(n_match)
            odd_out[m, k] += np.int64(n_odd)


@njit(cache=True)
def _sum_values_word(planes, w, n_valid, qubits, codes, weights, scale, offset, values_out, hits_out):
    """The work of :func:`pauli_sum_snapshot_values` for the 64 snapshots of word ``w``."""
    valid = _range_mask(w, 0, n_valid)
    base = w * 64
    for t in range(weights.shape[0]):
        acc = valid
        par = np.uint64(0)
        for j in range(weights[t]):
            q = qubits[t, j]
            acc &= planes[codes[t, j], q, w]
            par ^= planes[3, q, w]
        plus = scale[t] + offset[t]
        minus = offset[t] - scale[t]
        while acc:
            bit = _trailing_zeros(acc)
            s = base + np.int64(bit)
            hits_out[s] += 1
            if (par >> bit) & _ONE:
                values_out[s] += minus
            else:
                values_out[s] += plus
            acc &= acc - _ONE


@njit(parallel=True, cache=True)
def pauli_sum_snapshot_values(planes, n_valid, qubits, codes, weights, scale, offset, values_out, hits_out):
    """Per-snapshot value of a weighted sum of Pauli terms.

    For each snapshot ``s`` and term ``j`` whose bases match on the term's support, adds
    ``scale[j] * (-1)^parity + offset[j]`` to ``values_out[s]`` and 1 to ``hits_out[s]``;
    non-matching terms add nothing. With ``scale[j] = c_j 3^{w_j}`` and ``offset = 0`` this is
    the standard shadow estimate of ``sum_j c_j P_j`` from snapshot ``s``; other choices give
    influence functions (see :mod:`shadowlab.estimate.pauli`).

    ``values_out`` (float64) and ``hits_out`` (int64) are ``(n_valid,)`` and added to in place.
    """
    # The per-word body is a separate serial function: written inline, numba's parfor pass
    # treats the scattered in-place updates conservatively and runs about 5x slower.
    for w in prange((n_valid + 63) // 64):
        _sum_values_word(planes, w, n_valid, qubits, codes, weights, scale, offset, values_out, hits_out)


@njit(parallel=True, cache=True)
def two_point_counts(planes, lo, hi, match_out, odd_out):
    """All two-point correlators on chunk-local snapshots ``[lo, hi)``: for qubits ``i < j`` and
    letters ``a, b``, count matches and odd-parity matches of ``P_a(i) P_b(j)``.

    ``match_out`` and ``odd_out`` are ``(n, n, 3, 3)`` int64, added to in place at ``[i, j, a, b]``
    for ``i < j`` only.
    """
    n_q = planes.shape[1]
    for i in prange(n_q):
        for j in range(i + 1, n_q):
            for w in range(lo // 64, (hi + 63) // 64):
                valid = _range_mask(w, lo, hi)
                par = planes[3, i, w] ^ planes[3, j, w]
                for a in range(3):
                    pa = planes[a, i, w] & valid
                    if pa == 0:
                        continue
                    for b in range(3):
                        acc = pa & planes[b, j, w]
                        match_out[i, j, a, b] += np.int64(_popcount(acc))
                        odd_out[i, j, a, b] += np.int64(_popcount(acc & par))
