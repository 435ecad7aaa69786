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


def test_bf16_yolo_finds_the_same_boxes_as_fp32_on_real_frames() -> None:
    """cpu_precision bf16 keeps real YOLOv8n's boxes: each fp32 box has a bf16 box at IoU ≥ 0.9 (before the
    box decoder was kept at float32, half of them fell below)."""
    import torch
    from torchvision.ops import box_iou

    from mulde_vad.features.decode import open_video
    from mulde_vad.features.detection import YoloDetector

    frames = next(open_video(Path(ASSETS) / "video" / "vtest.avi").iter_batches(16)).frames
    weights = Path(ASSETS) / "yolo" / "yolov8n.pt"
    fp32, bf16 = (YoloDetector(weights, cpu_precision=p)(frames) for p in ("fp32", "bf16"))
    best = [
        box_iou(torch.from_numpy(a.boxes), torch.from_numpy(b.boxes)).max(dim=1).values.numpy()
        for a, b in zip(fp32, bf16, strict=True)
        if len(a.boxes) and len(b.boxes)
    ]
    best = np.concatenate(best)
    assert len(best) == sum(len(a.boxes) for a in fp32) >= 50  # every frame with a box kept one in bf16
    assert (best >= 0.9).mean() >= 0.95 and np.median(best) >= 0.98
    assert abs(sum(len(b.boxes) for b in bf16) - len(best)) <= 0.05 * len(best)


def test_onnxruntime_yolo_finds_torch_s_boxes_on_real_frames() -> None:
    """The CPU detector (YOLOv8n through onnxruntime) returns the boxes of ultralytics' own torch run."""
    from mulde_vad.features.decode import open_video
    from mulde_vad.features.detection import YoloDetector, load_yolo

    frames = next(open_video(Path(ASSETS) / "video" / "vtest.avi").iter_batches(16)).frames
    weights = Path(ASSETS) / "yolo" / "yolov8n.pt"
    found = YoloDetector(weights, device="cpu")(frames)
    bgr = [np.ascontiguousarray(frame[..., ::-1]) for frame in frames]
    expected = load_yolo(str(weights)).predict(bgr, conf=0.5, device="cpu", verbose=False)
    assert sum(len(f.boxes) for f in found) >= 50
    for ours, theirs in zip(found, expected, strict=True):
        np.testing.assert_allclose(ours.boxes, theirs.boxes.xyxy.numpy(), atol=1e-2)
        np.testing.assert_allclose(ours.confidence, theirs.boxes.conf.numpy(), atol=1e-4)
