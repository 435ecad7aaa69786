"""GMM fusion of the L per-scale scores (method.md §1.5): full covariance, float64, robust regularisation."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

# scikit-learn's default (what the official code used) first, then ×10 steps.
REG_COVAR_LADDER = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def fit_gaussian_mixture(z: np.ndarray, n_components: int, random_state: int | None) -> GaussianMixture:
    """Fit a full-covariance GMM on training scale scores, escalating ``reg_covar`` ×10 when it fails.

    Multiscale scores of neighbouring σ are almost collinear on real features, so the default
    ``reg_covar`` can leave a singular covariance ("ill-defined empirical covariance"). Raising it
    only as far as needed keeps the fit as close as possible to the paper's unregularised GMM; the
    value used is stored on the returned model as ``reg_covar``.
    """
    z = np.asarray(z, dtype=np.float64)
    if not np.isfinite(z).all():
        raise ValueError("scale scores contain NaN or inf; the network diverged or the input is invalid")
    if len(z) < n_components:
        raise ValueError(f"need at least gmm_components={n_components} training samples, got {len(z)}")
    last_error: Exception | None = None
    for reg_covar in REG_COVAR_LADDER:
        gmm = GaussianMixture(
            n_components=n_components, covariance_type="full", reg_covar=reg_covar, random_state=random_state
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
