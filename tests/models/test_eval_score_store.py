"""Features → scores end to end on a small synthetic store: exact plumbing with a stub model, then MULDE."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mulde_vad.models.score_store import FeatureSource, default_estimator, score_store
from mulde_vad.storage import BoxSource, FeatureStore, ObjectChunk, ObjectTable, ShardWriter, make_provenance


def write_objects(store: FeatureStore, source: FeatureSource, video: str, frames, rows, n_frames: int) -> None:
    frames = np.asarray(frames, np.int64)
    table = ObjectTable(
        frame_index=frames,
        boxes=np.zeros((len(frames), 4), np.float32),
        confidence=np.ones(len(frames), np.float32),
        class_id=np.zeros(len(frames), np.int32),
        source=np.full(len(frames), BoxSource.DETECTOR, np.uint8),
    )
    path = store.shard_path(source.stage, source.config, video)
    provenance = make_provenance(video=None, config=source.config)
    with ShardWriter(path, kind="object", provenance=provenance) as writer:
        writer.append_objects(ObjectChunk(table, {source.key: np.asarray(rows, np.float32)}))
        writer.finish(n_frames)


class SquaredDistance:
    """Stub estimator with hand-computable scores: squared distance to the training mean."""

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> SquaredDistance:
        self.groups_ = groups
        self.mean_ = X.mean(axis=0)
        self.calibration_scores_ = self.anomaly_score(X)
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) ** 2).sum(axis=1)

    def save(self, path: Path) -> None:
        np.save(Path(path).with_suffix(".npy"), self.mean_)


# AI-VAD's linear tail keeps the hand-computed values affine; the log tail is checked where it differs.
VELOCITY = FeatureSource("velocity", "objects", {"test": "velocity"}, upper="max", tail="linear")
POSE = FeatureSource("pose", "objects", {"test": "pose"}, upper="max", tail="linear")


def test_scores_are_max_calibrated_summed_and_written(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store")
    # Training scores: velocity [1, 1, 4, 4] → calibration (1, 4); pose [1, 1, 9, 9] → (1, 9).
    write_objects(store, VELOCITY, "tr", [0, 1, 2, 3], [[1, 0], [-1, 0], [0, 2], [0, -2]], 4)
    write_objects(store, POSE, "tr", [0, 0, 1, 3], [[1, 0, 0], [-1, 0, 0], [0, 0, 3], [0, 0, -3]], 4)
    # Test: velocity frame maxima [4, –, 9] → [1, 0 (empty), 8/3]; pose [–, 9, 1] → [0 (empty), 1, 0].
    write_objects(store, VELOCITY, "te", [0, 0, 2], [[1, 0], [0, 2], [3, 0]], 3)
    write_objects(store, POSE, "te", [1, 2], [[0, 0, 3], [1, 0, 0]], 3)
    for source in (VELOCITY, POSE):  # a test video with no objects at all
        write_objects(store, source, "te2", [], np.zeros((0, 2 if source is VELOCITY else 3)), 2)
    labels = {"te": np.array([0, 0, 1], np.uint8), "te2": np.array([0, 0], np.uint8)}

    result = score_store(
        store,
        [VELOCITY, POSE],
        train_ids=["tr"],
        test_labels=labels,
        out_dir=tmp_path / "out",
        sigma=0.0,
        make_model=lambda name: SquaredDistance(),
        plots=True,
    )
    np.testing.assert_allclose(result.raw["te"], [1.0, 1.0, 8 / 3])
    np.testing.assert_array_equal(result.raw["te2"], [0.0, 0.0])
    np.testing.assert_array_equal(result.scores["te"], result.raw["te"])  # σ = 0: no smoothing
    assert result.metrics["micro_auc"] == 1.0  # 8/3 above every normal frame (1, 1, 0, 0)
    assert result.metrics["per_video_auc"] == {"te": 1.0, "te2": 1.0}
    assert result.metrics["feature_types"]["pose"]["calibration"] == [1.0, 9.0]
    assert result.metrics["feature_types"]["pose"]["tail"] == "linear"

    out = tmp_path / "out"
    csv_lines = (out / "scores.csv").read_text().splitlines()
    assert csv_lines[0] == "video_id,frame,label,score_raw,score"
    assert csv_lines[3] == "te,2,1,2.66666667,2.66666667" and csv_lines[5] == "te2,1,0,0,0"
    with h5py.File(out / "scores.h5") as file:
        np.testing.assert_allclose(file["te/score"][()], [1.0, 1.0, 8 / 3])
        np.testing.assert_array_equal(file["te/label"][()], [0, 0, 1])
    assert json.loads((out / "metrics.json").read_text())["micro_auc"] == 1.0
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["te.png", "te2.png"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "models", "plots", "scores.csv", "scores.h5"]


def test_missing_test_shard_and_label_mismatch_name_the_video(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store")
    write_objects(store, VELOCITY, "tr", [0, 1, 2, 3], [[1, 0], [-1, 0], [0, 2], [0, -2]], 4)
    write_objects(store, VELOCITY, "te", [0], [[1, 0]], 3)
    kwargs = dict(train_ids=["tr"], out_dir=tmp_path / "out", sigma=0.0, make_model=lambda n: SquaredDistance())
    with pytest.raises(ValueError, match="missing or invalid: absent"):
        score_store(store, [VELOCITY], test_labels={"absent": np.zeros(3)}, **kwargs)
    with pytest.raises(ValueError, match="video te: 4 labels but 3 scored frames"):
        score_store(store, [VELOCITY], test_labels={"te": np.array([0, 0, 1, 1])}, **kwargs)


def test_tiny_mulde_end_to_end_separates_far_objects(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = FeatureStore(tmp_path / "store")
    source = FeatureSource("deep", "objects", {"test": "deep"}, upper=99.9)
    n_frames, frames = 30, np.repeat(np.arange(30), 2)
    for video in ("tr1", "tr2", "tr3"):
        write_objects(store, source, video, frames, rng.standard_normal((60, 4)), n_frames)
    labels = {}
    for video in ("te1", "te2"):
        rows = rng.standard_normal((60, 4))
        rows[20:40:2] += 8.0  # one object per frame 10..19 is far from the training data
        write_objects(store, source, video, frames, rows, n_frames)
        labels[video] = ((np.arange(n_frames) >= 10) & (np.arange(n_frames) < 20)).astype(np.uint8)
    params = dict(hidden_units=(64, 64), epochs=3, batch_size=256, gmm_components=2, device="cpu")
    result = score_store(
        store,
        [source],
        train_ids=["tr1", "tr2", "tr3"],
        test_labels=labels,
        out_dir=tmp_path / "out",
        sigma=1.0,
        make_model=default_estimator(params),
    )
    assert result.metrics["micro_auc_unsmoothed"] > 0.95
    assert result.metrics["macro_auc_skip_single_class"] > 0.95
    assert (tmp_path / "out" / "models" / "deep.mulde").is_file()


def test_aivad_sources_point_at_imported_stages_with_aivad_calibration() -> None:
    from mulde_vad.models.score_store import aivad_sources
    from mulde_vad.storage.aivad import AIVAD_STAGE, aivad_config

    velocity, deep = aivad_sources("ped2", ["velocity", "deep_features"])
    assert (velocity.stage, velocity.config, velocity.upper) == (AIVAD_STAGE, aivad_config("ped2", "velocity"), 99.9)
    assert deep.key == "deep_features" and deep.upper == "max"
    assert velocity.tail == deep.tail == "linear"  # AI-VAD's own calibration


def test_nan_pose_rows_are_ignored_for_fitting_and_frame_scores(tmp_path: Path) -> None:
    """Boxes without a matched person carry NaN pose rows: they are not observations."""
    store = FeatureStore(tmp_path / "store")
    nan = [np.nan, np.nan, np.nan]
    # Training: the NaN row would poison the mean; without it, scores are [1, 1, 9, 9] → calibration (1, 9).
    write_objects(store, POSE, "tr", [0, 0, 1, 2, 3], [[1, 0, 0], nan, [-1, 0, 0], [0, 0, 3], [0, 0, -3]], 4)
    # Test: frame 0 has a pose (score 9) beside an unmatched box; frame 1 only an unmatched box → empty.
    write_objects(store, POSE, "te", [0, 0, 1], [nan, [0, 0, 3], nan], 3)
    result = score_store(
        store,
        [POSE],
        train_ids=["tr"],
        test_labels={"te": np.array([1, 0, 0], np.uint8)},
        out_dir=tmp_path / "out",
        sigma=0.0,
        make_model=lambda name: SquaredDistance(),
    )
    assert result.metrics["feature_types"]["pose"]["calibration"] == [1.0, 9.0]
    np.testing.assert_allclose(result.raw["te"], [1.0, 0.0, 0.0])


class HeldOutDistance(SquaredDistance):
    """Like ``SquaredDistance``, but calibrates with scores of rows it did not fit: here, twice its own."""

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> HeldOutDistance:
        super().fit(X, groups)
        self.calibration_scores_ = 2 * self.anomaly_score(X)
        return self


def test_the_calibration_comes_from_the_models_calibration_scores(tmp_path: Path) -> None:
    """A model that held rows out hands the pipeline their scores, not its optimistic scores of the rows it fit."""
    from mulde_vad.models.score_store import fit_feature

    store = FeatureStore(tmp_path / "store")
    write_objects(store, POSE, "tr", [0, 0, 1, 3], [[1, 0, 0], [-1, 0, 0], [0, 0, 3], [0, 0, -3]], 4)
    fitted = fit_feature(store, POSE, ["tr"], lambda name: HeldOutDistance())
    assert (fitted.calibration.low, fitted.calibration.high) == (2.0, 18.0)  # in-sample would be (1, 9)


def test_the_model_learns_which_training_video_each_row_comes_from(tmp_path: Path) -> None:
    """fit_feature hands the estimator each observed row's training video, so a hold-out can withhold videos."""
    from mulde_vad.models.score_store import fit_feature

    store = FeatureStore(tmp_path / "store")
    write_objects(store, POSE, "a", [0, 1], [[1, 0, 0], [2, 0, 0]], 2)
    write_objects(store, POSE, "b", [0, 0, 1], [[3, 0, 0], [np.nan, np.nan, np.nan], [4, 0, 0]], 2)
    path = store.shard_path(POSE.stage, POSE.config, "empty")  # nothing found: the writer never saw a row
    with ShardWriter(path, kind="object", provenance=make_provenance(video=None, config=POSE.config)) as writer:
        writer.finish(2)
    fitted = fit_feature(store, POSE, ["a", "empty", "b"], lambda name: SquaredDistance())
    np.testing.assert_array_equal(fitted.model.groups_, [0, 0, 2, 2])  # the NaN row of "b" is no observation
    assert fitted.n_train == 4
