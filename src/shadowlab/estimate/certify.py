"""Shadow-overlap certification of a pure target state (Huang, Preskill, Soleimanifar 2024).

Protocol (arXiv:2404.07281, "Certifying almost all quantum states with few single-qubit
measurements"): in each round a qubit ``k`` is chosen uniformly, the other qubits are measured
in ``Z`` (bits ``z_{-k}``) and qubit ``k`` in a uniformly random Pauli basis, with outcome
eigenstate ``|s>`` (data: :mod:`shadowlab.acquire.certify_sampling`). With the target's
normalized conditional state of qubit ``k``,

    |psi_{k,z}>  proportional to  (<z_{-k}| (x) I_k) |psi>,

the round's value is ``omega = <psi_{k,z}| (3 |s><s| - I) |psi_{k,z}>`` (in ``[-1, 2]``), and
``omega = 0`` when ``(<z_{-k}| (x) I) |psi> = 0`` (an outcome the target never gives). The
*shadow overlap* is ``E[omega] = tr(L rho)`` with ``L = (1/n) sum_k sum_z |z_{-k}><z_{-k}| (x)
|psi_{k,z}><psi_{k,z}|``; ``L |psi> = |psi>`` and ``L <= I``, so ``E[omega] = 1`` for the target.

Bound implemented
-----------------
``F = <psi| rho |psi>  >=  1 - tau (1 - E[omega])``, where ``tau = 1 / (1 - lambda_2)`` is the
relaxation time of the Markov chain on bit strings that picks a uniformly random qubit and
resamples its bit from the target's conditional distribution ``pi(x_k | x_{-k})``,
``pi(x) = |<x|psi>|^2`` (``lambda_2``: second-largest eigenvalue of the transition matrix on the
support of ``pi``; the chain is reversible and positive semi-definite). It follows from
``1 - lambda_2(L) >= 1 / tau``: on the vectors ``f(x) psi(x)`` the operator ``L`` acts exactly as
the chain's transition matrix. If the chain is not connected on the support of ``pi`` (GHZ), the
target is *not certifiable* by this protocol (``tau = inf``). A single-string support (a
computational basis state) has ``L = |psi><psi|`` and ``tau = 1``.

For a stabilizer target, ``pi`` is uniform on an affine subspace ``x0 + V``; the chain is
connected iff ``V`` is spanned by the unit vectors ``e_i`` it contains (coordinates ``S``). Then
it resamples a uniformly chosen qubit, which changes the state only if the qubit is in ``S``, and
the characters ``chi_A`` (``A`` a subset of ``S``) are eigenvectors with eigenvalues
``1 - |A| / n``: the gap is ``1 / n`` and ``tau = n`` (the number of qubits) whenever ``S`` is
not empty.

Statistics: ``E[omega]`` is replaced by a one-sided lower confidence bound at ``level``: the
rigorous Hoeffding bound ``mean - 3 sqrt(ln(1/alpha) / (2 R))`` (default), the normal bound
``mean - z_level s.e.``, or the rigorous empirical-Bernstein bound (Maurer and Pontil 2009)
``mean - sqrt(2 V ln(2/alpha) / R) - 7 * 3 ln(2/alpha) / (3 (R - 1))``, with ``alpha = 1 - level``
and ``R`` rounds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
import scipy.stats
import stim

from shadowlab.acquire.certify_sampling import _BASIS_BRAS, CertificationRounds
from shadowlab.errors import QubitCountMismatchError, ShadowlabError, StateError

__all__ = [
    "CONFIDENCE_METHODS",
    "CertificationResult",
    "certify",
    "exact_shadow_overlap",
    "relaxation_time",
    "round_values",
]

#: Ways of turning the sample of omegas into a lower confidence bound on ``E[omega]``.
CONFIDENCE_METHODS = ("hoeffding", "normal", "bernstein")
#: Conditional norms ``|(<z_{-k}| (x) I) psi|^2`` and probabilities ``|psi(x)|^2`` at or below this
#: count as zero (state-vector targets).
ZERO_TOLERANCE = 1e-24
#: Largest state-vector target whose relaxation time is computed (sparse eigen-solve).
MAX_TAU_QUBITS = 16
#: Largest qubit count of :func:`exact_shadow_overlap` (it enumerates ``3 n 2^n`` rounds).
MAX_EXACT_QUBITS = 12
_OMEGA_RANGE = 3.0  # omega lies in [-1, 2]
#: Memory allowed for a stabilizer target's conditional-state tables (bytes).
STABILIZER_TARGET_MEMORY = 2 * 2**30


# ------------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class _StabilizerTarget:
    """Per-qubit conditional-state data of a stabilizer target.

    For qubit ``k``: the conditional state is the eigenstate of Pauli ``kind[k]`` (0 X, 1 Y, 2 Z)
    with eigenvalue ``(-1)^(sign[k] + weights[k][0] . z)``; ``z`` is a possible outcome iff
    ``weights[k][1:] . z = offsets[k] (mod 2)``.
    """

    n: int
    kind: np.ndarray
    sign: np.ndarray
    weights: list[np.ndarray]
    offsets: list[np.ndarray]
    z_checks: np.ndarray  # rows a with a . x = b on the support (RREF)
    z_offsets: np.ndarray


def _as_target(target: Any) -> _StabilizerTarget | np.ndarray:
    if isinstance(target, _StabilizerTarget):
        return target
    if isinstance(target, stim.Circuit):
        return _stabilizer_target(target)
    from shadowlab.acquire.statevector import validate_statevector

    psi, _ = validate_statevector(target, what="target")
    return psi


def _n_of(target: _StabilizerTarget | np.ndarray) -> int:
    return target.n if isinstance(target, _StabilizerTarget) else int(target.size).bit_length() - 1


def _rref(m: np.ndarray, n_cols: int) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over GF(2) on the first ``n_cols`` columns (extra columns ride along)."""
    m = m.copy()
    pivots: list[int] = []
    row = 0
    for col in range(n_cols):
        if row == m.shape[0]:
            break
        hits = np.flatnonzero(m[row:, col]) + row
        if hits.size == 0:
            continue
        p = hits[0]
        if p != row:
            m[[row, p]] = m[[p, row]]
        others = np.flatnonzero(m[:, col])
        others = others[others != row]
        m[others] ^= m[row]
        pivots.append(col)
        row += 1
    return m, pivots


