"""Tests of the small-n density-matrix tools (shadowlab.acquire.density_matrix): exact probabilities
against the state-vector convention, channels against their matrix definitions, noisy stim circuits
against analytic values, measurement channels, statistics at 5 standard errors, bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import stim

from shadowlab.acquire.density_matrix import (
    MAX_DM_QUBITS,
    amplitude_damping_kraus,
    apply_channel,
    apply_unitary,
    density_matrix_from_stim,
    depolarizing_kraus,
    outcome_probabilities,
    pauli_expectations_dm,
    sample_density_matrix,
    validate_density_matrix,
)
from shadowlab.acquire.statevector import _ROTATION, exact_pauli_expectations, sample_statevector
from shadowlab.errors import ShadowlabError, StateError
from shadowlab.paulis import PauliString, PauliSum, pauli_matrix

PAULIS = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.diag([1.0, -1.0]).astype(complex),
}


def random_state(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return psi / np.linalg.norm(psi)


def random_mixed(n: int, seed: int, rank: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2**n, rank)) + 1j * rng.normal(size=(2**n, rank))
    rho = a @ a.conj().T
    return rho / np.trace(rho).real


def embed(op: np.ndarray, qubits: list[int], n: int) -> np.ndarray:
    """Full 2^n matrix of a k-qubit operator (qubits[0] most significant) by permuting a kron."""
    k = len(qubits)
    full = np.kron(op, np.eye(2 ** (n - k)))  # acts on qubits 0..k-1
    order = qubits + [q for q in range(n) if q not in qubits]  # axis i of `full` is qubit order[i]
    t = full.reshape((2,) * (2 * n))
    perm = np.argsort(order)
    return t.transpose([*perm, *(n + p for p in perm)]).reshape(2**n, 2**n)


def rotated_probabilities(psi: np.ndarray, setting: tuple[int, ...]) -> np.ndarray:
    """|<s| R_{b_0} x ... x R_{b_{n-1}} |psi>|^2 from statevector's rotation convention."""
    u = np.ones((1, 1), dtype=complex)
    for b in setting:
        u = np.kron(u, _ROTATION[b])
    return np.abs(u @ psi) ** 2


def frequencies(outcomes: np.ndarray) -> np.ndarray:
    n = outcomes.shape[1]
    index = outcomes.astype(np.int64) @ (1 << np.arange(n - 1, -1, -1))
    return np.bincount(index, minlength=2**n) / outcomes.shape[0]


def assert_within_5se(freq: np.ndarray, p: np.ndarray, shots: int) -> None:
    se = np.sqrt(np.maximum(p * (1 - p), 1e-12) / shots)
    assert np.all(np.abs(freq - p) <= 5 * se + 1e-12), (freq, p, se)


# ------------------------------------------------------------------------------------------ pure states


def test_pure_state_probabilities_match_statevector_convention() -> None:
    n = 3
    psi = random_state(n, 1)
    settings = np.array(list(itertools.product(range(3), repeat=n)), dtype=np.uint8)
    probs = outcome_probabilities(np.outer(psi, psi.conj()), settings)
    expected = np.array([rotated_probabilities(psi, tuple(s)) for s in settings])
    np.testing.assert_allclose(probs, expected, atol=1e-13)


def test_pure_state_sampling_agrees_with_sample_statevector() -> None:
    n, shots = 3, 20000
    psi = random_state(n, 2)
    settings = np.array([[0, 1, 2], [1, 1, 0], [2, 2, 2]], dtype=np.uint8)
    dm = sample_density_matrix(np.outer(psi, psi.conj()), settings, shots, np.random.default_rng(3))
    sv = sample_statevector(psi, settings, shots, np.random.default_rng(4))
    assert dm.n_snapshots == 3 * shots and np.array_equal(dm.bases, sv.bases)
    assert np.array_equal(dm.settings, sv.settings)
    for g, setting in enumerate(settings):
        p = rotated_probabilities(psi, tuple(setting))
        rows = slice(g * shots, (g + 1) * shots)
        assert_within_5se(frequencies(dm.outcomes[rows]), p, shots)
        assert_within_5se(frequencies(sv.outcomes[rows]), p, shots)


def test_sampling_is_seeded_and_deterministic_states_are_exact() -> None:
    rho = random_mixed(3, 5)
    settings = np.random.default_rng(0).integers(0, 3, size=(50, 3)).astype(np.uint8)
    a = sample_density_matrix(rho, settings, 7, np.random.default_rng(11))
    b = sample_density_matrix(rho, settings, 7, np.random.default_rng(11))
    assert np.array_equal(a.outcomes, b.outcomes)
    assert not np.array_equal(a.outcomes, sample_density_matrix(rho, settings, 7, np.random.default_rng(12)).outcomes)
    # |1>|-i>|+> in Z, Y, X: 1, 1, 0 every time.
    psi = np.kron(np.kron([0, 1], np.array([1, -1j]) / np.sqrt(2)), np.array([1, 1]) / np.sqrt(2))
    d = sample_density_matrix(np.outer(psi, psi.conj()), np.array([[2, 1, 0]]), 5, np.random.default_rng(0))
    assert d.outcomes.tolist() == [[1, 1, 0]] * 5


