"""Robust shadows end to end through Qiskit Aer: a noisy device (1% depolarizing gates, asymmetric
readout 5% / 15%), readout-twirled, calibrated on |0...0> through the same back end. The robust
estimates agree with the exact values of the noisy *prepared* state (its gate noise stays, the
measurement's noise is divided out); the uncalibrated ones are the exact values times the
attenuation g_A the noise model predicts (model_attenuation). Tolerances are 5 standard errors:
per estimate from the estimators' own errors, for means over many correlated estimates from a
delete-one-block jackknife.

Runtime: Aer costs about 1 ms per twirled shot (each shot is its own (setting, mask) binding),
so the snapshot counts are small. The measurement ensemble is Z-biased (X, Y, Z with 1/4, 1/4,
1/2, the same for calibration and data): a weight-4 calibration factor (about 0.79^4 = 0.39
here) is then matched by 1/16 of the calibration snapshots instead of 1/81, and resolved to
~9 standard errors with 8,000 of them; the robust-shadow identity E[sign | match] = g_A <P>
does not depend on the basis probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shadowlab.acquire.density_matrix import density_matrix_from_stim, pauli_expectations_dm
from shadowlab.acquire.noise import NoiseModel
from shadowlab.acquire.simulate import prepare_state
from shadowlab.data.dataset import ShadowData
from shadowlab.paulis import PauliString
from shadowlab.plan.scheme import random_scheme

pytest.importorskip("qiskit")
pytest.importorskip("qiskit_aer")

from qiskit import QuantumCircuit

from shadowlab.acquire.qiskit_backend import QiskitAerBackend
from shadowlab.estimate.calibration import Calibration, calibrate
from shadowlab.estimate.pauli import estimate_paulis

N = 6
DEVICE = NoiseModel(depolarizing=0.01, readout_p01=0.05, readout_p10=0.15)
PROBABILITIES = np.tile([0.25, 0.25, 0.5], (N, 1))


def twirled_shadows(state: object, n_snapshots: int, seed: int) -> ShadowData:
    """Random (Z-biased) settings, one shot each, with a uniformly random twirl mask per shot."""
    rng = np.random.default_rng(seed)
    scheme = random_scheme(PROBABILITIES, n_snapshots, rng)
    masks = rng.integers(0, 2, size=(n_snapshots, N), dtype=np.uint8)
    backend = QiskitAerBackend(state, noise_model=DEVICE, readout_twirl=True)
    outcomes = backend.run_batch(scheme.settings, scheme.repeats, seed=seed, twirl=masks)
    return ShadowData(scheme.settings, outcomes, twirl=masks,
                      metadata={"scheme": scheme.record(), "backend": backend.describe()})


def weight_2_to_4() -> list[PauliString]:
    out = []
    for k in (2, 3, 4):
        for support in itertools.combinations(range(N), k):
            for letters in itertools.product(range(3), repeat=k):
                out.append(PauliString(support, letters))
    return out


def model_attenuation(paulis: list[PauliString]) -> np.ndarray:
    """The attenuation g_A the noise model predicts for each Pauli's support A.

    Each measured qubit's outcome is flipped by the measurement layer's depolarizing gate with
    probability f = 2p/3 and, readout being twirled, by a symmetric readout flip with
    probability r = (p01 + p10)/2, independently: E[sign] shrinks by (1 - 2f)(1 - 2r) per qubit,
    whatever the basis (noise.py, "Readout twirling"), so g_A = ((1 - 2f)(1 - 2r))^|A|.
    """
    f = 2 * DEVICE.depolarizing / 3
    r = (DEVICE.readout_p01 + DEVICE.readout_p10) / 2
    weights = np.array([len(p.qubits) for p in paulis])
    return ((1 - 2 * f) * (1 - 2 * r)) ** weights


def leave_one_block_out(data: ShadowData, n_blocks: int) -> list[ShadowData]:
    """``data`` without block b, for b = 0..n_blocks-1 (equal consecutive blocks of snapshots)."""
    edges = np.linspace(0, data.n_snapshots, n_blocks + 1).astype(int)
    return [ShadowData.concatenate([data.subset(0, edges[b]), data.subset(edges[b + 1], data.n_snapshots)])
            for b in range(n_blocks)]


def jackknife_se(values: np.ndarray) -> float:
    """Delete-one-block jackknife standard error of a statistic from its leave-one-out values."""
    b = values.size
    return float(np.sqrt((b - 1) / b * np.sum((values - values.mean()) ** 2)))


@pytest.fixture(scope="module")
def calibration_data() -> ShadowData:
    # |0...0>: an empty preparation, measured through the same noisy layer and twirled readout.
    return twirled_shadows(QuantumCircuit(N), 8000, seed=100)


@pytest.fixture(scope="module")
def calibration(calibration_data: ShadowData) -> Calibration:
    return calibrate(calibration_data, locality=4)


def test_calibration_matches_the_noise_model(calibration: Calibration) -> None:
    # Every subset's calibrated attenuation agrees with the model's g_A within 5 of its s.e.
    subsets = [PauliString(tuple(q), (2,) * len(q)) for q in calibration.subsets]
    g = model_attenuation(subsets)
    z = (calibration.attenuation - g) / calibration.stderr
    assert np.all(np.abs(z) <= 5), (calibration.subsets, calibration.attenuation, g, z)


@pytest.mark.parametrize("spec, seed", [("ghz:6", 1), ("cluster:6", 2)])
def test_robust_estimates_match_noisy_prepared_state(spec: str, seed: int, calibration_data: ShadowData,
                                                     calibration: Calibration) -> None:
    state = prepare_state(spec)
    data = twirled_shadows(state, 8000, seed=seed)
    paulis = weight_2_to_4()
    # Exact values of the prepared state under the same gate noise (noise.py's semantics, which
    # the Aer noise model reproduces: DEPOLARIZE1/2 after every gate of the preparation).
    exact = pauli_expectations_dm(density_matrix_from_stim(DEVICE.state_circuit(state.circuit)), paulis)
    robust = estimate_paulis(data, paulis, calibration=calibration)
    raw = estimate_paulis(data, paulis)
    within = np.abs(robust.estimate - exact) <= 5 * robust.stderr
    assert within.mean() >= 0.95, within.mean()
    big = np.abs(exact) > 0.3
    assert big.sum() >= 10  # the state has many large correlators of weight 2-4
    g = model_attenuation(paulis)
    # Each large correlator, 5 standard errors (normal approximation): the uncalibrated estimate
    # is the attenuated value g_A <P>, the robust one <P> itself.
    z_raw = (raw.estimate - g * exact) / raw.stderr
    z_robust = (robust.estimate - exact) / robust.stderr
    assert np.all(np.abs(z_raw[big]) <= 5), z_raw[big]
    assert np.all(np.abs(z_robust[big]) <= 5), z_robust[big]
    # Systematic shifts over all K large correlators at once. Their estimates share snapshots
    # (and the robust ones the calibration), so they are not independent and 1/sqrt(K) would
    # understate the error of a mean; the standard error of each mean relative deviation comes
    # from a delete-one-block jackknife over independent blocks of the data and the calibration
    # snapshots (every snapshot has its own setting, mask and noise), correlations included.
    sign, size = np.sign(exact[big]), np.abs(exact[big])
    big_paulis = [p for p, b in zip(paulis, big, strict=True) if b]

    def relative_shifts(d: ShadowData, cal: Calibration) -> np.ndarray:
        """Mean relative deviation of: robust from exact, raw from g_A exact, raw from exact."""
        r = estimate_paulis(d, big_paulis, calibration=cal).estimate
        u = estimate_paulis(d, big_paulis).estimate
        return np.array([np.mean(sign * (r - exact[big]) / size), np.mean(sign * (u - g[big] * exact[big]) / size),
                         np.mean(sign * (u - exact[big]) / size)])

    full = relative_shifts(data, calibration)
    n_blocks = 10
    left_out = np.array([relative_shifts(d, calibrate(c, locality=4)) for d, c in
                         zip(leave_one_block_out(data, n_blocks), leave_one_block_out(calibration_data, n_blocks),
                             strict=True)])
    se = np.array([jackknife_se(left_out[:, k]) for k in range(3)])
    assert np.all(se > 0)
    t = full / se  # about Student t with n_blocks - 1 degrees of freedom under the model
    assert abs(t[0]) <= 5, (full, se)  # robust: no systematic shrinking left
    assert abs(t[1]) <= 5, (full, se)  # uncalibrated: shrunk by exactly the model's g_A
    # ... which the data resolve: "uncalibrated = exact" is off by more than 5 standard errors.
    assert t[2] < -5, (full, se)
