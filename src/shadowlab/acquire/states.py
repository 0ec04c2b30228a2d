"""Built-in test states as exact state vectors (no Qiskit needed).

Every function returns a normalized complex128 vector of shape ``(2**n,)`` in which **qubit 0
is the most significant bit** of the index (``state.reshape((2,) * n)`` has qubit 0 on axis 0),
the convention of :mod:`shadowlab.acquire.statevector`.

Ground states come from sparse diagonalization (``scipy.sparse.linalg.eigsh``) of the
Hamiltonian built directly in sparse form from its Pauli terms; the global phase is fixed so
that results are reproducible (see :func:`fix_global_phase`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from shadowlab.acquire.statevector import parity, pauli_masks
from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

__all__ = [
    "BUILTIN_STATES",
    "BUILTIN_STATE_USAGE",
    "PRODUCT_LETTERS",
    "builtin_state",
    "fix_global_phase",
    "ghz",
    "ground_state",
    "haar_random_state",
    "heisenberg_ground_state",
    "heisenberg_hamiltonian",
    "lowest_two_eigenpairs",
    "product_state",
    "single_threaded_blas",
    "sparse_pauli_sum_matrix",
    "tfim_ground_state",
    "tfim_hamiltonian",
    "w_state",
]

#: Largest qubit count a built-in state may have (a 2**30 complex vector is 16 GiB).
MAX_QUBITS = 30

# Up to this many qubits the Hamiltonian is diagonalized densely: exact, all eigenvalues at
# once, and ARPACK is unreliable on tiny matrices anyway (it needs k < dim - 1).
_DENSE_MAX_QUBITS = 8

#: Relative gap ``(E1 - E0) / max(1, |E0|)`` at or below which :func:`ground_state` warns that
#: the ground space is degenerate.
GROUND_STATE_DEGENERACY_TOL = 1e-9


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS/LAPACK to one thread inside the block (when threadpoolctl is installed).

    The work here is memory-bound vector operations (Lanczos on 2^n vectors, ``(2^16, n)``
    matrix products) and many small matrix products, SVDs and eigensolves (MPS, ``D <= ~100``).
    With OpenBLAS's default threading these ran 5-100x slower than single-threaded in our
    timings on a loaded 2-core machine (a 100-site DMRG: 60 s instead of 5 s; a 16-qubit
    Lanczos: 3 s instead of 0.4 s; 16-qubit correlations: 1.7 s instead of 0.013 s), the
    threads' synchronization costing more than the arithmetic.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

_S = np.sqrt(0.5)
#: Single-qubit states of :func:`product_state`, by letter.
PRODUCT_LETTERS: dict[str, np.ndarray] = {
    "0": np.array([1, 0], dtype=np.complex128),
    "1": np.array([0, 1], dtype=np.complex128),
    "+": np.array([_S, _S], dtype=np.complex128),
    "-": np.array([_S, -_S], dtype=np.complex128),
    "r": np.array([_S, 1j * _S], dtype=np.complex128),  # |+i>, "right" (Qiskit's label letter)
    "l": np.array([_S, -1j * _S], dtype=np.complex128),  # |-i>, "left"
}


def _check_n(n: int, what: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ShadowlabError(f"{what}: the number of qubits must be an integer, got {n!r}")
    if not minimum <= int(n) <= MAX_QUBITS:
        raise ShadowlabError(f"{what}: the number of qubits must be in {minimum}..{MAX_QUBITS}, got {n}")
    return int(n)


def ghz(n: int) -> np.ndarray:
    """GHZ state ``(|0...0> + |1...1>) / sqrt(2)`` on ``n >= 1`` qubits.

    Examples
    --------
    >>> ghz(2).real.round(4).tolist()
    [0.7071, 0.0, 0.0, 0.7071]
    """
    n = _check_n(n, "ghz")
    psi = np.zeros(2**n, dtype=np.complex128)
    psi[0] = psi[-1] = _S
    return psi


def w_state(n: int) -> np.ndarray:
    """W state: the equal superposition of the ``n`` states with exactly one qubit in ``|1>``.

    Qubit ``q`` excited is index ``2**(n - 1 - q)`` (qubit 0 = most significant bit).

    Examples
    --------
    >>> np.flatnonzero(w_state(3)).tolist()  # |001>, |010>, |100>
    [1, 2, 4]
    """
    n = _check_n(n, "w")
    psi = np.zeros(2**n, dtype=np.complex128)
    psi[1 << np.arange(n)] = 1.0 / np.sqrt(n)
    return psi


def product_state(labels: str | Sequence[str]) -> np.ndarray:
    """Product state, one letter per qubit (qubit 0 first).

    Letters: ``0``, ``1`` (Z eigenstates, eigenvalue +1 / -1), ``+``, ``-`` (X eigenstates),
    ``r`` = ``|+i> = (|0> + i|1>)/sqrt(2)`` and ``l`` = ``|-i> = (|0> - i|1>)/sqrt(2)`` (Y
    eigenstates; Qiskit's letters). ``R`` and ``L`` are accepted too.

    Examples
    --------
    >>> product_state("1+").real.round(4).tolist()  # |1> (x) |+>
    [0.0, 0.0, 0.7071, 0.7071]
    """
    letters = list(labels)
    _check_n(len(letters), f"product state {''.join(letters)!r}")
    psi = np.ones(1, dtype=np.complex128)
    for q, ch in enumerate(letters):
        v = PRODUCT_LETTERS.get(ch if ch in PRODUCT_LETTERS else str(ch).lower())
        if v is None:
            raise ShadowlabError(
                f"product state: unknown letter {ch!r} for qubit {q}; expected one of "
                f"{', '.join(PRODUCT_LETTERS)} (r = |+i>, l = |-i>)"
            )
        # kron puts its first factor on the most significant bits: qubit 0 ends up the MSB.
        psi = np.kron(psi, v)
    return psi


def haar_random_state(n: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random pure state on ``n`` qubits.

    A vector of i.i.d. standard complex Gaussians, normalized, is Haar distributed (its law is
    invariant under every unitary).
    """
    n = _check_n(n, "random")
    if not isinstance(rng, np.random.Generator):
        raise ShadowlabError("a random state needs rng, a numpy.random.Generator (numpy.random.default_rng(seed))")
    psi = rng.standard_normal(2**n) + 1j * rng.standard_normal(2**n)
    return psi / np.linalg.norm(psi)


def fix_global_phase(psi: np.ndarray) -> np.ndarray:
    """Multiply by the phase that makes the first largest-magnitude amplitude real and positive.

    "Largest" allows a relative slack of 1e-6 so that amplitudes equal by symmetry but differing
    by rounding (e.g. ``|0...0>`` and ``|1...1>`` of an Ising ground state) always pick the
    lowest index, making eigensolver output reproducible.
    """
    mag = np.abs(psi)
    j = int(np.flatnonzero(mag >= mag.max() * (1 - 1e-6))[0])
    return psi * (np.conj(psi[j]) / mag[j])


def sparse_pauli_sum_matrix(paulis: PauliSum) -> scipy.sparse.csr_array:
    """Sparse matrix ``sum_j c_j P_j`` (qubit 0 = most significant bit of the index).

    Built from bit masks, never from Kronecker products: a Pauli string acts as
    ``P |j> = i^ny (-1)^popcount(j & z) |j ^ x>`` (see
    :func:`~shadowlab.acquire.statevector.pauli_masks`), so all terms sharing an X-mask ``x``
    fill the same "generalized diagonal" ``(j ^ x, j)``. With ``K`` distinct X-masks the matrix
    has at most ``K 2^n`` stored entries; building it takes ``O((K + terms) 2^n)`` time.

    Parameters
    ----------
    paulis:
        Terms and real coefficients on ``n`` qubits (``n <= 24``; ~20 is practical).

    Returns
    -------
    scipy.sparse.csr_array
        ``(2**n, 2**n)``; float64 if every term has an even number of Y letters (then the matrix
        is real), complex128 otherwise. Hermitian since the coefficients are real.

    Examples
    --------
    >>> h = sparse_pauli_sum_matrix(PauliSum.from_labels(["ZI", "XX"], [1.0, 0.5]))
    >>> h.toarray().tolist()
    [[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.5, 0.0], [0.0, 0.5, -1.0, 0.0], [0.5, 0.0, 0.0, -1.0]]
    """
    n = paulis.n_qubits
    if n > 24:
        raise ShadowlabError(f"sparse_pauli_sum_matrix: {n} qubits is too many for an explicit matrix (max 24)")
    dim = 1 << n
    groups: dict[int, list[tuple[float, int, int]]] = {}
    real = True
    for c, term in zip(paulis.coeffs, paulis.terms, strict=True):
        x, z, ny = pauli_masks(term, n)
        real &= ny % 2 == 0
        groups.setdefault(x, []).append((float(c), z, ny))
    dtype = np.float64 if real else np.complex128
    if not groups:
        return scipy.sparse.csr_array((dim, dim), dtype=dtype)
    idx = np.arange(dim, dtype=np.int64)
    xs = np.array(sorted(groups), dtype=np.int64)
    # data[r, k] = value of row r in the k-th X-mask group, whose column is r ^ x_k.
    data = np.zeros((dim, xs.size), dtype=dtype)
    for k, x in enumerate(xs.tolist()):
        col_values = np.zeros(dim, dtype=dtype)  # indexed by the column j
        for c, z, ny in groups[x]:
            phase = (1j) ** ny
            coeff = (phase.real if real else phase) * c
            if z == 0:
                col_values += coeff
            else:
                col_values += coeff * (1 - 2 * parity(idx & z))
        data[:, k] = col_values[idx ^ x]
    indices = idx[:, None] ^ xs[None, :]
    index_dtype = np.int32 if dim * xs.size < 2**31 else np.int64
    indptr = np.arange(0, dim * xs.size + 1, xs.size, dtype=index_dtype)
    mat = scipy.sparse.csr_array((data.ravel(), indices.ravel().astype(index_dtype), indptr), shape=(dim, dim))
    mat.eliminate_zeros()  # cancelled terms, and x = 0 groups with zero diagonal entries
    mat.sort_indices()
    return mat


def lowest_two_eigenpairs(matrix: scipy.sparse.sparray | np.ndarray, *,
                          eigsh_tol: float = 0.0) -> tuple[float, float, np.ndarray]:
    """The two lowest eigenvalues ``E0 <= E1`` of a Hermitian ``(2**n, 2**n)`` matrix and a
    normalized ground vector: the one exact-diagonalization solver of the package.

    Up to 8 qubits the matrix is diagonalized densely (``numpy.linalg.eigh``); above,
    ``scipy.sparse.linalg.eigsh`` (Lanczos, ``which="SA"``, two eigenpairs: the second only to
    measure the gap) is run from a fixed, deterministic start vector, so results are
    reproducible. BLAS runs single-threaded (:func:`single_threaded_blas`). The vector is
    complex128 with its global phase fixed by :func:`fix_global_phase`.

    Parameters
    ----------
    matrix:
        Sparse (or dense) Hermitian matrix, qubit 0 = most significant bit.
    eigsh_tol:
        Relative accuracy asked of ARPACK (``0`` = machine precision).
    """
    dim = matrix.shape[0]
    n_qubits = dim.bit_length() - 1
    with single_threaded_blas():
        if n_qubits <= _DENSE_MAX_QUBITS:
            dense = matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)
            evals, evecs = np.linalg.eigh(dense)
            vec = evecs[:, 0]
        else:
            # A deterministic, symmetry-free start vector (a Weyl sequence): a uniform one such as
            # all-ones would be orthogonal to ground states in other symmetry sectors (e.g. the
            # Heisenberg singlet), and a random one would make results depend on hidden state.
            golden = (np.sqrt(5.0) - 1.0) / 2.0
            v0 = 1.0 + ((np.arange(dim) * golden) % 1.0 - 0.5)
            # A Krylov space of 32 vectors (ARPACK's default is 20) needed ~25% fewer matrix-vector
            # products on 20-qubit chains in our timings, and fewer restarts on near-degenerate
            # spectra (ordered phases); above 20 qubits memory matters more.
            ncv = min(dim - 1, 32 if n_qubits <= 20 else 20)
            evals, evecs = scipy.sparse.linalg.eigsh(matrix, k=2, which="SA", v0=v0.astype(matrix.dtype), ncv=ncv,
                                                    tol=eigsh_tol)
            order = np.argsort(evals)
            evals, vec = evals[order], evecs[:, order[0]]
    vec = np.asarray(vec, dtype=np.complex128)
    vec /= np.linalg.norm(vec)
    return float(evals[0]), float(evals[1]), fix_global_phase(vec)


