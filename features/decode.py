"""Streaming frame readers for video files (PyAV, OpenCV as fallback) and folders of frame images."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


class VideoDecodeError(RuntimeError):
    """A video or frame folder could not be read; the message names the file and the last good frame."""


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive decoded frames: ``indices`` (b,) are frame numbers in the source, ``frames`` (b, H, W, 3) RGB."""

    indices: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def start_index(self) -> int:
        return int(self.indices[0])


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    return frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _frame_number(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


class VideoReader:
    """Reads one video lazily: memory holds one batch of frames, whatever the video's length.

    ``stride`` keeps every stride-th frame (indices stay those of the source); ``resize`` is (width, height).
    """

    def __init__(self, source: str | Path, *, stride: int = 1, resize: tuple[int, int] | None = None) -> None:
        self.source = Path(source)
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if not self.source.exists():
            raise VideoDecodeError(f"{self.source}: no such video file or frame folder")
        self.stride = stride
        self.resize = resize
        self._images = self._list_images() if self.source.is_dir() else None
        self.fps, self.n_frames, native_size = self._probe()
        self.frame_size = resize or native_size  # (width, height)
        self.n_decoded = 0  # frames decoded so far (all of them, stride or not): exact once iteration ends

    # ------------------------------------------------------------------ probing
    def _list_images(self) -> list[Path]:
        images = sorted((p for p in self.source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_frame_number)
        if not images:
            raise VideoDecodeError(f"{self.source}: frame folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return images

    def _probe(self) -> tuple[float, int, tuple[int, int]]:
        if self._images is not None:
            first = cv2.imread(str(self._images[0]))
            if first is None:
                raise VideoDecodeError(f"{self._images[0]}: unreadable image (first frame of {self.source})")
            return 0.0, len(self._images), (first.shape[1], first.shape[0])
        capture = cv2.VideoCapture(str(self.source))
        try:
            if not capture.isOpened():
                raise VideoDecodeError(f"{self.source}: not a readable video (OpenCV and PyAV cannot open it)")
            fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # container estimate
            size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        finally:
            capture.release()
        return fps, n_frames, size

    # ------------------------------------------------------------------ frames
    def _frames(self) -> Iterator[np.ndarray]:
        """RGB frames of the source in order (every frame; stride is applied by the caller)."""
        if self._images is not None:
            for path in self._images:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise VideoDecodeError(f"{path}: unreadable image in {self.source}")
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return
        try:
            yield from self._frames_pyav()
        except _PyAVUnavailable:
            yield from self._frames_opencv()

    def _frames_pyav(self) -> Iterator[np.ndarray]:
        import av

        try:
            container = av.open(str(self.source))
        except (av.error.FFmpegError, OSError) as error:
            raise _PyAVUnavailable from error
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = 0
            for frame in container.decode(stream):
                decoded += 1
                yield frame.to_ndarray(format="rgb24")
            if stream.frames and decoded < stream.frames:  # the header's count is exact where it is set
                raise VideoDecodeError(
                    f"{self.source}: the stream ended after frame {decoded - 1} but its header announces "
                    f"{stream.frames} frames; the file is truncated: re-encode or re-copy it"
                )

    def _frames_opencv(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(self.source))
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def iter_batches(self, batch_size: int) -> Iterator[FrameBatch]:
        """Batches of up to ``batch_size`` kept frames; raises VideoDecodeError naming the last good frame."""
        indices: list[int] = []
        frames: list[np.ndarray] = []
        last_good = -1
        try:
            for index, frame in enumerate(self._frames()):
                last_good = index
                self.n_decoded = index + 1
                if index % self.stride:
                    continue
                indices.append(index)
                frames.append(_resize(frame, self.resize))
                if len(frames) == batch_size:
                    yield FrameBatch(np.asarray(indices, np.int64), np.stack(frames))
                    indices, frames = [], []
        except VideoDecodeError:
            raise
        except Exception as error:  # a decoder error mid-stream: truncated or corrupt file
            raise VideoDecodeError(
                f"{self.source}: decoding failed after frame {last_good} ({type(error).__name__}: {error}); the file "
                "is truncated or corrupt: re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or remove it"
            ) from error
        if frames:
            yield FrameBatch(np.asarray(indices, np.int64), np.stack(frames))
        if last_good < 0:
            raise VideoDecodeError(f"{self.source}: the video holds no decodable frames")


class _PyAVUnavailable(Exception):
    """PyAV cannot open the container; fall back to OpenCV."""


def is_stream(source: str | Path) -> bool:
    """A URL PyAV opens (``rtsp://``, ``http(s)://``, ``file://``, ...) or a capture device (``/dev/video0``)."""
    text = str(source)
    return "://" in text or text.startswith("/dev/video")


class StreamReader(VideoReader):
    """A live or remote source through PyAV: no frame count, no truncation check, read until it ends.

    A ``/dev/video*`` device opens with the v4l2 input format; RTSP is pulled over TCP (no lost UDP packets).
    """

    def __init__(self, url: str, *, stride: int = 1, resize: tuple[int, int] | None = None) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.source = url  # type: ignore[assignment]  # a URL, not a path
        self.stride, self.resize, self._images = stride, resize, None
        self.fps, self.n_frames, native_size = self._probe()
        self.frame_size = resize or native_size
        self.n_decoded = 0

    def _open(self):
        import av

        options = {"rtsp_transport": "tcp"} if self.source.startswith("rtsp://") else {}
        fmt = "v4l2" if self.source.startswith("/dev/video") else None
        try:
            return av.open(self.source, format=fmt, options=options, timeout=30.0)
        except (av.error.FFmpegError, OSError) as error:
            raise VideoDecodeError(
                f"{self.source}: cannot open the stream ({error}); check the URL or device"
            ) from error

    def _probe(self) -> tuple[float, int, tuple[int, int]]:
        with self._open() as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{self.source}: the stream carries no video")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return float(rate or 0.0), 0, (stream.codec_context.width, stream.codec_context.height)

    def _frames(self) -> Iterator[np.ndarray]:
        with self._open() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")


def open_video(source: str | Path, *, stride: int = 1, resize: tuple[int, int] | None = None) -> VideoReader:
    """A reader for a video file, a frame folder, or (``is_stream``) a URL or capture device."""
    if is_stream(source):
        return StreamReader(str(source), stride=stride, resize=resize)
    return VideoReader(source, stride=stride, resize=resize)
