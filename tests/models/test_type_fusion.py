"""The fusion of feature types on a constructed case: a weak type whose scores extrapolate on every test frame
(as a density model's do on a domain the training videos did not cover) must not pull the fused score below
the informative type, under the pipeline's rule (training-score min-max per type, logarithmic tail, sum)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mulde_vad.models.calibration import CALIBRATION_TAIL, Calibration, fuse_calibrated


@pytest.mark.parametrize("seed", range(3))
def test_a_weak_extrapolating_type_cannot_pull_the_fused_score_below_the_best_type(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_normal, n_anomalous = 2000, 400
    labels = np.r_[np.zeros(n_normal), np.ones(n_anomalous)]
    train = {"motion": rng.gamma(2, 1, 5000), "colour": rng.gamma(2, 1, 5000)}
    fitted = {name: Calibration.fit(scores, 99.9) for name, scores in train.items()}
    # motion: normal test frames score like its training frames; anomalies 2-20 training ranges out.
    motion = np.r_[rng.gamma(2, 1, n_normal), fitted["motion"].high * rng.uniform(2, 20, n_anomalous)]
    # colour: every test frame, normal or not, lies 1-2 training ranges out and scores like d⁴ there.
    colour = fitted["colour"].high * rng.uniform(1, 2, n_normal + n_anomalous) ** 4
    frames = {"motion": motion, "colour": colour}
    best = roc_auc_score(labels, motion)

    def fused_auc(tail: str) -> float:
        calibrations = {name: Calibration(c.low, c.high, tail) for name, c in fitted.items()}
        return roc_auc_score(labels, fuse_calibrated(frames, calibrations))

    assert CALIBRATION_TAIL == "log"
    assert best == 1.0
    assert fused_auc("log") >= best - 0.01
    assert fused_auc("linear") < best - 0.05  # a linear tail lets the colour type's extrapolation decide
