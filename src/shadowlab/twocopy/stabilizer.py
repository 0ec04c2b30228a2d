"""Learning an unknown stabilizer state from Bell-sampled copies, and verifying it (Montanaro 2017).

Conventions
-----------
A Pauli is written by symplectic bits ``(x, z)`` in ``GF(2)^{2n}``: ``x[q] = 1`` for ``X`` or ``Y`` on
qubit ``q``, ``z[q] = 1`` for ``Z`` or ``Y`` (the Hermitian Pauli, ``Y = i X Z``). Packed vectors
are ``[x words | z words]``, ``W = ceil(n / 64)`` ``uint64`` words each, bit ``q`` of a half in
bit ``q % 64`` of word ``q // 64``. The symplectic form is ``<u, v> = u.x . v.z + u.z . v.x (mod 2)``.

The Bell-sampling statement (our convention)
--------------------------------------------
With the Bell measurement of :mod:`shadowlab.twocopy`, ``P (x) P`` has eigenvalue
``(-1)**(#Y(P) + x.a + z.c)`` on a shot. For a pure stabilizer state ``|psi>`` with stabilizer
group ``S`` and symplectic (Lagrangian) subspace ``L = {(x, z) : +-P(x, z) in S}``, every
``P (x) P`` with ``(x, z) in L`` stabilizes ``|psi> (x) |psi>`` (the sign squares away), so every
shot satisfies ``x.a + z.c = |x AND z| (mod 2)`` for all ``(x, z) in L``. Written with the
symplectic form, that is ``<(x, z), (c, a)> = q(x, z)``: the Pauli of a shot is
``sigma_b = (x = c, z = a)`` -- note the swap -- and ``sigma_b`` lies in one fixed coset
``w0 + L`` (``L`` is its own symplectic complement, and ``q`` is linear on an isotropic
subspace). The outcome is *uniform* on that coset (``2**n`` outcomes of probability ``2**-n``
each; checked exactly against :func:`shadowlab.twocopy.simulate.bell_distribution` in the tests).
Hence the differences ``sigma_{b_i} + sigma_{b_0}`` (``i >= 1``) are independent uniform vectors of
``L``: ``k = n + t`` of them span ``L`` with probability ``prod_j (1 - 2**(j - k)) >= 1 - 2**-t``.

Algorithm (:func:`learn_stabilizer_state`)
------------------------------------------
1. *Subspace*: Bell shots (two copies each) are turned into difference vectors and row-reduced
   over ``GF(2)`` (bit-packed, numba) until ``n`` independent, pairwise commuting vectors are
   found. A difference that anticommutes with the span so far cannot come from a pure
   stabilizer state; it is rejected and counted (noise). With fewer than ``n`` independent
   vectors the learner says so -- status ``"insufficient_shots"`` and an estimate of the missing
   shots -- or, in adaptive mode, draws more shots.
2. *Signs*: the basis is brought to graph form (Hadamards on a qubit set ``Q``, then row
   reduction to ``X``-part identity) which gives a Clifford ``D`` (``O(n^2)`` gates) with
   ``D^dagger Z_i D = +-g_i``. A fresh copy rotated by ``D`` is a computational basis state
   ``|m>`` for a pure state in the learned group, and ``m`` gives every sign at once: the learned
   stabilizers are ``(-1)**m_i D^dagger Z_i D``. ``sign_copies`` copies (odd) are majority voted.
3. *Verification*: ``verify_copies`` further copies are rotated by ``D`` and measured; a copy
   *passes* if its bits equal ``m`` (every learned generator read ``+1``). The probability of
   passing is the fidelity ``<phi|rho|phi>`` of the unknown ``rho`` with the learned state
   ``|phi>``, so the pass fraction estimates that fidelity, and a wrong *pure stabilizer* state
   (fidelity ``<= 1/2``) is accepted with probability ``<= 2**-verify_copies``.

The learner sees measurement data only: it calls ``sample_bell(shots) -> BellData`` and
``sample_single(circuit, shots) -> bits``; :func:`stim_samplers` builds both from a hidden stim
circuit for simulations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.clifford_shadows import random_clifford
from shadowlab.acquire.clifford_states import cluster_circuit, ghz_circuit
from shadowlab.acquire.stim_sampler import check_state_circuit
from shadowlab.errors import QubitCountMismatchError, ShadowlabError
from shadowlab.paulis import PauliString
from shadowlab.twocopy.data import BellData
from shadowlab.twocopy.gf2 import (
    absorb_commuting,
    count_in_coset,
    graph_form,
    pack_bits,
    solve_square,
    unpack_bits,
)
from shadowlab.twocopy.simulate import two_copy_circuit

__all__ = [
    "StabilizerLearningResult",
    "SubspaceResult",
    "bell_subspace",
    "graph_form_circuits",
    "learn_stabilizer_state",
    "plot_stabilizer_learning",
    "random_stabilizer_circuit",
    "same_stabilizer_state",
    "signed_labels",
    "stabilizer_learning_study",
    "stim_samplers",
    "verify_stabilizer_state",
]

SampleBell = Callable[[int], BellData]
SampleSingle = Callable[[stim.Circuit, int], np.ndarray]

STATUS_LEARNED = "learned"
STATUS_INSUFFICIENT = "insufficient_shots"
STATUS_INCONSISTENT = "inconsistent"


# -- bit packing -------------------------------------------------------------------------------------
def _words(n: int) -> int:
    return -(-n // 64)


def _shot_paulis(data: BellData) -> np.ndarray:
    """Packed symplectic vectors ``sigma_b = (x = c, z = a)`` of every shot: ``(shots, 2W)`` uint64."""
    # The swap is the convention's: <(x, z), (c, a)> = x.a + z.c is the exponent of P (x) P.
    return np.concatenate([pack_bits(data.c), pack_bits(data.a)], axis=1)


# -- GF(2) elimination of Bell differences (kernels in shadowlab.twocopy.gf2) -----------------------
@dataclass
class SubspaceResult:
    """Row-reduced span of Bell-sample differences (step 1 of the learner).

    Attributes
    ----------
    n_qubits:
        ``n``.
    basis:
        ``(n, 2W)`` packed rows; the first ``rank`` are independent and pairwise commuting.
    pivots:
        Pivot bit of each basis row (index into the packed ``[x | z]`` vector).
    rank:
        Dimension of the span (``n`` means a Lagrangian subspace was found).
    shots:
        Bell shots available (including the anchor).
    anchor:
        Index of the anchor shot ``b_0`` whose differences were reduced.
    dependent:
        Differences already in the span when reached.
    rejected:
        Differences anticommuting with the span so far (impossible for a pure stabilizer state).
    shots_to_full_rank:
        Shots consumed, anchor included, when the span was completed; ``None`` if it was not.
    consistency:
        Fraction of all shots lying in ``sigma_{b_0} + span``: 1 for a pure stabilizer state and the
        right span; at most about 1/2 of the clean shots for a wrong span.
    """

    n_qubits: int
    basis: np.ndarray
    pivots: np.ndarray
    rank: int
    shots: int
    anchor: int
    dependent: int
    rejected: int
    shots_to_full_rank: int | None
    consistency: float

    @property
    def complete(self) -> bool:
        """Whether ``n`` independent commuting vectors were found."""
        return self.rank == self.n_qubits

    def bits(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``rank`` basis vectors unpacked: ``(x, z)``, each ``(rank, n)`` uint8."""
        words = _words(self.n_qubits)
        rows = self.basis[: self.rank]
        return unpack_bits(rows[:, :words], self.n_qubits), unpack_bits(rows[:, words:], self.n_qubits)


