"""A tiny, fast stand-in for ``features`` extraction, so the flow tests exercise the DAG, not the extractors.

One whole-frame object per frame with two features: ``motion`` (mean absolute difference to the previous
frame, 1-d) and ``colour`` (mean RGB, 3-d). ``FAIL_ON`` / ``SLEEP_S`` inject faults and slowness.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mulde_vad.features.extract import ExtractionSummary
from mulde_vad.storage import BoxSource, ObjectChunk, ObjectTable


@dataclass(frozen=True)
class FakeConfig:
    name: str = "fake"
    kind: str = "object"  # one row per object, like ExtractionConfig.kind for object-centric presets
    extractors: tuple[str, ...] = ("motion", "colour")  # the feature names it writes
    device: str = "cpu"
    allow_download: bool = False
    detector_weights: None = None  # loads no model: features.weights_table finds no weights to check or hash

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self) -> FakeConfig:
        return self  # no precision to resolve: computed the same on every machine


FAIL_ON: set[str] = set()  # video ids whose extraction raises
FAIL_ERROR: type[Exception] = RuntimeError  # what it raises (a transient error unless a test says otherwise)
SLEEP_S = 0.0  # per video, to make a kill land mid-extraction
CALLS: list[str] = []  # video ids extracted in this process


def fake_config(preset: str, overrides: dict | None = None) -> FakeConfig:
    return FakeConfig(preset)


def fake_extract_video(source: Path, config: FakeConfig, writer) -> ExtractionSummary:
    video_id = Path(source).name
    CALLS.append(video_id)
    if video_id in FAIL_ON:
        raise FAIL_ERROR(f"injected failure for {video_id}")
    time.sleep(SLEEP_S)
    files = sorted(Path(source).glob("*.png"), key=lambda p: int(p.stem))
    frames = np.stack([cv2.imread(str(f)) for f in files]).astype(np.float32)
    motion = np.abs(np.diff(frames, axis=0, prepend=frames[:1])).mean(axis=(1, 2, 3))
    n, h, w = frames.shape[:3]
    table = ObjectTable(
        frame_index=np.arange(n, dtype=np.int64),
        boxes=np.tile(np.array([[0, 0, w, h]], np.float32), (n, 1)),
        confidence=np.ones(n, np.float32),
        class_id=np.zeros(n, np.int32),
        source=np.full(n, BoxSource.WHOLE_FRAME, np.uint8),
    )
    features = {"motion": motion[:, None].astype(np.float32), "colour": frames.mean(axis=(1, 2)).astype(np.float32)}
    writer.append_objects(ObjectChunk(table, features))
    writer.finish(n)
    return ExtractionSummary(n_frames=n)
