"""Fusion of the L per-scale scores z(x) = [f(x, σ_1), …, f(x, σ_L)] into one anomaly score.

* ``"gmm"``: the paper's fusion, a full-covariance GMM on the raw training z, scored by its negative
  log-likelihood (method of the official code; ``reg_covar`` escalated only as far as needed).
* ``"robust"`` (our default): the same GMM idea made safe for real features, where the L scores are
  nearly collinear. A full-covariance Gaussian turns the tiny spread off their common line into
  unit-variance directions, so it rewards minute deviations there instead of anomalies. Robust fusion
  standardises z with training statistics, keeps only the principal directions that carry
  ``variance_kept`` of the training variance, shrinks the covariance towards the identity and picks
  the number of components by BIC.
* ``"max"`` / ``"mean"``: the official code's aggregates over σ of the standardised scores.

Every fusion is a small estimator (``fit(z)``, ``score(z)`` → anomaly score, higher = more anomalous)
whose state is a dict of plain arrays (``state()`` / ``from_state``), so a saved or exported model
needs nothing but NumPy to score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

FusionName = Literal["robust", "gmm", "max", "mean"]
FUSIONS: tuple[str, ...] = ("robust", "gmm", "max", "mean")
# scikit-learn's default (what the official code used) first, then ×10 steps.
REG_COVAR_LADDER = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
_STD_EPS = 1e-8


class ScaleFusion(Protocol):
    def fit(self, z: np.ndarray) -> ScaleFusion: ...
    def score(self, z: np.ndarray) -> np.ndarray: ...
    def state(self) -> dict[str, np.ndarray]: ...


def make_fusion(name: str, n_components: int, random_state: int | None) -> ScaleFusion:
    if name == "robust":
        return RobustGMMFusion(max_components=n_components, random_state=random_state)
    if name == "gmm":
        return GMMFusion(n_components=n_components, random_state=random_state)
    if name in ("max", "mean"):
        return AggregateFusion(how=name)
    raise ValueError(f"fusion must be one of {FUSIONS}, got {name!r}")


def fusion_from_state(name: str, state: dict[str, np.ndarray]) -> ScaleFusion:
    classes = {"robust": RobustGMMFusion, "gmm": GMMFusion, "max": AggregateFusion, "mean": AggregateFusion}
    if name not in classes:
        raise ValueError(f"unknown fusion {name!r} in a saved model; choose from {FUSIONS}")
    return classes[name].from_state(state)


def _check(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or not np.isfinite(z).all():
        raise ValueError("scale scores must be a finite (n, L) array; the network diverged or the input is invalid")
    return z


def fit_gaussian_mixture(
    z: np.ndarray, n_components: int, random_state: int | None, reg_covar: float = REG_COVAR_LADDER[0]
) -> GaussianMixture:
    """A full-covariance GMM, escalating ``reg_covar`` ×10 from the given value when the fit fails.

    Multiscale scores of neighbouring σ are almost collinear on real features, so a small ``reg_covar``
    can leave a singular covariance ("ill-defined empirical covariance"). Raising it only as far as
    needed keeps the fit as close as possible to the requested one; the value used is stored on the
    returned model as ``reg_covar``.
    """
    z = _check(z)
    if len(z) < n_components:
        raise ValueError(f"need at least gmm_components={n_components} training samples, got {len(z)}")
    last_error: Exception | None = None
    for value in (v for v in REG_COVAR_LADDER if v >= reg_covar):
        gmm = GaussianMixture(
            n_components=n_components, covariance_type="full", reg_covar=value, random_state=random_state
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(z)
            if np.isfinite(gmm.score_samples(z)).all():
                return gmm
        except ValueError as error:  # ill-defined covariance
            last_error = error
    raise ValueError(
        f"GMM fusion failed even with reg_covar={REG_COVAR_LADDER[-1]:g}: the training scale scores are degenerate "
        f"(constant or collinear). Check the features and the training loss. Last error: {last_error}"
    )


_GMM_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def _gmm_state(gmm: GaussianMixture) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(gmm, name)) for name in _GMM_ARRAYS}


def _gmm_nll(state: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of a full-covariance GMM from its plain arrays (sklearn's own formula)."""
    weights, means, chol = state["weights_"], state["means_"], state["precisions_cholesky_"]
    d = z.shape[1]
    # log N(z | μ_k, Σ_k) with Σ_k⁻¹ = P_k P_kᵀ: −½‖(z − μ_k) P_k‖² − d/2 log 2π + log|det P_k|
    y = np.einsum("nd,kde->nke", z, chol) - np.einsum("kd,kde->ke", means, chol)[None]
    log_det = np.log(np.abs(np.diagonal(chol, axis1=1, axis2=2))).sum(axis=1)
    log_prob = -0.5 * (y**2).sum(axis=2) - 0.5 * d * np.log(2 * np.pi) + log_det + np.log(weights)
    top = log_prob.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(log_prob - top).sum(axis=1)))