def ground_state(paulis: PauliSum, *,
                 degeneracy_tol: float = GROUND_STATE_DEGENERACY_TOL) -> tuple[float, np.ndarray]:
    """Lowest eigenvalue and a normalized eigenvector of a Pauli-sum Hamiltonian.

    Solved by :func:`lowest_two_eigenpairs` (dense up to 8 qubits, else Lanczos from a fixed,
    deterministic start vector; global phase fixed with :func:`fix_global_phase`).

    Returns
    -------
    (energy, state):
        ``energy`` float; ``state`` complex128 ``(2**n,)``, qubit 0 = most significant bit.

    Warns
    -----
    UserWarning
        If the two lowest eigenvalues agree to ``degeneracy_tol * max(1, |E0|)`` (default
        ``1e-9``): the ground space is degenerate and the returned vector is one
        (solver-dependent) vector in it.
    """
    e0, e1, vec = lowest_two_eigenpairs(sparse_pauli_sum_matrix(paulis))
    if abs(e1 - e0) <= degeneracy_tol * max(1.0, abs(e0)):
        warnings.warn(
            f"the ground space is degenerate (E0 = {e0:.12g}, E1 = {e1:.12g}); "
            "the returned state is one vector in it",
            UserWarning,
            stacklevel=2,
        )
    return e0, vec


