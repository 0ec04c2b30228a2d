"""Tests of the OpenQASM 2.0 reader and simulator (shadowlab.acquire.qasm).

Reference matrices are written out here independently of the module, from their textbook
definitions (Nielsen & Chuang, ch. 4; the Qiskit circuit-library documentation for rx, ry, rz,
u3, sx, rxx, rzz, whose phase conventions the module follows).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shadowlab.acquire.qasm import Circuit, gate_matrix, read_qasm2, simulate_circuit, simulate_qasm2
from shadowlab.acquire.states import ghz
from shadowlab.errors import InputFormatError, ShadowlabError, StateError

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
S2 = 1 / math.sqrt(2)
I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1, -1]).astype(complex)
H = np.array([[1, 1], [1, -1]]) * S2


def u3(t: float, p: float, lam: float) -> np.ndarray:
    # Qiskit U3Gate / OpenQASM U(theta, phi, lambda).
    return np.array(
        [
            [math.cos(t / 2), -np.exp(1j * lam) * math.sin(t / 2)],
            [np.exp(1j * p) * math.sin(t / 2), np.exp(1j * (p + lam)) * math.cos(t / 2)],
        ]
    )


def expm_pauli(t: float, pauli: np.ndarray) -> np.ndarray:
    """exp(-i t/2 P) for an involutory P (P^2 = I): cos(t/2) I - i sin(t/2) P."""
    return math.cos(t / 2) * np.eye(pauli.shape[0]) - 1j * math.sin(t / 2) * pauli


def kron_all(*ms: np.ndarray) -> np.ndarray:
    out = np.ones((1, 1))
    for m in ms:
        out = np.kron(out, m)
    return out


def random_state(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return v / np.linalg.norm(v)


def test_bell_state() -> None:
    psi = simulate_qasm2(HEADER + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n")
    np.testing.assert_allclose(psi, [S2, 0, 0, S2], atol=1e-15)


def test_qubit_zero_is_most_significant_bit() -> None:
    # x on q[0] of 2 qubits gives |10>, index 2 (Qiskit would give index 1).
    psi = simulate_qasm2(HEADER + "qreg q[2];\nx q[0];\n")
    np.testing.assert_allclose(psi, [0, 0, 1, 0])


def test_registers_concatenate_in_declaration_order() -> None:
    c = read_qasm2(HEADER + "qreg a[1];\nqreg b[2];\nx b[1];\n")
    assert c.n_qubits == 3 and c.qregs == (("a", 1), ("b", 2))
    assert c.ops[0].qubits == (2,) and c.qubit_label(2) == "b[1]"
    np.testing.assert_allclose(c.statevector(), np.eye(8)[1])  # |001>


T, P, L = 0.7, -1.3, 2.1
SINGLE_QUBIT_CASES = [
    ("id", "", I2),
    ("x", "", X),
    ("y", "", Y),
    ("z", "", Z),
    ("h", "", H),
    ("s", "", np.diag([1, 1j])),
    ("sdg", "", np.diag([1, -1j])),
    ("t", "", np.diag([1, np.exp(1j * math.pi / 4)])),
    ("tdg", "", np.diag([1, np.exp(-1j * math.pi / 4)])),
    ("sx", "", 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])),
    ("sxdg", "", 0.5 * np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]])),
    ("rx", f"({T})", expm_pauli(T, X)),
    ("ry", f"({T})", expm_pauli(T, Y)),
    ("rz", f"({T})", expm_pauli(T, Z)),
    ("p", f"({L})", np.diag([1, np.exp(1j * L)])),
    ("u1", f"({L})", np.diag([1, np.exp(1j * L)])),
    ("u2", f"({P},{L})", u3(math.pi / 2, P, L)),
    ("u3", f"({T},{P},{L})", u3(T, P, L)),
    ("u", f"({T},{P},{L})", u3(T, P, L)),
    ("U", f"({T},{P},{L})", u3(T, P, L)),
]


@pytest.mark.parametrize(("name", "params", "matrix"), SINGLE_QUBIT_CASES, ids=[c[0] for c in SINGLE_QUBIT_CASES])
def test_single_qubit_gates_match_explicit_matrices(name: str, params: str, matrix: np.ndarray) -> None:
    psi0 = random_state(3)
    c = read_qasm2(HEADER + f"qreg q[3];\n{name}{params} q[1];\n")
    expected = kron_all(I2, matrix, I2) @ psi0
    np.testing.assert_allclose(simulate_circuit(c, psi0), expected, atol=1e-12)


def controlled(u: np.ndarray) -> np.ndarray:
    out = np.eye(2 * u.shape[0], dtype=complex)
    out[u.shape[0] :, u.shape[0] :] = u
    return out


SWAP = np.eye(4)[[0, 2, 1, 3]]
TWO_QUBIT_CASES = [
    ("cx", "", controlled(X)),
    ("CX", "", controlled(X)),
    ("cy", "", controlled(Y)),
    ("cz", "", controlled(Z)),
    ("ch", "", controlled(H)),
    ("swap", "", SWAP),
    ("crz", f"({T})", controlled(expm_pauli(T, Z))),
    ("crx", f"({T})", controlled(expm_pauli(T, X))),
    ("cry", f"({T})", controlled(expm_pauli(T, Y))),
    ("cu1", f"({L})", np.diag([1, 1, 1, np.exp(1j * L)])),
    ("cp", f"({L})", np.diag([1, 1, 1, np.exp(1j * L)])),
    ("cu3", f"({T},{P},{L})", controlled(u3(T, P, L))),
    ("rxx", f"({T})", expm_pauli(T, np.kron(X, X))),
    ("rzz", f"({T})", expm_pauli(T, np.kron(Z, Z))),
]


@pytest.mark.parametrize(("name", "params", "matrix"), TWO_QUBIT_CASES, ids=[c[0] for c in TWO_QUBIT_CASES])
def test_two_qubit_gates_match_explicit_matrices(name: str, params: str, matrix: np.ndarray) -> None:
    psi0 = random_state(3, seed=1)
    # Applied to (q[2], q[0]): reversed and non-adjacent, so the axis bookkeeping is exercised.
    out = simulate_circuit(read_qasm2(HEADER + f"qreg q[3];\n{name}{params} q[2],q[0];\n"), psi0)
    # Reference: relabel the qubits so that the gate acts on the two leading ones, (2, 0, 1).
    t = psi0.reshape(2, 2, 2).transpose(2, 0, 1).reshape(4, 2)
    ref = (matrix @ t).reshape(2, 2, 2).transpose(1, 2, 0).reshape(-1)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_three_qubit_gates() -> None:
    # ccx flips the target iff both controls are 1: |110> -> |111>; cswap swaps on control 1.
    np.testing.assert_allclose(
        simulate_qasm2(HEADER + "qreg q[3];\nx q[0];\nx q[1];\nccx q[0],q[1],q[2];\n"), np.eye(8)[7]
    )
    np.testing.assert_allclose(
        simulate_qasm2(HEADER + "qreg q[3];\nx q[0];\nx q[1];\ncswap q[0],q[1],q[2];\n"), np.eye(8)[5]
    )
    np.testing.assert_allclose(simulate_qasm2(HEADER + "qreg q[3];\nx q[1];\nccx q[0],q[1],q[2];\n"), np.eye(8)[2])


def test_gate_matrix_is_unitary() -> None:
    from shadowlab.acquire.qasm import GATES

    for name, spec in GATES.items():
        m = gate_matrix(name, tuple(0.3 * (k + 1) for k in range(spec.n_params)))
        assert m.shape == (2**spec.n_qubits,) * 2
        np.testing.assert_allclose(m @ m.conj().T, np.eye(m.shape[0]), atol=1e-12, err_msg=name)


def test_broadcast_over_registers() -> None:
    psi = simulate_qasm2(HEADER + "qreg q[3];\nh q;\n")
    np.testing.assert_allclose(psi, np.full(8, 8**-0.5))
    broadcast = read_qasm2(HEADER + "qreg a[2];\nqreg b[2];\nh a;\ncx a, b;\n")
    assert [op.qubits for op in broadcast.ops] == [(0,), (1,), (0, 2), (1, 3)]
    # A register broadcast with a fixed qubit: cx a[0], b; = cx a[0],b[0]; cx a[0],b[1];
    fixed = read_qasm2(HEADER + "qreg a[2];\nqreg b[2];\ncx a[0], b;\n")
    assert [op.qubits for op in fixed.ops] == [(0, 2), (0, 3)]


def test_ghz_circuit_matches_builtin_state() -> None:
    text = HEADER + "qreg q[5];\nh q[0];\n" + "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(4))
    np.testing.assert_allclose(simulate_qasm2(text), ghz(5), atol=1e-15)


def test_parameter_expressions() -> None:
    # Each u1 angle below equals 0.5; u1(a) on |1> gives the phase e^{ia}.
    for expr in [
        "0.5",
        "pi/(2*pi)",
        "-(-0.5)",
        "1 - 0.5",
        "2^-1",
        "0.25*2",
        "(pi - pi) + 5e-1",
        "sin(pi/6)",
        "ln(exp(0.5))",
        "sqrt(0.25)",
        "-pi/2 + pi/2 + .5",
        "cos(0)/2",
    ]:
        c = read_qasm2(HEADER + f"qreg q[1];\nu1({expr}) q[0];\n")
        assert c.ops[0].params == pytest.approx((0.5,), abs=1e-15), expr
    # Precedence: unary minus binds looser than ^ (-2^2 = -4), * before +.
    assert read_qasm2(HEADER + "qreg q[1];\nrz(-2^2 + 3*2) q[0];\n").ops[0].params == (2.0,)


def test_custom_gate_definitions() -> None:
    text = HEADER + (
        "gate bell a, b { h a; cx a, b; }\n"
        "gate half_rx(theta) a { rx(theta/2) a; barrier a; rx(theta/2) a; }\n"
        "gate nested(t) a, b { bell b, a; half_rx(2*t) b; }\n"
        "qreg q[2];\n"
        "nested(0.4) q[0], q[1];\n"
    )
    c = read_qasm2(text)
    assert [(op.name, op.qubits) for op in c.ops] == [("h", (1,)), ("cx", (1, 0)), ("rx", (1,)), ("rx", (1,))]
    assert c.ops[2].params == pytest.approx((0.4,))
    assert all(op.line == 7 for op in c.ops)  # attributed to the call site


def test_comments_barrier_and_terminal_measure_are_ignored(tmp_path: Path) -> None:
    text = (
        '// a comment before the header\nOPENQASM 2.0; // trailing\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
        "h q[0]; barrier q;\ncx q[0], q[1];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[1];\nbarrier q;\n"
    )
    c = read_qasm2(text)
    assert [op.name for op in c.ops] == ["h", "cx"] and c.measured == (0, 1) and c.cregs == (("c", 2),)
    f = tmp_path / "bell.qasm"
    f.write_text(text)
    np.testing.assert_allclose(simulate_qasm2(f), [S2, 0, 0, S2], atol=1e-15)
    assert read_qasm2(str(f)).source == str(f)


ERROR_CASES = [
    # (program, line of the error, words the message must contain)
    ("qreg q[1];\nh q[0];\n", 1, "OPENQASM"),
    ("", 1, "OPENQASM"),
    ("OPENQASM 3.0;\n", 1, "2.0"),
    (HEADER + "qreg q[2];\nfoo q[0];\n", 4, "unknown gate"),
    (HEADER + "qreg q[2];\n\ncx q[0];\n", 5, "2 qubit"),
    (HEADER + "qreg q[2];\nrx q[0];\n", 4, "1 parameter"),
    (HEADER + "qreg q[2];\nh q[2];\n", 4, "out of range"),
    (HEADER + "qreg q[2];\nh r[0];\n", 4, "unknown quantum register"),
    (HEADER + "qreg q[2];\nreset q[0];\n", 4, "reset"),
    (HEADER + "qreg q[2];\ncreg c[2];\nif (c==1) x q[0];\n", 5, "if"),
    (HEADER + "opaque g a;\n", 3, "opaque"),
    (HEADER + "qreg q[2];\ncx q[0], q[0];\n", 4, "same qubit"),
    (HEADER + "qreg a[2];\nqreg b[3];\ncx a, b;\n", 5, "different sizes"),
    ("OPENQASM 2.0;\nqreg q[1];\nh q[0];\n", 3, "qelib1.inc"),
    ('OPENQASM 2.0;\ninclude "other.inc";\n', 2, "qelib1.inc"),
    (HEADER + "qreg q[1];\nrx(theta) q[0];\n", 4, "unknown identifier"),
    (HEADER + "qreg q[1];\nrx(1/0) q[0];\n", 4, "division"),
    (HEADER + "qreg q[1];\nh q[0]\n\nx q[0];\n", 4, "';'"),
    (HEADER + "qreg q[1];\nh q[0]; @\n", 4, "unexpected character"),
    (HEADER + "qreg q[1];\nqreg q[2];\n", 4, "already declared"),
    (HEADER + "qreg q[1];\ncreg c[1];\nmeasure q[0] -> c[0];\nx q[0];\n", 6, "after it was measured"),
    (HEADER + "gate g a { h b; }\n", 3, "unknown qubit argument"),
    (HEADER + "gate h a { x a; }\n", 3, "already defined"),
    (HEADER + "gate g(t) a {\n rx(s) a;\n}\n", 4, "unknown identifier"),
    (HEADER + "creg c[1];\n", 4, "no quantum register"),
]


@pytest.mark.parametrize(("text", "line", "words"), ERROR_CASES, ids=[c[2] + f"@{c[1]}" for c in ERROR_CASES])
def test_errors_carry_line_numbers(text: str, line: int, words: str) -> None:
    with pytest.raises(InputFormatError) as info:
        read_qasm2(text + ("\n" if "\n" not in text else ""))
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)


def test_error_in_file_names_path_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.qasm"
    f.write_text(HEADER + "qreg q[2];\nh q[0];\nccx q[0], q[1];\n")
    with pytest.raises(InputFormatError) as info:
        read_qasm2(f)
    assert info.value.path == str(f) and info.value.line == 5
    assert str(info.value).startswith(f"{f}:5: ")


def test_missing_file_and_too_large_simulation(tmp_path: Path) -> None:
    with pytest.raises(ShadowlabError, match="cannot read"):
        read_qasm2(str(tmp_path / "nope.qasm"))
    big = Circuit(n_qubits=40, ops=(), qregs=(("q", 40),))
    with pytest.raises(StateError, match="at most"):
        simulate_circuit(big)


def test_random_circuit_matches_pennylane() -> None:
    # Independent simulator with the same qubit order (wire 0 = most significant bit) and the
    # same gate conventions, global phases included.
    qml = pytest.importorskip("pennylane")
    gates = [
        ("h", 0, 1, qml.Hadamard),
        ("sx", 0, 1, qml.SX),
        ("s", 0, 1, qml.S),
        ("t", 0, 1, qml.T),
        ("rx", 1, 1, qml.RX),
        ("ry", 1, 1, qml.RY),
        ("rz", 1, 1, qml.RZ),
        ("p", 1, 1, qml.PhaseShift),
        ("u3", 3, 1, qml.U3),
        ("cx", 0, 2, qml.CNOT),
        ("cy", 0, 2, qml.CY),
        ("cz", 0, 2, qml.CZ),
        ("ch", 0, 2, qml.CH),
        ("swap", 0, 2, qml.SWAP),
        ("crx", 1, 2, qml.CRX),
        ("cry", 1, 2, qml.CRY),
        ("crz", 1, 2, qml.CRZ),
        ("cp", 1, 2, qml.ControlledPhaseShift),
        ("rxx", 1, 2, qml.IsingXX),
        ("rzz", 1, 2, qml.IsingZZ),
        ("ccx", 0, 3, qml.Toffoli),
        ("cswap", 0, 3, qml.CSWAP),
    ]
    rng = np.random.default_rng(0)
    n = 4
    ops = []
    text = HEADER + f"qreg q[{n}];\n"
    for _ in range(60):
        name, n_params, n_qubits, cls = gates[rng.integers(len(gates))]
        wires = [int(w) for w in rng.choice(n, n_qubits, replace=False)]
        params = [float(v) for v in rng.uniform(-3, 3, n_params)]
        ops.append((cls, params, wires))
        args = f"({','.join(map(repr, params))})" if params else ""
        text += f"{name}{args} " + ",".join(f"q[{w}]" for w in wires) + ";\n"

    @qml.qnode(qml.device("default.qubit", wires=n))
    def circuit():
        for cls, params, wires in ops:
            cls(*params, wires=wires)
        return qml.state()

    np.testing.assert_allclose(simulate_qasm2(text), np.asarray(circuit()), atol=1e-12)
