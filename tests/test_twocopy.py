"""Two-copy Bell-basis data: kernels, simulators and estimators against exact values.

Statistical checks use fixed seeds and 5 standard errors of the estimator, computed from the
exact values (a mean of +-1 variables with mean m has variance (1 - m^2) / S).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import stim

from shadowlab.acquire.clifford_states import ghz_circuit
from shadowlab.acquire.states import ghz, haar_random_state
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError, StoreFormatError
from shadowlab.kernels import bell_pauli_odd_counts, bell_swap_odd_counts, pack_bell
from shadowlab.paulis import PauliArrays, PauliString
from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.estimate import (
    abs_from_squares,
    estimate_pauli_squares,
    estimate_purities,
    open_bell,
    renyi2_from_purities,
)
from shadowlab.twocopy.simulate import (
    bell_distribution,
    depolarize,
    hidden_pauli_circuit,
    pauli_spectrum,
    pauli_squares_exact,
    sample_bell_state,
    sample_bell_stim,
    two_copy_circuit,
)
from shadowlab.twocopy.store import BellStore, write_bell_store


def _all_paulis(n: int) -> list[PauliString]:
    out = []
    for letters in itertools.product(range(4), repeat=n):
        if any(letters):
            out.append(PauliString(tuple(q for q in range(n) if letters[q]), tuple(c - 1 for c in letters if c)))
    return out


def _z_scores(est: np.ndarray, exact: np.ndarray, shots: int) -> np.ndarray:
    se = np.sqrt(np.clip(1.0 - exact**2, 0.0, None) / shots)
    diff = np.abs(est - exact)
    return np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff > 0, np.inf, 0.0))


def _density_matrix_purity(rho: np.ndarray, keep: list[int], n: int) -> float:
    t = rho.reshape([2] * (2 * n))
    traced = [q for q in range(n) if q not in keep]
    for k, q in enumerate(sorted(traced, reverse=True)):
        t = np.trace(t, axis1=q, axis2=q + n - k)
    d = 2 ** len(keep)
    r = t.reshape(d, d)
    return float(np.trace(r @ r).real)


# -- kernels --------------------------------------------------------------------------------------

def test_kernels_match_a_direct_parity_count() -> None:
    rng = np.random.default_rng(11)
    shots, n = 203, 70  # crosses word boundaries on both axes
    a = rng.integers(0, 2, (shots, n), dtype=np.uint8)
    c = rng.integers(0, 2, (shots, n), dtype=np.uint8)
    paulis = [PauliString((), ())] + [PauliString(tuple(sorted(rng.choice(n, w, replace=False))),
                                                  tuple(rng.integers(0, 3, w))) for w in (1, 2, 5, 33, 70)]
    arrays = PauliArrays.from_paulis(paulis)
    odd = np.zeros(len(paulis), np.int64)
    planes = pack_bell(a, c)
    bell_pauli_odd_counts(planes, arrays.qubits, arrays.codes, arrays.weights, odd)
    for m, p in enumerate(paulis):
        x = np.zeros(n, np.uint8)
        z = np.zeros(n, np.uint8)
        for q, code in zip(p.qubits, p.codes, strict=True):
            x[q] = code in (0, 1)
            z[q] = code in (1, 2)
        parity = ((a.astype(int) @ x + c.astype(int) @ z) % 2).sum()
        assert odd[m] == parity
    subs = [[0], [3, 64, 69], list(range(n))]
    offsets = np.array([0, 1, 4, 4 + n])
    sodd = np.zeros(3, np.int64)
    bell_swap_odd_counts(planes, np.array([q for s in subs for q in s]), offsets, sodd)
    for i, s in enumerate(subs):
        assert sodd[i] == int((((a[:, s] & c[:, s]).sum(axis=1)) % 2).sum())


# -- the exact distribution and the stim sampler ----------------------------------------------------

def _literal_bell_probabilities(psi: np.ndarray) -> np.ndarray:
    """Two copies as a 2n-qubit state vector, CNOT(k -> n+k) and H(k), then |amplitude|^2."""
    n = psi.size.bit_length() - 1
    state = np.kron(psi, psi).reshape([2] * (2 * n))
    hadamard = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
    for k in range(n):
        state = state.copy()
        # CNOT: where control k is 1, flip target n + k.
        idx = [slice(None)] * (2 * n)
        idx[k] = 1
        sub = state[tuple(idx)]
        state[tuple(idx)] = np.flip(sub, axis=n + k - 1)
        state = np.moveaxis(np.tensordot(hadamard, state, axes=([1], [k])), 0, k)
    probs = np.abs(state.reshape(-1)) ** 2
    dim = 1 << n
    return probs.reshape(dim, dim)  # [a bits (copy A), c bits (copy B)], qubit 0 most significant


def test_bell_distribution_equals_the_literal_circuit() -> None:
    psi = haar_random_state(3, np.random.default_rng(2))
    np.testing.assert_allclose(bell_distribution(psi), _literal_bell_probabilities(psi), atol=1e-12)


def test_pauli_spectrum_matches_statevector_expectations() -> None:
    psi = haar_random_state(3, np.random.default_rng(4))
    paulis = _all_paulis(3)
    from shadowlab.paulis import expectation_statevector

    exact = np.array([expectation_statevector(p, psi) for p in paulis])
    np.testing.assert_allclose(pauli_squares_exact(psi, paulis), exact**2, atol=1e-12)
    assert pauli_spectrum(psi)[0, 0] == pytest.approx(1.0)


def test_stim_sampler_matches_exact_noisy_state() -> None:
    """GHZ-3 with 5% depolarizing per qubit: stim's two noisy copies against the exact density matrix."""
    circuit = ghz_circuit(3)
    circuit.append("DEPOLARIZE1", [0, 1, 2], 0.05)
    rho = depolarize(ghz(3), 0.05)
    shots = 40000
    data = sample_bell_stim(circuit, shots, np.random.default_rng(5))
    paulis = _all_paulis(3)
    est = estimate_pauli_squares(data, paulis).estimate
    assert _z_scores(est, pauli_squares_exact(rho, paulis), shots).max() < 5
    purity = estimate_purities(data).estimate[0]
    exact = float(np.trace(rho @ rho).real)
    assert abs(purity - exact) < 5 * np.sqrt((1 - exact**2) / shots)


