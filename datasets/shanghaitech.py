"""ShanghaiTech Campus: ``training/videos/01_001.avi`` (or extracted ``training/frames/01_001/``),
``testing/frames/01_0014/000.jpg`` and ``testing/test_frame_mask/01_0014.npy`` (0/1 per frame)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mulde_vad.datasets.base import (
    VIDEO_SUFFIXES,
    DatasetLayoutError,
    Split,
    VideoRecord,
    check_label_length,
    check_split,
    frame_count,
    natural_key,
    require_dir,
)


@dataclass(frozen=True)
class ShanghaiTech:
    root: Path
    name: str = "shanghaitech"

    def videos(self, split: Split) -> list[VideoRecord]:
        split = check_split(split)
        root = Path(self.root)
        if split == "train":
            videos = root / "training" / "videos"
            if videos.is_dir():
                sources = [p for p in videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
            else:
                frames = require_dir(root / "training" / "frames", "training/videos/*.avi or training/frames/")
                sources = [p for p in frames.iterdir() if p.is_dir()]
        else:
            sources = [
                p for p in require_dir(root / "testing" / "frames", "test frame folders").iterdir() if p.is_dir()
            ]
        if not sources:
            raise DatasetLayoutError(f"{root}: no {split} videos found")
        sources.sort(key=lambda p: natural_key(p.name))
        if split == "train":
            return [VideoRecord(self.name, s.stem, split, s, None) for s in sources]
        masks = require_dir(root / "testing" / "test_frame_mask", "per-video .npy frame masks")
        records = []
        for source in sources:
            path = masks / f"{source.name}.npy"
            if not path.is_file():
                raise DatasetLayoutError(f"{path}: missing frame mask for test video {source.name}")
            labels = check_label_length(np.load(path), frame_count(source), video=source.name, origin=path)
            records.append(VideoRecord(self.name, source.name, split, source, labels))
        return records
