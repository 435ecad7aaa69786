"""The temporary Prefect server of a CLI run dies with the CLI, even when the CLI is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import TINY_DEMO


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_the_cli_temporary_server_dies_with_a_killed_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp_path / "home"), "PYTHONPATH": os.pathsep.join(sys.path)}
    settings = {
        "dataset.root": str(tmp_path / "data"),
        "dataset.demo": json.dumps(TINY_DEMO),
        "store": str(tmp_path / "store"),
        "output": str(tmp_path / "runs"),
    }
    argv = [sys.executable, "-m", "mulde_vad.flows.cli", "extract", "demo"]
    argv += [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    with open(tmp_path / "cli.log", "w") as log:
        cli = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
    server = None
    try:
        deadline = time.monotonic() + 90
        while server is None and time.monotonic() < deadline and cli.poll() is None:
            server = next((c for c in _children(cli.pid) if "server" in _cmdline(c) or "uvicorn" in _cmdline(c)), None)
            time.sleep(0.2)
        assert server is not None, (tmp_path / "cli.log").read_text()[-3000:]
        os.kill(cli.pid, signal.SIGKILL)  # no finally blocks, no atexit: only the kernel can clean up
        cli.wait()
        deadline = time.monotonic() + 30
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(server), f"server {server} ({_cmdline(server)}) outlived the CLI"
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)
