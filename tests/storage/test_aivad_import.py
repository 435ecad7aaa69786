"""AI-VAD importer: exact round trip of synthetic files in the released format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mulde_vad.storage import FeatureStore, read_shard
from mulde_vad.storage.aivad import AIVAD_STAGE, aivad_config, export_frames, import_aivad
from mulde_vad.storage.schema import BoxSource

CLIP_ENDS = {"train": [3, 7], "test": [4, 6]}  # cumulative: train videos of 3 and 4 frames, test of 4 and 2
DIMS = {"velocity": (1, np.float32), "pose": (34, np.float64), "deep_features": (8, np.float16)}


def object_array(frames: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(frames), dtype=object)
    out[:] = frames
    return out


def make_release(tmp_path: Path) -> tuple[Path, Path, dict]:
    rng = np.random.default_rng(0)
    features_dir, lengths_dir = tmp_path / "extracted_features" / "ped2", tmp_path / "data" / "ped2"
    lengths_dir.mkdir(parents=True)
    original: dict[tuple[str, str], list[np.ndarray]] = {}
    for split, ends in CLIP_ENDS.items():
        np.save(lengths_dir / f"{split}_clip_lengths.npy", np.array(ends))
        (features_dir / split).mkdir(parents=True)
        for name, (d, dtype) in DIMS.items():
            counts = rng.integers(0, 4, size=ends[-1])
            counts[1] = 0  # always at least one frame without objects
            if name == "pose" and split == "test":
                counts[4:] = 0  # the second test video has no pose at all
            frames = [rng.standard_normal((int(c), d)).astype(dtype) for c in counts]
            if name == "pose":
                frames[1] = np.array([])  # AI-VAD stores "no pose" as an empty 1-D array
            original[name, split] = frames
            np.save(features_dir / split / f"{name}.npy", object_array(frames), allow_pickle=True)
    return features_dir, lengths_dir, original


def test_import_round_trips_every_frame_exactly(tmp_path: Path) -> None:
    features_dir, lengths_dir, original = make_release(tmp_path)
    store = FeatureStore(tmp_path / "store")
    result = import_aivad(features_dir, lengths_dir, store, dataset="ped2", allow_pickle=True)
    assert result.video_ids == {"train": ["train_01", "train_02"], "test": ["test_01", "test_02"]}
    for (name, split), frames in original.items():
        exported = []
        for video in result.video_ids[split]:
            exported += export_frames(store.shard_path(AIVAD_STAGE, aivad_config("ped2", name), video), name)
        assert len(exported) == len(frames)
        for got, want in zip(exported, frames, strict=True):
            d, dtype = DIMS[name]
            assert got.dtype == dtype and got.shape == (want.size // d, d)
            np.testing.assert_array_equal(got.ravel(), want.ravel())
        assert result.n_objects[name][split] == sum(len(f) for f in frames)

    shard = read_shard(store.shard_path(AIVAD_STAGE, aivad_config("ped2", "pose"), "test_02"))
    assert shard.n_frames == 2 and len(shard.objects) == 0 and shard.features["pose"].shape == (0, 34)
    shard = read_shard(store.shard_path(AIVAD_STAGE, aivad_config("ped2", "velocity"), "train_02"))
    assert shard.n_frames == 4 and (shard.objects.source == BoxSource.IMPORTED).all()
    assert np.isnan(shard.objects.boxes).all() and shard.provenance["aivad"]["first_frame"] == 3


def test_import_resumes_and_takes_adapter_ids(tmp_path: Path) -> None:
    features_dir, lengths_dir, _ = make_release(tmp_path)
    store = FeatureStore(tmp_path / "store")
    ids = {"train": ["01_001", "01_002"], "test": ["01_0014", "01_0015"]}
    import_aivad(
        features_dir, lengths_dir, store, dataset="sh", features=["velocity"], video_ids=ids, allow_pickle=True
    )
    again = import_aivad(
        features_dir, lengths_dir, store, dataset="sh", features=["velocity"], video_ids=ids, allow_pickle=True
    )
    assert again.skipped == 4
    assert [p.stem for p in store.shards(AIVAD_STAGE, aivad_config("sh", "velocity"))] == sorted(
        ids["train"] + ids["test"]
    )


def test_import_rejects_frame_counts_that_disagree_with_clip_lengths(tmp_path: Path) -> None:
    features_dir, lengths_dir, _ = make_release(tmp_path)
    np.save(lengths_dir / "test_clip_lengths.npy", np.array([4, 7]))
    with pytest.raises(ValueError, match=r"test/velocity\.npy: 6 frames, but test_clip_lengths\.npy sums to 7"):
        import_aivad(
            features_dir,
            lengths_dir,
            FeatureStore(tmp_path / "s"),
            dataset="ped2",
            features=["velocity"],
            allow_pickle=True,
        )
    with pytest.raises(ValueError, match="3 video ids given"):
        import_aivad(
            features_dir,
            lengths_dir,
            FeatureStore(tmp_path / "s"),
            dataset="ped2",
            video_ids={"train": ["a", "b", "c"], "test": ["d", "e"]},
            allow_pickle=True,
        )
