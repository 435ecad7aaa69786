"""Box geometry relative to the frame: where an object is and how large, for "wrong place / wrong size" anomalies."""

from __future__ import annotations

import numpy as np

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.extractors import register


@register("geometry")
class GeometryExtractor:
    """[centre x / W, centre y / H, width / W, height / H, log(height / width)]."""

    name = "geometry"
    dim = 5
    needs_flow = False

    def __init__(self, config) -> None:
        del config

    def __call__(self, batch: ObjectBatch) -> np.ndarray:
        height, width = batch.frames.shape[1:3]
        x1, y1, x2, y2 = batch.objects.boxes.T.astype(np.float64)
        w, h = np.maximum(x2 - x1, 1.0), np.maximum(y2 - y1, 1.0)
        return np.stack([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, w / width, h / height, np.log(h / w)], 1)
