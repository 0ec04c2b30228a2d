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