def _stabilizer_target(circuit: stim.Circuit) -> _StabilizerTarget:
    from shadowlab.acquire.stim_sampler import check_state_circuit

    try:
        check_state_circuit(circuit, allow_noise=False)
    except StateError as exc:
        raise StateError(f"the target must be a noiseless unitary Clifford circuit: {exc}") from None
    n = circuit.num_qubits
    if n < 1:
        raise StateError("the target circuit acts on no qubits")
    tableau = circuit.to_tableau()
    gens = [tableau.z_output(q) for q in range(n)]
    xs = np.array([g.to_numpy()[0] for g in gens], dtype=np.uint8)
    # Row-reduce the X parts, tracking which generators were combined.
    reduced, pivots = _rref(np.concatenate([xs, np.eye(n, dtype=np.uint8)], axis=1), n)
    rank = len(pivots)

    def product(combo: np.ndarray) -> stim.PauliString:
        p = stim.PauliString(n)
        for i in np.flatnonzero(combo):
            p *= gens[i]
        return p

    # Z-type stabilizers s Z^a: on the support of pi, a . x = (0 if s = +1 else 1).
    z_rows = []
    for r in range(rank, n):
        p = product(reduced[r, n:])
        z_rows.append(np.concatenate([p.to_numpy()[1].astype(np.uint8), [0 if p.sign == 1 else 1]]))
    zmat = np.array(z_rows, dtype=np.uint8).reshape(-1, n + 1)
    zmat, _ = _rref(zmat, n)
    zmat = zmat[zmat[:, :n].any(axis=1)]
    # Per qubit a (1 + n_z) x n float32 matrix: about 4 n^3 bytes in all; say so before building it.
    need = 4 * n * (1 + zmat.shape[0]) * n
    if need > STABILIZER_TARGET_MEMORY:
        raise ShadowlabError(f"a {n}-qubit stabilizer target needs about {need / 2**30:.1f} GiB of conditional-state "
                             f"tables here (limit {STABILIZER_TARGET_MEMORY / 2**30:.0f} GiB); certify smaller targets")
    kind = np.zeros(n, dtype=np.int8)
    sign = np.zeros(n, dtype=np.uint8)
    weights: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    pivot_row = {col: r for r, col in enumerate(pivots)}
    for k in range(n):
        hits = np.flatnonzero(zmat[:, k])
        if hits.size:
            # Qubit k is fixed by the others: a Z eigenstate, x_k = b + a_{-k} . z_{-k}.
            top = zmat[hits[0]]
            rest = zmat.copy()
            rest[hits[1:]] ^= top
            rest = np.delete(rest, hits[0], axis=0)
            a = top[:n].copy()
            a[k] = 0
            kind[k], sign[k] = 2, top[n]
        else:
            r = pivot_row.get(k)
            if r is None or reduced[r, :n].sum() != 1:
                raise ShadowlabError(f"internal error: no conditional stabilizer found for qubit {k}")
            p = product(reduced[r, n:])
            kind[k] = 0 if p[k] == 1 else 1
            sign[k] = 0 if p.sign == 1 else 1
            a = p.to_numpy()[1].astype(np.uint8)
            a[k] = 0
            rest = zmat
        weights.append(np.concatenate([a[None, :], rest[:, :n]], axis=0).astype(np.float32))
        offsets.append(rest[:, n].copy())
    return _StabilizerTarget(n, kind, sign, weights, offsets, zmat[:, :n].copy(), zmat[:, n].copy())


