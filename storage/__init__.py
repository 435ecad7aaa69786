"""Storage layer: HDF5 feature shards, the feature store, provenance and the AI-VAD importer (no Prefect)."""

from mulde_vad.storage.provenance import config_hash, fingerprint, make_provenance
from mulde_vad.storage.schema import SCHEMA_VERSION, BoxSource, FrameChunk, ObjectChunk, ObjectTable
from mulde_vad.storage.shards import (
    Shard,
    ShardError,
    ShardWriter,
    feature_rows,
    feature_shape,
    iter_feature_batches,
    read_shard,
    stack_features,
    validate_shard,
)
from mulde_vad.storage.store import FeatureStore

__all__ = [
    "SCHEMA_VERSION",
    "BoxSource",
    "FeatureStore",
    "FrameChunk",
    "ObjectChunk",
    "ObjectTable",
    "Shard",
    "ShardError",
    "ShardWriter",
    "config_hash",
    "feature_rows",
    "feature_shape",
    "fingerprint",
    "iter_feature_batches",
    "make_provenance",
    "read_shard",
    "stack_features",
    "validate_shard",
]