def _subspace_from_anchor(vecs: np.ndarray, n: int, anchor: int) -> SubspaceResult:
    """Greedy span of ``vecs[i] ^ vecs[anchor]`` taken in the cyclic order ``anchor + 1, anchor + 2, ...``."""
    words = _words(n)
    order = np.concatenate([vecs[anchor + 1:], vecs[:anchor]])
    basis = np.zeros((n, 2 * words), np.uint64)
    pivots = np.zeros(n, np.int64)
    rank, dep, rej, used = absorb_commuting(order, vecs[anchor], basis, pivots, 0, n, words)
    inside = count_in_coset(vecs, vecs[anchor], basis, pivots, rank, words)
    return SubspaceResult(n, basis, pivots, int(rank), int(vecs.shape[0]), anchor, int(dep), int(rej),
                          int(used) + 1 if rank == n else None, inside / vecs.shape[0])


def _best_subspace(vecs: np.ndarray, n: int, restarts: int) -> SubspaceResult:
    """Anchor 0 first; if its span is incomplete or not consistent with every shot, try more anchors.

    A noisy shot taken as the anchor, or accepted early into the span, spoils the greedy span;
    another anchor and order usually avoid it. The most consistent complete span wins (ties: the
    earliest anchor), else the largest rank. Without noise the first attempt is final.
    """
    best = _subspace_from_anchor(vecs, n, 0)
    if best.complete and best.consistency == 1.0:
        return best
    for anchor in range(1, min(restarts, vecs.shape[0])):
        cand = _subspace_from_anchor(vecs, n, anchor)
        if (cand.complete, cand.consistency if cand.complete else cand.rank) > (
                best.complete, best.consistency if best.complete else best.rank):
            best = cand
    return best


def bell_subspace(data: BellData, n_qubits: int | None = None, *, restarts: int = 1) -> SubspaceResult:
    """Span of the differences ``sigma_{b_i} + sigma_{b_0}`` of Bell shots, row-reduced over ``GF(2)``.

    Parameters
    ----------
    data:
        Bell shots on two copies of the state; ``sigma_b`` has ``x = c`` and ``z = a``.
    n_qubits:
        Expected qubits per copy (checked) -- default ``data.n_qubits``.
    restarts:
        Anchors to try when the first span is incomplete or inconsistent (noisy data).

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab.twocopy.simulate import sample_bell_stim
    >>> from shadowlab.acquire.clifford_states import ghz_circuit
    >>> sub = bell_subspace(sample_bell_stim(ghz_circuit(4), 30, np.random.default_rng(0)))
    >>> sub.rank, sub.rejected, sub.consistency
    (4, 0, 1.0)
    """
    n = data.n_qubits if n_qubits is None else _check_count("n_qubits", n_qubits, 1)
    if data.n_qubits != n:
        raise QubitCountMismatchError(f"Bell data have {data.n_qubits} qubits per copy, expected {n}")
    if data.n_shots < 1:
        raise ShadowlabError("need at least one Bell shot")
    return _best_subspace(_shot_paulis(data), n, _check_count("restarts", restarts, 1))


