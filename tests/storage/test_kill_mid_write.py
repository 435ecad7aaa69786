"""A writer killed with SIGKILL mid-shard leaves nothing that reads as complete, and the leftover is cleanable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from mulde_vad.storage import FeatureStore, FrameChunk, ShardWriter, make_provenance

CONFIG = {"stage": "kill-test"}

_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from mulde_vad.storage import FeatureStore, FrameChunk, ShardWriter, make_provenance

    store = FeatureStore(sys.argv[1])
    path = store.shard_path("frames", {"stage": "kill-test"}, "victim")
    rows = np.ones((256, 1024), np.float32)
    with ShardWriter(path, kind="frame", provenance=make_provenance(video=None, config={"stage": "kill-test"})) as w:
        for i in range(100_000):  # far more than the test waits for
            w.append_frames(FrameChunk(i * 256, {"x": rows}))
            if i == 2:
                print("writing", flush=True)
        w.finish(100_000 * 256)
    """
)


def test_sigkill_mid_write_leaves_no_complete_shard(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    directory = store.stage_dir("frames", CONFIG)
    # A finished shard of another video must survive both the crash and the cleanup.
    survivor = store.shard_path("frames", CONFIG, "survivor")
    with ShardWriter(survivor, kind="frame", provenance=make_provenance(video=None, config=CONFIG)) as writer:
        writer.append_frames(FrameChunk(0, {"x": np.zeros((2, 1024), np.float32)}))
        writer.finish(2)

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        time.sleep(0.2)
        temps = list(directory.glob(".victim.h5.*.tmp"))
        assert len(temps) == 1 and temps[0].stat().st_size > 1 << 20  # it really was mid-write
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    victim = store.shard_path("frames", CONFIG, "victim")
    assert not victim.exists()
    assert not store.is_complete(victim)
    assert not store.is_complete(temps[0])  # even opened directly, the leftover is never complete
    assert store.shards("frames", CONFIG) == [survivor]

    assert store.clean_partial() == temps
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "survivor.h5"]
    assert store.is_complete(survivor)


def test_clean_partial_spares_live_writers(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = store.shard_path("frames", CONFIG, "live")
    with ShardWriter(path, kind="frame", provenance=make_provenance(video=None, config=CONFIG)) as writer:
        assert store.clean_partial() == []  # this process is alive
        writer.append_frames(FrameChunk(0, {"x": np.zeros((1, 2), np.float32)}))
        writer.finish(1)
    assert store.is_complete(path)
