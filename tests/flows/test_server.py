"""A local Prefect server (127.0.0.1, SQLite) shows the flow run and its artifacts through the API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_overrides

from mulde_vad.flows.ui import local_server

SCRIPT = Path(__file__).with_name("run_fake_flow.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _runs_and_artifacts(api_url: str) -> tuple[list, dict]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with PrefectClient(api_url) as client:
        runs = await client.read_flow_runs()
        artifacts = {}
        for run in runs:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            artifacts[run.name] = found
        flows = {f.id: f.name for f in await client.read_flows()}
        return [(flows[r.flow_id], r.state.type.value) for r in runs], {
            k: sorted((a.key or "", a.type) for a in v) for k, v in artifacts.items()
        }


def test_flow_run_and_artifacts_are_visible_in_a_local_server(tmp_path):
    with contextlib.ExitStack() as stack:
        try:
            env = stack.enter_context(local_server(tmp_path / "prefect-home", port=_free_port(), timeout_s=45))
        except (RuntimeError, TimeoutError, OSError) as exc:
            pytest.skip(f"the Prefect server could not start here: {exc}")
        run = subprocess.run(
            [sys.executable, str(SCRIPT), "pipeline", json.dumps(tiny_overrides(tmp_path, "served")), "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        runs, artifacts = asyncio.run(_runs_and_artifacts(env["PREFECT_API_URL"]))

    assert ("pipeline", "COMPLETED") in runs
    assert ("extract-videos", "COMPLETED") in runs  # the extraction subflow
    kinds = [kind for found in artifacts.values() for kind in found]
    assert ("served-report", "markdown") in kinds
    assert ("served-auc", "table") in kinds
    assert ("served-plots", "markdown") in kinds
    assert any(kind == ("", "progress") for kind in kinds)