# -- graph form and the diagonalizing Clifford -------------------------------------------------------
def _append(circuit: stim.Circuit, gate: str, targets: Sequence[int] | range) -> None:
    """Append one gate layer (nothing if ``targets`` is empty).

    Goes through stim's text parser: ``Circuit.append`` with a long Python list costs ~15 us per
    target (0.3 s for the ~20,000 CZ targets of a random 200-qubit graph state), parsing ~0.3 us.
    """
    if len(targets):
        circuit += stim.Circuit(f"{gate} " + " ".join(str(int(q)) for q in targets))


def graph_form_circuits(x: np.ndarray, z: np.ndarray) -> tuple[stim.Circuit, stim.Circuit]:
    """Circuits ``(prep, diag)`` for the group generated by ``n`` independent commuting Paulis.

    ``prep`` = ``H`` on all qubits, ``CZ`` on the graph, ``S`` on the looped vertices, ``H`` on the
    Hadamard set; it maps each ``Z_i`` to ``+-`` a product of the given Paulis, so ``prep|m>`` runs
    over the ``2**n`` sign choices of the group. ``diag`` is its inverse: it maps every element of
    the group to ``+-`` a product of ``Z``'s. Cost ``O(n^3)`` bit operations, ``O(n^2)`` gates.

    Parameters
    ----------
    x, z:
        ``(n, n)`` 0/1 arrays, row ``i`` the symplectic bits of Pauli ``i``.

    Raises
    ------
    ShadowlabError
        If the rows are not ``n`` independent, pairwise commuting Paulis.
    """
    x = np.asarray(x, dtype=np.uint8)
    z = np.asarray(z, dtype=np.uint8)
    if x.ndim != 2 or x.shape != z.shape or x.shape[0] != x.shape[1]:
        raise ShadowlabError(f"expected two (n, n) bit arrays, got shapes {x.shape} and {z.shape}")
    n = x.shape[0]
    had, b, ok = graph_form(np.concatenate([x, z], axis=1))
    if not ok:
        raise ShadowlabError("the Paulis are not n independent, pairwise commuting strings")
    hq = [int(q) for q in np.flatnonzero(had)]
    loops = [int(q) for q in np.flatnonzero(np.diag(b))]
    iu, ju = np.nonzero(np.triu(b, 1))
    edges = [int(q) for pair in zip(iu, ju, strict=True) for q in pair]
    prep = stim.Circuit()
    _append(prep, "H", range(n))
    _append(prep, "CZ", edges)
    _append(prep, "S", loops)
    _append(prep, "H", hq)
    diag = stim.Circuit()
    _append(diag, "H", hq)
    _append(diag, "S_DAG", loops)
    _append(diag, "CZ", edges)
    _append(diag, "H", range(n))
    return prep, diag


def _signed_generators(prep: stim.Circuit, m: np.ndarray, n: int) -> tuple[stim.PauliString, ...]:
    """Stabilizers ``(-1)**m_i prep Z_i prep^dagger`` of the state ``prep|m>``."""
    tab = stim.Tableau.from_circuit(prep)
    if len(tab) < n:  # trailing qubits untouched by the circuit cannot occur (H acts on all), but be safe
        tab = tab + stim.Tableau(n - len(tab))
    out = []
    for i in range(n):
        g = tab.z_output(i)
        out.append(-g if m[i] else g)
    return tuple(out)


def signed_labels(generators: Sequence[stim.PauliString]) -> list[str]:
    """Sparse signed labels such as ``'+X0 Z3'`` or ``'-Y2'`` (qubit ``q`` = stim qubit ``q``)."""
    out = []
    for g in generators:
        p = PauliString.from_stim(g)
        sign = g.sign
        if sign not in (1, -1):  # pragma: no cover - Hermitian generators only
            raise ShadowlabError(f"generator {g} is not Hermitian")
        out.append(("+" if sign == 1 else "-") + p.to_sparse())
    return out


