"""Per-video extraction: decode → detect → extractors → shard writer, one batch of frames in memory at a time.

Object-centric configs write one row per object (``append_objects``); the frame-centric config (the
"video" extractor) writes one row per frame (``append_frames``). Either way ``finish`` is called last.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.blazepose import BlazePose
from mulde_vad.features.boxes import keep_min_area, match_boxes, remove_covered
from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.decode import FrameBatch, VideoReader, open_video
from mulde_vad.features.detection import PERSON, Detections, YoloDetector
from mulde_vad.features.extractors import ObjectExtractor, build_extractor
from mulde_vad.features.extractors.pose import N_KEYPOINTS
from mulde_vad.features.flow import build_flow
from mulde_vad.features.foreground import foreground_boxes
from mulde_vad.features.prefetch import prefetched
from mulde_vad.features.video_backbone import RollingWindows, VideoBackbone
from mulde_vad.storage.schema import BoxSource, FrameChunk, ObjectChunk, ObjectTable

VIDEO_FEATURE = "video"
#: Batches the object pipeline's prefetch thread finishes ahead of the one being encoded (more only holds
#: more frames in memory: one ahead is enough for decoding + detection to overlap the encoder).
PREFETCH_BATCHES = 1


class FeatureSink(Protocol):
    """What extraction writes to: ``storage.ShardWriter`` (or an in-memory sink in tests)."""

    def append_objects(self, chunk: ObjectChunk) -> None: ...

    def append_frames(self, chunk: FrameChunk) -> None: ...

    def finish(self, n_frames: int) -> None: ...


@dataclass
class ExtractionSummary:
    n_frames: int = 0
    n_objects: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # per stage

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


def _timed_batches(reader: VideoReader, batch_size: int, summary: ExtractionSummary) -> Iterator[FrameBatch]:
    """The reader's batches, with the time spent decoding each one booked under "decode"."""
    batches = reader.iter_batches(batch_size)
    while True:
        with summary.timed("decode"):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _yolo(weights: str, config: ExtractionConfig, device: str, *, classes: tuple[int, ...] | None) -> YoloDetector:
    return YoloDetector(
        weights,
        confidence=config.detector_confidence,
        classes=classes,
        image_size=config.detector_image_size,
        cpu_precision=config.cpu_precision,
        device=device,
        allow_download=config.allow_download,
    )


@dataclass(frozen=True)
class _Found:
    """The objects of one frame while they are being assembled (keypoints NaN where no person was matched)."""

    boxes: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    source: np.ndarray
    keypoints: np.ndarray

    @classmethod
    def of(cls, boxes: np.ndarray, source: BoxSource, detections: Detections | None = None) -> _Found:
        """Detector boxes keep their scores; foreground and whole-frame boxes get class 0 (as in AI-VAD), conf 1."""
        n = len(boxes)
        sources = np.full(n, int(source), np.uint8)
        keypoints = np.full((n, N_KEYPOINTS, 2), np.nan, np.float32)
        if detections is None:
            return cls(boxes, np.ones(n, np.float32), np.zeros(n, np.int32), sources, keypoints)
        if detections.keypoints is not None:
            keypoints = detections.keypoints.astype(np.float32)
        return cls(boxes, detections.confidence, detections.class_id, sources, keypoints)

    def __add__(self, other: _Found) -> _Found:
        return _Found(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in self.__dataclass_fields__))


_NOTHING = _Found.of(np.zeros((0, 4), np.float32), BoxSource.DETECTOR)


def _filtered(detections: Detections, cfg: ExtractionConfig) -> _Found:
    """AI-VAD's area filter, then its cover removal among the survivors."""
    keep = keep_min_area(detections.boxes, cfg.min_box_area)
    keep = keep[remove_covered(detections.boxes[keep], cfg.cover_threshold)]
    kept = Detections(
        detections.boxes[keep],
        detections.confidence[keep],
        detections.class_id[keep],
        None if detections.keypoints is None else detections.keypoints[keep],
    )
    return _Found.of(kept.boxes, BoxSource.DETECTOR, kept)


