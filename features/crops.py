"""Batched crops of many boxes from many frames at once: torchvision ``roi_align`` (aligned, 2×2 samples per
output pixel), computed on the CPU as two small matrix products per box.

``roi_align`` samples each output pixel at 2×2 points of its bin, bilinearly, and averages them. Along x the
weights depend only on x, along y only on y, and a sample outside the frame is zero when either coordinate
is: so the crop of a box is ``Wy @ patch @ Wx.T`` per channel, with ``Wy`` (size × patch height) and ``Wx``
(size × patch width) the summed sample weights. On the CPU that is 10-20× cheaper than ``roi_align``'s
per-sample loop and reads only the box's pixels (no float copy of whole frames); it equals ``roi_align``
to float32 rounding (tests/features/test_crops.py). On a GPU ``roi_align`` itself is used.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torchvision.ops import roi_align

#: Sample points per output pixel along each axis, as the crops were always taken (roi_align sampling_ratio).
SAMPLING_RATIO = 2


def crop_boxes(images: torch.Tensor, batch_index: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """(n, C, size, size) crops of xyxy ``boxes`` from ``images`` (b, C, H, W) by ``roi_align``, one call."""
    if len(boxes) == 0:
        return images.new_zeros((0, images.shape[1], size, size))
    rois = torch.cat(
        [
            torch.as_tensor(batch_index, dtype=images.dtype, device=images.device)[:, None],
            torch.as_tensor(boxes, dtype=images.dtype, device=images.device),
        ],
        dim=1,
    )
    return roi_align(
        images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=SAMPLING_RATIO, aligned=True
    )


def axis_weights(start: float, end: float, size: int, length: int) -> tuple[int, np.ndarray]:
    """(first pixel, (size, span) weights): ``roi_align``'s samples of [start, end] along an axis of ``length``
    pixels, as weights of the pixels first … first + span − 1 (its clamping and out-of-frame rules)."""
    step = (end - start) / size
    offsets = (np.arange(SAMPLING_RATIO) + 0.5) / SAMPLING_RATIO
    t = start - 0.5 + step * (np.arange(size)[:, None] + offsets[None, :])  # aligned: pixel centres at +0.5
    valid = (t >= -1.0) & (t <= length)
    t = np.maximum(t, 0.0)
    low = np.floor(t).astype(np.int64)
    at_end = low >= length - 1
    low = np.where(at_end, length - 1, low)
    high = np.where(at_end, length - 1, low + 1)
    frac = np.where(at_end, 0.0, t - low) * valid / SAMPLING_RATIO
    first = int(low.min())
    weights = np.zeros((size, int(high.max()) - first + 1))
    rows = np.broadcast_to(np.arange(size)[:, None], low.shape)
    np.add.at(weights, (rows, low - first), valid / SAMPLING_RATIO - frac)
    np.add.at(weights, (rows, high - first), frac)
    return first, weights.astype(np.float32)


def crop_box(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """(C, size, size) float32 crop of one xyxy ``box`` from ``frame`` (H, W, C), as ``roi_align`` cuts it."""
    height, width, _ = frame.shape
    y0, wy = axis_weights(float(box[1]), float(box[3]), size, height)
    x0, wx = axis_weights(float(box[0]), float(box[2]), size, width)
    patch = frame[y0 : y0 + wy.shape[1], x0 : x0 + wx.shape[1]].transpose(2, 0, 1).astype(np.float32)  # (C, h, w)
    # (C, h, w) → (C, size, size); resampling the shorter side of the patch last costs the fewest products
    return (wy @ patch) @ wx.T if patch.shape[2] <= patch.shape[1] else wy @ (patch @ wx.T)


@functools.cache
def _blas() -> ThreadpoolController:
    """numpy's BLAS, found once (the libraries loaded with numpy)."""
    return ThreadpoolController()


def crop_frames(
    frames: np.ndarray, batch_index: np.ndarray, boxes: np.ndarray, size: int, scale: float = 1.0
) -> torch.Tensor:
    """(n, C, size, size) float32 crops of xyxy ``boxes`` from ``frames`` (b, H, W, C), times ``scale``
    (1/255 turns uint8 pixels into [0, 1]); box i is cut from frame ``batch_index[i]``.

    The products run on one BLAS thread: they are small, and OpenBLAS threads waiting between them took 20×
    the CPU time of the products themselves on a busy 2-core machine (and left less for the other stages).
    """
    out = np.empty((len(boxes), frames.shape[3], size, size), np.float32)
    with _blas().limit(limits=1, user_api="blas"):
        for i, (index, box) in enumerate(zip(batch_index, boxes, strict=True)):
            out[i] = crop_box(frames[index], box, size)
    if scale != 1.0:
        out *= np.float32(scale)
    return torch.from_numpy(out)
