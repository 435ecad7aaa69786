"""Typed records that cross layer boundaries: what a shard holds, independent of HDF5."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

SCHEMA_VERSION = 2  # 2: Fletcher-32 checksums on every dataset and the ``inputs`` digest


class BoxSource(IntEnum):
    """Where an object box came from (stored as uint8 in the object table)."""

    DETECTOR = 0
    FOREGROUND = 1
    WHOLE_FRAME = 2
    IMPORTED = 3  # features imported without their boxes (AI-VAD's release); boxes and confidence are NaN


@dataclass(frozen=True)
class ObjectTable:
    """One row per detected object; every object feature row aligns with a row here.

    frame_index: (n,) int64, 0-based index of the frame in its video
    boxes:       (n, 4) float32, xyxy in pixels of the original frame
    confidence:  (n,) float32
    class_id:    (n,) int32 (COCO ids for detector boxes, 0 for foreground boxes as in AI-VAD)
    source:      (n,) uint8, a BoxSource
    """

    frame_index: np.ndarray
    boxes: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    source: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.frame_index)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4), got {self.boxes.shape}")
        for name in ("confidence", "class_id", "source"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, frame_index has {n}")

    def __len__(self) -> int:
        return len(self.frame_index)

    @classmethod
    def empty(cls) -> ObjectTable:
        return cls(
            frame_index=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int32),
            source=np.zeros(0, np.uint8),
        )

    @classmethod
    def concatenate(cls, tables: list[ObjectTable]) -> ObjectTable:
        if not tables:
            return cls.empty()
        return cls(*(np.concatenate([getattr(t, f) for t in tables]) for f in cls.__dataclass_fields__))


@dataclass(frozen=True)
class ObjectChunk:
    """A run of consecutive frames' objects and their per-object features (rows aligned with `objects`)."""

    objects: ObjectTable
    features: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameChunk:
    """Per-frame features for consecutive frames starting at `start_frame` (one row per frame)."""

    start_frame: int
    features: dict[str, np.ndarray] = field(default_factory=dict)
