"""Train on the shadows of some states, predict the properties of states never measured.

The flow of Huang et al. (Science 2022) and Lewis et al. (Nat. Commun. 2024): split the
instances of a :class:`~shadowlab.data.family.ShadowFamily` into training and held-out sets;
label each training instance with shadow estimates of a property (two-point correlations, pair
purities or the energy, from the estimate stage: :func:`pair_targets`); fit a model from
parameters to labels; predict the held-out instances from their parameters alone.

Metrics (per label column, over held-out instances, then the mean over columns):

* ``rmse``: against the exact values, when the family has them (the published figure of merit);
* ``rmse_vs_labels``: against the held-out instances' own shadow labels, which needs no exact
  values (experimental data); it includes the labels' noise, so
* ``rmse_debiased`` subtracts the mean squared standard error of those labels: an unbiased
  estimate of the squared error against the truth, useful when no exact values exist;
* ``label_rmse``: the error of the held-out shadow labels themselves against the exact values,
  the yardstick "as good as measuring the state" that a model trained on shadows can beat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.data.family import ShadowFamily
from shadowlab.errors import ShadowlabError
from shadowlab.estimate.correlations import pair_correlations
from shadowlab.learn.models import make_model
from shadowlab.paulis import PauliSum

CORRELATION_TARGETS = {"correlations": "xyz", "xx": "x", "yy": "y", "zz": "z"}
#: What a model can learn: two-point correlations on pairs, the energy <H> of each instance's own
#: Hamiltonian, or the purity tr(rho_A^2) of each two-qubit subsystem A = {i, j} on the pairs.
TARGETS = (*CORRELATION_TARGETS, "energy", "purity")


@dataclass(frozen=True)
class PairTargets:
    """Shadow labels (and exact values) of one property per instance and label column.

    Attributes
    ----------
    target:
        One of :data:`TARGETS`: ``"correlations"`` (isotropic, ``(1/3) <XX + YY + ZZ>``),
        ``"xx"``, ``"yy"``, ``"zz"``, ``"purity"`` (one column per pair), ``"energy"`` (one
        column, no pairs).
    pairs:
        ``(P, 2)`` qubit pairs, one label column each (``(0, 2)`` for the energy).
    labels, stderr:
        ``(I, P)`` shadow estimates and their standard errors.
    exact:
        ``(I, P)`` exact values, or ``None`` when the family has none.
    n_snapshots:
        Snapshots per instance used for the labels.
    """

    target: str
    pairs: np.ndarray
    labels: np.ndarray
    stderr: np.ndarray
    exact: np.ndarray | None
    n_snapshots: int


def resolve_pairs(family: ShadowFamily, pairs: str | np.ndarray) -> np.ndarray:
    """``"edges"`` (the family's interaction edges), ``"all"`` (every ``i < j``) or an explicit ``(P, 2)`` array."""
    n = family.n_qubits
    if isinstance(pairs, str):
        if pairs == "edges":
            if family.edges.size == 0:
                raise ShadowlabError("the family records no interaction edges; use pairs='all' or give the pairs")
            return family.edges.copy()
        if pairs == "all":
            i, j = np.triu_indices(n, k=1)
            return np.stack([i, j], axis=1).astype(np.int64)
        raise ShadowlabError(f"pairs must be 'edges', 'all' or a (P, 2) array, got {pairs!r}")
    arr = np.asarray(pairs, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ShadowlabError(f"pairs must be a (P, 2) array of qubit pairs, got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= n or np.any(arr[:, 0] == arr[:, 1]):
        raise ShadowlabError(f"pairs must join two different qubits in 0..{n - 1}")
    return arr


def pair_targets(family: ShadowFamily, *, target: str = "correlations", n_snapshots: int | None = None,
                 pairs: str | np.ndarray = "edges", progress: Callable[[int], object] | None = None) -> PairTargets:
    """Shadow-estimated labels of ``target`` for every instance (first ``n_snapshots``).

    Correlations and purities use the estimate stage's estimators
    (:func:`shadowlab.estimate.correlations.pair_correlations`,
    :func:`shadowlab.estimate.entropy.estimate_renyi2`) on ``pairs``; the energy uses
    :func:`shadowlab.estimate.pauli.estimate_sum` on each instance's Hamiltonian
    (:func:`family_hamiltonian`). ``progress`` (optional) is called with 1 after each instance.
    """
    from shadowlab.estimate.entropy import estimate_renyi2
    from shadowlab.estimate.pauli import estimate_sum

    if target not in TARGETS:
        raise ShadowlabError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    p = np.zeros((0, 2), dtype=np.int64) if target == "energy" else resolve_pairs(family, pairs)
    s = family.n_snapshots if n_snapshots is None else n_snapshots
    labels = np.empty((family.n_instances, max(len(p), 1)))
    stderr = np.empty_like(labels)
    for k in range(family.n_instances):
        data = family.instance(k, s)
        if target == "energy":
            est = estimate_sum(data, family_hamiltonian(family, k), label="energy")
            labels[k], stderr[k] = est.estimate, est.stderr
        elif target == "purity":
            ent = estimate_renyi2(data, [tuple(int(q) for q in pair) for pair in p])
            labels[k], stderr[k] = ent.purity, ent.purity_stderr
        else:
            labels[k], stderr[k] = pair_correlations(data, p, CORRELATION_TARGETS[target])
        if progress is not None:
            progress(1)
    exact = family.exact.get(target)
    if exact is not None and target != "energy":
        exact = exact[:, p[:, 0], p[:, 1]]
    elif exact is not None:
        exact = exact.reshape(-1, 1)
    return PairTargets(target, p, labels, stderr, exact, s)


def family_hamiltonian(family: ShadowFamily, k: int) -> PauliSum:
    """The Hamiltonian of instance ``k``, from the family's model metadata and parameters.

    Generated families record ``model``, ``lattice`` and ``form``
    (:func:`shadowlab.acquire.ground_states.couplings_from_parameters`); a Heisenberg family
    with one coupling ``J[i-j]`` per edge (such as the imported heisenberg-2d data) is
    ``sum_edges J (XX + YY + ZZ)`` on its own edges.
    """
    from shadowlab.acquire.ground_states import couplings_from_parameters, hamiltonian_paulis
    from shadowlab.paulis import PauliString

    meta = family.metadata
    model, form = meta.get("model"), meta.get("form")
    params = family.parameters[k]
    if model and form and meta.get("lattice"):
        return hamiltonian_paulis(couplings_from_parameters(model, meta["lattice"], params, form))
    names = family.parameter_names
    if model == "heisenberg" and len(names) == len(family.edges) and all(n.startswith("J[") for n in names):
        terms, coeffs = [], []
        for (i, j), coupling in zip(family.edges.tolist(), params.tolist(), strict=True):
            for code in range(3):
                terms.append(PauliString((i, j), (code, code)))
                coeffs.append(coupling)
        return PauliSum(family.n_qubits, tuple(terms), np.array(coeffs, dtype=np.float64))
    raise ShadowlabError("energy labels need the family's Hamiltonian: its metadata must record model, lattice and "
                         f"form (generated families do), got model={model!r}, form={form!r}")


def split_instances(n_instances: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of instance indices into (train, test), both sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise ShadowlabError(f"test fraction must be in (0, 1), got {test_fraction}")
    n_test = round(test_fraction * n_instances)
    if n_test < 1 or n_instances - n_test < 2:
        raise ShadowlabError(f"{n_instances} instances cannot be split with test fraction {test_fraction}: need at "
                             "least 1 held-out and 2 training instances")
    order = np.random.default_rng(seed).permutation(n_instances)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


@dataclass(frozen=True)
class LearningResult:
    """Held-out predictions of one model on one family, with their errors (see the module docs)."""

    model: str
    target: str
    pairs: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray
    n_snapshots: int
    seed: int
    predictions: np.ndarray
    test_labels: np.ndarray
    test_stderr: np.ndarray
    exact: np.ndarray | None
    fit_seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)
    estimator: Any = field(default=None, repr=False, compare=False)
    """The fitted model (``predict(parameters)`` gives the targets of any new instance)."""

    @property
    def rmse_per_pair(self) -> np.ndarray | None:
        """``(P,)`` RMSE over held-out instances against exact values (``None`` without them)."""
        if self.exact is None:
            return None
        return np.sqrt(((self.predictions - self.exact) ** 2).mean(axis=0))

    @property
    def rmse(self) -> float | None:
        """Mean over pairs of :attr:`rmse_per_pair` (the published figure of merit)."""
        r = self.rmse_per_pair
        return None if r is None else float(r.mean())

    @property
    def label_rmse(self) -> float | None:
        """The same metric for the held-out instances' own shadow labels (no model)."""
        if self.exact is None:
            return None
        return float(np.sqrt(((self.test_labels - self.exact) ** 2).mean(axis=0)).mean())

    @property
    def rmse_vs_labels(self) -> float:
        """Mean over pairs of the RMSE against the held-out shadow labels."""
        return float(np.sqrt(((self.predictions - self.test_labels) ** 2).mean(axis=0)).mean())

    @property
    def rmse_debiased(self) -> float:
        """Mean over pairs of ``sqrt(max(MSE vs labels - mean stderr^2, 0))``: unbiased in the MSE."""
        mse = ((self.predictions - self.test_labels) ** 2).mean(axis=0) - (self.test_stderr**2).mean(axis=0)
        return float(np.sqrt(np.maximum(mse, 0.0)).mean())

    def summary(self) -> dict[str, Any]:
        """Scalar metrics and settings (JSON-serializable)."""
        return {
            "model": self.model, "target": self.target, "n_pairs": len(self.pairs),
            "n_train": len(self.train_index), "n_test": len(self.test_index), "n_snapshots": self.n_snapshots,
            "seed": self.seed, "rmse": self.rmse, "label_rmse": self.label_rmse,
            "rmse_vs_labels": self.rmse_vs_labels, "rmse_debiased": self.rmse_debiased,
            "fit_seconds": self.fit_seconds, **self.metadata,
        }


def evaluate_model(family: ShadowFamily, model: str = "rff", *, target: str = "correlations",
                   test_fraction: float = 0.5, n_snapshots: int | None = None, seed: int = 0,
                   pairs: str | np.ndarray = "edges", cv: int = 4, fast: bool = False,
                   targets: PairTargets | None = None, progress: Callable[[int], object] | None = None,
                   n_jobs: int | None = None) -> LearningResult:
    """Fit ``model`` on shadow labels of the training instances; predict the held-out ones.

    Parameters
    ----------
    family:
        The instances (parameters + snapshots, optionally exact values).
    model:
        ``"rff"``, ``"gaussian"`` or ``"dirichlet"`` (:func:`shadowlab.learn.models.make_model`).
    target, pairs, n_snapshots:
        What to learn (see :func:`pair_targets`); ``n_snapshots=None`` uses all snapshots.
    test_fraction, seed:
        Fraction of instances held out, and the seed of the split (and of the model's folds and
        random features).
    cv:
        Cross-validation folds for the hyperparameter choice per target.
    fast:
        Smaller hyperparameter grids (quick looks, tests).
    targets:
        Precomputed :func:`pair_targets` of this family (to share labels between models); then
        ``target``, ``pairs`` and ``n_snapshots`` must be left at their defaults.
    progress:
        Called with 1 after each cross-validation fit (see :func:`count_fits`).
    n_jobs:
        Parallel cross-validation fits (joblib); the result does not depend on it.
    """
    if targets is None:
        tg = pair_targets(family, target=target, n_snapshots=n_snapshots, pairs=pairs)
    else:
        if (target, n_snapshots) != ("correlations", None) or not (isinstance(pairs, str) and pairs == "edges"):
            raise ShadowlabError("give either precomputed targets or target/pairs/n_snapshots, not both")
        if targets.labels.shape[0] != family.n_instances:
            raise ShadowlabError(f"mismatched parameter and label counts: the family has {family.n_instances} "
                                 f"instances, the targets {targets.labels.shape[0]} label rows")
        tg = targets
    train, test = split_instances(family.n_instances, test_fraction, seed)
    est = make_model(model, parameter_names=family.parameter_names, edges=family.edges, cv=min(cv, len(train)),
                     random_state=seed, fast=fast, n_jobs=n_jobs)
    t0 = time.perf_counter()
    est.fit(family.parameters[train], tg.labels[train], progress=progress)
    fit_s = time.perf_counter() - t0
    pred = np.asarray(est.predict(family.parameters[test])).reshape(len(test), -1)
    return LearningResult(model, tg.target, tg.pairs, train, test, tg.n_snapshots, seed, pred, tg.labels[test],
                          tg.stderr[test], None if tg.exact is None else tg.exact[test], fit_s,
                          {"lattice": family.metadata.get("lattice"), "family_model": family.metadata.get("model")},
                          est)


def count_fits(family: ShadowFamily, model: str, *, cv: int = 4, fast: bool = False, test_fraction: float = 0.5
               ) -> int:
    """Number of cross-validation fits :func:`evaluate_model` makes (for progress bars)."""
    est = make_model(model, parameter_names=family.parameter_names, edges=family.edges, cv=cv, fast=fast)
    folds = min(cv, family.n_instances - max(1, round(test_fraction * family.n_instances)))
    return len(est.candidates) * folds
