"""UCSD Ped1 / Ped2, in the original layout or the frame-folder redistribution used by AI-VAD.

Original: ``<root>/Train/Train001/*.tif``, ``<root>/Test/Test001/*.tif`` (``Test001_gt`` pixel masks are
ignored) and ``<root>/Test/UCSDped2.m`` (or next to ``Train``). Redistribution: ``<root>/training/frames/01``,
``<root>/testing/frames/01`` with ``<root>/ped2.mat``. Both give ids ``train_01`` / ``test_01``, which
are unique across splits and match AI-VAD's sorted-folder order (see storage.aivad).
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
    natural_key,
    require_dir,
)
from mulde_vad.datasets.matlab import gt_cell_labels, parse_ucsd_m

_ORIGINAL_DIR = re.compile(r"^(Train|Test)(\d+)$")


def folder_videos(root: Path, split: Split, original_dirs: tuple[str, str], frames_dirs: tuple[str, str]) -> list[Path]:
    """Frame folders of a split, from the original layout if present, else from ``<split>/frames``."""
    index = 0 if split == "train" else 1
    original = root / original_dirs[index]
    if original.is_dir():
        return sorted(
            (p for p in original.iterdir() if p.is_dir() and _ORIGINAL_DIR.match(p.name)), key=lambda p: p.name
        )
    frames = require_dir(
        root / frames_dirs[index] / "frames", f"{original_dirs[index]}/ or {frames_dirs[index]}/frames/"
    )
    return sorted((p for p in frames.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def split_id(split: Split, folder: Path) -> str:
    """``train_01`` from ``Train001`` or ``01``."""
    digits = re.findall(r"\d+", folder.name)
    if not digits:
        raise DatasetLayoutError(f"{folder}: expected a numbered video folder (Train001, Test001 or 01)")
    return f"{split}_{int(digits[-1]):02d}"


@dataclass(frozen=True)
class UCSDPed:
    root: Path
    name: str = "ped2"

    def __post_init__(self) -> None:
        if self.name not in ("ped1", "ped2"):
            raise ValueError(f"name must be 'ped1' or 'ped2', got {self.name!r}")

    def videos(self, split: Split) -> list[VideoRecord]:
        split = check_split(split)
        root = Path(self.root)
        folders = folder_videos(root, split, ("Train", "Test"), ("training", "testing"))
        if not folders:
            raise DatasetLayoutError(f"{root}: no {split} video folders found")
        ids = [split_id(split, f) for f in folders]
        if split == "train":
            return [VideoRecord(self.name, v, split, f, None) for v, f in zip(ids, folders, strict=True)]
        counts = [frame_count(f) for f in folders]
        return [
            VideoRecord(self.name, v, split, f, labels)
            for v, f, labels in zip(ids, folders, self._test_labels(root, ids, counts), strict=True)
        ]

    def _test_labels(self, root: Path, ids: list[str], counts: list[int]) -> list[np.ndarray]:
        number = self.name[-1]
        for candidate in (root / "Test" / f"UCSDped{number}.m", root / f"UCSDped{number}.m"):
            if candidate.is_file():
                per_video = parse_ucsd_m(candidate)
                if len(per_video) != len(ids):
                    raise DatasetLayoutError(
                        f"{candidate}: {len(per_video)} gt_frame lines but {len(ids)} test video folders"
                    )
                return [
                    intervals_to_labels(iv, n, video=v, base=1) for iv, n, v in zip(per_video, counts, ids, strict=True)
                ]
        mat = root / f"{self.name}.mat"
        if not mat.is_file():
            raise DatasetLayoutError(f"{root}: no ground truth; expected Test/UCSDped{number}.m or {self.name}.mat")
        return gt_cell_labels(mat, ids, counts)
