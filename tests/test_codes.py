"""Surface-code states under circuit noise: layout, encoders, exact noisy values, shadows, error rates, CLI.

Exact values (from stim's detector error model) are checked against a dense density-matrix
simulation that does not use the DEM (:func:`shadowlab.acquire.density_matrix.density_matrix_from_stim`:
gates as unitaries from ``stim.Tableau.to_unitary_matrix``, Pauli channels as explicit mixtures;
itself checked in ``tests/test_density_matrix.py``) and against Monte-Carlo sampling of the noisy
circuit; statistical tolerances are 5 standard errors of the estimator in question, with fixed seeds.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import stim

import shadowlab.cli_codes  # noqa: F401  (registers the surface-code command until cli.py imports it)
from shadowlab.acquire.clifford_states import stabilizer_expectations
from shadowlab.acquire.codes import rotated_surface_code
from shadowlab.acquire.density_matrix import density_matrix_from_stim, pauli_expectations_dm
from shadowlab.acquire.noise import add_circuit_noise
from shadowlab.acquire.stim_exact import exact_noisy_pauli_expectations
from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.results import Estimates
from shadowlab.estimate.stabilizers import circuit_noise_response, stabilizer_error_rates, surface_code_experiment
from shadowlab.paulis import PauliString

DISTANCES = (3, 5, 7)


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


def _gf2_rank(rows: np.ndarray) -> int:
    a = rows.copy() % 2
    rank = 0
    for col in range(a.shape[1]):
        pivot = next((r for r in range(rank, a.shape[0]) if a[r, col]), None)
        if pivot is None:
            continue
        a[[rank, pivot]] = a[[pivot, rank]]
        for r in range(a.shape[0]):
            if r != rank and a[r, col]:
                a[r] ^= a[rank]
        rank += 1
    return rank


@pytest.mark.parametrize("d", DISTANCES)
def test_layout_counts_weights_and_commutation(d: int) -> None:
    code = rotated_surface_code(d)
    n = d * d
    assert code.n_qubits == n and code.n_stabilizers == n - 1
    assert code.kinds.count("X") == code.kinds.count("Z") == (n - 1) // 2
    weights = [s.weight for s in code.stabilizers]
    # (d-1)^2 bulk plaquettes of weight 4, 2(d-1) boundary checks of weight 2.
    assert weights.count(4) == (d - 1) ** 2 and weights.count(2) == 2 * (d - 1)
    for s, kind in zip(code.stabilizers, code.kinds, strict=True):
        assert set(s.codes) == {0 if kind == "X" else 2}
    sp = [s.to_stim(n) for s in code.stabilizers]
    assert all(a.commutes(b) for a, b in itertools.combinations(sp, 2))
    # Independent generators: full GF(2) rank of the (x | z) matrix.
    sym = np.array([np.concatenate(p.to_numpy()) for p in sp], dtype=np.uint8)
    assert _gf2_rank(sym) == n - 1
    lx, lz = code.logical_x.to_stim(n), code.logical_z.to_stim(n)
    assert code.logical_x.weight == code.logical_z.weight == d
    assert not lx.commutes(lz)
    assert all(lx.commutes(s) and lz.commutes(s) for s in sp)
    assert code.coords.tolist()[d + 2] == [1, 2]  # qubit r*d + c


@pytest.mark.parametrize("d", DISTANCES)
@pytest.mark.parametrize("logical", ["0", "+"])
def test_encoder_is_unitary_and_prepares_the_code_state(d: int, logical: str) -> None:
    code = rotated_surface_code(d)
    circuit = code.state_circuit(logical)
    assert check_state_circuit(circuit, allow_noise=False) is False
    assert {op.name for op in circuit} <= {"H", "CX", "TICK", "QUBIT_COORDS"}
    values = stabilizer_expectations(circuit, code.observables())
    assert np.all(values[:-2] == 1.0)
    # |0_L>: Z_L = +1 and X_L undetermined; |+_L> the other way round.
    assert values[-2:].tolist() == ([0.0, 1.0] if logical == "0" else [1.0, 0.0])


@pytest.mark.parametrize("bad", [1, 2, 4, 0, -3, True, 3.0, "5"])
def test_bad_distance_is_refused(bad: object) -> None:
    with pytest.raises(ShadowlabError, match="odd"):
        rotated_surface_code(bad)  # type: ignore[arg-type]


def test_bad_logical_is_refused() -> None:
    with pytest.raises(ShadowlabError, match="logical"):
        rotated_surface_code(3).state_circuit("1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Exact noisy values against a dense density-matrix reference
# --------------------------------------------------------------------------------------------


def _all_paulis(n: int) -> list[PauliString]:
    return [PauliString.from_label("".join(s)) for s in itertools.product("IXYZ", repeat=n)][1:]


def test_exact_values_match_a_dense_density_matrix_on_small_circuits() -> None:
    # Source of the expected values: the dense density-matrix simulation (independent of stim's DEM).
    circuit = stim.Circuit("""
        H 0
        DEPOLARIZE1(0.07) 0
        CX 0 1
        DEPOLARIZE2(0.05) 0 1
        S 1
        X_ERROR(0.02) 1
        CZ 1 2
        DEPOLARIZE2(0.11) 1 2
        H 2
        Y_ERROR(0.03) 2
        SQRT_X 0
        Z_ERROR(0.04) 0
        CX 2 0
        PAULI_CHANNEL_1(0.01, 0.02, 0.03) 1
    """)
    n = 3
    paulis = _all_paulis(n)
    dense = pauli_expectations_dm(density_matrix_from_stim(circuit, n_qubits=n), paulis)
    exact = exact_noisy_pauli_expectations(circuit, paulis)
    assert np.max(np.abs(exact - dense)) < 1e-12
    assert np.count_nonzero(exact) == 7  # the 2^3 - 1 non-identity stabilizers, up to sign
    assert np.any(exact < 0)  # signs are carried (S and SQRT_X give -1 stabilizers here)


def test_exact_values_match_dense_on_the_noisy_distance_3_code() -> None:
    code = rotated_surface_code(3)
    noisy = add_circuit_noise(code.state_circuit("0"), 0.02, 0.03)
    rng = np.random.default_rng(7)
    extra = [PauliString.from_label("".join(rng.choice(list("IXYZ"), 9))) for _ in range(20)]
    paulis = [*code.observables().terms, *extra]
    dense = pauli_expectations_dm(density_matrix_from_stim(noisy, n_qubits=9), paulis)
    exact = exact_noisy_pauli_expectations(noisy, paulis, n_qubits=9)
    assert np.max(np.abs(exact - dense)) < 1e-12
    assert np.all(exact[:8] < 1) and np.all(exact[:8] > 0.8)


def test_exact_values_match_monte_carlo_sampling() -> None:
    code = rotated_surface_code(3)
    noisy = add_circuit_noise(code.state_circuit("+"), 0.05)
    paulis = list(code.observables().terms)
    exact = exact_noisy_pauli_expectations(noisy, paulis)
    probe = noisy.copy()
    for p in paulis:
        probe.append("MPP", stim.target_combined_paulis(p.to_stim(9)))
    shots = 20000
    bits = probe.compile_sampler(seed=11).sample(shots)
    mc = 1.0 - 2.0 * bits.mean(axis=0)
    # Z_L on |+_L> has value 0: its MPP outcomes are fair coins, the mean is still unbiased.
    se = np.sqrt(np.maximum(1.0 - exact**2, 1e-12) / shots)
    assert np.all(np.abs(mc - exact) <= 5 * se + 1e-12), (mc - exact) / se


def test_exact_refuses_measurements_and_inexact_channels() -> None:
    with pytest.raises(ShadowlabError, match="measure"):
        exact_noisy_pauli_expectations(stim.Circuit("H 0\nM 0"), [PauliString.from_label("Z0")])
    c = stim.Circuit("H 0\nCX 0 1\nPAULI_CHANNEL_2(" + ", ".join(["0.01"] * 15) + ") 0 1")
    with pytest.raises(ShadowlabError, match="independent error mechanisms"):
        exact_noisy_pauli_expectations(c, [PauliString.from_label("XX"), PauliString.from_label("ZZ")])


# --------------------------------------------------------------------------------------------
# Error-rate inversion
# --------------------------------------------------------------------------------------------


def _estimates(values: np.ndarray, se: float = 1e-3, half: float = 2e-3) -> Estimates:
    m = len(values)
    return Estimates(tuple(f"S{i}" for i in range(m)), values, np.full(m, se), values - half, values + half,
                     np.full(m, 100), 100, "mean", "normal", 0.95)


@pytest.mark.parametrize("d", [3, 5])
def test_error_rate_inversion_round_trip(d: int) -> None:
    code = rotated_surface_code(d)
    ideal = code.state_circuit("0")
    response = circuit_noise_response(ideal, code.stabilizers, n_qubits=code.n_qubits)
    for p in (1e-4, 0.003, 0.02, 0.3):
        # The closed form is stim's exact value at every p of the family.
        direct = exact_noisy_pauli_expectations(add_circuit_noise(ideal, p), code.stabilizers, n_qubits=code.n_qubits)
        assert np.max(np.abs(response.value(p) - direct)) < 1e-12
        rates = stabilizer_error_rates(_estimates(direct), code.stabilizers, ideal, response=response)
        assert np.max(np.abs(rates.p_hat - p)) < 1e-10
        assert np.all(rates.p_low <= rates.p_hat) and np.all(rates.p_hat <= rates.p_high)
        assert abs(rates.p_fit - p) < 1e-8
        assert np.allclose(rates.violation, (1 - direct) / 2)


def test_error_rates_with_negative_signs_and_flags() -> None:
    ideal = stim.Circuit("X 0\nH 1\nCX 1 2")  # Z0 = -1, X1 X2 = +1, Z1 Z2 = +1
    paulis = [PauliString.from_label(s) for s in ("Z0", "X1 X2", "Z1 Z2")]
    response = circuit_noise_response(ideal, paulis, n_qubits=3)
    assert response.sign.tolist() == [-1.0, 1.0, 1.0]
    p = 0.01
    exact = exact_noisy_pauli_expectations(add_circuit_noise(ideal, p), paulis, n_qubits=3)
    rates = stabilizer_error_rates(_estimates(exact), paulis, ideal)
    assert np.allclose(rates.p_hat, p, atol=1e-10)
    assert np.all(rates.p_low < p) and np.all(rates.p_high > p)
    # An estimate at or beyond the noiseless value: no detectable error, p_hat = 0. One far
    # below anything the family reaches: saturated at p_max.
    flagged = stabilizer_error_rates(_estimates(np.array([-1.01, 1.0, 0.0]), half=1e-3), paulis, ideal)
    assert flagged.no_detectable_error.tolist() == [True, True, False]
    assert flagged.p_hat[:2].tolist() == [0.0, 0.0]
    assert flagged.saturated.tolist() == [False, False, True] and flagged.p_hat[2] == 0.75
    row = json.loads(flagged.to_json())["stabilizers"][0]
    assert row["no_detectable_error"] is True and row["sign"] == -1


def test_error_rates_refuse_non_stabilizers_and_length_mismatch() -> None:
    ideal = stim.Circuit("H 0\nCX 0 1")
    with pytest.raises(ShadowlabError, match="not stabilizers"):
        circuit_noise_response(ideal, [PauliString.from_label("Z0")])
    with pytest.raises(ShadowlabError, match="estimates"):
        stabilizer_error_rates(_estimates(np.array([1.0, 1.0])), [PauliString.from_label("XX")], ideal)


# --------------------------------------------------------------------------------------------
# Shadows of the noisy code state
# --------------------------------------------------------------------------------------------


def test_seeded_shadow_estimates_of_every_d3_stabilizer_within_5_stderr() -> None:
    result = surface_code_experiment(3, 0.01, readout_p01=0.02, readout_p10=0.05, readout_twirl=True,
                                     n_snapshots=40000, seed=5)
    assert result.calibrated
    z = result.z_scores
    assert np.all(np.abs(z) <= 5.0), dict(zip(result.labels, np.round(z, 2), strict=True))
    assert len(result.rates) == 8 and np.all(np.isfinite(result.rates.p_hat))
    # The fitted rate agrees with the simulated one within 5 of its standard errors.
    assert abs(result.rates.p_fit - 0.01) <= 5 * result.rates.p_fit_stderr
    doc = result.to_dict()
    json.dumps(doc)
    assert doc["comparison"]["n_stabilizers"] == 8 and len(doc["observables"]) == 10


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_cli_writes_json_and_plot(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run("surface-code", "--distance", 3, "--noise", "depolarizing=0.01,p01=0.02,p10=0.05",
            "--snapshots", 20000, "--seed", 2, "--output", "sc.json", "--plot", "sc.png", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "sc.json").read_text())
    assert doc["distance"] == 3 and doc["calibrated"] and len(doc["error_rates"]["stabilizers"]) == 8
    assert (tmp_path / "sc.png").stat().st_size > 1000
    assert "joint fit" in r.stdout
    # Never overwrite without --force.
    again = run("surface-code", "-d", 3, "-n", 1000, "--output", "sc.json", "-q")
    assert again.exit_code == 1 and "exists" in again.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["--distance", 4], "odd distance"),
    (["--distance", 1], "odd distance"),
    (["--noise", "depolarizing=2"], "--noise"),
    (["--noise", "depolarizing=-0.1"], "--noise"),
    (["--noise", "p10=1.5"], "--noise"),
    (["--noise", "0.01"], "--noise"),
    (["--noise", "depolarizing=0.01,two_qubit_depolarizing=0.02"], "--noise"),
    (["--logical", "1"], "--logical"),
    (["--snapshots", 1], "--snapshots"),
])
def test_cli_bad_input(run, tmp_path, args, fragment) -> None:  # type: ignore[no-untyped-def]
    r = run("surface-code", *args, "--output", "out.json", "--plot", "out.png", "-q")
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("error:") and fragment in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_interval_coverage_over_seeds() -> None:
    """Coverage of the robust 95% intervals of the d=3 stabilizers over 40 seeds (320 intervals).

    The count inside is Binomial(320, 0.95) if the intervals are calibrated: mean 304, s.d. 3.9;
    we require at least 304 - 5 * 3.9 and every |z| <= 5.
    """
    inside = total = 0
    for seed in range(40):
        r = surface_code_experiment(3, 0.01, readout_p01=0.02, readout_p10=0.05, n_snapshots=20000, seed=100 + seed)
        m = r.n_stabilizers
        inside += int(np.sum(r.inside[:m]))
        total += m
        assert np.all(np.abs(r.z_scores) <= 5.0), seed
    mean, sd = 0.95 * total, np.sqrt(total * 0.95 * 0.05)
    assert inside >= mean - 5 * sd, (inside, total)


def test_benchmark_quick_runs(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_surface_code.py"
    spec = importlib.util.spec_from_file_location("bench_surface_code", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert "| d | p | stabilizers |" in out and "Acceptance at d = 5" in out
    assert (tmp_path / "b.png").exists() and json.loads((tmp_path / "b.json").read_text())["rows"]
