"""The same clip at two frame sizes gives the same velocity and geometry features (within flow-estimation noise)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extractors import build_extractor
from mulde_vad.features.flow import DenseFlow
from mulde_vad.storage.schema import BoxSource, ObjectTable

REFERENCE = (640, 480)  # the clip is drawn at this size, then downscaled
STEP = (24, 10)  # the object's motion per frame at the reference size: 22.6°, the middle of the first bin


def _clip(width: int) -> np.ndarray:
    """Three frames of a textured square moving by STEP over a textured background, at ``width`` pixels."""
    rng = np.random.default_rng(0)

    def texture(h: int, w: int, size: tuple[int, int]) -> np.ndarray:
        noise = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (5, 5), 0)
        return cv2.resize(noise, size, interpolation=cv2.INTER_CUBIC)

    square, background = texture(40, 40, (160, 160)), texture(60, 80, REFERENCE)
    frames = []
    for t in range(3):
        frame = background.copy()
        x, y = 160 + STEP[0] * t, 120 + STEP[1] * t
        frame[y : y + 160, x : x + 160] = square
        small = cv2.resize(frame, (width, width * 3 // 4), interpolation=cv2.INTER_AREA)
        frames.append(np.repeat(small[..., None], 3, axis=-1))
    return np.stack(frames)


def _features(width: int) -> dict[str, np.ndarray]:
    frames = _clip(width)
    scale = width / REFERENCE[0]
    box = np.array([[200, 132, 376, 308]], np.float32) * scale  # around the square in the last frame
    objects = ObjectTable(
        frame_index=np.array([2]),
        boxes=box,
        confidence=np.ones(1, np.float32),
        class_id=np.zeros(1, np.int32),
        source=np.full(1, BoxSource.DETECTOR, np.uint8),
    )
    batch = ObjectBatch(
        frames=frames,
        objects=objects,
        batch_index=np.array([2]),
        device=torch.device("cpu"),
        flows=DenseFlow("dis").sequence(None, frames),
    )
    return {name: build_extractor(name, ExtractionConfig())(batch)[0] for name in ("velocity", "geometry")}


def test_velocity_and_geometry_do_not_depend_on_the_frame_size() -> None:
    small, large = _features(320), _features(640)
    assert np.argmax(small["velocity"]) == np.argmax(large["velocity"]) == 0
    np.testing.assert_allclose(small["velocity"], large["velocity"], atol=0.1 * large["velocity"].max())
    np.testing.assert_allclose(small["geometry"], large["geometry"], atol=1e-6)
