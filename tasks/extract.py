"""Stage 2: extract one video into the feature store, unless a complete shard is already there.

The store is the cache: the shard path derives from the stage key (extraction config with the content
hash of every weights file it loads + code version), and a shard records the content digest of its
video. A shard is reused only when it validates, its checksums hold and its video is unchanged;
otherwise it is reported and recomputed. A failure inside extraction leaves nothing at the shard path
(ShardWriter removes its temporary file), so a rerun redoes exactly that video.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from mulde_vad.datasets import VideoRecord
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import extract_video
from mulde_vad.features.weights import require
from mulde_vad.features.weights_table import weight_files, weight_needs
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance
from mulde_vad.storage.provenance import content_digest, file_digest
from mulde_vad.tasks.common import retry_transient, run_visibly, stage_key

STAGE = "extract"


@dataclass(frozen=True)
class ExtractResult:
    video_id: str
    path: Path
    computed: bool  # False: a complete shard was already in the store
    seconds: float
    inputs: str = ""  # content digest of the video
    n_frames: int = 0  # frames extracted now (0 when the shard was reused): the progress display's frames/s


def extraction_config(preset: str, overrides: Mapping[str, Any] | None = None) -> ExtractionConfig:
    """The ``features.config`` preset with field overrides (e.g. local weight paths)."""
    return ExtractionConfig.preset(preset, **dict(overrides or {}))


def check_weights(config: ExtractionConfig) -> None:
    """Raise MissingWeightsError for the first model whose weights are neither on disk nor an allowed download."""
    for need in weight_needs(config):
        require(need.resolution, need.model, need.field, allow_download=config.allow_download)


def extract_key(config: ExtractionConfig) -> dict[str, Any]:
    """The extraction config as this machine computes it (``ExtractionConfig.resolved``: bf16 asked for on a
    CPU without it is keyed fp32, what its features are), each local weights file replaced by its content
    hash (not its path). A hub name its library downloads stays keyed by that name.
    """
    values = config.resolved().to_dict()
    for field_name, path in weight_files(config).items():
        values[field_name] = f"sha256:{file_digest(path)}"
    return stage_key(STAGE, values)


def extract_one(record: VideoRecord, config: ExtractionConfig, store_root: Path) -> ExtractResult:
    """Write ``record``'s object shard (skipped when complete); return where it is and whether it was computed."""
    store = FeatureStore(store_root)
    key = extract_key(config)
    path = store.shard_path(STAGE, key, record.video_id)
    inputs = content_digest(record.source)
    if store.reusable(path, inputs=inputs):
        return ExtractResult(record.video_id, path, computed=False, seconds=0.0, inputs=inputs)
    start = time.perf_counter()
    provenance = make_provenance(video=record.source, config=key, weights=weight_files(config))
    with ShardWriter(path, kind=config.kind, provenance=provenance, inputs=inputs) as writer:
        summary = extract_video(record.source, config, writer)
    return ExtractResult(record.video_id, path, True, time.perf_counter() - start, inputs, summary.n_frames)


def _extract_visibly(record: VideoRecord, config: ExtractionConfig, store_root: Path) -> ExtractResult | State:
    return run_visibly(f"extract {record.video_id}", lambda: extract_one(record, config, store_root))


# No Prefect result cache: the store decides what is done, so a deleted shard is recomputed; a reused
# shard finishes the task in a "Skipped" state.
extract_task = task(
    _extract_visibly,
    name="extract-video",
    task_run_name="extract-{record.video_id}",
    retries=1,
    retry_delay_seconds=1,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
