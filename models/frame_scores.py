"""Object scores → frame scores: the max over each frame's objects (AI-VAD, method.md §3.3)."""

from __future__ import annotations

from typing import Any

import numpy as np


def observed_rows(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows with finite features.

    NaN rows are not observations (pose rows of boxes without a matched person): they get no score, so
    their frames count as empty for that feature type.
    """
    return np.isfinite(values).all(axis=1) if len(values) else np.zeros(0, bool)


def score_observed(model: Any, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(observed, scores): the ``observed_rows`` mask and ``model.anomaly_score`` of those rows."""
    observed = observed_rows(values)
    scores = model.anomaly_score(values[observed]) if observed.any() else np.zeros(0)
    return observed, scores


def object_to_frame_scores(
    frame_index: np.ndarray, scores: np.ndarray, n_frames: int, empty_value: float = np.nan
) -> np.ndarray:
    """(n_frames,) float64: the highest object score on each frame, ``empty_value`` where a frame has none.

    The default NaN marks empty frames so the caller decides their value after calibration (AI-VAD gives
    a frame without poses the calibrated value 0, i.e. the training minimum; see ``models.calibration``).
    """
    frame_index = np.asarray(frame_index, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if frame_index.shape != scores.shape or frame_index.ndim != 1:
        raise ValueError(f"frame_index {frame_index.shape} and scores {scores.shape} must be equal 1-D shapes")
    if len(frame_index) and (frame_index.min() < 0 or frame_index.max() >= n_frames):
        raise ValueError(f"frame_index must lie in [0, {n_frames}), got [{frame_index.min()}, {frame_index.max()}]")
    out = np.full(n_frames, -np.inf)
    np.maximum.at(out, frame_index, scores)
    out[np.bincount(frame_index, minlength=n_frames) == 0] = empty_value
    return out