@dataclass
class _PlainState:
    """A fusion whose whole fitted state is ``state_``, a dict of plain arrays."""

    state_: dict[str, np.ndarray] = field(default_factory=dict, repr=False, kw_only=True)

    def state(self) -> dict[str, np.ndarray]:
        return dict(self.state_)


@dataclass
class GMMFusion(_PlainState):
    """The paper's fusion: a full-covariance GMM on raw training z; anomaly score = its NLL."""

    n_components: int = 5
    random_state: int | None = 0

    def fit(self, z: np.ndarray) -> GMMFusion:
        gmm = fit_gaussian_mixture(z, self.n_components, self.random_state)
        self.state_ = {**_gmm_state(gmm), "reg_covar": np.asarray(gmm.reg_covar)}
        return self

    def score(self, z: np.ndarray) -> np.ndarray:
        return _gmm_nll(self.state_, _check(z))

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> GMMFusion:
        return cls(n_components=len(state["weights_"]), state_=dict(state))


@dataclass
class RobustGMMFusion(_PlainState):
    """Standardise → keep the principal directions carrying ``variance_kept`` → GMM with k by BIC.

    ``shrinkage`` is added to the covariance diagonal in the whitened space (unit variance per kept
    direction), so no component can collapse onto a sliver of the training scores.
    """

    max_components: int = 5
    variance_kept: float = 0.99
    shrinkage: float = 1e-2
    random_state: int | None = 0

    def fit(self, z: np.ndarray) -> RobustGMMFusion:
        z = _check(z)
        mean, std = z.mean(axis=0), z.std(axis=0) + _STD_EPS
        u = (z - mean) / std
        _, singular, vt = np.linalg.svd(u - u.mean(axis=0), full_matrices=False)
        variance = singular**2 / max(len(u) - 1, 1)
        kept = int(np.searchsorted(np.cumsum(variance) / variance.sum(), self.variance_kept) + 1)
        kept = min(kept, len(variance))
        projection = vt[:kept].T / np.sqrt(variance[:kept] + _STD_EPS)  # (L, r): whitened principal coordinates
        w = u @ projection
        best, best_bic = None, np.inf
        for k in range(1, min(self.max_components, len(w)) + 1):
            gmm = fit_gaussian_mixture(w, k, self.random_state, reg_covar=self.shrinkage)
            bic = gmm.bic(w)
            if bic < best_bic:
                best, best_bic = gmm, bic
        self.state_ = {"mean": mean, "std": std, "projection": projection, **_gmm_state(best)}
        return self

    def score(self, z: np.ndarray) -> np.ndarray:
        s = self.state_
        return _gmm_nll(s, ((_check(z) - s["mean"]) / s["std"]) @ s["projection"])

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> RobustGMMFusion:
        return cls(max_components=len(state["weights_"]), state_=dict(state))


@dataclass
class AggregateFusion(_PlainState):
    """Max or mean over σ of the scale scores standardised with training statistics."""

    how: Literal["max", "mean"] = "max"

    def fit(self, z: np.ndarray) -> AggregateFusion:
        z = _check(z)
        self.state_ = {"mean": z.mean(axis=0), "std": z.std(axis=0) + _STD_EPS, "how": np.asarray(self.how)}
        return self

    def score(self, z: np.ndarray) -> np.ndarray:
        u = (_check(z) - self.state_["mean"]) / self.state_["std"]
        return u.max(axis=1) if self.how == "max" else u.mean(axis=1)

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> AggregateFusion:
        return cls(how=str(state["how"]), state_=dict(state))
