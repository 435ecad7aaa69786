"""One frozen, hashable description of an extraction stage, with presets for the paper's datasets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from features.foreground import FOREGROUND_PRESETS, ForegroundParams

# Fields that change how fast a result is computed, not the result: left out of the stage hash.
RUNTIME_FIELDS = ("device", "batch_size")


@dataclass(frozen=True)
class ExtractionConfig:
    """Everything that decides the features written for a video (see method.md §3.2 for AI-VAD's values).

    detector_weights: YOLO ``.pt`` file (or ``.yaml`` for a random-init model in tests); None = foreground
        boxes only, the weight-free mode. detector_classes: COCO ids to keep (Avenue: persons only).
    min_box_area / cover_threshold: AI-VAD's area filter and overlap removal for detector boxes.
    foreground*: AI-VAD's frame-difference boxes for moving objects the detector missed.
    whole_frame_fallback: a frame with no box contributes the whole frame as one object (AI-VAD).
    extractors: names in the registry (``features.extractors.available_extractors()``).
    """

    extractors: tuple[str, ...] = ("velocity", "appearance_hist", "geometry")
    detector_weights: str | None = None
    detector_confidence: float = 0.5
    detector_classes: tuple[int, ...] | None = None
    detector_image_size: int = 640
    allow_download: bool = False
    min_box_area: float = 10 * 10
    cover_threshold: float = 0.6
    foreground: bool = True
    foreground_threshold: int = 18
    foreground_blur: int = 5
    foreground_min_area: int = 10 * 10
    whole_frame_fallback: bool = True
    flow: str = "dis"
    velocity_bins: int = 8
    velocity_crop: int = 224
    velocity_height_norm: bool = False
    appearance_model: str = "ViT-B-16"
    appearance_weights: str | None = None
    stride: int = 1
    resize: tuple[int, int] | None = None
    batch_size: int = 16
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.extractors:
            raise ValueError("extractors must name at least one extractor")
        if not 0 < self.cover_threshold <= 1:
            raise ValueError(f"cover_threshold must be in (0, 1], got {self.cover_threshold}")
        if self.foreground_blur % 2 == 0:
            raise ValueError(f"foreground_blur must be an odd kernel size, got {self.foreground_blur}")

    @property
    def foreground_params(self) -> ForegroundParams:
        return ForegroundParams(self.foreground_threshold, self.foreground_blur, self.foreground_min_area)

    def to_dict(self) -> dict[str, Any]:
        """The stage configuration the feature store hashes (runtime-only fields left out)."""
        values = dataclasses.asdict(self)
        for name in RUNTIME_FIELDS:
            values.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ExtractionConfig:
        """A named preset with field overrides; an unknown preset or field raises ValueError naming it."""
        if name not in PRESETS:
            raise ValueError(f"unknown extraction preset {name!r}; available: {sorted(PRESETS)}")
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown extraction field(s) {sorted(unknown)} for preset {name!r}")
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(PRESETS[name], **overrides)


def _aivad(dataset: str, **fields: Any) -> ExtractionConfig:
    fg = FOREGROUND_PRESETS[dataset]
    return ExtractionConfig(
        extractors=("velocity", "clip"),
        detector_weights="yolov8n.pt",
        foreground_threshold=fg.binary_threshold,
        foreground_blur=fg.blur_kernel,
        foreground_min_area=fg.min_contour_area,
        **fields,
    )


PRESETS: dict[str, ExtractionConfig] = {
    "weightfree": ExtractionConfig(),
    "aivad_ped2": _aivad("ped2", detector_confidence=0.5, min_box_area=10 * 10, cover_threshold=0.6, velocity_bins=1),
    "aivad_avenue": _aivad(
        "avenue", detector_confidence=0.8, min_box_area=20 * 20, cover_threshold=0.6, detector_classes=(0,)
    ),
    "aivad_shanghaitech": _aivad(
        "shanghaitech", detector_confidence=0.8, min_box_area=8 * 8, cover_threshold=0.65, velocity_height_norm=True
    ),
}


def resolve_device(device: str) -> torch.device:
    """ "auto" → CUDA when present, else CPU; an explicit CUDA device without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved
