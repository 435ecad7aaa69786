"""Fit a bundle on normal footage: extract, fit one MULDE + calibration per feature type, pick the threshold.

No labels are used. The threshold is a high percentile (default 99) of *held-out* frame scores: the
training videos are split into ``folds`` groups (one video per group when there are at most ``folds``
videos, i.e. leave-one-video-out); for each group, models fitted on the other groups score its frames
with the same calibration, fusion and offline smoothing that ``predict`` uses. Held-out scores are what
new normal footage looks like to the final model, whereas in-sample scores would be optimistically low.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mulde_vad import __version__
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import build_pipeline, extract_video
from mulde_vad.inference.bundle import Bundle, FeatureModel, Threshold, weight_hashes
from mulde_vad.inference.progress import ExtractionProgress, TrainingProgress
from mulde_vad.inference.scorer import Scorer, score_frame_rows, score_objects
from mulde_vad.models.calibration import CALIBRATION_HOLDOUT, CALIBRATION_TAIL, Calibration, Tail, default_upper
from mulde_vad.models.mulde import MULDE
from mulde_vad.models.smoothing import smooth_scores
from mulde_vad.storage.provenance import fingerprint, library_versions
from mulde_vad.storage.schema import FrameChunk, ObjectChunk, ObjectTable

#: MULDE settings for `fit` when none are given: the estimator's own defaults (its CPU recipe), with the
#: pipeline's calibration hold-out and a training budget that follows the data (``training_params``). Each
#: of the ``folds`` threshold fits and the final fit costs one such training per feature type.
FIT_MULDE_DEFAULTS: dict[str, Any] = {"fusion_holdout": CALIBRATION_HOLDOUT}
#: Passes over a feature type's training rows when the settings give no budget of their own, capped by the
#: estimator's step budget (``MULDE().max_steps``): its 2000 steps of 512 rows are some 500 passes over the
#: demo's ~2,000 rows per type but under 1 over a million rows. On the demo's 6 normal videos
#: (bench/fit_budget.py: weight-free, 3 folds, 2 shared cores at load 4-7) 50 passes: 115 s, threshold 2.74,
#: fused test AUC 92.1 / 90.4, 52.8% of anomalous frames above the threshold; 100 passes: 294 s, 3.66,
#: 90.2 / 89.3, 48.4%; the fixed 2000 steps it replaces: 1331 s, 7.20, 88.4 / 86.5, 44.4%. No normal test
#: frame was above the threshold in any of them.
FIT_EPOCHS = 50


@dataclass(frozen=True)
class FitOptions:
    mulde_params: Mapping[str, Any] = field(default_factory=lambda: dict(FIT_MULDE_DEFAULTS))
    threshold_percentile: float = 99.0
    folds: int = 3
    smoothing_sigma: float = 3.0
    empty_fill: float = 0.0
    calibration_tail: Tail = CALIBRATION_TAIL

    def __post_init__(self) -> None:
        if not 0 < self.threshold_percentile <= 100:
            raise ValueError(f"threshold percentile must be in (0, 100], got {self.threshold_percentile}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")


class MemorySink:
    """A FeatureSink that keeps one video's features in memory (fitting reads them several times)."""

    def __init__(self) -> None:
        self.objects: list[ObjectChunk] = []
        self.frames: list[FrameChunk] = []
        self.n_frames = 0

    def append_objects(self, chunk: ObjectChunk) -> None:
        self.objects.append(chunk)

    def append_frames(self, chunk: FrameChunk) -> None:
        self.frames.append(chunk)

    def finish(self, n_frames: int) -> None:
        self.n_frames = n_frames

    def rows(self, name: str) -> np.ndarray:
        """All finite feature rows of type ``name`` (NaN pose rows of unmatched boxes are no observation)."""
        chunks = self.objects or self.frames
        values = np.concatenate([c.features[name] for c in chunks]).astype(np.float64)
        return values[np.isfinite(values).all(axis=1)]

    def score(self, scorer: Scorer) -> np.ndarray:
        """Unsmoothed fused frame scores of the whole video."""
        if self.frames:
            names = self.frames[0].features
            chunk = FrameChunk(0, {n: np.concatenate([c.features[n] for c in self.frames]) for n in names})
            return score_frame_rows(scorer, chunk).fused
        names = self.objects[0].features
        chunk = ObjectChunk(
            ObjectTable.concatenate([c.objects for c in self.objects]),
            {n: np.concatenate([c.features[n] for c in self.objects]) for n in names},
        )
        return score_objects(scorer, chunk, 0, self.n_frames).fused


def training_params(params: Mapping[str, Any], n_rows: int) -> dict[str, Any]:
    """MULDE settings for ``n_rows`` training rows: ``params`` as given when they set a budget (``max_steps``
    or ``epochs``); otherwise ``FIT_EPOCHS`` passes over the rows the network trains on, capped by the
    estimator's default step budget, so a small training set no longer pays for 2000 steps of 512 rows.
    """
    if "max_steps" in params or "epochs" in params:
        return dict(params)
    defaults = MULDE()
    batch = params.get("batch_size", defaults.batch_size)
    net_rows = max(1, round(n_rows * (1 - params.get("fusion_holdout", defaults.fusion_holdout))))
    return {**params, "max_steps": min(defaults.max_steps, FIT_EPOCHS * math.ceil(net_rows / batch))}


