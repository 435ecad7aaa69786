"""Frame-centric features: a clip of ``window`` frames centred on every frame through a video backbone.

Frames stream through a rolling buffer that holds the window's span plus one batch of targets, so
memory stays flat whatever the video's length; a frame's feature is computed as soon as the last
frame of its window has been decoded, and border windows are padded once the video's end is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors.backbone import torchscript_width
from mulde_vad.features.extractors.embedding import inference, strip_classifier
from mulde_vad.features.weights import load_torchscript, load_weights, require_file

Padding = Literal["replicate", "reflect"]


def window_offsets(window: int, dilation: int) -> np.ndarray:
    """Offsets of a window's frames from its centre frame: −⌊w/2⌋ … w − 1 − ⌊w/2⌋, times ``dilation``."""
    return (np.arange(window) - window // 2) * dilation


def window_indices(targets: np.ndarray, offsets: np.ndarray, n_frames: int | None, padding: Padding) -> np.ndarray:
    """(len(targets), window) frame indices of each target's window, padded at the borders.

    ``n_frames`` None means the end is not known yet (only the start is padded). "replicate" repeats the
    first/last frame; "reflect" mirrors around it (−k → k, n − 1 + k → n − 1 − k), clamped for short videos.
    """
    index = targets[:, None] + offsets[None, :]
    if padding == "reflect":
        index = np.abs(index)
        if n_frames is not None:
            index = np.where(index > n_frames - 1, 2 * (n_frames - 1) - index, index)
    return np.clip(index, 0, None if n_frames is None else n_frames - 1)


def video_statistics(config: ExtractionConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The configured mean/std, or the torchvision video model's own (read from its weights' metadata)."""
    if config.video_mean is not None and config.video_std is not None:
        return config.video_mean, config.video_std
    if config.video_backbone == "torchscript":
        raise ValueError("video_backbone='torchscript' needs video_mean and video_std (e.g. Hiera's 0.45/0.225)")
    from torchvision.models import get_model_weights

    transforms = get_model_weights(config.video_backbone).DEFAULT.transforms()
    return tuple(transforms.mean), tuple(transforms.std)


class VideoBackbone:
    """(b, window, S, S, 3) uint8 RGB clips → (b, dim) float32 features, head removed, on the device."""

    def __init__(self, config: ExtractionConfig) -> None:
        self.device = resolve_device(config.device)
        self.size = config.video_size
        mean, std = video_statistics(config)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1, 1)
        what = f"video backbone {config.video_backbone}"
        if config.video_backbone == "torchscript":
            self.model = load_torchscript(require_file(config.video_weights, what, "video_weights"), self.device)
            example = torch.zeros(1, 3, config.window, self.size, self.size, device=self.device)
            self.dim = torchscript_width(self.model, example)
        else:
            from torchvision.models import get_model

            model = get_model(config.video_backbone, weights=None)
            load_weights(
                model,
                config.video_weights,
                what,
                "video_weights",
                torchvision_model=config.video_backbone,
                allow_download=config.allow_download,
            )
            self.dim = strip_classifier(model)
            self.model = model.eval().to(self.device)

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(clips).to(self.device).permute(0, 4, 1, 2, 3).float().div_(255)  # (b, 3, T, S, S)
        with inference(self.device):
            return self.model((x - self.mean) / self.std).float().cpu().numpy()


class RollingWindows:
    """Feeds decoded frames in; yields (start_frame, clips) for every frame whose window is complete.

    The buffer keeps only frames a future window can still use: the span before the next target plus
    the frames decoded ahead of it.
    """

    def __init__(self, window: int, dilation: int, padding: Padding, batch: int) -> None:
        self.offsets = window_offsets(window, dilation)
        self.padding = padding
        self.batch = batch
        self.frames: dict[int, np.ndarray] = {}
        self.next_target = 0
        self.n_seen = 0

    def _emit(self, stop: int, n_frames: int | None) -> Iterator[tuple[int, np.ndarray]]:
        while self.next_target < stop:
            targets = np.arange(self.next_target, min(self.next_target + self.batch, stop))
            index = window_indices(targets, self.offsets, n_frames, self.padding)
            yield int(targets[0]), np.stack([np.stack([self.frames[i] for i in row]) for row in index])
            self.next_target = int(targets[-1]) + 1
            oldest = self.next_target + int(self.offsets[0])
            for i in [i for i in self.frames if i < oldest]:
                del self.frames[i]

    def push(self, start: int, frames: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Add consecutive frames starting at ``start``; yield the windows they complete."""
        if start != self.n_seen:
            raise ValueError(f"frames must arrive consecutively: expected frame {self.n_seen}, got {start}")
        self.frames.update(zip(range(start, start + len(frames)), frames, strict=True))
        self.n_seen += len(frames)
        candidates = np.arange(self.next_target, self.n_seen)
        ready = (window_indices(candidates, self.offsets, None, self.padding) < self.n_seen).all(axis=1)
        yield from self._emit(self.next_target + (len(ready) if ready.all() else int(np.argmin(ready))), None)

    def close(self) -> Iterator[tuple[int, np.ndarray]]:
        """The video ended: yield the remaining windows, padded at the end."""
        yield from self._emit(self.n_seen, self.n_seen)
