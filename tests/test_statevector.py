"""Tests of the exact state-vector snapshot source (shadowlab.acquire.statevector).

Statistical checks compare empirical frequencies with exact Born probabilities within 5
standard errors, the standard error being the binomial one, sqrt(p (1 - p) / N) for a
frequency and sqrt((1 - <P>^2) / N) for the mean of N +-1 outcomes. Seeds are fixed, so the
tests are deterministic; at 5 sigma a correct sampler would fail a given check with
probability ~6e-7.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shadowlab.acquire.states import ghz, haar_random_state, product_state
from shadowlab.acquire.statevector import (
    exact_pauli_expectations,
    pauli_masks,
    sample_statevector,
    validate_statevector,
)
from shadowlab.data.dataset import ShadowData, uniform_settings
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError
from shadowlab.paulis import PauliString, PauliSum, pauli_matrix

S2 = 1 / np.sqrt(2)
# Basis-change unitaries written out independently of the module: measuring X = H then Z,
# measuring Y = H S^dagger then Z (Nielsen & Chuang, sec. 4.2 and exercise 4.14 conventions).
HADAMARD = np.array([[1, 1], [1, -1]]) * S2
ROTATE = {0: HADAMARD, 1: HADAMARD @ np.diag([1, -1j]), 2: np.eye(2)}


def born_probabilities(psi: np.ndarray, setting: tuple[int, ...]) -> np.ndarray:
    """Exact outcome distribution of a product measurement, by dense rotation (small n)."""
    u = np.ones((1, 1))
    for b in setting:
        u = np.kron(u, ROTATE[b])
    return np.abs(u @ psi) ** 2


def outcome_index(outcomes: np.ndarray) -> np.ndarray:
    """Outcome bit strings as integers, qubit 0 = most significant bit."""
    n = outcomes.shape[1]
    return outcomes.astype(np.int64) @ (1 << np.arange(n - 1, -1, -1))


def z_test(freq: np.ndarray, p: np.ndarray, n_shots: int) -> None:
    se = np.sqrt(p * (1 - p) / n_shots)
    # Outcomes of probability 0 or 1 must never (always) appear: there se = 0 and the check is exact.
    assert np.all(np.abs(freq - p) <= 5 * se + 1e-12), (freq, p)


def test_bit_order_qubit_zero_is_msb() -> None:
    psi = np.array([0, 0, 1, 0], dtype=complex)  # index 2 = |10>: qubit 0 in |1>
    d = sample_statevector(psi, np.array([[2, 2]]), 50, np.random.default_rng(0))
    assert d.outcomes.shape == (50, 2)
    assert np.all(d.outcomes[:, 0] == 1) and np.all(d.outcomes[:, 1] == 0)


@pytest.mark.parametrize(
    ("letter", "basis", "bit"),
    [("0", 2, 0), ("1", 2, 1), ("+", 0, 0), ("-", 0, 1), ("r", 1, 0), ("l", 1, 1)],
)
def test_eigenstates_give_deterministic_outcomes(letter: str, basis: int, bit: int) -> None:
    # Outcome 0 <-> eigenvalue +1 of the measured Pauli: |+> in X, |+i> = r in Y, |0> in Z.
    psi = product_state(letter * 3)
    d = sample_statevector(psi, np.full((1, 3), basis), 40, np.random.default_rng(1))
    assert np.all(d.outcomes == bit)


def test_z_mean_on_qubit_zero() -> None:
    theta = 1.1
    # (cos(theta/2)|0> + sin(theta/2)|1>) (x) |00>: <Z_0> = cos(theta).
    psi = np.kron([np.cos(theta / 2), np.sin(theta / 2)], np.eye(4)[0]).astype(complex)
    n_shots = 20_000
    d = sample_statevector(psi, np.array([[2, 0, 1]]), n_shots, np.random.default_rng(2))
    mean = np.mean(1 - 2 * d.outcomes[:, 0].astype(float))
    exact = np.cos(theta)
    assert abs(mean - exact) <= 5 * np.sqrt((1 - exact**2) / n_shots)
    assert np.all(d.bases == [2, 0, 1]) and np.all(d.settings == 0)


@pytest.mark.parametrize("max_memory_bytes", [1 << 30, 1], ids=["vectorized", "depth-first"])
def test_joint_distribution_matches_born_rule(max_memory_bytes: int) -> None:
    # All 27 settings of a Haar-random 3-qubit state; max_memory_bytes=1 forces the depth-first
    # (memory-capped) walk, which must give the same distribution.
    psi = haar_random_state(3, np.random.default_rng(5))
    settings = np.array(list(itertools.product(range(3), repeat=3)), dtype=np.uint8)
    n_shots = 3000
    d = sample_statevector(psi, settings, n_shots, np.random.default_rng(6), max_memory_bytes=max_memory_bytes)
    idx = outcome_index(d.outcomes)
    for g, setting in enumerate(settings):
        counts = np.bincount(idx[d.settings == g], minlength=8)
        z_test(counts / n_shots, born_probabilities(psi, tuple(setting)), n_shots)


def test_pauli_expectations_from_random_settings() -> None:
    # Classical-shadow-style data: uniform random settings, one shot each. For a Pauli P, the
    # snapshots whose bases match P on its support give +-1 samples of P with mean <P>.
    n = 4
    rng = np.random.default_rng(11)
    psi = haar_random_state(n, rng)
    settings = uniform_settings(n, 60_000, rng)
    d = sample_statevector(psi, settings, 1, rng)
    labels = ["Z0", "X1", "Y2", "X0 Y1", "Z1 Z3", "Y0 Y3", "X0 Z2 Y3", "Y1 X2 Z3"]
    exact = exact_pauli_expectations(psi, PauliSum.from_labels(labels, n_qubits=n))
    for label, e in zip(labels, exact, strict=True):
        p = PauliString.from_label(label)
        match = np.all(d.bases[:, p.qubits] == p.codes, axis=1)
        signs = np.prod(1 - 2 * d.outcomes[match][:, p.qubits].astype(float), axis=1)
        se = np.sqrt((1 - e**2) / match.sum())
        assert abs(signs.mean() - e) <= 5 * se, (label, signs.mean(), e, se)


def test_ghz_correlations_are_exact() -> None:
    # GHZ stabilizers: Z_i Z_j = +1 and X X X = +1, X Y Y = -1 (each eigenvalue is certain).
    psi = ghz(3)
    d = sample_statevector(psi, np.array([[2, 2, 2], [0, 0, 0], [0, 1, 1]]), 200, np.random.default_rng(3))
    zzz, xxx, xyy = (d.outcomes[d.settings == g].astype(int) for g in range(3))
    assert np.all(zzz[:, 0] == zzz[:, 1]) and np.all(zzz[:, 1] == zzz[:, 2])
    assert np.all(zzz.sum(axis=1) % 3 == 0) and 0 < zzz[:, 0].sum() < 200  # both branches occur
    assert np.all(xxx.sum(axis=1) % 2 == 0)  # product of eigenvalues +1: even number of 1 bits
    assert np.all(xyy.sum(axis=1) % 2 == 1)


def test_reproducible_and_seed_dependent() -> None:
    psi = haar_random_state(6, np.random.default_rng(0))
    settings = uniform_settings(6, 300, np.random.default_rng(1))
    a = sample_statevector(psi, settings, 3, np.random.default_rng(42))
    b = sample_statevector(psi, settings, 3, np.random.default_rng(42))
    c = sample_statevector(psi, settings, 3, np.random.default_rng(43))
    assert a.equals(b) and not a.equals(c)


def test_repeats_per_setting_progress_and_metadata() -> None:
    psi = haar_random_state(3, np.random.default_rng(0))
    settings = np.array([[0, 1, 2], [2, 2, 2], [1, 1, 0]])
    calls: list[int] = []
    d = sample_statevector(psi, settings, [2, 0, 5], np.random.default_rng(1), progress=calls.append)
    assert isinstance(d, ShadowData) and d.n_snapshots == 7
    np.testing.assert_array_equal(d.settings, [0, 0, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(d.bases[:2], [[0, 1, 2]] * 2)
    assert calls[-1] == 3
    assert d.metadata["source"] == "statevector" and d.metadata["n_snapshots"] == 7
    empty = sample_statevector(psi, np.zeros((0, 3), dtype=np.uint8), 4, np.random.default_rng(1))
    assert empty.n_snapshots == 0 and empty.n_qubits == 3


def test_shots_of_a_setting_are_shuffled() -> None:
    # The sampler draws outcome counts per outcome string; rows must not come out grouped.
    d = sample_statevector(product_state("+"), np.array([[2]]), 1000, np.random.default_rng(4))
    bits = d.outcomes[:, 0]
    assert 400 < bits.sum() < 600
    assert np.count_nonzero(np.diff(bits)) > 100  # sorted output would have a single change
    # Many settings with few shots each take the other shuffling path (one global sort). A block
    # of 4 fair bits is non-decreasing with probability 5/16; unshuffled blocks always would be.
    d = sample_statevector(product_state("+"), np.full((3000, 1), 2), 4, np.random.default_rng(5))
    blocks = d.outcomes[:, 0].reshape(3000, 4).astype(int)
    assert np.all(d.settings.reshape(3000, 4) == np.arange(3000)[:, None])
    unsorted = np.mean(np.any(np.diff(blocks, axis=1) < 0, axis=1))
    assert abs(unsorted - 11 / 16) <= 5 * np.sqrt(11 / 16 * 5 / 16 / 3000)


def test_larger_state_runs_and_stays_consistent() -> None:
    # 12 qubits, 4000 one-shot settings: exercises the deep trie; GHZ gives exact parity checks.
    n = 12
    rng = np.random.default_rng(8)
    settings = np.full((4000, n), 2, dtype=np.uint8)
    settings[:2000] = 0  # all-X: even parity of outcome bits for GHZ
    d = sample_statevector(ghz(n), settings, 1, rng)
    assert np.all(np.ptp(d.outcomes[2000:], axis=1) == 0)  # all-Z: all bits equal
    assert np.all(d.outcomes[:2000].sum(axis=1) % 2 == 0)


def test_invalid_inputs() -> None:
    rng = np.random.default_rng(0)
    z = np.array([[2]])
    with pytest.raises(StateError, match=r"2-norm is 1\.41"):
        sample_statevector(np.array([1, 1], dtype=complex), z, 1, rng)
    with pytest.raises(StateError, match="power of two"):
        sample_statevector(np.ones(3) / np.sqrt(3), z, 1, rng)
    with pytest.raises(StateError, match="non-finite"):
        sample_statevector(np.array([np.nan, 1]), z, 1, rng)
    with pytest.raises(StateError, match="1-D"):
        sample_statevector(np.eye(2) / np.sqrt(2), z, 1, rng)
    psi = np.array([1, 0], dtype=complex)
    with pytest.raises(QubitCountMismatchError, match="2 columns"):
        sample_statevector(psi, np.array([[2, 2]]), 1, rng)
    with pytest.raises(ShadowlabError, match="0/1/2"):
        sample_statevector(psi, np.array([[3]]), 1, rng)
    with pytest.raises(ShadowlabError, match=">= 0"):
        sample_statevector(psi, z, -1, rng)
    with pytest.raises(ShadowlabError, match="one count per setting"):
        sample_statevector(psi, z, [1, 2], rng)
    with pytest.raises(ShadowlabError, match="Generator"):
        sample_statevector(psi, z, 1, np.random.RandomState(0))  # a legacy RandomState is refused
    # Tiny rounding is accepted (norm tolerance 1e-8).
    validate_statevector(np.array([1 + 1e-10, 0]))


def test_exact_pauli_expectations() -> None:
    # GHZ(3) = (|000> + |111>)/sqrt(2): <Z_i Z_j> = 1, <X X X> = 1, <X Y Y> = -1, <Z_i> = 0,
    # <X X I> = 0 (the stabilizer group is generated by Z0Z1, Z1Z2, XXX).
    labels = ["ZZI", "IZZ", "XXX", "XYY", "YXY", "ZII", "XXI", "YYY", "III"]
    np.testing.assert_allclose(
        exact_pauli_expectations(ghz(3), PauliSum.from_labels(labels)),
        [1, 1, 1, -1, -1, 0, 0, 0, 1],
        atol=1e-14,
    )
    # Random state, every 3-qubit Pauli, against <psi|P|psi> with dense Kronecker matrices.
    psi = haar_random_state(3, np.random.default_rng(0))
    paulis = PauliSum.from_labels(["".join(t) for t in itertools.product("IXYZ", repeat=3)])
    ref = [np.vdot(psi, pauli_matrix(t, 3) @ psi).real for t in paulis.terms]
    np.testing.assert_allclose(exact_pauli_expectations(psi, paulis), ref, atol=1e-13)
    with pytest.raises(QubitCountMismatchError):
        exact_pauli_expectations(psi, PauliSum.from_labels(["ZZ"]))


def test_pauli_masks() -> None:
    # Y = i X Z: X-mask and Z-mask both set, one factor of i; qubit 0 is the highest bit.
    assert pauli_masks(PauliString.from_label("Y0"), 3) == (4, 4, 1)
    assert pauli_masks(PauliString.from_label("X1 Z2"), 3) == (2, 1, 0)
