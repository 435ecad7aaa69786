"""The real BlazePose (full) landmark model on real YOLOv8n person boxes of vtest.avi (when MULDE_VAD_ASSETS is set)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mulde_vad.features.blazepose import BlazePose, square_regions
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.decode import open_video
from mulde_vad.features.detection import PERSON, YoloDetector

ASSETS = Path(os.environ.get("MULDE_VAD_ASSETS", "/nonexistent"))
NEEDED = ("video/vtest.avi", "yolo/yolov8n.pt", "tflite/pose_landmark_full.tflite")
pytestmark = [
    pytest.mark.skipif(
        not all((ASSETS / name).is_file() for name in NEEDED),
        reason=f"real weights and footage are not in the repository: set MULDE_VAD_ASSETS to a folder with {NEEDED}",
    ),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def test_blazepose_keypoints_of_real_walkers_are_upright_and_inside_their_crop() -> None:
    config = ExtractionConfig.preset(
        "yolo_blazepose",
        detector_weights=str(ASSETS / "yolo" / "yolov8n.pt"),
        pose_weights=str(ASSETS / "tflite" / "pose_landmark_full.tflite"),
        device="cpu",
    )
    frames = next(iter(open_video(ASSETS / "video" / "vtest.avi", stride=100).iter_batches(8))).frames
    detector = YoloDetector(config.detector_weights, classes=(PERSON,), device="cpu")
    found = detector(frames)
    boxes = np.concatenate([d.boxes for d in found])
    frame_of = np.repeat(np.arange(len(frames)), [len(d.boxes) for d in found])
    keypoints = BlazePose.load(config, torch.device("cpu"))(frames, frame_of, boxes)
    posed = np.isfinite(keypoints).all(axis=(1, 2))
    assert len(boxes) >= 20 and posed.mean() >= 0.8  # vtest's walkers are upright and mostly unoccluded
    kp, regions = keypoints[posed], square_regions(boxes[posed])
    y = kp[..., 1]
    nose, shoulders, hips, ankles = y[:, 0], y[:, 5:7].mean(1), y[:, 11:13].mean(1), y[:, 15:17].mean(1)
    assert (nose < shoulders).mean() >= 0.9 and (shoulders < hips).all() and (hips < ankles).all()
    inside = (kp >= regions[:, None, :2]) & (kp <= regions[:, None, 2:])
    assert inside.all()
    box_height = boxes[posed, 3] - boxes[posed, 1]
    assert np.median((ankles - nose) / box_height) > 0.7  # the skeleton spans the person, not a corner


def test_background_crops_get_no_pose() -> None:
    config = ExtractionConfig.preset(
        "yolo_blazepose", pose_weights=str(ASSETS / "tflite" / "pose_landmark_full.tflite")
    )
    frames = next(iter(open_video(ASSETS / "video" / "vtest.avi", stride=400).iter_batches(2))).frames
    # Person-sized boxes on the empty pavement and lawn at the bottom left of the scene.
    boxes = np.array([[20, 450, 60, 540], [120, 470, 160, 560], [40, 380, 80, 470]], np.float32)
    keypoints = BlazePose.load(config, torch.device("cpu"))(frames, np.zeros(len(boxes), int), boxes)
    assert np.isnan(keypoints).all()
