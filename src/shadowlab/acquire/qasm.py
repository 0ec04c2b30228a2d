"""A small OpenQASM 2.0 reader and state-vector simulator (no Qiskit needed).

Supported
---------
* ``OPENQASM 2.0;`` header (required, first statement), ``include "qelib1.inc";`` (the gates of
  ``qelib1.inc`` are built in: the file is never read), ``//`` comments.
* ``qreg`` / ``creg`` declarations; several quantum registers are concatenated in declaration
  order (qubit 0 is the first register's ``[0]``).
* Gates: the built-ins ``U`` and ``CX``, and from ``qelib1.inc``: ``id u0 x y z h s sdg t tdg sx
  sxdg rx ry rz p u1 u2 u3 u cx cy cz ch swap ccx cswap crx cry crz cu1 cp cu3 cu csx rxx rzz
  c3x c4x``. Matrices (and so global phases) follow Qiskit's standard gates, e.g.
  ``rz(t) = diag(e^{-it/2}, e^{it/2})``; in a multi-qubit gate the first argument is the most
  significant bit of the gate matrix (controls first).
* Custom ``gate name(params) qargs { ... }`` definitions, expanded at each use.
* Parameter expressions: numbers, ``pi``, ``+ - * / ^``, unary minus, parentheses and the
  functions ``sin cos tan exp ln sqrt`` -- evaluated by a small parser, never ``eval``.
* Broadcasting over whole registers (``h q;``, ``cx a, b;`` with equal-size registers).
* ``barrier`` (ignored) and ``measure`` (ignored: a classical shadow adds its own random-basis
  measurement at the end, so terminal measurements in the file are dropped). A gate acting on
  a qubit after it was measured is rejected, since mid-circuit measurement is not simulated.

Rejected with :class:`~shadowlab.errors.InputFormatError` (carrying the file and line):
``reset``, ``if``, ``opaque``, unknown gates, wrong numbers of parameters or qubits, repeated
qubits in one gate, undeclared registers, out-of-range indices, a missing header.

Qubit order
-----------
The state vector returned has **qubit 0 as the most significant bit** of the index (qubit 0 =
axis 0 of ``state.reshape((2,) * n)``), like PennyLane and the rest of shadowlab. Qiskit's
``Statevector`` is little-endian (qubit 0 is the *least* significant bit): for the same circuit,
``ours == qiskit.reshape((2,) * n).transpose(range(n)[::-1]).ravel()``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from shadowlab.errors import InputFormatError, ShadowlabError, StateError

__all__ = [
    "GATES",
    "Circuit",
    "GateOp",
    "gate_matrix",
    "read_qasm2",
    "simulate_circuit",
    "simulate_qasm2",
]

#: Largest circuit :func:`simulate_circuit` accepts (a 2**30 state vector is 16 GiB).
MAX_SIMULATED_QUBITS = 30

# ----------------------------------------------------------------------------- gate matrices

_I2 = np.eye(2, dtype=np.complex128)
_X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
_Y = np.array([[0, -1j], [1j, 0]], dtype=np.complex128)
_Z = np.diag([1.0, -1.0]).astype(np.complex128)
_H = np.array([[1, 1], [1, -1]], dtype=np.complex128) / math.sqrt(2)
_SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=np.complex128) / 2
_SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.complex128)
_XX = np.kron(_X, _X)


def _u3(theta: float, phi: float, lam: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array(
        [[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]],
        dtype=np.complex128,
    )


def _phase(lam: float) -> np.ndarray:
    return np.diag([1.0, np.exp(1j * lam)]).astype(np.complex128)


def _rx(t: float) -> np.ndarray:
    c, s = math.cos(t / 2), math.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]], dtype=np.complex128)


def _ry(t: float) -> np.ndarray:
    c, s = math.cos(t / 2), math.sin(t / 2)
    return np.array([[c, -s], [s, c]], dtype=np.complex128)


def _rz(t: float) -> np.ndarray:
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)]).astype(np.complex128)


def _controlled(u: np.ndarray, n_controls: int = 1) -> np.ndarray:
    """``u`` controlled on ``n_controls`` leading qubits (all in ``|1>``): the last diagonal block."""
    dim = u.shape[0] << n_controls
    out = np.eye(dim, dtype=np.complex128)
    out[dim - u.shape[0] :, dim - u.shape[0] :] = u
    return out


def _const(m: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: m


class _GateSpec(NamedTuple):
    n_params: int
    n_qubits: int
    matrix: Callable[..., np.ndarray]


#: Every built-in gate: ``name -> (n_params, n_qubits, matrix(*params))``. ``U`` and ``CX`` are
#: OpenQASM's own; the others need ``include "qelib1.inc";``.
GATES: dict[str, _GateSpec] = {
    "U": _GateSpec(3, 1, _u3),
    "CX": _GateSpec(0, 2, _const(_controlled(_X))),
    "id": _GateSpec(0, 1, _const(_I2)),
    "u0": _GateSpec(1, 1, lambda _gamma: _I2),  # an idle of some duration: identity
    "x": _GateSpec(0, 1, _const(_X)),
    "y": _GateSpec(0, 1, _const(_Y)),
    "z": _GateSpec(0, 1, _const(_Z)),
    "h": _GateSpec(0, 1, _const(_H)),
    "s": _GateSpec(0, 1, _const(_phase(math.pi / 2))),
    "sdg": _GateSpec(0, 1, _const(_phase(-math.pi / 2))),
    "t": _GateSpec(0, 1, _const(_phase(math.pi / 4))),
    "tdg": _GateSpec(0, 1, _const(_phase(-math.pi / 4))),
    "sx": _GateSpec(0, 1, _const(_SX)),
    "sxdg": _GateSpec(0, 1, _const(_SX.conj().T)),
    "rx": _GateSpec(1, 1, _rx),
    "ry": _GateSpec(1, 1, _ry),
    "rz": _GateSpec(1, 1, _rz),
    "p": _GateSpec(1, 1, _phase),
    "u1": _GateSpec(1, 1, _phase),
    "u2": _GateSpec(2, 1, lambda phi, lam: _u3(math.pi / 2, phi, lam)),
    "u3": _GateSpec(3, 1, _u3),
    "u": _GateSpec(3, 1, _u3),
    "cx": _GateSpec(0, 2, _const(_controlled(_X))),
    "cy": _GateSpec(0, 2, _const(_controlled(_Y))),
    "cz": _GateSpec(0, 2, _const(_controlled(_Z))),
    "ch": _GateSpec(0, 2, _const(_controlled(_H))),
    "csx": _GateSpec(0, 2, _const(_controlled(_SX))),
    "swap": _GateSpec(0, 2, _const(_SWAP)),
    "crx": _GateSpec(1, 2, lambda t: _controlled(_rx(t))),
    "cry": _GateSpec(1, 2, lambda t: _controlled(_ry(t))),
    "crz": _GateSpec(1, 2, lambda t: _controlled(_rz(t))),
    "cu1": _GateSpec(1, 2, lambda lam: _controlled(_phase(lam))),
    "cp": _GateSpec(1, 2, lambda lam: _controlled(_phase(lam))),
    "cu3": _GateSpec(3, 2, lambda t, p, lam: _controlled(_u3(t, p, lam))),
    "cu": _GateSpec(4, 2, lambda t, p, lam, g: _controlled(np.exp(1j * g) * _u3(t, p, lam))),
    # exp(-i t/2 X(x)X) = cos(t/2) I - i sin(t/2) X(x)X, and exp(-i t/2 Z(x)Z) is diagonal.
    "rxx": _GateSpec(1, 2, lambda t: math.cos(t / 2) * np.eye(4) - 1j * math.sin(t / 2) * _XX),
    "rzz": _GateSpec(1, 2, lambda t: np.diag(np.exp(-0.5j * t * np.array([1, -1, -1, 1])))),
    "ccx": _GateSpec(0, 3, _const(_controlled(_X, 2))),
    "cswap": _GateSpec(0, 3, _const(_controlled(_SWAP))),
    "c3x": _GateSpec(0, 4, _const(_controlled(_X, 3))),
    "c4x": _GateSpec(0, 5, _const(_controlled(_X, 4))),
}
_BUILTIN_WITHOUT_INCLUDE = frozenset({"U", "CX"})


def gate_matrix(name: str, params: tuple[float, ...] = ()) -> np.ndarray:
    """Unitary of a built-in gate, ``(2**k, 2**k)``; the first qubit is the most significant bit.

    Examples
    --------
    >>> gate_matrix("cx").real.astype(int).tolist()
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    """
    spec = GATES.get(name)
    if spec is None:
        raise ShadowlabError(f"unknown gate {name!r}; known gates: {', '.join(sorted(GATES))}")
    if len(params) != spec.n_params:
        raise ShadowlabError(f"gate {name!r} takes {spec.n_params} parameter(s), got {len(params)}")
    return np.asarray(spec.matrix(*params), dtype=np.complex128)


# ----------------------------------------------------------------------------- circuit


@dataclass(frozen=True)
class GateOp:
    """One built-in gate applied to concrete qubits.

    Attributes
    ----------
    name:
        Key of :data:`GATES` (custom gates are expanded into built-ins when read).
    qubits:
        Global qubit indices, in gate-argument order (controls first).
    params:
        Evaluated parameters (radians).
    line:
        1-based source line of the statement that produced the gate.
    """

    name: str
    qubits: tuple[int, ...]
    params: tuple[float, ...]
    line: int

    def matrix(self) -> np.ndarray:
        """The gate's unitary, ``(2**k, 2**k)`` for ``k = len(qubits)``."""
        return gate_matrix(self.name, self.params)