# -- the learner -------------------------------------------------------------------------------------
@dataclass
class StabilizerLearningResult:
    """What :func:`learn_stabilizer_state` found, and the copies it used.

    Attributes
    ----------
    status:
        ``"learned"`` (``n`` generators and signs determined), ``"insufficient_shots"`` (fewer
        than ``n`` independent differences: nothing is guessed) or ``"inconsistent"`` (the
        data cannot come from a pure stabilizer state, e.g. the sign copies disagree).
    success:
        ``status == "learned"`` and the experimental verification accepted.
    generators:
        ``n`` signed, independent, commuting stabilizers of the learned state (empty unless learned).
    circuit:
        A Clifford circuit preparing the learned state from ``|0...0>`` (``None`` unless learned).
    diagonalizer:
        The Clifford applied before the single-copy measurements (``None`` unless learned).
    rank, rejected_shots, shots_to_full_rank, bell_consistency:
        From the subspace step (:class:`SubspaceResult`).
    bell_shots:
        Bell shots drawn (two copies each).
    sign_copies, verify_copies:
        Single copies measured for the signs and for the verification.
    sign_disagreements:
        Sign copies whose bits differ from the majority (0 for a pure state).
    verified:
        Whether at least ``min_pass_fraction`` of the verification copies passed (by default
        every copy: all learned generators read ``+1``); ``None`` if not run.
    verify_pass_fraction:
        Fraction of verification copies that passed: an unbiased estimate of the fidelity of the
        unknown state with the learned one.
    shots_needed:
        When ``status == "insufficient_shots"``: more Bell shots suggested (missing rank plus the
        safety margin, each extra shot halving the failure probability).
    message:
        A sentence for people.
    """

    n_qubits: int
    status: str
    success: bool
    generators: tuple[stim.PauliString, ...] = ()
    circuit: stim.Circuit | None = None
    diagonalizer: stim.Circuit | None = None
    rank: int = 0
    bell_shots: int = 0
    rejected_shots: int = 0
    shots_to_full_rank: int | None = None
    bell_consistency: float | None = None
    sign_copies: int = 0
    sign_disagreements: int = 0
    verify_copies: int = 0
    verified: bool | None = None
    verify_pass_fraction: float | None = None
    shots_needed: int = 0
    message: str = ""
    seconds: float = 0.0

    @property
    def bell_copies(self) -> int:
        """Copies consumed by Bell sampling: two per shot."""
        return 2 * self.bell_shots

    @property
    def learning_copies(self) -> int:
        """Copies needed to learn the state (Bell copies plus sign copies), without verification."""
        return self.bell_copies + self.sign_copies

    @property
    def total_copies(self) -> int:
        """Every copy consumed: Bell, sign and verification copies."""
        return self.bell_copies + self.sign_copies + self.verify_copies

    @property
    def labels(self) -> list[str]:
        """The learned generators as signed sparse labels (``'+X0 Z1'``)."""
        return signed_labels(self.generators)

    def summary(self) -> dict[str, Any]:
        """JSON-serializable summary (no generators)."""
        return {
            "n_qubits": self.n_qubits, "status": self.status, "success": self.success, "rank": self.rank,
            "bell_shots": self.bell_shots, "bell_copies": self.bell_copies, "sign_copies": self.sign_copies,
            "verify_copies": self.verify_copies, "total_copies": self.total_copies,
            "rejected_shots": self.rejected_shots, "shots_to_full_rank": self.shots_to_full_rank,
            "bell_consistency": self.bell_consistency,
            "sign_disagreements": self.sign_disagreements, "verified": self.verified,
            "verify_pass_fraction": self.verify_pass_fraction, "shots_needed": self.shots_needed,
            "message": self.message, "seconds": self.seconds,
        }


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ShadowlabError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _single_bits(sample_single: SampleSingle, circuit: stim.Circuit, shots: int, n: int) -> np.ndarray:
    bits = np.asarray(sample_single(circuit, shots))
    if bits.shape != (shots, n):
        raise QubitCountMismatchError(f"sample_single returned shape {bits.shape}, expected ({shots}, {n}) "
                                      "(one row of n computational-basis bits per copy)")
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ShadowlabError("sample_single must return 0/1 bits")
    return bits.astype(np.uint8)


