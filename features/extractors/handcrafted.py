"""A weight-free appearance feature: colour histogram + gradient-orientation histogram of each crop.

It needs no download, so the built-in demo and tests run the real pipeline offline; with real weights
configured, CLIP or a torchvision backbone replaces it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.extractors import register

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


@register("appearance_hist")
class HandcraftedAppearance:
    """3×``colour_bins`` RGB histogram (each channel sums to 1) + 2×2 cells × ``orientation_bins`` HOG-style
    unsigned gradient histograms (L2-normalised), computed on ``crop``×``crop`` crops in one batched pass."""

    name = "appearance_hist"
    needs_flow = False
    colour_bins = 8
    orientation_bins = 8
    crop = 32

    def __init__(self, config) -> None:
        del config
        self.dim = 3 * self.colour_bins + 4 * self.orientation_bins

    def __call__(self, batch: ObjectBatch) -> np.ndarray:
        crops = batch.crops(self.crop)  # (n, 3, s, s)
        n = len(crops)
        colour_index = torch.clamp((crops * self.colour_bins).long(), max=self.colour_bins - 1).flatten(2)
        colour = torch.zeros(n, 3, self.colour_bins, device=crops.device)
        colour.scatter_add_(2, colour_index, torch.ones_like(colour_index, dtype=colour.dtype))
        colour = (colour / colour_index.shape[2]).flatten(1)

        gray = crops.mean(dim=1, keepdim=True)
        kernel = _SOBEL_X.to(crops.device)
        gx = F.conv2d(gray, kernel.view(1, 1, 3, 3), padding=1)
        gy = F.conv2d(gray, kernel.t().contiguous().view(1, 1, 3, 3), padding=1)
        magnitude = torch.sqrt(gx**2 + gy**2)
        angle = torch.remainder(torch.atan2(gy, gx), torch.pi)  # unsigned orientation
        o_index = torch.clamp((angle / torch.pi * self.orientation_bins).long(), max=self.orientation_bins - 1)
        half = self.crop // 2
        cell = (torch.arange(self.crop, device=crops.device) >= half).long()
        cell_id = (cell[:, None] * 2 + cell[None, :]).expand_as(o_index[:, 0])  # (n, s, s) in 0..3
        flat_index = (cell_id * self.orientation_bins + o_index[:, 0]).flatten(1)
        hog = torch.zeros(n, 4 * self.orientation_bins, device=crops.device)
        hog.scatter_add_(1, flat_index, magnitude.flatten(1))
        hog = hog / hog.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return torch.cat([colour, hog], dim=1).cpu().numpy()