@dataclass(frozen=True)
class Circuit:
    """A parsed OpenQASM 2.0 circuit: unitary gates on ``n_qubits``, measurements dropped.

    Attributes
    ----------
    n_qubits:
        Total number of qubits (all quantum registers, concatenated in declaration order).
    ops:
        The gates in program order, custom gates expanded and broadcasts unrolled.
    qregs, cregs:
        ``(name, size)`` of each register in declaration order.
    measured:
        Sorted qubits that had a (dropped) terminal ``measure``.
    source:
        The file read, or None for text.
    """

    n_qubits: int
    ops: tuple[GateOp, ...]
    qregs: tuple[tuple[str, int], ...]
    cregs: tuple[tuple[str, int], ...] = ()
    measured: tuple[int, ...] = ()
    source: str | None = None

    def qubit_label(self, qubit: int) -> str:
        """``reg[i]`` name of a global qubit index."""
        offset = 0
        for name, size in self.qregs:
            if qubit < offset + size:
                return f"{name}[{qubit - offset}]"
            offset += size
        raise ShadowlabError(f"qubit {qubit} out of range for a {self.n_qubits}-qubit circuit")

    def statevector(self) -> np.ndarray:
        """Simulate from ``|0...0>``; see :func:`simulate_circuit`."""
        return simulate_circuit(self)