def learn_stabilizer_state(
    sample_bell: SampleBell,
    sample_single: SampleSingle,
    n: int,
    *,
    bell_shots: int | None = None,
    adaptive: bool = True,
    extra_shots: int = 8,
    max_bell_shots: int | None = None,
    sign_copies: int = 3,
    verify_copies: int = 10,
    min_pass_fraction: float = 1.0,
    restarts: int = 4,
) -> StabilizerLearningResult:
    """Learn an unknown ``n``-qubit stabilizer state from measurement data only, then verify it.

    Parameters
    ----------
    sample_bell:
        ``sample_bell(k)`` returns ``k`` fresh Bell shots (:class:`BellData`, ``2k`` copies).
    sample_single:
        ``sample_single(circuit, k)`` prepares ``k`` fresh copies, applies ``circuit`` (a Clifford
        chosen by the learner) and returns the ``(k, n)`` computational-basis bits (1 = ``|1>``).
    n:
        Qubits of the state.
    bell_shots:
        Bell shots of the first batch; default ``n + 1 + extra_shots``. The differences of
        ``n + 1 + t`` shots span the stabilizer subspace with probability ``>= 1 - 2**-t``.
    adaptive:
        If True, draw further batches (missing rank ``+ extra_shots``) until the span is complete
        or ``max_bell_shots`` is reached. If False, the first batch is all: with too few shots the
        result has status ``"insufficient_shots"``, no generators, and ``shots_needed``.
    extra_shots:
        Safety margin ``t`` of each batch.
    max_bell_shots:
        Cap on Bell shots in adaptive mode (default ``4 (n + 1) + 8 extra_shots``).
    sign_copies:
        Odd number of single copies majority-voted for the signs.
    verify_copies:
        Single copies for the verification (``0`` skips it: ``verified`` is then ``None`` and
        ``success`` means learned).
    min_pass_fraction:
        Fraction of verification copies that must pass. The default 1 accepts only if every
        learned generator read ``+1`` on every copy; a noisy but correctly learned state has
        pass probability ``F < 1`` and then needs a threshold below ``F``.
    restarts:
        Anchors tried on the same shots when the first greedy span is incomplete or does not
        contain every shot (noise). No extra copies are used.

    Notes
    -----
    Noise (documented behaviour): a noisy Bell shot gives a difference outside the stabilizer
    subspace. If it anticommutes with the span so far it is rejected (``rejected_shots``); if it
    is accepted, the span is wrong and later clean shots get rejected. The learner then tries
    other anchors on the same shots and keeps the span containing the most shots
    (``bell_consistency``). When no attempt reaches ``n`` dimensions the result is
    ``"insufficient_shots"``; a wrong span leads to disagreeing sign copies (``"inconsistent"``
    if none agrees with the vote) or to a rejection by the verification. The learner is exact for
    pure states and reliable while ``(n + extra_shots)`` Bell shots are mostly noiseless.

    Returns
    -------
    StabilizerLearningResult
    """
    t0 = time.perf_counter()
    n = _check_count("n", n, 1)
    extra_shots = _check_count("extra_shots", extra_shots, 0)
    sign_copies = _check_count("sign_copies", sign_copies, 1)
    verify_copies = _check_count("verify_copies", verify_copies, 0)
    if not 0.0 <= min_pass_fraction <= 1.0:
        raise ShadowlabError(f"min_pass_fraction must be in [0, 1], got {min_pass_fraction}")
    restarts = _check_count("restarts", restarts, 1)
    if sign_copies % 2 == 0:
        raise ShadowlabError(f"sign_copies must be odd so that the majority vote has no ties, got {sign_copies}")
    first = n + 1 + extra_shots if bell_shots is None else _check_count("bell_shots", bell_shots, 2)
    cap = 4 * (n + 1) + 8 * extra_shots if max_bell_shots is None else _check_count("max_bell_shots",
                                                                                      max_bell_shots, 2)
    if adaptive and cap < first:
        raise ShadowlabError(f"max_bell_shots={cap} is smaller than the first batch of {first} shots")

    parts: list[np.ndarray] = []
    batch = first
    while True:
        data = sample_bell(batch)
        if not isinstance(data, BellData):
            raise ShadowlabError(f"sample_bell must return BellData, got {type(data).__name__}")
        if data.n_shots != batch or data.n_qubits != n:
            raise QubitCountMismatchError(f"sample_bell({batch}) returned {data.n_shots} shots of {data.n_qubits} "
                                          f"qubits, expected {batch} shots of {n} qubits")
        parts.append(_shot_paulis(data))
        # Re-reducing every shot is O(shots n^2 / 64) word operations: negligible next to sampling.
        sub = _best_subspace(np.concatenate(parts), n, restarts)
        if sub.complete or not adaptive:
            break
        batch = min(n - sub.rank + extra_shots, cap - sub.shots)
        if batch <= 0:
            break

    common: dict[str, Any] = {"rank": sub.rank, "bell_shots": sub.shots, "rejected_shots": sub.rejected,
                              "shots_to_full_rank": sub.shots_to_full_rank, "bell_consistency": sub.consistency}
    if not sub.complete:
        needed = n - sub.rank + extra_shots
        why = (f"{sub.rejected} shots were rejected as inconsistent with a pure stabilizer state; "
               if sub.rejected else "")
        msg = (f"only {sub.rank} of {n} independent stabilizer directions from {sub.shots} Bell shots "
               f"({2 * sub.shots} copies); {why}about {needed} more shots are needed -- not guessing")
        return StabilizerLearningResult(n, STATUS_INSUFFICIENT, False, shots_needed=needed, message=msg,
                                        seconds=time.perf_counter() - t0, **common)

    x, z = sub.bits()
    prep, diag = graph_form_circuits(x, z)
    bits = _single_bits(sample_single, diag, sign_copies, n)
    m = (2 * bits.sum(axis=0, dtype=np.int64) > sign_copies).astype(np.uint8)
    disagree = int((bits != m[None, :]).any(axis=1).sum())
    generators = _signed_generators(prep, m, n)
    learned = stim.Circuit()
    _append(learned, "X", np.flatnonzero(m))
    learned += prep
    common.update(generators=generators, circuit=learned, diagonalizer=diag, sign_copies=sign_copies,
                  sign_disagreements=disagree)
    if disagree == sign_copies:
        # No copy agrees with the vote: the rotated state is not a basis state at all.
        return StabilizerLearningResult(n, STATUS_INCONSISTENT, False, message=(
            "every sign copy disagrees with the majority: the state is far from the learned stabilizer group"),
            seconds=time.perf_counter() - t0, **common)

    verified: bool | None = None
    frac: float | None = None
    if verify_copies:
        vbits = _single_bits(sample_single, diag, verify_copies, n)
        passed = int((vbits == m[None, :]).all(axis=1).sum())
        frac = passed / verify_copies
        verified = passed >= min_pass_fraction * verify_copies
    success = verified is not False
    msg = (f"learned {n} signed generators from {sub.shots} Bell shots ({2 * sub.shots} copies) and "
           f"{sign_copies} sign copies")
    if verified is not None:
        msg += f"; verification {'accepted' if verified else 'rejected'} ({passed}/{verify_copies} copies passed)"
    return StabilizerLearningResult(n, STATUS_LEARNED, success, verify_copies=verify_copies, verified=verified,
                                    verify_pass_fraction=frac, message=msg, seconds=time.perf_counter() - t0,
                                    **common)


