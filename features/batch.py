"""What an object extractor receives: one batch of frames, the objects found in them and (lazily) their flow."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from mulde_vad.features.crops import crop_boxes, crop_frames
from mulde_vad.storage.schema import ObjectTable


def frames_to_images(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(b, H, W, 3) uint8 RGB frames → (b, 3, H, W) float32 in [0, 1] on ``device``."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255)


@dataclass
class ObjectBatch:
    """Frames (b, H, W, 3) uint8 RGB and their objects; ``batch_index`` (n,) maps each object to its frame row.

    ``flows`` (b, H, W, 2) float32 holds the optical flow from each frame's predecessor when an extractor
    needs it (the first frame of a video gets zero flow, as AI-VAD repeats the frame). ``keypoints``
    (n, 17, 2) pixel coordinates align with the objects (NaN where no person was matched) when a pose
    model runs.
    """

    frames: np.ndarray
    objects: ObjectTable
    batch_index: np.ndarray
    device: torch.device
    flows: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def crops(self, size: int) -> torch.Tensor:
        """(n, 3, size, size) float32 RGB crops in [0, 1] of every object, on the device (``features.crops``)."""
        if self.device.type == "cpu":
            return crop_frames(self.frames, self.batch_index, self.objects.boxes, size, scale=1 / 255)
        return crop_boxes(self.images, self.batch_index, self.objects.boxes, size)

    def flow_crops(self, size: int) -> torch.Tensor:
        """(n, 2, size, size) float32 crops of every object's flow, vectors as they are (not rescaled)."""
        if self.flows is None:
            raise ValueError("this batch carries no optical flow; the extraction config computes none")
        if self.device.type == "cpu":
            return crop_frames(self.flows, self.batch_index, self.objects.boxes, size)
        return crop_boxes(self.flow_tensor, self.batch_index, self.objects.boxes, size)

    @cached_property
    def images(self) -> torch.Tensor:
        """(b, 3, H, W) float32 RGB in [0, 1] on the device, the frames GPU crops are cut from (once per batch)."""
        return frames_to_images(self.frames, self.device)

    @cached_property
    def flow_tensor(self) -> torch.Tensor:
        """(b, 2, H, W) float32 flow on the device."""
        return torch.from_numpy(self.flows).to(self.device).permute(0, 3, 1, 2)
