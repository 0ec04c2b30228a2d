"""Robust classical shadows: calibrate the noisy measurement on ``|0...0>`` and divide it out.

Model (Chen, Yu, Zeng, Flammia, PRX Quantum 2, 030348 (2021), for the local-Pauli ensemble)
------------------------------------------------------------------------------------------
Let a snapshot *match* a Pauli ``P`` with support ``A`` when every qubit of ``A`` was measured in
``P``'s letter, and let its sign be the product of the outcome eigenvalues on ``A``. Ideal
measurements give ``E[sign | match] = <P>``. If the measurement noise does not depend on the
measured basis and, after readout twirling, not on the state either (a noisy rotation gate on
every qubit for every basis, symmetric or twirled readout flips, correlated or not), the signs
are multiplied by an independent error sign ``e_A`` and

    ``E[sign | match] = g_A <P>``,  with the *attenuation* ``g_A = E[e_A]`` of subset ``A``.

The standard estimators then estimate ``g_A <P>``: noisy shadows are biased towards 0 by a
factor that grows with the weight. A *calibration* measures ``g_A`` on the known state
``|0...0>`` (where ``<Z_A> = 1``) with the same randomized measurement: ``g_A`` is the mean sign
of the snapshots that measured every qubit of ``A`` in Z. The robust estimate of ``<P>`` is the
ordinary one divided by ``g_A`` (for uniform measurements this is Chen et al.'s estimator with
the calibrated factor ``f_A = g_A / 3^|A|`` in place of ``3^-|A|``). A calibration holds ``g_A``
for every subset up to a *locality* ``k`` (or for listed subsets, e.g. the supports of the
observables of interest); an observable whose support was not calibrated is an error, never a
silent guess.

Uncertainty
-----------
The calibration's own statistical error enters every robust estimate by the delta method:
for ``r = m / g`` (``m`` the raw estimate, standard error ``s_m``; ``g`` with ``s_g``, independent
data), ``se(r)^2 = (s_m / g)^2 + (r s_g / g)^2``. This is valid when ``g`` is well resolved, so a
calibration refuses subsets whose factor is less than :data:`RESOLVED_STDERRS` standard errors
from zero, and says how many calibration snapshots would resolve it. For a weighted sum of
Paulis the calibration terms are added as ``sum_j |c_j r_j| s_gj / g_j``, a bound that holds for
any correlation between the factors (they come from the same calibration snapshots).

Compatibility
-------------
A calibration applies to data of the same qubit count and measurement ensemble (local Pauli;
global-Clifford data have their own calibration, :mod:`shadowlab.estimate.fidelity`); anything
else is refused. Within the local-Pauli ensemble the plan may differ (uniform, biased,
derandomized): ``g_A`` is the attenuation of a *matched* sign, which under the model does not
depend on how often each basis is drawn, so one calibration serves every plan (the plan used is
recorded in the calibration's ``ensemble`` field). Readout twirling
must match too: an untwirled calibration of asymmetric readout measures only the ``0 -> 1``
flips (``|0...0>`` reads 0), so a mismatch is warned about (:class:`CalibrationWarning`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.atomic import atomic_path
from shadowlab.data.dataset import ENSEMBLE_LOCAL_PAULI, recorded_provenance, recorded_state
from shadowlab.errors import EstimationError, ShadowlabError, ShadowlabWarning
from shadowlab.paulis import PauliString

__all__ = ["Calibration", "CalibrationWarning", "calibrate", "read_calibration", "read_calibration_document"]

#: A calibration factor must be at least this many standard errors above zero.
RESOLVED_STDERRS = 5.0
#: Largest number of subsets one calibration computes (counters grow with it).
MAX_SUBSETS = 1_000_000
FORMAT = "shadowlab-calibration"
FORMAT_VERSION = 1


class CalibrationWarning(ShadowlabWarning):
    """A calibration is applied to data measured differently (e.g. twirled vs untwirled readout)."""


def _ensemble(source: Any) -> dict[str, Any]:
    """The measurement ensemble a data set or store was taken with: family, scheme kind, probabilities."""
    meta = getattr(source, "metadata", {}) or {}
    family = meta.get("ensemble", ENSEMBLE_LOCAL_PAULI) if isinstance(meta, dict) else ENSEMBLE_LOCAL_PAULI
    record = getattr(source, "scheme_record", None)
    record = record if isinstance(record, dict) else {}
    probs = record.get("probabilities")
    if probs is not None:
        from shadowlab.plan.scheme import UNIFORM_PROBABILITIES

        p = np.asarray(probs, dtype=np.float64)
        probs = None if p.shape[-1] == 3 and np.allclose(p, UNIFORM_PROBABILITIES) else p.round(12).tolist()
    kind = record.get("kind", "uniform")
    return {"family": str(family), "scheme": "uniform" if kind in (None, "uniform") and probs is None else str(kind),
            "probabilities": probs}


def _twirled(source: Any) -> bool:
    return bool(getattr(source, "readout_twirl", False))


@dataclass(frozen=True)
class Calibration:
    """Calibrated attenuations ``g_A`` of qubit subsets (see the module documentation).

    Attributes
    ----------
    n_qubits:
        Qubits of the calibrated device register.
    locality:
        Largest calibrated subset size ``k``.
    complete:
        Whether every subset of at most ``k`` qubits is calibrated (else only ``subsets``).
    subsets:
        The calibrated subsets, as sorted qubit tuples.
    attenuation, stderr:
        ``(M,)`` float64: ``g_A`` (1 for ideal measurements) and its standard error.
    n_matched:
        ``(M,)`` int64 calibration snapshots that measured all of ``A`` in Z.
    n_snapshots:
        Calibration snapshots.
    ensemble:
        The measurement ensemble (``family``, ``scheme``, ``probabilities``).
    readout_twirl:
        Whether the calibration snapshots were readout-twirled.
    provenance:
        Where the calibration data came from (their metadata, e.g. a simulated noise model).
    """

    n_qubits: int
    locality: int
    complete: bool
    subsets: tuple[tuple[int, ...], ...]
    attenuation: np.ndarray
    stderr: np.ndarray
    n_matched: np.ndarray
    n_snapshots: int
    ensemble: dict[str, Any]
    readout_twirl: bool
    provenance: dict[str, Any]

    def __post_init__(self) -> None:
        index = {a: i for i, a in enumerate(self.subsets)}
        object.__setattr__(self, "_index", index)

    # -- lookups ---------------------------------------------------------------------------
    def factor(self, qubits: Sequence[int]) -> tuple[float, float]:
        """``(g_A, se)`` for the subset ``qubits`` (errors if it was not calibrated)."""
        g, se = self.factors([tuple(qubits)])
        return float(g[0]), float(se[0])

    def factors(self, supports: Sequence[Sequence[int]], labels: Sequence[str] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(g, se)`` arrays for the given supports (the empty support has ``g = 1`` exactly).

        Raises
        ------
        EstimationError
            If a support is heavier than the calibrated locality, or (for a calibration of
            listed subsets) was not calibrated; the message names the observable.
        """
        index: dict[tuple[int, ...], int] = self._index  # type: ignore[attr-defined]
        g = np.ones(len(supports))
        se = np.zeros(len(supports))
        heavy: list[str] = []
        heaviest = 0
        missing: list[str] = []
        for j, support in enumerate(supports):
            key = tuple(sorted(int(q) for q in support))
            if not key:
                continue
            name = labels[j] if labels is not None else " ".join(f"q{q}" for q in key)
            if key[-1] >= self.n_qubits:
                raise EstimationError(f"observable {name} acts on qubit {key[-1]}, but the calibration covers "
                                      f"{self.n_qubits} qubits")
            i = index.get(key)
            if i is None:
                if len(key) > self.locality:
                    heavy.append(name)
                    heaviest = max(heaviest, len(key))
                else:
                    missing.append(name)
                continue
            g[j], se[j] = self.attenuation[i], self.stderr[i]
        if heavy:
            raise EstimationError(
                f"{len(heavy)} observable(s) are heavier than the calibrated locality {self.locality}, e.g. "
                f"{', '.join(heavy[:3])}: the calibration has no factor for them, and guessing one would bias the "
                f"estimate. Calibrate with locality >= {heaviest}, or with these "
                "observables' supports (shadowlab calibrate --observables)")
        if missing:
            raise EstimationError(
                f"the calibration lists only some subsets, and {len(missing)} observable support(s) are not among "
                f"them, e.g. {', '.join(missing[:3])}; calibrate with these observables (or a complete locality)")
        return g, se

    def pauli_factors(self, paulis: Sequence[PauliString], labels: Sequence[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`factors` for the supports of Pauli strings."""
        return self.factors([p.qubits for p in paulis],
                            labels if labels is not None else [p.to_sparse() for p in paulis])

    def check_data(self, source: Any, *, what: str = "the data") -> None:
        """Refuse ``source`` measured on another register or ensemble; warn on a twirl mismatch."""
        if source.n_qubits != self.n_qubits:
            raise ShadowlabError(f"the calibration is for {self.n_qubits} qubits but {what} have "
                                 f"{source.n_qubits}; calibrate the same register")
        family = _ensemble(source)["family"]
        if family != self.ensemble.get("family"):
            raise ShadowlabError(
                f"the calibration was measured with the {self.ensemble.get('family')} ensemble but {what} with the "
                f"{family} one; calibration factors do not transfer between measurement ensembles: calibrate with "
                "the data's ensemble")
        twirled = _twirled(source)
        if twirled != self.readout_twirl:
            cal, dat = ("twirled", "untwirled") if self.readout_twirl else ("untwirled", "twirled")
            warnings.warn(
                f"the calibration readout was {cal} but {what} are {dat}: under asymmetric readout noise the "
                "calibrated factors do not describe these data's readout, and the estimates stay biased. "
                "Calibrate and measure with the same readout twirling", CalibrationWarning, stacklevel=3)

    # -- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document :meth:`write` stores."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "n_qubits": self.n_qubits,
            "locality": self.locality,
            "complete": self.complete,
            "n_snapshots": self.n_snapshots,
            "ensemble": self.ensemble,
            "readout_twirl": self.readout_twirl,
            "provenance": self.provenance,
            "subsets": [list(a) for a in self.subsets],
            "attenuation": self.attenuation.tolist(),
            "stderr": self.stderr.tolist(),
            "n_matched": self.n_matched.tolist(),
        }

    def write(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write as JSON, atomically (an existing file needs ``force``)."""
        with atomic_path(path, force=force) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict()))

    def per_qubit(self) -> tuple[np.ndarray, np.ndarray]:
        """``(g_i, se_i)`` for every qubit (``nan`` where a qubit was not calibrated alone)."""
        index: dict[tuple[int, ...], int] = self._index  # type: ignore[attr-defined]
        g = np.full(self.n_qubits, np.nan)
        se = np.full(self.n_qubits, np.nan)
        for q in range(self.n_qubits):
            i = index.get((q,))
            if i is not None:
                g[q], se[q] = self.attenuation[i], self.stderr[i]
        return g, se