def _fit_types(
    videos: Sequence[MemorySink], names: Sequence[str], options: FitOptions, training: TrainingProgress
) -> dict[str, FeatureModel]:
    fitted = {}
    for name in names:
        per_video = [v.rows(name) for v in videos]
        X = np.concatenate(per_video)
        groups = np.repeat(np.arange(len(per_video)), [len(rows) for rows in per_video])  # as the pipeline's fit
        model = MULDE(**training_params(options.mulde_params, len(X))).fit(
            X, groups=groups, on_epoch=training.on_epoch(name)
        )
        training.model_done()
        upper = default_upper(name)
        calibration = Calibration.fit(model.calibration_scores_, upper, tail=options.calibration_tail, name=name)
        fitted[name] = FeatureModel(model, calibration, upper, len(X))
    return fitted


def _n_folds(options: FitOptions, n_videos: int) -> int:
    """Video folds of the threshold; below 2 the threshold is in-sample, from one fit on every video."""
    return min(options.folds, n_videos)


def _scorer(fitted: Mapping[str, FeatureModel], empty_fill: float) -> Scorer:
    return Scorer({n: f.model for n, f in fitted.items()}, {n: f.calibration for n, f in fitted.items()}, empty_fill)


def held_out_threshold(
    videos: Sequence[MemorySink],
    names: Sequence[str],
    options: FitOptions,
    log: Callable[[str], None],
    training: TrainingProgress,
) -> Threshold:
    """The ``threshold_percentile`` of smoothed fused frame scores of videos their models did not see."""
    folds = _n_folds(options, len(videos))
    scores = []
    if folds < 2:
        method = "in_sample"  # a single training video: nothing to hold out
        scorer = _scorer(_fit_types(videos, names, options, training), options.empty_fill)
        scores = [smooth_scores(videos[0].score(scorer), options.smoothing_sigma)]
    else:
        method = "held_out_videos"
        for fold in range(folds):
            log(f"threshold fold {fold + 1}/{folds}")
            held = [v for i, v in enumerate(videos) if i % folds == fold]
            rest = [v for i, v in enumerate(videos) if i % folds != fold]
            scorer = _scorer(_fit_types(rest, names, options, training), options.empty_fill)
            scores += [smooth_scores(v.score(scorer), options.smoothing_sigma) for v in held]
    pooled = np.concatenate(scores)
    summary = {f"p{q:g}": float(np.percentile(pooled, q)) for q in (50, 90, 99)} | {"max": float(pooled.max())}
    value = float(np.percentile(pooled, options.threshold_percentile))
    return Threshold(value, method, options.threshold_percentile, max(folds, 1), len(pooled), summary)


def fit_bundle(
    sources: Sequence[str | Path],
    preset: str,
    config: ExtractionConfig,
    options: FitOptions | None = None,
    *,
    log: Callable[[str], None] = tqdm.write,
    progress: bool = False,
) -> Bundle:
    """Extract every normal video in ``sources``, fit the per-type models and the threshold; return the bundle.

    ``progress`` shows a live line per stage on stderr; ``log`` lines (printed above it by default) say what
    each video held and what threshold came out.
    """
    options = options or FitOptions()
    config = config.resolved()  # the bundle records the precision its features were computed at
    if not sources:
        raise ValueError("fit needs at least one normal training video")
    if config.stride != 1:
        raise ValueError(f"preset {preset!r} has stride={config.stride}; predict scores every frame, use stride 1")
    pipeline = build_pipeline(config)
    videos, started = [], time.perf_counter()
    with ExtractionProgress(len(sources), enabled=progress) as extraction:
        for i, source in enumerate(sources, start=1):
            sink = MemorySink()
            summary = extract_video(source, config, sink, pipeline=pipeline)
            counts = f"{summary.n_frames} frames, {summary.n_objects} objects"
            log(f"extracted {i}/{len(sources)} {Path(source).name}: {counts}")
            extraction.video_done(summary.n_frames)
            videos.append(sink)
    names = list((videos[0].objects or videos[0].frames)[0].features)
    # Each threshold fold fits one model per feature type, and so does the final fit.
    n_models = (_n_folds(options, len(videos)) + 1) * len(names)
    with TrainingProgress(n_models, enabled=progress) as training:
        threshold = held_out_threshold(videos, names, options, log, training)
        log(f"threshold {threshold.value:.4g} ({threshold.percentile:g}th percentile, {threshold.method})")
        features = _fit_types(videos, names, options, training)
    provenance = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mulde_vad": __version__,
        "versions": library_versions(),
        "weights": weight_hashes(config),
        "training": [
            {"video": str(s), "n_frames": v.n_frames, **fingerprint(s)} for s, v in zip(sources, videos, strict=True)
        ],
        "fit_seconds": round(time.perf_counter() - started, 1),
    }
    return Bundle(
        preset=preset,
        extraction=config.to_dict(),
        features=features,
        threshold=threshold,
        smoothing_sigma=options.smoothing_sigma,
        empty_fill=options.empty_fill,
        mulde_params=dict(options.mulde_params),
        provenance=provenance,
    )