# -- checks against the truth ------------------------------------------------------------------------
def _as_generators(learned: StabilizerLearningResult | Sequence[stim.PauliString | str]) -> list[stim.PauliString]:
    if isinstance(learned, StabilizerLearningResult):
        return list(learned.generators)
    out = []
    for g in learned:
        if isinstance(g, stim.PauliString):
            out.append(g)
        elif isinstance(g, str):
            label = g.strip()
            sign = -1 if label.startswith("-") else 1
            body = label.lstrip("+-").strip()
            if body and body[0].isalpha() and any(ch.isdigit() for ch in body):
                p = PauliString.from_label(body)
                ps = p.to_stim(p.qubits[-1] + 1 if p.qubits else 1)
            else:
                ps = stim.PauliString(body)
            out.append(ps if sign == 1 else -ps)
        else:
            raise ShadowlabError(f"a generator must be a stim.PauliString or a label, got {type(g).__name__}")
    return out


def same_stabilizer_state(
    learned: StabilizerLearningResult | Sequence[stim.PauliString | str],
    true_circuit: stim.Circuit,
    n_qubits: int | None = None,
    *,
    ignore_noise: bool = False,
) -> bool:
    """Exact check: is the learned state the state ``true_circuit|0...0>``?

    ``n`` independent commuting generators that all have expectation ``+1`` on the pure state
    determine it, so the check peeks every generator with :class:`stim.TableauSimulator`
    (``O(n^3 / 64)``). Independence and commutation are checked too (a redundant list cannot
    pin down the state).

    Parameters
    ----------
    learned:
        A result (its ``generators``) or signed Paulis / labels (``'+X0 Z1'``, ``'-XZ'``).
    true_circuit:
        The hidden preparation; must be noiseless unless ``ignore_noise`` (then its noise
        channels are dropped and the ideal state is compared).
    n_qubits:
        Qubits of the state (default: the largest of the circuit's and the generators' sizes).
    """
    gens = _as_generators(learned)
    circuit = true_circuit.without_noise() if ignore_noise else true_circuit
    check_state_circuit(circuit, allow_noise=False)
    n = max([circuit.num_qubits, *(len(g) for g in gens)]) if n_qubits is None else int(n_qubits)
    if len(gens) != n:
        return False
    padded = [g + stim.PauliString(n - len(g)) if len(g) < n else g for g in gens]
    x = np.array([p.to_numpy()[0] for p in padded], dtype=np.uint8)
    z = np.array([p.to_numpy()[1] for p in padded], dtype=np.uint8)
    if not graph_form(np.concatenate([x, z], axis=1))[2]:
        return False
    sim = stim.TableauSimulator()
    sim.set_num_qubits(n)
    sim.do_circuit(circuit)
    return all(sim.peek_observable_expectation(p) == 1 for p in padded)


def verify_stabilizer_state(
    claimed: StabilizerLearningResult | Sequence[stim.PauliString | str],
    sample_single: SampleSingle,
    copies: int,
    n_qubits: int | None = None,
    *,
    min_pass_fraction: float = 1.0,
) -> tuple[bool, float]:
    """Experimental check of a claimed stabilizer state on fresh copies of the unknown state.

    The claimed generators ``g_i`` are diagonalized by one Clifford ``D``
    (:func:`graph_form_circuits`): ``D g_i D^dagger = s_i Z^{r_i}``. The claimed state is then
    ``D^dagger |m>`` with ``r_i . m = [s_i = -1]``, and a copy *passes* if it reads ``m``
    after ``D`` (all generators ``+1``). A copy of ``rho`` passes with probability
    ``<phi|rho|phi>``, so a wrong pure stabilizer state passes ``copies`` copies with
    probability at most ``2**-copies``.

    Parameters
    ----------
    claimed:
        A learning result or ``n`` signed generators (:class:`stim.PauliString` or labels).
    sample_single:
        As for :func:`learn_stabilizer_state`.
    copies:
        Fresh copies to measure (``>= 1``).
    n_qubits:
        Qubits of the state (default: the generators' length).
    min_pass_fraction:
        Fraction of copies that must pass (1: all).

    Returns
    -------
    (accepted, pass_fraction)
    """
    gens = _as_generators(claimed)
    if not gens:
        raise ShadowlabError("no generators to verify (was the state learned?)")
    n = max(len(g) for g in gens) if n_qubits is None else _check_count("n_qubits", n_qubits, 1)
    copies = _check_count("copies", copies, 1)
    if len(gens) != n:
        raise ShadowlabError(f"a stabilizer state of {n} qubits needs {n} generators, got {len(gens)}")
    padded = [g + stim.PauliString(n - len(g)) if len(g) < n else g for g in gens]
    x = np.array([p.to_numpy()[0] for p in padded], dtype=np.uint8)
    z = np.array([p.to_numpy()[1] for p in padded], dtype=np.uint8)
    _, diag = graph_form_circuits(x, z)
    tab = stim.Tableau.from_circuit(diag)
    images = [tab(p) for p in padded]
    r = np.array([im.to_numpy()[1] for im in images], dtype=np.uint8)
    rhs = np.array([im.sign == -1 for im in images], dtype=np.uint8)
    m, ok = solve_square(r, rhs)
    if not ok:  # pragma: no cover - D maps n independent generators to n independent Z strings
        raise ShadowlabError("internal error: the diagonalized generators are dependent")
    bits = _single_bits(sample_single, diag, copies, n)
    frac = float((bits == m[None, :]).all(axis=1).mean())
    return frac >= min_pass_fraction, frac


