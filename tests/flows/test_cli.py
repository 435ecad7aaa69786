"""The ``mulde-vad`` command line: argument handling and config errors before any work starts."""

from __future__ import annotations

import pytest

from mulde_vad.flows.cli import build_parser, main
from mulde_vad.flows.config import RunnerSettings


def test_every_command_parses():
    parser = build_parser()
    assert parser.parse_args(["demo"]).command == "demo"
    args = parser.parse_args(["run", "ped2", "--set", "mulde.epochs=3", "--address", "tcp://10.0.0.1:8786"])
    assert (args.command, args.config, args.set, args.address) == (
        "run",
        "ped2",
        ["mulde.epochs=3"],
        "tcp://10.0.0.1:8786",
    )
    for command in ("extract", "train", "score", "evaluate"):
        assert parser.parse_args([command, "avenue"]).config == "avenue"
    aivad = parser.parse_args(["import-aivad", "ped2", "--features-dir", "f", "--clip-lengths-dir", "c"])
    assert (str(aivad.features_dir), str(aivad.clip_lengths_dir)) == ("f", "c")
    assert parser.parse_args(["ui", "--port", "4300"]).port == 4300


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "ped2", "--set", "mulde.epochs=-1"], "ped2.yaml: invalid config: mulde.epochs"),
        (["run", "ped2", "--set", "mulde.epochs"], "expected section.field=value"),
        (["train", "nope"], "nope: no such config file"),
        (["demo", "--set", "runner.kind=gpu"], "runner.kind: Input should be 'thread' or 'dask'"),
    ],
)
def test_bad_config_exits_2_naming_the_field_before_any_work(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_task_runner_choice():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from mulde_vad.flows.pipeline import task_runner

    assert isinstance(task_runner(RunnerSettings(kind="thread", max_workers=3)), ThreadPoolTaskRunner)
    local = task_runner(RunnerSettings(kind="dask", max_workers=2))
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs == {
        "n_workers": 2,
        "threads_per_worker": 1,
        "dashboard_address": "127.0.0.1:8787",
    }
    remote = task_runner(RunnerSettings(kind="dask", address="tcp://10.0.0.1:8786"))
    assert remote.address == "tcp://10.0.0.1:8786"
