"""Scale-score fusion: the robust default survives collinear scale scores where the paper's raw GMM collapses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from mulde_vad.models.fusion import (
    FUSIONS,
    GMMFusion,
    RobustGMMFusion,
    _gmm_nll,
    fusion_from_state,
    make_fusion,
)


def collinear_scores(rng: np.random.Generator, n: int, level_shift: float, off_line: float) -> np.ndarray:
    """L=16 scale scores that share one level t (as f(x, σ_i) do on real features) plus tiny per-scale noise."""
    t = rng.standard_normal((n, 1)) + level_shift
    slopes = np.linspace(1.0, 3.0, 16)  # larger σ, larger spread, same ordering of samples
    return t * slopes + off_line * rng.standard_normal((n, 16))


def test_robust_fusion_survives_collinear_scales_where_the_raw_gmm_collapses() -> None:
    rng = np.random.default_rng(0)
    train = collinear_scores(rng, 4000, 0.0, off_line=1e-3)
    # Unseen normal samples deviate a little more off the common line than the training rows the network
    # was fitted on; anomalies lie far up the line (lower density at every σ).
    normal = collinear_scores(rng, 1000, 0.0, off_line=1e-2)
    anomalous = collinear_scores(rng, 1000, 4.0, off_line=1e-2)
    z, y = np.vstack([normal, anomalous]), np.r_[np.zeros(1000), np.ones(1000)]
    raw = roc_auc_score(y, make_fusion("gmm", 5, 0).fit(train).score(z))
    robust = roc_auc_score(y, make_fusion("robust", 5, 0).fit(train).score(z))
    assert raw < 0.75, raw  # rewards the off-line wiggle, not the anomaly
    assert robust > 0.98, robust
    assert make_fusion("robust", 5, 0).fit(train).state()["projection"].shape[1] == 1  # one direction kept


def test_robust_fusion_picks_components_by_bic() -> None:
    rng = np.random.default_rng(1)
    one = rng.standard_normal((2000, 3))
    two = np.vstack([rng.standard_normal((1000, 3)) - 6, rng.standard_normal((1000, 3)) + 6])
    assert len(RobustGMMFusion(max_components=5, variance_kept=1.0).fit(one).state()["weights_"]) == 1
    assert len(RobustGMMFusion(max_components=5, variance_kept=1.0).fit(two).state()["weights_"]) == 2


def test_gmm_nll_from_plain_arrays_is_sklearns() -> None:
    rng = np.random.default_rng(2)
    z = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4))
    gmm = GaussianMixture(3, covariance_type="full", random_state=0).fit(z)
    state = {k: getattr(gmm, k) for k in ("weights_", "means_", "precisions_cholesky_")}
    np.testing.assert_allclose(_gmm_nll(state, z), -gmm.score_samples(z), rtol=1e-10)


@pytest.mark.parametrize("name", FUSIONS)
def test_every_fusion_round_trips_through_its_plain_state(name: str) -> None:
    rng = np.random.default_rng(3)
    train, test = collinear_scores(rng, 800, 0, 0.1), collinear_scores(rng, 50, 1, 0.1)
    fusion = make_fusion(name, 3, 0).fit(train)
    state = {k: np.asarray(v) for k, v in fusion.state().items()}
    np.testing.assert_allclose(fusion_from_state(name, state).score(test), fusion.score(test), rtol=1e-12)
    scores = fusion.score(test)
    assert scores.shape == (50,) and np.isfinite(scores).all()
    # Anomalies are up the line: every fusion ranks them above typical training rows on average.
    assert scores.mean() > fusion.score(train).mean()


def test_aggregate_fusions_are_the_standardised_max_and_mean() -> None:
    train = np.array([[0.0, 10.0], [2.0, 30.0]])
    z = np.array([[1.0, 40.0]])  # standardised: (0, 2)
    assert make_fusion("max", 1, 0).fit(train).score(z) == pytest.approx(2.0, abs=1e-6)
    assert make_fusion("mean", 1, 0).fit(train).score(z) == pytest.approx(1.0, abs=1e-6)


def test_gmm_fusion_keeps_the_papers_components_and_regularisation() -> None:
    rng = np.random.default_rng(4)
    fusion = GMMFusion(n_components=5, random_state=0).fit(rng.standard_normal((1000, 16)))
    assert len(fusion.state()["weights_"]) == 5 and float(fusion.state()["reg_covar"]) == 1e-6


def test_unknown_fusion_is_named() -> None:
    with pytest.raises(ValueError, match="fusion must be one of"):
        make_fusion("median", 5, 0)
