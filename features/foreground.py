"""AI-VAD's frame-difference boxes for moving objects the detector missed (method.md §3.2)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ForegroundParams:
    """Per-dataset thresholds of AI-VAD's ``DATASET_CFGS``."""

    binary_threshold: int = 18
    blur_kernel: int = 5
    min_contour_area: int = 40 * 40
    max_aspect_ratio: float = 10.0
    margin: int = 2


FOREGROUND_PRESETS = {
    "ped2": ForegroundParams(binary_threshold=18, blur_kernel=3, min_contour_area=10 * 10),
    "avenue": ForegroundParams(binary_threshold=18, blur_kernel=5, min_contour_area=40 * 40),
    "shanghaitech": ForegroundParams(binary_threshold=15, blur_kernel=5, min_contour_area=40 * 40),
}


def foreground_boxes(
    previous: np.ndarray, current: np.ndarray, known_boxes: np.ndarray, params: ForegroundParams
) -> np.ndarray:
    """xyxy float32 boxes of changed regions between two RGB frames, outside ``known_boxes``.

    Blur both frames, threshold their absolute difference, blank the known boxes (grown by the margin),
    take external contours, keep those with (w+1)(h+1) > min area and aspect ratio < max, grow by the margin.
    """
    k = params.blur_kernel
    diff = cv2.absdiff(cv2.GaussianBlur(previous, (k, k), 0), cv2.GaussianBlur(current, (k, k), 0))
    _, mask = cv2.threshold(diff, params.binary_threshold, 255, cv2.THRESH_BINARY)
    height, width = mask.shape[:2]
    m = params.margin
    for x1, y1, x2, y2 in np.asarray(known_boxes, dtype=np.int64).reshape(-1, 4):
        mask[max(y1 - m, 0) : min(y2 + m, height), max(x1 - m, 0) : min(x2 + m, width)] = 0
    gray = cv2.cvtColor(mask, cv2.COLOR_RGB2GRAY)
    contours, _ = cv2.findContours(gray, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), np.float32)
    rects = np.array([cv2.boundingRect(c) for c in contours], dtype=np.float32)  # x, y, w, h
    w, h = rects[:, 2], rects[:, 3]
    aspect = np.maximum(w, h) / np.maximum(np.minimum(w, h), 1)
    rects = rects[((w + 1) * (h + 1) > params.min_contour_area) & (aspect < params.max_aspect_ratio)]
    boxes = np.stack(
        [rects[:, 0] - m, rects[:, 1] - m, rects[:, 0] + rects[:, 2] + m, rects[:, 1] + rects[:, 3] + m], 1
    )
    return np.clip(boxes, 0, [width - 1, height - 1, width - 1, height - 1]).astype(np.float32)
