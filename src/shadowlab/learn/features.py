"""Feature maps of Hamiltonian parameters, as scikit-learn transformers.

A model that predicts a ground-state property from the parameters ``x`` (couplings, fields)
of the Hamiltonian is a linear model on features ``phi(x)``; the kernel is
``k(x, x') = phi(x) . phi(x')``.

* :class:`DirichletFeatures`: the Dirichlet kernel of Huang et al. (Science 2022), a sum over
  parameters of the one-dimensional Dirichlet kernel of order ``K``,
  ``k(x, x') = (1 / (m (2K + 1))) sum_i sum_{k=-K..K} cos(2 pi k (x_i - x'_i) / period)``,
  written as an explicit map (``1``, ``sqrt 2 cos``, ``sqrt 2 sin`` per parameter and
  frequency), so that ``k(x, x) = 1``.
* :class:`LocalRandomFourierFeatures`: the random-Fourier-feature map of Lewis et al. (Nat.
  Commun. 15 (2024)): for every local region ``P`` of the interaction graph (an edge and the
  edges within ``radius`` of it), ``R`` random frequencies ``omega ~ N(0, I)`` and features
  ``cos(gamma omega . x_P)``, ``sin(gamma omega . x_P)``. A sparse (Lasso) model on them uses
  only the regions that matter for each target, which is what makes the sample complexity
  logarithmic in the system size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from shadowlab.errors import ShadowlabError


def _checked_parameters(estimator: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """``X`` as float64, with the parameter count the transformer was fitted on."""
    x = check_array(X, dtype=np.float64)
    if x.shape[1] != estimator.n_features_in_:
        raise ShadowlabError(f"expected {estimator.n_features_in_} parameters per row, got {x.shape[1]}")
    return x


class DirichletFeatures(TransformerMixin, BaseEstimator):
    """Explicit feature map of the (normalized) Dirichlet kernel on each parameter.

    Parameters
    ----------
    order:
        ``K``, the highest frequency (Huang et al. use frequencies up to 2).
    period:
        Period of the kernel in parameter units. ``None`` (default): ``period_factor`` times
        the range (max - min) of the training parameters. The period must exceed the range, or
        parameters at opposite ends alias: with period 2 on couplings in ``[0, 2]`` the kernel
        sees ``J = 0`` and ``J = 2`` as the same value.
    period_factor:
        The multiple of the range used when ``period`` is ``None`` (at least 1).
    """

    def __init__(self, order: int = 2, period: float | None = None, period_factor: float = 3.0):
        self.order = order
        self.period = period
        self.period_factor = period_factor

    def fit(self, X: np.ndarray, y: object = None) -> DirichletFeatures:
        """Fix the period (from the training range when not given)."""
        x = check_array(X, dtype=np.float64)
        if int(self.order) < 0:
            raise ShadowlabError(f"order must be >= 0, got {self.order}")
        if self.period is None:
            if not self.period_factor >= 1:
                raise ShadowlabError(f"period_factor must be >= 1, got {self.period_factor}")
            span = float(x.max() - x.min())
            self.period_ = float(self.period_factor) * (span if span > 0 else 1.0)
        elif not self.period > 0:
            raise ShadowlabError(f"period must be > 0, got {self.period}")
        else:
            self.period_ = float(self.period)
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(N, m)`` parameters to ``(N, m (2K + 1))`` features with ``|phi(x)| = 1``."""
        check_is_fitted(self, "period_")
        x = _checked_parameters(self, X)
        k = np.arange(1, int(self.order) + 1)
        phase = (2.0 * np.pi / self.period_) * x[:, :, None] * k  # (N, m, K)
        blocks = [np.ones((*x.shape, 1)), np.sqrt(2.0) * np.cos(phase), np.sqrt(2.0) * np.sin(phase)]
        phi = np.concatenate(blocks, axis=2).reshape(x.shape[0], -1)
        return phi / np.sqrt(x.shape[1] * (2 * int(self.order) + 1))


class ScaledStandardizer(TransformerMixin, BaseEstimator):
    """Standardize each parameter, then divide by ``width * sqrt(m)`` (``m`` parameters).

    Before an RBF kernel with ``gamma = 1/2`` this gives
    ``k(x, x') = exp(-|z - z'|^2 / (2 width^2 m))`` on standardized ``z``: a length scale of
    ``width`` standard deviations per parameter, the same for every system size.
    """

    def __init__(self, width: float = 1.0):
        self.width = width

    def fit(self, X: np.ndarray, y: object = None) -> ScaledStandardizer:
        """Record each parameter's mean and standard deviation (1 for a constant parameter)."""
        if not self.width > 0:
            raise ShadowlabError(f"width must be > 0, got {self.width}")
        x = check_array(X, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0) * float(self.width) * np.sqrt(x.shape[1])
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(x - mean) / (std * width * sqrt(m))``."""
        check_is_fitted(self, "scale_")
        return (_checked_parameters(self, X) - self.mean_) / self.scale_


def edge_regions(edges: np.ndarray, radius: int) -> list[np.ndarray]:
    """For each edge, the indices of the edges within ``radius`` steps of it in the line graph.

    Two edges are one step apart when they share a qubit; ``radius = 0`` gives each edge alone.
    With per-edge parameters (one coupling per edge, in ``edges`` order) these index the
    parameters of the local region around each edge.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if radius < 0:
        raise ShadowlabError(f"radius must be >= 0, got {radius}")
    n_e = e.shape[0]
    touch = (e[:, None, 0] == e[None, :, 0]) | (e[:, None, 0] == e[None, :, 1]) \
        | (e[:, None, 1] == e[None, :, 0]) | (e[:, None, 1] == e[None, :, 1])
    reach = np.eye(n_e, dtype=bool)
    for _ in range(radius):
        reach = reach | ((reach.astype(np.int64) @ touch.astype(np.int64)) > 0)
    return [np.flatnonzero(row) for row in reach]