class ObjectPipeline:
    """Detector, pose model, flow and extractors built once from a config and reused for every video."""

    def __init__(self, config: ExtractionConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.extractors: list[ObjectExtractor] = [build_extractor(name, config) for name in config.extractors]
        device = str(self.device)
        self.detector = (
            _yolo(config.detector_weights, config, device, classes=config.detector_classes)
            if config.detector_weights
            else None
        )
        # A pose model that is also the detector already returns keypoints with its boxes; BlazePose instead
        # runs on the crop of each detector person box.
        separate_pose = config.pose_weights and config.pose_weights != config.detector_weights
        yolo_pose = separate_pose and not config.uses_blazepose
        self.pose = _yolo(config.pose_weights, config, device, classes=(PERSON,)) if yolo_pose else None
        self.landmarks = BlazePose.load(config, self.device) if config.uses_blazepose else None
        needs_flow = any(e.needs_flow for e in self.extractors)
        self.flow = (
            build_flow(
                config.flow, config.flow_weights, self.device, config.flow_scale, allow_download=config.allow_download
            )
            if needs_flow
            else None
        )

    def objects(self, batch: FrameBatch, previous: np.ndarray | None) -> tuple[ObjectTable, np.ndarray]:
        """Detector boxes (area filter, cover removal), then foreground boxes, then the whole-frame fallback;
        with their keypoints (n, 17, 2)."""
        cfg = self.config
        detections = self.detector(batch.frames) if self.detector else [None] * len(batch)
        poses = self.pose(batch.frames) if self.pose else [None] * len(batch)
        found: list[_Found] = []
        for i, frame in enumerate(batch.frames):
            objects = _filtered(detections[i], cfg) if detections[i] is not None else _NOTHING
            before = batch.frames[i - 1] if i else previous
            if cfg.foreground and before is not None:
                fg = foreground_boxes(before, frame, objects.boxes, cfg.foreground_params)
                objects = objects + _Found.of(fg, BoxSource.FOREGROUND)
            if not len(objects.boxes) and cfg.whole_frame_fallback:
                h, w = frame.shape[:2]
                objects = objects + _Found.of(np.array([[0, 0, w - 1, h - 1]], np.float32), BoxSource.WHOLE_FRAME)
            if poses[i] is not None and poses[i].keypoints is not None:
                rows, cols = match_boxes(objects.boxes, poses[i].boxes, cfg.pose_match_iou)
                keypoints = objects.keypoints.copy()
                keypoints[rows] = poses[i].keypoints[cols]
                objects = replace(objects, keypoints=keypoints)
            found.append(objects)
        table = ObjectTable(
            frame_index=np.repeat(batch.indices, [len(f.boxes) for f in found]).astype(np.int64),
            boxes=np.concatenate([f.boxes for f in found]).astype(np.float32),
            confidence=np.concatenate([f.confidence for f in found]).astype(np.float32),
            class_id=np.concatenate([f.class_id for f in found]).astype(np.int32),
            source=np.concatenate([f.source for f in found]).astype(np.uint8),
        )
        return table, np.concatenate([f.keypoints for f in found])

    def person_keypoints(self, batch: FrameBatch, table: ObjectTable, keypoints: np.ndarray) -> np.ndarray:
        """``keypoints`` with the BlazePose keypoints of every detector person box filled in."""
        persons = np.flatnonzero((table.source == BoxSource.DETECTOR) & (table.class_id == PERSON))
        keypoints = keypoints.copy()
        batch_index = np.searchsorted(batch.indices, table.frame_index[persons])
        keypoints[persons] = self.landmarks(batch.frames, batch_index, table.boxes[persons])
        return keypoints

    def located(self, reader: VideoReader, summary: ExtractionSummary) -> Generator[ObjectBatch, None, None]:
        """Each batch of frames with its objects (and keypoints, and flow when an extractor needs it):
        decoding, detection and flow, the stages ``run`` lets a thread do one batch ahead."""
        previous: np.ndarray | None = None
        for batch in _timed_batches(reader, self.config.batch_size, summary):
            with summary.timed("detect"):
                table, keypoints = self.objects(batch, previous)
            if self.landmarks is not None:
                with summary.timed("pose"):
                    keypoints = self.person_keypoints(batch, table, keypoints)
            flows = None
            if self.flow is not None:
                with summary.timed("flow"):
                    flows = self.flow.sequence(previous, batch.frames)
            yield ObjectBatch(
                frames=batch.frames,
                objects=table,
                batch_index=np.searchsorted(batch.indices, table.frame_index),
                device=self.device,
                flows=flows,
                keypoints=keypoints,
            )
            previous = batch.frames[-1]

    def run(self, reader: VideoReader, writer: FeatureSink, summary: ExtractionSummary) -> None:
        """Extract every batch of ``reader`` into ``writer``: a prefetch thread decodes, detects and computes
        the flow of the next batch while this one is encoded, so both stages overlap (``features.prefetch``)."""
        for batch in prefetched(self.located(reader, summary), depth=PREFETCH_BATCHES):
            table = batch.objects
            features = {}
            for extractor in self.extractors:
                with summary.timed(extractor.name):
                    rows = extractor(batch) if len(table) else np.zeros((0, extractor.dim), np.float32)
                features[extractor.name] = np.asarray(rows, dtype=np.float32)
            writer.append_objects(ObjectChunk(table, features))
            summary.n_objects += len(table)


class FramePipeline:
    """The video backbone of a frame-centric config, reused for every video."""

    def __init__(self, config: ExtractionConfig) -> None:
        self.config = config
        self.backbone = VideoBackbone(config)

    def run(self, reader: VideoReader, writer: FeatureSink, summary: ExtractionSummary) -> None:
        cfg = self.config
        windows = RollingWindows(cfg.window, cfg.window_dilation, cfg.window_padding, cfg.batch_size)

        def write(ready: Iterator[tuple[int, np.ndarray]]) -> None:
            for start, clips in ready:
                with summary.timed(VIDEO_FEATURE):
                    rows = self.backbone(clips)
                writer.append_frames(FrameChunk(start, {VIDEO_FEATURE: rows}))

        for batch in _timed_batches(reader, cfg.batch_size, summary):
            write(windows.push(int(batch.indices[0]), batch.frames))
        write(windows.close())


def build_pipeline(config: ExtractionConfig) -> ObjectPipeline | FramePipeline:
    """Load every model a config needs, once; pass the result to ``extract_video`` for each video."""
    return FramePipeline(config) if config.kind == "frame" else ObjectPipeline(config)


def extract_video(
    source: str | Path,
    config: ExtractionConfig,
    writer: FeatureSink,
    *,
    pipeline: ObjectPipeline | FramePipeline | None = None,
) -> ExtractionSummary:
    """Write the features of ``source`` to ``writer`` (objects or frames, by ``config.kind``), then ``finish`` it.

    Memory holds one batch of frames (``config.batch_size``; frame-centric: plus the window's span of
    frames at ``video_size``) whatever the video's length. Pass a ``pipeline`` to reuse loaded models.
    """
    pipeline = pipeline or build_pipeline(config)
    if config.kind == "frame":
        size = (config.video_size, config.video_size)  # squash-resize (method.md §4.3)
        reader = open_video(source, resize=size)
    else:
        reader = open_video(source, stride=config.stride, resize=config.resize)
    summary = ExtractionSummary()
    pipeline.run(reader, writer, summary)
    summary.n_frames = reader.n_decoded
    writer.finish(summary.n_frames)
    return summary
