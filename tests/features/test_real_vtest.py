"""Real YOLOv8n and MobileNetV2 weights, as they ship, on the real vtest.avi clip (when MULDE_VAD_ASSETS is set)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ASSETS = os.environ.get("MULDE_VAD_ASSETS")
pytestmark = [
    pytest.mark.skipif(
        not ASSETS or not (Path(ASSETS) / "video" / "vtest.avi").is_file(),
        reason="set MULDE_VAD_ASSETS to the assets folder (video/vtest.avi, yolo/yolov8n.pt, torch/*.pt)",
    ),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def _bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "real_assets.py"
    spec = importlib.util.spec_from_file_location("real_assets", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_yolo_finds_persons_on_most_vtest_frames_and_every_feature_is_finite() -> None:
    check = _bench().run_check(Path(ASSETS), stride=40, device="cpu")  # 20 frames spread over the clip
    assert check.frames == 795 and check.kept == 20
    assert (check.persons_per_frame > 0).mean() >= 0.9
    assert 2 <= np.median(check.persons_per_frame) <= 10  # the scene holds 2–8 walkers at a time
    assert check.feature_dims == {"appearance_hist": 56, "backbone": 1280, "geometry": 5, "velocity": 8}
    assert check.all_finite


def test_real_mobilenetv2_weights_separate_persons_from_background_better_than_random_init() -> None:
    separation = _bench().person_background_separation(Path(ASSETS), every=80, device="cpu")
    assert separation["persons"] >= 40 and separation["backgrounds"] == separation["persons"]
    assert separation["real"] >= 0.95 and separation["real"] > separation["random"]
