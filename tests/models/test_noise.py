"""The noise levels: the data-driven σ_high."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from mulde_vad.models.mulde import MULDE
from mulde_vad.models.noise import covering_sigma, scoring_scales


def test_covering_sigma_is_the_largest_distance_over_sqrt_d_and_never_below_one() -> None:
    corners = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, 8.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    assert covering_sigma(corners, seed=0) == 10.0 / 2.0  # |(6, 8)| = 10, d = 4
    assert covering_sigma(corners / 10, seed=0) == 1.0  # the paper's σ_high is the floor


def test_covering_sigma_reads_a_bounded_subsample() -> None:
    x = np.random.default_rng(0).standard_normal((5000, 3))
    full = covering_sigma(x, seed=0, sample=5000)
    assert 0.7 * full < covering_sigma(x, seed=0, sample=1000) <= full
    assert covering_sigma(x, seed=1, sample=1000) == covering_sigma(x, seed=1, sample=1000)  # seeded


def test_auto_sigma_high_follows_the_standardised_data_and_survives_a_save(tmp_path) -> None:
    """A rare large value in one column (kdd99's binary flags) spreads the standardised data over ~30 units:
    "auto" stretches the noise that far, a number is kept as given, and the fitted level is saved."""
    rng = np.random.default_rng(0)
    normal = rng.standard_normal((3000, 4))
    normal[:3, 0] += 60.0  # three training rows with a rare, large flag
    anomalies = rng.standard_normal((300, 4)) + np.array([0.0, 15.0, -15.0, 0.0]) * rng.choice([-1, 1], (300, 1))
    test = np.vstack([rng.standard_normal((300, 4)), anomalies])
    labels = np.r_[np.zeros(300), np.ones(300)]
    params = dict(hidden_units=(64, 64), max_steps=300, device="cpu", random_state=0)
    auto = MULDE(**params).fit(normal)
    assert auto.sigma_high_ == covering_sigma(auto._standardise(normal), seed=0) > 10
    assert auto.scales_[-1] == scoring_scales(1e-3, auto.sigma_high_, 16, "linear")[-1]
    assert roc_auc_score(labels, auto.anomaly_score(test)) > 0.99
    auto.save(tmp_path / "m.pt")
    assert float(MULDE.load(tmp_path / "m.pt").sigma_high_) == auto.sigma_high_
    fixed = MULDE(**params, sigma_high=1.0).fit(normal)
    assert fixed.sigma_high_ == 1.0 and fixed.scales_[-1] == 1.0
