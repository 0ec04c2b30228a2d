"""Fidelity with a pure target from global-Clifford shadows (Huang, Kueng, Preskill 2020).

For a snapshot ``(U, b)`` the shadow is ``rho_hat = (2^n + 1) U^dagger |b><b| U - 1`` and the
single-snapshot estimate of ``F = <psi| rho |psi>`` is

    ``f(U, b) = (2^n + 1) |<b| U |psi>|^2 - 1``.

It is unbiased, and its variance is at most ``3`` for every ``n`` (the shadow norm of a rank-one
projector under the Clifford ensemble), so ``N`` snapshots give a standard error of at most
``sqrt(3 / N)`` independent of the number of qubits.

Targets
-------
* :class:`StabilizerTarget` (a stim circuit or tableau, any size): ``|<b|U|psi>|^2`` is ``0`` or
  ``2^-k`` and is computed exactly by stabilizer algebra: the target is prepared in a stim
  ``TableauSimulator``, ``U`` applied with ``do_tableau``, and each qubit in turn is peeked in the Z
  basis: a deterministic qubit must agree with ``b_q`` (else the overlap is 0), a random one
  contributes a factor ``1/2`` and is post-selected on ``b_q``. No ``2^n``-sized object is built;
  ``f = 2^(n-k) + 2^-k - 1`` is formed from the exact ``k`` (a clear error is raised in the
  astronomically unlikely case that ``2^(n-k)`` overflows a float).
* :class:`StatevectorTarget` (``n <= 16``): ``<b|U|psi>`` by applying ``U`` (as H/S/CX gates) to the
  vector; qubit 0 is the most significant bit of the index.

Estimators: ``mean`` (the sample mean; standard error = sample standard deviation / sqrt(N)) or
``mom`` (median of ``n_blocks`` block means, standard error ``sqrt(pi / 2)`` times that of the mean, as in
:mod:`shadowlab.estimate.pauli`); the
interval is normal, ``estimate +- z se`` with ``z`` the two-sided quantile of ``level``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import stim

from shadowlab.acquire.clifford_shadows import MAX_STATEVECTOR_QUBITS, apply_tableau_statevector
from shadowlab.data.clifford_store import CliffordSnapshots, CliffordStore
from shadowlab.errors import EstimationError, QubitCountMismatchError, ShadowlabError, StateError
from shadowlab.estimate.results import Estimates

FIDELITY_ESTIMATORS = ("mean", "mom")


@dataclass(frozen=True)
class StabilizerTarget:
    """A pure stabilizer target ``|psi> = C |0...0>``, given by a stim tableau of ``C``.

    Build it with :func:`make_target` (from a circuit, a tableau, a spec or a ``.stim`` file).
    """

    tableau: stim.Tableau
    description: str = "stabilizer state"

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return len(self.tableau)

    def simulator(self) -> stim.TableauSimulator:
        """A fresh simulator holding ``|psi>``."""
        sim = stim.TableauSimulator()
        sim.set_num_qubits(self.n_qubits)
        sim.do_tableau(self.tableau, list(range(self.n_qubits)))
        return sim


@dataclass(frozen=True)
class StatevectorTarget:
    """A pure target given as a normalized ``(2^n,)`` complex vector (qubit 0 = most significant bit)."""

    statevector: np.ndarray
    description: str = "state vector"

    @property
    def n_qubits(self) -> int:
        """Number of qubits."""
        return int(self.statevector.size).bit_length() - 1


Target = StabilizerTarget | StatevectorTarget


def make_target(target: Any, *, description: str | None = None) -> Target:
    """Resolve a fidelity target.

    Parameters
    ----------
    target:
        A :class:`stim.Circuit` (unitary Clifford gates only) or :class:`stim.Tableau`; a built-in
        Clifford spec (``ghz:100``, ``cluster:50``, ``cluster2d:10x10``, ``toric:3``); a path to a ``.stim``
        circuit or a ``.npy`` state vector; a state vector array; or an existing target.

    Raises
    ------
    StateError
        If a circuit measures, resets or has noise, a ``.stim`` file holds a non-Clifford or unknown
        gate, or a state vector is invalid or larger than 16 qubits.
    """
    if isinstance(target, StabilizerTarget | StatevectorTarget):
        return target
    if isinstance(target, stim.Tableau):
        return StabilizerTarget(target, description or "stim tableau")
    if isinstance(target, stim.Circuit):
        from shadowlab.acquire.stim_sampler import check_state_circuit

        check_state_circuit(target, allow_noise=False)
        try:
            tab = stim.Tableau.from_circuit(target)
        except ValueError as exc:
            raise StateError(f"the target circuit is not a unitary Clifford circuit: {exc}") from exc
        return StabilizerTarget(tab, description or "stim circuit")
    if isinstance(target, str | os.PathLike):
        text = os.fspath(target)
        if text.endswith(".npy"):
            path = Path(text)
            if not path.is_file():
                raise ShadowlabError(f"{path}: no such file")
            try:
                vec = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise StateError(f"{path}: cannot read a state vector from this .npy file: {exc}") from exc
            return make_target(vec, description=description or text)
        if text.endswith(".stim"):
            path = Path(text)
            if not path.is_file():
                raise ShadowlabError(f"{path}: no such file")
            try:
                circuit = stim.Circuit(path.read_text())
            except ValueError as exc:
                raise StateError(f"{path}: not a stabilizer-state circuit stim can read (stim circuits hold "
                                 f"Clifford gates only; give a non-stabilizer target as a .npy state vector): "
                                 f"{exc}") from exc
            return make_target(circuit, description=description or text)
        if Path(text).suffix:
            raise ShadowlabError(f"{text}: unsupported target; expected a Clifford spec (ghz:N, cluster:N, "
                                 "cluster2d:RxC, toric:L), a .stim circuit or a .npy state vector")
        from shadowlab.acquire.clifford_states import builtin_clifford

        return make_target(builtin_clifford(text), description=description or text)
    from shadowlab.acquire.statevector import validate_statevector

    psi, n = validate_statevector(target, what=description or "target")
    if n > MAX_STATEVECTOR_QUBITS:
        raise StateError(f"{description or 'target'}: a {n}-qubit state vector is beyond the fidelity estimator's "
                         f"limit of {MAX_STATEVECTOR_QUBITS} qubits; give a stabilizer target as a stim circuit")
    return StatevectorTarget(psi, description or "state vector")


def stabilizer_overlap_exponent(sim: stim.TableauSimulator, b: np.ndarray) -> int | None:
    """``k`` with ``|<b|phi>|^2 = 2^-k`` for the stabilizer state ``|phi>`` in ``sim``, or None if it is 0.

    ``sim`` is post-selected on ``b`` as a side effect (pass a copy). ``b[q]`` = 1 means ``|1>``.
    """
    k = 0
    for q in range(len(b)):
        v = sim.peek_z(q)
        bit = bool(b[q])
        if v == 0:
            k += 1
            sim.postselect_z(q, desired_value=bit)
        elif (v < 0) != bit:
            return None
    return k


def stabilizer_overlap(target: StabilizerTarget, u: stim.Tableau, b: np.ndarray) -> float:
    """``|<b| U |psi>|^2`` by stabilizer algebra (0 or a power of 1/2)."""
    sim = target.simulator()
    sim.do_tableau(u, list(range(target.n_qubits)))
    k = stabilizer_overlap_exponent(sim, b)
    return 0.0 if k is None else math.ldexp(1.0, -k)


def statevector_overlap(psi: np.ndarray, u: stim.Tableau, b: np.ndarray) -> float:
    """``|<b| U |psi>|^2`` by applying ``U`` to the vector (qubit 0 = most significant bit)."""
    amp = apply_tableau_statevector(psi, u)
    index = int("".join(str(int(x)) for x in b), 2)
    return float(abs(amp[index]) ** 2)


def _value_from_exponent(n: int, k: int | None) -> float:
    if k is None:
        return -1.0
    try:
        return math.ldexp(1.0, n - k) + math.ldexp(1.0, -k) - 1.0
    except OverflowError:
        raise EstimationError(f"a snapshot has overlap 2^-{k} with the {n}-qubit target, whose estimate "
                              f"2^{n - k} overflows a float; the data are not random Cliffords?") from None


def snapshot_values(target: Target, snapshots: Iterable[tuple[stim.Tableau, np.ndarray]], n_qubits: int
                    ) -> np.ndarray:
    """Single-snapshot fidelity estimates ``(2^n + 1) |<b|U|psi>|^2 - 1`` as a float64 array."""
    if target.n_qubits != n_qubits:
        raise QubitCountMismatchError(f"target: the target has {target.n_qubits} qubits but the snapshots have "
                                      f"{n_qubits}; give a target on {n_qubits} qubits")
    out: list[float] = []
    if isinstance(target, StabilizerTarget):
        base = target.simulator()
        targets = list(range(n_qubits))
        for u, b in snapshots:
            sim = base.copy()
            sim.do_tableau(u, targets)
            out.append(_value_from_exponent(n_qubits, stabilizer_overlap_exponent(sim, b)))
    else:
        scale = 2.0**n_qubits + 1.0
        for u, b in snapshots:
            out.append(scale * statevector_overlap(target.statevector, u, b) - 1.0)
    return np.asarray(out, dtype=np.float64)


def fidelity_values(
    source: CliffordStore | CliffordSnapshots | str | os.PathLike[str],
    target: Any,
    *,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Per-snapshot fidelity estimates for every snapshot of ``source`` (a store, its path, or snapshots)."""
    if isinstance(source, str | os.PathLike):
        source = CliffordStore.open(source)
    tgt = make_target(target)
    if isinstance(source, CliffordSnapshots):
        chunks: Iterable[tuple[int, CliffordSnapshots]] = [(0, source)]
    else:
        chunks = source.iter_chunks(min(source.chunk_snapshots, 1024))
    parts = []
    for _, chunk in chunks:
        parts.append(snapshot_values(tgt, chunk, chunk.n_qubits))
        if progress is not None:
            progress(chunk.n_snapshots)
    if isinstance(source, CliffordStore) and tgt.n_qubits != source.n_qubits:
        snapshot_values(tgt, [], source.n_qubits)  # raises the mismatch error for empty stores too
    return np.concatenate(parts) if parts else np.zeros(0)