def _chain_bonds(n: int, periodic: bool) -> list[tuple[int, int]]:
    bonds = [(i, i + 1) for i in range(n - 1)]
    if periodic and n > 2:  # for n = 2 the wrap-around bond would duplicate (0, 1)
        bonds.append((0, n - 1))
    return bonds


def tfim_hamiltonian(n: int, J: float = 1.0, h: float = 1.0, periodic: bool = False) -> PauliSum:
    """Transverse-field Ising chain ``H = -J sum_i Z_i Z_{i+1} - h sum_i X_i``.

    Open boundaries by default; ``periodic=True`` adds the bond ``(n-1, 0)`` when ``n > 2``.
    """
    n = _check_n(n, "tfim")
    terms = [PauliString((i, j), (2, 2)) for i, j in _chain_bonds(n, periodic)]
    coeffs = [-float(J)] * len(terms)
    terms += [PauliString((i,), (0,)) for i in range(n)]
    coeffs += [-float(h)] * n
    return PauliSum(n, tuple(terms), np.array(coeffs))


def heisenberg_hamiltonian(n: int, periodic: bool = False) -> PauliSum:
    """Antiferromagnetic XXX chain ``H = sum_i X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}``, ``n >= 2``.

    The uniform ``J = 1`` case of :func:`shadowlab.acquire.ground_states.heisenberg_couplings`
    on ``chain:n`` (``ring:n`` when periodic and ``n > 2``): bonds in chain order, then the
    wrap-around bond ``(0, n-1)``; per bond the terms XX, YY, ZZ.
    """
    from shadowlab.acquire.ground_states import hamiltonian_paulis, heisenberg_couplings

    n = _check_n(n, "heisenberg", minimum=2)
    return hamiltonian_paulis(heisenberg_couplings(f"{'ring' if periodic and n > 2 else 'chain'}:{n}", 1.0))


