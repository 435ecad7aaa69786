"""Per-video temporal smoothing of frame scores (AI-VAD ``evaluate.py``: σ 3 Ped2/Avenue, 7 ShanghaiTech)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Smoothing σ (frames) per dataset, from AI-VAD's README; other datasets have no published value.
DEFAULT_SIGMA = {"ped2": 3.0, "ped1": 3.0, "avenue": 3.0, "shanghaitech": 7.0}


def smooth_scores(scores: np.ndarray, sigma: float) -> np.ndarray:
    """``gaussian_filter1d`` (scipy defaults: reflect border, truncate 4σ) of one video; σ=0 returns a copy."""
    scores = np.asarray(scores, dtype=np.float64)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    return gaussian_filter1d(scores, sigma) if sigma > 0 and len(scores) else scores.copy()


def smooth_videos(scores: Mapping[str, np.ndarray], sigma: float) -> dict[str, np.ndarray]:
    """Smooth each video on its own, so no score leaks across a video boundary."""
    return {video: smooth_scores(values, sigma) for video, values in scores.items()}
