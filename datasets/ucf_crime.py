"""UCF-Crime in MULDE's one-class split: train on the 800 normal training videos, test on the standard 290.

Training videos: ``<root>/Training-Normal-Videos-Part-*/*.mp4``. Test videos are the ones listed in
``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` (``name class s1 e1 s2 e2``, -1 for an absent
event), found by file name anywhere under ``<root>``. Event bounds are read as 0-based frame indices,
both ends inclusive; normal test videos are all 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mulde_vad.datasets.base import (
    DatasetLayoutError,
    Split,
    VideoRecord,
    check_split,
    frame_count,
    intervals_to_labels,
    natural_key,
)

ANNOTATION_FILE = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def read_annotations(path: Path) -> list[tuple[str, list[tuple[int, int]]]]:
    """(video file name, events) per line, in file order."""
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise DatasetLayoutError(f"{path}:{line_no}: expected 'name class s1 e1 s2 e2', got {line!r}")
        bounds = [int(f) for f in fields[2:]]
        events = [(s, e) for s, e in zip(bounds[::2], bounds[1::2], strict=True) if s != -1 and e != -1]
        rows.append((fields[0], events))
    return rows


@dataclass(frozen=True)
class UCFCrime:
    root: Path
    name: str = "ucf_crime"

    def videos(self, split: Split) -> list[VideoRecord]:
        split = check_split(split)
        root = Path(self.root)
        if split == "train":
            sources = sorted(root.glob("Training-Normal-Videos-Part-*/*.mp4"), key=lambda p: natural_key(p.name))
            if not sources:
                raise DatasetLayoutError(f"{root}: no Training-Normal-Videos-Part-*/*.mp4 found")
            return [VideoRecord(self.name, s.stem, split, s, None) for s in sources]
        annotation = next(iter(sorted(root.rglob(ANNOTATION_FILE))), None)
        if annotation is None:
            raise DatasetLayoutError(f"{root}: {ANNOTATION_FILE} not found")
        index = {p.name: p for p in root.rglob("*.mp4") if not p.parent.name.startswith("Training-Normal")}
        records = []
        for filename, events in read_annotations(annotation):
            if filename not in index:
                raise DatasetLayoutError(f"{annotation}: test video {filename} not found under {root}")
            source = index[filename]
            labels = intervals_to_labels(events, frame_count(source), video=source.stem)
            records.append(VideoRecord(self.name, source.stem, split, source, labels))
        return records
