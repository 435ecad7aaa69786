"""What an object extractor receives: one batch of frames, the objects found in them and (lazily) their flow."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

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

    @cached_property
    def images(self) -> torch.Tensor:
        """(b, 3, H, W) float32 RGB in [0, 1] on the device, shared by every extractor of the batch."""
        return frames_to_images(self.frames, self.device)

    @cached_property
    def flow_tensor(self) -> torch.Tensor:
        """(b, 2, H, W) float32 flow on the device."""
        if self.flows is None:
            raise ValueError("this batch carries no optical flow; the extraction config computes none")
        return torch.from_numpy(self.flows).to(self.device).permute(0, 3, 1, 2)
