"""The compiled kernels against direct numpy evaluation on the unpacked snapshots."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shadowlab import kernels


def _brute_counts(bases, outcomes, qubits, codes):
    """Matches and odd-parity matches of one Pauli, straight from the definition."""
    match = np.all(bases[:, qubits] == codes, axis=1)
    parity = outcomes[:, qubits].astype(np.int64).sum(axis=1) % 2
    return int(match.sum()), int((match & (parity == 1)).sum())


def _random_snapshots(rng, n_snap, n_q):
    return (rng.integers(0, 3, (n_snap, n_q), dtype=np.uint8), rng.integers(0, 2, (n_snap, n_q), dtype=np.uint8))


@settings(max_examples=40, deadline=None)
@given(n_snap=st.integers(0, 300), n_q=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_pack_places_every_bit(n_snap, n_q, seed):
    rng = np.random.default_rng(seed)
    bases, outcomes = _random_snapshots(rng, n_snap, n_q)
    planes = kernels.pack(bases, outcomes)
    assert planes.shape == (4, n_q, (n_snap + 63) // 64)
    for s in range(n_snap):
        w, bit = divmod(s, 64)
        for q in range(n_q):
            for b in range(3):
                assert bool((int(planes[b, q, w]) >> bit) & 1) == (bases[s, q] == b)
            assert bool((int(planes[3, q, w]) >> bit) & 1) == bool(outcomes[s, q])
    # Padding bits are zero in every plane.
    if n_snap % 64:
        assert not np.any(planes[:, :, -1] >> np.uint64(n_snap % 64))


@settings(max_examples=30, deadline=None)
@given(n_snap=st.integers(1, 400), n_q=st.integers(1, 8), n_blocks=st.integers(1, 7), seed=st.integers(0, 2**32 - 1))
def test_block_counts_match_brute_force(n_snap, n_q, n_blocks, seed):
    rng = np.random.default_rng(seed)
    bases, outcomes = _random_snapshots(rng, n_snap, n_q)
    planes = kernels.pack(bases, outcomes)
    n_obs = 20
    weights = rng.integers(0, n_q + 1, n_obs)
    qubits = np.zeros((n_obs, n_q), dtype=np.int64)
    codes = np.zeros((n_obs, n_q), dtype=np.int64)
    for m in range(n_obs):
        qubits[m, : weights[m]] = np.sort(rng.choice(n_q, weights[m], replace=False))
        codes[m, : weights[m]] = rng.integers(0, 3, weights[m])
    bounds = (np.arange(n_blocks + 1) * n_snap) // n_blocks
    match = np.zeros((n_obs, n_blocks), dtype=np.int64)
    odd = np.zeros_like(match)
    kernels.pauli_block_counts(planes, bounds[:-1], bounds[1:], qubits, codes, weights, match, odd)
    for m in range(n_obs):
        w = weights[m]
        for k in range(n_blocks):
            sl = slice(bounds[k], bounds[k + 1])
            assert (match[m, k], odd[m, k]) == _brute_counts(bases[sl], outcomes[sl], qubits[m, :w], codes[m, :w])


def test_snapshot_values_match_brute_force():
    rng = np.random.default_rng(7)
    bases, outcomes = _random_snapshots(rng, 1000, 6)
    planes = kernels.pack(bases, outcomes)
    n_terms = 30
    weights = rng.integers(0, 5, n_terms)
    qubits = np.zeros((n_terms, 4), dtype=np.int64)
    codes = np.zeros((n_terms, 4), dtype=np.int64)
    for t in range(n_terms):
        qubits[t, : weights[t]] = np.sort(rng.choice(6, weights[t], replace=False))
        codes[t, : weights[t]] = rng.integers(0, 3, weights[t])
    scale, offset = rng.normal(size=n_terms), rng.normal(size=n_terms)
    values = np.zeros(1000)
    hits = np.zeros(1000, dtype=np.int64)
    kernels.pauli_sum_snapshot_values(planes, 1000, qubits, codes, weights, scale, offset, values, hits)
    ref = np.zeros(1000)
    ref_hits = np.zeros(1000, dtype=np.int64)
    for t in range(n_terms):
        q, c = qubits[t, : weights[t]], codes[t, : weights[t]]
        match = np.all(bases[:, q] == c, axis=1)
        sign = 1 - 2 * (outcomes[:, q].astype(np.int64).sum(axis=1) % 2)
        ref += match * (scale[t] * sign + offset[t])
        ref_hits += match
    np.testing.assert_allclose(values, ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(hits, ref_hits)


def test_two_point_counts_match_brute_force():
    rng = np.random.default_rng(3)
    bases, outcomes = _random_snapshots(rng, 777, 5)
    planes = kernels.pack(bases, outcomes)
    match = np.zeros((5, 5, 3, 3), dtype=np.int64)
    odd = np.zeros_like(match)
    kernels.two_point_counts(planes, 100, 700, match, odd)
    for i in range(5):
        for j in range(5):
            for a in range(3):
                for b in range(3):
                    expect = (0, 0)
                    if i < j:
                        expect = _brute_counts(bases[100:700], outcomes[100:700], np.array([i, j]), np.array([a, b]))
                    assert (match[i, j, a, b], odd[i, j, a, b]) == expect
