"""Score new footage with a bundle, one decode pass per video, in bounded memory.

Frames stream through the bundle's extraction pipeline (``features.extract``), the per-type MULDE models
and the fusion (``inference.scorer``), then through the smoothing, the event tracker and the overlay
encoder. Nothing grows with the video's length except the files written.

Offline mode (files, frame folders) smooths with the centred Gaussian of the benchmark path
(``smooth_scores``), which needs ``kernel_radius(σ)`` frames of look-ahead; stream mode (URLs,
devices) smooths causally (``CausalSmoother``, no look-ahead). A frame's score is final, and written,
once its smoothing window and its features' context are complete: ``latency_frames`` in events.json.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from mulde_vad.datasets.base import IMAGE_SUFFIXES, list_sources
from mulde_vad.features.decode import FrameBatch, VideoReader, is_stream, open_video
from mulde_vad.features.extract import ExtractionSummary, ObjectPipeline, build_pipeline
from mulde_vad.features.video_backbone import window_offsets
from mulde_vad.inference.bundle import Bundle, BundleError, check_weights
from mulde_vad.inference.events import Event, EventTracker, FrameScore
from mulde_vad.inference.render import ScoreStrip, VideoWriter, annotate, draw_boxes, write_jpeg
from mulde_vad.inference.scorer import ScoredFrames, Scorer, score_frame_rows, score_objects
from mulde_vad.models.smoothing import CausalSmoother, CentredSmoother
from mulde_vad.storage.schema import FrameChunk, ObjectChunk

log = logging.getLogger(__name__)

#: Frames per second assumed for frame folders and streams that do not say.
FALLBACK_FPS = 25.0
#: Frames of score history the overlay's strip shows.
STRIP_FRAMES = 300


@dataclass(frozen=True)
class PredictOptions:
    """threshold: overrides the bundle's; stream: None = causal smoothing for URLs/devices, offline otherwise;
    max_frames / duration (seconds): stop early (tests, endless streams)."""

    threshold: float | None = None
    overlay: bool = True
    max_frames: int | None = None
    duration: float | None = None
    stream: bool | None = None
    batch_size: int | None = None
    device: str = "auto"
    progress: bool = True


@dataclass
class VideoResult:
    name: str
    source: str
    out_dir: Path
    n_frames: int
    n_objects: int
    fps: float
    threshold: float
    events: list[Event]
    files: dict[str, Path]
    seconds: dict[str, float]
    wall: float
    interrupted: bool = False
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # smoothed fused, when kept (tests, flows)


def video_name(source: str | Path) -> str:
    """A folder-safe name: the file stem, the frame folder's name, or the URL's last path part (or host)."""
    text = str(source)
    if is_stream(text):
        parts = [p for p in re.split(r"[/?#]", text.split("://", 1)[-1]) if p]
        text = Path(parts[-1]).stem if parts else "stream"
    else:
        path = Path(text)
        text = path.name if path.is_dir() else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "video"


def list_inputs(source: str | Path) -> list[str | Path]:
    """A stream, a video file, a frame folder (a folder holding images), or a folder of those."""
    if is_stream(source):
        return [str(source)]
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such video file, folder or stream URL")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        return [path]
    sources = list_sources(path)
    if not sources:
        raise FileNotFoundError(f"{path}: holds no videos or frame folders")
    return list(sources)


class _Tee:
    """The reader the extraction pipeline pulls from: hands every decoded full-size batch to ``on_batch``,
    gives the pipeline its (possibly resized) frames, and stops at the frame limit.

    The object pipeline reads ahead of scoring (its prefetch thread), so ``pending`` keeps the (first frame,
    frame count) of every batch handed out and not yet scored, oldest first: one object chunk per batch.
    """

    def __init__(
        self, reader: VideoReader, limit: int | None, resize: tuple[int, int] | None, on_batch, *, track: bool
    ) -> None:
        self.reader, self.limit, self.resize, self.on_batch = reader, limit, resize, on_batch
        self.n_decoded = 0
        self.track = track
        self.pending: deque[tuple[int, int]] = deque()

    def iter_batches(self, batch_size: int) -> Iterator[FrameBatch]:
        for batch in self.reader.iter_batches(batch_size):
            if self.limit is not None and self.n_decoded + len(batch) > self.limit:
                keep = self.limit - self.n_decoded
                batch = FrameBatch(batch.indices[:keep], batch.frames[:keep])
            if not len(batch):
                return
            self.n_decoded += len(batch)
            self.on_batch(batch)
            frames = batch.frames
            if self.resize is not None:
                frames = np.stack([cv2.resize(f, self.resize, interpolation=cv2.INTER_AREA) for f in frames])
            if self.track:
                self.pending.append((batch.start_index, len(batch)))
            yield FrameBatch(batch.indices, frames)
            if self.limit is not None and self.n_decoded >= self.limit:
                return


class _Session:
    """One video's outputs, fed frames (from the tee) and scores (from the sink), in frame order."""

    def __init__(
        self,
        predictor: Predictor,
        name: str,
        source: str,
        out_dir: Path,
        fps: float,
        size: tuple[int, int],
        stream: bool,
        total: int | None,
        summary: ExtractionSummary,
    ) -> None:
        options, bundle = predictor.options, predictor.bundle
        self.predictor, self.name, self.source, self.out_dir = predictor, name, source, out_dir
        self.fps, self.size, self.summary = fps, size, summary
        self.threshold = predictor.threshold
        self.types = list(bundle.features)
        self.smoother = (CausalSmoother if stream else CentredSmoother)(bundle.smoothing_sigma)
        self.smoothing = f"{'causal half-Gaussian' if stream else 'centred Gaussian'} sigma={bundle.smoothing_sigma:g}"
        self.latency = self.smoother.delay + predictor.lookahead + predictor.config.batch_size - 1
        self.frames: dict[int, np.ndarray] = {}
        self.pending: deque[tuple[float, FrameScore]] = deque()  # (raw fused score, the frame's score so far)
        self.scale = np.ones(4, np.float32)
        self.tracker = EventTracker(self.threshold, self.types)
        self.events: list[Event] = []
        self.n_out = 0
        self.keep_scores: list[float] | None = None  # every smoothed score, only when the caller asks
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out_dir / "events", ignore_errors=True)  # thumbnails of an earlier run of this video
        self.files = {"scores": out_dir / "scores.csv", "events": out_dir / "events.json"}
        self._csv_temp = out_dir / ".scores.csv.partial"
        self._csv = open(self._csv_temp, "w")  # noqa: SIM115  # closed in finish/abort
        self._csv.write(",".join(["frame", "time_s", "score", "score_raw", *self.types, "is_anomalous"]) + "\n")
        height = max(24, size[1] // 5)
        self.strip = ScoreStrip(STRIP_FRAMES, height, self.threshold)
        self.writer = VideoWriter(out_dir / "overlay.mp4", fps, size) if options.overlay else None
        self.progress = tqdm(total=total or None, unit="frame", desc=name, disable=not options.progress, leave=False)

    # ------------------------------------------------------------------ inputs
    def add_frames(self, batch: FrameBatch) -> None:
        self.frames.update(zip(batch.indices.tolist(), batch.frames, strict=True))

    def add_scores(self, scored: ScoredFrames) -> None:
        for i in range(len(scored)):
            index = scored.first + i
            frame = FrameScore(
                index,
                index / self.fps,
                np.nan,  # set once the smoothing window is complete
                {t: float(v[i]) for t, v in scored.per_type.items()},
                scored.boxes[i] * self.scale,
                scored.object_scores[i],
                scored.object_types[i],
            )
            self.pending.append((float(scored.fused[i]), frame))
        self._emit(self.smoother.push(scored.fused))

    # ------------------------------------------------------------------ outputs
    def _emit(self, smoothed: np.ndarray) -> None:
        for score in smoothed:
            raw, frame = self.pending.popleft()
            frame = replace(frame, score=float(score))
            image = self.frames.pop(frame.index)
            alarm = bool(score > self.threshold)
            with self.summary.timed("outputs"):
                values = ",".join(f"{frame.per_type[t]:.6g}" for t in self.types)
                self._csv.write(f"{frame.index},{frame.time:.3f},{score:.6g},{raw:.6g},{values},{int(alarm)}\n")
                ended = self.tracker.update(frame, image)
                if ended is not None:
                    self._close_event(ended)
                if self.keep_scores is not None:
                    self.keep_scores.append(float(score))
            if self.writer is not None:
                with self.summary.timed("overlay"):
                    self.strip.push(float(score), alarm)
                    label = f"{self.name}  #{frame.index}  {frame.time:.1f}s  score {score:.2f} / {self.threshold:.2f}"
                    overlay = annotate(
                        image, frame.boxes, frame.object_scores, self.threshold, self.strip, label, alarm
                    )
                    self.writer.write(overlay)
            self.n_out += 1
        self.progress.update(len(smoothed))

    def _close_event(self, event: Event) -> None:
        peak = self.tracker.peak
        if self.tracker.peak_image is not None and peak is not None:
            image = draw_boxes(self.tracker.peak_image, peak.boxes, peak.object_scores, self.threshold)
            path = write_jpeg(self.out_dir / "events" / f"event_{event.index:04d}.jpg", image)
            event.thumbnail = str(path.relative_to(self.out_dir))
        self.events.append(event)
        self._write_events()

    def _write_events(self, interrupted: bool = False) -> None:
        payload: dict[str, Any] = {
            "video": self.name,
            "source": self.source,
            "fps": self.fps,
            "n_frames": self.n_out,
            "threshold": self.threshold,
            "smoothing": self.smoothing,
            "latency_frames": self.latency,
            "interrupted": interrupted,
            "events": [e.to_dict() for e in self.events],
        }
        temp = self.files["events"].with_name(f".events.json.{os.getpid()}.tmp")
        temp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(temp, self.files["events"])

    def finish(self, interrupted: bool) -> None:
        self._emit(self.smoother.finish())
        ended = self.tracker.close()
        if ended is not None:
            self._close_event(ended)
        self._write_events(interrupted)
        self._csv.close()
        os.replace(self._csv_temp, self.files["scores"])
        if self.writer is not None:
            with self.summary.timed("overlay"):
                self.files["overlay"] = self.writer.close()
        self.progress.close()

    def abort(self) -> None:
        self._csv.close()
        self._csv_temp.unlink(missing_ok=True)
        if self.writer is not None:
            self.writer.abort()
        self.progress.close()


class _ScoringSink:
    """The FeatureSink the extraction pipeline writes to: scores each chunk and hands it to the session."""

    def __init__(self, predictor: Predictor, session: _Session, tee: _Tee) -> None:
        self.predictor, self.session, self.tee = predictor, session, tee

    def append_objects(self, chunk: ObjectChunk) -> None:
        first, n_frames = self.tee.pending.popleft()
        with self.session.summary.timed("mulde"):
            scored = score_objects(self.predictor.scorer, chunk, first, n_frames)
        self.session.add_scores(scored)

    def append_frames(self, chunk: FrameChunk) -> None:
        with self.session.summary.timed("mulde"):
            scored = score_frame_rows(self.predictor.scorer, chunk)
        self.session.add_scores(scored)

    def finish(self, n_frames: int) -> None:  # the session finishes itself
        pass


class Predictor:
    """A bundle with its extraction models loaded once; ``predict`` scores one video (or stream) after another."""

    def __init__(self, bundle: Bundle, options: PredictOptions | None = None) -> None:
        self.bundle, self.options = bundle, options or PredictOptions()
        runtime: dict[str, Any] = {"device": self.options.device}
        if self.options.batch_size:
            runtime["batch_size"] = self.options.batch_size
        fitted = bundle.extraction_config(**runtime)
        self.config = fitted.resolved()
        if self.config.cpu_precision != fitted.cpu_precision:
            log.warning(
                "this bundle was fitted on bfloat16 features, which this CPU cannot compute: it computes float32 "
                "ones, which differ (a crop's MobileNetV2 features by a median 22%%), so its scores are less "
                "reliable here; refit it on this machine (`mulde-vad fit`)"
            )
        check_weights(bundle, self.config)
        self.pipeline = build_pipeline(self.config)
        self.scorer = Scorer(
            {n: f.model for n, f in bundle.features.items()},
            {n: f.calibration for n, f in bundle.features.items()},
            bundle.empty_fill,
        )
        self.threshold = bundle.threshold.value if self.options.threshold is None else float(self.options.threshold)
        if isinstance(self.pipeline, ObjectPipeline):
            self.lookahead = 0  # velocity reads the previous frame only
            dims = {e.name: e.dim for e in self.pipeline.extractors}
        else:
            self.lookahead = int(window_offsets(self.config.window, self.config.window_dilation).max())
            dims = {}
        for name, feature in bundle.features.items():
            if dims and dims.get(name) != feature.model.n_features_in_:
                raise BundleError(
                    f"feature type {name!r}: the bundle's model reads {feature.model.n_features_in_} features but "
                    f"this extraction gives {dims.get(name)}; refit the bundle with this mulde-vad"
                )

    def predict(self, source: str | Path, out_root: str | Path, *, keep_scores: bool = False) -> VideoResult:
        """Score one video file, frame folder or stream; write its outputs under ``out_root/<name>/``."""
        options, started = self.options, time.perf_counter()
        name = video_name(source)
        reader = open_video(source)
        fps = reader.fps if reader.fps > 0 else FALLBACK_FPS
        by_duration = max(1, round(options.duration * fps)) if options.duration else None
        limits = [n for n in (options.max_frames, by_duration) if n]
        limit = min(limits) if limits else None
        total = min(filter(None, [reader.n_frames, limit]), default=None)
        stream = is_stream(source) if options.stream is None else options.stream
        resize = (self.config.video_size,) * 2 if self.config.kind == "frame" else self.config.resize
        summary = ExtractionSummary()
        session = _Session(
            self, name, str(source), Path(out_root) / name, fps, reader.frame_size, stream, total, summary
        )
        if resize is not None and self.config.kind == "object":
            sx, sy = reader.frame_size[0] / resize[0], reader.frame_size[1] / resize[1]
            session.scale = np.array([sx, sy, sx, sy], np.float32)
        session.keep_scores = [] if keep_scores else None
        tee = _Tee(reader, limit, resize, session.add_frames, track=self.config.kind == "object")
        interrupted = False
        try:
            try:
                self.pipeline.run(tee, _ScoringSink(self, session, tee), summary)
            except KeyboardInterrupt:  # Ctrl-C ends a stream: keep what was scored
                interrupted = True
            session.finish(interrupted)
        except BaseException:
            session.abort()
            raise
        return VideoResult(
            name=name,
            source=str(source),
            out_dir=session.out_dir,
            n_frames=session.n_out,
            n_objects=summary.n_objects,
            fps=fps,
            threshold=self.threshold,
            events=session.events,
            files=session.files,
            seconds=dict(summary.seconds),
            wall=time.perf_counter() - started,
            interrupted=interrupted,
            scores=np.asarray(session.keep_scores or []),
        )