def _apply(psi: np.ndarray, mat: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """Apply a ``k``-qubit matrix to the axes ``qubits`` of a ``(2,) * n`` state tensor."""
    k = len(qubits)
    n = psi.ndim
    diag = np.diagonal(mat)
    if np.count_nonzero(mat) == np.count_nonzero(diag):
        # Diagonal gates (phases, rz, cz, rzz, ...): one broadcast multiply, no transposes.
        d = diag.reshape((2,) * k).transpose(np.argsort(qubits))
        shape = [1] * n
        for q in qubits:
            shape[q] = 2
        return psi * d.reshape(shape)
    gate = mat.reshape((2,) * (2 * k))
    # Contract the gate's input axes with the target axes; the output axes come first and are
    # moved back to the targets' positions.
    out = np.tensordot(gate, psi, axes=(list(range(k, 2 * k)), list(qubits)))
    return np.ascontiguousarray(np.moveaxis(out, list(range(k)), list(qubits)))


def simulate_circuit(circuit: Circuit, initial_state: np.ndarray | None = None) -> np.ndarray:
    """State vector after the circuit's gates, from ``|0...0>`` or ``initial_state``.

    Parameters
    ----------
    circuit:
        From :func:`read_qasm2`.
    initial_state:
        Optional ``(2**n,)`` starting vector (qubit 0 = most significant bit); not checked for
        normalization (the gates are unitary, so the norm is preserved).

    Returns
    -------
    numpy.ndarray
        complex128 ``(2**n,)``, qubit 0 = most significant bit (Qiskit's order is reversed).

    Raises
    ------
    StateError
        If the circuit has more than ``MAX_SIMULATED_QUBITS`` qubits or ``initial_state`` has the
        wrong shape.
    """
    n = circuit.n_qubits
    if n > MAX_SIMULATED_QUBITS:
        raise StateError(
            f"a {n}-qubit state vector needs {16 * 2**n / 2**30:.0f} GiB; at most {MAX_SIMULATED_QUBITS} "
            "qubits can be simulated"
        )
    if initial_state is None:
        psi = np.zeros(2**n, dtype=np.complex128)
        psi[0] = 1.0
    else:
        psi = np.array(initial_state, dtype=np.complex128)
        if psi.shape != (2**n,):
            raise StateError(f"initial_state must have shape ({2**n},) for {n} qubits, got {psi.shape}")
    tensor = psi.reshape((2,) * n)
    for op in circuit.ops:
        tensor = _apply(tensor, op.matrix(), op.qubits)
    return tensor.reshape(-1)


# ----------------------------------------------------------------------------- tokens


class _Tok(NamedTuple):
    kind: str  # "id", "num", "str", "sym", "eof"
    text: str
    line: int


_TOKEN_RE = re.compile(
    r"""
    (?P<nl>\n)
  | (?P<ws>[ \t\r\f\v]+)
  | (?P<comment>//[^\n]*)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"[^"\n]*")
  | (?P<sym>->|==|[;,()\[\]{}+\-*/^])
    """,
    re.VERBOSE,
)


def _tokenize(text: str, path: str | None) -> list[_Tok]:
    tokens: list[_Tok] = []
    line = 1
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise InputFormatError(f"unexpected character {text[pos]!r}", path=path, line=line)
        kind = m.lastgroup
        if kind == "nl":
            line += 1
        elif kind not in ("ws", "comment"):
            tokens.append(_Tok(str(kind), m.group(), line))
        pos = m.end()
    tokens.append(_Tok("eof", "", line))
    return tokens


# ----------------------------------------------------------------------------- expressions

# An expression tree: ("num", value) | ("var", name) | ("neg", e) | ("bin", op, a, b) | ("fn", name, e)
_Expr = tuple
_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "ln": math.log,
    "sqrt": math.sqrt,
}


