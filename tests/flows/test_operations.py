"""What a Prefect user sees of a run: skipped work in named states, one log line per video, a failure
policy that does not retry what cannot succeed, task timeouts, readable parameters, progress artifacts."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from conftest import tiny_overrides
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterTags,
)
from prefect.logging.handlers import APILogWorker

from mulde_vad.features.decode import VideoDecodeError
from mulde_vad.flows.config import load_config
from mulde_vad.flows.pipeline import VideosFailed, extract_flow, pipeline_flow

pytestmark = pytest.mark.usefixtures("prefect_db")


def _tagged(tag: str):
    """Task-run states (by task-run name), log messages and flow runs of the runs made under ``tag``."""
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[tag])))
        flow_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id for r in flow_runs])))
    return {r.name: r.state.name for r in task_runs}, [log.message for log in logs], flow_runs


def test_skipped_work_finishes_in_a_skipped_state_and_every_video_logs_what_it_did(tmp_path, fake_features):
    config = load_config("demo", tiny_overrides(tmp_path))
    first, second = f"first-{uuid.uuid4().hex[:8]}", f"second-{uuid.uuid4().hex[:8]}"
    with tags(first):
        pipeline_flow(config)
    with tags(second):
        pipeline_flow(config)

    states, logs, _ = _tagged(first)
    videos = [f"{split}_{i:02d}" for split in ("train", "test") for i in range(3)]
    assert {states[f"extract-{v}"] for v in videos} == {"Completed"}
    assert {states[f"score-test_{i:02d}"] for i in range(3)} == {"Completed"}
    for video in videos:
        assert sum(m.startswith(f"extract {video}: computed in ") for m in logs) == 1
    assert sum(m.startswith("train motion: epoch ") for m in logs) == 5  # 5 epochs: one line each
    assert any(m.startswith("train motion: epoch 5/5 loss ") for m in logs)

    states, logs, _ = _tagged(second)
    skipped = [*(f"extract-{v}" for v in videos), *(f"score-test_{i:02d}" for i in range(3)), "train-motion"]
    assert {states[name] for name in [*skipped, "train-colour"]} == {"Skipped"}
    for video in videos:
        assert sum(m.startswith(f"extract {video}: skipped, valid result in the store") for m in logs) == 1
    assert not any(": computed in " in m for m in logs)


@pytest.mark.parametrize(("error", "tries"), [(VideoDecodeError, 1), (RuntimeError, 2)])
def test_a_deterministic_error_is_not_retried_a_transient_one_is(tmp_path, fake_features, error, tries):
    fake_features.FAIL_ON.add("test_01")
    fake_features.FAIL_ERROR = error
    with pytest.raises(VideosFailed, match=f"test_01 \\({error.__name__}: injected failure"):
        extract_flow(load_config("demo", tiny_overrides(tmp_path)))
    assert fake_features.CALLS.count("test_01") == tries
    assert fake_features.CALLS.count("test_00") == 1


def test_a_task_past_its_timeout_fails_naming_the_timeout(tmp_path, fake_features):
    fake_features.SLEEP_S = 1.5
    config = load_config("demo", {**tiny_overrides(tmp_path), "runner.timeout_s": 0.3})
    with pytest.raises(VideosFailed, match=r"6 of 6 extraction task.*TimeoutError"):
        extract_flow(config)


def test_the_pipeline_run_holds_the_progress_artifacts_and_the_subflow_shows_its_videos(tmp_path, fake_features):
    tag = f"progress-{uuid.uuid4().hex[:8]}"
    with tags(tag):
        state = pipeline_flow(load_config("demo", tiny_overrides(tmp_path)), return_state=True)
    pipeline_run = state.state_details.flow_run_id
    _, _, flow_runs = _tagged(tag)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[pipeline_run]), type=ArtifactFilterType(any_=["progress"])
            )
        )
    assert sorted((a.description, a.data) for a in artifacts) == [
        ("extracting 6 videos", 100.0),
        ("scoring 3 videos", 100.0),
        ("training 2 models", 100.0),
    ]
    (subflow,) = [r for r in flow_runs if r.id != pipeline_run]  # extract-videos
    shown = [record["video_id"] for record in subflow.parameters["records"]]
    assert shown == ["train_00", "train_01", "train_02", "test_00", "test_01", "test_02"]


def test_runs_are_named_tagged_and_recorded_and_each_model_loads_once(tmp_path, fake_features, monkeypatch):
    from mulde_vad.models import MULDE
    from mulde_vad.tasks import train

    loads = []
    original = MULDE.load
    monkeypatch.setattr(MULDE, "load", classmethod(lambda cls, path: loads.append(path) or original(path)))
    train._load_model.cache_clear()
    tag = f"named-{uuid.uuid4().hex[:8]}"
    with tags(tag):
        summary = pipeline_flow(load_config("demo", tiny_overrides(tmp_path, "named")))
    _, _, flow_runs = _tagged(tag)
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[tag])))
    assert any(r.name.startswith("named-pipeline-") for r in flow_runs)
    assert {"demo", "evaluate"} <= set(next(r for r in task_runs if r.name == "score-test_00").tags)
    # Per model: one load for its loss log, one for scoring all 3 test videos (the per-process cache).
    assert sorted(Counter(loads).values()) == [2, 2]

    assert set(summary.cpu_timings) == set(summary.timings) == {"discover", "extract", "train", "score", "evaluate"}
    report = summary.report.read_text()
    assert "| stage | wall | CPU |" in report
    for stage in summary.timings:
        assert f"| {stage} | {summary.timings[stage]:.1f} | {summary.cpu_timings[stage]:.1f} |" in report
    for model in summary.models:  # the keys name the model directory (model + calibration) it used
        assert f"| {model.source.name} | `" in report and f"` | `{model.key}` |" in report
        assert (tmp_path / "store" / "models" / model.key / f"{model.source.name}.calibration.json").is_file()


def test_each_run_gets_its_own_folder_and_latest_points_at_the_last(tmp_path, fake_features):
    config = load_config("demo", tiny_overrides(tmp_path, "twice"))
    first = pipeline_flow(config).report.parent
    second = pipeline_flow(config).report.parent
    assert first != second and first.parent == second.parent == tmp_path / "runs" / "twice"
    assert (first / "report.md").is_file() and (second / "report.md").is_file()  # the first run is kept
    latest = tmp_path / "runs" / "twice" / "latest"
    assert latest.is_symlink() and latest.resolve() == second.resolve()
    assert sorted(p.name for p in latest.parent.iterdir()) == sorted([first.name, second.name, "latest"])


def test_the_run_form_takes_a_config_name_and_overrides_like_set(tmp_path, fake_features):
    from mulde_vad.flows.config import ConfigError, shipped_configs

    schema = pipeline_flow.parameters.model_dump()["properties"]
    assert all(name in schema["config"]["description"] for name in shipped_configs())
    assert "--set" in schema["overrides"]["description"]
    summary = extract_flow("demo", tiny_overrides(tmp_path, "form"))  # what the form sends, as JSON
    assert summary.name == "form" and summary.counts["extracted"] == 6
    assert len(list((tmp_path / "store").glob("extract/*/*.h5"))) == 6
    with pytest.raises(ConfigError, match="overrides apply to a config name or path"):
        extract_flow(load_config("demo", tiny_overrides(tmp_path)), {"mulde.epochs": 2})
