"""BlazePose keypoints: COCO mapping, crop ↔ frame coordinates, presence threshold, batching, clear errors.

The model here is a stand-in interpreter with BlazePose's tensor layout that finds a bright dot in each
crop, so every coordinate has a known answer; the real model runs in test_real_blazepose.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mulde_vad.features.blazepose import (
    BLAZEPOSE_TO_COCO,
    INPUT_SIZE,
    MAX_CROPS,
    BlazePose,
    LandmarkModel,
    square_regions,
    to_frame,
)
from mulde_vad.features.config import PRESETS, ExtractionConfig
from mulde_vad.features.detection import Detections
from mulde_vad.features.extract import ObjectPipeline, extract_video
from mulde_vad.features.extractors import build_extractor
from mulde_vad.features.extractors.pose import normalise_keypoints
from mulde_vad.features.weights import MissingWeightsError
from mulde_vad.features.weights_table import weight_needs
from mulde_vad.storage.schema import BoxSource, FrameChunk, ObjectChunk

CPU = torch.device("cpu")


class DotFinder:
    """Stands in for LiteRT's Interpreter with BlazePose's tensors: landmark k sits at (k, 2k) crop pixels
    from the brightness-weighted centre of the crop; the pose presence is the crop's peak brightness."""

    def __init__(self, outputs: tuple[tuple[int, ...], ...] = ((195,), (1,), (64, 64, 39))) -> None:
        self.shape, self.outputs, self.batches = [1, INPUT_SIZE, INPUT_SIZE, 3], outputs, []

    def get_input_details(self) -> list[dict]:
        return [{"index": 0, "shape": np.array(self.shape)}]

    def get_output_details(self) -> list[dict]:
        return [{"index": i + 1, "shape": np.array([self.shape[0], *s])} for i, s in enumerate(self.outputs)]

    def resize_tensor_input(self, index: int, shape: list[int]) -> None:
        self.shape = list(shape)

    def allocate_tensors(self) -> None:
        pass

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        assert value.dtype == np.float32 and value.shape == tuple(self.shape)
        self.crops = value

    def invoke(self) -> None:
        self.batches.append(len(self.crops))
        brightness = self.crops.mean(axis=-1)
        v, u = np.mgrid[:INPUT_SIZE, :INPUT_SIZE] + 0.5  # pixel centres
        total = brightness.sum(axis=(1, 2))
        centre = (
            np.stack([(brightness * u).sum(axis=(1, 2)), (brightness * v).sum(axis=(1, 2))], axis=1) / total[:, None]
        )
        landmarks = np.zeros((len(self.crops), 39, 5), np.float32)
        landmarks[..., :2] = centre[:, None] + np.arange(39)[None, :, None] * np.array([1.0, 2.0])
        self.result = {1: landmarks.reshape(-1, 195), 2: brightness.max(axis=(1, 2))[:, None]}

    def get_tensor(self, index: int) -> np.ndarray:
        return self.result[index]


def _frame_with_dots(dots: list[tuple[int, int, int]], size: tuple[int, int] = (90, 120)) -> np.ndarray:
    """A black RGB frame with a 3×3 dot of grey level g centred on pixel (x, y) for each (x, y, g)."""
    frame = np.zeros((*size, 3), np.uint8)
    for x, y, grey in dots:
        frame[y - 1 : y + 2, x - 1 : x + 2] = grey
    return frame


def _expected(dot: tuple[float, float], region_side: float) -> np.ndarray:
    """The COCO keypoints DotFinder implies in frame pixels for a dot whose pixel centre is ``dot``."""
    offsets = BLAZEPOSE_TO_COCO[:, None] * np.array([1.0, 2.0]) * region_side / INPUT_SIZE
    return np.asarray(dot) + offsets


def test_coco_keypoints_are_the_matching_blazepose_landmarks() -> None:
    # COCO order: nose, eyes (left, right), ears, shoulders, elbows, wrists, hips, knees, ankles.
    blazepose = {"nose": 0, "eye": (2, 5), "ear": (7, 8), "shoulder": (11, 12), "elbow": (13, 14)}
    blazepose |= {"wrist": (15, 16), "hip": (23, 24), "knee": (25, 26), "ankle": (27, 28)}
    expected = [blazepose["nose"]] + [i for part in list(blazepose.values())[1:] for i in part]
    assert BLAZEPOSE_TO_COCO.tolist() == expected


