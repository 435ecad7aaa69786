"""A local Prefect server for the UI: 127.0.0.1 only, SQLite in a project-local PREFECT_HOME, no telemetry.

``mulde-vad ui`` (and ``make ui``) starts the server, registers the deployments of ``prefect.yaml`` on
the local ``process`` work pool and runs a worker for it, until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK_POOL = "mulde-vad-local"


def server_env(home: Path, port: int) -> dict[str, str]:
    """Environment for the server and every client of it (CLI, worker, flow runs)."""
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def wait_healthy(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    url = f"http://127.0.0.1:{port}/api/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode} before becoming healthy")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the Prefect server did not answer {url} within {timeout_s:.0f} s")


@contextlib.contextmanager
def local_server(home: Path, port: int = 4200, timeout_s: float = 60, log: Path | None = None) -> Iterator[dict]:
    """Run ``prefect server start`` bound to 127.0.0.1 for the duration of the block; yield its environment."""
    home.mkdir(parents=True, exist_ok=True)
    env = server_env(home, port)
    out = open(log or home / "server.log", "ab")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        _prefect("server", "start", "--host", "127.0.0.1", "--port", str(port)), env=env, stdout=out, stderr=out
    )
    try:
        wait_healthy(port, timeout_s, process)
        yield env
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()


def serve_ui(port: int = 4200, worker: bool = True) -> int:
    """Server + deployments + worker until interrupted; returns the exit code for the CLI."""
    home = REPO / ".prefect"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the server and worker on `kill` too
    with local_server(home, port) as env:
        print(f"Prefect UI: http://127.0.0.1:{port}  (PREFECT_HOME={home})", flush=True)
        if not worker:
            return _wait_forever()
        create_pool = _prefect("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
        subprocess.run(create_pool, env=env, check=True)
        subprocess.run(_prefect("deploy", "--all"), env=env, cwd=REPO, check=True)
        worker_process = subprocess.Popen(_prefect("worker", "start", "--pool", WORK_POOL), env=env, cwd=REPO)
        try:
            return _wait_forever()
        finally:
            worker_process.terminate()
            worker_process.wait(timeout=15)


def _wait_forever() -> int:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
