"""``mulde-vad ui`` started outside the checkout: module entrypoints, flow runs in the starting directory,
schedules added in the UI kept across restarts, SIGTERM leaves no process behind, and a deployed run with a
bad video, retried through the API, recomputes only that video."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import AwaitingRetry

from mulde_vad.datasets.demo import DemoSpec, generate_demo
from mulde_vad.features.config import PRESETS
from mulde_vad.flows.config import CONFIG_DIR
from mulde_vad.flows.ui import REPO, WORK_POOL, free_port

DEPLOYMENTS = {d["name"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class _UI:
    """``mulde-vad ui`` as a user starts it, from ``workdir``."""

    def __init__(self, workdir: Path, home: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/api"
        self.started = datetime.now(UTC)  # a worker of an earlier start stays listed: not that one
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.log = open(workdir / "ui.log", "ab")  # noqa: SIM115 - closed in sigterm()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mulde_vad.flows.cli", "ui", "--port", str(port), "--home", str(home)],
            cwd=workdir,
            env=env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def client(self):
        with temporary_settings({PREFECT_API_URL: self.url}):
            return get_client(sync_client=True)

    def wait_ready(self, timeout_s: float = 240) -> None:
        """Until every deployment is registered and this start's worker has polled the pool."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "mulde-vad ui exited early"
            try:
                with self.client() as client:
                    names = {d.name for d in client.read_deployments()}
                    workers = client.read_workers_for_work_pool(WORK_POOL) if names >= DEPLOYMENTS else []
                if any(w.last_heartbeat_time and w.last_heartbeat_time > self.started for w in workers):
                    return
            except Exception:  # the server is still starting
                pass
            time.sleep(2)
        raise TimeoutError("mulde-vad ui did not register its deployments and worker in time")

    def sigterm(self) -> set[int]:
        """SIGTERM the ui; return the processes it had started that are still alive 30 s later."""
        started = _descendants(self.process.pid)
        assert len(started) >= 2  # the server and the worker at least
        self.process.send_signal(signal.SIGTERM)
        try:
            assert self.process.wait(timeout=60) == 0
        finally:
            self.log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(map(_alive, started)):
            time.sleep(0.5)
        return {pid for pid in started if _alive(pid)}


@pytest.mark.timeout(900)
def test_ui_from_another_directory_keeps_ui_schedules_and_stops_everything_on_sigterm(tmp_path):
    workdir, home = tmp_path / "elsewhere", tmp_path / "prefect-home"
    workdir.mkdir()
    port = free_port()
    ui = _UI(workdir, home, port)
    try:
        ui.wait_ready()
        with ui.client() as client:
            demo = client.read_deployment_by_name("pipeline/demo")
            assert demo.entrypoint == "mulde_vad.flows.form:pipeline"
            assert not demo.pull_steps
            assert demo.tags == ["demo", "pipeline"]
            assert demo.global_concurrency_limit.limit == 1  # overlapping runs queue instead of racing
            assert demo.concurrency_options.collision_strategy == "ENQUEUE"
            pool = client.read_work_pool(WORK_POOL)
            assert pool.base_job_template["variables"]["properties"]["working_dir"]["default"] == str(workdir)
            dataset = client.read_deployment_by_name("pipeline/dataset")
            client.create_deployment_schedules(dataset.id, [(IntervalSchedule(interval=timedelta(hours=6)), True)])
            form = dataset.parameter_openapi_schema["properties"]
    finally:
        left = ui.sigterm()
    assert not left, f"processes left behind after SIGTERM: {sorted(left)}"
    # The run form offers every config file in configs/ by name, and the presets ("": the config's); paths are
    # text, overrides a mapping.
    assert form["config"]["enum"] == sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert {"demo", "ped2", "avenue"} <= set(form["config"]["enum"])
    assert form["preset"]["enum"] == ["", *sorted(PRESETS)]
    assert form["config_file"]["type"] == form["dataset_root"]["type"] == "string"
    assert (form["overrides"]["type"], form["overrides"]["default"]) == ("object", {})
    assert list(form) == ["config", "config_file", "dataset_root", "preset", "overrides"]

    again = _UI(workdir, home, port)
    try:
        again.wait_ready()
        with again.client() as client:
            schedules = client.read_deployment_by_name("pipeline/dataset").schedules
            demo_schedules = client.read_deployment_by_name("pipeline/demo").schedules
    finally:
        left = again.sigterm()
    assert [s.schedule.interval for s in schedules] == [timedelta(hours=6)]  # the UI's schedule survived
    assert [s.schedule.cron for s in demo_schedules] == ["0 2 * * *"]
    assert not left


def _wait_final(client, run_id, timeout_s: float = 400):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state and run.state.is_final():
            return run
        time.sleep(2)
    raise TimeoutError(f"flow run {run_id} did not finish in {timeout_s:.0f} s")


@pytest.mark.timeout(900)
def test_a_deployed_run_with_a_bad_video_is_retried_through_the_api_and_recomputes_only_that_video(tmp_path):
    workdir, home = tmp_path / "elsewhere", tmp_path / "prefect-home"
    workdir.mkdir()
    generate_demo(workdir / "data", DemoSpec(seed=0, n_train=2, n_test=3, n_frames=40, width=160, height=120))
    config = {  # relative paths: taken from the directory `mulde-vad ui` was started in
        "name": "e2e",
        "dataset": {"name": "folder", "root": "data"},
        "store": "store",
        "output": "runs",
        "extraction": {"preset": "weightfree"},
        "mulde": {"hidden_units": [32, 32], "epochs": 3, "batch_size": 256, "device": "cpu"},
        "evaluation": {"plots": False, "smoothing_sigma": 1.0},
    }
    (workdir / "e2e.yaml").write_text(yaml.safe_dump(config))
    frame = workdir / "data" / "test" / "test_01" / "20.png"
    good = frame.read_bytes()
    frame.write_bytes(b"not a png")  # a corrupt frame: this video fails, the others go through
    ui = _UI(workdir, home, free_port())
    try:
        ui.wait_ready()
        with ui.client() as client:
            deployment = client.read_deployment_by_name("pipeline/dataset")
            run = client.create_flow_run_from_deployment(deployment.id, parameters={"config_file": "e2e.yaml"})
            assert _wait_final(client, run.id).state.is_failed()
            frame.write_bytes(good)  # the input is fixed; then *Retry*, as the UI does it
            client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            assert _wait_final(client, run.id).state.is_completed()
            flow_runs = [run.id, *(r.id for r in client.read_flow_runs() if r.parent_task_run_id)]
            logs = [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_runs)))]
            states = [(r.name, r.state.name) for r in client.read_task_runs()]
    finally:
        left = ui.sigterm()
    assert not left
    assert sum(m.startswith("extract test_01: computed in ") for m in logs) == 1  # only after the retry
    for video in ("train_00", "train_01", "test_00", "test_02"):
        assert sum(m.startswith(f"extract {video}: computed in ") for m in logs) == 1  # the first attempt
        assert sum(m.startswith(f"extract {video}: skipped, valid result") for m in logs) == 1  # the retry
        assert (f"extract-{video}", "Skipped") in states
    assert (workdir / "runs" / "e2e" / "latest" / "report.md").is_file()
    assert any((workdir / "store" / "prefect-results").iterdir())  # persisted results: what a UI Retry reuses
