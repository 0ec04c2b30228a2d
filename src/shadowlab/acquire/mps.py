"""Ground states of long open chains as matrix product states (DMRG), and exact shadows of them.

DMRG engines
------------
:func:`dmrg_ground_state` runs two-site DMRG with one of two engines on the same MPO
(:func:`chain_mpo`) from the same seeded start state:

* ``"quimb"`` (default): ``quimb.tensor.DMRG2``, the field's standard implementation (needs the
  ``learn`` extra: ``pip install 'shadowlab[learn]'``). Its MPS is converted to the conventions
  below, so everything downstream is engine-independent.
* ``"numpy"``: the implementation in this module, kept as an independent cross-check (a
  second code must reproduce energies and correlations) and as a solver with no dependency
  beyond numpy/scipy.

(quimb 1.15 needs cotengra < 0.8 next to the autoray 0.8.4 that PennyLane pins: with cotengra
0.8.3 its local eigensolver fails with ``'numpy.ndarray' object has no attribute
'get_function'``; the ``learn`` extra pins cotengra accordingly.)

Conventions
-----------
* An MPS is a list of ``n`` complex arrays ``A[i]`` of shape ``(D_left, 2, D_right)`` (the first
  and last bond dimensions are 1); site ``i`` is qubit ``i``, and the physical index is the
  computational basis state of that qubit, so contracting the chain in site order gives the
  state vector with **qubit 0 as the most significant bit** (as in
  :mod:`shadowlab.acquire.statevector`).
* The Hamiltonians are the Pauli-operator forms of :mod:`shadowlab.acquire.ground_states`
  (:class:`~shadowlab.acquire.ground_states.Couplings`), and the MPO (:func:`chain_mpo`) is built
  from Pauli matrices as they are. (quimb's builders such as ``MPO_ham_ising`` and ``SpinHam1D``
  with string operators use spin-1/2 operators ``S = sigma/2``: a two-site term there is 1/4,
  and a field 1/2, of the Pauli-form coupling.)
* Measurement conventions as in :mod:`shadowlab.acquire.statevector`: basis codes 0/1/2 =
  X/Y/Z, outcome bit 0 = eigenvalue +1.

Sampling
--------
With the MPS right-canonical (``sum_{s,r} A[l,s,r] conj(A[l',s,r]) = delta_{l l'}`` for every
site), the norm of any partial contraction ``v A[0] ... A[k]`` from the left equals the
probability of the outcomes it has projected onto so far, whatever comes to the right. So a
snapshot is drawn site by site: carry the normalized left vector ``v`` (``D_left``), form
``u[s, r] = sum_l v[l] A[l, s, r]``, rotate the physical index into the measured basis, draw the
outcome from the two squared norms and keep the chosen (renormalized) row as the next ``v``.
This is the chain rule of the Born distribution, exact for the MPS. A batch of snapshots is
processed at once: one ``(B, D) @ (D, 2 D)`` matrix product per site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.acquire.ground_states import MAX_EXACT_QUBITS, Couplings, single_threaded_blas
from shadowlab.acquire.statevector import _ROTATION
from shadowlab.data.dataset import ShadowData
from shadowlab.errors import ShadowlabError

__all__ = [
    "DEFAULT_CUTOFF",
    "DEFAULT_MAX_BOND",
    "DMRG_ENGINES",
    "MPSGroundState",
    "chain_mpo",
    "dmrg_ground_state",
    "mps_correlations",
    "mps_from_statevector",
    "mps_to_statevector",
    "right_canonical",
    "sample_mps",
]

#: Default largest bond dimension of DMRG.
DEFAULT_MAX_BOND = 64
#: Default truncation of DMRG: discarded Schmidt weight per two-site update.
DEFAULT_CUTOFF = 1e-12
#: DMRG engines of :func:`dmrg_ground_state`; the first is the default.
DMRG_ENGINES = ("quimb", "numpy")
# Relative tolerance of quimb's local (two-site) eigensolver during the warm-up passes.
_QUIMB_LOCAL_EIG_TOL = 1e-6

# _ROTATION (the state-vector sampler's): row o of _ROTATION[b] is the conjugated eigenvector of
# outcome o of basis b, so the amplitude of outcome o is _ROTATION[b, o, 0] x_0 + _ROTATION[b, o, 1] x_1.
_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)


# ----------------------------------------------------------------------------- MPS utilities


def _check_arrays(arrays: Any) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.complex128) for a in arrays]
    if not out:
        raise ShadowlabError("an MPS needs at least one site")
    for i, a in enumerate(out):
        if a.ndim != 3 or a.shape[1] != 2:
            raise ShadowlabError(f"MPS site {i} must be a (D_left, 2, D_right) array, got shape {a.shape}")
        if i and a.shape[0] != out[i - 1].shape[2]:
            raise ShadowlabError(f"MPS bond {i - 1}-{i}: dimensions {out[i - 1].shape[2]} and {a.shape[0]} differ")
    if out[0].shape[0] != 1 or out[-1].shape[2] != 1:
        raise ShadowlabError("an open-boundary MPS has bond dimension 1 at both ends")
    return out


def right_canonical(arrays: Any) -> list[np.ndarray]:
    """Right-canonical, normalized copy of an open-boundary MPS (same state up to its norm).

    Sweeps from the right with QR decompositions of ``A[i]^dagger`` (an LQ of ``A[i]``): the
    isometric factor stays at site ``i`` and the triangular one is pushed into site ``i - 1``;
    finally site 0 is divided by the norm.
    """
    a = _check_arrays(arrays)
    for i in range(len(a) - 1, 0, -1):
        dl, _, dr = a[i].shape
        q, r = np.linalg.qr(a[i].reshape(dl, 2 * dr).conj().T)  # A = r^dag q^dag
        a[i] = q.conj().T.reshape(-1, 2, dr)
        a[i - 1] = np.tensordot(a[i - 1], r.conj().T, axes=(2, 0))
    norm = np.linalg.norm(a[0])
    if not norm > 0:
        raise ShadowlabError("the MPS has zero norm")
    a[0] = a[0] / norm
    return a


def mps_from_statevector(state: Any, max_bond: int | None = None) -> list[np.ndarray]:
    """Exact (untruncated unless ``max_bond``) MPS of a state vector by successive SVDs.

    Qubit 0 = most significant bit of the index = site 0. Meant for tests and small states.
    """
    psi = np.asarray(state, dtype=np.complex128).reshape(-1)
    n = psi.size.bit_length() - 1
    if psi.size < 2 or psi.size != 1 << n:
        raise ShadowlabError(f"a state vector must have 2**n amplitudes, got {psi.size}")
    arrays = []
    rest = psi.reshape(1, -1)
    for _ in range(n - 1):
        d = rest.shape[0]
        u, s, vh = np.linalg.svd(rest.reshape(d * 2, -1), full_matrices=False)
        keep = int(np.sum(s > 1e-14 * s[0])) if max_bond is None else min(max_bond, s.size)
        keep = max(keep, 1)
        arrays.append(u[:, :keep].reshape(d, 2, keep))
        rest = s[:keep, None] * vh[:keep]
    arrays.append(rest.reshape(rest.shape[0], 2, 1))
    return arrays


def mps_to_statevector(arrays: Any) -> np.ndarray:
    """Contract an MPS into its ``(2**n,)`` state vector (small ``n`` only; qubit 0 = MSB)."""
    a = _check_arrays(arrays)
    if len(a) > 24:
        raise ShadowlabError(f"{len(a)} sites is too many to contract into a state vector (max 24)")
    out = a[0].reshape(2, -1)
    for t in a[1:]:
        out = (out @ t.reshape(t.shape[0], -1)).reshape(-1, t.shape[2])
    return out.reshape(-1)


# ----------------------------------------------------------------------------- DMRG


@dataclass(frozen=True)
class MPSGroundState:
    """Result of :func:`dmrg_ground_state`.

    Attributes
    ----------
    arrays:
        Right-canonical, normalized MPS (``(D_left, 2, D_right)`` complex arrays).
    energy:
        DMRG energy (units of the couplings).
    couplings:
        The Hamiltonian (an open chain).
    bond_dim:
        Largest bond dimension of the final MPS.
    converged:
        Whether successive sweeps agreed to ``tol`` before ``max_sweeps``.
    sweeps:
        Number of sweeps run: full (right and left) sweeps for the numpy engine, single passes
        (quimb's sweeps, half as long) for the quimb engine.
    sweep_energies:
        Energy after each sweep (the spread of the last ones measures convergence).
    options:
        ``engine`` (used) and ``requested_engine``, ``max_bond``, ``cutoff``, ``tol``,
        ``max_sweeps``, ``seed`` as used, ``bond_dims`` (the cap of each sweep),
        ``truncation_error`` (the largest discarded weight of the last sweep; ``None`` for
        quimb, which does not report it), ``schmidt_tail_at_cap`` (see
        :func:`dmrg_ground_state`), and for quimb ``quimb_version`` and ``sweep_sequence``.
    """

    arrays: list[np.ndarray]
    energy: float
    couplings: Couplings
    bond_dim: int
    converged: bool
    sweeps: int
    sweep_energies: list[float] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """JSON-friendly summary (bond dimension, truncation settings, convergence)."""
        return {"energy_dmrg": self.energy, "bond_dim": self.bond_dim, "converged": self.converged,
                "sweeps": self.sweeps, **self.options}


def _check_open_chain(couplings: Couplings) -> None:
    lat = couplings.lattice
    n = lat.n_qubits
    chain = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
    if not lat.is_open_chain or not np.array_equal(lat.edges, chain):
        raise ShadowlabError(f"DMRG here handles open chains only (chain:N), not {lat.spec}; use exact "
                             f"diagonalization (method='exact') for rings and grids of up to {MAX_EXACT_QUBITS} "
                             "qubits")


_I2 = np.eye(2)
_X = np.array([[0.0, 1.0], [1.0, 0.0]])
_Z = np.array([[1.0, 0.0], [0.0, -1.0]])
_XZ = _X @ _Z  # Y = i X Z, so Y (x) Y = -(XZ) (x) (XZ): the MPO stays real


def chain_mpo(couplings: Couplings) -> list[np.ndarray]:
    """Real MPO of ``sum_e (cxx XX + cyy YY + czz ZZ)_e + sum_i cx_i X_i`` on an open chain.

    Site ``i`` is a ``(w_left, w_right, 2, 2)`` array ``W[a, b, out, in]`` of bond dimension 5
    (1 at the ends), in the usual finite-automaton form: channel 0 = "nothing placed yet",
    channels 1-3 = "the left half of an X X, (XZ)(XZ) or Z Z term sits on the previous site",
    channel 4 = "a complete term has been placed". The product ``W[0] W[1] ... W[n-1]`` is the
    Hamiltonian; Pauli matrices are used as they are (no spin-1/2 factors).
    """
    _check_open_chain(couplings)
    n = couplings.n_qubits
    left_ops = (_X, _XZ, _Z)
    out = []
    for i in range(n):
        w = np.zeros((5, 5, 2, 2))
        w[0, 0] = _I2
        w[4, 4] = _I2
        w[0, 4] = couplings.cx[i] * _X
        for k, op in enumerate(left_ops, start=1):
            w[0, k] = op
            if i > 0:
                # The term on edge (i-1, i) closes here; YY enters as -(XZ)(XZ).
                c = (couplings.cxx[i - 1], -couplings.cyy[i - 1], couplings.czz[i - 1])[k - 1]
                w[k, 4] = c * op
        out.append(w)
    out[0] = out[0][:1]  # start in channel 0
    out[-1] = out[-1][:, 4:]  # end in channel 4
    return out


def _truncate(theta: np.ndarray, max_bond: int, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """SVD of a ``(m, k)`` matrix keeping at most ``max_bond`` values; drop the smallest ones whose
    squared sum is at most ``cutoff`` times the total. Returns ``(U, S, Vh, discarded weight)``.
    """
    try:
        u, s, vh = np.linalg.svd(theta, full_matrices=False)
    except np.linalg.LinAlgError:  # rare LAPACK gesdd failure: fall back to the QR-based driver
        import scipy.linalg

        u, s, vh = scipy.linalg.svd(theta, full_matrices=False, lapack_driver="gesvd")
    w = s**2
    total = float(w.sum())
    # tail[k] = weight of the values from k on; keep the smallest k with tail[k] <= cutoff * total.
    tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    keep = int(np.argmax(tail <= cutoff * total))
    keep = max(1, min(keep, int(max_bond)))
    discarded = float(tail[keep] / total) if total > 0 else 0.0
    return u[:, :keep], s[:keep], vh[:keep], discarded


class _Dmrg:
    """Two-site DMRG on a real open chain (one instance per run).

    Environments: ``left[i]`` contracts sites ``0..i-1`` into a ``(D_bra, w, D_ket)`` array,
    ``right[i]`` sites ``i+1..n-1``. Arrays are real; the MPS is kept in mixed-canonical form
    with the two active sites as the center.
    """

    def __init__(self, mpo: list[np.ndarray], arrays: list[np.ndarray]) -> None:
        self.w = mpo
        self.a = [t.real.copy() for t in right_canonical(arrays)]
        self.n = len(arrays)
        self.left: list[np.ndarray | None] = [None] * self.n
        self.right: list[np.ndarray | None] = [None] * self.n
        self.left[0] = np.ones((1, 1, 1))
        self.right[self.n - 1] = np.ones((1, 1, 1))
        for i in range(self.n - 1, 0, -1):
            self.right[i - 1] = self._grow_right(self.right[i], self.a[i], self.w[i])

    @staticmethod
    def _grow_left(env: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
        # new[q, v, r] = sum env[p, u, l] conj(A[p, s', q]) W[u, v, s', s] A[l, s, r]
        t = np.tensordot(env, a, axes=(2, 0))  # p u s r
        t = np.tensordot(t, w, axes=([1, 2], [0, 3]))  # p r v s'
        return np.tensordot(a.conj(), t, axes=([0, 1], [0, 3])).transpose(0, 2, 1)  # q v r

    @staticmethod
    def _grow_right(env: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
        # new[p, u, l] = sum conj(A[p, s', q]) W[u, v, s', s] A[l, s, r] env[q, v, r]
        t = np.tensordot(a, env, axes=(2, 2))  # l s q v
        t = np.tensordot(t, w, axes=([1, 3], [3, 1]))  # l q u s'
        return np.tensordot(a.conj(), t, axes=([1, 2], [3, 1])).transpose(0, 2, 1)  # p u l

    def _matvec(self, i: int, shape: tuple[int, ...]) -> Any:
        left, right, w1, w2 = self.left[i], self.right[i + 1], self.w[i], self.w[i + 1]

        def apply(x: np.ndarray) -> np.ndarray:
            theta = x.reshape(shape)  # l s t r
            t = np.tensordot(left, theta, axes=(2, 0))  # p u s t r
            t = np.tensordot(t, w1, axes=([1, 2], [0, 3]))  # p t r v s'
            t = np.tensordot(t, w2, axes=([1, 3], [3, 0]))  # p r s' x t'
            t = np.tensordot(t, right, axes=([1, 3], [2, 1]))  # p s' t' q
            return t.reshape(-1)

        return apply

    def _solve_local(self, i: int, theta: np.ndarray, tol: float) -> tuple[float, np.ndarray]:
        import scipy.sparse.linalg

        shape = theta.shape
        dim = theta.size
        apply = self._matvec(i, shape)
        if dim <= 64:  # tiny blocks at the chain ends: build the matrix, eigh is exact and cheaper
            mat = np.stack([apply(col) for col in np.eye(dim)], axis=1)
            evals, evecs = np.linalg.eigh((mat + mat.T) / 2)
            return float(evals[0]), evecs[:, 0].reshape(shape)
        op = scipy.sparse.linalg.LinearOperator((dim, dim), matvec=apply, dtype=np.float64)
        v0 = theta.reshape(-1)
        evals, evecs = scipy.sparse.linalg.eigsh(op, k=1, which="SA", v0=v0 / np.linalg.norm(v0), tol=tol,
                                                 ncv=min(dim - 1, 20))
        return float(evals[0]), evecs[:, 0].reshape(shape)

    def sweep(self, max_bond: int, cutoff: float, tol: float) -> tuple[float, float]:
        """One right-then-left sweep; returns ``(energy, largest discarded weight)``."""
        energy = np.inf
        worst = 0.0
        n = self.n
        order = [(i, True) for i in range(n - 1)] + [(i, False) for i in range(n - 2, -1, -1)]
        for i, rightward in order:
            a1, a2 = self.a[i], self.a[i + 1]
            theta = np.tensordot(a1, a2, axes=(2, 0))  # l s t r
            energy, theta = self._solve_local(i, theta, tol)
            dl, _, _, dr = theta.shape
            u, s, vh, discarded = _truncate(theta.reshape(dl * 2, 2 * dr), max_bond, cutoff)
            worst = max(worst, discarded)
            s = s / np.linalg.norm(s)
            if rightward:
                self.a[i] = u.reshape(dl, 2, -1)
                self.a[i + 1] = (s[:, None] * vh).reshape(-1, 2, dr)
                self.left[i + 1] = self._grow_left(self.left[i], self.a[i], self.w[i])
            else:
                self.a[i] = (u * s[None, :]).reshape(dl, 2, -1)
                self.a[i + 1] = vh.reshape(-1, 2, dr)
                self.right[i] = self._grow_right(self.right[i + 1], self.a[i + 1], self.w[i + 1])
        return energy, worst


def _initial_arrays(n: int, seed: int, bond: int = 8) -> list[np.ndarray]:
    """Seeded random real start MPS (bond dimension ``bond``), shared by both engines."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1 if i == 0 else bond, 2, 1 if i == n - 1 else bond)) for i in range(n)]


def _bond_ramp(max_bond: int) -> list[int]:
    """Bond dimensions of the warm-up sweeps before ``max_bond`` (16, then 32, those below it)."""
    return [d for d in (16, 32) if d < int(max_bond)]


def _schmidt_tail_at_cap(arrays: list[np.ndarray], max_bond: int) -> float | None:
    """Largest smallest-kept squared Schmidt value over the bonds of dimension ``max_bond`` (or None).

    ``arrays`` must be right-canonical and normalized. At a bond below the cap only ``cutoff``
    truncated; at a bond at the cap every discarded squared Schmidt value was at most this one, so
    it bounds how much the cap cost. ``None``: no bond reached the cap.
    """
    worst: float | None = None
    carry = np.ones((1, 1))
    for a in arrays[:-1]:
        m = carry @ a.reshape(a.shape[0], -1)
        _, s, vh = np.linalg.svd(m.reshape(-1, a.shape[2]), full_matrices=False)
        if s.size >= max_bond:
            worst = max(worst or 0.0, float(s[-1] ** 2))
        carry = s[:, None] * vh
    return worst


def dmrg_ground_state(
    couplings: Couplings,
    *,
    max_bond: int = DEFAULT_MAX_BOND,
    cutoff: float = DEFAULT_CUTOFF,
    tol: float = 1e-10,
    max_sweeps: int = 30,
    seed: int = 0,
    engine: str = "quimb",
) -> MPSGroundState:
    """Ground state of an open-chain Hamiltonian by two-site DMRG.

    Parameters
    ----------
    couplings:
        An open chain (``chain:N``).
    max_bond:
        Largest bond dimension; the first sweeps ramp up through 16 and 32 to it.
    cutoff:
        At each two-site update, the smallest Schmidt values are dropped as long as their
        squared sum stays at or below ``cutoff`` times the total (relative discarded weight, the
        truncation error; quimb's ``cutoff_mode="rsum2"``).
    tol:
        Energy convergence: stop when two consecutive sweeps at the final bond dimension agree to
        ``tol`` (absolute, units of the couplings). A sweep is a right-and-left pass for
        ``engine="numpy"`` and a single pass (half of that) for ``engine="quimb"``, quimb's own
        convergence test.
    max_sweeps:
        Limit on full (right and left) sweeps; ``converged`` is False if it is reached first.
    seed:
        Seed of the random real initial MPS (bond dimension 8; the same start state for both
        engines), so results are reproducible.
    engine:
        ``"quimb"`` (default: quimb's ``DMRG2``, needs ``pip install 'shadowlab[learn]'``) or
        ``"numpy"`` (the implementation in this module, no extra dependency). A two-site chain
        always goes to numpy (quimb's sweeps fail there); ``options`` records the engine used
        and the one requested.

    Returns
    -------
    MPSGroundState
        Right-canonical MPS in this module's convention whatever the engine; ``options`` records
        the engine (and quimb's version), the settings, the bond dimension schedule,
        ``truncation_error`` (largest discarded weight of the last sweep; ``None`` for quimb,
        which does not report it) and ``schmidt_tail_at_cap`` (see below).

    Notes
    -----
    Both engines minimize the same MPO (:func:`chain_mpo`; for quimb its tensors are wrapped as a
    ``quimb.tensor.MatrixProductOperator`` with ``shape="lrud"``, upper index = output) from the
    same start state, and both results are converted to right-canonical form here, so
    correlations and snapshots are computed by the same code. ``schmidt_tail_at_cap`` is, over the
    bonds of the result whose dimension reached ``max_bond``, the largest smallest-kept squared
    Schmidt value (``None`` if no bond reached it: then only ``cutoff`` truncated): a bound on
    each value the cap discarded, computed the same way for both engines. Observables carry
    errors of order ``sqrt(cutoff)`` (first order in the discarded amplitude), the energy of
    order ``cutoff``.

    numpy engine: real arithmetic (every model is real); local problems by Lanczos
    (``scipy.sparse.linalg.eigsh``) started from the current two-site tensor; blocks of at most 64
    entries (chain ends) are diagonalized densely. Cost per sweep ``O(n D^3)``. quimb engine:
    ``DMRG2`` with sweep sequence ``"RL"``, warm-up sweeps (right and left passes) at the ramp
    bond dimensions and at ``max_bond``, then passes at ``max_bond`` until two consecutive ones
    agree to ``tol``;
    local eigenproblems to relative tolerance 1e-6 while warming up (quimb's default 1e-3 needs
    many more passes), ``max(tol, 1e-12)`` at ``max_bond``.
    Both run with single-threaded BLAS: faster at these sizes, and parallel instances do not
    oversubscribe the cores (measured, 2 cores under load: quimb at 100 sites took minutes with
    threaded BLAS). Measured (2 cores, critical TFIM, ``max_bond = 64``, final ``D`` 22 and 30):
    50 sites 1.4 s (quimb) and 0.9 s (numpy), 100 sites 3.3 s and 2.7 s.
    """
    if int(max_bond) < 2:
        raise ShadowlabError(f"max_bond must be >= 2, got {max_bond}")
    if not 0.0 <= float(cutoff) < 1.0:
        raise ShadowlabError(f"cutoff must be in [0, 1), got {cutoff}")
    if int(max_sweeps) < 1:
        raise ShadowlabError(f"max_sweeps must be >= 1, got {max_sweeps}")
    name = str(engine).strip().lower()
    if name not in DMRG_ENGINES:
        raise ShadowlabError(f"unknown DMRG engine {engine!r}; allowed: {', '.join(DMRG_ENGINES)}")
    mpo = chain_mpo(couplings)
    n = couplings.n_qubits
    init = _initial_arrays(n, int(seed))
    options: dict[str, Any] = {"requested_engine": name}
    if name == "quimb" and n < 3:  # quimb's DMRG2 sweeps fail on two sites; nothing to gain there anyway
        name = "numpy"
    options |= {"engine": name, "max_bond": int(max_bond), "cutoff": float(cutoff), "tol": float(tol),
                "max_sweeps": int(max_sweeps), "seed": int(seed)}
    with single_threaded_blas():
        if name == "quimb":
            arrays, energies, converged, extra = _quimb_dmrg(mpo, init, int(max_bond), float(cutoff), float(tol),
                                                             int(max_sweeps))
        else:
            arrays, energies, converged, extra = _numpy_dmrg(mpo, init, int(max_bond), float(cutoff), float(tol),
                                                             int(max_sweeps))
        arrays = right_canonical(arrays)
        extra["schmidt_tail_at_cap"] = _schmidt_tail_at_cap(arrays, int(max_bond))
    return MPSGroundState(
        arrays=arrays,
        energy=float(energies[-1]),
        couplings=couplings,
        bond_dim=max(t.shape[2] for t in arrays),
        converged=converged,
        sweeps=len(energies),
        sweep_energies=energies,
        options={**options, **extra},
    )


def _numpy_dmrg(mpo: list[np.ndarray], init: list[np.ndarray], max_bond: int, cutoff: float, tol: float,
                max_sweeps: int) -> tuple[list[np.ndarray], list[float], bool, dict[str, Any]]:
    """The numpy engine: full sweeps with :class:`_Dmrg`; returns arrays, energies, convergence, facts."""
    ramp = _bond_ramp(max_bond)
    energies: list[float] = []
    truncation: list[float] = []
    bonds: list[int] = []
    converged = False
    solver = _Dmrg(mpo, init)
    for sweep in range(max_sweeps):
        bond = ramp[sweep] if sweep < len(ramp) else max_bond
        # Loose local solves while the bond dimension is still ramping up, tight at the end.
        local_tol = max(tol, 1e-12) if sweep >= len(ramp) else 1e-6
        energy, worst = solver.sweep(bond, cutoff, local_tol)
        energies.append(energy)
        truncation.append(worst)
        bonds.append(bond)
        if sweep >= len(ramp) + 1 and abs(energies[-1] - energies[-2]) <= tol:
            converged = True
            break
    return solver.a, energies, converged, {"bond_dims": bonds, "truncation_error": float(truncation[-1])}


def _to_quimb_mpo(mpo: list[np.ndarray]) -> Any:
    """Our MPO (``W[a, b, out, in]`` per site) as a ``quimb.tensor.MatrixProductOperator``.

    quimb's ``shape="lrud"`` with ``u`` = upper index ``k{i}`` (the output, row index of
    ``to_dense``) and ``d`` = lower index ``b{i}``; the size-1 boundary bonds are dropped.
    """
    import quimb.tensor as qtn

    if len(mpo) < 2:
        raise ShadowlabError("the quimb conversion needs at least two sites")
    return qtn.MatrixProductOperator([mpo[0][0], *mpo[1:-1], mpo[-1][:, 0]], shape="lrud")


def _to_quimb_mps(arrays: list[np.ndarray]) -> Any:
    """Our MPS (``A[l, s, r]`` per site) as a ``quimb.tensor.MatrixProductState`` (``shape="lpr"``)."""
    import quimb.tensor as qtn

    if len(arrays) < 2:
        raise ShadowlabError("the quimb conversion needs at least two sites")
    return qtn.MatrixProductState([arrays[0][0], *arrays[1:-1], arrays[-1][:, :, 0]], shape="lpr")


def _from_quimb_mps(state: Any) -> list[np.ndarray]:
    """A quimb open-boundary ``MatrixProductState`` as our ``(D_left, 2, D_right)`` arrays.

    Transposes each site tensor by index name, whatever quimb's internal order: (bond to site
    ``i - 1``, site index ``state.site_ind(i)``, bond to site ``i + 1``), adding size-1 bonds at
    the ends. quimb's site ``i`` is our qubit ``i`` and its basis is the one of the operators
    used (here that of :func:`chain_mpo`: Z = diag(1, -1), so index 0 is Z = +1).
    """
    import quimb.tensor as qtn

    n = state.L
    arrays = []
    for i in range(n):
        t = state[i]
        left = list(qtn.bonds(state[i - 1], t)) if i > 0 else []
        right = list(qtn.bonds(t, state[i + 1])) if i < n - 1 else []
        if len(left) > 1 or len(right) > 1 or t.ndim != len(left) + len(right) + 1:
            raise ShadowlabError(f"quimb MPS site {i}: expected one bond to each neighbour and one site index, "
                                 f"got indices {t.inds}")
        data = np.asarray(t.transpose(*left, state.site_ind(i), *right).data)
        if i == 0:
            data = data[None]
        if i == n - 1:
            data = data[..., None]
        arrays.append(data)
    return arrays


def _quimb_dmrg(mpo: list[np.ndarray], init: list[np.ndarray], max_bond: int, cutoff: float, tol: float,
                max_sweeps: int) -> tuple[list[np.ndarray], list[float], bool, dict[str, Any]]:
    """The quimb engine: ``DMRG2`` on our MPO from our start state; returns arrays in our convention.

    Conversions (checked against dense matrices in the tests): our MPO site ``W[a, b, out, in]`` is
    quimb's ``shape="lrud"`` (``u`` = upper index ``k{i}`` = output), with the boundary bond dropped
    at the ends (first site ``W[0][0]``, last ``W[-1][:, 0]``); our MPS site ``A[l, s, r]`` is
    quimb's ``shape="lpr"``. Back from quimb, each site tensor is transposed by index name to
    (bond to site ``i - 1``, site index ``k{i}``, bond to site ``i + 1``), with size-1 bonds
    added at the ends. The physical basis is the one of the MPO (Z = diag(1, -1), so 0 = Z=+1),
    and quimb's site ``i`` is our qubit ``i``.
    """
    try:
        import quimb
        import quimb.tensor as qtn
    except ImportError as exc:
        raise ShadowlabError(f"the quimb DMRG engine needs quimb ({exc}); pip install 'shadowlab[learn]', or use "
                             "engine='numpy'") from None
    ham = _to_quimb_mpo(mpo)
    p0 = _to_quimb_mps(init)
    # Warm-up (tol = 0: never stops early): a right and a left pass per ramp bond dimension and at
    # max_bond, so that convergence compares passes at max_bond after a full sweep there. (With
    # a single warm-up pass, 3 of 10 seeds stopped in the first excited state of the ordered TFIM,
    # 18 sites, h = 0.5, max_bond = 16: two passes there agreed to 1e-10 before escaping.)
    warm = [d for d in [*_bond_ramp(max_bond), max_bond] for _ in "RL"]
    dmrg = qtn.DMRG2(ham, bond_dims=warm, cutoffs=cutoff, p0=p0)
    dmrg.opts["bond_compress_cutoff_mode"] = "rsum2"
    # Warm-up local tolerance: quimb's default (1e-3) needs many more passes to reach tol = 1e-10
    # (measured: critical TFIM, 100 sites, 9 passes in 29 s against 6 in 3.2 s at 1e-6).
    dmrg.opts["local_eig_tol"] = _QUIMB_LOCAL_EIG_TOL
    dmrg.solve(tol=0.0, bond_dims=warm, cutoffs=cutoff, sweep_sequence="RL", max_sweeps=len(warm))
    # Tight local solves at the end, as in the numpy engine: a relative 1e-6 cannot resolve the
    # splitting of quasi-degenerate levels (ordered TFIM: ~1e-6 at 18 sites), and stalls there.
    dmrg.opts["local_eig_tol"] = max(tol, 1e-12)
    # max_sweeps counts full (right and left) sweeps, warm-up included, as for the numpy engine.
    converged = bool(dmrg.solve(tol=tol, bond_dims=max_bond, cutoffs=cutoff, sweep_sequence="RL",
                                max_sweeps=max(1, 2 * max_sweeps - len(warm))))
    energies = [float(np.real(e)) for e in dmrg.energies]
    bonds = warm + [max_bond] * (len(energies) - len(warm))
    arrays = _from_quimb_mps(dmrg.state)
    return arrays, energies, converged, {"bond_dims": bonds, "truncation_error": None,
                                         "quimb_version": str(quimb.__version__), "sweep_sequence": "RL"}


# ----------------------------------------------------------------------------- sampling


def sample_mps(
    arrays: Any,
    settings: Any,
    rng: np.random.Generator,
    *,
    batch_snapshots: int = 4096,
    canonical: bool = False,
) -> ShadowData:
    """Sample one local-Pauli snapshot per row of ``settings`` exactly from an MPS.

    Parameters
    ----------
    arrays:
        Open-boundary MPS, ``(D_left, 2, D_right)`` per site (site = qubit).
    settings:
        ``(S, n)`` basis codes 0/1/2 = X/Y/Z; snapshot ``s`` measures qubit ``q`` in
        ``settings[s, q]``.
    rng:
        Source of the outcome draws: one uniform per (snapshot, qubit), consumed in
        snapshot-major order, so the result does not depend on ``batch_snapshots``.
    batch_snapshots:
        Snapshots processed together (memory ``~ 48 B * batch * D``).
    canonical:
        Set if ``arrays`` is already right-canonical and normalized (skips the QR sweep).

    Returns
    -------
    ShadowData
        ``S`` snapshots, one setting each (outcome 0 = eigenvalue +1).

    Notes
    -----
    Cost ``O(S n D^2)``: measured ~0.15 s for 1,000 snapshots of 100 sites at ``D = 30`` (2 cores).
    """
    a = right_canonical(arrays) if not canonical else _check_arrays(arrays)
    n = len(a)
    bases = np.asarray(settings)
    if bases.ndim != 2 or bases.shape[1] != n:
        raise ShadowlabError(f"settings must be a (S, {n}) array of basis codes for a {n}-site MPS, "
                             f"got shape {bases.shape}")
    if bases.size and (not np.issubdtype(bases.dtype, np.integer) or bases.min() < 0 or bases.max() > 2):
        raise ShadowlabError("settings must hold basis codes 0/1/2 (X/Y/Z)")
    if not isinstance(rng, np.random.Generator):
        raise ShadowlabError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))")
    bases = np.ascontiguousarray(bases, dtype=np.uint8)
    n_snap = bases.shape[0]
    outcomes = np.empty((n_snap, n), dtype=np.uint8)
    flat = [t.reshape(t.shape[0], -1) for t in a]
    tiny = np.finfo(np.float64).tiny
    with single_threaded_blas():
        for start in range(0, n_snap, max(1, int(batch_snapshots))):
            stop = min(start + max(1, int(batch_snapshots)), n_snap)
            b = stop - start
            u01 = rng.random((b, n))
            rows = np.arange(b)
            v = np.ones((b, 1), dtype=np.complex128)
            for i in range(n):
                u = (v @ flat[i]).reshape(b, 2, -1)
                rot = _ROTATION[bases[start:stop, i]]  # (b, outcome, s)
                phi = np.einsum("bos,bsr->bor", rot, u)
                w = np.einsum("bor,bor->bo", phi.real, phi.real) + np.einsum("bor,bor->bo", phi.imag, phi.imag)
                total = np.maximum(w.sum(axis=1), tiny)  # 1 up to rounding, since v is a unit vector
                out = (u01[:, i] * total >= w[:, 0]).astype(np.uint8)
                outcomes[start:stop, i] = out
                v = phi[rows, out] / np.sqrt(np.maximum(w[rows, out], tiny))[:, None]
    return ShadowData(bases, outcomes, metadata={"source": "mps", "n_qubits": n,
                                                 "bond_dim": int(max(t.shape[2] for t in a))})