def test_split_contraction_and_chunks_give_same_probabilities() -> None:
    rho = random_mixed(5, 6)
    settings = np.array(list(itertools.product(range(3), repeat=5)), dtype=np.uint8)
    full = outcome_probabilities(rho, settings)
    small = outcome_probabilities(rho, settings, max_memory_bytes=4096)
    np.testing.assert_allclose(small, full, atol=1e-14)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-12)
    # Direct definition: Tr(rho (R^dagger |s><s| R)) for one setting.
    u = np.kron(np.kron(np.kron(np.kron(_ROTATION[0], _ROTATION[1]), _ROTATION[2]), _ROTATION[1]), _ROTATION[0])
    direct = np.real(np.diag(u @ rho @ u.conj().T))
    row = int(np.flatnonzero((settings == [0, 1, 2, 1, 0]).all(axis=1))[0])
    np.testing.assert_allclose(full[row], direct, atol=1e-13)


# ------------------------------------------------------------------------------------------ channels


def test_apply_unitary_and_channel_match_full_matrices() -> None:
    n = 3
    rho = random_mixed(n, 7)
    rng = np.random.default_rng(8)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))
    full = embed(q, [2, 0], n)
    np.testing.assert_allclose(apply_unitary(rho, q, [2, 0]), full @ rho @ full.conj().T, atol=1e-13)
    kraus = amplitude_damping_kraus(0.3)
    expected = sum(embed(k, [1], n) @ rho @ embed(k, [1], n).conj().T for k in kraus)
    np.testing.assert_allclose(apply_channel(rho, kraus, [1]), expected, atol=1e-13)
    # Amplitude damping of |1>: 1 -> 0 with probability gamma.
    one = np.diag([0.0, 1.0]).astype(complex)
    np.testing.assert_allclose(np.diag(apply_channel(one, kraus, 0)).real, [0.3, 0.7], atol=1e-14)


def test_stim_circuit_density_matrix_matches_channel_math() -> None:
    circuit = stim.Circuit("""
        H 0
        CX 0 1
        SQRT_Y 2
        DEPOLARIZE1(0.1) 0
        X_ERROR(0.2) 1
        PAULI_CHANNEL_1(0.01, 0.02, 0.03) 2
        CZ 1 2
        DEPOLARIZE2(0.06) 0 2
        REPEAT 2 {
            S 1
            Z_ERROR(0.05) 1
        }
        E(0.1) X0 Z2
        ELSE_CORRELATED_ERROR(0.2) Y1
        TICK
    """)
    rho = density_matrix_from_stim(circuit)
    n = 3

    # Textbook matrices (first qubit most significant); SQRT_Y = (I - iY)/sqrt(2) up to a phase.
    gates = {
        "H": np.array([[1, 1], [1, -1]]) / np.sqrt(2),
        "S": np.diag([1, 1j]),
        "SQRT_Y": np.array([[1, -1], [1, 1]]) / np.sqrt(2),
        "CX": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]),
        "CZ": np.diag([1, 1, 1, -1]),
    }

    def unitary(name: str, qubits: list[int], r: np.ndarray) -> np.ndarray:
        return apply_unitary(r, gates[name], qubits)

    def mixture(r: np.ndarray, terms: dict[str, float], qubits: list[int]) -> np.ndarray:
        ops = [np.sqrt(1 - sum(terms.values())) * np.eye(2 ** len(qubits))]
        for label, p in terms.items():
            m = np.ones((1, 1))
            for c in label:
                m = np.kron(m, PAULIS[c])
            ops.append(np.sqrt(p) * m)
        return apply_channel(r, ops, qubits)

    ref = np.zeros((8, 8), dtype=complex)
    ref[0, 0] = 1
    ref = unitary("H", [0], ref)
    ref = unitary("CX", [0, 1], ref)
    ref = unitary("SQRT_Y", [2], ref)
    ref = apply_channel(ref, depolarizing_kraus(0.1), [0])
    ref = mixture(ref, {"X": 0.2}, [1])
    ref = mixture(ref, {"X": 0.01, "Y": 0.02, "Z": 0.03}, [2])
    ref = unitary("CZ", [1, 2], ref)
    ref = mixture(ref, {a + b: 0.06 / 15 for a in "IXYZ" for b in "IXYZ" if a + b != "II"}, [0, 2])
    for _ in range(2):
        ref = unitary("S", [1], ref)
        ref = mixture(ref, {"Z": 0.05}, [1])
    # E(0.1) X0 Z2, else with 0.2 Y1: probabilities 0.1 and 0.9 * 0.2.
    xz = embed(np.kron(PAULIS["X"], PAULIS["Z"]), [0, 2], n)
    y1 = embed(PAULIS["Y"], [1], n)
    ref = (1 - 0.1 - 0.18) * ref + 0.1 * xz @ ref @ xz + 0.18 * y1 @ ref @ y1
    np.testing.assert_allclose(rho, ref, atol=1e-13)
    validate_density_matrix(rho)
    # Idle qubits stay in |0>.
    wide = density_matrix_from_stim(stim.Circuit("X 0"), n_qubits=2)
    assert wide[2, 2] == pytest.approx(1.0)