# ------------------------------------------------------------------------------- round values


def round_values(rounds: CertificationRounds, target: stim.Circuit | np.ndarray) -> np.ndarray:
    """The value ``omega`` of every round (``(R,)`` float64, each in ``{-1, 0, 1/2, 2}`` for stabilizer targets).

    Parameters
    ----------
    rounds:
        Measured rounds.
    target:
        Noiseless stim circuit (stabilizer target, any size) or state vector (qubit 0 = most
        significant bit).

    Raises
    ------
    QubitCountMismatchError
        If the target and the rounds have different qubit counts.
    StateError
        If a stim target is noisy or measures.
    """
    t = _as_target(target)
    _check_counts(rounds, t)
    if isinstance(t, _StabilizerTarget):
        return _stabilizer_values(rounds, t)
    return _vector_values(rounds, t)


def _check_counts(rounds: CertificationRounds, target: _StabilizerTarget | np.ndarray) -> None:
    n = _n_of(target)
    if n != rounds.n_qubits:
        raise QubitCountMismatchError(f"the target has {n} qubits but the rounds measured {rounds.n_qubits}")


def _stabilizer_values(rounds: CertificationRounds, t: _StabilizerTarget) -> np.ndarray:
    omega = np.empty(rounds.n_rounds)
    order = np.argsort(rounds.qubit, kind="stable")
    counts = np.bincount(rounds.qubit, minlength=t.n)
    start = 0
    for k in np.flatnonzero(counts):
        sel = order[start:start + counts[k]]
        start += counts[k]
        parity = (rounds.z[sel].astype(np.float32) @ t.weights[k].T).astype(np.int64) & 1
        eigen_bit = parity[:, 0] ^ t.sign[k]
        valid = np.all(parity[:, 1:] == t.offsets[k][None, :], axis=1)
        same = rounds.basis[sel] == t.kind[k]
        val = np.where(same, np.where(rounds.outcome[sel] == eigen_bit, 2.0, -1.0), 0.5)
        omega[sel] = np.where(valid, val, 0.0)
    return omega


