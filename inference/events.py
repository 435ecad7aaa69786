"""Events: maximal runs of frames whose smoothed score exceeds the threshold, tracked frame by frame."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Objects listed per event: the highest-scoring boxes of its peak frame.
TOP_OBJECTS = 5


@dataclass
class Event:
    """One interval above the threshold; ``feature_type`` contributed most to the fused score at the peak."""

    index: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    peak_frame: int
    peak_time: float
    peak_score: float
    feature_type: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    thumbnail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FrameScore:
    """Everything the tracker (and the overlay) knows about one final frame."""

    index: int
    time: float
    score: float  # smoothed fused
    per_type: dict[str, float]
    boxes: np.ndarray
    object_scores: np.ndarray
    object_types: np.ndarray  # (k, types) calibrated per-type object scores


class EventTracker:
    """Opens an event when the score rises above ``threshold``, closes it when it falls back; keeps the
    peak frame's image for the thumbnail (one image per open event: memory stays bounded)."""

    def __init__(self, threshold: float, types: list[str]) -> None:
        self.threshold, self.types = threshold, types
        self.count = 0
        self._open: Event | None = None
        self.peak_image: np.ndarray | None = None
        self.peak: FrameScore | None = None

    @property
    def active(self) -> bool:
        return self._open is not None

    def update(self, frame: FrameScore, image: np.ndarray | None) -> Event | None:
        """Feed the next frame; returns the event that just ended, if any."""
        if frame.score <= self.threshold:
            return self.close()
        if self._open is None:
            self._open = Event(self.count, frame.index, frame.index, frame.time, frame.time, -1, 0.0, -np.inf, "")
            self.count += 1
        event = self._open
        event.end_frame, event.end_time = frame.index, frame.time
        if frame.score > event.peak_score:
            event.peak_frame, event.peak_time, event.peak_score = frame.index, frame.time, float(frame.score)
            event.feature_type = max(frame.per_type, key=frame.per_type.get) if frame.per_type else ""
            self.peak = frame
            self.peak_image = None if image is None else image.copy()
        return None

    def close(self) -> Event | None:
        """End the open event (at a score drop or at the end of the video) and return it."""
        event, peak = self._open, self.peak
        if event is None or peak is None:
            return None
        order = np.argsort(-peak.object_scores)[:TOP_OBJECTS]
        event.objects = [
            {
                "box": [round(float(v), 1) for v in peak.boxes[i]],
                "score": float(peak.object_scores[i]),
                "scores": {t: float(s) for t, s in zip(self.types, peak.object_types[i], strict=True)},
            }
            for i in order
        ]
        self._open = None
        return event