# ----------------------------------------------------------------------------- exact properties


def mps_correlations(arrays: Any, *, canonical: bool = False) -> dict[str, np.ndarray]:
    """Exact ``<X_i X_j>``, ``<Y_i Y_j>``, ``<Z_i Z_j>`` (all pairs) and ``<X_i>``, ... of an MPS.

    Returns
    -------
    dict
        ``"xx"``, ``"yy"``, ``"zz"``: ``(n, n)`` float64 with unit diagonal; ``"single"``:
        ``(3, n)`` rows ``<X_i>``, ``<Y_i>``, ``<Z_i>``.

    Notes
    -----
    Right-canonical form makes every right environment the identity. Left environments
    ``L_{i+1} = sum_s A_s^dagger L_i A_s`` are built once; for each ``i`` the three Paulis are
    inserted at ``i`` together (a ``(3, D, D)`` stack) and carried to the right one site at a
    time, closing against ``P_j`` at every ``j > i``: ``O(n^2 D^3)`` in all.
    """
    a = right_canonical(arrays) if not canonical else _check_arrays(arrays)
    n = len(a)
    corr = np.zeros((3, n, n))
    single = np.zeros((3, n))
    # closers[j][p, a, s, r] = sum_t conj(A_j[a, t, r]) P_p[t, s]: closing a string at j is then a
    # plain dot product with the carried tensor.
    closers = [np.einsum("atr,pts->pasr", t.conj(), _PAULI) for t in a]
    with single_threaded_blas():
        left = np.ones((1, 1), dtype=np.complex128)
        for i in range(n):
            ai = a[i]
            dl, _, dr = ai.shape
            tmp = (left @ ai.reshape(dl, -1)).reshape(dl, 2, dr)  # tmp[l', s, r] = sum_l L[l', l] A[l, s, r]
            single[:, i] = (closers[i].reshape(3, -1) * tmp.reshape(1, -1)).sum(axis=1).real
            # Open the string at i: T_p[q, r] = sum conj(A[a, t, q]) P_p[t, s] tmp[a, s, r].
            op = np.einsum("pasq,asr->pqr", closers[i], tmp)
            for j in range(i + 1, n):
                aj = a[j]
                djl, _, djr = aj.shape
                t3 = op @ aj.reshape(djl, -1)  # (3, D_left, 2 D_right)
                corr[:, i, j] = (closers[j].reshape(3, -1) * t3.reshape(3, -1)).sum(axis=1).real
                if j < n - 1:
                    # Carry on with the identity at j: T'[q, r] = sum conj(A[a, s, q]) T[a, s, r].
                    op = aj.reshape(djl * 2, djr).conj().T @ t3.reshape(3, djl * 2, djr)
            left = ai.reshape(dl * 2, dr).conj().T @ tmp.reshape(dl * 2, dr)
    corr = corr + corr.transpose(0, 2, 1)
    for c in corr:
        np.fill_diagonal(c, 1.0)
    return {"xx": corr[0], "yy": corr[1], "zz": corr[2], "single": single}