def test_square_region_and_crop_to_frame_coordinates_have_known_answers() -> None:
    boxes = np.array([[10, 20, 30, 60], [0, 0, 40, 10]], np.float32)  # 20×40 and 40×10
    regions = square_regions(boxes)
    np.testing.assert_allclose(regions, [[-5, 15, 45, 65], [-5, -20, 45, 30]])  # side 1.25 × 40 = 50
    crop_points = np.array([[[0, 0], [128, 0], [256, 256]]] * 2, np.float32)
    np.testing.assert_allclose(to_frame(crop_points, regions)[0], [[-5, 15], [20, 15], [45, 65]])
    np.testing.assert_allclose(to_frame(crop_points, regions)[1], [[-5, -20], [20, -20], [45, 30]])


def test_a_dot_in_the_frame_comes_back_at_its_pixel_through_crop_and_model() -> None:
    # Dots at pixels (37, 52) and (100, 30): continuous centres (37.5, 52.5) and (100.5, 30.5); the second
    # box reaches past the frame's top, so its crop is letterboxed with zeros.
    frames = np.stack([_frame_with_dots([(37, 52, 255)]), _frame_with_dots([(100, 30, 255)])])
    boxes = np.array([[30, 40, 45, 70], [90, 0, 110, 38]], np.float32)
    pose = BlazePose(LandmarkModel(DotFinder(), "fake"), CPU)
    keypoints = pose(frames, np.array([0, 1]), boxes)
    sides = square_regions(boxes)[:, 2] - square_regions(boxes)[:, 0]
    np.testing.assert_allclose(keypoints[0], _expected((37.5, 52.5), sides[0]), atol=0.05)
    np.testing.assert_allclose(keypoints[1], _expected((100.5, 30.5), sides[1]), atol=0.05)


def test_persons_below_the_presence_threshold_get_nan_keypoints() -> None:
    frame = _frame_with_dots([(20, 20, 255), (80, 50, 140)])  # peak brightness 1.0 and about 0.55
    boxes = np.array([[10, 10, 30, 40], [70, 40, 90, 70]], np.float32)
    # A score at the threshold counts as present (the first person's peak is exactly 1.0).
    for threshold, finite in ((0.5, [True, True]), (0.6, [True, False]), (1.0, [True, False])):
        keypoints = BlazePose(LandmarkModel(DotFinder(), "fake"), CPU, threshold)(frame[None], np.zeros(2, int), boxes)
        assert np.isfinite(keypoints).all(axis=(1, 2)).tolist() == finite
        assert np.isnan(keypoints[~np.asarray(finite)]).all()


def test_crops_go_to_the_model_in_batches_of_at_most_max_crops_with_the_same_answers() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 60, 80, 3), dtype=np.uint8)
    n = MAX_CROPS + 5
    corners = rng.uniform(0, 40, (n, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(8, 30, (n, 2))], axis=1).astype(np.float32)
    frame_of = rng.integers(0, 3, n)
    batched = DotFinder()
    together = BlazePose(LandmarkModel(batched, "fake"), CPU)(frames, frame_of, boxes)
    assert batched.batches == [MAX_CROPS, 5]
    alone = BlazePose(LandmarkModel(DotFinder(), "fake"), CPU)
    for i in (0, MAX_CROPS - 1, n - 1):
        np.testing.assert_allclose(together[i], alone(frames, frame_of[i : i + 1], boxes[i : i + 1])[0], rtol=1e-6)
    assert BlazePose(LandmarkModel(DotFinder(), "fake"), CPU)(frames, np.zeros(0, int), np.zeros((0, 4))).shape == (
        0,
        17,
        2,
    )


class Sink:
    def __init__(self) -> None:
        self.chunks: list[ObjectChunk] = []

    def append_objects(self, chunk: ObjectChunk) -> None:
        self.chunks.append(chunk)

    def append_frames(self, chunk: FrameChunk) -> None:
        raise AssertionError("an object config writes no frame rows")

    def finish(self, n_frames: int) -> None:
        self.n_frames = n_frames


