"""Import AI-VAD's released per-object features into the store, aligned with a dataset adapter's video ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from storage import FeatureStore
from storage.aivad import AIVAD_FEATURES, AIVAD_STAGE, import_aivad
from tasks.discover import DatasetIndex


def import_features(
    index: DatasetIndex,
    features_dir: Path,
    clip_lengths_dir: Path,
    store_root: Path,
    features: Sequence[str] = AIVAD_FEATURES,
) -> dict[str, dict[str, Path]]:
    """Write (or keep) one shard per feature type and video; return feature → video id → shard."""
    store = FeatureStore(store_root)
    video_ids = {"train": [r.video_id for r in index.train], "test": [r.video_id for r in index.test]}
    done = import_aivad(
        features_dir, clip_lengths_dir, store, dataset=index.name, features=features, video_ids=video_ids
    )
    ids = [*video_ids["train"], *video_ids["test"]]
    return {f: {v: store.shard_path(AIVAD_STAGE, done.configs[f], v) for v in ids} for f in features}


import_task = task(import_features, name="import-aivad", retries=1, cache_policy=NO_CACHE)
