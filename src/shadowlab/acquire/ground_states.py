"""Ground states of 1D and 2D spin models on lattices, by exact (sparse) diagonalization.

Lattices
--------
Specs are ``chain:N`` (open chain), ``ring:N`` (periodic chain) and ``grid:LxW`` (open ``L x W``
square grid: ``L`` rows, ``W`` columns). Qubit ``q`` of a grid sits at row ``q // W``, column
``q % W`` (row-major). **Edge order** (the order of per-edge couplings and of
``Lattice.edges``):

* chain: ``(0, 1), (1, 2), ..., (N-2, N-1)``;
* ring: the chain's edges, then the wrap-around edge ``(0, N-1)`` (``N >= 3``);
* grid: all horizontal edges ``(q, q+1)`` row by row (row 0 first, left to right), then all
  vertical edges ``(q, q+W)`` in increasing ``q``.

Every edge is stored as ``(i, j)`` with ``i < j``.

Models (Pauli operators, not spin-1/2 operators; energies in units of the couplings)
-------------------------------------------------------------------------------------
* ``tfim``: transverse-field Ising ``H = -sum_(ij) J_ij Z_i Z_j - sum_i h_i X_i`` (``J > 0`` is
  ferromagnetic; the critical point of the uniform chain is ``h = J``).
* ``xxz``: ``H = sum_(ij) J_ij (X_i X_j + Y_i Y_j + Delta Z_i Z_j)``; the *uniform* form is the
  bond-alternating chain, edge ``k`` of the chain having ``J1`` for even ``k`` and ``J2`` for
  odd ``k`` (``J > 0`` antiferromagnetic).
* ``heisenberg``: ``H = sum_(ij) J_ij (X_i X_j + Y_i Y_j + Z_i Z_j)``; random instances draw
  ``J_ij`` uniformly in ``[0, 2]`` per edge (Huang et al., Science 377, eabk3333 (2022)).

Every model is reduced to the common :class:`Couplings` form
``H = sum_e (cxx_e X X + cyy_e Y Y + czz_e Z Z) + sum_i cx_i X_i``, which the sparse builder, the
DMRG MPO builder (:mod:`shadowlab.acquire.mps`) and the energy-from-correlations check share.

Parameter vectors
-----------------
A model instance is defined by a parameter vector in one of two *forms*:

====================  =============================  ===========================================
model                 ``"uniform"``                  ``"local"``
====================  =============================  ===========================================
``tfim``              ``(h,)`` with ``J = 1``        ``(h_0, ..., h_{n-1})`` with ``J = 1``
``xxz``               ``(J1, J2, Delta)``            ``(J_e for each edge..., Delta)``
``heisenberg``        ``(J,)``                       ``(J_e for each edge...)``
====================  =============================  ===========================================

State vectors follow :mod:`shadowlab.acquire.statevector`: **qubit 0 is the most significant
bit** of the basis-state index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

from shadowlab.acquire.states import lowest_two_eigenpairs, single_threaded_blas, sparse_pauli_sum_matrix
from shadowlab.acquire.statevector import validate_statevector
from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

__all__ = [
    "DEGENERACY_TOL",
    "FORMS",
    "LATTICES",
    "MAX_EXACT_QUBITS",
    "MODELS",
    "Couplings",
    "GroundState",
    "Lattice",
    "check_form",
    "check_model",
    "couplings_from_parameters",
    "default_uniform_parameters",
    "exact_ground_state",
    "exact_pair_correlations",
    "hamiltonian_matrix",
    "hamiltonian_paulis",
    "heisenberg_couplings",
    "parameter_names",
    "parse_lattice",
    "single_site_expectations",
    "single_threaded_blas",
    "tfim_couplings",
    "xxz_couplings",
]

#: Supported models.
MODELS = ("tfim", "xxz", "heisenberg")
#: Supported lattice kinds (spec prefixes).
LATTICES = ("chain", "ring", "grid")
#: Parameter-vector forms (see the module docstring).
FORMS = ("uniform", "local")

#: Largest qubit count accepted by exact diagonalization: a 2^20 state is 16 MiB, but the
#: sparse Hamiltonian of a 20-qubit model holds ~(edges + 1) 2^20 entries (a few hundred MB).
MAX_EXACT_QUBITS = 20

#: Relative gap ``(E1 - E0) / max(1, |E0|)`` at or below which the ground space is flagged as
#: (near-)degenerate: below it the Lanczos vector is an arbitrary, solver-dependent vector of
#: the (quasi-)degenerate space.
DEGENERACY_TOL = 1e-8

# Relative accuracy asked of ARPACK: ~20% fewer iterations than machine precision (tol=0) on
# critical chains, and still far below DEGENERACY_TOL and the 1e-8 energy checks.
_EIGSH_TOL = 1e-12

_DEFAULTS: dict[str, dict[str, float]] = {
    "tfim": {"h": 1.0},
    "xxz": {"J1": 1.0, "J2": 1.0, "Delta": 1.0},
    "heisenberg": {"J": 1.0},
}


# ----------------------------------------------------------------------------- lattices


@dataclass(frozen=True)
class Lattice:
    """A finite lattice of qubits with its nearest-neighbour edges.

    Parameters
    ----------
    kind:
        ``"chain"`` (open), ``"ring"`` (periodic) or ``"grid"`` (open square grid).
    shape:
        ``(N,)`` for chains and rings; ``(L, W)`` (rows, columns) for grids.

    Examples
    --------
    >>> lat = parse_lattice("grid:2x3")
    >>> lat.n_qubits, lat.edges.tolist()
    (6, [[0, 1], [1, 2], [3, 4], [4, 5], [0, 3], [1, 4], [2, 5]])
    """

    kind: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in LATTICES:
            raise ShadowlabError(f"unknown lattice {self.kind!r}; allowed: chain:N, ring:N, grid:LxW")
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != (2 if self.kind == "grid" else 1):
            raise ShadowlabError(f"lattice {self.kind!r} needs {'(L, W)' if self.kind == 'grid' else '(N,)'}, "
                                 f"got shape {shape}")
        minimum = 3 if self.kind == "ring" else 2
        if self.kind == "grid":
            if min(shape) < 1 or shape[0] * shape[1] < 2:
                raise ShadowlabError(f"grid:{shape[0]}x{shape[1]}: a grid needs at least 2 qubits")
        elif shape[0] < minimum:
            raise ShadowlabError(f"{self.kind}:{shape[0]}: a {self.kind} needs at least {minimum} qubits")
        object.__setattr__(self, "shape", shape)

    @property
    def n_qubits(self) -> int:
        """Number of sites (qubits)."""
        return int(np.prod(self.shape))

    @property
    def spec(self) -> str:
        """The spec string (``chain:N``, ``ring:N`` or ``grid:LxW``)."""
        if self.kind == "grid":
            return f"grid:{self.shape[0]}x{self.shape[1]}"
        return f"{self.kind}:{self.shape[0]}"

    @property
    def is_open_chain(self) -> bool:
        """True for an open chain (also a 1 x W or L x 1 grid): the MPS/DMRG geometry."""
        return self.kind == "chain" or (self.kind == "grid" and min(self.shape) == 1)

    @property
    def edges(self) -> np.ndarray:
        """``(n_edges, 2)`` int64 nearest-neighbour pairs ``(i, j)``, ``i < j``, in edge order."""
        if self.kind in ("chain", "ring"):
            n = self.shape[0]
            pairs = [(i, i + 1) for i in range(n - 1)]
            if self.kind == "ring":
                pairs.append((0, n - 1))
        else:
            rows, cols = self.shape
            pairs = [(r * cols + c, r * cols + c + 1) for r in range(rows) for c in range(cols - 1)]
            pairs += [(q, q + cols) for q in range((rows - 1) * cols)]
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.edges.shape[0])


_LATTICE_RE = re.compile(r"^\s*(chain|ring|grid)\s*:\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$")


def parse_lattice(spec: str | Lattice) -> Lattice:
    """Parse ``chain:N``, ``ring:N`` or ``grid:LxW`` (a :class:`Lattice` is returned as is).

    Examples
    --------
    >>> parse_lattice("ring:8").edges[-1].tolist()
    [0, 7]
    """
    if isinstance(spec, Lattice):
        return spec
    m = _LATTICE_RE.match(str(spec))
    if m is None or (m.group(1) == "grid") != (m.group(3) is not None):
        raise ShadowlabError(f"unknown lattice {spec!r}; allowed: chain:N (open chain), ring:N (periodic chain), "
                             "grid:LxW (open L x W grid)")
    kind = m.group(1)
    shape = (int(m.group(2)), int(m.group(3))) if kind == "grid" else (int(m.group(2)),)
    return Lattice(kind, shape)


# ----------------------------------------------------------------------------- couplings


@dataclass(frozen=True)
class Couplings:
    """A Hamiltonian in the common form ``sum_e (cxx X X + cyy Y Y + czz Z Z)_e + sum_i cx_i X_i``.

    Parameters
    ----------
    lattice:
        The lattice; edge ``e`` of the arrays is ``lattice.edges[e]``.
    cxx, cyy, czz:
        ``(n_edges,)`` float64 coefficients of the Pauli products on each edge.
    cx:
        ``(n_qubits,)`` float64 coefficient of ``X_i`` (a transverse field ``h_i`` enters as
        ``-h_i``).
    """

    lattice: Lattice
    cxx: np.ndarray
    cyy: np.ndarray
    czz: np.ndarray
    cx: np.ndarray

    def __post_init__(self) -> None:
        e, n = self.lattice.n_edges, self.lattice.n_qubits
        for name, size in (("cxx", e), ("cyy", e), ("czz", e), ("cx", n)):
            arr = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if arr.shape != (size,):
                raise ShadowlabError(f"couplings {name} must have {size} entries, got {arr.size}")
            if not np.all(np.isfinite(arr)):
                raise ShadowlabError(f"couplings {name} must be finite")
            object.__setattr__(self, name, arr)

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return self.lattice.n_qubits

    def energy(self, xx: np.ndarray, yy: np.ndarray, zz: np.ndarray, x: np.ndarray) -> float:
        """``<H>`` from the ``(n, n)`` correlation matrices and the ``(n,)`` values ``<X_i>``."""
        i, j = self.lattice.edges.T
        return float(self.cxx @ xx[i, j] + self.cyy @ yy[i, j] + self.czz @ zz[i, j] + self.cx @ x)


def _per(value: Any, size: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(size, float(arr))
    if arr.shape != (size,):
        raise ShadowlabError(f"{what} must be one number or {size} numbers, got shape {arr.shape}")
    return arr.copy()


def tfim_couplings(lattice: str | Lattice, h: float | np.ndarray = 1.0, J: float | np.ndarray = 1.0) -> Couplings:
    """``H = -sum_(ij) J_ij Z_i Z_j - sum_i h_i X_i`` (``h`` per site or one value; ``J`` per edge or one)."""
    lat = parse_lattice(lattice)
    zeros = np.zeros(lat.n_edges)
    return Couplings(lat, zeros, zeros, -_per(J, lat.n_edges, "tfim J"), -_per(h, lat.n_qubits, "tfim h"))


def xxz_couplings(lattice: str | Lattice, J1: float = 1.0, J2: float = 1.0, Delta: float = 1.0,
                  J: np.ndarray | None = None) -> Couplings:
    """``H = sum_(ij) J_ij (X_i X_j + Y_i Y_j + Delta Z_i Z_j)``.

    Without ``J``, edge ``k`` (in edge order) gets ``J1`` for even ``k`` and ``J2`` for odd
    ``k``: the bond-alternating (dimerized) chain, defined on chains and rings only (an odd
    ring has two ``J1`` edges meeting at qubit 0). With ``J``, one coupling per edge.
    """
    lat = parse_lattice(lattice)
    if J is None:
        if lat.kind == "grid" and not lat.is_open_chain:
            raise ShadowlabError("xxz: bond alternation (J1, J2) is defined on chains and rings; on a grid give "
                                 "per-edge couplings (the 'local' parameter form)")
        k = np.arange(lat.n_edges)
        jj = np.where(k % 2 == 0, float(J1), float(J2))
    else:
        jj = _per(J, lat.n_edges, "xxz J")
    return Couplings(lat, jj, jj.copy(), float(Delta) * jj, np.zeros(lat.n_qubits))


def heisenberg_couplings(lattice: str | Lattice, J: float | np.ndarray = 1.0) -> Couplings:
    """``H = sum_(ij) J_ij (X_i X_j + Y_i Y_j + Z_i Z_j)`` (``J`` per edge or one value)."""
    lat = parse_lattice(lattice)
    jj = _per(J, lat.n_edges, "heisenberg J")
    return Couplings(lat, jj, jj.copy(), jj.copy(), np.zeros(lat.n_qubits))


def check_model(model: str) -> str:
    """Return ``model`` normalized, or raise naming the allowed models."""
    m = str(model).strip().lower()
    if m not in MODELS:
        raise ShadowlabError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
    return m


def check_form(form: str) -> str:
    """Return ``form`` if it is a known parameter form, else raise."""
    if form not in FORMS:
        raise ShadowlabError(f"unknown parameter form {form!r}; allowed: {', '.join(FORMS)}")
    return form


def parameter_names(model: str, lattice: str | Lattice, form: str) -> tuple[str, ...]:
    """Names of the parameter columns of ``model`` on ``lattice`` in ``form``.

    Per-edge names are ``J[i-j]``, per-site names ``h[i]``.

    Examples
    --------
    >>> parameter_names("xxz", "chain:3", "local")
    ('J[0-1]', 'J[1-2]', 'Delta')
    """
    model, form = check_model(model), check_form(form)
    lat = parse_lattice(lattice)
    if form == "uniform":
        return tuple(_DEFAULTS[model])
    if model == "tfim":
        return tuple(f"h[{i}]" for i in range(lat.n_qubits))
    edge_names = tuple(f"J[{i}-{j}]" for i, j in lat.edges.tolist())
    return (*edge_names, "Delta") if model == "xxz" else edge_names


def default_uniform_parameters(model: str) -> dict[str, float]:
    """Default value of each uniform-form parameter (``h = 1``; ``J1 = J2 = Delta = 1``; ``J = 1``)."""
    return dict(_DEFAULTS[check_model(model)])


def couplings_from_parameters(model: str, lattice: str | Lattice, parameters: Any, form: str) -> Couplings:
    """The :class:`Couplings` of one instance given its parameter vector (see the module docstring)."""
    model, form = check_model(model), check_form(form)
    lat = parse_lattice(lattice)
    p = np.asarray(parameters, dtype=np.float64).reshape(-1)
    names = parameter_names(model, lat, form)
    if p.size != len(names):
        raise ShadowlabError(f"{model} on {lat.spec} in the {form!r} form takes {len(names)} parameters "
                             f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}), got {p.size}")
    if not np.all(np.isfinite(p)):
        raise ShadowlabError(f"{model}: parameters must be finite, got {p.tolist()}")
    if model == "tfim":
        return tfim_couplings(lat, h=p[0] if form == "uniform" else p)
    if model == "xxz":
        if form == "uniform":
            return xxz_couplings(lat, J1=p[0], J2=p[1], Delta=p[2])
        return xxz_couplings(lat, Delta=p[-1], J=p[:-1])
    return heisenberg_couplings(lat, p[0] if form == "uniform" else p)


# ----------------------------------------------------------------------------- Hamiltonian


def hamiltonian_paulis(couplings: Couplings) -> PauliSum:
    """The Hamiltonian as a :class:`PauliSum` (zero coefficients dropped)."""
    terms: list[PauliString] = []
    coeffs: list[float] = []
    for (i, j), cs in zip(couplings.lattice.edges.tolist(),
                          zip(couplings.cxx, couplings.cyy, couplings.czz, strict=True), strict=True):
        for code, c in enumerate(cs):
            if c != 0.0:
                terms.append(PauliString((i, j), (code, code)))
                coeffs.append(float(c))
    for i, c in enumerate(couplings.cx.tolist()):
        if c != 0.0:
            terms.append(PauliString((i,), (0,)))
            coeffs.append(c)
    return PauliSum(couplings.n_qubits, tuple(terms), np.array(coeffs, dtype=np.float64))


def _check_exact_size(n: int) -> None:
    if n > MAX_EXACT_QUBITS:
        raise ShadowlabError(f"{n} qubits is too many for exact diagonalization (at most {MAX_EXACT_QUBITS}); "
                             "use DMRG (method='dmrg', open chains) for larger systems")


def hamiltonian_matrix(couplings: Couplings) -> scipy.sparse.csr_array:
    """Sparse real ``(2^n, 2^n)`` Hamiltonian, qubit 0 = most significant bit.

    Built from bit masks on the basis-index array (no Kronecker products): all terms that flip
    the same qubits fill one generalized diagonal (see
    :func:`shadowlab.acquire.states.sparse_pauli_sum_matrix`). ``X X + Y Y`` on an edge
    cancels on aligned spins, so a Heisenberg edge stores only ``2^(n-1)`` off-diagonal entries.
    """
    _check_exact_size(couplings.n_qubits)
    return sparse_pauli_sum_matrix(hamiltonian_paulis(couplings))


# ----------------------------------------------------------------------------- ground state


@dataclass(frozen=True)
class GroundState:
    """Result of :func:`exact_ground_state`.

    Attributes
    ----------
    energy:
        Lowest eigenvalue ``E0`` (units of the couplings).
    state:
        Normalized complex128 ``(2**n,)`` ground-state vector, qubit 0 = most significant bit,
        global phase fixed by :func:`shadowlab.acquire.states.fix_global_phase`.
    gap:
        ``E1 - E0`` (second-lowest eigenvalue minus the lowest, degeneracy counted).
    degenerate:
        ``gap <= DEGENERACY_TOL * max(1, |E0|)``: the ground space is (numerically) degenerate
        and ``state`` is one vector in it, not a unique ground state.
    couplings:
        The Hamiltonian.
    """

    energy: float
    state: np.ndarray
    gap: float
    degenerate: bool
    couplings: Couplings

    def correlations(self) -> dict[str, np.ndarray]:
        """``{"xx", "yy", "zz"}``: the ``(n, n)`` matrices of :func:`exact_pair_correlations`."""
        return exact_pair_correlations(self.state)


def exact_ground_state(couplings: Couplings, *, degeneracy_tol: float = DEGENERACY_TOL) -> GroundState:
    """Ground state of a lattice Hamiltonian by exact diagonalization.

    The solver is :func:`shadowlab.acquire.states.lowest_two_eigenpairs` (shared with
    :func:`shadowlab.acquire.states.ground_state`): up to 8 qubits densely
    (``numpy.linalg.eigh``); above, ``scipy.sparse.linalg.eigsh`` with ``which="SA"`` for the
    two lowest eigenpairs (the second only to measure the gap) from a deterministic start
    vector, so the result is reproducible. ``degeneracy_tol`` sets :attr:`GroundState.degenerate`.

    Raises
    ------
    ShadowlabError
        Above :data:`MAX_EXACT_QUBITS` qubits (use DMRG).
    """
    e0, e1, vec = lowest_two_eigenpairs(hamiltonian_matrix(couplings), eigsh_tol=_EIGSH_TOL)
    gap = max(e1 - e0, 0.0)
    return GroundState(e0, vec, gap, bool(gap <= degeneracy_tol * max(1.0, abs(e0))), couplings)


# ----------------------------------------------------------------------------- exact properties


def _as_state(state: Any) -> tuple[np.ndarray, int]:
    """A validated state vector (:func:`~shadowlab.acquire.statevector.validate_statevector`:
    ``2**n`` finite amplitudes, normalized), real if every amplitude is."""
    psi, n = validate_statevector(state)
    # Real Hamiltonians have real ground states: real arithmetic halves the work.
    if not np.any(psi.imag):
        psi = np.ascontiguousarray(psi.real)
    return psi, n


def exact_pair_correlations(state: Any, *, chunk: int = 1 << 16) -> dict[str, np.ndarray]:
    """Exact two-point functions ``<X_i X_j>``, ``<Y_i Y_j>``, ``<Z_i Z_j>`` of a state vector.

    (Exact, from the amplitudes; for estimates from shadow data see
    :func:`shadowlab.estimate.correlations.pair_correlations`.)

    Parameters
    ----------
    state:
        Normalized ``(2**n,)`` state vector, qubit 0 = most significant bit (checked: a
        :class:`~shadowlab.errors.StateError` otherwise).
    chunk:
        Basis states per block of the ``ZZ`` matrix product (bounds temporary memory).

    Returns
    -------
    dict
        ``"xx"``, ``"yy"``, ``"zz"``: symmetric ``(n, n)`` float64 arrays with unit diagonal.

    Notes
    -----
    ``ZZ`` is diagonal: with ``s_i(k) = (-1)^{bit_i(k)}``, ``<Z_i Z_j> = sum_k |psi_k|^2 s_i s_j``,
    i.e. ``S^T diag(p) S`` computed blockwise with a matrix product (``O(n^2 2^n)`` flops).
    For ``XX`` and ``YY`` the state is viewed as a ``(2^i, 2, 2^(j-i-1), 2, 2^(n-j-1))`` tensor;
    with ``a = sum conj(psi[..0..0..]) psi[..1..1..]`` and ``b = sum conj(psi[..1..0..])
    psi[..0..1..]``, ``<X_i X_j> = 2 Re(a + b)`` and ``<Y_i Y_j> = -2 Re(a - b)`` (since
    ``Y Y = -X X Z Z``). These are strided views, so each pair costs two passes over ``2^(n-2)``
    amplitudes and no index arrays.
    """
    psi, n = _as_state(state)
    p = np.abs(psi) ** 2
    zz = np.zeros((n, n))
    shifts = np.arange(n - 1, -1, -1, dtype=np.int64)  # qubit q is bit n-1-q
    with single_threaded_blas():
        for start in range(0, psi.size, chunk):
            idx = np.arange(start, min(start + chunk, psi.size), dtype=np.int64)
            s = 1.0 - 2.0 * ((idx[:, None] >> shifts) & 1)
            zz += s.T @ (s * p[start:start + idx.size, None])
        xx = np.eye(n)
        yy = np.eye(n)
        for i in range(n):
            for j in range(i + 1, n):
                t = psi.reshape(1 << i, 2, 1 << (j - i - 1), 2, 1 << (n - j - 1))
                a = np.vdot(t[:, 0, :, 0, :], t[:, 1, :, 1, :]).real
                b = np.vdot(t[:, 1, :, 0, :], t[:, 0, :, 1, :]).real
                xx[i, j] = xx[j, i] = 2.0 * (a + b)
                yy[i, j] = yy[j, i] = -2.0 * (a - b)
    np.fill_diagonal(zz, 1.0)
    return {"xx": xx, "yy": yy, "zz": zz}


def single_site_expectations(state: Any) -> np.ndarray:
    """``(3, n)`` array of ``<X_i>``, ``<Y_i>``, ``<Z_i>`` of a state vector (qubit 0 = MSB).

    With ``u0 = psi[.., bit_i = 0, ..]`` and ``u1`` likewise: ``<X_i> = 2 Re <u0|u1>``,
    ``<Y_i> = 2 Im <u0|u1>``, ``<Z_i> = ||u0||^2 - ||u1||^2``.
    """
    psi, n = _as_state(state)
    out = np.zeros((3, n))
    for i in range(n):
        t = psi.reshape(1 << i, 2, -1)
        c = np.vdot(t[:, 0, :], t[:, 1, :])
        out[0, i], out[1, i] = 2.0 * c.real, 2.0 * c.imag
        out[2, i] = np.vdot(t[:, 0, :], t[:, 0, :]).real - np.vdot(t[:, 1, :], t[:, 1, :]).real
    return out
