"""Two-copy circuits on the SDK back ends (Qiskit Aer, Braket local) and result import."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shadowlab.acquire.states import haar_random_state
from shadowlab.errors import InputFormatError, ShadowlabError
from shadowlab.paulis import PauliString
from shadowlab.twocopy.estimate import estimate_pauli_squares, estimate_purities
from shadowlab.twocopy.simulate import pauli_squares_exact

pytest.importorskip("qiskit_aer")

LABELS = ["Z0", "X0 X1", "Y0 Z1", "Z0 Z1 Z2", "X0 Y1 X2", "Y0 Y1 Y2", "X2"]


def _check(data, state: np.ndarray) -> None:
    exact = pauli_squares_exact(state, [PauliString.from_label(s) for s in LABELS])
    est = estimate_pauli_squares(data, LABELS).estimate
    se = np.sqrt(np.clip(1 - exact**2, 0, None) / data.n_shots)
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-12)
    assert estimate_purities(data).estimate[0] == 1.0  # pure state: SWAP = +1 on every shot


def test_qiskit_aer_two_copy_matches_exact_and_reimports(tmp_path) -> None:
    from shadowlab.twocopy.devices import read_two_copy_results, run_two_copy_qiskit

    psi = haar_random_state(3, np.random.default_rng(1))
    data = run_two_copy_qiskit(psi, 6000, seed=3, save_to=tmp_path / "r.json")
    _check(data, psi)
    back = read_two_copy_results(tmp_path / "r.json", 3)
    np.testing.assert_array_equal(back.a, data.a)
    np.testing.assert_array_equal(back.c, data.c)
    first, second = run_two_copy_qiskit(psi, 100, seed=4), run_two_copy_qiskit(psi, 100, seed=4)
    np.testing.assert_array_equal(first.a, second.a)  # seeded: the same seed gives the same shots


def test_braket_local_two_copy_matches_exact() -> None:
    pytest.importorskip("braket.devices")
    from shadowlab.twocopy.devices import run_two_copy_braket

    psi = haar_random_state(3, np.random.default_rng(2))
    _check(run_two_copy_braket(psi, 3000), psi)


def test_counts_import_bit_order_and_bad_widths(tmp_path) -> None:
    from shadowlab.twocopy.devices import read_two_copy_results

    # One qubit per copy: Qiskit's "10" means classical bit 1 (c_0) = 1 and bit 0 (a_0) = 0.
    (tmp_path / "counts.json").write_text(json.dumps([{"10": 3, "01": 1}]))
    d = read_two_copy_results(tmp_path / "counts.json", 1)
    assert d.a[:, 0].tolist() == [1, 0, 0, 0] and d.c[:, 0].tolist() == [0, 1, 1, 1]
    with pytest.raises(InputFormatError, match="has 2 bits"):
        read_two_copy_results(tmp_path / "counts.json", 2)
    (tmp_path / "odd.json").write_text(json.dumps([{"101": 1}]))
    with pytest.raises(InputFormatError):
        read_two_copy_results(tmp_path / "odd.json", 1)
    with pytest.raises(ShadowlabError, match="no such"):
        read_two_copy_results(tmp_path / "missing.json", 1)


def test_cli_run_import_circuits(run, tmp_path) -> None:
    r = run("twocopy", "run", "ghz:3", "-o", "q.zarr", "-n", "300", "--save-results", "r.json")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "import", "r.json", "--qubits", "3", "-o", "i.zarr")
    assert r.exit_code == 0, r.output
    r = run("twocopy", "predict", "i.zarr", "Z0 Z1", "--format", "json")
    assert json.loads(r.stdout)["estimates"][0]["estimate"] == 1.0
    r = run("twocopy", "import", "r.json", "--qubits", "4", "-o", "j.zarr")
    assert r.exit_code == 1 and "6 classical bits" in r.output and not (tmp_path / "j.zarr").exists()
    r = run("twocopy", "circuits", "ghz:2", "-o", "c.qasm")
    assert r.exit_code == 0 and "cx q[0], q[2];" in (tmp_path / "c.qasm").read_text()
    r = run("twocopy", "run", "ghz:2", "-o", "x.zarr", "--backend", "ionq")
    assert r.exit_code == 1 and "qiskit-aer or braket-local" in r.output


# ------------------------------------------------------------------------------------------ noise semantics

PAULIS = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])]


def _bell_distribution_exact(psi: np.ndarray, noise) -> np.ndarray:
    """Probabilities of the 4 records (a_0, c_0) of the one-qubit two-copy circuit under ``noise``.

    shadowlab.acquire.noise semantics, written out on the 4x4 density matrix (qubit 0 = copy A =
    most significant bit): the preparations are state vectors (no gate noise); CNOT(0 -> 1) then
    DEPOLARIZE2(p2) (each of the 15 Pauli pairs with p2/15); H(0) then DEPOLARIZE1(p) (X, Y, Z
    with p/3 each); then each bit read with the flips p01 (0 -> 1) and p10 (1 -> 0).
    """
    rho = np.kron(np.outer(psi, psi.conj()), np.outer(psi, psi.conj()))
    cnot = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex)
    rho = cnot @ rho @ cnot.conj().T
    p2 = noise.p2
    pairs = [np.kron(a, b) for a in PAULIS for b in PAULIS][1:]
    rho = (1 - p2) * rho + p2 / 15 * sum(e @ rho @ e.conj().T for e in pairs)
    h0 = np.kron(np.array([[1, 1], [1, -1]]) / np.sqrt(2), np.eye(2))
    rho = h0 @ rho @ h0.conj().T
    p = noise.depolarizing
    singles = [np.kron(s, np.eye(2)) for s in PAULIS[1:]]
    rho = (1 - p) * rho + p / 3 * sum(e @ rho @ e.conj().T for e in singles)
    probs = np.real(np.diag(rho)).reshape(2, 2)
    read = np.array([[1 - noise.readout_p01, noise.readout_p01], [noise.readout_p10, 1 - noise.readout_p10]])
    return np.einsum("ab,ac,bd->cd", probs, read, read).ravel()


def _check_distribution(data, expected: np.ndarray) -> None:
    index = data.a[:, 0].astype(np.int64) * 2 + data.c[:, 0]
    freq = np.bincount(index, minlength=4) / data.n_shots
    se = np.sqrt(expected * (1 - expected) / data.n_shots)
    assert np.all(np.abs(freq - expected) <= 5 * se), (freq, expected)


def test_noise_means_the_same_on_aer_and_braket() -> None:
    # Large probabilities, so that other semantics (one-qubit noise after the CNOT, symmetric
    # readout, noisy synthesized state preparations) would be far outside 5 standard errors.
    pytest.importorskip("braket.devices")
    from shadowlab.acquire.noise import NoiseModel
    from shadowlab.twocopy.devices import run_two_copy_braket, run_two_copy_qiskit

    psi = haar_random_state(1, np.random.default_rng(7))
    noise = NoiseModel(depolarizing=0.2, two_qubit_depolarizing=0.3, readout_p01=0.05, readout_p10=0.2)
    expected = _bell_distribution_exact(psi, noise)
    shots = 4000
    aer = run_two_copy_qiskit(psi, shots, seed=11, noise_model=noise)
    _check_distribution(aer, expected)
    braket = run_two_copy_braket(psi, shots, noise=noise.record())  # a spec dict: the same model
    _check_distribution(braket, expected)
    assert aer.metadata["noise_model"] == braket.metadata["noise"] == noise.record()
    assert braket.metadata["device"] == "braket_dm"
    with pytest.raises(ShadowlabError, match="spec dict"):
        run_two_copy_braket(psi, 10, noise=0.1)
    with pytest.raises(ShadowlabError, match="unknown noise parameter"):
        run_two_copy_braket(psi, 10, noise={"depolarising": 0.1})


def test_cli_twocopy_noise_flags_on_both_back_ends(run) -> None:
    pytest.importorskip("braket.devices")
    for backend in ("qiskit-aer", "braket-local"):
        r = run("twocopy", "run", "random:1", "-o", f"{backend}.zarr", "-n", "50", "--backend", backend,
                "--depolarizing", "0.1", "--readout", "0.05")
        assert r.exit_code == 0, r.output
