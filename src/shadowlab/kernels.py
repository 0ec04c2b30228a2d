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


@njit(parallel=True, cache=True)
def pair_letter_counts(planes, pairs, letters, same_out, odd_out):
    """For each listed qubit pair ``(i, j)``, count snapshots where both qubits were measured in
    the same letter of ``letters`` (codes 0/1/2), and those of them with different outcome bits.

    ``pairs`` is ``(P, 2)`` int64; ``same_out`` and ``odd_out`` are ``(P,)`` int64, added to in
    place. Padding bits past the last snapshot carry no basis flag, so they never count. Cost:
    ``|letters|`` ANDs, one XOR and two popcounts per pair and 64 snapshots.
    """
    for p in prange(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        n_same = 0
        n_odd = 0
        for w in range(planes.shape[2]):
            both = np.uint64(0)
            for a in letters:
                both |= planes[a, i, w] & planes[a, j, w]
            n_same += _popcount(both)
            n_odd += _popcount(both & (planes[3, i, w] ^ planes[3, j, w]))
        same_out[p] += np.int64(n_same)
        odd_out[p] += np.int64(n_odd)


# =============================================================================================
# Derandomized classical shadows (used by :mod:`shadowlab.plan.derandomize`)
# =============================================================================================
#
# The greedy rule and its conventions are documented in shadowlab.plan.derandomize. The
# kernel below works on the *difference* form of the cost: at qubit q, choosing letter b
# changes the cost sum only through the observables l that are unfinished, have not
# conflicted yet in this setting and touch q. With A_l = exp(-(eta/2) h_l / w_l) and
# T_l(m) = (1 - nu 3^-m)^(1/w_l),
#
#     cost(b) = const - G_b,   G_b = sum over those l with letter b at q of A_l (1 - T_l(m_l - 1)),
#
# (m_l counts q as unassigned), so argmin cost = argmax G (first of X, Y, Z on ties).
# Terms are stored pre-multiplied, scaled[goff[l] + j] = exp(log A_l - ref) (1 - T_l(j)),
# with one reference exponent ``ref`` per run (lowered when every unfinished observable has
# fallen far below it). When the largest G_b is below _DERAND_FAST_MIN, some terms may have
# underflowed, and the choice is recomputed in the log domain, shifting each letter's
# exponents by their own maximum, so that tiny weights or many hits cannot make the three
# choices tie spuriously.

_DERAND_DONE = np.iinfo(np.int64).max
# Above this, terms that underflowed (each < 2.3e-308) change G by far less than rounding.
_DERAND_FAST_MIN = 1e-250
# Rescale every stored term when all unfinished observables are this far below ``ref``.
_DERAND_RESCALE = 200.0
# Tie tolerance: summing n_act positive terms in some order has a relative rounding error
# below (n_act - 1) * eps. Choices whose G is within (n_act + _DERAND_TIE_SLACK) * eps of the
# largest count as tied and the first of X, Y, Z is taken, so that exact ties (common:
# symmetric observables with equal histories, whose equal terms are summed in different
# orders) follow the rule's tie order rather than rounding noise. Larger differences decide.
_DERAND_EPS = np.finfo(np.float64).eps
_DERAND_TIE_SLACK = 8.0


@njit(cache=True)
def _derand_store_terms(obs, log_a, ref, goff, k, g_lin, scaled):
    """``scaled[goff[obs] + j] = exp(log_a[obs] - ref) * g_lin[goff[obs] + j]`` for ``j < k[obs]``."""
    f = np.exp(log_a[obs] - ref)
    o = goff[obs]
    for j in range(k[obs]):
        scaled[o + j] = f * g_lin[o + j]


@njit(cache=True)
def _derand_log_choice(adj_ptr, q, adj_obs, dead, s, cursor, g_log, log_a, n_act):
    """Letter (0/1/2) maximizing ``log G_b`` at qubit ``q``, computed in the log domain."""
    vals = np.full(3, -np.inf)
    for c in range(3):
        lo = adj_ptr[3 * q + c]
        hi = adj_ptr[3 * q + c + 1]
        mx = -np.inf
        for e in range(lo, hi):
            obs = adj_obs[e]
            if dead[obs] < s:
                mx = max(mx, log_a[obs] + g_log[cursor[obs]])
        if mx == -np.inf:
            continue
        acc = 0.0
        for e in range(lo, hi):
            obs = adj_obs[e]
            if dead[obs] < s:
                acc += np.exp(log_a[obs] + g_log[cursor[obs]] - mx)
        vals[c] = mx + np.log(acc)
    top = vals.max()
    # Ties up to rounding (relative, so absolute in the log domain; the exponents themselves
    # carry an absolute error of a few ulps of their magnitude): take the first.
    floor_ = top - (n_act + _DERAND_TIE_SLACK + 4.0 * abs(top)) * _DERAND_EPS
    for c in range(3):
        if vals[c] >= floor_:
            return c
    return 0


@njit(cache=True)
def _derand_sum(lo, hi, adj_obs, dead, s, cursor, scaled):
    """Sum of ``scaled[cursor[l]]`` over the observables ``l`` of entries ``[lo, hi)`` active in ``s``."""
    g = 0.0
    n_act = 0
    for e in range(lo, hi):
        obs = adj_obs[e]
        if dead[obs] < s:
            g += scaled[cursor[obs]]
            n_act += 1
    return g, n_act


@njit(cache=True)
def derandomize_chunk(adj_ptr, adj_obs, k, goff, g_lin, g_log, weight, half_eta, target, hits, log_a,
                      scaled, dead, cursor, unfinished, istate, fstate, first_setting, out):
    """Build up to ``out.shape[0]`` derandomized settings; return how many were built.

    State arrays are updated in place so that a run can continue with another call:

    * ``adj_ptr`` ``(3n+1,)``, ``adj_obs``: CSR adjacency over slots ``3 q + c``: the observables
      with letter ``c`` on qubit ``q``, in input order (compacted in place as observables finish);
    * ``k``, ``goff``: weight of each observable and offset of its ``k`` entries in ``g_lin``
      (``1 - T_l(j)``), ``g_log`` (its log) and ``scaled`` (times ``exp(log_a - ref)``);
    * ``weight``, ``target``, ``hits``, ``log_a`` (``-(eta/2) hits / weight``);
    * ``dead[l]``: ``>= s`` means skip observable ``l`` in setting ``s`` (it conflicted in ``s``,
      or is done: :data:`_DERAND_DONE`); ``cursor[l] = goff[l] + m_l - 1`` with ``m_l`` the
      qubits of ``l`` not yet assigned (the table entry used if the next one matches);
    * ``unfinished[:istate[0]]``: the observables not yet at their target;
      ``istate[1]``: adjacency entries of finished observables, ``istate[2]``: adjacency length;
      ``fstate[0]``: the reference exponent ``ref``.

    Setting ``t`` of this call is global setting ``first_setting + t`` and is written to
    ``out[t]`` (basis codes 0/1/2). Stops early when every observable is done.
    """
    n_q = out.shape[1]
    made = 0
    for t in range(out.shape[0]):
        if istate[0] == 0:
            break
        s = first_setting + t
        for q in range(n_q):
            b0 = 3 * q
            gx, nx = _derand_sum(adj_ptr[b0], adj_ptr[b0 + 1], adj_obs, dead, s, cursor, scaled)
            gy, ny = _derand_sum(adj_ptr[b0 + 1], adj_ptr[b0 + 2], adj_obs, dead, s, cursor, scaled)
            gz, nz = _derand_sum(adj_ptr[b0 + 2], adj_ptr[b0 + 3], adj_obs, dead, s, cursor, scaled)
            n_act = nx + ny + nz
            best = 0
            if n_act > 0:
                gmax = max(gx, gy, gz)
                if gmax < _DERAND_FAST_MIN:
                    best = _derand_log_choice(adj_ptr, q, adj_obs, dead, s, cursor, g_log, log_a, n_act)
                else:
                    # Values within the rounding bound of the largest are ties: take the first.
                    floor_ = gmax - gmax * (n_act + _DERAND_TIE_SLACK) * _DERAND_EPS
                    if gx >= floor_:
                        best = 0
                    elif gy >= floor_:
                        best = 1
                    else:
                        best = 2
                for c in range(3):
                    lo = adj_ptr[b0 + c]
                    hi = adj_ptr[b0 + c + 1]
                    if c == best:
                        for e in range(lo, hi):
                            obs = adj_obs[e]
                            if dead[obs] < s:
                                cursor[obs] -= 1
                    else:
                        for e in range(lo, hi):
                            obs = adj_obs[e]
                            if dead[obs] < s:
                                dead[obs] = s
            out[t, q] = best
        made = t + 1
        # Observables that did not conflict in setting s are hit by it.
        ref = fstate[0]
        kept = 0
        top = -np.inf
        for i in range(istate[0]):
            obs = unfinished[i]
            if dead[obs] < s:
                hits[obs] += 1
                if hits[obs] >= target[obs]:
                    dead[obs] = _DERAND_DONE
                    istate[1] += k[obs]
                    continue
                log_a[obs] = -(half_eta * hits[obs]) / weight[obs]
                _derand_store_terms(obs, log_a, ref, goff, k, g_lin, scaled)
            cursor[obs] = goff[obs] + k[obs] - 1
            unfinished[kept] = obs
            kept += 1
            top = max(top, log_a[obs])
        istate[0] = kept
        if kept > 0 and top < ref - _DERAND_RESCALE:
            fstate[0] = top
            for i in range(kept):
                _derand_store_terms(unfinished[i], log_a, top, goff, k, g_lin, scaled)
        if 2 * istate[1] > istate[2]:
            # Drop finished observables from the adjacency, keeping each qubit's order.
            wi = 0
            start = adj_ptr[0]
            n_slots = adj_ptr.shape[0] - 1
            for slot in range(n_slots):
                end = adj_ptr[slot + 1]
                adj_ptr[slot] = wi
                for e in range(start, end):
                    if dead[adj_obs[e]] != _DERAND_DONE:
                        adj_obs[wi] = adj_obs[e]
                        wi += 1
                start = end
            adj_ptr[n_slots] = wi
            istate[1] = 0
            istate[2] = wi
    return made


# =============================================================================================
# Subsystem pattern counts (used by shadowlab.estimate.entropy and shadowlab.estimate.rdm)
# =============================================================================================
#
# A snapshot restricted to a subsystem A = (q_0, ..., q_{k-1}) is one of 6^k *patterns*: per
# qubit the digit d = 2 * basis + outcome (0..5: X+, X-, Y+, Y-, Z+, Z-), and the pattern index
# is sum_j d_j 6^(k-1-j) (qubit q_0 is the most significant digit). Nonlinear estimators
# (purity, reduced density matrices) are functions of the pattern counts alone.


@njit(parallel=True, cache=True)
def subsystem_pattern_counts(bases, outcomes, qubits, sizes, offsets, counts):
    """Add, for every subsystem ``i``, the pattern counts of the snapshots of one chunk.

    ``qubits`` is ``(n_sub, k_max)`` int64 (row ``i`` holds subsystem ``i``'s ``sizes[i]``
    qubits); ``counts`` is a flat int64 array where subsystem ``i`` owns
    ``counts[offsets[i] : offsets[i] + 6**sizes[i]]``, added to in place.
    """
    n_snap = bases.shape[0]
    for i in prange(sizes.shape[0]):
        k = sizes[i]
        off = offsets[i]
        for s in range(n_snap):
            idx = np.int64(0)
            for j in range(k):
                q = qubits[i, j]
                idx = idx * 6 + 2 * np.int64(bases[s, q]) + np.int64(outcomes[s, q])
            counts[off + idx] += 1


@njit(cache=True)
def _group6(vec, b0, st, alpha, beta, gamma):
    """Apply the per-qubit 6x6 table in place to the six entries ``vec[b0 + d * st]``."""
    x0 = vec[b0]
    x1 = vec[b0 + st]
    x2 = vec[b0 + 2 * st]
    x3 = vec[b0 + 3 * st]
    x4 = vec[b0 + 4 * st]
    x5 = vec[b0 + 5 * st]
    t = alpha * (x0 + x1 + x2 + x3 + x4 + x5)
    vec[b0] = t + beta * x0 + gamma * x1
    vec[b0 + st] = t + gamma * x0 + beta * x1
    vec[b0 + 2 * st] = t + beta * x2 + gamma * x3
    vec[b0 + 3 * st] = t + gamma * x2 + beta * x3
    vec[b0 + 4 * st] = t + beta * x4 + gamma * x5
    vec[b0 + 5 * st] = t + gamma * x4 + beta * x5


@njit(parallel=True, cache=True)
def _kron6_low(vec, m, alpha, beta, gamma):
    """All of the ``m`` trailing axes, one cache-resident block of ``6^m`` entries at a time."""
    block = 6**m
    for o in prange(vec.shape[0] // block):
        off = o * block
        for j in range(m):
            st = 6 ** (m - 1 - j)
            for outer in range(6**j):
                b = off + outer * 6 * st
                for i in range(st):
                    _group6(vec, b + i, st, alpha, beta, gamma)


@njit(parallel=True, cache=True)
def _kron6_high(vec, h, m, tile, alpha, beta, gamma):
    """All of the ``h`` leading axes, for ``tile`` consecutive low indices (of ``6^m``) at a time."""
    low = 6**m
    n_tiles = (low + tile - 1) // tile
    for t in prange(n_tiles):
        i0 = t * tile
        i1 = min(i0 + tile, low)
        for j in range(h):
            mids = 6 ** (h - 1 - j)
            st = low * mids
            for outer in range(6**j):
                for mid in range(mids):
                    b = outer * 6 * st + mid * low
                    for i in range(i0, i1):
                        _group6(vec, b + i, st, alpha, beta, gamma)


def kron6_apply(vec: np.ndarray, k: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """``(m ⊗ ... ⊗ m) @ vec`` (``k`` factors) for a length-``6**k`` vector, as a new float64 array,
    where the single-qubit 6x6 matrix over digits ``2 b + o`` is
    ``m[(b, o), (b', o')] = alpha + [b == b'] * (beta if o == o' else gamma)``.

    Applied axis by axis in place, ``O(k 6^k)`` operations in two cache-blocked sweeps over the
    vector (the trailing axes block by block, then the leading axes tile by tile); the
    ``6^k x 6^k`` matrix is never formed.
    """
    out = np.array(vec, dtype=np.float64, copy=True)
    m = min(k, 5)
    _kron6_low(out, m, float(alpha), float(beta), float(gamma))
    h = k - m
    if h > 0:
        tile = max(8, 16384 // 6**h)
        _kron6_high(out, h, m, tile, float(alpha), float(beta), float(gamma))
    return out


@njit(cache=True)
def _flush_run(i, k, buf, touched, n_touched, run_len, run_v, w1, w2, n_total, u_est, d_tot, acc):
    """Close the current run of snapshots that share one setting (see :func:`setting_run_sums`)."""
    q1 = 0.0
    q2 = 0.0
    nt = n_touched[i]
    for a in range(nt):
        ia = touched[i, a]
        ma = np.float64(buf[i, ia])
        for b in range(nt):
            ib = touched[i, b]
            d = _popcount(np.uint64(ia ^ ib))
            mb = np.float64(buf[i, ib])
            q1 += ma * mb * w1[i, d]
            q2 += ma * mb * w2[i, d]
    for a in range(nt):
        buf[i, touched[i, a]] = 0
    length = np.float64(run_len[i])
    acc[i, 0] += q1
    acc[i, 1] += q2
    acc[i, 2] += length * length
    acc[i, 3] += 1.0
    # Delete-this-setting (jackknife) estimate minus the full one: the run's cross-setting pair
    # sum a_g = run_v - q1 enters the ordered-pair sum twice, over 2 L (N - L) pairs.
    den = d_tot[i] - 2.0 * length * (n_total - length)
    if den > 0.0:
        dev = (u_est[i] * d_tot[i] - 2.0 * (run_v[i] - q1)) / den - u_est[i]
        acc[i, 4] += dev
        acc[i, 5] += dev * dev
    n_touched[i] = 0
    run_len[i] = 0
    run_v[i] = 0.0


@njit(parallel=True, cache=True)
def setting_run_sums(bases, outcomes, settings, qubits, sizes, offsets, v, w1, w2, n_total, u_est, d_tot, cur,
                     buf, touched, n_touched, run_len, run_v, acc, final):
    """Within-setting pair sums for the purity U-statistic when settings repeat.

    Snapshots that share a setting index must be contiguous (one *run* per setting). For each
    subsystem ``i`` and each run ``g`` (``L`` snapshots, ``m`` their outcome-pattern counts over
    ``2^k`` outcome strings, all sharing the bases), adds to ``acc[i]``:
    ``[0]`` ``Q1 = sum_{s,t in g} prod_q f`` (self pairs included; with equal bases the
    per-qubit kernel is 5 for equal, -4 for different bits, so ``w1[i, d] = 5^(k-d) (-4)^d`` for
    ``d`` differing bits), ``[1]`` the same with squared kernel values (``w2``), ``[2]`` ``L^2``,
    ``[3]`` one per run, and (pass 2: ``v`` holds ``K c``, ``u_est`` the estimate over
    ``d_tot`` cross-setting ordered pairs) ``[4]``, ``[5]`` the sum of ``U_(-g) - u_est`` and of
    its square, ``U_(-g)`` the estimate without setting ``g`` (for a jackknife variance).

    Run state (``cur`` setting per subsystem, -1 before the first, ``buf``/``touched`` of shape
    ``(n_sub, 2^k_max)``, ``n_touched``, ``run_len``, ``run_v``) carries over between chunks;
    call once more with ``final=True`` (and any chunk, e.g. empty) to close the last run.
    """
    n_snap = bases.shape[0]
    for i in prange(sizes.shape[0]):
        k = sizes[i]
        off = offsets[i]
        for s in range(n_snap):
            g = settings[s]
            if g != cur[i]:
                if run_len[i] > 0:
                    _flush_run(i, k, buf, touched, n_touched, run_len, run_v, w1, w2, n_total, u_est, d_tot, acc)
                cur[i] = g
            idx = np.int64(0)
            oidx = np.int64(0)
            for j in range(k):
                q = qubits[i, j]
                o = np.int64(outcomes[s, q])
                idx = idx * 6 + 2 * np.int64(bases[s, q]) + o
                oidx = oidx * 2 + o
            if buf[i, oidx] == 0:
                touched[i, n_touched[i]] = oidx
                n_touched[i] += 1
            buf[i, oidx] += 1
            run_len[i] += 1
            run_v[i] += v[off + idx]
        if final and run_len[i] > 0:
            _flush_run(i, k, buf, touched, n_touched, run_len, run_v, w1, w2, n_total, u_est, d_tot, acc)


@njit(cache=True)
def purity_pattern_sums(counts, v1, v2, self1, self2):
    """Over the patterns ``p`` with ``counts[p] > 0``: ``sum c_p (v1_p - self1)``,
    ``sum c_p (v1_p - self1)^2`` and ``sum c_p (v2_p - self2)`` (float64), the ingredients of the
    purity U-statistic and its variance (see :mod:`shadowlab.estimate.entropy`)."""
    s1 = 0.0
    s11 = 0.0
    s2 = 0.0
    for p in range(counts.shape[0]):
        # Branch-free: zero counts add zero.
        c = np.float64(counts[p])
        a = v1[p] - self1
        s1 += c * a
        s11 += c * a * a
        s2 += c * (v2[p] - self2)
    return s1, s11, s2



# -- two-copy Bell shots -------------------------------------------------------------------------
# Bell planes are ``(2, n_pairs, n_words)`` uint64: ``[0, k, w]`` holds the ``a`` bits of pair
# ``k`` (copy A) and ``[1, k, w]`` the ``c`` bits (copy B) for shots ``64 w .. 64 w + 63``.
# Padding bits are 0 in both planes, so they add even parity; the kernels count odd parities
# only, and callers turn counts into eigenvalue sums with the number of valid shots.


@njit(parallel=True, cache=True)
def _pack_bell(a, c, planes):
    n_shots, n_q = a.shape
    for w in prange(planes.shape[2]):
        lo = w * 64
        hi = min(lo + 64, n_shots)
        for q in range(n_q):
            wa = np.uint64(0)
            wc = np.uint64(0)
            for s in range(lo, hi):
                bit = _ONE << np.uint64(s - lo)
                if a[s, q]:
                    wa |= bit
                if c[s, q]:
                    wc |= bit
            planes[0, q, w] = wa
            planes[1, q, w] = wc


def pack_bell(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Pack ``(S, n)`` uint8 Bell bits into ``(2, n, ceil(S/64))`` uint64 planes (inputs validated)."""
    n_shots, n_q = a.shape
    planes = np.zeros((2, n_q, n_words(n_shots)), dtype=np.uint64)
    if n_shots:
        _pack_bell(np.ascontiguousarray(a, dtype=np.uint8), np.ascontiguousarray(c, dtype=np.uint8), planes)
    return planes


@njit(parallel=True, cache=True)
def bell_pauli_odd_counts(planes, qubits, codes, weights, odd_out):
    """Add to ``odd_out[m]`` the number of shots on which ``x.a + z.c`` is odd for Pauli ``m``.

    The ``P (x) P`` eigenvalue of a shot is ``(-1)**(#Y + x.a + z.c)``: X reads the ``a`` plane,
    Z the ``c`` plane and Y both, XORed over the support (``qubits[m, :weights[m]]``, letter
    ``codes`` 0/1/2 = X/Y/Z). Cost: ``|S|`` XORs and one popcount per 64 shots.
    """
    n_w = planes.shape[2]
    for m in prange(qubits.shape[0]):
        odd = np.int64(0)
        wt = weights[m]
        for w in range(n_w):
            acc = np.uint64(0)
            for j in range(wt):
                q = qubits[m, j]
                code = codes[m, j]
                if code == 0:
                    acc ^= planes[0, q, w]
                elif code == 2:
                    acc ^= planes[1, q, w]
                else:
                    acc ^= planes[0, q, w] ^ planes[1, q, w]
            odd += np.int64(_popcount(acc))
        odd_out[m] += odd


@njit(parallel=True, cache=True)
def bell_swap_odd_counts(planes, qubits, offsets, odd_out):
    """Add to ``odd_out[i]`` the shots on which the SWAP of subsystem ``i`` has eigenvalue -1.

    Subsystem ``i`` is ``qubits[offsets[i]:offsets[i + 1]]``; the SWAP eigenvalue of a pair is
    ``(-1)**(a c)`` (the singlet alone is antisymmetric), so the subsystem's is the parity of
    ``a AND c`` over its pairs.
    """
    n_w = planes.shape[2]
    for i in prange(offsets.shape[0] - 1):
        odd = np.int64(0)
        for w in range(n_w):
            acc = np.uint64(0)
            for j in range(offsets[i], offsets[i + 1]):
                q = qubits[j]
                acc ^= planes[0, q, w] & planes[1, q, w]
            odd += np.int64(_popcount(acc))
        odd_out[i] += odd


# =============================================================================================
# Shadow kernel (used by shadowlab.learn.shadow_kernel)
# =============================================================================================
#
# The shadow kernel of Huang et al. (Science 2022) compares two sets of snapshots pair by pair.
# For snapshots s, t on n qubits the single-qubit snapshots sigma = 3|b><b| - I give
# tr(sigma_i sigma'_i) = 5 (same basis, same outcome), -4 (same basis, different outcome) and
# 1/2 (different bases), so with a = #qubits of the first kind and b = #of the second,
#
#     sum_i tr(sigma_i sigma'_i) = 5 a - 4 b + (n - a - b) / 2 = n / 2 + 9 (a - b) / 2,
#
# a function of the *difference* d = a - b alone (-n <= d <= n). The kernels therefore only
# count, per pair of data sets, how many snapshot pairs have each d (an exact integer
# histogram); any exponential weighting is applied afterwards to 2 n + 1 numbers.
#
# Snapshot-major layout ("rows"): ``rows[s, p, w]`` is a uint64 for snapshot s, plane p and word
# w of ceil(n / 64) words; qubit q is bit q % 64 of word q // 64. Planes 0/1/2 have the bit set
# iff qubit q was measured in X/Y/Z, plane 3 iff its outcome bit was 1. Padding bits past n are
# 0 in every plane, so padded qubits never count as "same basis" and add nothing to a or b.


def pack_rows(bases: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """Pack ``(S, n)`` uint8 bases and outcomes into snapshot-major ``(S, 4, ceil(n/64))`` uint64 rows.

    See the section comment above for the layout. Inputs must already be validated (codes 0..2
    and 0..1; see :class:`ShadowData`). The rows are :func:`pack` of the transposed data (qubits
    in the role of snapshots), so one packing kernel serves both layouts.
    """
    planes = pack(np.ascontiguousarray(np.asarray(bases).T), np.ascontiguousarray(np.asarray(outcomes).T))
    return np.ascontiguousarray(planes.transpose(1, 0, 2))


@njit(parallel=True, cache=True)
def shadow_pair_histograms(rows, task_row_lo, task_row_hi, task_col_lo, task_col_hi, n_qubits, hist_out):
    """Histogram of ``d = a - b`` over snapshot pairs, one histogram per task.

    Parameters
    ----------
    rows:
        ``(S_total, 4, n_words)`` uint64 snapshot-major rows of every data set, stacked.
    task_row_lo, task_row_hi, task_col_lo, task_col_hi:
        ``(K,)`` int64: task ``k`` pairs every row in ``[task_row_lo[k], task_row_hi[k])`` with
        every row in ``[task_col_lo[k], task_col_hi[k])`` (all ordered pairs, self pairs
        included when the ranges overlap).
    n_qubits:
        ``n``; ``d`` ranges over ``-n..n``.
    hist_out:
        ``(K, 2 n + 1)`` int64, overwritten: ``hist_out[k, d + n]`` = number of pairs of task
        ``k`` with ``a - b = d`` (``a``: qubits with equal basis and outcome, ``b``: equal basis,
        different outcome).

    Cost per pair: per 64 qubits three ANDs, two ORs, one XOR, one AND and two popcounts; tasks
    run in parallel and each writes only its own histogram row (no races, no atomics).
    """
    n_w = rows.shape[2]
    for k in prange(task_row_lo.shape[0]):
        h = hist_out[k]
        h[:] = 0
        for s in range(task_row_lo[k], task_row_hi[k]):
            for t in range(task_col_lo[k], task_col_hi[k]):
                same = np.int64(0)
                flip = np.int64(0)
                for w in range(n_w):
                    eq = ((rows[s, 0, w] & rows[t, 0, w]) | (rows[s, 1, w] & rows[t, 1, w])
                          | (rows[s, 2, w] & rows[t, 2, w]))
                    same += np.int64(_popcount(eq))
                    flip += np.int64(_popcount(eq & (rows[s, 3, w] ^ rows[t, 3, w])))
                # a - b = (same - flip) - flip
                h[same - 2 * flip + n_qubits] += 1
