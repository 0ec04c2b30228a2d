"""Derandomized classical shadows: deterministic Pauli settings that measure every observable often.

Huang, Kueng and Preskill, "Efficient estimation of Pauli observables by derandomization",
PRL 127, 030503 (2021). Instead of drawing settings at random, settings are chosen one qubit at
a time so as to decrease a pessimistic estimate of the probability that some observable is
measured too rarely.

The rule
--------
Observable ``l`` is a Pauli string with support ``S_l`` (letters X/Y/Z) and weight
``w_l`` in ``(0, 1]`` (default 1). A setting (one basis per qubit) *hits* ``l`` when it equals
``l``'s letter on every qubit of ``S_l``; the identity is hit by every setting. Observable ``l``
must be hit ``floor(w_l * hits)`` times (computed in float64, as ``math.floor(w * hits)``;
observables with target 0 are done from the start).

Settings are built one at a time until every target is met, and the run stops right after the
setting that meets the last one. Within a setting, qubits are assigned in order ``0 .. n-1``,
each to the basis among X, Y, Z (ties broken in that order) that minimizes

    sum over observables l not yet at their target of
        exp([-(eta/2) h_l + log(1 - nu 3^(-m_l))] / w_l)

where ``h_l`` counts earlier settings that hit ``l``, ``m_l`` is the number of qubits of
``S_l`` not yet assigned in this setting (after the candidate assignment), the log term is 0
once an assigned qubit of ``S_l`` conflicts with ``l``'s letter there, and
``nu = 1 - exp(-eta/2)``.

Implementation notes
--------------------
Only unfinished, not yet conflicted observables touching the qubit change the comparison, so
the compiled kernel (:func:`shadowlab.kernels.derandomize_chunk`) evaluates the difference
form ``G_b = sum_l A_l (1 - (1 - nu 3^-(m_l - 1))^(1/w_l))`` over them, with the per-setting
constant ``A_l = exp(-(eta/2) h_l / w_l)`` and the ``(1 - nu 3^-m)^(1/w)`` factors tabulated.
When those terms underflow (tiny weights, large ``eta * hits``), the comparison is redone in the
log domain, shifted by its own maximum, so the choice is that of exact arithmetic whenever the
exact sums differ by more than rounding. Values of ``G`` within the rounding bound of the sum
(``(terms + 8) * eps`` relative) count as tied, so that exact ties -- frequent with symmetric
observables, whose equal terms are summed in different orders -- take the first of X, Y, Z
rather than whichever rounding favours.

This is the same rule as the authors' reference code (``data_acquisition_shadow.py`` and
``.cpp`` in hsinyuan-huang/predicting-quantum-properties), which has no underflow guard and
breaks exact ties by rounding; on the same input the two produce the same settings up to the
first such tie.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shadowlab import kernels
from shadowlab.errors import QubitCountMismatchError, ShadowlabError
from shadowlab.paulis import PauliArrays, PauliString, PauliSum
from shadowlab.plan.scheme import Scheme

__all__ = ["derandomize", "hit_counts", "hit_targets"]

# Settings built per kernel call (between two progress reports).
_CHUNK = 256

ProgressCallback = Callable[[int, int, int], Any]


def _as_paulis(observables: PauliSum | Sequence[PauliString]) -> tuple[list[PauliString], int]:
    """The observables as a list, and the number of qubits (``PauliSum.n_qubits``, else inferred)."""
    if isinstance(observables, PauliSum):
        return list(observables.terms), observables.n_qubits
    if isinstance(observables, PauliString):
        raise ShadowlabError("observables must be a PauliSum or a list of PauliString, not a single PauliString")
    try:
        paulis = list(observables)
    except TypeError:
        raise ShadowlabError(
            f"observables must be a PauliSum or a list of PauliString, got {type(observables).__name__}") from None
    for i, p in enumerate(paulis):
        if not isinstance(p, PauliString):
            raise ShadowlabError(f"observable {i} is a {type(p).__name__}, expected a PauliString "
                                 "(build one with PauliString.from_label)")
    n_qubits = 1 + max((p.qubits[-1] for p in paulis if p.qubits), default=0)
    return paulis, n_qubits


def _check_weights(weights: Sequence[float] | np.ndarray | None, n_obs: int) -> np.ndarray:
    if weights is None:
        return np.ones(n_obs)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShadowlabError("weights must be a sequence of numbers in (0, 1]") from None
    if w.shape != (n_obs,):
        raise ShadowlabError(f"need one weight per observable: {n_obs} observables, weights of shape {w.shape}")
    bad = ~((w > 0.0) & (w <= 1.0))  # also catches NaN
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ShadowlabError(f"weights must lie in (0, 1]; weight {i} is {w[i]!r}")
    return w


def _check_hits(hits: Any) -> int:
    if isinstance(hits, bool) or not isinstance(hits, int | np.integer) or hits < 1:
        raise ShadowlabError(f"hits must be a positive integer, got {hits!r}")
    return int(hits)


def hit_targets(weights: np.ndarray, hits: int) -> np.ndarray:
    """Required hits per observable, ``floor(w * hits)`` in float64 (int64 array)."""
    return np.floor(np.asarray(weights, dtype=np.float64) * hits).astype(np.int64)


def derandomize(
    observables: PauliSum | Sequence[PauliString],
    *,
    hits: int,
    weights: Sequence[float] | np.ndarray | None = None,
    eta: float = 0.9,
    max_settings: int | None = None,
    budget: int | None = None,
    progress: ProgressCallback | None = None,
) -> Scheme:
    """Derandomized classical-shadow settings that hit observable ``l`` at least ``floor(w_l hits)`` times.

    The greedy rule (Huang, Kueng, Preskill 2021) is stated in the module docstring: settings are
    built one at a time, qubit by qubit in order, each qubit taking the basis (X, Y, Z; ties in
    that order) that minimizes the pessimistic failure estimate; the run stops right after the
    setting that meets the last target.

    Parameters
    ----------
    observables:
        A :class:`~shadowlab.paulis.PauliSum` (its ``n_qubits`` sets the setting length; the
        coefficients are ignored) or a list of :class:`~shadowlab.paulis.PauliString` (then the
        settings cover qubits ``0 .. max qubit``). Duplicates count separately; the identity is
        hit by every setting.
    hits:
        ``N``, the number of hits each observable of weight 1 needs (>= 1).
    weights:
        Optional weight in ``(0, 1]`` per observable; observable ``l`` needs ``floor(w_l N)`` hits
        and its cost terms are raised to the power ``1 / w_l``.
    eta:
        The rule's ``eta > 0`` (0.9 in the paper).
    max_settings:
        Give up with :class:`ShadowlabError` if the targets are not met after this many settings
        (default ``10 * hits * len(observables)``).
    budget:
        A fixed number of settings: stop after ``budget`` settings even if targets remain (the
        greedy prefix, as when a device's shot budget is fixed; the greedy is sequential, so this
        is exactly the first ``budget`` settings of the unbounded run). Fewer settings are
        returned if every target is met earlier. ``info["targets_met"]`` says which happened.
    progress:
        Called as ``progress(n_settings, n_finished, n_observables)`` after every block of
        settings (a few hundred) and at the end.

    Returns
    -------
    Scheme
        ``kind="derandomized"``, every repeat 1, ``probabilities=None`` and
        ``info={"hits": N, "eta": eta, "n_observables": M}``.

    Raises
    ------
    ShadowlabError
        On an empty observable list, ``hits < 1``, ``eta <= 0``, a weight outside ``(0, 1]`` (or
        NaN, or the wrong number of weights), if every target is 0, or if the targets are not met
        within ``max_settings`` settings.

    Examples
    --------
    >>> from shadowlab.paulis import PauliSum
    >>> obs = PauliSum.from_labels(["ZZI", "IZZ", "XIX"])
    >>> scheme = derandomize(obs, hits=3)
    >>> scheme.labels()  # ZZZ serves the first two observables at once
    ['XZX', 'ZZZ', 'XZX', 'ZZZ', 'XZX', 'ZZZ']
    >>> hit_counts(scheme, obs).tolist()
    [3, 3, 3]
    """
    paulis, n_qubits = _as_paulis(observables)
    n_obs = len(paulis)
    if n_obs == 0:
        raise ShadowlabError("no observables given: derandomization needs at least one Pauli observable")
    n_hits = _check_hits(hits)
    try:
        eta_f = float(eta)
    except (TypeError, ValueError):
        raise ShadowlabError(f"eta must be a positive number, got {eta!r}") from None
    if not (math.isfinite(eta_f) and eta_f > 0.0):
        raise ShadowlabError(f"eta must be a positive finite number, got {eta!r}")
    w = _check_weights(weights, n_obs)
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
            raise ShadowlabError(f"budget must be a positive integer, got {budget!r}")
        if max_settings is not None:
            raise ShadowlabError("give either budget (stop there) or max_settings (fail there), not both")
        max_settings = int(budget)
    if max_settings is None:
        cap = 10 * n_hits * n_obs
    else:
        if isinstance(max_settings, bool) or not isinstance(max_settings, int | np.integer) or max_settings < 1:
            raise ShadowlabError(f"max_settings must be a positive integer, got {max_settings!r}")
        cap = int(max_settings)
    target = hit_targets(w, n_hits)
    if not np.any(target > 0):
        raise ShadowlabError(
            f"every observable needs floor(weight * hits) = 0 hits (hits={n_hits}); nothing to plan: "
            "raise hits or the weights")

    arrays = PauliArrays.from_paulis(paulis)
    k = arrays.weights.astype(np.int64)
    half_eta = 0.5 * eta_f
    nu = -math.expm1(-half_eta)

    # Per-observable tables: entry goff[l] + j for j < k[l] (j = qubits of S_l still unassigned
    # after matching the current one). g_lin = 1 - (1 - nu 3^-j)^(1/w_l), g_log = its log.
    mask = np.arange(arrays.qubits.shape[1])[None, :] < k[:, None]
    ent_obs, ent_j = np.nonzero(mask)
    goff = np.zeros(n_obs, dtype=np.int64)
    np.cumsum(k[:-1], out=goff[1:])
    log1m = np.log1p(-nu * np.power(3.0, -np.arange(max(int(k.max()), 1), dtype=np.float64)))
    g_lin = -np.expm1(log1m[ent_j] / w[ent_obs])
    with np.errstate(divide="ignore"):
        g_log = np.log(g_lin)
    if g_lin.size == 0:  # only identities: keep the kernel's arrays non-empty
        g_lin = g_log = np.zeros(1)

    # CSR adjacency over slots 3 q + c: the observables (with target > 0) that have letter c on
    # qubit q, in input order.
    active = target > 0
    keep = active[ent_obs]
    e_obs = ent_obs[keep]
    e_slot = 3 * arrays.qubits[mask][keep] + arrays.codes[mask][keep]
    order = np.argsort(e_slot, kind="stable")
    adj_obs = np.ascontiguousarray(e_obs[order], dtype=np.int32)
    adj_ptr = np.zeros(3 * n_qubits + 1, dtype=np.int64)
    np.cumsum(np.bincount(e_slot, minlength=3 * n_qubits), out=adj_ptr[1:])
    if adj_obs.size == 0:
        adj_obs = np.zeros(1, dtype=np.int32)

    hit = np.zeros(n_obs, dtype=np.int64)
    log_a = np.zeros(n_obs)
    scaled = g_lin.copy()
    dead = np.where(active, -1, kernels._DERAND_DONE).astype(np.int64)
    cursor = goff + k - 1
    unfinished = np.flatnonzero(active).astype(np.int64)
    istate = np.array([unfinished.size, 0, int(adj_ptr[-1])], dtype=np.int64)
    fstate = np.zeros(1)

    blocks: list[np.ndarray] = []
    made = 0
    buf = np.empty((_CHUNK, n_qubits), dtype=np.uint8)
    while istate[0] > 0:
        if made >= cap:
            if budget is not None:
                break
            raise ShadowlabError(
                f"derandomization did not meet every target within max_settings={cap} settings "
                f"({n_obs - int(istate[0])} of {n_obs} observables done); raise max_settings")
        room = buf[: min(_CHUNK, cap - made)]
        got = kernels.derandomize_chunk(adj_ptr, adj_obs, k, goff, g_lin, g_log, w, half_eta, target,
                                        hit, log_a, scaled, dead, cursor, unfinished, istate, fstate, made, room)
        blocks.append(room[:got].copy())
        made += got
        if progress is not None:
            progress(made, n_obs - int(istate[0]), n_obs)
    settings = np.concatenate(blocks, axis=0)
    return Scheme(settings, np.ones(made, dtype=np.int64), kind="derandomized", probabilities=None,
                  info={"hits": n_hits, "eta": eta_f, "n_observables": n_obs,
                        **({"budget": int(budget), "targets_met": bool(istate[0] == 0)} if budget is not None
                           else {})})


def hit_counts(scheme_or_settings: Scheme | np.ndarray, observables: PauliSum | Sequence[PauliString]) -> np.ndarray:
    """Number of settings that hit (match on its support) each observable.

    Parameters
    ----------
    scheme_or_settings:
        A :class:`~shadowlab.plan.scheme.Scheme` (each setting counts once, whatever its repeat
        count) or an ``(n_settings, n_qubits)`` array of basis codes 0/1/2.
    observables:
        A :class:`~shadowlab.paulis.PauliSum` or a list of :class:`~shadowlab.paulis.PauliString`.

    Returns
    -------
    numpy.ndarray
        ``(M,)`` int64; the identity is hit by every setting.

    Examples
    --------
    >>> from shadowlab.paulis import PauliSum
    >>> hit_counts(Scheme.from_labels(["ZZ", "XZ", "XX"]), PauliSum.from_labels(["ZZ", "IZ", "XI", "II"])).tolist()
    [1, 2, 2, 3]
    """
    settings = scheme_or_settings.settings if isinstance(scheme_or_settings, Scheme) else scheme_or_settings
    settings = np.asarray(settings)
    if settings.ndim != 2:
        raise ShadowlabError(f"settings must be a 2-D array (settings x qubits), got shape {settings.shape}")
    if settings.size and (settings.min() < 0 or settings.max() > 2):
        raise ShadowlabError("settings must be basis codes 0/1/2 (X/Y/Z)")
    paulis, _ = _as_paulis(observables)
    n_set, n_q = settings.shape
    for p in paulis:
        if p.qubits and p.qubits[-1] >= n_q:
            raise QubitCountMismatchError(f"observable {p} acts on qubit {p.qubits[-1]} but the settings have "
                                          f"{n_q} qubits")
    arrays = PauliArrays.from_paulis(paulis)
    out = np.zeros((len(paulis), 1), dtype=np.int64)
    if n_set == 0 or not paulis:
        return out[:, 0]
    bases = np.ascontiguousarray(settings, dtype=np.uint8)
    planes = kernels.pack(bases, np.zeros_like(bases))
    odd = np.zeros_like(out)
    kernels.pauli_block_counts(planes, np.zeros(1, dtype=np.int64), np.array([n_set], dtype=np.int64),
                               arrays.qubits, arrays.codes, arrays.weights, out, odd)
    return out[:, 0]