def summarize(values: np.ndarray, *, level: float = 0.95, estimator: str = "mean", n_blocks: int = 10,
              label: str = "fidelity") -> Estimates:
    """Point estimate, standard error and normal interval from single-snapshot values.

    ``estimator='mean'``: the sample mean, ``se = s / sqrt(N)`` (``s`` the sample standard deviation).
    ``estimator='mom'``: the median of ``n_blocks`` contiguous block means (robust to rare huge
    values), with ``sqrt(pi / 2)`` times that ``se`` (the efficiency of a median of normal block means).
    """
    values = np.asarray(values, dtype=np.float64)
    if not 0.0 < level < 1.0:
        raise ShadowlabError(f"level must be in (0, 1), got {level}")
    if estimator not in FIDELITY_ESTIMATORS:
        raise ShadowlabError(f"estimator must be one of {', '.join(FIDELITY_ESTIMATORS)}, got {estimator!r}")
    n = values.size
    if n < 2:
        raise EstimationError(f"a fidelity estimate with an error bar needs at least 2 snapshots, got {n}")
    se = float(values.std(ddof=1) / math.sqrt(n))
    blocks = 1
    if estimator == "mean":
        est = float(values.mean())
    else:
        if not 1 <= n_blocks <= n:
            raise ShadowlabError(f"n_blocks must be between 1 and the number of snapshots ({n}), got {n_blocks}")
        blocks = n_blocks
        est = float(np.median([b.mean() for b in np.array_split(values, n_blocks)]))
        se *= math.sqrt(math.pi / 2.0)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    one = np.ones(1)
    return Estimates(labels=(label,), estimate=est * one, stderr=se * one, ci_low=(est - z * se) * one,
                     ci_high=(est + z * se) * one, n_matched=np.array([n], dtype=np.int64), n_snapshots=n,
                     estimator=estimator, interval="normal", level=level, n_blocks=blocks)


