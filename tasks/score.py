"""Stage 4: score one test video: object GMM NLL per feature type → per-frame max (NaN where no object).

The raw frame scores go to a frame shard keyed by the extraction and model keys, so a rerun skips
videos already scored; calibration, fusion and smoothing happen in ``evaluate`` (cheap, all videos).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from models import MULDE
from models.frame_scores import object_to_frame_scores
from storage import FeatureStore, FrameChunk, ShardWriter, make_provenance, read_shard
from tasks.common import stage_key
from tasks.train import TrainedModel

STAGE = "scores"


@dataclass(frozen=True)
class ScoreResult:
    video_id: str
    path: Path
    computed: bool
    seconds: float


def score_key(models: Sequence[TrainedModel]) -> dict:
    """Keyed by the models' keys, which already include the keys of the features they were trained on."""
    return stage_key(STAGE, {}, {m.feature: m.key for m in models})


def score_one(
    video_id: str, shards: Mapping[str, Path], models: Sequence[TrainedModel], store_root: Path
) -> ScoreResult:
    """Write the video's per-frame raw scores, one column per feature type (skipped when complete).

    ``shards`` maps each feature type to the video's object shard holding it (one shard for extracted
    features; one per type for imported AI-VAD features).
    """
    store = FeatureStore(store_root)
    key = score_key(models)
    path = store.shard_path(STAGE, key, video_id)
    if store.is_complete(path):
        return ScoreResult(video_id, path, computed=False, seconds=0.0)
    start = time.perf_counter()
    columns, n_frames = {}, set()
    for model in models:
        shard = read_shard(shards[model.feature], features=[model.feature])
        scores = MULDE.load(model.model_path).anomaly_score(shard.features[model.feature])
        columns[model.feature] = object_to_frame_scores(shard.objects.frame_index, scores, shard.n_frames)[:, None]
        n_frames.add(shard.n_frames)
    if len(n_frames) != 1:
        raise ValueError(f"video {video_id}: its feature shards disagree on the frame count: {sorted(n_frames)}")
    provenance = make_provenance(video=None, config=key)
    with ShardWriter(path, kind="frame", provenance=provenance, feature_dtype="float64") as writer:
        writer.append_frames(FrameChunk(0, columns))
        writer.finish(n_frames.pop())
    return ScoreResult(video_id, path, computed=True, seconds=time.perf_counter() - start)


score_task = task(score_one, name="score-video", task_run_name="score-{video_id}", retries=1, cache_policy=NO_CACHE)
