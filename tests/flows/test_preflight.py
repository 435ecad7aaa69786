"""Everything a config can get wrong is caught before any work: exit 2, one message, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mulde_vad.flows.cli import main
from mulde_vad.flows.config import ConfigError, RunnerSettings, load_config


def _argv(tmp_path: Path, *settings: str) -> list[str]:
    where = [f"dataset.root={tmp_path / 'data'}", f"store={tmp_path / 'store'}", f"output={tmp_path / 'runs'}"]
    return ["run", "demo", *(arg for item in [*where, *settings] for arg in ("--set", item))]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["extraction.preset=aivad_pedd2"], "unknown extraction preset 'aivad_pedd2'"),
        (["extraction.overrides={velocity_binz: 4}"], "unknown extraction field(s) ['velocity_binz']"),
        (["extraction.overrides={device: cuda}"], "device='cuda' was requested but CUDA is not available"),
        (["mulde.device=cuda:1"], "device='cuda:1' was requested but CUDA is not available"),
        (["extraction.overrides={detector_weights: /no/such/yolov8n.pt}"], "weights … /no/such/yolov8n.pt … not found"),
        (["evaluation.calibration_upper={velocty: 99.0}"], "calibration_upper names unknown feature types ['velocty']"),
        (["evaluation.feature_types=[velocity, pose]"], "evaluation.feature_types ['pose'] are not produced"),
    ],
)
def test_bad_run_settings_exit_2_with_one_message_before_any_work(tmp_path, capsys, monkeypatch, settings, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(_argv(tmp_path, *settings)) == 2
    err = capsys.readouterr().err.strip()
    assert all(part in err for part in message.split(" … ")) and err.count("\n") == 0, err
    assert not any(tmp_path.iterdir())  # no dataset generated, no store, no output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"name": "../../x"}, "name: String should match pattern"),
        ({"name": "runs/x"}, "name: String should match pattern"),
        ({"mulde.device": "gpu"}, "mulde.device: String should match pattern"),
    ],
)
def test_run_name_is_a_plain_name_and_devices_are_device_names(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo", override)


def test_a_local_dask_dashboard_listens_on_loopback_only():
    from distributed import LocalCluster

    from mulde_vad.flows.pipeline import task_runner

    kwargs = {**task_runner(RunnerSettings(kind="dask")).cluster_kwargs, "n_workers": 0, "processes": False}
    with LocalCluster(**{**kwargs, "dashboard_address": kwargs["dashboard_address"].replace("8787", "0")}) as cluster:
        server = cluster.scheduler.http_server
        hosts = {sock.getsockname()[0] for sock in server._sockets.values()}
    assert hosts == {"127.0.0.1"}
