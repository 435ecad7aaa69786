"""Stage 2: extract one video into the feature store, unless a complete shard is already there.

The store is the cache: the shard path derives from the stage key (extraction config + code version),
and a shard that exists and validates is never recomputed. A failure inside extraction leaves nothing
at the shard path (ShardWriter removes its temporary file), so a rerun redoes exactly that video.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mulde_vad.datasets import VideoRecord
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import extract_video
from mulde_vad.features.weights_table import weight_files
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance
from mulde_vad.tasks.common import stage_key

STAGE = "extract"


@dataclass(frozen=True)
class ExtractResult:
    video_id: str
    path: Path
    computed: bool  # False: a complete shard was already in the store
    seconds: float


def extraction_config(preset: str, overrides: Mapping[str, Any] | None = None) -> ExtractionConfig:
    """The ``features.config`` preset with field overrides (e.g. local weight paths)."""
    return ExtractionConfig.preset(preset, **dict(overrides or {}))


def extract_key(config: ExtractionConfig) -> dict[str, Any]:
    return stage_key(STAGE, config.to_dict())


def extract_one(record: VideoRecord, config: ExtractionConfig, store_root: Path) -> ExtractResult:
    """Write ``record``'s object shard (skipped when complete); return where it is and whether it was computed."""
    store = FeatureStore(store_root)
    key = extract_key(config)
    path = store.shard_path(STAGE, key, record.video_id)
    if store.is_complete(path):
        return ExtractResult(record.video_id, path, computed=False, seconds=0.0)
    start = time.perf_counter()
    provenance = make_provenance(video=record.source, config=key, weights=weight_files(config))
    with ShardWriter(path, kind=config.kind, provenance=provenance) as writer:
        extract_video(record.source, config, writer)
    return ExtractResult(record.video_id, path, computed=True, seconds=time.perf_counter() - start)


# No Prefect result cache: the store decides what is done, so a deleted shard is recomputed.
extract_task = task(
    extract_one,
    name="extract-video",
    task_run_name="extract-{record.video_id}",
    retries=1,
    retry_delay_seconds=1,
    cache_policy=NO_CACHE,
)
