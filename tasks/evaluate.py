"""Stage 5: calibrate, fuse, smooth and evaluate the frame scores of all test videos.

Per feature type and fused (the calibrated sum, method.md §3.3): per-video Gaussian smoothing, then
micro AUC and macro AUC (AI-VAD padding, and the skip-single-class variant), with
``models.score_store.evaluate``. The fused per-frame scores are written by ``write_scores``
(``scores.h5``, ``scores.csv``, ``metrics.json``), plus one PNG plot per video.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from mulde_vad.models.calibration import fuse_calibrated
from mulde_vad.models.plots import plot_video_scores
from mulde_vad.models.score_store import evaluate, write_scores
from mulde_vad.storage import read_shard
from mulde_vad.tasks.train import TrainedModel

FUSED = "fused"


@dataclass(frozen=True)
class Evaluation:
    aucs: dict[str, dict[str, float]]  # "velocity", ..., "fused" → {"micro", "macro", "macro_skip"}
    n_frames: int
    n_anomalous: int
    files: dict[str, Path]
    plots: dict[str, Path] = field(default_factory=dict)
    undefined: str | None = None  # why every AUC is NaN (a test set with one class only), else None


def evaluate_scores(
    score_shards: Mapping[str, Path],
    labels: Mapping[str, np.ndarray],
    models: Sequence[TrainedModel],
    output: Path,
    smoothing_sigma: float,
    plots: bool = True,
) -> Evaluation:
    """AUC table per feature type and fused; fused per-frame scores and plots under ``output``."""
    calibrations = {m.source.name: m.calibration for m in models}
    raw: dict[str, dict[str, np.ndarray]] = {name: {} for name in [*calibrations, FUSED]}
    for video, path in score_shards.items():
        per_type = {
            name: values[:, 0] for name, values in read_shard(path, features=list(calibrations)).features.items()
        }
        for name, values in per_type.items():
            raw[name][video] = fuse_calibrated({name: values}, calibrations)
        raw[FUSED][video] = fuse_calibrated(per_type, calibrations)
    labels = {video: labels[video] for video in score_shards}
    aucs, smoothed_fused, fused_metrics = {}, {}, {}
    for name, videos in raw.items():
        smoothed, metrics = evaluate(videos, labels, smoothing_sigma)
        aucs[name] = {
            key: float("nan") if metrics[field] is None else metrics[field]
            for key, field in (
                ("micro", "micro_auc"),
                ("macro", "macro_auc"),
                ("macro_skip", "macro_auc_skip_single_class"),
            )
        }
        if name == FUSED:
            smoothed_fused, fused_metrics = smoothed, metrics
    fused_metrics["per_feature_type"] = aucs
    files = write_scores(output, raw[FUSED], smoothed_fused, labels, fused_metrics)
    plot_paths = {}
    if plots:
        for video, scores in smoothed_fused.items():
            plot_paths[video] = plot_video_scores(
                scores, labels[video], output / "plots" / f"{video}.png", title=video, raw=raw[FUSED][video]
            )
    n_anomalous = int(sum(int(np.sum(v)) for v in labels.values()))
    undefined = fused_metrics.get("auc_undefined")
    return Evaluation(aucs, fused_metrics["n_frames"], n_anomalous, files, plot_paths, undefined)


evaluate_task = task(evaluate_scores, name="evaluate", retries=1, cache_policy=NO_CACHE)