_EDGE_NAME = re.compile(r"^J\[(\d+)-(\d+)\]$")
_SITE_NAME = re.compile(r"^h\[(\d+)\]$")


def parameter_regions(parameter_names: Sequence[str], edges: np.ndarray, radius: int) -> list[np.ndarray] | None:
    """Local regions of a parameter vector, from the parameters' names.

    Names ``J[i-j]`` are couplings of edge ``(i, j)``, ``h[i]`` fields on site ``i``; any other
    name (``Delta``, a uniform ``h``) is global. The region of edge ``e`` holds the couplings of
    the edges within ``radius`` of ``e`` (:func:`edge_regions`), the fields on their sites, and
    every global parameter. Returns ``None`` (one global region) when there are no edges or no
    local parameters.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    edge_param: dict[tuple[int, int], int] = {}
    site_param: dict[int, int] = {}
    global_params = []
    for k, name in enumerate(parameter_names):
        if m := _EDGE_NAME.match(name):
            a, b = sorted((int(m.group(1)), int(m.group(2))))
            edge_param[(a, b)] = k
        elif m := _SITE_NAME.match(name):
            site_param[int(m.group(1))] = k
        else:
            global_params.append(k)
    if e.size == 0 or not (edge_param or site_param):
        return None
    regions = []
    for near in edge_regions(e, radius):
        idx = {edge_param[key] for key in (tuple(sorted(map(int, e[f]))) for f in near) if key in edge_param}
        idx |= {site_param[int(q)] for q in np.unique(e[near]) if int(q) in site_param}
        idx |= set(global_params)
        if idx:
            regions.append(np.array(sorted(idx), dtype=np.int64))
    return regions


class LocalRandomFourierFeatures(TransformerMixin, BaseEstimator):
    """Random Fourier features of each local region of parameters (Lewis et al. 2024).

    Parameters
    ----------
    regions:
        One index array per local region into the parameter vector (see
        :func:`edge_regions`); ``None`` uses the whole parameter vector as one region (for
        models with a few global parameters, such as a uniform field).
    n_features:
        ``R``, random frequencies per region; each gives a cosine and a sine feature.
    gamma:
        Frequency scale: ``omega ~ N(0, gamma^2 I)``, which approximates the Gaussian kernel
        ``exp(-gamma^2 |x_P - x'_P|^2 / 2)`` on each region.
    random_state:
        Seed of the frequencies (fixed at ``fit``).
    """

    def __init__(self, regions: Sequence[np.ndarray] | None = None, n_features: int = 20, gamma: float = 0.5,
                 random_state: int | None = 0):
        self.regions = regions
        self.n_features = n_features
        self.gamma = gamma
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> LocalRandomFourierFeatures:
        """Draw the frequencies for each region."""
        x = check_array(X, dtype=np.float64)
        m = x.shape[1]
        if int(self.n_features) < 1 or not self.gamma > 0:
            raise ShadowlabError(f"n_features must be >= 1 and gamma > 0, got {self.n_features}, {self.gamma}")
        regions = [np.arange(m)] if self.regions is None else [np.asarray(r, dtype=np.int64) for r in self.regions]
        for r in regions:
            if r.size == 0 or r.min() < 0 or r.max() >= m:
                raise ShadowlabError(f"each region must index parameters 0..{m - 1}; got {r.tolist()}")
        rng = np.random.default_rng(self.random_state)
        width = max(r.size for r in regions)
        # One padded (regions, width) index table and zero-padded frequencies: a region with
        # fewer parameters simply has zero frequency weight on the padding.
        self.index_ = np.zeros((len(regions), width), dtype=np.int64)
        self.omega_ = np.zeros((len(regions), width, int(self.n_features)))
        for k, r in enumerate(regions):
            self.index_[k, : r.size] = r
            self.omega_[k, : r.size] = rng.standard_normal((r.size, int(self.n_features)))
        self.n_features_in_ = m
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(N, m)`` parameters to ``(N, regions x 2R)`` features (region-major, cosines then sines)."""
        check_is_fitted(self, "omega_")
        x = _checked_parameters(self, X)
        local = x[:, self.index_]  # (N, regions, width)
        phase = float(self.gamma) * np.einsum("nrw,rwf->nrf", local, self.omega_)
        return np.concatenate([np.cos(phase), np.sin(phase)], axis=2).reshape(x.shape[0], -1)
