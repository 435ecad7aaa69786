"""The DAG never serves stale or corrupt results, cleans up dead writers, and lets a bad test video fail alone."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import TINY_DEMO, tiny_overrides

from mulde_vad.features.config import ExtractionConfig
from mulde_vad.flows.config import load_config
from mulde_vad.flows.pipeline import VideosFailed, extract_flow, pipeline_flow
from mulde_vad.storage.shards import temp_path_for
from mulde_vad.tasks.extract import extract_key

pytestmark = pytest.mark.usefixtures("prefect_db")


def _config(tmp_path: Path, data: str = "data", store: str = "store", seed: int = 0, name: str = "tiny"):
    overrides = {
        **tiny_overrides(tmp_path, name),
        "dataset.root": str(tmp_path / data),
        "dataset.demo": {**TINY_DEMO, "seed": seed},
        "store": str(tmp_path / store),
        "evaluation.plots": False,
    }
    return load_config("demo", overrides)


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


def test_changed_videos_are_recomputed_through_every_stage(tmp_path, fake_features):
    pipeline_flow(_config(tmp_path, "seed0", seed=0))
    # Other videos under the same ids, against the filled store: everything downstream must follow.
    changed = pipeline_flow(_config(tmp_path, "seed1", seed=1))
    assert (changed.counts["extracted"], changed.counts["extraction_skipped"]) == (6, 0)
    assert changed.counts["models_trained"] == 2 and changed.counts["scored"] == 3
    fresh = pipeline_flow(_config(tmp_path, "seed1", store="fresh", seed=1, name="fresh"))
    assert changed.evaluation.aucs == fresh.evaluation.aucs


def test_corrupt_shards_and_models_are_recomputed_not_used(tmp_path, fake_features):
    config = _config(tmp_path)
    first = pipeline_flow(config)
    store = tmp_path / "store"
    _flip_middle(next(store.glob("extract/*/train_01.h5")))
    _flip_middle(next(store.glob("models/*/motion.mulde")))
    with pytest.warns(UserWarning) as caught:
        again = pipeline_flow(config)
    messages = " ".join(str(w.message) for w in caught)
    assert "train_01.h5" in messages and "motion.mulde" in messages
    assert again.counts["extracted"] == 1 and again.counts["models_trained"] == 1
    assert again.evaluation.aucs == first.evaluation.aucs


def test_a_run_starts_by_removing_temp_files_of_dead_writers(tmp_path, fake_features):
    config = _config(tmp_path)
    extract_flow(config)
    directory = next((tmp_path / "store" / "extract").iterdir())
    dead = temp_path_for(directory / "test_00.h5")
    dead = dead.with_name(dead.name.replace(f".{os.getpid()}.", ".999999999."))  # a pid that cannot exist
    live = temp_path_for(directory / "test_01.h5")  # this process: a writer still at work
    dead.write_bytes(b"x" * 4096)
    live.write_bytes(b"x")
    extract_flow(config)
    assert not dead.exists() and live.exists()


def test_a_broken_test_video_fails_alone_after_the_others_are_scored(tmp_path, fake_features):
    config = _config(tmp_path)
    extract_flow(config)  # generates the data
    shutil.rmtree(tmp_path / "data" / "test" / "test_01")
    (tmp_path / "data" / "test" / "test_01.mp4").write_bytes(b"not a video")
    with pytest.raises(VideosFailed, match=r"test_01 \(.*test_01\.mp4: cannot be read as a video") as failed:
        pipeline_flow(config)
    summary = failed.value.summary
    assert summary.counts["scored"] + summary.counts["scoring_skipped"] == 2
    latest = tmp_path / "runs" / "tiny" / "latest"
    scored = {line.split(",")[0] for line in (latest / "scores.csv").read_text().splitlines()[1:]}
    assert scored == {"test_00", "test_02"}
    assert (latest / "report.md").is_file()


def test_a_test_set_without_anomalies_still_writes_scores_and_the_report(tmp_path, fake_features):
    config = _config(tmp_path)
    extract_flow(config)
    (tmp_path / "data" / "labels.csv").write_text("video_id,start_frame,end_frame\n")
    summary = pipeline_flow(config)
    out = tmp_path / "runs" / "tiny" / "latest"
    assert summary.evaluation.undefined == "undefined: no anomalous frames"
    assert len((out / "scores.csv").read_text().splitlines()) == 1 + 3 * 40
    assert "| fused | undefined: no anomalous frames |" in (out / "report.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["micro_auc"] is None


def test_weights_enter_the_cache_key_by_content_not_path(tmp_path):
    weights = tmp_path / "a" / "detector.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"weights v1")
    key = extract_key(ExtractionConfig(detector_weights=str(weights)))
    stamp = weights.stat().st_mtime_ns
    weights.write_bytes(b"weights v2")  # replaced in place, same path
    os.utime(weights, ns=(stamp + 10**9,) * 2)
    assert extract_key(ExtractionConfig(detector_weights=str(weights))) != key
    moved = tmp_path / "b" / "renamed.pt"
    moved.parent.mkdir()
    shutil.copy(weights, moved)
    assert extract_key(ExtractionConfig(detector_weights=str(moved))) == extract_key(
        ExtractionConfig(detector_weights=str(weights))
    )