def read_calibration_document(path: str | os.PathLike[str], *, maker: str) -> tuple[Path, dict[str, Any]]:
    """The JSON document of a calibration file: ``(path, doc)``, after checking it is one.

    ``maker`` names the command that makes the kind of calibration the caller expects (for the
    error messages). Ensemble and version checks are the caller's.
    """
    p = Path(path)
    if not p.is_file():
        raise ShadowlabError(f"{p}: no such calibration file")
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ShadowlabError(f"{p}: not a JSON calibration file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ShadowlabError(f"{p}: not a shadowlab calibration (expected \"format\": \"{FORMAT}\"); make one with "
                             f"'{maker}'")
    return p, doc


def read_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration written by :meth:`Calibration.write` (errors name the file and field)."""
    p, doc = read_calibration_document(path, maker="shadowlab calibrate")
    if doc.get("ensemble") == "global_clifford":
        raise ShadowlabError(f"{p}: a global-Clifford calibration (from 'shadowlab calibrate-clifford'); it applies to "
                             "'shadowlab fidelity --calibration' only. Local-Pauli estimates need a calibration "
                             "measured in random Pauli bases: 'shadowlab simulate zero:N' (or acquire --state zero:N), "
                             "then 'shadowlab calibrate'")
    if doc.get("version") != FORMAT_VERSION:
        raise ShadowlabError(f"{p}: calibration format version {doc.get('version')!r}; this shadowlab reads "
                             f"version {FORMAT_VERSION}")
    try:
        subsets = tuple(tuple(int(q) for q in a) for a in doc["subsets"])
        g = np.asarray(doc["attenuation"], dtype=np.float64)
        se = np.asarray(doc["stderr"], dtype=np.float64)
        matched = np.asarray(doc["n_matched"], dtype=np.int64)
        cal = Calibration(int(doc["n_qubits"]), int(doc["locality"]), bool(doc["complete"]), subsets, g, se, matched,
                          int(doc["n_snapshots"]), dict(doc["ensemble"]), bool(doc["readout_twirl"]),
                          dict(doc.get("provenance") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ShadowlabError(f"{p}: calibration field missing or malformed: {exc!r}") from None
    if not (g.shape == se.shape == matched.shape == (len(subsets),)):
        raise ShadowlabError(f"{p}: the calibration's subsets, attenuation, stderr and n_matched disagree in length")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(se)) and np.all(se >= 0) and np.all(matched >= 0)):
        raise ShadowlabError(f"{p}: the calibration holds non-finite factors, or negative standard errors or counts")
    for a in subsets:
        if not a or list(a) != sorted(set(a)) or a[0] < 0 or a[-1] >= cal.n_qubits or len(a) > cal.locality:
            raise ShadowlabError(f"{p}: subset {list(a)} is not a sorted list of distinct qubits of the "
                                 f"{cal.n_qubits}-qubit register within locality {cal.locality}")
    try:
        _check_resolved(subsets, g, se, cal.n_snapshots)
    except ShadowlabError as exc:
        raise ShadowlabError(f"{p}: {exc}") from None
    return cal


def _all_subsets(n: int, locality: int) -> list[tuple[int, ...]]:
    count = sum(math.comb(n, k) for k in range(1, locality + 1))
    if count > MAX_SUBSETS:
        raise ShadowlabError(f"locality {locality} on {n} qubits means {count:,} subsets (at most {MAX_SUBSETS:,}); "
                             "calibrate a lower locality, or only the supports of your observables")
    return [a for k in range(1, locality + 1) for a in itertools.combinations(range(n), k)]


def calibrate(
    source: Any,
    *,
    locality: int | None = None,
    subsets: Sequence[Sequence[int]] | None = None,
    chunk_snapshots: int | None = None,
) -> Calibration:
    """Calibrate the measurement from snapshots of ``|0...0>`` (see the module documentation).

    Parameters
    ----------
    source:
        A :class:`ShadowData` or :class:`ShadowStore` of the calibration state ``|0...0>``,
        measured with the same randomized measurement (and readout twirling) as the data.
    locality:
        Calibrate every subset of at most this many qubits.
    subsets:
        Calibrate exactly these subsets (e.g. the supports of the observables to estimate);
        exclusive with ``locality``.
    chunk_snapshots:
        Snapshots read at a time (bounds memory); default: the estimators' default.

    Raises
    ------
    ShadowlabError
        If neither or both of ``locality``/``subsets`` are given, a subset is empty or out of
        range, or the data are not consistent with ``|0...0>`` (a factor clearly negative).
    EstimationError
        If a factor is not resolved (less than :data:`RESOLVED_STDERRS` standard errors above
        zero): the message says how many more calibration snapshots would resolve it.
    """
    from shadowlab.estimate.pauli import estimate_paulis

    n = source.n_qubits
    if (locality is None) == (subsets is None):
        raise ShadowlabError("give either a locality (all subsets up to that size) or a list of subsets, not both")
    if locality is not None:
        if locality < 1:
            raise ShadowlabError(f"locality must be >= 1, got {locality}")
        if locality > n:
            raise ShadowlabError(f"locality {locality} exceeds the {n} calibrated qubits")
        chosen = _all_subsets(n, locality)
        complete = True
    else:
        chosen = sorted({tuple(sorted({int(q) for q in a})) for a in subsets}, key=lambda a: (len(a), a))
        if not chosen or any(len(a) == 0 for a in chosen):
            raise ShadowlabError("subsets must be non-empty lists of qubits")
        bad = [a for a in chosen if a[0] < 0 or a[-1] >= n]
        if bad:
            raise ShadowlabError(f"subset {list(bad[0])} is out of range for {n} qubits")
        if len(chosen) > MAX_SUBSETS:
            raise ShadowlabError(f"{len(chosen):,} subsets is more than one calibration holds ({MAX_SUBSETS:,})")
        locality = max(len(a) for a in chosen)
        complete = False
    if source.n_snapshots < 2:
        raise ShadowlabError(f"a calibration needs snapshots of |0...0>; got {source.n_snapshots}")
    paulis = [PauliString(a, (2,) * len(a)) for a in chosen]
    est = estimate_paulis(source, paulis, estimator="matched", on_unmatched="omit", chunk_snapshots=chunk_snapshots)
    if est.omitted:
        raise EstimationError(f"{len(est.omitted)} subset(s) were never measured all in Z, e.g. {est.omitted[0]}: "
                              + _unmatched_advice(source))
    g, se, matched = est.estimate, est.stderr, est.n_matched
    _check_resolved(chosen, g, se, source.n_snapshots)
    provenance = recorded_provenance(source)
    state = recorded_state(source)
    if state is not None and not state.strip().lower().startswith("zero:"):
        warnings.warn(f"the calibration data record the state {state!r}, not |0...0> (zero:N): a calibration assumes "
                      "snapshots of |0...0>", CalibrationWarning, stacklevel=2)
    return Calibration(n, int(locality), complete, tuple(chosen), g, se, matched, int(source.n_snapshots),
                       _ensemble(source), _twirled(source), json.loads(json.dumps(provenance, default=str)))


def _unmatched_advice(source: Any) -> str:
    """Why a subset was never measured all in Z: a plan without Z on some qubit, or too few snapshots."""
    record = getattr(source, "scheme_record", None)
    probs = record.get("probabilities") if isinstance(record, dict) else None
    if probs is not None:
        no_z = np.flatnonzero(np.asarray(probs, dtype=np.float64)[:, 2] == 0)
        if no_z.size:
            return (f"the plan never measures Z on qubit(s) {no_z[:5].tolist()}; calibrate with a plan that does "
                    "(e.g. uniform: one calibration serves every local-Pauli plan)")
    return (f"with {source.n_snapshots} calibration snapshots a k-qubit subset is matched about "
            f"{source.n_snapshots}/3^k times under uniform measurements; take more calibration snapshots or a lower "
            "locality")


def _check_resolved(subsets: Sequence[tuple[int, ...]], g: np.ndarray, se: np.ndarray, n_snapshots: int) -> None:
    """Refuse data inconsistent with ``|0...0>`` and factors indistinguishable from zero."""
    negative = np.flatnonzero(g < -RESOLVED_STDERRS * se)
    if negative.size:
        i = int(negative[0])
        raise ShadowlabError(
            f"the calibration data give <Z> = {g[i]:.3f} +- {se[i]:.3f} on qubits {list(subsets[i])}, clearly "
            "negative: these are not snapshots of |0...0> (or the readout is inverted)")
    unresolved = np.flatnonzero(g < RESOLVED_STDERRS * se)
    if unresolved.size:
        # se shrinks as 1/sqrt(N): resolving g needs N * (RESOLVED_STDERRS * se / g)^2 snapshots.
        i = int(unresolved[np.argmax(RESOLVED_STDERRS * se[unresolved] / np.maximum(g[unresolved], se[unresolved]))])
        ratio = RESOLVED_STDERRS * se[i] / max(g[i], se[i] / 10.0)
        needed = math.ceil(n_snapshots * ratio * ratio)
        if g[i] < 2 * se[i]:
            hint = (f"The factor is consistent with 0: are these snapshots of |0...0>? (If so, the noise erases this "
                    f"subset's signal; a factor as small as its standard error would need about {needed:,} "
                    "snapshots.)")
        else:
            hint = (f"With {n_snapshots:,} calibration snapshots that needs about {needed:,} in all "
                    f"({max(needed - n_snapshots, 1):,} more, if the factor is as estimated), or a lower locality")
        raise EstimationError(
            f"{unresolved.size} calibration factor(s) are indistinguishable from zero, e.g. qubits "
            f"{list(subsets[i])}: g = {g[i]:.4f} +- {se[i]:.4f} (needs >= {RESOLVED_STDERRS:g} standard errors). "
            + hint)
