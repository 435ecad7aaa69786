"""Deep appearance features: batched crops through an image encoder (CLIP, torchvision, TorchScript).

Every encoder shares the same path: all boxes of a batch are cut at once (``ObjectBatch.crops``),
normalised, and encoded in chunks; only the encoder differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from mulde_vad.features.batch import ObjectBatch

# Crops per forward pass: bounds activation memory on crowded frames (a 224 px MobileNetV2 needs ~5 MB per
# crop in its widest layer). GPUs gain from large batches; on the CPU the cost per crop rises past 16 as
# activations leave the caches (MobileNetV2 at bfloat16: 2.6 ms per crop at 4-32, 3.3 at 56).
ENCODE_CHUNK = {"cpu": 16, "cuda": 256}
# On the CPU the last chunk is zero-padded to a multiple of this: OpenVINO prepares its kernels for each new
# batch shape on first sight (tens of ms), which a short video with 1…16 crops per chunk would pay 16 times.
CPU_BATCH_STEP = 4


def inference(device: torch.device) -> contextlib.ExitStack:
    """No autograd, and fp16 autocast on CUDA (AI-VAD's CLIP features were fp16 too); CPU stays fp32."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if device.type == "cuda":
        stack.enter_context(torch.autocast("cuda", dtype=torch.float16))
    return stack


def strip_classifier(model: nn.Module) -> int:
    """Replace the model's last ``nn.Linear`` (its classification head) by the identity; return its input width.

    Works for torchvision image and video classifiers (resnet ``fc``, mobilenet/efficientnet ``classifier``,
    vit ``heads.head``, swin/mvit ``head``): what remains is the pooled feature the head used to read.
    """
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Linear head to remove; export it as a TorchScript module")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    width = getattr(parent, child).in_features
    setattr(parent, child, nn.Identity())
    return width


class CropEncoder:
    """An object extractor from an image encoder: (n, 3, size, size) normalised crops → (n, dim) features."""

    needs_flow = False

    def __init__(
        self,
        name: str,
        encode: Callable[[torch.Tensor], torch.Tensor],
        dim: int,
        *,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        bgr: bool = False,
    ) -> None:
        self.name, self.encode, self.dim, self.size, self.bgr = name, encode, dim, size, bgr
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)

    def __call__(self, batch: ObjectBatch) -> np.ndarray:
        return self.features(batch.crops(self.size))

    def features(self, crops: torch.Tensor) -> np.ndarray:
        """(n, 3, size, size) RGB crops in [0, 1] → (n, dim) rows: normalised, then encoded in chunks."""
        if self.bgr:
            crops = crops.flip(1)
        with inference(crops.device):  # normalised chunk by chunk, while the chunk is in the caches
            rows = [self.encode((part - self.mean) / self.std).float() for part in chunks(crops)]
        return torch.cat(rows)[: len(crops)].reshape(len(crops), self.dim).cpu().numpy()


def chunks(crops: torch.Tensor) -> list[torch.Tensor]:
    """``crops`` split into forward passes of ``ENCODE_CHUNK`` rows; on the CPU the last one zero-padded to a
    multiple of ``CPU_BATCH_STEP`` rows (their outputs are dropped)."""
    parts = list(crops.split(ENCODE_CHUNK.get(crops.device.type, ENCODE_CHUNK["cpu"])))
    short = -len(parts[-1]) % CPU_BATCH_STEP
    if crops.device.type == "cpu" and short:
        parts[-1] = torch.cat([parts[-1], parts[-1].new_zeros((short, *crops.shape[1:]))])
    return parts
