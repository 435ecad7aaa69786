"""A local Prefect server for the UI: 127.0.0.1 unless told otherwise, SQLite in a project-local PREFECT_HOME,
no telemetry.

``mulde-vad ui`` (and ``make ui``) starts the server, registers the deployments of ``prefect.yaml`` that
the server does not have yet (so schedules added in the UI survive a restart), points the local
``process`` work pool at the directory it was started from, and runs a worker for it, until Ctrl-C or
SIGTERM, which stop the worker (with its flow runs) and the server, by SIGKILL when they do not stop in
time. The run commands use the same server as their temporary one when no ``PREFECT_API_URL`` is set.
On Linux the server is tied to the process that started it: the kernel stops it when that process
dies, even by ``kill -9``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
WORK_POOL = "mulde-vad-local"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Seconds a stopped server or worker gets to exit on SIGTERM before SIGKILL.
GRACE_S = 10.0


def _client_host(host: str) -> str:
    """Where local clients reach a server bound to ``host`` (all interfaces: through loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def server_env(home: Path, port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """Environment for the server and every client of it (CLI, worker, flow runs)."""
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://{_client_host(host)}:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": host,
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


def wait_healthy(port: int, timeout_s: float, process: subprocess.Popen | None = None, host: str = "127.0.0.1") -> None:
    url = f"http://{_client_host(host)}:{port}/api/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode} before becoming healthy")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the Prefect server did not answer {url} within {timeout_s:.0f} s")


def stop(process: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """Stop ``process`` and everything in its process group: SIGTERM, then SIGKILL after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # stragglers of the group whose leader already exited
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def local_server(
    home: Path, port: int = 4200, timeout_s: float = 180, log: Path | None = None, host: str = "127.0.0.1"
) -> Iterator[dict]:
    """Run ``prefect server start`` bound to ``host`` for the duration of the block; yield its environment."""
    home.mkdir(parents=True, exist_ok=True)
    env = server_env(home, port, host)
    out = open(log or home / "server.log", "ab")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        _prefect("server", "start", "--host", host, "--port", str(port)),
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,  # its own process group, stopped as a whole
        preexec_fn=_tied_to(os.getpid()),  # only prctl and getppid run between fork and exec
    )
    try:
        wait_healthy(port, timeout_s, process, host)
        yield env
    finally:
        stop(process)
        out.close()


def _pool_template(workdir: Path, home: Path) -> Path:
    """The ``process`` pool's job template with flow runs started in ``workdir`` (relative config paths)."""
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["working_dir"]["default"] = str(workdir)
    path = home / "pool-template.json"
    path.write_text(json.dumps(template))
    return path


def _missing_deployments(env: dict[str, str]) -> list[str]:
    """Deployments of prefect.yaml the server does not have: only these are deployed, so a deployment a
    user changed in the UI (a schedule, a parameter) is never overwritten."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    wanted = [d["name"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]]
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        present = {d.name for d in client.read_deployments()}
    return [name for name in wanted if name not in present]


def serve_ui(port: int = 4200, worker: bool = True, host: str = "127.0.0.1", home: Path | None = None) -> int:
    """Server + deployments + worker until interrupted; returns the exit code for the CLI.

    ``home``: the server's PREFECT_HOME (its database), ``.prefect`` in the package directory by default.
    """
    home = (home or REPO / ".prefect").resolve()
    workdir = Path.cwd()
    if host not in LOOPBACK:
        print(
            f"mulde-vad: warning: the Prefect server listens on {host}: anyone who reaches this machine on port "
            f"{port} can run flows here, and the API has no authentication",
            file=sys.stderr,
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server and worker like Ctrl-C
    with local_server(home, port, host=host) as env:
        print(f"Prefect UI: http://{_client_host(host)}:{port}  (PREFECT_HOME={home}, runs in {workdir})", flush=True)
        if not worker:
            return _wait_forever()
        template = _pool_template(workdir, home)
        create_pool = _prefect(
            "work-pool", "create", WORK_POOL, "--type", "process", "--base-job-template", str(template), "--overwrite"
        )
        subprocess.run(create_pool, env=env, check=True)
        missing = _missing_deployments(env)
        if missing:
            names = [arg for name in missing for arg in ("--name", name)]
            deploy = _prefect("deploy", "--prefect-file", str(REPO / "prefect.yaml"), *names)
            subprocess.run(deploy, env={**env, "PWD": str(workdir)}, cwd=workdir, check=True)
        worker_process = subprocess.Popen(
            _prefect("worker", "start", "--pool", WORK_POOL), env=env, cwd=workdir, start_new_session=True
        )
        try:
            return _wait_forever()
        finally:
            stop(worker_process)


def _wait_forever() -> int:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
