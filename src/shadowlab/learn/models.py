"""Models that predict ground-state properties from Hamiltonian parameters.

All models are scikit-learn regressors (``fit(X, Y)``, ``predict(X)``, ``get_params``), so
they work in pipelines, ``cross_val_score`` and ``GridSearchCV``. ``X`` is ``(N, m)``
parameters, ``Y`` is ``(N, T)`` labels, one column per target (for example the estimated
correlation of each nearest-neighbour pair).

The published methods choose hyperparameters separately for every target by cross-validation
on the (noisy, shadow-estimated) training labels; :class:`PerTargetModelSelection` does that
for any list of candidate estimators. The factories build the candidates of:

* :func:`dirichlet_kernel_model`, :func:`gaussian_kernel_model`: Huang, Kueng, Torlai, Albert,
  Preskill, Science 377, eabk3333 (2022): kernel ridge regression and support-vector regression
  with the Dirichlet or Gaussian kernel on the parameters, ``C`` from 0.0125 to 2 (ridge
  ``alpha = 1 / (2 C)``);
* :func:`random_fourier_lasso_model`: Lewis, Huang, Tran, Lehner, Kueng, Preskill, Nat.
  Commun. 15 (2024): local random Fourier features and an l1-regularized (Lasso) linear model,
  ``R`` in 5..40 frequencies per region, ``gamma`` in 0.4..0.75, ``alpha`` in 2^-8..2^-5.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Lasso
from sklearn.model_selection import KFold
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import check_array, check_is_fitted

from shadowlab.errors import ShadowlabError
from shadowlab.learn.features import (
    DirichletFeatures,
    LocalRandomFourierFeatures,
    ScaledStandardizer,
    parameter_regions,
)

MODELS = ("rff", "gaussian", "dirichlet")
HUANG_C_GRID = (0.0125, 0.025, 0.05, 0.125, 0.25, 0.5, 1.0, 2.0)
LEWIS_R_GRID = (5, 10, 20, 40)
LEWIS_GAMMA_GRID = (0.4, 0.5, 0.6, 0.65, 0.7, 0.75)
LEWIS_ALPHA_GRID = (2.0**-8, 2.0**-7, 2.0**-6, 2.0**-5)


class PerTargetModelSelection(RegressorMixin, BaseEstimator):
    """For each target column, the candidate with the lowest K-fold cross-validated RMSE.

    Every candidate is fitted on all targets at once (ridge and Lasso solve each column
    independently anyway), so the cost is ``candidates x folds`` fits, not times the targets.

    Parameters
    ----------
    candidates:
        scikit-learn regressors accepting 2-D ``Y`` (wrap single-output ones in
        ``MultiOutputRegressor``).
    cv:
        Number of folds (shuffled with ``random_state``).
    random_state:
        Seed of the fold assignment.
    n_jobs:
        Parallel fits (joblib; ``None`` = 1, ``-1`` = all cores). Results do not depend on it.

    Attributes
    ----------
    cv_rmse_:
        ``(n_candidates, n_targets)`` cross-validated RMSE against the training labels.
    best_index_:
        ``(n_targets,)`` the chosen candidate per target.
    estimators_:
        ``{candidate index: fitted estimator}`` for every chosen candidate, refitted on all data.
    """

    def __init__(self, candidates: Sequence[BaseEstimator] = (), cv: int = 4, random_state: int | None = 0,
                 n_jobs: int | None = None):
        self.candidates = candidates
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, y: np.ndarray, *, progress: Callable[[int], object] | None = None
            ) -> PerTargetModelSelection:
        """Cross-validate every candidate, pick one per target, refit the chosen ones on all rows.

        ``progress`` (optional) is called with 1 after each candidate fit (``candidates x cv`` in
        all, then the refits are not counted).
        """
        x = check_array(X, dtype=np.float64)
        y_arr = np.asarray(y, dtype=np.float64)
        self._single_output = y_arr.ndim == 1
        y2 = y_arr.reshape(len(y_arr), -1)
        if y2.shape[0] != x.shape[0]:
            raise ShadowlabError(f"mismatched parameter and label counts: {x.shape[0]} parameter rows, "
                                 f"{y2.shape[0]} label rows")
        if not np.all(np.isfinite(y2)):
            raise ShadowlabError("labels must be finite numbers")
        if not self.candidates:
            raise ShadowlabError("no candidate models to choose from")
        folds = int(self.cv)
        if not 2 <= folds <= x.shape[0]:
            raise ShadowlabError(f"{folds}-fold cross-validation needs between 2 and {x.shape[0]} folds "
                                 f"(training instances)")
        sq = np.zeros((len(self.candidates), y2.shape[1]))
        splits = list(KFold(folds, shuffle=True, random_state=self.random_state).split(x))
        jobs = [(c, train, test) for train, test in splits for c in range(len(self.candidates))]
        runner = Parallel(n_jobs=self.n_jobs, return_as="generator")
        results = runner(delayed(_fold_errors)(self.candidates[c], x, y2, train, test) for c, train, test in jobs)
        for (c, _, _), err in zip(jobs, results, strict=True):
            sq[c] += err
            if progress is not None:
                progress(1)
        self.cv_rmse_ = np.sqrt(sq / x.shape[0])
        self.best_index_ = self.cv_rmse_.argmin(axis=0)
        chosen = [int(c) for c in np.unique(self.best_index_)]
        fitted = Parallel(n_jobs=self.n_jobs)(delayed(_fit)(self.candidates[c], x, y2) for c in chosen)
        self.estimators_ = dict(zip(chosen, fitted, strict=True))
        self.n_features_in_ = x.shape[1]
        self.n_targets_ = y2.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``(N, T)`` (``(N,)`` if fitted on 1-D labels)."""
        check_is_fitted(self, "estimators_")
        x = check_array(X, dtype=np.float64)
        if x.shape[1] != self.n_features_in_:
            raise ShadowlabError(f"expected {self.n_features_in_} parameters per row, got {x.shape[1]}")
        out = np.empty((x.shape[0], self.n_targets_))
        for c, est in self.estimators_.items():
            cols = self.best_index_ == c
            out[:, cols] = np.asarray(est.predict(x)).reshape(x.shape[0], -1)[:, cols]
        return out[:, 0] if self._single_output else out


