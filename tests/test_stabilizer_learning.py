"""Learning stabilizer states by Bell sampling (shadowlab.twocopy.stabilizer).

Every test is seeded; the whole module runs in a few seconds (numba kernels are cached).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import stim

from shadowlab.acquire.clifford_shadows import random_clifford
from shadowlab.acquire.clifford_states import cluster_circuit, ghz_circuit, toric_code_circuit
from shadowlab.errors import ShadowlabError
from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.simulate import bell_distribution, sample_bell_stim
from shadowlab.twocopy.stabilizer import (
    StabilizerLearningResult,
    bell_subspace,
    graph_form_circuits,
    learn_stabilizer_state,
    plot_stabilizer_learning,
    random_stabilizer_circuit,
    same_stabilizer_state,
    stabilizer_learning_study,
    stim_samplers,
    verify_stabilizer_state,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_stabilizer.py"


def _learn(circuit: stim.Circuit, seed: int, **kwargs: object) -> StabilizerLearningResult:
    n = circuit.num_qubits
    sample_bell, sample_single = stim_samplers(circuit, np.random.default_rng(seed), n)
    return learn_stabilizer_state(sample_bell, sample_single, n, **kwargs)


def _bits(value: int, n: int) -> np.ndarray:
    return np.array([(value >> (n - 1 - k)) & 1 for k in range(n)], dtype=np.int64)


# -- the Bell-sampling statement ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_bell_outcomes_are_uniform_on_a_coset_with_x_from_c_and_z_from_a(seed: int) -> None:
    # Exact distribution (no sampling): 2**n outcomes of probability 2**-n, and for every
    # stabilizer (x, z): x.a + z.c = |x AND z| (mod 2), i.e. sigma_b = (x = c, z = a) lies in w0 + L.
    n = 3
    tab = random_clifford(n, np.random.default_rng(seed))
    psi = tab.to_state_vector(endian="big").astype(np.complex128)
    p = bell_distribution(psi / np.linalg.norm(psi))
    support = np.argwhere(p > 1e-12)
    assert len(support) == 2**n
    np.testing.assert_allclose(p[p > 1e-12], 2.0**-n, atol=1e-10)
    stabs = [s.to_numpy() for s in tab.to_stabilizers()]
    for ai, ci in support:
        a, c = _bits(int(ai), n), _bits(int(ci), n)
        for xs, zs in stabs:
            assert (xs.astype(int) @ a + zs.astype(int) @ c + int((xs & zs).sum())) % 2 == 0


def test_bell_differences_span_the_stabilizer_subspace_with_x_from_c() -> None:
    n = 12
    circuit = random_stabilizer_circuit(n, np.random.default_rng(3))
    sub = bell_subspace(sample_bell_stim(circuit, n + 20, np.random.default_rng(4)))
    assert sub.complete and sub.rejected == 0 and sub.consistency == 1.0
    x, z = sub.bits()
    sim = stim.TableauSimulator()
    sim.do_circuit(circuit)
    for xs, zs in zip(x, z, strict=True):
        p = stim.PauliString.from_numpy(xs=xs.astype(bool), zs=zs.astype(bool))
        assert sim.peek_observable_expectation(p) in (1, -1)
        # The swapped reading (x from a, z from c) is not a stabilizer in general.
    swapped = [stim.PauliString.from_numpy(xs=zs.astype(bool), zs=xs.astype(bool)) for xs, zs in zip(x, z, strict=True)]
    assert not all(sim.peek_observable_expectation(p) != 0 for p in swapped)


# -- exact learning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 35, 50])
def test_random_stabilizer_states_are_learned_exactly(n: int) -> None:
    truth = random_stabilizer_circuit(n, np.random.default_rng([11, n]))
    res = _learn(truth, 100 + n)
    assert res.status == "learned" and res.success and res.verified
    assert res.sign_disagreements == 0 and res.rejected_shots == 0 and res.bell_consistency == 1.0
    assert len(res.generators) == n
    assert same_stabilizer_state(res, truth, n)
    # The learned preparation circuit prepares the same state.
    assert same_stabilizer_state(res.generators, res.circuit, n)
    # Copies: 2 per Bell shot, n + 1 + 8 shots in the first batch, then sign and verification copies.
    assert res.bell_copies == 2 * res.bell_shots and res.bell_shots >= n + 1
    assert res.total_copies == res.bell_copies + 3 + 10
    if n <= 20:  # cross-check with stim's canonical stabilizers (slow for large n)
        sim = stim.TableauSimulator()
        sim.do_circuit(truth)
        sim.set_num_qubits(n)
        learned = stim.Tableau.from_stabilizers(list(res.generators)).to_stabilizers(canonicalize=True)
        assert learned == sim.canonical_stabilizers()


@pytest.mark.parametrize("circuit", [ghz_circuit(40), cluster_circuit(40), toric_code_circuit(3)],
                         ids=["ghz40", "cluster40", "toric3"])
def test_named_states_are_learned(circuit: stim.Circuit) -> None:
    res = _learn(circuit, 5)
    assert res.success and same_stabilizer_state(res, circuit)
    assert all(label[0] in "+-" for label in res.labels)


def test_labels_round_trip_and_ghz_generators() -> None:
    res = _learn(ghz_circuit(4), 1)
    assert same_stabilizer_state(res.labels, ghz_circuit(4), 4)
    assert same_stabilizer_state(["+XXXX", "+ZZII", "+IZZI", "+IIZZ"], ghz_circuit(4))
    assert not same_stabilizer_state(["+XXXX", "+ZZII", "+IZZI", "-IIZZ"], ghz_circuit(4))
    # Redundant generators do not determine a state.
    assert not same_stabilizer_state(["+XXXX", "+ZZII", "+IZZI", "+ZIZI"], ghz_circuit(4))


# -- not enough shots: say so, do not guess ----------------------------------------------------------
def test_too_few_shots_reports_insufficient_without_guessing() -> None:
    n = 30
    truth = random_stabilizer_circuit(n, np.random.default_rng(8))
    sample_bell, _ = stim_samplers(truth, np.random.default_rng(9), n)

    def no_single(circuit: stim.Circuit, shots: int) -> np.ndarray:
        raise AssertionError("the learner must not go on to the sign step without a full span")

    res = learn_stabilizer_state(sample_bell, no_single, n, bell_shots=n // 2, adaptive=False)
    assert res.status == "insufficient_shots" and not res.success
    assert res.generators == () and res.circuit is None and res.verified is None
    assert res.rank == n // 2 - 1 and res.bell_shots == n // 2
    assert res.shots_needed >= n - res.rank
    assert res.sign_copies == 0 and res.verify_copies == 0
    assert "not guessing" in res.message


def test_adaptive_mode_keeps_sampling_until_the_span_is_complete() -> None:
    n = 30
    truth = random_stabilizer_circuit(n, np.random.default_rng(8))
    res = _learn(truth, 9, bell_shots=n // 2, extra_shots=2)
    assert res.success and same_stabilizer_state(res, truth)
    assert res.bell_shots > n // 2


# -- verification ------------------------------------------------------------------------------------
def test_verification_rejects_a_state_with_one_sign_flipped() -> None:
    n = 25
    truth = random_stabilizer_circuit(n, np.random.default_rng(21))
    _, sample_single = stim_samplers(truth, np.random.default_rng(22), n)
    res = _learn(truth, 23)
    assert verify_stabilizer_state(res, sample_single, 8) == (True, 1.0)
    flipped = list(res.generators)
    flipped[7] = -flipped[7]
    assert not same_stabilizer_state(flipped, truth)
    accepted, frac = verify_stabilizer_state(flipped, sample_single, 8)
    assert not accepted and frac == 0.0  # the flipped generator reads -1 on every copy


def test_verification_rejects_a_different_state() -> None:
    n = 25
    res = _learn(random_stabilizer_circuit(n, np.random.default_rng(1)), 2)
    other = random_stabilizer_circuit(n, np.random.default_rng(3))
    _, sample_single = stim_samplers(other, np.random.default_rng(4), n)
    accepted, frac = verify_stabilizer_state(res, sample_single, 10)
    assert not accepted and frac <= 0.5


# -- noise -------------------------------------------------------------------------------------------
def test_noisy_state_is_handled_and_reported() -> None:
    # Documented behaviour: noisy shots are rejected or out-voted; the result is never a crash,
    # and anything reported as verified is exact here (small noise, strict verification).
    n = 20
    statuses = []
    for seed in range(6):
        truth = random_stabilizer_circuit(n, np.random.default_rng([5, seed]))
        noisy = truth.copy()
        noisy.append("DEPOLARIZE1", range(n), 0.005)
        res = _learn(noisy, 50 + seed)
        statuses.append(res.status)
        assert res.status in ("learned", "insufficient_shots", "inconsistent")
        assert res.bell_consistency is not None and 0.0 <= res.bell_consistency <= 1.0
        if res.status == "learned":
            assert len(res.generators) == n and res.verify_pass_fraction is not None
            if res.verified:
                assert same_stabilizer_state(res, noisy, n, ignore_noise=True)
        else:
            assert res.message and not res.success
    assert "learned" in statuses
    with pytest.raises(ShadowlabError):  # the exact check refuses a noisy circuit unless told
        same_stabilizer_state(["+Z0"], stim.Circuit("DEPOLARIZE1(0.1) 0"))


def test_heavy_noise_says_insufficient() -> None:
    n = 30
    noisy = random_stabilizer_circuit(n, np.random.default_rng(6))
    noisy.append("DEPOLARIZE1", range(n), 0.1)
    res = _learn(noisy, 7)
    assert res.status == "insufficient_shots" and res.rejected_shots > 0 and not res.generators


# -- bad input ---------------------------------------------------------------------------------------
def test_bad_input_raises_shadowlab_errors() -> None:
    sample_bell, sample_single = stim_samplers(ghz_circuit(4), np.random.default_rng(0), 4)
    with pytest.raises(ShadowlabError, match="n must be"):
        learn_stabilizer_state(sample_bell, sample_single, 0)
    with pytest.raises(ShadowlabError, match="odd"):
        learn_stabilizer_state(sample_bell, sample_single, 4, sign_copies=2)
    with pytest.raises(ShadowlabError, match="qubits"):
        learn_stabilizer_state(sample_bell, sample_single, 5)  # the sampler gives 4-qubit shots
    with pytest.raises(ShadowlabError, match="shape"):
        learn_stabilizer_state(sample_bell, lambda c, k: np.zeros((k, 3), np.uint8), 4)
    with pytest.raises(ShadowlabError, match="both must be"):
        BellData(np.zeros((3, 2), np.uint8), np.zeros((3, 3), np.uint8))
    with pytest.raises(ShadowlabError, match="expected 5"):
        bell_subspace(sample_bell(6), 5)
    with pytest.raises(ShadowlabError, match="commuting"):
        graph_form_circuits(np.array([[1, 0], [0, 0]]), np.array([[0, 0], [1, 0]]))  # X0 and Z0
    with pytest.raises(ShadowlabError, match="expected two"):
        graph_form_circuits(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ShadowlabError, match="more than n_qubits"):
        stim_samplers(ghz_circuit(5), np.random.default_rng(0), 3)
    with pytest.raises(ShadowlabError, match="needs 4 generators"):
        verify_stabilizer_state(["+XXXX", "+ZZII"], sample_single, 3, 4)
    with pytest.raises(ShadowlabError, match="max_bell_shots"):
        learn_stabilizer_state(sample_bell, sample_single, 4, max_bell_shots=3)


# -- study, plot, benchmark --------------------------------------------------------------------------
def test_study_and_plot(tmp_path: Path) -> None:
    result = stabilizer_learning_study([5, 12], 3, seed=4)
    rows = result["rows"]
    assert [r["n"] for r in rows] == [5, 12]
    for r in rows:
        assert r["success_rate"] == 1.0 and r["false_accepts"] == 0
        assert r["copies_max"] >= r["copies_mean"] >= r["copies_min"] > 2 * r["n"]
    json.dumps(result)  # serializable
    out = plot_stabilizer_learning(result, tmp_path / "copies.png")
    assert out.stat().st_size > 1000
    ghz = stabilizer_learning_study([6], 2, seed=1, family="ghz")
    assert ghz["rows"][0]["success_rate"] == 1.0
    with pytest.raises(ShadowlabError, match="family"):
        stabilizer_learning_study([6], 1, seed=1, family="nope")


def test_quick_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(out), "--plot",
                           str(tmp_path / "bench.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert rows and all(r["success_rate"] >= 0.9 for r in rows)
    assert (tmp_path / "bench.png").exists()
