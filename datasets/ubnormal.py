"""UBnormal, one-class: train on the normal training videos only, test on the normal + abnormal test videos.

Layout: ``<root>/Scene{N}/<video>.mp4`` with, per abnormal video,
``<root>/Scene{N}/<video>_annotations/<video>_tracks.txt`` (rows: object id, first frame, last frame;
0-based inclusive). Split lists ``normal_training_video_names.txt``, ``normal_test_video_names.txt`` and
``abnormal_test_video_names.txt`` are read from ``<root>/scripts/`` or ``<root>/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mulde_vad.datasets.base import (
    DatasetLayoutError,
    Split,
    VideoRecord,
    check_split,
    frame_count,
    intervals_to_labels,
)

_SPLIT_FILES = {
    "train": ("normal_training_video_names.txt",),
    "test": ("normal_test_video_names.txt", "abnormal_test_video_names.txt"),
}


def _names(root: Path, filename: str) -> list[str]:
    for folder in (root / "scripts", root):
        if (folder / filename).is_file():
            lines = (folder / filename).read_text().split()
            return [Path(line.strip()).stem for line in lines if line.strip()]
    raise DatasetLayoutError(f"{root}: missing split list {filename} (looked in scripts/ and the root)")


def read_tracks(path: Path) -> list[tuple[int, int]]:
    """(first, last) frame of every anomalous object track."""
    intervals = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
        if not fields:
            continue
        if len(fields) < 3:
            raise DatasetLayoutError(f"{path}:{line_no}: expected 'object_id, first_frame, last_frame', got {line!r}")
        intervals.append((int(float(fields[1])), int(float(fields[2]))))
    return intervals


@dataclass(frozen=True)
class UBnormal:
    root: Path
    name: str = "ubnormal"

    def videos(self, split: Split) -> list[VideoRecord]:
        split = check_split(split)
        root = Path(self.root)
        index = {p.stem: p for p in root.glob("Scene*/*.mp4")}
        records = []
        for filename in _SPLIT_FILES[split]:
            for video in _names(root, filename):
                if video not in index:
                    raise DatasetLayoutError(f"{root}: video {video} from {filename} not found under Scene*/")
                source = index[video]
                labels = None
                if split == "test":
                    n_frames = frame_count(source)
                    labels = np.zeros(n_frames, np.uint8)
                    if filename.startswith("abnormal"):
                        tracks = source.parent / f"{video}_annotations" / f"{video}_tracks.txt"
                        if not tracks.is_file():
                            raise DatasetLayoutError(f"{tracks}: missing track annotations of abnormal video {video}")
                        labels = intervals_to_labels(read_tracks(tracks), n_frames, video=video)
                records.append(VideoRecord(self.name, video, split, source, labels))
        return records
