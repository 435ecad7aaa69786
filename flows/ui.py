"""A local Prefect server for the UI: 127.0.0.1 only, SQLite in a project-local PREFECT_HOME, no telemetry.

``mulde-vad ui`` (and ``make ui``) starts the server, registers the deployments of ``prefect.yaml`` on
the local ``process`` work pool and runs a worker for it, until Ctrl-C. The run commands use the same
server as their temporary one when no ``PREFECT_API_URL`` is set. On Linux the server is tied to the
process that started it: the kernel stops it when that process dies, even by ``kill -9``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tied_to(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when ``parent`` dies (Linux; None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    pr_set_pdeathsig = 1

    def tie() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the tie was made
            os.kill(os.getpid(), signal.SIGTERM)

    return tie


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
        _prefect("server", "start", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        stdout=out,
        stderr=out,
        preexec_fn=_tied_to(os.getpid()),  # only prctl and getppid run between fork and exec
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
