"""Per-video extraction: decode → detect → extractors → shard writer, one batch of frames in memory at a time."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from features.batch import ObjectBatch
from features.boxes import keep_min_area, remove_covered
from features.config import ExtractionConfig, resolve_device
from features.decode import FrameBatch, open_video
from features.detection import Detections, YoloDetector
from features.extractors import ObjectExtractor, build_extractor
from features.flow import DenseFlow
from features.foreground import foreground_boxes
from storage.schema import BoxSource, ObjectChunk, ObjectTable


class ObjectSink(Protocol):
    """What extraction writes to: ``storage.ShardWriter`` (or an in-memory sink in tests)."""

    def append_objects(self, chunk: ObjectChunk) -> None: ...

    def finish(self, n_frames: int) -> None: ...


@dataclass
class ExtractionSummary:
    n_frames: int = 0
    n_objects: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # per stage


class ObjectPipeline:
    """Detector, flow and extractors built once from a config and reused for every video."""

    def __init__(self, config: ExtractionConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.extractors: list[ObjectExtractor] = [build_extractor(name, config) for name in config.extractors]
        self.detector = (
            YoloDetector(
                config.detector_weights,
                confidence=config.detector_confidence,
                classes=config.detector_classes,
                image_size=config.detector_image_size,
                device=str(self.device),
                allow_download=config.allow_download,
            )
            if config.detector_weights
            else None
        )
        self.flow = DenseFlow(config.flow) if any(e.needs_flow for e in self.extractors) else None

    def objects(self, batch: FrameBatch, previous: np.ndarray | None) -> ObjectTable:
        """Detector boxes (area filter, cover removal), then foreground boxes, then the whole-frame fallback."""
        cfg = self.config
        detections = self.detector(batch.frames) if self.detector else [None] * len(batch)
        tables = []
        for i, (index, frame) in enumerate(zip(batch.indices, batch.frames, strict=True)):
            found = _filtered(detections[i], cfg) if detections[i] is not None else _no_detections()
            before = batch.frames[i - 1] if i else previous
            if cfg.foreground and before is not None:
                fg = foreground_boxes(before, frame, found.boxes, cfg.foreground_params)
                found = _append(found, fg, BoxSource.FOREGROUND)
            if not len(found.boxes) and cfg.whole_frame_fallback:
                h, w = frame.shape[:2]
                found = _append(found, np.array([[0, 0, w - 1, h - 1]], np.float32), BoxSource.WHOLE_FRAME)
            tables.append((index, found))
        return ObjectTable.concatenate(
            [
                ObjectTable(
                    frame_index=np.full(len(d.boxes), index, np.int64),
                    boxes=d.boxes.astype(np.float32),
                    confidence=d.confidence.astype(np.float32),
                    class_id=d.class_id.astype(np.int32),
                    source=d.source,
                )
                for index, d in tables
            ]
        )


def extract_video(
    source: str | Path, config: ExtractionConfig, writer: ObjectSink, *, pipeline: ObjectPipeline | None = None
) -> ExtractionSummary:
    """Write every object of ``source`` with its features to ``writer``, then ``finish`` it.

    Memory holds one batch of frames (``config.batch_size``) whatever the video's length. Pass a
    ``pipeline`` to reuse loaded models across videos.
    """
    pipeline = pipeline or ObjectPipeline(config)
    reader = open_video(source, stride=config.stride, resize=config.resize)
    summary = ExtractionSummary()
    previous: np.ndarray | None = None
    clock = time.perf_counter()
    for batch in reader.iter_batches(config.batch_size):
        summary.seconds["decode"] += time.perf_counter() - clock
        clock = time.perf_counter()
        table = pipeline.objects(batch, previous)
        summary.seconds["detect"] += time.perf_counter() - clock
        flows = None
        if pipeline.flow is not None:
            clock = time.perf_counter()
            flows = pipeline.flow.sequence(previous, batch.frames)
            summary.seconds["flow"] += time.perf_counter() - clock
        objects = ObjectBatch(
            frames=batch.frames,
            objects=table,
            batch_index=np.searchsorted(batch.indices, table.frame_index),
            device=pipeline.device,
            flows=flows,
        )
        features = {}
        for extractor in pipeline.extractors:
            clock = time.perf_counter()
            rows = extractor(objects) if len(table) else np.zeros((0, extractor.dim), np.float32)
            features[extractor.name] = np.asarray(rows, dtype=np.float32)
            summary.seconds[extractor.name] += time.perf_counter() - clock
        writer.append_objects(ObjectChunk(table, features))
        summary.n_frames = int(batch.indices[-1]) + 1
        summary.n_objects += len(table)
        previous = batch.frames[-1]
        clock = time.perf_counter()
    writer.finish(summary.n_frames)
    return summary


@dataclass(frozen=True)
class _Found:
    boxes: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    source: np.ndarray


def _no_detections() -> _Found:
    return _Found(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, np.uint8))


def _filtered(detections: Detections, cfg: ExtractionConfig) -> _Found:
    keep = keep_min_area(detections.boxes, cfg.min_box_area)
    keep = keep[remove_covered(detections.boxes[keep], cfg.cover_threshold)]
    n = len(keep)
    return _Found(detections.boxes[keep], detections.confidence[keep], detections.class_id[keep], np.zeros(n, np.uint8))


def _append(found: _Found, boxes: np.ndarray, source: BoxSource) -> _Found:
    """Add boxes of another source; foreground and whole-frame boxes get class 0 (as in AI-VAD) and confidence 1."""
    n = len(boxes)
    return _Found(
        np.concatenate([found.boxes, boxes]),
        np.concatenate([found.confidence, np.ones(n, np.float32)]),
        np.concatenate([found.class_id, np.zeros(n, np.int32)]),
        np.concatenate([found.source, np.full(n, int(source), np.uint8)]),
    )
