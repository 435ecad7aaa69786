"""Video records, the adapter protocol, and the helpers every adapter shares (frame listing, counting, labels).

Labels are resolved eagerly: a frame folder's length is its number of images, a video file's length
is read from the container (PyAV header count, or a demux-only packet count when the header has none),
so no frame is decoded here. The evaluation glue checks every label vector against the frame count
of the features it scores and names the video when they disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"})
_DIGITS = re.compile(r"(\d+)")


class DatasetLayoutError(ValueError):
    """A dataset copy does not match the expected layout; the message names the file and what was expected."""


@dataclass(frozen=True)
class VideoRecord:
    dataset: str
    video_id: str  # stable, filesystem-safe, unique across both splits of the dataset
    split: Split
    source: Path  # a video file or a folder of frames
    labels: np.ndarray | None  # test: per-frame uint8 0/1 (1 = anomalous); train: None
    error: str | None = None  # why this video cannot be used (e.g. unreadable): it fails alone, the rest runs


class DatasetAdapter(Protocol):
    name: str

    def videos(self, split: Split) -> list[VideoRecord]: ...


def check_split(split: str) -> Split:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split  # type: ignore[return-value]


def natural_key(name: str) -> tuple:
    """Sort key that orders '2.jpg' before '10.jpg' (numeric runs compared as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in numeric order (AI-VAD's order)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def count_video_frames(path: Path) -> int:
    """Frames in a video file from the container header, else by demuxing packets (no decoding)."""
    import av  # local: only adapters over video files need it

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetLayoutError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            if stream.frames > 0:
                return int(stream.frames)
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.error.FFmpegError as error:
        raise DatasetLayoutError(f"{path}: cannot be read as a video ({error})") from error


def check_numbering(folder: Path, files: list[Path]) -> None:
    """Raise naming the first missing (or repeated) frame unless the files' numbers run without a gap.

    Labels index frames by position; a missing ``20.png`` would silently shift every later label by one.
    Files whose names carry no number are not checked (there is no numbering to follow).
    """
    runs = [_DIGITS.findall(p.stem) for p in files]
    if not files or not all(runs):
        return
    numbers = [int(r[-1]) for r in runs]
    for before, after, run in zip(numbers, numbers[1:], runs, strict=False):
        if after == before:
            raise DatasetLayoutError(f"{folder}: frame number {after} appears twice; keep one file per frame")
        if after != before + 1:
            width = len(run[-1])
            missing = files[numbers.index(before)].name.replace(run[-1], str(before + 1).zfill(width), 1)
            raise DatasetLayoutError(
                f"{folder}: frame {missing} is missing (frames {numbers[0]}..{numbers[-1]}, {len(files)} files); "
                "labels follow frame positions, so restore the frame or renumber the folder"
            )


def frame_count(source: Path) -> int:
    """Length of a frame source: images in a folder (numbered without gaps), or frames of a video file."""
    if source.is_dir():
        files = frame_files(source)
        if not files:
            raise DatasetLayoutError(f"{source}: frame folder holds no images ({sorted(IMAGE_SUFFIXES)})")
        check_numbering(source, files)
        return len(files)
    return count_video_frames(source)


def intervals_to_labels(
    intervals: Iterable[tuple[int, int]], n_frames: int, *, video: str, base: int = 0
) -> np.ndarray:
    """uint8 mask from inclusive (start, end) intervals numbered from ``base`` (0 or 1).

    An interval that reaches past the video is an error naming the video: the annotation and the
    copy of the video disagree, and guessing would shift every label.
    """
    labels = np.zeros(n_frames, np.uint8)
    for start, end in intervals:
        first, last = int(start) - base, int(end) - base
        if not 0 <= first <= last < n_frames:
            raise DatasetLayoutError(
                f"video {video}: anomalous interval {start}..{end} ({base}-based) does not fit its {n_frames} frames"
            )
        labels[first : last + 1] = 1
    return labels


def check_label_length(labels: np.ndarray, n_frames: int, *, video: str, origin: Path | str) -> np.ndarray:
    """Return labels as uint8 0/1, or raise naming the video when their count is not its frame count."""
    labels = np.asarray(labels).ravel()
    if len(labels) != n_frames:
        raise DatasetLayoutError(
            f"video {video}: {origin} has {len(labels)} labels but the video has {n_frames} frames"
        )
    return (labels != 0).astype(np.uint8)


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetLayoutError(f"{path}: missing folder ({what})")
    return path


def list_sources(folder: Path) -> list[Path]:
    """Videos and frame folders directly inside ``folder``, in natural order of their ids (file stems)."""
    items = [
        p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES)
    ]
    return sorted(items, key=lambda p: natural_key(p.stem if p.is_file() else p.name))
