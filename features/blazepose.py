"""BlazePose keypoints for each detected person: MediaPipe's landmark model on a square crop around its box.

The crop is a square of ``CROP_SCALE`` × the box's longer edge centred on the box (MediaPipe enlarges its
own pose region by the same factor), zero-padded where it leaves the frame: a letterbox that keeps the
aspect. It is resized to the model's 256×256 input; the BlazePose landmarks that have a COCO counterpart
are mapped back to frame pixels, so the ``pose`` extractor normalises them exactly as YOLO-pose keypoints.
The model runs in LiteRT (``pip install 'mulde-vad[pose]'``), imported only when a config uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mulde_vad.features.batch import frames_to_images
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.crops import crop_boxes
from mulde_vad.features.extractors.pose import N_KEYPOINTS
from mulde_vad.features.weights import require_file

# BlazePose landmark of each COCO keypoint: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
BLAZEPOSE_TO_COCO = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
INPUT_SIZE = 256
N_LANDMARKS = 39  # 33 body landmarks, then 6 auxiliary points MediaPipe uses to track its region
LANDMARK_VALUES = 5  # x, y (input pixels), z, visibility and presence logits
CROP_SCALE = 1.25
MAX_CROPS = 32  # crops per interpreter call: bounds the activations held at once

LandmarkRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def square_regions(boxes: np.ndarray, scale: float = CROP_SCALE) -> np.ndarray:
    """(n, 4) xyxy squares of side ``scale`` × the longer edge of each xyxy box, centred on it."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = scale * (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True) / 2
    return np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)


def to_frame(points: np.ndarray, regions: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(n, k, 2) points in the pixels of a ``size``² crop of each square region → frame pixels."""
    side = regions[:, None, 2:] - regions[:, None, :2]
    return (regions[:, None, :2] + points * side / size).astype(np.float32)


def load_interpreter(path: Path, threads: int) -> Any:
    """A LiteRT interpreter for ``path``; the ``pose`` extra provides the runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError(
            f"pose_weights={path.name!r} is a BlazePose .tflite model, run by ai-edge-litert: "
            "pip install 'mulde-vad[pose]'"
        ) from error
    try:
        return Interpreter(model_path=str(path), num_threads=threads)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: not a TFLite model LiteRT can load ({error})") from error


class LandmarkModel:
    """A BlazePose landmark model in a LiteRT interpreter: a batch of crops in one call.

    The batch dimension is resized to the number of crops (the published models take any batch size and
    give each crop the same result as alone); its outputs are found by shape: (n, 195) landmarks and
    (n, 1) pose presence, a probability.
    """

    def __init__(self, interpreter: Any, source: str) -> None:
        self.interpreter = interpreter
        (inputs,) = interpreter.get_input_details()
        outputs = {tuple(d["shape"][1:]): d["index"] for d in interpreter.get_output_details()}
        landmarks, presence = (N_LANDMARKS * LANDMARK_VALUES,), (1,)
        if tuple(inputs["shape"][1:]) != (INPUT_SIZE, INPUT_SIZE, 3) or not {landmarks, presence} <= set(outputs):
            raise ValueError(
                f"{source}: not a BlazePose landmark model (input {list(inputs['shape'])}, outputs "
                f"{sorted(outputs)}); use pose_landmark_lite, _full or _heavy.tflite from MediaPipe"
            )
        self.input, self.landmarks, self.presence = inputs["index"], outputs[landmarks], outputs[presence]
        self.batch = int(inputs["shape"][0])
        interpreter.allocate_tensors()

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 256, 256, 3) float32 RGB in [0, 1] → landmarks (n, 39, 5) and pose presence (n,)."""
        if len(crops) != self.batch:
            self.interpreter.resize_tensor_input(self.input, [len(crops), INPUT_SIZE, INPUT_SIZE, 3])
            self.interpreter.allocate_tensors()
            self.batch = len(crops)
        self.interpreter.set_tensor(self.input, crops)
        self.interpreter.invoke()
        landmarks = self.interpreter.get_tensor(self.landmarks).reshape(len(crops), N_LANDMARKS, LANDMARK_VALUES)
        return landmarks, self.interpreter.get_tensor(self.presence).reshape(len(crops))


@dataclass
class BlazePose:
    """COCO-17 keypoints in frame pixels for person boxes; NaN where the pose-presence score is too low."""

    model: LandmarkRunner
    device: torch.device
    presence_threshold: float = 0.5

    @classmethod
    def load(cls, config: ExtractionConfig, device: torch.device) -> BlazePose:
        path = require_file(config.pose_weights, "BlazePose", "pose_weights")
        model = LandmarkModel(load_interpreter(path, torch.get_num_threads()), str(path))
        return cls(model, device, config.pose_presence_threshold)

    def __call__(self, frames: np.ndarray, batch_index: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(n, 17, 2) keypoints of the xyxy ``boxes`` (n, 4), box i in ``frames[batch_index[i]]`` (b, H, W, 3)."""
        out = np.full((len(boxes), N_KEYPOINTS, 2), np.nan, np.float32)
        if not len(boxes):
            return out
        images = frames_to_images(frames, self.device)
        regions = square_regions(boxes)
        for start in range(0, len(boxes), MAX_CROPS):
            part = slice(start, start + MAX_CROPS)
            crops = crop_boxes(images, batch_index[part], regions[part], INPUT_SIZE).permute(0, 2, 3, 1)
            landmarks, presence = self.model(np.ascontiguousarray(crops.cpu().numpy(), dtype=np.float32))
            keypoints = to_frame(landmarks[:, BLAZEPOSE_TO_COCO, :2], regions[part])
            keypoints[presence < self.presence_threshold] = np.nan
            out[part] = keypoints
        return out
