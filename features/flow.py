"""Dense optical flow from each frame's predecessor: OpenCV DIS / Farnebäck (no weights) or torchvision RAFT."""

from __future__ import annotations

from typing import Literal, Protocol

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from mulde_vad.features.weights import load_weights

FlowMethod = Literal["dis", "farneback", "raft_small", "raft_large"]


class FlowModel(Protocol):
    def sequence(self, previous: np.ndarray | None, frames: np.ndarray) -> np.ndarray: ...


def predecessors(previous: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
    """The frame before each of ``frames``; the first frame of a video is its own predecessor (as in AI-VAD)."""
    first = frames[:1] if previous is None else previous[None]
    return np.concatenate([first, frames[:-1]])


class DenseFlow:
    """``flow(previous_rgb, current_rgb) -> (H, W, 2)`` float32 displacement of each pixel, in pixels."""

    def __init__(self, method: FlowMethod = "dis", scale: float = 1.0) -> None:
        if method not in ("dis", "farneback"):
            raise ValueError(f"flow method must be 'dis' or 'farneback', got {method!r}")
        if not 0 < scale <= 1:
            raise ValueError(f"flow scale must be in (0, 1], got {scale}")
        self.method, self.scale = method, scale
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        a, b = cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY), cv2.cvtColor(current, cv2.COLOR_RGB2GRAY)
        if self.scale == 1:
            return self._flow(a, b)
        height, width = a.shape
        small = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        flow = self._flow(
            cv2.resize(a, small, interpolation=cv2.INTER_AREA), cv2.resize(b, small, interpolation=cv2.INTER_AREA)
        )
        # back to full size; the vectors grow with the image (x by width ratio, y by height ratio)
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= width / small[0]
        flow[..., 1] *= height / small[1]
        return flow

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def sequence(self, previous: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        """(b, H, W, 2) flow of each frame from its predecessor; ``previous`` None means the video starts here."""
        out = np.empty((*frames.shape[:3], 2), np.float32)
        for i, (before, frame) in enumerate(zip(predecessors(previous, frames), frames, strict=True)):
            out[i] = self(before, frame)  # OpenCV flow is per pair; one call per frame is the floor
        return out


RAFT_MIN_SIZE = 128  # RAFT's correlation pyramid needs feature maps of at least 16 × 16 (= 128 px)


def _raft_padding(size: int) -> int:
    """Pixels to add so that ``size`` becomes a multiple of 8 and at least RAFT_MIN_SIZE."""
    return max(RAFT_MIN_SIZE, size + -size % 8) - size


class RaftFlow:
    """torchvision RAFT on the device, all pairs of a batch in one forward pass (edges replicated to ×8, ≥ 128)."""

    def __init__(
        self,
        variant: str,
        weights: str | None,
        device: torch.device,
        iterations: int = 12,
        *,
        allow_download: bool = False,
    ) -> None:
        from torchvision.models import optical_flow

        if variant not in ("raft_small", "raft_large"):
            raise ValueError(f"RAFT variant must be 'raft_small' or 'raft_large', got {variant!r}")
        model = getattr(optical_flow, variant)(weights=None)
        what = f"torchvision {variant}"
        load_weights(model, weights, what, "flow_weights", torchvision_model=variant, allow_download=allow_download)
        self.model = model.eval().to(device)
        self.device = device
        self.iterations = iterations

    def _tensor(self, frames: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float()
        return images.div_(127.5).sub_(1.0)  # RAFT expects [-1, 1]

    def sequence(self, previous: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        height, width = frames.shape[1:3]
        pad = (0, _raft_padding(width), 0, _raft_padding(height))
        a = F.pad(self._tensor(predecessors(previous, frames)), pad, mode="replicate")
        b = F.pad(self._tensor(frames), pad, mode="replicate")
        with torch.inference_mode():
            flow = self.model(a, b, num_flow_updates=self.iterations)[-1]
        return flow[:, :, :height, :width].permute(0, 2, 3, 1).float().cpu().numpy()


def build_flow(
    method: str, weights: str | None, device: torch.device, scale: float = 1.0, *, allow_download: bool = False
) -> FlowModel:
    """RAFT, or OpenCV flow computed on frames resized by ``scale`` (0.5: about 3× cheaper at 768×576)."""
    if method.startswith("raft"):
        return RaftFlow(method, weights, device, allow_download=allow_download)
    return DenseFlow(method, scale)  # type: ignore[arg-type]
