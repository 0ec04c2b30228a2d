"""Tests for hidden-Pauli identification from two-copy Bell shots (shadowlab.twocopy.gf2)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString
from shadowlab.twocopy.gf2 import (
    acceptance_threshold,
    gf2_rank,
    identify_hidden_pauli,
    miss_probability,
    pack_bits,
    sample_hidden_pauli_shots,
    unpack_bits,
)


def _random_pauli(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    while True:
        x = rng.integers(0, 2, n).astype(np.uint8)
        z = rng.integers(0, 2, n).astype(np.uint8)
        if x.any() or z.any():
            return x, z


def _disagreements(a: np.ndarray, c: np.ndarray, x: np.ndarray, z: np.ndarray) -> int:
    parity = (a.astype(np.int64) @ x + c.astype(np.int64) @ z + int(np.sum(x & z))) & 1
    return int(parity.sum())


def test_pack_unpack_roundtrip() -> None:
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (7, 130)).astype(np.uint8)
    packed = pack_bits(bits)
    assert packed.shape == (7, 3) and packed.dtype == np.uint64
    np.testing.assert_array_equal(unpack_bits(packed, 130), bits)
    # Bit i sits in word i >> 6 at position i & 63.
    assert int(packed[0, 1]) == sum(int(b) << i for i, b in enumerate(bits[0, 64:128]))


def test_gf2_rank_matches_dense_elimination() -> None:
    rng = np.random.default_rng(1)
    for rows, cols in [(5, 5), (10, 70), (70, 10), (40, 40)]:
        m = rng.integers(0, 2, (rows, cols)).astype(np.uint8)
        m[-1] = m[0] ^ m[1]  # force a dependency
        expected = _dense_rank(m)
        assert gf2_rank(pack_bits(m), cols) == expected


def _dense_rank(m: np.ndarray) -> int:
    a = m.copy()
    rank = 0
    for col in range(a.shape[1]):
        rows = np.flatnonzero(a[rank:, col])
        if rows.size == 0:
            continue
        piv = rank + rows[0]
        a[[rank, piv]] = a[[piv, rank]]
        for r in range(a.shape[0]):
            if r != rank and a[r, col]:
                a[r] ^= a[rank]
        rank += 1
        if rank == a.shape[0]:
            break
    return rank


def test_sampler_has_the_right_bias() -> None:
    rng = np.random.default_rng(2)
    x = np.array([1, 1, 0, 0, 1], np.uint8)
    z = np.array([0, 1, 1, 0, 1], np.uint8)
    m = 40_000
    a, c = sample_hidden_pauli_shots(x, z, 0.9, m, rng)
    eta = (1 - 0.81) / 2
    assert abs(_disagreements(a, c, x, z) / m - eta) < 5 * np.sqrt(eta * (1 - eta) / m)
    # Other Paulis see an unbiased coin, and single bits stay uniform.
    other_x = np.array([1, 0, 0, 0, 1], np.uint8)
    assert abs(_disagreements(a, c, other_x, z) / m - 0.5) < 0.02
    assert np.all(np.abs(a.mean(axis=0) - 0.5) < 0.02)
    assert np.all(np.abs(c.mean(axis=0) - 0.5) < 0.02)


@pytest.mark.parametrize("n", [5, 10, 20, 30])
def test_exact_recovery(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    x, z = _random_pauli(n, rng)
    # 20 copies per qubit (10 shots) plus a floor: the 1e-6 union bound needs slack at small n.
    shots = max(10 * n, 110)
    a, c = sample_hidden_pauli_shots(x, z, 0.9, shots, rng)
    res = identify_hidden_pauli(a, c, rng=rng, max_seconds=10)
    assert res.found
    np.testing.assert_array_equal(res.x, x)
    np.testing.assert_array_equal(res.z, z)
    assert res.disagreements == _disagreements(a, c, x, z) <= res.threshold
    assert res.label == _expected_label(x, z)
    assert res.n_shots == shots and res.iterations >= 1


def _expected_label(x: np.ndarray, z: np.ndarray) -> str:
    letters = {(1, 0): "X", (1, 1): "Y", (0, 1): "Z"}
    pairs = [(letters[(int(x[q]), int(z[q]))], q) for q in range(x.size) if x[q] or z[q]]
    return PauliString.from_pairs(pairs).to_sparse()


def test_known_label_and_single_qubit_paulis() -> None:
    rng = np.random.default_rng(3)
    n = 8
    for letter_x, letter_z, letter in [(1, 0, "X"), (1, 1, "Y"), (0, 1, "Z")]:
        x = np.zeros(n, np.uint8)
        z = np.zeros(n, np.uint8)
        x[6], z[6] = letter_x, letter_z
        a, c = sample_hidden_pauli_shots(x, z, 0.9, 120, rng)
        res = identify_hidden_pauli(a, c, rng=rng, max_seconds=10)
        assert res.found and res.label == f"{letter}6"


@pytest.mark.parametrize("p", [1, 2, 3])
def test_every_enumeration_depth_recovers(p: int) -> None:
    rng = np.random.default_rng(40 + p)
    x, z = _random_pauli(15, rng)
    a, c = sample_hidden_pauli_shots(x, z, 0.9, 160, rng)
    res = identify_hidden_pauli(a, c, rng=rng, p=p, max_seconds=10)
    assert res.found and np.array_equal(res.x, x) and np.array_equal(res.z, z)


def test_noiseless() -> None:
    rng = np.random.default_rng(4)
    n = 30
    x, z = _random_pauli(n, rng)
    a, c = sample_hidden_pauli_shots(x, z, 1.0, 2 * n + 30, rng)
    res = identify_hidden_pauli(a, c, rng=rng, lam=1.0, max_seconds=10)
    assert res.found and res.disagreements == 0
    assert res.miss_probability == 0.0
    np.testing.assert_array_equal(res.x, x)
    np.testing.assert_array_equal(res.z, z)


def test_tiny_budget_reports_failure_not_a_wrong_pauli() -> None:
    rng = np.random.default_rng(5)
    n = 60
    x, z = _random_pauli(n, rng)
    a, c = sample_hidden_pauli_shots(x, z, 0.9, 300, rng)
    res = identify_hidden_pauli(a, c, rng=rng, max_iterations=1, p=1)
    assert res.iterations == 1
    if res.found:  # a lucky first information set is allowed, a wrong answer is not
        np.testing.assert_array_equal(res.x, x)
        np.testing.assert_array_equal(res.z, z)
    else:
        assert res.x is None and res.z is None and res.label is None
        assert "budget" in res.message
    res = identify_hidden_pauli(a, c, rng=np.random.default_rng(6), max_seconds=0.0)
    assert not res.found and res.iterations == 0 and "time budget" in res.message


def test_pure_noise_is_never_identified() -> None:
    # lam = 0: no Pauli is special, every candidate's count is Binomial(m, 1/2).
    for seed in range(3):
        rng = np.random.default_rng(70 + seed)
        x, z = _random_pauli(10, rng)
        a, c = sample_hidden_pauli_shots(x, z, 0.0, 150, rng)
        res = identify_hidden_pauli(a, c, rng=rng, max_iterations=2000)
        assert not res.found and res.x is None


def test_threshold_respects_the_union_bound() -> None:
    for n, m in [(5, 80), (20, 150), (100, 500), (100, 1000)]:
        t = acceptance_threshold(n, m)
        assert 2.0 ** (2 * n + 1) * binom.cdf(t, m, 0.5) <= 1e-6
        assert 2.0 ** (2 * n + 1) * binom.cdf(t + 1, m, 0.5) > 1e-6
        assert miss_probability(n, m, 0.9) == pytest.approx(binom.sf(t, m, 0.095))
    # Too few shots for any threshold at all.
    assert acceptance_threshold(50, 60) == -1


def test_too_few_shots_raises_with_the_needed_count() -> None:
    rng = np.random.default_rng(7)
    x, z = _random_pauli(20, rng)
    a, c = sample_hidden_pauli_shots(x, z, 0.9, 50, rng)
    with pytest.raises(ShadowlabError, match=r"Need at least \d+ shots \(\d+ copies\)"):
        identify_hidden_pauli(a, c, rng=rng)


def test_rank_deficient_shots_are_not_identified() -> None:
    # Qubit 3 is never touched, so X3 and I (and any P times X3, Z3) fit equally well.
    rng = np.random.default_rng(8)
    x = np.array([1, 0, 1, 0, 0, 0], np.uint8)
    z = np.array([0, 1, 1, 0, 0, 0], np.uint8)
    a, c = sample_hidden_pauli_shots(x, z, 1.0, 100, rng)
    a[:, 3] = 0
    c[:, 3] = 0
    res = identify_hidden_pauli(a, c, rng=rng, lam=1.0)
    assert not res.found and "rank" in res.message


@pytest.mark.parametrize(
    ("a", "c", "match"),
    [
        (np.zeros((4, 3), np.uint8), np.zeros((4, 2), np.uint8), "shape"),
        (np.zeros(4, np.uint8), np.zeros(4, np.uint8), "2-D"),
        (np.full((4, 3), 2, np.uint8), np.zeros((4, 3), np.uint8), "0 or 1"),
        (np.zeros((4, 3)), np.zeros((4, 3), np.uint8), "dtype"),
        (np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.uint8), "at least one"),
    ],
)
def test_bad_input(a: np.ndarray, c: np.ndarray, match: str) -> None:
    with pytest.raises(ShadowlabError, match=match):
        identify_hidden_pauli(a, c, rng=np.random.default_rng(0))


def test_bad_parameters() -> None:
    a = np.zeros((100, 3), np.uint8)
    with pytest.raises(ShadowlabError, match="p must be"):
        identify_hidden_pauli(a, a, rng=np.random.default_rng(0), p=4)
    with pytest.raises(ShadowlabError, match="identity"):
        sample_hidden_pauli_shots(np.zeros(3, np.uint8), np.zeros(3, np.uint8), 0.9, 5, np.random.default_rng(0))


def test_zero_strength_is_refused() -> None:
    a = np.zeros((100, 3), np.uint8)
    with pytest.raises(ShadowlabError, match="no information"):
        identify_hidden_pauli(a, a, rng=np.random.default_rng(0), lam=0.0)
