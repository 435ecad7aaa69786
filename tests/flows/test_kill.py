"""A worker killed mid-extraction: the rerun recomputes exactly the unfinished videos, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_overrides
from prefect.settings import PREFECT_API_URL

from mulde_vad.flows.config import load_config
from mulde_vad.flows.pipeline import extract_flow
from mulde_vad.storage import FeatureStore, read_shard

SCRIPT = Path(__file__).with_name("run_fake_flow.py")
N_VIDEOS = 6


def _complete(store: FeatureStore) -> list[Path]:
    return [p for p in store.root.glob("extract/*/*.h5") if store.is_complete(p)]


@pytest.mark.usefixtures("prefect_db")
def test_killed_extraction_resumes_with_only_the_unfinished_videos(tmp_path, fake_features):
    overrides = {**tiny_overrides(tmp_path), "runner.max_workers": 1}  # one video at a time: a clean cut
    store = FeatureStore(tmp_path / "store")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the test harness's server
    worker = subprocess.Popen(
        [sys.executable, str(SCRIPT), "extract", json.dumps(overrides), "0.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_complete(store)) < 2 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)  # no cleanup, no finally blocks: like a lost machine
    finally:
        worker.wait()
    finished = {p.stem for p in _complete(store)}
    assert 2 <= len(finished) < N_VIDEOS, f"the kill should land mid-extraction, {len(finished)} done"
    assert len(store.clean_partial()) <= 1  # at most the one video that was being written

    rerun = extract_flow(load_config("demo", overrides))
    unfinished = N_VIDEOS - len(finished)
    assert (rerun.counts["extracted"], rerun.counts["extraction_skipped"]) == (unfinished, len(finished))
    assert sorted(fake_features.CALLS) == sorted(
        {f"{s}_{i:02d}" for s in ("train", "test") for i in range(3)} - finished
    )
    shards = _complete(store)
    assert sorted(p.stem for p in shards) == sorted({p.stem for p in shards})  # one shard per video
    assert len(shards) == N_VIDEOS
    assert all(read_shard(p).n_frames == 40 and len(read_shard(p).objects) == 40 for p in shards)
    assert not list(store.root.rglob("*.tmp"))