def test_exact_sampler_random_mixed_state_all_paulis() -> None:
    rng = np.random.default_rng(6)
    psi = haar_random_state(3, rng)
    rho = 0.6 * np.outer(psi, psi.conj()) + 0.4 * np.eye(8) / 8
    shots = 30000
    data = sample_bell_state(rho, shots, rng)
    paulis = _all_paulis(3)
    assert _z_scores(estimate_pauli_squares(data, paulis).estimate, pauli_squares_exact(rho, paulis), shots).max() < 5


def test_large_stabilizer_state_exact_zero_one_values() -> None:
    n, shots = 120, 2000
    data = sample_bell_stim(ghz_circuit(n), shots, np.random.default_rng(7))
    stabilizers = [f"Z{k} Z{k + 1}" for k in range(n - 1)] + ["X" * n, "YY" + "X" * (n - 2)]
    est = estimate_pauli_squares(data, stabilizers)
    assert np.all(est.estimate == 1.0)
    rng = np.random.default_rng(8)
    zeros = ["Z0", "X0", "X0 X1", "Y5"] + [PauliString(tuple(sorted(rng.choice(n, 50, replace=False))),
                                                        tuple(rng.integers(0, 3, 50))).to_sparse() for _ in range(20)]
    est0 = estimate_pauli_squares(data, zeros).estimate
    assert np.all(np.abs(est0) < 5 / np.sqrt(shots))
    # Every subsystem of GHZ has purity 1/2; the whole state is pure.
    pur = estimate_purities(data, [[0], [3, 4, 5], list(range(n))])
    assert np.all(np.abs(pur.estimate[:2] - 0.5) < 5 * np.sqrt(0.75 / shots))
    assert pur.estimate[2] == 1.0


def test_purity_of_known_mixed_states() -> None:
    shots = 20000
    rng = np.random.default_rng(9)
    # The hidden-Pauli state on 5 qubits: purity (1 + 0.81) / 32; any proper subsystem is maximally mixed.
    data = sample_bell_stim(hidden_pauli_circuit("X0 Y2 Z4", 5, sign=-1), shots, rng)
    pur = estimate_purities(data, [list(range(5)), [0, 2]])
    exact = np.array([1.81 / 32, 0.25])
    assert np.all(np.abs(pur.estimate - exact) < 5 * np.sqrt((1 - exact**2) / shots))
    # A small depolarized random state: every subsystem against the partial traces.
    psi = haar_random_state(4, rng)
    rho = depolarize(psi, 0.1)
    data = sample_bell_state(rho, shots, rng)
    subs = [[0], [1, 3], [0, 1, 2], [0, 1, 2, 3]]
    exact = np.array([_density_matrix_purity(rho, s, 4) for s in subs])
    pur = estimate_purities(data, subs)
    assert np.all(np.abs(pur.estimate - exact) < 5 * np.sqrt((1 - exact**2) / shots))
    ent, lo, hi = renyi2_from_purities(pur)
    assert np.all(lo <= ent) and np.all(ent <= hi)