def _eval(e: _Expr, env: dict[str, float]) -> float:
    """Evaluate an expression tree; math errors propagate (ValueError, ZeroDivisionError, ...)."""
    kind = e[0]
    if kind == "num":
        return e[1]
    if kind == "var":
        return env[e[1]]
    if kind == "neg":
        return -_eval(e[1], env)
    if kind == "fn":
        return _FUNCTIONS[e[1]](_eval(e[2], env))
    a, b = _eval(e[2], env), _eval(e[3], env)
    op = e[1]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return math.pow(a, b)


# ----------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class _BodyOp:
    name: str
    params: tuple[_Expr, ...]
    qargs: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class _GateDef:
    name: str
    params: tuple[str, ...]
    qargs: tuple[str, ...]
    body: tuple[_BodyOp, ...]
    line: int


class _Parser:
    """Recursive-descent parser building the flat list of gate operations."""

    def __init__(self, text: str, path: str | None) -> None:
        self.path = path
        self.toks = _tokenize(text, path)
        self.i = 0
        self.included = False
        self.qregs: dict[str, tuple[int, int]] = {}  # name -> (offset, size)
        self.cregs: dict[str, int] = {}
        self.n_qubits = 0
        self.defs: dict[str, _GateDef] = {}
        self.ops: list[GateOp] = []
        self.measured: dict[int, int] = {}  # qubit -> line of its measure

    # -- token helpers
    def error(self, message: str, tok: _Tok | None = None) -> InputFormatError:
        return InputFormatError(message, path=self.path, line=(tok or self.peek()).line)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek().kind in ("sym", "id") and self.peek().text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str, what: str = "") -> _Tok:
        prev = self.toks[self.i - 1] if self.i else None
        tok = self.next()
        if tok.text != text or tok.kind not in ("sym", "id"):
            got = "end of file" if tok.kind == "eof" else repr(tok.text)
            message = f"expected {text!r}{' ' + what if what else ''}, got {got}"
            if prev is not None and prev.line < tok.line:
                # Something is missing at the end of a line (typically a ';'): point at that
                # line, not at wherever the next token happens to be.
                raise InputFormatError(f"{message} (line {tok.line})", path=self.path, line=prev.line)
            raise self.error(message, tok)
        return tok

    def expect_id(self, what: str) -> _Tok:
        tok = self.next()
        if tok.kind != "id":
            got = "end of file" if tok.kind == "eof" else repr(tok.text)
            raise self.error(f"expected {what} (an identifier), got {got}", tok)
        return tok

    def expect_int(self, what: str) -> int:
        tok = self.next()
        if tok.kind != "num" or not tok.text.isdigit():
            raise self.error(f"expected {what} (a non-negative integer), got {tok.text or 'end of file'!r}", tok)
        return int(tok.text)

    # -- program
    def parse(self) -> None:
        first = self.peek()
        if first.kind != "id" or first.text != "OPENQASM":
            if first.kind == "eof":  # nothing but blanks and comments: point at the start
                raise InputFormatError("missing 'OPENQASM 2.0;' header: the program is empty", path=self.path, line=1)
            raise self.error(f"missing 'OPENQASM 2.0;' header: the file must start with it, got {first.text!r}", first)
        self.next()
        version = self.next()
        if version.kind != "num" or float(version.text) != 2.0:
            raise self.error(f"only OpenQASM 2.0 is supported, got version {version.text!r}", version)
        self.expect(";", "after the OPENQASM version")
        while self.peek().kind != "eof":
            self.statement()

    def statement(self) -> None:
        tok = self.peek()
        if tok.kind != "id":
            raise self.error(f"expected a statement, got {tok.text!r}", tok)
        word = tok.text
        if word == "include":
            self.next()
            name = self.next()
            if name.kind != "str":
                raise self.error('expected a file name in quotes after include, e.g. include "qelib1.inc";', name)
            if name.text != '"qelib1.inc"':
                raise self.error(f'only include "qelib1.inc" is supported (built in), got include {name.text}', name)
            self.expect(";")
            self.included = True
        elif word in ("qreg", "creg"):
            self.declare_register()
        elif word == "gate":
            self.gate_definition()
        elif word == "measure":
            self.measure()
        elif word == "barrier":
            self.next()
            self.arguments()  # validated, then ignored: it only constrains compilers
            self.expect(";", "after barrier arguments")
        elif word in ("reset", "if", "opaque"):
            reason = {
                "reset": "resets are not unitary and cannot be simulated as a state vector",
                "if": "classically controlled gates need mid-circuit measurement, which is not simulated",
                "opaque": "opaque gates have no definition to simulate",
            }[word]
            raise self.error(f"{word!r} is not supported: {reason}", tok)
        elif word == "OPENQASM":
            raise self.error("OPENQASM header repeated", tok)
        else:
            self.gate_call()

    def declare_register(self) -> None:
        kind = self.next().text
        name = self.expect_id(f"{kind} name")
        if name.text in self.qregs or name.text in self.cregs:
            raise self.error(f"register {name.text!r} is already declared", name)
        self.expect("[", f"after the {kind} name")
        size = self.expect_int(f"{kind} size")
        if size < 1:
            raise self.error(f"register {name.text!r} must have size >= 1, got {size}", name)
        self.expect("]")
        self.expect(";", f"after the {kind} declaration")
        if kind == "qreg":
            self.qregs[name.text] = (self.n_qubits, size)
            self.n_qubits += size
        else:
            self.cregs[name.text] = size

    # -- arguments: reg or reg[i]
    def arguments(self) -> list[tuple[_Tok, int | None]]:
        args = [self.argument()]
        while self.accept(","):
            args.append(self.argument())
        return args

    def argument(self) -> tuple[_Tok, int | None]:
        name = self.expect_id("a register name")
        if self.accept("["):
            index = self.expect_int("an index")
            self.expect("]")
            return name, index
        return name, None

    def qubits_of(self, arg: tuple[_Tok, int | None]) -> list[int]:
        name, index = arg
        if name.text not in self.qregs:
            hint = " (it is a classical register)" if name.text in self.cregs else ""
            raise self.error(f"unknown quantum register {name.text!r}{hint}", name)
        offset, size = self.qregs[name.text]
        if index is None:
            return list(range(offset, offset + size))
        if index >= size:
            raise self.error(f"index {index} out of range for register {name.text}[{size}] (valid 0..{size - 1})", name)
        return [offset + index]

    def broadcast(self, args: list[tuple[_Tok, int | None]], what: str) -> list[tuple[int, ...]]:
        """Unroll whole-register arguments: all registers must have the same size."""
        lists = [self.qubits_of(a) for a in args]
        sizes = {len(q) for q, (_, index) in zip(lists, args, strict=True) if index is None}
        if len(sizes) > 1:
            raise self.error(
                f"{what}: whole registers of different sizes {sorted(sizes)} cannot be broadcast", args[0][0]
            )
        reps = sizes.pop() if sizes else 1
        # Indexed arguments repeat; whole registers advance with j.
        return [
            tuple(q[0] if index is not None else q[j] for q, (_, index) in zip(lists, args, strict=True))
            for j in range(reps)
        ]

    # -- measurement
    def measure(self) -> None:
        self.next()
        q = self.argument()
        self.expect("->", "in measure (measure q[i] -> c[j];)")
        c = self.argument()
        self.expect(";", "after measure")
        qubits = self.qubits_of(q)
        cname, cindex = c
        if cname.text not in self.cregs:
            raise self.error(f"unknown classical register {cname.text!r}", cname)
        csize = self.cregs[cname.text]
        if cindex is not None and cindex >= csize:
            raise self.error(f"index {cindex} out of range for register {cname.text}[{csize}]", cname)
        n_bits = csize if cindex is None else 1
        if (q[1] is None) != (cindex is None) or len(qubits) != n_bits:
            raise self.error(f"measure needs matching arguments: {len(qubits)} qubit(s) into {n_bits} bit(s)", q[0])
        for qubit in qubits:
            self.measured.setdefault(qubit, q[0].line)

    # -- expressions
    def expression(self, params: tuple[str, ...]) -> _Expr:
        e = self.term(params)
        while self.peek().kind == "sym" and self.peek().text in ("+", "-"):
            op = self.next().text
            e = ("bin", op, e, self.term(params))
        return e

    def term(self, params: tuple[str, ...]) -> _Expr:
        e = self.unary(params)
        while self.peek().kind == "sym" and self.peek().text in ("*", "/"):
            op = self.next().text
            e = ("bin", op, e, self.unary(params))
        return e

    def unary(self, params: tuple[str, ...]) -> _Expr:
        if self.accept("-"):
            return ("neg", self.unary(params))
        if self.accept("+"):
            return self.unary(params)
        base = self.atom(params)
        if self.accept("^"):  # right-associative, binds tighter than unary minus on its left
            return ("bin", "^", base, self.unary(params))
        return base

    def atom(self, params: tuple[str, ...]) -> _Expr:
        tok = self.next()
        if tok.kind == "num":
            return ("num", float(tok.text))
        if tok.kind == "id":
            if tok.text == "pi":
                return ("num", math.pi)
            if tok.text in _FUNCTIONS:
                self.expect("(", f"after function {tok.text}")
                arg = self.expression(params)
                self.expect(")", f"closing {tok.text}(")
                return ("fn", tok.text, arg)
            if tok.text in params:
                return ("var", tok.text)
            where = f"; parameters in scope: {', '.join(params)}" if params else ""
            raise self.error(f"unknown identifier {tok.text!r} in an expression{where}", tok)
        if tok.kind == "sym" and tok.text == "(":
            e = self.expression(params)
            self.expect(")", "closing a parenthesis")
            return e
        got = "end of file" if tok.kind == "eof" else repr(tok.text)
        raise self.error(f"expected a number, pi, a parameter or '(' in an expression, got {got}", tok)

    def evaluate(self, e: _Expr, env: dict[str, float], line: int) -> float:
        try:
            value = _eval(e, env)
        except (ArithmeticError, ValueError) as exc:
            raise InputFormatError(f"cannot evaluate a gate parameter: {exc}", path=self.path, line=line) from None
        if not math.isfinite(value):
            raise InputFormatError(f"gate parameter evaluates to {value}", path=self.path, line=line)
        return value

    def parameter_list(self, params: tuple[str, ...]) -> list[_Expr]:
        exprs: list[_Expr] = []
        if self.accept("("):
            if not self.accept(")"):
                exprs.append(self.expression(params))
                while self.accept(","):
                    exprs.append(self.expression(params))
                self.expect(")", "closing the parameter list")
        return exprs

    # -- gates
    def lookup(self, tok: _Tok) -> tuple[int, int]:
        """``(n_params, n_qubits)`` of a usable gate name, or raise."""
        name = tok.text
        if name in self.defs:
            d = self.defs[name]
            return len(d.params), len(d.qargs)
        if name in GATES and (self.included or name in _BUILTIN_WITHOUT_INCLUDE):
            return GATES[name].n_params, GATES[name].n_qubits
        if name in GATES:
            raise self.error(f'gate {name!r} is defined in qelib1.inc: add include "qelib1.inc"; after the header', tok)
        raise self.error(
            f"unknown gate {name!r}; supported: {', '.join(sorted(GATES))} and gates defined in the file", tok
        )

    def check_arity(self, tok: _Tok, n_params: int, n_qubits: int, got_params: int, got_qubits: int) -> None:
        if got_params != n_params:
            raise self.error(f"gate {tok.text!r} takes {n_params} parameter(s), got {got_params}", tok)
        if got_qubits != n_qubits:
            raise self.error(f"gate {tok.text!r} acts on {n_qubits} qubit(s), got {got_qubits}", tok)

    def gate_call(self) -> None:
        tok = self.next()
        n_params, n_qubits = self.lookup(tok)
        exprs = self.parameter_list(())
        args = self.arguments()
        self.expect(";", f"after the arguments of {tok.text}")
        self.check_arity(tok, n_params, n_qubits, len(exprs), len(args))
        values = tuple(self.evaluate(e, {}, tok.line) for e in exprs)
        for qubits in self.broadcast(args, f"gate {tok.text!r}"):
            if len(set(qubits)) != len(qubits):
                raise self.error(f"gate {tok.text!r} uses the same qubit twice: {self.labels(qubits)}", tok)
            for q in qubits:
                if q in self.measured:
                    raise self.error(
                        f"gate {tok.text!r} on {self.labels((q,))} after it was measured (line {self.measured[q]}): "
                        "mid-circuit measurement is not supported; move measurements to the end",
                        tok,
                    )
            self.emit(tok.text, values, qubits, tok.line)

    def labels(self, qubits: tuple[int, ...]) -> str:
        names = []
        for q in qubits:
            for reg, (offset, size) in self.qregs.items():
                if offset <= q < offset + size:
                    names.append(f"{reg}[{q - offset}]")
        return ", ".join(names)

    def emit(self, name: str, values: tuple[float, ...], qubits: tuple[int, ...], line: int) -> None:
        """Append a gate, expanding custom definitions recursively (all attributed to ``line``)."""
        d = self.defs.get(name)
        if d is None:
            self.ops.append(GateOp(name, qubits, values, line))
            return
        env = dict(zip(d.params, values, strict=True))
        wire = dict(zip(d.qargs, qubits, strict=True))
        for op in d.body:
            sub = tuple(self.evaluate(e, env, line) for e in op.params)
            self.emit(op.name, sub, tuple(wire[a] for a in op.qargs), line)

    def gate_definition(self) -> None:
        start = self.next()
        name = self.expect_id("a gate name")
        if name.text in self.defs or (name.text in GATES and (self.included or name.text in _BUILTIN_WITHOUT_INCLUDE)):
            raise self.error(f"gate {name.text!r} is already defined", name)
        if name.text in ("measure", "barrier", "reset", "if", "gate", "opaque", "qreg", "creg", "include", "pi"):
            raise self.error(f"{name.text!r} is a reserved word and cannot name a gate", name)
        params: list[str] = []
        if self.accept("(") and not self.accept(")"):
            params.append(self.expect_id("a parameter name").text)
            while self.accept(","):
                params.append(self.expect_id("a parameter name").text)
            self.expect(")", "closing the parameter names")
        qargs = [self.expect_id("a qubit argument name").text]
        while self.accept(","):
            qargs.append(self.expect_id("a qubit argument name").text)
        for names, what in ((params, "parameter"), (qargs, "qubit argument")):
            if len(set(names)) != len(names):
                raise self.error(f"gate {name.text!r}: repeated {what} name", name)
        self.expect("{", f"opening the body of gate {name.text}")
        body: list[_BodyOp] = []
        while not self.accept("}"):
            tok = self.next()
            if tok.kind == "eof":
                raise self.error(f"gate {name.text!r} (line {start.line}): missing closing '}}'", tok)
            if tok.kind != "id":
                raise self.error(f"expected a gate call in the body of {name.text!r}, got {tok.text!r}", tok)
            if tok.text == "barrier":
                self.body_qargs(tuple(qargs), name.text)
                self.expect(";", "after barrier")
                continue
            if tok.text in ("measure", "reset", "if", "gate", "opaque", "qreg", "creg"):
                raise self.error(f"{tok.text!r} is not allowed inside a gate body", tok)
            n_params, n_qubits = self.lookup(tok)
            exprs = self.parameter_list(tuple(params))
            used = self.body_qargs(tuple(qargs), name.text)
            self.expect(";", f"after the arguments of {tok.text}")
            self.check_arity(tok, n_params, n_qubits, len(exprs), len(used))
            if len(set(used)) != len(used):
                raise self.error(f"gate {tok.text!r} uses the same qubit argument twice", tok)
            body.append(_BodyOp(tok.text, tuple(exprs), used, tok.line))
        self.defs[name.text] = _GateDef(name.text, tuple(params), tuple(qargs), tuple(body), start.line)

    def body_qargs(self, qargs: tuple[str, ...], gate: str) -> tuple[str, ...]:
        used = [self.expect_id("a qubit argument").text]
        while self.accept(","):
            used.append(self.expect_id("a qubit argument").text)
        for a in used:
            if a not in qargs:
                raise self.error(
                    f"unknown qubit argument {a!r} in the body of {gate!r} (arguments: {', '.join(qargs)}; "
                    "indexing registers is not allowed inside a gate)"
                )
        return tuple(used)


