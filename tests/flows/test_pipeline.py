"""The DAG under an isolated Prefect database: a tiny demo end to end, resumability and fault isolation."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_DEMO, tiny_overrides

from mulde_vad.flows.config import load_config
from mulde_vad.flows.pipeline import VideosFailed, extract_flow, pipeline_flow
from mulde_vad.storage import FeatureStore, read_shard

pytestmark = pytest.mark.usefixtures("prefect_db")

N_VIDEOS = 6  # 3 train + 3 test in the tiny demo


def _shards(tmp_path, stage="extract"):
    return sorted((tmp_path / "store" / stage).glob("*/*.h5"))


def test_tiny_demo_end_to_end_then_a_rerun_recomputes_nothing(tmp_path, fake_features):
    config = load_config("demo", tiny_overrides(tmp_path))
    first = pipeline_flow(config)

    assert first.counts["train_videos"] == 3 and first.counts["test_videos"] == 3
    assert (first.counts["extracted"], first.counts["extraction_skipped"]) == (N_VIDEOS, 0)
    assert first.counts["models_trained"] == 2  # motion and colour
    assert first.counts["training_rows"] == {"colour": 120, "motion": 120}  # 3 videos × 40 frames, 1 object each
    assert (first.counts["scored"], first.counts["scoring_skipped"]) == (3, 0)
    assert set(first.evaluation.aucs) == {"colour", "motion", "fused"}
    for row in first.evaluation.aucs.values():
        assert 0.0 <= row["micro"] <= 1.0 and 0.0 <= row["macro"] <= 1.0
    assert first.evaluation.n_frames == 120
    out = tmp_path / "runs" / "tiny" / "latest"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["micro_auc"] == pytest.approx(first.evaluation.aucs["fused"]["micro"])
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["test_00.png", "test_01.png", "test_02.png"]
    report = (out / "report.md").read_text()
    assert "| fused |" in report and "train_videos: 3" in report
    assert len(_shards(tmp_path)) == N_VIDEOS

    second = pipeline_flow(config)
    assert (second.counts["extracted"], second.counts["extraction_skipped"]) == (0, N_VIDEOS)
    assert second.counts["models_trained"] == 0
    assert (second.counts["scored"], second.counts["scoring_skipped"]) == (0, 3)
    assert second.evaluation.aucs == first.evaluation.aucs  # same stored scores, same numbers
    assert fake_features.CALLS.count("train_00") == 1  # extracted once over both runs

    other = "log" if config.evaluation.calibration_tail == "linear" else "linear"
    third = pipeline_flow(load_config("demo", tiny_overrides(tmp_path) | {"evaluation.calibration_tail": other}))
    assert third.counts["models_trained"] == 0  # the calibration tail needs no new model
    assert {m.calibration.tail for m in third.models} == {other}


def test_one_failing_video_fails_alone_and_the_rerun_redoes_only_it(tmp_path, fake_features):
    config = load_config("demo", tiny_overrides(tmp_path))
    fake_features.FAIL_ON.add("test_01")
    with pytest.raises(VideosFailed, match="1 of 6 extraction task"):
        extract_flow(config)
    done = FeatureStore(tmp_path / "store")
    stored = [p.stem for p in _shards(tmp_path)]
    assert sorted(stored) == ["test_00", "test_02", "train_00", "train_01", "train_02"]
    assert all(done.is_complete(p) for p in _shards(tmp_path))
    assert not list((tmp_path / "store").rglob("*.tmp"))  # the failed writer left nothing behind

    fake_features.FAIL_ON.clear()
    fake_features.CALLS.clear()
    rerun = extract_flow(config)
    assert (rerun.counts["extracted"], rerun.counts["extraction_skipped"]) == (1, 5)
    assert fake_features.CALLS == ["test_01"]
    assert len(_shards(tmp_path)) == N_VIDEOS
    assert read_shard(_shards(tmp_path)[0]).n_frames == 40


def test_an_invalid_shard_is_recomputed(tmp_path, fake_features):
    config = load_config("demo", tiny_overrides(tmp_path))
    extract_flow(config)
    victim = next(p for p in _shards(tmp_path) if p.stem == "train_01")
    victim.write_bytes(victim.read_bytes()[:200])  # truncated: no longer a valid shard
    fake_features.CALLS.clear()
    rerun = extract_flow(config)
    assert rerun.counts["extracted"] == 1
    assert fake_features.CALLS == ["train_01"]


def test_real_weightfree_extraction_end_to_end(tmp_path):
    """No fake: the demo's own preset (foreground boxes, velocity, appearance histogram, geometry)."""
    overrides = {
        **tiny_overrides(tmp_path, "real"),
        "extraction.preset": "weightfree",
        "dataset.demo": {**TINY_DEMO, "n_train": 2, "n_test": 2, "width": 160, "height": 120},
        "evaluation.plots": False,
    }
    summary = pipeline_flow(load_config("demo", overrides))
    assert summary.counts["extracted"] == 4
    assert set(summary.evaluation.aucs) == {"velocity", "appearance_hist", "geometry", "fused"}
    assert summary.evaluation.n_frames == 80
    for path in _shards(tmp_path):
        shard = read_shard(path)
        assert shard.n_frames == 40
        assert len(shard.objects) == len(shard.features["velocity"])  # one feature row per object
        assert set(range(40)) <= set(shard.objects.frame_index.tolist())  # whole-frame fallback: every frame