def test_hidden_pauli_square_and_abs() -> None:
    shots = 20000
    data = sample_bell_stim(hidden_pauli_circuit("X0 Y3 Z5", 6, sign=-1, strength=0.9), shots,
                            np.random.default_rng(10))
    est = estimate_pauli_squares(data, ["X0 Y3 Z5", "X0 Y3", "Z5"])
    exact = np.array([0.81, 0.0, 0.0])
    assert _z_scores(est.estimate, exact, shots).max() < 5
    ab = abs_from_squares(est)
    assert ab.ci_low[0] <= 0.9 <= ab.ci_high[0]
    assert np.all(ab.ci_low[1:] == 0.0)


def test_interval_coverage() -> None:
    """Hoeffding is valid at any size: coverage >= level (minus 5 binomial s.e.); Wilson is close to
    the level at S = 400 (within 5 binomial s.e.)."""
    rho = np.diag([0.7, 0.3])  # tr(Z rho)^2 = 0.16
    trials, level = 400, 0.95
    tol = 5 * np.sqrt(level * (1 - level) / trials)
    rng = np.random.default_rng(12)
    hits = {"hoeffding": 0, "wilson": 0}
    for _ in range(trials):
        data = sample_bell_state(rho, 400, rng)
        for interval in hits:
            e = estimate_pauli_squares(data, ["Z0"], interval=interval, level=level)
            hits[interval] += e.ci_low[0] <= 0.16 <= e.ci_high[0]
    assert hits["hoeffding"] / trials >= level - tol
    assert abs(hits["wilson"] / trials - level) <= tol


# -- store --------------------------------------------------------------------------------------------

def test_store_round_trip_and_chunked_estimates_equal(tmp_path) -> None:
    data = sample_bell_stim(ghz_circuit(10), 1000, np.random.default_rng(13))
    store = write_bell_store(data, tmp_path / "b.zarr", chunk_snapshots=64)
    back = store.load()
    np.testing.assert_array_equal(back.a, data.a)
    np.testing.assert_array_equal(back.c, data.c)
    labels = ["Z0 Z1", "X0 X1 X2 X3 X4 X5 X6 X7 X8 X9", "Y0 Y1"]
    a = estimate_pauli_squares(data, labels)
    b = estimate_pauli_squares(tmp_path / "b.zarr", labels)
    np.testing.assert_array_equal(a.estimate, b.estimate)
    np.testing.assert_array_equal(estimate_purities(data).estimate, estimate_purities(store).estimate)
    assert BellStore.open(tmp_path / "b.zarr").summary()["n_copies"] == 2000


# -- bad input ----------------------------------------------------------------------------------------

def test_bad_input_errors(tmp_path) -> None:
    with pytest.raises(ShadowlabError, match="even"):
        BellData.from_bits(np.zeros((4, 5), np.uint8))
    with pytest.raises(ShadowlabError, match="shape"):
        BellData(np.zeros((4, 3), np.uint8), np.zeros((4, 2), np.uint8))
    with pytest.raises(ShadowlabError, match="0 or 1"):
        BellData(np.full((2, 2), 2, np.uint8), np.zeros((2, 2), np.uint8))
    data = sample_bell_stim(ghz_circuit(4), 10, np.random.default_rng(0))
    with pytest.raises(QubitCountMismatchError, match="qubit 7"):
        estimate_pauli_squares(data, ["X7"])
    with pytest.raises(QubitCountMismatchError):
        estimate_purities(data, [[0, 9]])
    with pytest.raises(ShadowlabError, match="at least 2 shots"):
        estimate_pauli_squares(data.head(1), ["Z0"])
    from shadowlab.data.dataset import ShadowData
    from shadowlab.data.store import ShadowStore, write_store

    local = ShadowData(np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8))
    with pytest.raises(ShadowlabError, match="local-Pauli shadows cannot"):
        open_bell(local)  # type: ignore[arg-type]
    write_store(local, tmp_path / "local.zarr")
    with pytest.raises(StoreFormatError, match="not a two-copy Bell one"):
        BellStore.open(tmp_path / "local.zarr")
    write_bell_store(data, tmp_path / "bell.zarr")
    with pytest.raises(StoreFormatError, match="twocopy"):
        ShadowStore.open(tmp_path / "bell.zarr")
    with pytest.raises(StateError):
        two_copy_circuit(stim.Circuit("H 0\nM 0"))
    with pytest.raises(ShadowlabError, match="identity"):
        hidden_pauli_circuit("III", 3)


# -- CLI ----------------------------------------------------------------------------------------------

