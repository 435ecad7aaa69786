"""Batched crops of many boxes from many frames at once, on the device (torchvision ``roi_align``)."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align


def crop_boxes(images: torch.Tensor, batch_index: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """(n, C, size, size) bilinear crops of xyxy ``boxes`` from ``images`` (b, C, H, W); one call for all boxes."""
    if len(boxes) == 0:
        return images.new_zeros((0, images.shape[1], size, size))
    rois = torch.cat(
        [
            torch.as_tensor(batch_index, dtype=images.dtype, device=images.device)[:, None],
            torch.as_tensor(boxes, dtype=images.dtype, device=images.device),
        ],
        dim=1,
    )
    return roi_align(images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)