# -- simulation helpers ------------------------------------------------------------------------------
def stim_samplers(prep: stim.Circuit, rng: np.random.Generator, n_qubits: int | None = None
                  ) -> tuple[SampleBell, SampleSingle]:
    """``(sample_bell, sample_single)`` for the state a hidden stim circuit prepares (noise allowed).

    Every call prepares fresh copies (noise channels are sampled independently per copy); all
    randomness comes from ``rng``. The learner only sees the returned bits.
    """
    check_state_circuit(prep)
    n = prep.num_qubits if n_qubits is None else _check_count("n_qubits", n_qubits, 1)
    if prep.num_qubits > n:
        raise QubitCountMismatchError(f"the preparation acts on {prep.num_qubits} qubits, more than n_qubits={n}")

    noisy = check_state_circuit(prep)
    # One compiled two-copy sampler for every call: building and compiling the 2n-qubit circuit
    # costs more than sampling a batch; stim's sampler advances its own (rng-seeded) stream.
    bell: list[stim.CompiledMeasurementSampler] = []

    def sample_bell(shots: int) -> BellData:
        if shots < 0:
            raise ShadowlabError(f"shots must be >= 0, got {shots}")
        if not bell:
            bell.append(two_copy_circuit(prep, n).compile_sampler(seed=int(rng.integers(2**62))))
        bits = bell[0].sample(shots).astype(np.uint8)
        return BellData(bits[:, :n], bits[:, n:], {"source": "stim", "noisy": noisy})

    def sample_single(circuit: stim.Circuit, shots: int) -> np.ndarray:
        full = prep.copy()
        full += circuit
        full.append("M", range(n))
        sampler = full.compile_sampler(seed=int(rng.integers(2**62)))
        return sampler.sample(shots).astype(np.uint8)

    return sample_bell, sample_single


def random_stabilizer_circuit(n: int, rng: np.random.Generator) -> stim.Circuit:
    """A circuit preparing a uniformly random ``n``-qubit stabilizer state (numpy randomness only).

    The unsigned stabilizer group is that of ``U|0>`` for a uniform Clifford ``U``
    (:func:`shadowlab.acquire.clifford_shadows.random_clifford`), which is uniform over
    Lagrangian subspaces; the ``2**n`` sign patterns are drawn uniformly as ``X^m`` before the
    graph-form preparation. ``O(n^3 / 64)`` time, ``O(n^2)`` gates (stim's own synthesis is
    ``O(n^3)`` with a large constant: seconds at ``n = 200``).
    """
    n = _check_count("n", n, 1)
    tab = random_clifford(n, rng)
    _, _, z2x, z2z, _, _ = tab.to_numpy()
    prep, _ = graph_form_circuits(z2x.astype(np.uint8), z2z.astype(np.uint8))
    m = rng.integers(0, 2, size=n)
    out = stim.Circuit()
    _append(out, "X", np.flatnonzero(m))
    out += prep
    return out


def _family_circuit(family: str, n: int, rng: np.random.Generator) -> stim.Circuit:
    if family == "random":
        return random_stabilizer_circuit(n, rng)
    if family == "ghz":
        return ghz_circuit(n)
    if family == "cluster":
        return cluster_circuit(n)
    raise ShadowlabError(f"unknown state family {family!r}; expected 'random', 'ghz' or 'cluster'")


