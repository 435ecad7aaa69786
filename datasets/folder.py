"""A generic dataset: ``<root>/{train,test}/<video_id>.<mp4|avi|...>`` or ``<root>/{train,test}/<video_id>/<n>.jpg``.

Optional ``<root>/labels.csv`` (header ``video_id,start_frame,end_frame``; 0-based inclusive anomalous
intervals, several rows per video allowed; a UTF-8 byte-order mark, as Excel writes, is accepted). Test
videos not listed are all normal. A video id must not appear in both splits: shards are keyed by id alone.
A test video whose frames cannot be counted is returned with its ``error`` set, so it fails alone.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mulde_vad.datasets.base import (
    DatasetLayoutError,
    Split,
    VideoRecord,
    check_split,
    frame_count,
    intervals_to_labels,
    list_sources,
    require_dir,
)

_HEADER = ["video_id", "start_frame", "end_frame"]


def read_labels_csv(path: Path) -> dict[str, list[tuple[int, int]]]:
    intervals: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if header != _HEADER:
            raise DatasetLayoutError(f"{path}: header must be {','.join(_HEADER)}, got {','.join(header)}")
        for line_no, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                if len(row) != len(_HEADER):
                    raise ValueError(f"{len(row)} columns")
                video, start, end = row[0].strip(), int(row[1]), int(row[2])
            except ValueError as error:
                raise DatasetLayoutError(
                    f"{path}:{line_no}: expected video_id,start_frame,end_frame, got {row}"
                ) from error
            intervals[video].append((start, end))
    return dict(intervals)


@dataclass(frozen=True)
class FolderDataset:
    root: Path
    name: str = "folder"

    def _ids(self, split: Split) -> dict[str, Path]:
        folder = require_dir(Path(self.root) / split, f"{split}/ with one video file or frame folder per video")
        sources = {}
        for source in list_sources(folder):
            video = source.stem if source.is_file() else source.name
            if video in sources:
                raise DatasetLayoutError(
                    f"{folder}: video id {video} appears twice ({sources[video].name}, {source.name})"
                )
            sources[video] = source
        return sources

    def videos(self, split: Split) -> list[VideoRecord]:
        split = check_split(split)
        sources = self._ids(split)
        other = "test" if split == "train" else "train"
        if (Path(self.root) / other).is_dir():
            shared = sorted(set(sources) & set(self._ids(other)))
            if shared:
                raise DatasetLayoutError(f"{self.root}: video ids in both train/ and test/: {shared[:5]}; rename them")
        if split == "train":
            return [VideoRecord(self.name, v, split, s, None) for v, s in sources.items()]
        labels_csv = Path(self.root) / "labels.csv"
        intervals = read_labels_csv(labels_csv) if labels_csv.is_file() else {}
        unknown = sorted(set(intervals) - set(sources))
        if unknown:
            raise DatasetLayoutError(f"{labels_csv}: lists videos that are not in test/: {unknown[:5]}")
        records = []
        for video, source in sources.items():
            try:
                n_frames = frame_count(source)
            except DatasetLayoutError as error:  # this video is unreadable or has a frame gap; the others are fine
                records.append(VideoRecord(self.name, video, split, source, None, error=str(error)))
                continue
            labels = intervals_to_labels(intervals.get(video, []), n_frames, video=video)
            records.append(VideoRecord(self.name, video, split, source, labels))
        return records