def tfim_ground_state(n: int, J: float = 1.0, h: float = 1.0, periodic: bool = False) -> np.ndarray:
    """Ground state of :func:`tfim_hamiltonian` (energy: :func:`ground_state`)."""
    return ground_state(tfim_hamiltonian(n, J, h, periodic))[1]


def heisenberg_ground_state(n: int, periodic: bool = False) -> np.ndarray:
    """Ground state of :func:`heisenberg_hamiltonian` (unique for even ``n``; a doublet for odd ``n``)."""
    return ground_state(heisenberg_hamiltonian(n, periodic))[1]


# ----------------------------------------------------------------------------- registry

_Factory = Callable[[list[str], dict[str, str], np.random.Generator | None], np.ndarray]


def _int_arg(value: str, name: str, spec: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ShadowlabError(f"state spec {spec!r}: {name} must be an integer, got {value!r}") from None


def _float_arg(value: str, name: str, spec: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise ShadowlabError(f"state spec {spec!r}: {name} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise ShadowlabError(f"state spec {spec!r}: {name} must be finite, got {value!r}")
    return out


def _bool_arg(value: str, name: str, spec: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ShadowlabError(f"state spec {spec!r}: {name} must be true/false (or 1/0), got {value!r}")


#: Usage string of every built-in state spec (``name:positional[:key=value...]``).
BUILTIN_STATE_USAGE: dict[str, str] = {
    "ghz": "ghz:N",
    "w": "w:N",
    "product": "product:LETTERS (one of 0 1 + - r l per qubit, qubit 0 first)",
    "random": "random:N (Haar random, uses the rng)",
    "tfim": "tfim:N[:J=1][:h=1][:periodic=false]",
    "heisenberg": "heisenberg:N[:periodic=false]",
}


def _spec_factory(
    name: str, n_positional: int, options: Mapping[str, Callable[[str, str, str], object]]
) -> Callable[[Callable[..., np.ndarray]], _Factory]:
    """Adapt ``func(positional, **options)`` to a registry factory that parses strings."""

    def wrap(func: Callable[..., np.ndarray]) -> _Factory:
        def factory(args: list[str], kwargs: dict[str, str], rng: np.random.Generator | None) -> np.ndarray:
            spec = ":".join([name, *args, *(f"{k}={v}" for k, v in kwargs.items())])
            if len(args) != n_positional:
                raise ShadowlabError(
                    f"state spec {spec!r}: expected {n_positional} positional value(s), got {len(args)}; "
                    f"usage: {BUILTIN_STATE_USAGE[name]}"
                )
            unknown = sorted(set(kwargs) - set(options))
            if unknown:
                allowed = ", ".join(options) or "none"
                raise ShadowlabError(f"state spec {spec!r}: unknown option(s) {', '.join(unknown)}; allowed: {allowed}")
            parsed = {k: options[k](v, k, spec) for k, v in kwargs.items()}
            return func(args, parsed, rng, spec)

        return factory

    return wrap


@_spec_factory("ghz", 1, {})
def _ghz_spec(args: list[str], opts: dict[str, Any], rng: np.random.Generator | None, spec: str) -> np.ndarray:
    return ghz(_int_arg(args[0], "N", spec))


@_spec_factory("w", 1, {})
def _w_spec(args: list[str], opts: dict[str, Any], rng: np.random.Generator | None, spec: str) -> np.ndarray:
    return w_state(_int_arg(args[0], "N", spec))


@_spec_factory("product", 1, {})
def _product_spec(args: list[str], opts: dict[str, Any], rng: np.random.Generator | None, spec: str) -> np.ndarray:
    return product_state(args[0])


@_spec_factory("random", 1, {})
def _random_spec(args: list[str], opts: dict[str, Any], rng: np.random.Generator | None, spec: str) -> np.ndarray:
    if rng is None:
        raise ShadowlabError(f"state spec {spec!r} is random: pass rng (a numpy.random.Generator)")
    return haar_random_state(_int_arg(args[0], "N", spec), rng)


@_spec_factory("tfim", 1, {"J": _float_arg, "h": _float_arg, "periodic": _bool_arg})
def _tfim_spec(args: list[str], opts: dict[str, Any], rng: np.random.Generator | None, spec: str) -> np.ndarray:
    return tfim_ground_state(_int_arg(args[0], "N", spec), **opts)


@_spec_factory("heisenberg", 1, {"periodic": _bool_arg})
def _heisenberg_spec(args: list[str], opts: dict[str, Any], rng: np.random.Generator | None, spec: str) -> np.ndarray:
    return heisenberg_ground_state(_int_arg(args[0], "N", spec), **opts)


#: Built-in states by spec name. Each factory takes ``(positional, options, rng)`` strings as
#: split from a spec by :func:`builtin_state` and returns the state vector.
BUILTIN_STATES: dict[str, _Factory] = {
    "ghz": _ghz_spec,
    "w": _w_spec,
    "product": _product_spec,
    "random": _random_spec,
    "tfim": _tfim_spec,
    "heisenberg": _heisenberg_spec,
}


def builtin_state(spec: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """State vector named by a spec ``name:value[:key=value...]``.

    Specs: ``ghz:N``, ``w:N``, ``product:LETTERS`` (e.g. ``product:01+-rl``), ``random:N``
    (needs ``rng``), ``tfim:N[:J=..][:h=..][:periodic=true]``, ``heisenberg:N[:periodic=true]``.
    Names are case-insensitive; option names are not (``J`` and ``h``).

    Raises
    ------
    ShadowlabError
        For an unknown name (the message lists the valid ones), a wrong number of values, an
        unknown option or a value that does not parse.

    Examples
    --------
    >>> builtin_state("ghz:3")[[0, 7]].real.round(4).tolist()
    [0.7071, 0.7071]
    """
    parts = [p.strip() for p in str(spec).strip().split(":")]
    name = parts[0].lower()
    if name not in BUILTIN_STATES:
        valid = "; ".join(BUILTIN_STATE_USAGE[k] for k in BUILTIN_STATES)
        raise ShadowlabError(f"unknown built-in state {parts[0]!r} in spec {spec!r}; valid specs: {valid}")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for p in parts[1:]:
        if "=" in p:
            key, _, value = p.partition("=")
            if key.strip() in kwargs:
                raise ShadowlabError(f"state spec {spec!r}: option {key.strip()!r} given twice")
            kwargs[key.strip()] = value.strip()
        elif kwargs:
            raise ShadowlabError(f"state spec {spec!r}: positional value {p!r} after key=value options")
        else:
            args.append(p)
    return BUILTIN_STATES[name](args, kwargs, rng)