# -- study and plot ----------------------------------------------------------------------------------
def stabilizer_learning_study(
    n_values: Sequence[int],
    trials: int | Sequence[int],
    seed: int,
    *,
    family: str = "random",
    noise: float = 0.0,
    extra_shots: int = 8,
    sign_copies: int = 3,
    verify_copies: int = 10,
    min_pass_fraction: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Learn ``trials`` seeded states per ``n`` and summarize success and copies.

    Trial ``t`` at size ``n`` uses ``numpy.random.default_rng([seed, n, t])`` for the state and
    all sampling. *Success* = the learner returned ``"learned"``, the verification accepted, and
    the learned state is exactly the true (noiseless) state. With ``noise > 0`` a
    ``DEPOLARIZE1(noise)`` layer follows the preparation.

    Returns
    -------
    dict
        ``{"params": ..., "rows": [...], "trials": [...]}``; one row per ``n`` with the success
        rate, exact-match and verification rates, copies (mean/max/min, Bell/sign/verify), the
        constant ``copies / n`` and wall times (state generation and learning separately).
    """
    if noise < 0 or noise > 0.75:
        raise ShadowlabError(f"noise must be a depolarizing probability in [0, 0.75], got {noise}")
    per_n = list(trials) if isinstance(trials, Sequence) else [int(trials)] * len(n_values)
    if len(per_n) != len(n_values):
        raise ShadowlabError(f"got {len(per_n)} trial counts for {len(n_values)} sizes")
    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for n, count in zip(n_values, per_n, strict=True):
        n = _check_count("n", n, 1)
        _check_count("trials", count, 1)
        recs = []
        for t in range(count):
            rng = np.random.default_rng([seed, n, t])
            t0 = time.perf_counter()
            truth = _family_circuit(family, n, rng)
            prep = truth.copy()
            if noise > 0:
                prep.append("DEPOLARIZE1", range(n), noise)
            gen_s = time.perf_counter() - t0
            sample_bell, sample_single = stim_samplers(prep, rng, n)
            t0 = time.perf_counter()
            res = learn_stabilizer_state(sample_bell, sample_single, n, extra_shots=extra_shots,
                                         sign_copies=sign_copies, verify_copies=verify_copies,
                                         min_pass_fraction=min_pass_fraction)
            learn_s = time.perf_counter() - t0
            exact = res.status == STATUS_LEARNED and same_stabilizer_state(res, truth, n)
            rec = {"n": n, "trial": t, **res.summary(), "exact": bool(exact), "success_exact": bool(exact and
                   res.success), "generate_s": gen_s, "learn_s": learn_s}
            recs.append(rec)
        records += recs
        copies = np.array([r["total_copies"] for r in recs], dtype=float)
        learn_copies = np.array([r["bell_copies"] + r["sign_copies"] for r in recs], dtype=float)
        row = {
            "n": n, "trials": count, "family": family, "noise": noise,
            "success_rate": float(np.mean([r["success_exact"] for r in recs])),
            "exact_rate": float(np.mean([r["exact"] for r in recs])),
            "learned_rate": float(np.mean([r["status"] == STATUS_LEARNED for r in recs])),
            "verified_rate": float(np.mean([bool(r["verified"]) for r in recs])),
            "false_accepts": int(sum(bool(r["verified"]) and not r["exact"] for r in recs)),
            "copies_mean": float(copies.mean()), "copies_max": int(copies.max()), "copies_min": int(copies.min()),
            "learning_copies_mean": float(learn_copies.mean()),
            "bell_copies_mean": float(np.mean([r["bell_copies"] for r in recs])),
            "min_bell_copies_mean": float(np.mean([2 * r["shots_to_full_rank"] for r in recs
                                                   if r["shots_to_full_rank"] is not None] or [math.nan])),
            "sign_copies": sign_copies, "verify_copies": verify_copies,
            "copies_per_n_mean": float(copies.mean() / n), "copies_per_n_max": float(copies.max() / n),
            "rejected_shots_mean": float(np.mean([r["rejected_shots"] for r in recs])),
            "learn_s_mean": float(np.mean([r["learn_s"] for r in recs])),
            "learn_s_max": float(np.max([r["learn_s"] for r in recs])),
            "generate_s_mean": float(np.mean([r["generate_s"] for r in recs])),
        }
        rows.append(row)
        if progress is not None:
            progress(f"n={n}: success {row['success_rate']:.3f}, copies mean {row['copies_mean']:.1f} "
                     f"max {row['copies_max']}, learn {row['learn_s_mean']:.3f} s/trial")
    params = {"n_values": [int(v) for v in n_values], "trials": per_n, "seed": seed, "family": family,
              "noise": noise, "extra_shots": extra_shots, "sign_copies": sign_copies, "verify_copies": verify_copies,
              "min_pass_fraction": min_pass_fraction}
    return {"params": params, "rows": rows, "trials": records}


def plot_stabilizer_learning(result: dict[str, Any], path: str | Path) -> Path:
    """Copies used versus ``n`` (mean and max, Bell part, and the ``2n`` reference), written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: benchmarks and CI are headless
    import matplotlib.pyplot as plt

    rows = result["rows"]
    if not rows:
        raise ShadowlabError("nothing to plot: the study has no rows")
    ns = np.array([r["n"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r["copies_mean"] for r in rows], "o-", label="all copies (mean)")
    ax.plot(ns, [r["copies_max"] for r in rows], "v--", label="all copies (max)")
    ax.plot(ns, [r["bell_copies_mean"] for r in rows], "s:", label="Bell copies (mean)")
    ax.plot(ns, 2 * ns, "k-", lw=0.8, alpha=0.6, label="2n")
    ax.set_xlabel("qubits n")
    ax.set_ylabel("copies of the state")
    fam = rows[0].get("family", "")
    ax.set_title(f"Stabilizer learning by Bell sampling ({fam})")
    for r in rows:
        ax.annotate(f"{r['success_rate']:.0%}", (r["n"], r["copies_max"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
