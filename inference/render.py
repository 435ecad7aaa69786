"""What a person looks at: boxes coloured by anomaly score, a running score strip, event markers, MP4/JPEG out.

Frames are RGB uint8 and keep their size: the strip is drawn semi-transparently over the bottom of the
frame, so the annotated video has exactly the input's frame count and size.
"""

from __future__ import annotations

import os
from collections import deque
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

NORMAL, WARN, ALARM = (40, 200, 60), (250, 200, 40), (235, 40, 40)  # RGB


def score_colour(score: float, threshold: float) -> tuple[int, int, int]:
    """Green at 0, yellow at half the threshold, red at and above it (linear in between)."""
    x = float(np.clip(score / threshold if threshold > 0 else 1.0, 0.0, 1.0))
    a, b, t = (NORMAL, WARN, 2 * x) if x < 0.5 else (WARN, ALARM, 2 * x - 1)
    return tuple(round(p + (q - p) * t) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]


def draw_boxes(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Draw each xyxy box in its score's colour with the score written above it (in place)."""
    thick = max(1, image.shape[0] // 240)
    scale = max(0.3, image.shape[0] / 960)
    for box, score in zip(boxes, scores, strict=True):
        x1, y1, x2, y2 = (round(v) for v in box)
        colour = score_colour(float(score), threshold)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick)
        cv2.putText(image, f"{score:.2f}", (x1, max(y1 - 3, 8)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick)
    return image


class ScoreStrip:
    """The last ``length`` frames' smoothed scores as a curve across the bottom of the frame, with the
    threshold as a red line and frames inside events shaded red."""

    def __init__(self, length: int, height: int, threshold: float) -> None:
        self.length, self.height, self.threshold = length, height, threshold
        self.scores: deque[float] = deque(maxlen=length)
        self.alarms: deque[bool] = deque(maxlen=length)

    def push(self, score: float, alarm: bool) -> None:
        self.scores.append(score)
        self.alarms.append(alarm)

    def draw(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        top = h - self.height
        image[top:] = (0.45 * image[top:].astype(np.float32)).astype(np.uint8)  # darken: readable on any scene
        if not self.scores:
            return image
        ceiling = max(1.5 * self.threshold, max(self.scores), 1e-9)
        scores = np.asarray(self.scores)
        step = (w - 1) / max(self.length - 1, 1)  # the newest frame at the right edge
        xs = (w - 1 - step * np.arange(len(scores))[::-1]).astype(np.int32)
        ys = (h - 2 - (self.height - 4) * np.clip(scores / ceiling, 0, 1)).astype(np.int32)
        for x, alarm in zip(xs, self.alarms, strict=True):
            if alarm:
                cv2.line(image, (int(x), top), (int(x) + max(int(step), 1), h - 1), (120, 25, 25), max(int(step), 1))
        y_thr = int(h - 2 - (self.height - 4) * self.threshold / ceiling)
        cv2.line(image, (0, y_thr), (w - 1, y_thr), ALARM, 1)
        cv2.polylines(image, [np.stack([xs, ys], axis=1)], False, (255, 255, 255), 1, cv2.LINE_AA)
        return image


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    """Text on a dark box, readable on bright and dark scenes alike."""
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = origin
    cv2.rectangle(image, (x - 2, y - height - 3), (x + width + 2, y + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def annotate(
    image: np.ndarray,
    boxes: np.ndarray,
    object_scores: np.ndarray,
    threshold: float,
    strip: ScoreStrip,
    label: str,
    alarm: bool,
) -> np.ndarray:
    """One overlay frame (a copy): boxes, strip, frame label, and a red border while an event is on."""
    out = draw_boxes(image.copy(), boxes, object_scores, threshold)
    strip.draw(out)
    scale = max(0.35, out.shape[0] / 1200)
    line = int(30 * scale) + 4
    _text(out, label, (4, line), scale, (255, 255, 255))
    if alarm:
        border = max(2, out.shape[0] // 120)
        cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), ALARM, border)
        _text(out, "ANOMALY", (4, 2 * line + 2), scale, ALARM)
    return out


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    """An RGB image as JPEG, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.jpg")
    if not cv2.imwrite(str(temp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OSError(f"could not write {path}")
    os.replace(temp, path)
    return path


class VideoWriter:
    """H.264 MP4 (yuv420p; yuv444p when a side is odd) through PyAV; renamed into place on ``close``."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
        self._container = av.open(str(self._temp), mode="w")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p" if size[0] % 2 == 0 and size[1] % 2 == 0 else "yuv444p"
        self._stream.options = {"preset": "veryfast", "crf": "23"}
        self._av = av

    def write(self, image: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(image, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> Path:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        self._container.close()
        self._temp.unlink(missing_ok=True)