def estimate_fidelity(
    source: CliffordStore | CliffordSnapshots | str | os.PathLike[str],
    target: Any,
    *,
    level: float = 0.95,
    estimator: str = "mean",
    n_blocks: int = 10,
    progress: Callable[[int], None] | None = None,
) -> Estimates:
    """Estimate ``F = <psi| rho |psi>`` from global-Clifford snapshots of ``rho``.

    Parameters
    ----------
    source:
        A :class:`CliffordStore`, its path, or in-memory :class:`CliffordSnapshots`.
    target:
        Anything :func:`make_target` accepts (stim circuit/tableau, spec, ``.stim``/``.npy`` path, vector).
    level:
        Confidence level of the normal interval.
    estimator, n_blocks:
        ``'mean'`` or ``'mom'`` (median of ``n_blocks`` block means).

    Returns
    -------
    Estimates
        One row labelled ``'fidelity'``.

    Examples
    --------
    >>> import numpy as np
    >>> from shadowlab.acquire.clifford_shadows import make_state, sample_snapshots
    >>> tabs, b = sample_snapshots(make_state("ghz:5"), 200, np.random.default_rng(0))
    >>> est = estimate_fidelity(CliffordSnapshots.from_tableaux(tabs, b), "ghz:5")
    >>> bool(abs(est.estimate[0] - 1) < 5 * est.stderr[0])
    True
    """
    values = fidelity_values(source, target, progress=progress)
    return summarize(values, level=level, estimator=estimator, n_blocks=n_blocks)
