"""Import AI-VAD's released per-object features into the store, aligned with a dataset adapter's video ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from mulde_vad.models.score_store import FeatureSource, aivad_sources
from mulde_vad.storage import FeatureStore
from mulde_vad.storage.aivad import AIVAD_FEATURES, import_aivad
from mulde_vad.tasks.discover import DatasetIndex


def import_features(
    index: DatasetIndex,
    features_dir: Path,
    clip_lengths_dir: Path,
    store_root: Path,
    features: Sequence[str] = AIVAD_FEATURES,
    allow_pickle: bool = False,
) -> list[FeatureSource]:
    """Write (or keep) one shard per feature type and video; return the feature sources to train on."""
    video_ids = {"train": [r.video_id for r in index.train], "test": [r.video_id for r in index.test]}
    import_aivad(
        features_dir,
        clip_lengths_dir,
        FeatureStore(store_root),
        dataset=index.name,
        features=features,
        video_ids=video_ids,
        allow_pickle=allow_pickle,
    )
    return aivad_sources(index.name, features)


import_task = task(import_features, name="import-aivad", retries=1, cache_policy=NO_CACHE)