def test_cli_simulate_predict_purity(run, tmp_path) -> None:
    r = run("twocopy", "simulate", "ghz:60", "-o", "g.zarr", "-n", "500", "--seed", "3")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "predict", "g.zarr", "Z0 Z1", "X0", "--format", "json")
    assert r.exit_code == 0, r.output
    import json

    rows = json.loads(r.stdout)["estimates"]
    assert rows[0]["estimate"] == 1.0 and abs(rows[1]["estimate"]) < 5 / np.sqrt(500)
    r = run("twocopy", "purity", "g.zarr", "-s", "0;0,1")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "simulate", "hidden:XIZY:sign=-1", "-o", "h.zarr", "-n", "100")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "simulate", "random:3", "-o", "r.zarr", "-n", "100", "--depolarize", "0.1")
    assert r.exit_code == 0, r.output
    r = run("info", "g.zarr")
    assert r.exit_code == 0 and "bell_two_copy" in r.output


def test_cli_bad_input_exits_nonzero_without_output(run, tmp_path) -> None:
    r = run("twocopy", "simulate", "random:12", "-o", "x.zarr", "-n", "10")
    assert r.exit_code == 1 and "at most 11" in r.output and not (tmp_path / "x.zarr").exists()
    r = run("twocopy", "simulate", "hidden:XQZ", "-o", "x.zarr")
    assert r.exit_code == 1 and "dense label" in r.output
    run("twocopy", "simulate", "ghz:4", "-o", "g.zarr", "-n", "10")
    r = run("twocopy", "predict", "g.zarr", "X9")
    assert r.exit_code == 1 and "qubit 9" in r.output
    run("simulate", "ghz:4", "-n", "100", "-o", "local.zarr")
    r = run("twocopy", "predict", "local.zarr", "X0")
    assert r.exit_code == 1 and "not a two-copy Bell one" in r.output
    r = run("predict", "g.zarr", "--all-pairs")
    assert r.exit_code == 1 and "twocopy" in r.output


def test_cli_studies_run_and_refuse_bad_input(run, tmp_path) -> None:
    r = run("twocopy", "dynamics", "--n", "3", "--shots", "1,50", "--circuits", "6", "--repeats", "1",
            "--json", "d.json")
    assert r.exit_code == 0, r.output
    import json

    assert json.loads((tmp_path / "d.json").read_text())["shots_needed"]["two_copy"] == 1
    r = run("twocopy", "stabilizer", "--n", "10", "--trials", "2", "--plot", "s.png")
    assert r.exit_code == 0 and (tmp_path / "s.png").stat().st_size > 0, r.output
    r = run("twocopy", "hidden-pauli", "--n", "6", "--trials", "2", "--queries", "50", "--copies", "40,400",
            "--one-copy-max-n", "0", "--json", "h.json")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "purity-scan", "--n", "3", "--trials", "2", "--one-copy-max-n", "0")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "dynamics", "--n", "40")
    assert r.exit_code == 1 and "too large" in r.output
    r = run("twocopy", "hidden-pauli", "--copies", "41")
    assert r.exit_code == 1 and "even" in r.output
    r = run("twocopy", "stabilizer", "--n", "x")
    assert r.exit_code == 1 and "integers" in r.output


def test_review_regressions(tmp_path) -> None:
    """Non-integer bits, an all-negative purity interval, empty result files and zero trials are errors or
    'undefined', never numbers."""
    with pytest.raises(ShadowlabError, match="integers"):
        BellData(np.full((3, 1), 0.7), np.full((3, 1), 0.2))
    from shadowlab.estimate.results import Estimates

    neg = Estimates(("all",), np.array([-0.4]), np.array([0.1]), np.array([-0.67]), np.array([-0.04]),
                    np.array([30]), 30, "bell_swap", "wilson", 0.95)
    ent, lo, hi = renyi2_from_purities(neg)
    assert np.isnan(ent[0]) and np.isnan(lo[0]) and np.isinf(hi[0])
    from shadowlab.acquire.result_files import read_braket_bits
    from shadowlab.errors import InputFormatError

    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(InputFormatError, match="no Braket task results"):
        read_braket_bits(tmp_path / "empty.json", 2)
    from shadowlab.twocopy.hidden_pauli import hidden_pauli_study
    from shadowlab.twocopy.purity_study import purity_study

    with pytest.raises(ShadowlabError, match="trials"):
        hidden_pauli_study([3], trials=0)
    with pytest.raises(ShadowlabError, match="trials"):
        purity_study([3], trials=0)
    with pytest.raises(ShadowlabError, match="RMSE"):
        purity_study([3], target_rmse=-1)
