"""Two thread workers extract at once through the pipeline's task runner with an exported CNN encoder.

Building the encoder (weights, then an ONNX export on the CPU) used to happen in every extraction task,
and two tasks tracing at once failed with ``TracingCheckError: Graphs differed across invocations``; now
it is built once per process under a lock and shared.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from prefect.task_runners import ThreadPoolTaskRunner

from mulde_vad.datasets.base import VideoRecord
from mulde_vad.features.extractors.cnn import MobileNetV2Bottleneck
from mulde_vad.flows.pipeline import extract_videos
from mulde_vad.storage import read_shard

pytestmark = pytest.mark.usefixtures("prefect_db")


def _frames(folder: Path, n: int = 3) -> Path:
    """``n`` 64×48 frames of a bright square moving over a dark background (one foreground box each)."""
    folder.mkdir(parents=True)
    for i in range(n):
        frame = np.full((48, 64, 3), 30, np.uint8)
        frame[14:34, 6 + 4 * i : 26 + 4 * i] = (220, 180, 90)
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    return folder


def test_two_thread_workers_extract_with_one_exported_encoder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "mnv2_random.pt"
    torch.save(MobileNetV2Bottleneck().state_dict(), weights)
    records = [VideoRecord("tiny", f"v{i}", "train", _frames(tmp_path / f"v{i}"), None) for i in range(2)]
    overrides = {
        "extractors": ["backbone"],
        "backbone": "mobilenetv2_bottleneck",
        "backbone_weights": str(weights),
        "backbone_size": 32,
        "device": "cpu",
    }
    runner = extract_videos.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
    results, failed = runner(records, "weightfree", overrides, tmp_path / "store")
    assert failed == {}
    assert sorted(r.video_id for r in results) == ["v0", "v1"] and all(r.computed for r in results)
    shards = [read_shard(r.path) for r in sorted(results, key=lambda r: r.video_id)]
    features = [s.features["backbone"] for s in shards]
    assert features[0].shape == (len(shards[0].objects.boxes), 1280) and len(features[0]) >= 3
    assert np.isfinite(features[0]).all() and features[0].std() > 0
    # the two videos are the same pictures: a shared encoder used by both threads gives the same rows
    np.testing.assert_array_equal(features[0], features[1])
