"""Dense optical flow between consecutive frames with OpenCV (DIS or Farnebäck); no weights needed."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

FlowMethod = Literal["dis", "farneback"]


class DenseFlow:
    """``flow(previous_rgb, current_rgb) -> (H, W, 2)`` float32 displacement of each pixel, in pixels."""

    def __init__(self, method: FlowMethod = "dis") -> None:
        if method not in ("dis", "farneback"):
            raise ValueError(f"flow method must be 'dis' or 'farneback', got {method!r}")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        a, b = cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY), cv2.cvtColor(current, cv2.COLOR_RGB2GRAY)
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def sequence(self, previous: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        """(b, H, W, 2) flow of each frame from its predecessor; ``previous`` None means the video starts here."""
        out = np.empty((*frames.shape[:3], 2), np.float32)
        for i, frame in enumerate(frames):
            before = frames[i - 1] if i else (frame if previous is None else previous)
            out[i] = self(before, frame)
        return out