def test_every_unitary_stim_gate_matches_stim_state_vector() -> None:
    names = sorted({stim.gate_data(g).name for g in stim.gate_data() if stim.gate_data(g).is_unitary})
    lines = ["H 0 1 2", "S 1", "SQRT_X 2", "CX 0 2"]
    for name in names:
        data = stim.gate_data(name)
        if name in ("SPP", "SPP_DAG"):
            lines.append(f"{name} X0*Z1 !Y2")
        else:
            lines.append(f"{name} 2 0" if data.is_two_qubit_gate else f"{name} 1")
        lines.append("SQRT_Y 0 1 2")
    circuit = stim.Circuit("\n".join(lines))
    sim = stim.TableauSimulator()
    sim.do(circuit)
    psi = sim.state_vector(endian="big").astype(np.complex128)  # stim's vectors are complex64
    rho = density_matrix_from_stim(circuit)
    np.testing.assert_allclose(rho, np.outer(psi, psi.conj()), atol=1e-6)
    assert abs(np.trace(rho) - 1) < 1e-13  # full precision despite stim's complex64 matrices


def test_depolarized_ghz_pauli_expectations_are_analytic() -> None:
    p, n = 0.09, 4
    ghz = stim.Circuit("H 0\nCX 0 1 1 2 2 3")
    noisy = ghz.copy()
    noisy.append("DEPOLARIZE1", list(range(n)), p)
    rho = density_matrix_from_stim(noisy)
    labels = ["ZZII", "XXXX", "YYXX", "ZIIZ", "IZZI", "ZZZZ", "YYYY", "XYXY", "XIII", "IIII"]
    paulis = PauliSum.from_labels(labels)
    ideal = exact_pauli_expectations(np.sqrt(0.5) * np.eye(16)[[0, 15]].sum(axis=0), paulis)
    # DEPOLARIZE1(p) keeps a Pauli letter with factor 1 - 4p/3, so a weight-k string gets (1 - 4p/3)^k.
    weights = np.array([t.weight for t in paulis.terms])
    np.testing.assert_allclose(pauli_expectations_dm(rho, paulis), ideal * (1 - 4 * p / 3) ** weights, atol=1e-13)
    # DEPOLARIZE2(p) on (0, 1): a string non-trivial on the pair anticommutes with 8 of the 15
    # pairs, factor 1 - 16p/15; strings trivial on it are unchanged.
    two = ghz.copy()
    two.append("DEPOLARIZE2", [0, 1], p)
    factor = np.array([1 - 16 * p / 15 if any(c != "I" for c in lbl[:2]) else 1.0 for lbl in labels])
    np.testing.assert_allclose(pauli_expectations_dm(density_matrix_from_stim(two), paulis), ideal * factor,
                               atol=1e-13)
    # Against the trace with dense Pauli matrices, on a generic mixed state.
    mixed = random_mixed(3, 9)
    strings = [PauliString.from_label(lbl) for lbl in ["XYZ", "IYI", "ZZX", "YIY"]]
    direct = [np.trace(mixed @ pauli_matrix(s, 3)).real for s in strings]
    np.testing.assert_allclose(pauli_expectations_dm(mixed, strings), direct, atol=1e-13)


# ------------------------------------------------------------------------------------------ measurement channel