def test_pipeline_gives_detector_persons_blazepose_keypoints_and_every_other_box_nan(tmp_path: Path) -> None:
    person, car = np.array([30, 40, 45, 70], np.float32), np.array([80, 10, 110, 30], np.float32)
    for t in range(3):  # the person's dot moves right one pixel a frame; the car has a dot too
        frame = _frame_with_dots([(37 + t, 52, 255), (95, 20, 255)])
        cv2.imwrite(str(tmp_path / f"{t}.png"), frame)
    cv2.imwrite(str(tmp_path / "3.png"), _frame_with_dots([(60, 45, 255)]))  # nothing detected: whole frame
    config = ExtractionConfig.preset(
        "yolo_blazepose", extractors=("pose", "geometry"), foreground=False, batch_size=2, device="cpu"
    )
    pipeline = ObjectPipeline.__new__(ObjectPipeline)  # no YOLO or BlazePose weights in tests: fake models
    pipeline.config, pipeline.device, pipeline.flow, pipeline.pose = config, CPU, None, None
    pipeline.extractors = [build_extractor(name, config) for name in config.extractors]
    both, none = np.stack([person, car]), np.zeros((0, 4), np.float32)
    pipeline.detector = lambda frames: [
        Detections(both, np.full(2, 0.9, np.float32), np.array([0, 2], np.int32))
        if frame[20, 95].any()  # the car's dot: frames 0-2
        else Detections(none, np.zeros(0, np.float32), np.zeros(0, np.int32))
        for frame in frames
    ]
    pipeline.landmarks = BlazePose(LandmarkModel(DotFinder(), "fake"), CPU)
    sink = Sink()
    summary = extract_video(tmp_path, config, sink, pipeline=pipeline)
    pose = np.concatenate([c.features["pose"] for c in sink.chunks])
    objects = [c.objects for c in sink.chunks]
    classes = np.concatenate([o.class_id for o in objects]).tolist()
    sources = np.concatenate([o.source for o in objects]).tolist()
    assert sink.n_frames == 4 and classes == [0, 2] * 3 + [0] and summary.seconds["pose"] > 0
    side = square_regions(person[None])[0, 2] - square_regions(person[None])[0, 0]
    for t in range(3):
        expected = normalise_keypoints(_expected((37.5 + t, 52.5), side)[None], person[None])[0]
        np.testing.assert_allclose(pose[2 * t], expected, atol=0.01)
        assert np.isnan(pose[2 * t + 1]).all()  # a car: no person, no pose
    assert sources[-1] == BoxSource.WHOLE_FRAME and np.isnan(pose[-1]).all()  # class 0, but not a detected person


def test_a_model_without_blazepose_outputs_is_refused_naming_the_file() -> None:
    with pytest.raises(ValueError, match=r"detector\.tflite: not a BlazePose landmark model"):
        LandmarkModel(DotFinder(outputs=((1917, 4), (1917, 24))), "detector.tflite")


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MULDE_VAD_WEIGHTS", str(tmp_path))
    return tmp_path


def test_missing_weights_say_which_npm_package_holds_them(weights_dir: Path) -> None:
    config = ExtractionConfig.preset("yolo_blazepose", device="cpu")
    with pytest.raises(MissingWeightsError, match=r"pose_landmark_full\.tflite.*npm pack @mediapipe/pose@"):
        BlazePose.load(config, CPU)
    needs = {n.field: n for n in weight_needs(config)}
    assert needs["pose_weights"].model == "pose (BlazePose, LiteRT)"
    assert needs["pose_weights"].resolution.status == "missing"


def test_missing_runtime_names_the_pose_extra(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (weights_dir / "pose_landmark_full.tflite").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as if ai-edge-litert were not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(ImportError, match=r"pip install 'mulde-vad\[pose\]'"):
        BlazePose.load(ExtractionConfig.preset("yolo_blazepose"), CPU)


def test_a_file_that_is_not_tflite_is_refused_naming_it(weights_dir: Path) -> None:
    (weights_dir / "pose_landmark_full.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match=r"pose_landmark_full\.tflite: not a TFLite model"):
        BlazePose.load(ExtractionConfig.preset("yolo_blazepose"), CPU)


def test_presence_threshold_is_validated_and_hashed_only_by_blazepose_configs() -> None:
    with pytest.raises(ValueError, match="pose_presence_threshold"):
        ExtractionConfig(pose_presence_threshold=1.5)
    for no_persons in ({"detector_weights": None}, {"detector_classes": (2, 7)}):
        with pytest.raises(ValueError, match=r"runs on the detector's person boxes: set detector_weights"):
            ExtractionConfig.preset("yolo_blazepose", **no_persons)
    blazepose = PRESETS["yolo_blazepose"]
    assert blazepose.uses_blazepose and blazepose.to_dict()["pose_presence_threshold"] == 0.5
    assert not PRESETS["yolo_mobilenet"].uses_blazepose
    assert "pose_presence_threshold" not in PRESETS["yolo_mobilenet"].to_dict()
    yolo_pose = ExtractionConfig(extractors=("pose",), pose_weights="yolov8n-pose.pt")
    assert "pose_presence_threshold" not in yolo_pose.to_dict()
