"""Features in the store → per-frame anomaly scores → metrics (method.md §3.5, §5).

Per feature type: fit one MULDE on all training rows (streamed out of the shards into one preallocated
array), score the training rows for calibration, then score every test shard one video at a time:
object scores → frame max → AI-VAD calibration → sum over types → per-video Gaussian smoothing →
micro / macro AUC. Frame-centric shards (one row per frame) skip the max.

This module is the one place where ``models`` imports ``storage``: it is the glue between the two and
is kept out of ``models/__init__`` so the estimator itself stays storage-free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from mulde_vad.models.calibration import AIVAD_UPPER, CALIBRATION_TAIL, Calibration, Tail, fuse_calibrated
from mulde_vad.models.frame_scores import object_to_frame_scores, score_observed
from mulde_vad.models.metrics import macro_auc, micro_auc, per_video_auc
from mulde_vad.models.plots import plot_video_scores
from mulde_vad.models.smoothing import smooth_videos
from mulde_vad.storage import FeatureStore, feature_rows, read_shard, stack_features
from mulde_vad.storage.aivad import AIVAD_FEATURES, AIVAD_STAGE, aivad_config


class Estimator(Protocol):
    calibration_scores_: np.ndarray  # training scores to calibrate with (rows the model did not fit, if any)

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None, **fit_params: Any) -> Estimator: ...
    def anomaly_score(self, X: np.ndarray) -> np.ndarray: ...
    def save(self, path: str | Path) -> None: ...


@dataclass(frozen=True)
class FeatureSource:
    """One feature type: the stage config whose shards hold it, the array name and its calibration.

    upper: AI-VAD's calibration statistic, a percentile of the training scores (99.9 for velocity and
    pose) or "max" (deep features).
    tail: how calibrated scores grow above ``upper``: "linear" (AI-VAD) or "log" (``Calibration``).
    """

    name: str
    stage: str
    config: Mapping[str, Any]
    feature: str | None = None  # array name inside the shard; defaults to ``name``
    upper: float | str = 99.9
    tail: Tail = CALIBRATION_TAIL

    @property
    def key(self) -> str:
        return self.feature or self.name


def aivad_sources(dataset: str, features: Sequence[str] = AIVAD_FEATURES) -> list[FeatureSource]:
    """Sources for features imported with ``storage.aivad.import_aivad``, calibrated as AI-VAD does.

    For ShanghaiTech AI-VAD's released code uses velocity + pose only (method.md §3.3): pass those two.
    """
    return [
        FeatureSource(f, AIVAD_STAGE, aivad_config(dataset, f), upper=AIVAD_UPPER[f], tail="linear") for f in features
    ]


@dataclass
class FittedFeature:
    source: FeatureSource
    model: Estimator
    calibration: Calibration
    n_train: int


@dataclass
class ScoreResult:
    raw: dict[str, np.ndarray]  # fused, unsmoothed frame scores per test video
    scores: dict[str, np.ndarray]  # after smoothing
    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def default_estimator(params: Mapping[str, Any] | None = None) -> Callable[[str], Estimator]:
    """Factory building a MULDE with ``params`` for every feature type."""

    def make(_: str) -> Estimator:
        from mulde_vad.models.mulde import MULDE  # torch is imported only when a model is really built

        return MULDE(**(params or {}))

    return make


def fit_feature(
    store: FeatureStore,
    source: FeatureSource,
    train_ids: Sequence[str],
    make_model: Callable[[str], Estimator],
    **fit_params: Any,
) -> FittedFeature:
    """Fit one model on all training rows of ``source`` and its calibration on its ``calibration_scores_``.

    The model's ``fit`` gets each row's training video as ``groups`` (a MULDE with a calibration hold-out
    withholds whole videos, so the calibration scores unseen videos, as AI-VAD's leave-one-video-out
    statistics do), and ``fit_params`` (MULDE's ``on_epoch``, say).
    """
    paths = store.shards(source.stage, source.config, list(train_ids))
    X = stack_features(paths, source.key)
    groups = np.repeat(np.arange(len(paths)), feature_rows(paths, source.key))
    observed = np.isfinite(X).all(axis=1)  # pose rows of boxes without a matched person are NaN: not observations
    model = make_model(source.name).fit(X[observed], groups=groups[observed], **fit_params)
    calibration = Calibration.fit(model.calibration_scores_, source.upper, tail=source.tail, name=source.name)
    return FittedFeature(source, model, calibration, int(observed.sum()))


def score_video(store: FeatureStore, fitted: Mapping[str, FittedFeature], video_id: str) -> dict[str, np.ndarray]:
    """Uncalibrated frame scores of one video per feature type (NaN on frames without objects)."""
    out: dict[str, np.ndarray] = {}
    for name, fit in fitted.items():
        source = fit.source
        shard = read_shard(store.shards(source.stage, source.config, [video_id])[0], features=[source.key])
        values = shard.features[source.key]
        observed, scores = score_observed(fit.model, values)
        if shard.kind == "object":
            # Frames left without an observed row become NaN, i.e. AI-VAD's "pose = 0" after calibration.
            frame_index = shard.objects.frame_index[observed]
            out[name] = object_to_frame_scores(frame_index, scores, shard.n_frames)
        else:
            out[name] = np.asarray(scores, dtype=np.float64)
    lengths = {name: len(s) for name, s in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"video {video_id}: feature types cover different frame counts {lengths}")
    return out


def evaluate(
    raw: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], sigma: float
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Smooth per video, then micro AUC and both macro variants (smoothed; micro also unsmoothed)."""
    for video, scores in raw.items():
        if len(labels[video]) != len(scores):
            raise ValueError(f"video {video}: {len(labels[video])} labels but {len(scores)} scored frames")
    smoothed = smooth_videos(raw, sigma)
    classes = {int(c) for c in np.unique(np.concatenate([np.asarray(labels[v]) for v in raw]))} if raw else set()
    metrics: dict[str, Any] = {
        "sigma": sigma,
        "n_videos": len(raw),
        "n_frames": int(sum(len(s) for s in raw.values())),
    }
    if len(classes) < 2:  # every AUC needs both classes; the scores are still worth writing
        missing = "anomalous" if 1 not in classes else "normal"
        metrics.update(
            micro_auc=None,
            micro_auc_unsmoothed=None,
            macro_auc=None,
            per_video_auc={},
            macro_auc_skip_single_class=None,
            auc_undefined=f"undefined: no {missing} frames",
        )
        return smoothed, metrics
    metrics |= {
        "micro_auc": micro_auc(smoothed, labels),
        "micro_auc_unsmoothed": micro_auc(raw, labels),
        "macro_auc": macro_auc(smoothed, labels, "pad"),
        "per_video_auc": per_video_auc(smoothed, labels, "pad"),
    }
    skip = per_video_auc(smoothed, labels, "skip")
    metrics["macro_auc_skip_single_class"] = float(np.mean(list(skip.values()))) if skip else None
    return smoothed, metrics


def score_store(
    store: FeatureStore,
    sources: Sequence[FeatureSource],
    *,
    train_ids: Sequence[str],
    test_labels: Mapping[str, np.ndarray],
    out_dir: str | Path,
    sigma: float,
    make_model: Callable[[str], Estimator] | None = None,
    empty_fill: float = 0.0,
    plots: bool = False,
) -> ScoreResult:
    """Train, score, fuse, smooth and evaluate; write ``scores.h5``, ``scores.csv``, ``metrics.json``
    (and ``models/<type>``, ``plots/<video>.png``) under ``out_dir``.

    test_labels: per test video id, its per-frame 0/1 labels (e.g. from a dataset adapter).
    make_model: feature type name → unfitted estimator; defaults to MULDE with the paper's settings.
    """
    if not sources:
        raise ValueError("no feature sources to score")
    out_dir = Path(out_dir)
    make_model = make_model or default_estimator()
    fitted = {s.name: fit_feature(store, s, train_ids, make_model) for s in sources}
    raw = {}
    for video in sorted(test_labels):
        per_type = score_video(store, fitted, video)
        raw[video] = fuse_calibrated(per_type, {n: f.calibration for n, f in fitted.items()}, empty_fill)
    smoothed, metrics = evaluate(raw, test_labels, sigma)
    metrics["feature_types"] = {
        name: {
            "n_train": f.n_train,
            "calibration": [f.calibration.low, f.calibration.high],
            "upper": f.source.upper,
            "tail": f.calibration.tail,
        }
        for name, f in fitted.items()
    }
    files = write_scores(out_dir, raw, smoothed, test_labels, metrics)
    for name, fit in fitted.items():
        (out_dir / "models").mkdir(parents=True, exist_ok=True)
        fit.model.save(out_dir / "models" / f"{name}.mulde")
    if plots:
        for video, scores in smoothed.items():
            plot_video_scores(
                scores, test_labels[video], out_dir / "plots" / f"{video}.png", title=video, raw=raw[video]
            )
    return ScoreResult(raw, smoothed, metrics, files)


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_scores(
    out_dir: Path,
    raw: Mapping[str, np.ndarray],
    smoothed: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    metrics: Mapping[str, Any],
) -> dict[str, Path]:
    """Per-frame scores as HDF5 (one group per video) and CSV, plus the metrics JSON; each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def write_h5(path: Path) -> None:
        with h5py.File(path, "w") as file:
            file.attrs["metrics"] = json.dumps(metrics)
            for video in sorted(raw):
                group = file.create_group(video)
                group["raw"], group["score"] = raw[video], smoothed[video]
                group["label"] = np.asarray(labels[video], np.uint8)

    def write_csv(path: Path) -> None:
        with open(path, "w") as handle:
            handle.write("video_id,frame,label,score_raw,score\n")
            for video in sorted(raw):  # video ids are filesystem-safe: no ',' or '%'
                rows = np.column_stack([np.arange(len(raw[video])), labels[video], raw[video], smoothed[video]])
                np.savetxt(handle, rows, fmt=[f"{video},%d", "%d", "%.9g", "%.9g"], delimiter=",")

    def write_json(path: Path) -> None:
        path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")

    return {
        "scores_h5": _replace_atomically(out_dir / "scores.h5", write_h5),
        "scores_csv": _replace_atomically(out_dir / "scores.csv", write_csv),
        "metrics": _replace_atomically(out_dir / "metrics.json", write_json),
    }
