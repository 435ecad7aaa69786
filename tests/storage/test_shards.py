"""Shard round trips, validation errors and the streaming reader."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mulde_vad.storage import (
    SCHEMA_VERSION,
    BoxSource,
    FeatureStore,
    FrameChunk,
    ObjectChunk,
    ObjectTable,
    ShardError,
    ShardWriter,
    feature_shape,
    iter_feature_batches,
    make_provenance,
    read_shard,
    stack_features,
)

CONFIG = {"extractor": "test", "resize": [224, 224]}


def table(frames: list[int]) -> ObjectTable:
    n = len(frames)
    boxes = np.arange(4 * n, dtype=np.float32).reshape(n, 4)
    return ObjectTable(
        frame_index=np.asarray(frames, np.int64),
        boxes=boxes,
        confidence=np.linspace(0.5, 1.0, n, dtype=np.float32),
        class_id=np.arange(n, dtype=np.int32),
        source=np.full(n, BoxSource.FOREGROUND, np.uint8),
    )


def write_object_shard(path: Path, frames_per_chunk: list[list[int]], n_frames: int, dim: int = 3, **kw) -> np.ndarray:
    rows = []
    with ShardWriter(path, kind="object", provenance=make_provenance(video=None, config=CONFIG), **kw) as writer:
        for frames in frames_per_chunk:
            values = np.random.default_rng(len(rows)).standard_normal((len(frames), dim)).astype(np.float32)
            writer.append_objects(ObjectChunk(table(frames), {"velocity": values}))
            rows.append(values)
        writer.finish(n_frames)
    return np.concatenate(rows)


def write_frame_shard(path: Path, values: np.ndarray, chunk: int = 4, **kw) -> None:
    with ShardWriter(path, kind="frame", provenance=make_provenance(video=None, config=CONFIG), **kw) as writer:
        for start in range(0, len(values), chunk):
            writer.append_frames(FrameChunk(start, {"hiera": values[start : start + chunk]}))
        writer.finish(len(values))


def test_object_shard_round_trip_keeps_table_features_and_provenance(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    values = write_object_shard(path, [[0, 0, 2], [], [2, 5]], n_frames=7)
    shard = read_shard(path)
    assert shard.kind == "object" and shard.n_frames == 7
    np.testing.assert_array_equal(shard.objects.frame_index, [0, 0, 2, 2, 5])
    np.testing.assert_array_equal(shard.objects.boxes[3], [0, 1, 2, 3])  # first row of the second table
    assert shard.objects.source.dtype == np.uint8 and (shard.objects.source == BoxSource.FOREGROUND).all()
    np.testing.assert_array_equal(shard.features["velocity"], values)
    assert shard.provenance["config"] == CONFIG and shard.provenance["schema_version"] == SCHEMA_VERSION
    assert "numpy" in shard.provenance["libraries"]


def test_frame_shard_fp16_compressed_round_trip(tmp_path: Path) -> None:
    values = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    path = tmp_path / "f.h5"
    write_frame_shard(path, values, feature_dtype="float16", compression="gzip")
    shard = read_shard(path)
    assert shard.objects is None and shard.n_frames == 10
    assert shard.features["hiera"].dtype == np.float16
    np.testing.assert_array_equal(shard.features["hiera"], values.astype(np.float16))
    with h5py.File(path) as file:
        assert file["features/hiera"].compression == "gzip"


def test_exception_inside_block_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    with pytest.raises(RuntimeError), ShardWriter(path, kind="frame", provenance={"config": CONFIG}) as writer:
        writer.append_frames(FrameChunk(0, {"x": np.zeros((2, 3))}))
        raise RuntimeError("extractor crashed")
    assert list(tmp_path.iterdir()) == []


def test_block_without_finish_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    with (
        pytest.raises(ShardError, match="without finish"),
        ShardWriter(path, kind="frame", provenance={"config": CONFIG}),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("chunks", "n_frames", "message"),
    [([[3, 1]], 5, "non-decreasing"), ([[3], [2]], 5, "non-decreasing"), ([[0, 6]], 5, "frame 6 but n_frames=5")],
)
def test_writer_rejects_unordered_or_out_of_range_objects(tmp_path: Path, chunks, n_frames, message) -> None:
    with pytest.raises((ValueError, ShardError), match=message):
        write_object_shard(tmp_path / "v.h5", chunks, n_frames)
    assert not (tmp_path / "v.h5").exists()


def test_writer_rejects_gaps_and_misaligned_rows(tmp_path: Path) -> None:
    provenance = {"config": CONFIG}
    with (
        pytest.raises(ValueError, match="starts at frame 3, expected 2"),
        ShardWriter(tmp_path / "a.h5", kind="frame", provenance=provenance) as writer,
    ):
        writer.append_frames(FrameChunk(0, {"x": np.zeros((2, 3))}))
        writer.append_frames(FrameChunk(3, {"x": np.zeros((2, 3))}))
    with (
        pytest.raises(ValueError, match=r"must have shape \(2, d\)"),
        ShardWriter(tmp_path / "b.h5", kind="object", provenance=provenance) as writer,
    ):
        writer.append_objects(ObjectChunk(table([0, 1]), {"x": np.zeros((3, 3))}))
    with (
        pytest.raises(ShardError, match="2 frame rows written but n_frames=3"),
        ShardWriter(tmp_path / "c.h5", kind="frame", provenance=provenance) as writer,
    ):
        writer.append_frames(FrameChunk(0, {"x": np.zeros((2, 3))}))
        writer.finish(3)
    assert list(tmp_path.iterdir()) == []


def test_read_reports_truncated_incomplete_and_wrong_schema_by_name(tmp_path: Path) -> None:
    good = tmp_path / "good.h5"
    write_frame_shard(good, np.ones((8, 2), np.float32))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ShardError, match=r"truncated\.h5: cannot be opened"):
        read_shard(truncated)

    for name, attr, value, message in [
        ("old.h5", "schema_version", 0, "schema version 0"),
        ("partial.h5", "complete", False, "not marked complete"),
    ]:
        path = tmp_path / name
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "r+") as file:
            file.attrs[attr] = value
        with pytest.raises(ShardError, match=rf"{name}: {message}"):
            read_shard(path)
    with pytest.raises(ShardError, match="written for config"):
        read_shard(good, expected_hash="0" * 16)
    with pytest.raises(ShardError, match="no feature"):
        read_shard(good, features=["missing"])


def test_store_paths_hash_config_and_is_complete(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = store.shard_path("frames", CONFIG, "01_0014")
    assert path.parent == store.stage_dir("frames", {"resize": (224, 224), "extractor": "test"})  # order, tuple
    assert path.parent != store.stage_dir("frames", {**CONFIG, "resize": [112, 112]})
    assert json.loads((path.parent / "config.json").read_text()) == CONFIG
    assert not store.is_complete(path)
    write_frame_shard(path, np.ones((3, 2), np.float32))
    assert store.is_complete(path)
    assert store.shards("frames", CONFIG) == [path]
    # A shard copied into another config's directory is not complete there.
    other = store.shard_path("frames", {"other": 1}, "01_0014")
    other.write_bytes(path.read_bytes())
    assert not store.is_complete(other)
    with pytest.raises(ShardError, match="01_0014"):
        store.shards("frames", {"other": 1}, ["01_0014"])
    with pytest.raises(ValueError, match="not filesystem-safe"):
        store.shard_path("frames", CONFIG, "../escape")


def test_streaming_batches_cross_shards_in_order(tmp_path: Path) -> None:
    parts = [np.arange(i, i + 3 * n, dtype=np.float32).reshape(n, 3) for i, n in [(0, 5), (100, 0), (200, 7), (300, 2)]]
    paths = []
    for i, values in enumerate(parts):
        paths.append(tmp_path / f"{i}.h5")
        write_frame_shard(paths[-1], values)
    batches = list(iter_feature_batches(paths, "hiera", batch_size=4, dtype=np.float64))
    assert [len(b) for b in batches] == [4, 4, 4, 2]
    assert all(b.dtype == np.float64 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(parts))
    assert feature_shape(paths, "hiera") == (14, 3)
    np.testing.assert_array_equal(stack_features(paths, "hiera"), np.concatenate(parts))


def test_streaming_reader_rejects_an_incomplete_shard(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    write_frame_shard(path, np.ones((3, 2), np.float32))
    with h5py.File(path, "r+") as file:
        file.attrs["complete"] = False
    with pytest.raises(ShardError, match=r"a\.h5: not marked complete"):
        list(iter_feature_batches([path], "hiera", 2))
