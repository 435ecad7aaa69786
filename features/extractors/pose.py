"""Pose feature: 17 COCO keypoints per person relative to its box, (x − x1)/w and (y − y1)/h, flattened to 34-d.

Keypoints come from a YOLO-pose model (``pose_weights``), matched to the object boxes by IoU, or from a
BlazePose landmark model run on each detector person box (``features.blazepose``); objects without a
person pose (foreground blobs, vehicles, whole frames, persons BlazePose finds no pose in) get a NaN row,
which readers drop (AI-VAD's pose count per frame is likewise independent of its box count, method.md §3.2).
"""

from __future__ import annotations

import numpy as np

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.extractors import register

N_KEYPOINTS = 17


def normalise_keypoints(keypoints: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n, 17, 2) pixel keypoints and (n, 4) xyxy boxes → (n, 34) [x0, y0, x1, y1, …] in box units."""
    origin = boxes[:, None, :2]
    extent = np.maximum(boxes[:, None, 2:] - boxes[:, None, :2], 1.0)
    return ((keypoints - origin) / extent).reshape(len(keypoints), 2 * N_KEYPOINTS).astype(np.float32)


@register("pose")
class PoseExtractor:
    name = "pose"
    dim = 2 * N_KEYPOINTS
    needs_flow = False

    def __init__(self, config) -> None:
        if config.pose_weights is None:
            raise ValueError(
                "the 'pose' extractor needs pose_weights: a YOLO-pose model such as yolov8n-pose.pt, or a BlazePose "
                "landmark model such as pose_landmark_full.tflite"
            )

    def __call__(self, batch: ObjectBatch) -> np.ndarray:
        if batch.keypoints is None:
            raise ValueError("this batch carries no keypoints; the pipeline ran no pose model")
        return normalise_keypoints(batch.keypoints, batch.objects.boxes)