def _vector_values(rounds: CertificationRounds, psi: np.ndarray) -> np.ndarray:
    n = rounds.n_qubits
    place = (1 << np.arange(n - 1, -1, -1, dtype=np.int64))
    # Bit k of z is not a measurement (qubit k was measured in the random basis): mask it out, so
    # a file that stores the outcome there gives the same values as the stabilizer path.
    idx0 = (rounds.z.astype(np.int64) @ place) & ~place[rounds.qubit]
    idx1 = idx0 | place[rounds.qubit]
    a0, a1 = psi[idx0], psi[idx1]
    norm2 = np.abs(a0) ** 2 + np.abs(a1) ** 2
    bras = _BASIS_BRAS[rounds.basis, rounds.outcome]
    overlap = np.abs(bras[:, 0] * a0 + bras[:, 1] * a1) ** 2
    ok = norm2 > ZERO_TOLERANCE
    return np.where(ok, 3.0 * overlap / np.where(ok, norm2, 1.0) - 1.0, 0.0)


def exact_shadow_overlap(target: stim.Circuit | np.ndarray, prepared: stim.Circuit | np.ndarray) -> float:
    """Exact ``E[omega]`` by enumerating every round outcome with its Born probability (small ``n``).

    Parameters
    ----------
    target:
        Stim circuit or state vector.
    prepared:
        Noiseless stim circuit, state vector or density matrix (``n <= 12``); see
        :func:`shadowlab.acquire.certify_sampling.apply_noise` for noisy states.
    """
    from shadowlab.acquire.certify_sampling import _exact_qubits, _exact_sampler_probs

    if isinstance(prepared, stim.Circuit):
        prepared = _circuit_vector(prepared)
    state = np.asarray(prepared)
    n = _exact_qubits(state)
    if n > MAX_EXACT_QUBITS:
        raise ShadowlabError(f"exact enumeration is limited to {MAX_EXACT_QUBITS} qubits, got {n}")
    t = _as_target(target)
    if _n_of(t) != n:
        raise QubitCountMismatchError(f"the target has {_n_of(t)} qubits but the prepared state {n}")
    shifts = np.arange(n - 1, -1, -1, dtype=np.int64)
    bits = ((np.arange(2**n)[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    total = 0.0
    for k in range(n):
        for b in range(3):
            probs = _exact_sampler_probs(state, n, k, b)
            z = bits.copy()
            z[:, k] = 0
            rounds = CertificationRounds(n, np.full(2**n, k), z, np.full(2**n, b), bits[:, k])
            total += float(probs @ round_values(rounds, t))
    return total / (3 * n)


def _circuit_vector(circuit: stim.Circuit) -> np.ndarray:
    """State vector (complex128, qubit 0 = most significant bit) of a noiseless stim circuit."""
    from shadowlab.acquire.stim_sampler import check_state_circuit

    check_state_circuit(circuit, allow_noise=False)
    psi = circuit.to_tableau().to_state_vector(endian="big").astype(np.complex128)
    return psi / np.linalg.norm(psi)


# ------------------------------------------------------------------------------ relaxation time


def relaxation_time(target: stim.Circuit | np.ndarray) -> float:
    """Relaxation time ``tau = 1 / spectral gap`` of the target's single-qubit resampling chain.

    The chain (see the module documentation) picks a uniformly random qubit ``k`` of ``n`` and
    resamples ``x_k`` from ``pi(x_k | x_{-k})``, ``pi(x) = |<x|psi>|^2``. Returns ``inf`` when the
    chain is not connected on the support of ``pi`` (the target cannot be certified by the
    protocol, e.g. GHZ) and ``1`` for a single-string support.

    * Stim circuit (any size): analytic, ``tau = n`` when the support ``x0 + V`` is a subcube
      with at least one free coordinate.
    * State vector (``n <= 16``): exact, from the sparse transition matrix on the support.

    Raises
    ------
    StateError
        If a stim target is noisy or measures; ShadowlabError if a state vector is too large.
    """
    t = _as_target(target)
    if isinstance(t, _StabilizerTarget):
        free = int(np.sum(~t.z_checks.any(axis=0)))
        dim_v = t.n - t.z_checks.shape[0]
        if free != dim_v:
            return math.inf
        return float(t.n) if free else 1.0
    return _vector_relaxation_time(t)


def _vector_relaxation_time(psi: np.ndarray) -> float:
    n = int(psi.size).bit_length() - 1
    if n > MAX_TAU_QUBITS:
        raise ShadowlabError(f"the relaxation time of a state vector is computed up to {MAX_TAU_QUBITS} qubits, "
                             f"got {n}; use a stabilizer (stim) target")
    pi = np.abs(psi) ** 2
    support = np.flatnonzero(pi > ZERO_TOLERANCE)
    m = support.size
    if m == 1:
        return 1.0
    where = np.full(psi.size, -1, dtype=np.int64)
    where[support] = np.arange(m)
    rows, cols, vals = [], [], []
    p_s = pi[support]
    for k in range(n):
        j = where[support ^ (1 << (n - 1 - k))]
        ok = j >= 0
        i = np.flatnonzero(ok)
        pj = p_s[j[ok]]
        pi_i = p_s[i]
        rows.append(i)
        cols.append(j[ok])
        # Symmetrized D^(1/2) P D^(-1/2) of the reversible chain.
        vals.append(np.sqrt(pi_i * pj) / (pi_i + pj) / n)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    off = scipy.sparse.csr_array((v, (r, c)), shape=(m, m))
    n_comp, _ = scipy.sparse.csgraph.connected_components(off, directed=False)
    if n_comp > 1:
        return math.inf
    # Row sums of P: P_xy = (1/n) pi_y / (pi_x + pi_y).
    stay = 1.0 - np.bincount(r, weights=p_s[c] / (p_s[r] + p_s[c]) / n, minlength=m)
    sym = off + scipy.sparse.diags_array(stay)
    if m <= 2048:
        eig = np.linalg.eigvalsh(sym.toarray())
        lam2 = eig[-2]
    else:
        eig = scipy.sparse.linalg.eigsh(sym, k=2, which="LA", return_eigenvectors=False, tol=1e-10)
        lam2 = np.sort(eig)[0]
    gap = 1.0 - lam2
    return math.inf if gap <= 1e-12 else 1.0 / gap


# ---------------------------------------------------------------------------------- certify


@dataclass(frozen=True)
class CertificationResult:
    """Outcome of :func:`certify`.

    Attributes
    ----------
    n_qubits, n_rounds:
        Size of the data.
    shadow_overlap, standard_error:
        Sample mean of ``omega`` and its standard error.
    level, method:
        Confidence level and the method behind ``fidelity_lower_bound``.
    overlap_lower_bounds:
        One-sided lower confidence bounds on ``E[omega]`` by method (hoeffding, normal, bernstein).
    relaxation_time:
        ``tau`` of the target (``inf``: not certifiable).
    fidelity_lower_bounds:
        ``clip(1 - tau (1 - overlap bound), 0, 1)`` by method.
    fidelity_lower_bound:
        The bound of ``method``: with probability at least ``level`` the fidelity
        ``<psi|rho|psi>`` is at least this (rigorously for ``hoeffding`` and ``bernstein``;
        asymptotically, by the normal approximation, for ``normal``).
    threshold, verdict, reason:
        ``verdict`` is ``"certified"`` (bound above ``threshold``), ``"rejected"`` or
        ``"not certifiable"`` (infinite ``tau``); ``reason`` says why in words.
    """

    n_qubits: int
    n_rounds: int
    shadow_overlap: float
    standard_error: float
    level: float
    method: str
    overlap_lower_bounds: dict[str, float]
    relaxation_time: float
    fidelity_lower_bounds: dict[str, float]
    fidelity_lower_bound: float
    threshold: float
    verdict: str
    reason: str

    @property
    def certified(self) -> bool:
        """Whether the verdict is ``"certified"``."""
        return self.verdict == "certified"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; an infinite relaxation time becomes ``None``."""
        d = asdict(self)
        if not math.isfinite(self.relaxation_time):
            d["relaxation_time"] = None
        d["certified"] = self.certified
        return d


def _fidelity_bound(tau: float, overlap_lcb: float) -> float:
    if not math.isfinite(tau):
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - tau * (1.0 - overlap_lcb))))


def certify(
    rounds: CertificationRounds,
    target: stim.Circuit | np.ndarray,
    *,
    level: float = 0.95,
    threshold: float = 0.9,
    method: str = "hoeffding",
) -> CertificationResult:
    """Certify the fidelity of the measured state with a pure target from certification rounds.

    Parameters
    ----------
    rounds:
        Data (:func:`shadowlab.acquire.certify_sampling.sample_certification_rounds` or a file).
    target:
        Noiseless stim circuit (stabilizer target) or state vector (``n <= 16``).
    level:
        One-sided confidence level in ``(0, 1)``.
    threshold:
        The fidelity to certify: verdict ``"certified"`` iff the lower bound exceeds it.
    method:
        ``"hoeffding"`` (rigorous, default), ``"bernstein"`` (rigorous, empirical Bernstein,
        tighter when ``omega`` varies little) or ``"normal"`` (asymptotic).

    Returns
    -------
    CertificationResult
        See the module documentation for the bound ``F >= 1 - tau (1 - E[omega])``.

    Raises
    ------
    QubitCountMismatchError
        If the target and the data have different qubit counts.
    StateError
        If a stim target is noisy or measures (a stabilizer target must be a Clifford state).
    """
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"level must lie strictly between 0 and 1, got {level}")
    if method not in CONFIDENCE_METHODS:
        raise ShadowlabError(f"unknown method {method!r}; expected one of {', '.join(CONFIDENCE_METHODS)}")
    if rounds.n_rounds < 2:
        raise ShadowlabError("certification needs at least 2 rounds")
    t = _as_target(target)
    _check_counts(rounds, t)
    omega = round_values(rounds, t)
    tau = relaxation_time(t)
    r = omega.size
    mean = float(omega.mean())
    var = float(omega.var(ddof=1))
    se = math.sqrt(var / r)
    alpha = 1.0 - level
    lcb = {
        "hoeffding": mean - _OMEGA_RANGE * math.sqrt(math.log(1.0 / alpha) / (2.0 * r)),
        "normal": mean - float(scipy.stats.norm.ppf(level)) * se,
        "bernstein": mean - math.sqrt(2.0 * var * math.log(2.0 / alpha) / r)
        - 7.0 * _OMEGA_RANGE * math.log(2.0 / alpha) / (3.0 * (r - 1)),
    }
    fid = {name: _fidelity_bound(tau, value) for name, value in lcb.items()}
    bound = fid[method]
    if not math.isfinite(tau):
        verdict = "not certifiable"
        reason = ("the target's resampling Markov chain is not connected on the support of its Z-basis "
                  "distribution (infinite relaxation time, e.g. GHZ): this protocol cannot certify it")
    elif bound > threshold:
        verdict = "certified"
        reason = (f"fidelity >= {bound:.4f} > {threshold} at {level:.0%} confidence ({method}); "
                  f"shadow overlap {mean:.5f}, relaxation time {tau:.4g}")
    else:
        verdict = "rejected"
        need = 1.0 - (1.0 - threshold) / tau
        reason = (f"fidelity lower bound {bound:.4f} <= {threshold} ({method}, {level:.0%}): the shadow overlap "
                  f"{mean:.5f} (lower bound {lcb[method]:.5f}) must exceed {need:.5f} for relaxation time "
                  f"{tau:.4g}")
        if mean < need:
            reason += "; the estimate itself is too low (the state is likely far from the target)"
        else:
            reason += "; more rounds may certify it"
    return CertificationResult(
        n_qubits=rounds.n_qubits, n_rounds=r, shadow_overlap=mean, standard_error=se, level=level, method=method,
        overlap_lower_bounds=lcb, relaxation_time=tau, fidelity_lower_bounds=fid, fidelity_lower_bound=bound,
        threshold=threshold, verdict=verdict, reason=reason,
    )