# ----------------------------------------------------------------------------- entry points


def _source(path_or_text: str | os.PathLike[str]) -> tuple[str, str | None]:
    """Return ``(text, path)``: a PathLike or a one-line string without ';' is a file path."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text or ";" in path_or_text):
        return path_or_text, None
    path = Path(path_or_text)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise ShadowlabError(f"{path}: cannot read the QASM file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"not a UTF-8 text file ({exc.reason})", path=path) from None


def read_qasm2(path_or_text: str | os.PathLike[str]) -> Circuit:
    """Parse an OpenQASM 2.0 program (see the module docstring for what is supported).

    Parameters
    ----------
    path_or_text:
        A path (``str`` or ``os.PathLike``) or the program text itself. A ``str`` counts as text
        when it contains a newline or a ``;`` (every program does), otherwise as a path.

    Returns
    -------
    Circuit
        Gates on global qubits (registers concatenated in declaration order); terminal
        measurements and barriers dropped.

    Raises
    ------
    InputFormatError
        With the file (if any) and 1-based line of the first problem.

    Examples
    --------
    >>> c = read_qasm2('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; h q[0]; cx q[0], q[1];')
    >>> c.n_qubits, [(op.name, op.qubits) for op in c.ops]
    (2, [('h', (0,)), ('cx', (0, 1))])
    """
    text, path = _source(path_or_text)
    parser = _Parser(text, path)
    parser.parse()
    if parser.n_qubits == 0:
        raise InputFormatError("the program declares no quantum register (qreg)", path=path, line=parser.peek().line)
    return Circuit(
        n_qubits=parser.n_qubits,
        ops=tuple(parser.ops),
        qregs=tuple((name, size) for name, (_, size) in parser.qregs.items()),
        cregs=tuple(parser.cregs.items()),
        measured=tuple(sorted(parser.measured)),
        source=path,
    )


def simulate_qasm2(text_or_path: str | os.PathLike[str]) -> np.ndarray:
    """State vector of an OpenQASM 2.0 program run from ``|0...0>`` (measurements ignored).

    Returns
    -------
    numpy.ndarray
        complex128 ``(2**n,)`` with **qubit 0 the most significant bit** of the index (the
        reverse of Qiskit's little-endian ``Statevector``); qubit 0 is the first register's
        ``[0]``.

    Examples
    --------
    >>> psi = simulate_qasm2('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; h q[0]; cx q[0], q[1];')
    >>> psi.real.round(4).tolist()  # (|00> + |11>) / sqrt(2)
    [0.7071, 0.0, 0.0, 0.7071]
    """
    return simulate_circuit(read_qasm2(text_or_path))
