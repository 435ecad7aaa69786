"""Features of a run of frames → calibrated per-type frame scores, the fused frame score, per-object scores.

The same arithmetic as the benchmark path (``models.score_store``): object scores → per-frame max →
AI-VAD calibration → sum over types; here it runs on one chunk of frames at a time, so it serves both
streaming prediction and the held-out scoring that sets a bundle's threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mulde_vad.models.calibration import Calibration, fuse_calibrated
from mulde_vad.models.frame_scores import object_to_frame_scores, score_observed
from mulde_vad.storage.schema import FrameChunk, ObjectChunk


@dataclass(frozen=True)
class Scorer:
    """What a bundle (or one fold of its threshold search) scores with: models and calibrations per type."""

    models: Mapping[str, Any]  # fitted estimators with ``anomaly_score`` (MULDE)
    calibrations: Mapping[str, Calibration]
    empty_fill: float = 0.0


@dataclass(frozen=True)
class ScoredFrames:
    """Scores of the consecutive frames ``first`` … ``first + len(fused) − 1``.

    per_type: calibrated frame score per feature type (``empty_fill`` where the type saw no object);
    fused: their sum, the unsmoothed frame score; boxes / object_scores / object_types: per frame, the
    objects' xyxy boxes, their fused calibrated scores and their per-type calibrated scores (k, types).
    """

    first: int
    per_type: dict[str, np.ndarray]
    fused: np.ndarray
    boxes: list[np.ndarray]
    object_scores: list[np.ndarray]
    object_types: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.fused)


def _calibrated(scores: np.ndarray, calibration: Calibration, fill: float) -> np.ndarray:
    values = calibration.transform(scores)
    return np.where(np.isnan(values), fill, values)


def score_objects(scorer: Scorer, chunk: ObjectChunk, first: int, n_frames: int) -> ScoredFrames:
    """Score the objects of frames ``first`` … ``first + n_frames − 1`` (frames without objects included)."""
    table = chunk.objects
    local = table.frame_index - first
    if len(local) and (local.min() < 0 or local.max() >= n_frames):
        raise ValueError(f"objects of frames outside [{first}, {first + n_frames}) in this chunk")
    frame_raw, object_cal = {}, np.full((len(table), len(scorer.models)), scorer.empty_fill)
    for column, (name, model) in enumerate(scorer.models.items()):
        observed, scores = score_observed(model, chunk.features[name])
        frame_raw[name] = object_to_frame_scores(local[observed], scores, n_frames)
        object_cal[observed, column] = _calibrated(scores, scorer.calibrations[name], scorer.empty_fill)
    per_type = {n: _calibrated(v, scorer.calibrations[n], scorer.empty_fill) for n, v in frame_raw.items()}
    fused = fuse_calibrated(frame_raw, scorer.calibrations, scorer.empty_fill)
    order = np.argsort(local, kind="stable")
    splits = np.searchsorted(local[order], np.arange(1, n_frames))
    boxes = np.split(table.boxes[order], splits)
    types = np.split(object_cal[order], splits)
    return ScoredFrames(first, per_type, fused, boxes, [t.sum(axis=1) for t in types], types)


def score_frame_rows(scorer: Scorer, chunk: FrameChunk) -> ScoredFrames:
    """Score frame-centric rows (one per frame); there are no boxes."""
    raw = {name: model.anomaly_score(chunk.features[name]) for name, model in scorer.models.items()}
    n = len(next(iter(raw.values())))
    per_type = {name: _calibrated(v, scorer.calibrations[name], scorer.empty_fill) for name, v in raw.items()}
    fused = fuse_calibrated(raw, scorer.calibrations, scorer.empty_fill)
    empty = [np.zeros((0, 4), np.float32)] * n
    return ScoredFrames(chunk.start_frame, per_type, fused, empty, [np.zeros(0)] * n, [np.zeros((0, len(raw)))] * n)
