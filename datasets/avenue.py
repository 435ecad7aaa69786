"""CUHK Avenue: ``training_videos/01.avi`` / ``testing_videos/01.avi`` with per-video masks
``ground_truth_demo/testing_label_mask/{i}_label.mat``, or the ``{training,testing}/frames/01``
redistribution; ``<root>/avenue.mat`` (a ``gt`` cell) is used whenever present. Ids ``train_01``/``test_01``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
from mulde_vad.datasets.matlab import gt_cell_labels, load_vol_label
from mulde_vad.datasets.ucsd import split_id


@dataclass(frozen=True)
class Avenue:
    root: Path
    name: str = "avenue"

    def _sources(self, split: Split) -> list[Path]:
        root = Path(self.root)
        videos = root / ("training_videos" if split == "train" else "testing_videos")
        if videos.is_dir():
            items = [p for p in videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
        else:
            frames = require_dir(root / ("training" if split == "train" else "testing") / "frames", "videos or frames")
            items = [p for p in frames.iterdir() if p.is_dir()]
        if not items:
            raise DatasetLayoutError(f"{root}: no {split} videos found")
        return sorted(items, key=lambda p: natural_key(p.name))

    def videos(self, split: Split) -> list[VideoRecord]:
        split = check_split(split)
        sources = self._sources(split)
        ids = [split_id(split, s) for s in sources]
        if split == "train":
            return [VideoRecord(self.name, v, split, s, None) for v, s in zip(ids, sources, strict=True)]
        counts = [frame_count(s) for s in sources]
        root = Path(self.root)
        if (root / "avenue.mat").is_file():
            labels = gt_cell_labels(root / "avenue.mat", ids, counts)
        else:
            masks = require_dir(root / "ground_truth_demo" / "testing_label_mask", "avenue.mat or label masks")
            labels = []
            for source, v, n in zip(sources, ids, counts, strict=True):
                path = masks / f"{int(v.split('_')[-1])}_label.mat"
                if not path.is_file():
                    raise DatasetLayoutError(f"{path}: missing label mask file for video {source.name}")
                labels.append(check_label_length(load_vol_label(path), n, video=v, origin=path))
        return [VideoRecord(self.name, v, split, s, y) for v, s, y in zip(ids, sources, labels, strict=True)]
