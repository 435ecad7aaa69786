"""Flow on a downscaled frame: same displacement field in full-size pixels, at a fraction of the cost."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mulde_vad.features.flow import DenseFlow


def shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (300, 400), dtype=np.uint8), (7, 7), 0)
    image = cv2.cvtColor(texture, cv2.COLOR_GRAY2RGB)
    return image, np.roll(image, (dy, dx), axis=(0, 1))


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_downscaled_flow_recovers_a_known_shift_in_full_size_pixels(scale):
    before, after = shifted_pair(6, -4)
    flow = DenseFlow("dis", scale)(before, after)
    assert flow.shape == (300, 400, 2)
    centre = flow[50:250, 50:350].reshape(-1, 2)
    np.testing.assert_allclose(np.median(centre, axis=0), [6, -4], atol=0.3)


def test_flow_scale_must_shrink():
    with pytest.raises(ValueError, match=r"flow scale must be in \(0, 1\]"):
        DenseFlow("dis", 2.0)