def test_amplitude_damping_measurement_channel_shifts_outcomes() -> None:
    gamma, shots = 0.2, 40000
    psi = random_state(2, 10)
    rho = np.outer(psi, psi.conj())
    settings = np.array([[2, 2], [0, 1], [1, 0]], dtype=np.uint8)
    damped = outcome_probabilities(rho, settings, measurement_channel=amplitude_damping_kraus(gamma))
    ideal = outcome_probabilities(rho, settings)
    # After the rotation, |1> decays to |0> with probability gamma on each qubit, for every basis:
    # P(s_q = 1) = (1 - gamma) P_ideal(s_q = 1); a joint string moves its 1s to 0s independently.
    bit = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    for g in range(3):
        for q in range(2):
            assert damped[g, bit[:, q] == 1].sum() == pytest.approx((1 - gamma) * ideal[g, bit[:, q] == 1].sum())
        assert damped[g, 3] == pytest.approx((1 - gamma) ** 2 * ideal[g, 3])
    data = sample_density_matrix(rho, settings, shots, np.random.default_rng(21),
                                 measurement_channel=amplitude_damping_kraus(gamma))
    for g in range(3):
        assert_within_5se(frequencies(data.outcomes[g * shots:(g + 1) * shots]), damped[g], shots)
    # Depolarizing before the measurement flips with 2p/3 in every basis, as noise.py assumes.
    p = 0.15
    flipped = outcome_probabilities(np.diag([1.0, 0.0]), np.array([[2]]), measurement_channel=depolarizing_kraus(p))
    assert flipped[0, 1] == pytest.approx(2 * p / 3)
    plus = np.full((2, 2), 0.5)
    assert outcome_probabilities(plus, np.array([[0]]), measurement_channel=depolarizing_kraus(p))[0, 1] == (
        pytest.approx(2 * p / 3))


def test_large_run_matches_exact_values() -> None:
    """10^5 snapshots of a random 8-qubit mixed state (0.4 s measured; speed is a benchmark matter):
    one- and two-qubit Pauli estimates within 5 standard errors of Tr(rho P)."""
    from shadowlab.estimate.pauli import estimate_paulis

    rho = random_mixed(8, 12)
    settings = np.random.default_rng(0).integers(0, 3, size=(100000, 8)).astype(np.uint8)
    data = sample_density_matrix(rho, settings, 1, np.random.default_rng(1))
    assert data.n_snapshots == 100000
    paulis = [PauliString.from_label(label) for label in ("X0", "Y3", "Z7", "X0 Z1", "Y2 Y5", "Z6 X7")]
    est = estimate_paulis(data, paulis)
    exact = pauli_expectations_dm(rho, paulis)
    assert np.all(np.abs(est.estimate - exact) <= 5 * est.stderr)


def test_bad_inputs() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(StateError, match="Hermitian"):
        validate_density_matrix(np.array([[1, 1], [0, 0]]))
    with pytest.raises(StateError, match="trace 2"):
        validate_density_matrix(np.eye(2))
    with pytest.raises(StateError, match="positive semidefinite"):
        validate_density_matrix(np.diag([1.5, -0.5]))
    with pytest.raises(StateError, match="square"):
        validate_density_matrix(np.ones((2, 4)))
    with pytest.raises(StateError, match="power of two"):
        validate_density_matrix(np.eye(3) / 3)
    with pytest.raises(ShadowlabError, match=f"at most {MAX_DM_QUBITS}"):
        validate_density_matrix(np.eye(2 ** (MAX_DM_QUBITS + 1)) / 2 ** (MAX_DM_QUBITS + 1))
    with pytest.raises(ShadowlabError, match=f"at most {MAX_DM_QUBITS}"):
        density_matrix_from_stim(stim.Circuit(f"H {MAX_DM_QUBITS}"))
    with pytest.raises(StateError, match="measure"):
        density_matrix_from_stim(stim.Circuit("H 0\nM 0"))
    rho = np.diag([1.0, 0.0]).astype(complex)
    with pytest.raises(ShadowlabError, match=r"not trace preserving.*entry \(1, 1\)"):
        apply_channel(rho, [np.diag([1.0, 0.5])], [0])
    with pytest.raises(ShadowlabError, match=r"kraus_ops\[1\].*same shape"):
        apply_channel(rho, [np.eye(2), np.eye(4)], [0])
    with pytest.raises(ShadowlabError, match="out of range"):
        apply_channel(rho, [np.eye(2)], [1])
    with pytest.raises(ShadowlabError, match="not unitary"):
        apply_unitary(rho, np.diag([1.0, 2.0]), [0])
    with pytest.raises(ShadowlabError, match="one-qubit channel"):
        sample_density_matrix(np.eye(4) / 4, np.array([[2, 2]]), 1, rng, measurement_channel=[np.eye(4)])
    with pytest.raises(ShadowlabError, match="measurement_channel is not trace preserving"):
        sample_density_matrix(np.eye(2) / 2, np.array([[2]]), 1, rng, measurement_channel=[0.5 * np.eye(2)])
    with pytest.raises(ShadowlabError, match="rng"):
        sample_density_matrix(np.eye(2) / 2, np.array([[2]]), 1, 0)
    with pytest.raises(ShadowlabError, match="basis codes"):
        sample_density_matrix(np.eye(2) / 2, np.array([[3]]), 1, rng)