def _fit(est: BaseEstimator, x: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A fitted clone on 2-D labels (every candidate accepts them; SVR comes in MultiOutputRegressor)."""
    with warnings.catch_warnings():
        # Weakly regularized Lasso candidates may stop at max_iter; their CV error says how good they are.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(est).fit(x, y)


def _fold_errors(est: BaseEstimator, x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
                 ) -> np.ndarray:
    """Sum over the held-out fold of squared errors, per target."""
    pred = np.asarray(_fit(est, x[train], y[train]).predict(x[test])).reshape(len(test), -1)
    return ((pred - y[test]) ** 2).sum(axis=0)


def _kernel_candidates(features: BaseEstimator | None, kernel: str, gammas: Sequence[float | None],
                       c_grid: Sequence[float], use_svr: bool) -> list[BaseEstimator]:
    steps = [] if features is None else [features]
    out: list[BaseEstimator] = []
    for g in gammas:
        for c in c_grid:
            ridge = KernelRidge(kernel=kernel, gamma=g, alpha=1 / (2 * c))
            # Kernel ridge has no intercept: centre the labels, or the ridge penalty shrinks every
            # prediction towards 0 (far from the data, at the ends of a parameter range).
            out.append(TransformedTargetRegressor(make_pipeline(*[clone(s) for s in steps], ridge),
                                                  transformer=StandardScaler(with_std=False)))
            if use_svr:
                svr = SVR(kernel=kernel, C=c, gamma="scale" if g is None else g)
                out.append(make_pipeline(*[clone(s) for s in steps], MultiOutputRegressor(svr)))
    return out


def dirichlet_kernel_model(*, order: int = 2, period_factors: Sequence[float] = (2.0, 3.0, 4.0),
                           c_grid: Sequence[float] = HUANG_C_GRID, use_svr: bool = True, cv: int = 4,
                           random_state: int | None = 0) -> PerTargetModelSelection:
    """The Dirichlet-kernel model of Huang et al. 2022 (kernel ridge and SVR).

    ``C`` and the kernel's period (a multiple in ``period_factors`` of the training parameters'
    range, see :class:`DirichletFeatures`) are chosen per target by cross-validation.
    """
    cands = []
    for factor in period_factors:
        cands += _kernel_candidates(DirichletFeatures(order, None, factor), "linear", [None], c_grid, use_svr)
    return PerTargetModelSelection(cands, cv=cv, random_state=random_state)


def gaussian_kernel_model(*, widths: Sequence[float] = (0.5, 1.0, 2.0, 4.0), c_grid: Sequence[float] = HUANG_C_GRID,
                          use_svr: bool = True, cv: int = 4, random_state: int | None = 0
                          ) -> PerTargetModelSelection:
    """The Gaussian-kernel model of Huang et al. 2022 on standardized parameters.

    ``k(x, x') = exp(-|z - z'|^2 / (2 w^2 m))`` with ``z`` the standardized parameters, ``m``
    their number and ``w`` in ``widths`` (chosen per target with ``C``); dividing by ``m``
    keeps the kernel's scale independent of the system size.
    """
    cands = []
    for w in widths:
        # The scaler divides by w sqrt(m), so a fixed gamma = 1/2 gives length scale w per dimension.
        cands += _kernel_candidates(ScaledStandardizer(w), "rbf", [0.5], c_grid, use_svr)
    return PerTargetModelSelection(cands, cv=cv, random_state=random_state)


def random_fourier_lasso_model(regions: Sequence[np.ndarray] | None, *, n_features_grid: Sequence[int] = LEWIS_R_GRID,
                               gamma_grid: Sequence[float] = LEWIS_GAMMA_GRID,
                               alpha_grid: Sequence[float] = LEWIS_ALPHA_GRID, cv: int = 4,
                               random_state: int | None = 0, max_iter: int = 10000, tol: float = 1e-3
                               ) -> PerTargetModelSelection:
    """The random-Fourier-feature + Lasso model of Lewis et al. 2024.

    ``regions`` index the parameters of each local region (:func:`parameter_regions`: an edge's
    neighbourhood within a radius); ``None`` makes the whole parameter vector one region.
    """
    cands: list[BaseEstimator] = []
    for r in n_features_grid:
        for g in gamma_grid:
            feats = LocalRandomFourierFeatures(regions, r, g, random_state)
            for a in alpha_grid:
                cands.append(make_pipeline(clone(feats), Lasso(alpha=a, max_iter=max_iter, tol=tol)))
    return PerTargetModelSelection(cands, cv=cv, random_state=random_state)


def make_model(kind: str, *, parameter_names: Sequence[str] = (), edges: np.ndarray | None = None,
               radius: int = 1, cv: int = 4, random_state: int | None = 0, fast: bool = False,
               n_jobs: int | None = None) -> PerTargetModelSelection:
    """The model named ``kind`` (``"rff"``, ``"gaussian"`` or ``"dirichlet"``) with its published grid.

    ``parameter_names`` and ``edges`` (a family's) give the random-feature model its local
    regions (:func:`parameter_regions`, edges within ``radius``). ``fast=True`` uses a smaller
    hyperparameter grid (for tests and quick looks).
    """
    if kind == "rff":
        kw = {"n_features_grid": (10, 20), "gamma_grid": (0.4, 0.6, 0.75)} if fast else {}
        regions = None if edges is None else parameter_regions(parameter_names, edges, radius)
        model = random_fourier_lasso_model(regions, cv=cv, random_state=random_state, **kw)
    elif kind == "gaussian":
        model = gaussian_kernel_model(cv=cv, random_state=random_state, use_svr=not fast)
    elif kind == "dirichlet":
        model = dirichlet_kernel_model(cv=cv, random_state=random_state, use_svr=not fast)
    else:
        raise ShadowlabError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    return model.set_params(n_jobs=n_jobs)

