"""Stage 4: score one test video: per feature type, object GMM NLL → per-frame max (NaN where no object).

The scoring itself is ``models.score_store.score_video``; this task stores its raw frame scores as a
frame shard keyed by the models' keys and recording the video's feature digests, so a rerun skips
videos already scored and rescores a video whose content changed. Calibration, fusion and
smoothing happen in ``evaluate`` (cheap, over all videos).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from mulde_vad.models.score_store import score_video
from mulde_vad.storage import FeatureStore, FrameChunk, ShardWriter, config_hash, make_provenance
from mulde_vad.storage.shards import shard_inputs
from mulde_vad.tasks.common import retry_transient, run_visibly, stage_key
from mulde_vad.tasks.train import TrainedModel

STAGE = "scores"


@dataclass(frozen=True)
class ScoreResult:
    video_id: str
    path: Path
    computed: bool
    seconds: float


def score_key(models: Sequence[TrainedModel]) -> dict:
    """Keyed by the models' keys, which already include the keys of the features they were trained on."""
    return stage_key(STAGE, {}, {m.source.name: m.key for m in models})


def score_one(video_id: str, models: Sequence[TrainedModel], store_root: Path) -> ScoreResult:
    """Write the video's raw per-frame scores, one column per feature type (skipped when complete)."""
    store = FeatureStore(store_root)
    key = score_key(models)
    path = store.shard_path(STAGE, key, video_id)
    inputs = config_hash(
        {m.source.name: shard_inputs(store.shards(m.source.stage, m.source.config, [video_id])[0]) for m in models}
    )
    if store.reusable(path, inputs=inputs):
        return ScoreResult(video_id, path, computed=False, seconds=0.0)
    start = time.perf_counter()
    per_type = score_video(store, {m.source.name: m.load() for m in models}, video_id)
    n_frames = len(next(iter(per_type.values())))
    provenance = make_provenance(video=None, config=key)
    with ShardWriter(path, kind="frame", provenance=provenance, feature_dtype="float64", inputs=inputs) as writer:
        writer.append_frames(FrameChunk(0, {name: values[:, None] for name, values in per_type.items()}))
        writer.finish(n_frames)
    return ScoreResult(video_id, path, computed=True, seconds=time.perf_counter() - start)


def _score_visibly(video_id: str, models: Sequence[TrainedModel], store_root: Path) -> ScoreResult | State:
    return run_visibly(f"score {video_id}", lambda: score_one(video_id, models, store_root))


score_task = task(
    _score_visibly,
    name="score-video",
    task_run_name="score-{video_id}",
    retries=1,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
