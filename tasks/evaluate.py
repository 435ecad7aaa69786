"""Stage 5: calibrate, fuse, smooth and evaluate the frame scores of all test videos.

Per feature type and fused (the calibrated sum, method.md §3.3): per-video Gaussian smoothing, then
micro AUC and macro AUC (AI-VAD padding, and the skip-single-class variant). Writes one CSV of
per-frame scores per video and, optionally, one PNG plot per video.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from datasets.base import check_label_length
from models.calibration import fuse_calibrated
from models.metrics import macro_auc, micro_auc
from models.plots import plot_video_scores
from models.smoothing import smooth_videos
from storage import read_shard
from tasks.train import TrainedModel

FUSED = "fused"


@dataclass(frozen=True)
class Evaluation:
    aucs: dict[str, dict[str, float]]  # score name ("velocity", ..., "fused") → {"micro", "macro", "macro_skip"}
    n_frames: int
    n_anomalous: int
    scores_dir: Path
    plots: dict[str, Path] = field(default_factory=dict)


def _auc_row(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> dict[str, float]:
    try:
        skip = macro_auc(scores, labels, "skip")
    except ValueError:  # no video holds both classes
        skip = float("nan")
    return {"micro": micro_auc(scores, labels), "macro": macro_auc(scores, labels), "macro_skip": skip}


def _write_csv(path: Path, columns: Mapping[str, np.ndarray], labels: np.ndarray) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "label", *columns])
        rows = np.column_stack([np.arange(len(labels)), labels, *columns.values()])
        writer.writerows([[int(r[0]), int(r[1]), *(f"{v:.6g}" for v in r[2:])] for r in rows])
    os.replace(temp, path)


def evaluate(
    score_shards: Mapping[str, Path],
    labels: Mapping[str, np.ndarray],
    models: Sequence[TrainedModel],
    output: Path,
    smoothing_sigma: float,
    plots: bool = True,
) -> Evaluation:
    """AUC table per feature type and fused; per-frame CSVs under ``output/scores``, plots under ``output/plots``."""
    calibrations = {m.feature: m.calibration for m in models}
    raw: dict[str, dict[str, np.ndarray]] = {name: {} for name in [*calibrations, FUSED]}
    for video, path in score_shards.items():
        shard = read_shard(path, features=list(calibrations))
        check_label_length(labels[video], shard.n_frames, video=video, origin=path)
        per_type = {f: shard.features[f][:, 0] for f in calibrations}
        for feature, values in per_type.items():
            raw[feature][video] = fuse_calibrated({feature: values}, calibrations)
        raw[FUSED][video] = fuse_calibrated(per_type, calibrations)
    smoothed = {name: smooth_videos(videos, smoothing_sigma) for name, videos in raw.items()}
    aucs = {name: _auc_row(videos, labels) for name, videos in smoothed.items()}

    scores_dir, plots_dir = output / "scores", output / "plots"
    scores_dir.mkdir(parents=True, exist_ok=True)
    plot_paths = {}
    for video in score_shards:
        _write_csv(scores_dir / f"{video}.csv", {n: smoothed[n][video] for n in smoothed}, labels[video])
        if plots:
            plot_paths[video] = plot_video_scores(
                smoothed[FUSED][video], labels[video], plots_dir / f"{video}.png", title=video, raw=raw[FUSED][video]
            )
    n_frames = sum(len(v) for v in labels.values())
    n_anomalous = int(sum(int(np.sum(v)) for v in labels.values()))
    return Evaluation(aucs, n_frames, n_anomalous, scores_dir, plot_paths)


evaluate_task = task(evaluate, name="evaluate", retries=1, cache_policy=NO_CACHE)
