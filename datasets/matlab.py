"""Ground-truth files in MATLAB formats: UCSD ``UCSDped*.m`` scripts and ``.mat`` cells / masks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from mulde_vad.datasets.base import DatasetLayoutError, check_label_length, intervals_to_labels

_GT_FRAME = re.compile(r"gt_frame\s*=\s*\[([^\]]*)\]")
_RANGE = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+))?\s*$")


def parse_ucsd_m(path: Path) -> list[list[tuple[int, int]]]:
    """Per test video, the 1-based inclusive intervals of ``TestVideoFile{end+1}.gt_frame = [a:b, c:d];``."""
    videos = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        match = _GT_FRAME.search(line.split("%", 1)[0])
        if match is None:
            continue
        intervals = []
        for part in filter(str.strip, re.split(r"[,;]", match[1])):
            piece = _RANGE.match(part)
            if piece is None:
                raise DatasetLayoutError(f"{path}:{line_no}: cannot parse {part.strip()!r}; expected 'a:b' or 'a'")
            start = int(piece[1])
            intervals.append((start, int(piece[2] or start)))
        videos.append(intervals)
    if not videos:
        raise DatasetLayoutError(f"{path}: no 'TestVideoFile{{end+1}}.gt_frame = [a:b];' lines found")
    return videos


def _load(path: Path, key: str) -> np.ndarray:
    try:
        data = scipy.io.loadmat(path)
    except (ValueError, OSError, NotImplementedError) as error:  # NotImplementedError: a v7.3 (HDF5) file
        raise DatasetLayoutError(f"{path}: cannot be read as a MATLAB file ({error})") from error
    if key not in data:
        raise DatasetLayoutError(f"{path}: has no variable {key!r} (found {sorted(k for k in data if k[0] != '_')})")
    return data[key]


def load_gt_cell(path: Path, n_videos: int) -> list[np.ndarray]:
    """Entries of the ``gt`` cell of ``ped2.mat`` / ``avenue.mat``, one per test video in order."""
    cell = _load(path, "gt")
    entries = [np.asarray(e) for e in cell.ravel()] if cell.dtype == object else [cell]
    if len(entries) != n_videos:
        raise DatasetLayoutError(f"{path}: 'gt' has {len(entries)} entries but there are {n_videos} test videos")
    return entries


def gt_entry_labels(entry: np.ndarray, n_frames: int, *, video: str, path: Path) -> np.ndarray:
    """Labels from one ``gt`` entry: a per-frame 0/1 vector of the video's length, or a 2×k array of
    1-based inclusive [start; end] columns (k×2 rows are accepted too)."""
    if entry.ndim == 2 and 1 in entry.shape and entry.size == n_frames and np.isin(entry, (0, 1)).all():
        return check_label_length(entry, n_frames, video=video, origin=path)
    if entry.size == 0:
        return np.zeros(n_frames, np.uint8)
    if entry.ndim == 2 and 2 in entry.shape:
        pairs = entry.T if entry.shape[0] == 2 else entry
        return intervals_to_labels([(int(a), int(b)) for a, b in pairs], n_frames, video=video, base=1)
    raise DatasetLayoutError(
        f"{path}: gt entry of video {video} has shape {entry.shape}; expected a {n_frames}-frame 0/1 vector "
        "or a 2×k array of [start; end] intervals"
    )


def gt_cell_labels(path: Path, video_ids: list[str], n_frames: list[int]) -> list[np.ndarray]:
    """Labels of every test video, in order, from the ``gt`` cell of ``ped2.mat`` / ``avenue.mat``."""
    entries = load_gt_cell(path, len(video_ids))
    return [gt_entry_labels(e, n, video=v, path=path) for e, v, n in zip(entries, video_ids, n_frames, strict=True)]


def load_vol_label(path: Path) -> np.ndarray:
    """Avenue ``{i}_label.mat``: per-frame pixel masks; a frame is anomalous when its mask has any pixel."""
    masks = _load(path, "volLabel")
    return np.array([np.asarray(m).any() for m in masks.ravel()], dtype=np.uint8)
