"""Labels never shift silently: frame gaps, labels.csv written by Excel or with extra columns, unreadable videos."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_adapters import mask, write_frames, write_video

from mulde_vad.datasets import DatasetLayoutError, get_adapter
from mulde_vad.datasets.base import frame_count

HEADER = "video_id,start_frame,end_frame\n"


def _dataset(root: Path) -> Path:
    write_frames(root / "train" / "walk", 4, ext=".png", width=0)
    write_frames(root / "test" / "run", 40, ext=".png", width=0)
    return root


def test_a_missing_frame_is_named_instead_of_shifting_the_labels(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    (root / "test" / "run" / "20.png").unlink()
    (root / "labels.csv").write_text(HEADER + "run,31,38\n")
    with pytest.raises(DatasetLayoutError, match=r"run: frame 20\.png is missing \(frames 0\.\.39, 39 files\)"):
        frame_count(root / "test" / "run")
    (record,) = get_adapter("folder", root).videos("test")
    assert record.labels is None and "frame 20.png is missing" in record.error
    padded = write_frames(tmp_path / "padded", 5, width=3)
    (padded / "003.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"frame 003\.jpg is missing"):
        frame_count(padded)


def test_labels_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    (root / "labels.csv").write_bytes(("\ufeff" + HEADER + "run,31,38\n").encode("utf-8"))  # as Excel saves CSV
    (record,) = get_adapter("folder", root).videos("test")
    assert record.labels.tolist() == mask(40, (31, 38))


def test_extra_columns_in_a_labels_row_are_rejected_with_the_line_number(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    (root / "labels.csv").write_text(HEADER + "run,1,2\nrun,31,38,fight\n")
    with pytest.raises(DatasetLayoutError, match=r"labels\.csv:3: expected video_id,start_frame,end_frame"):
        get_adapter("folder", root).videos("test")


def test_an_unreadable_test_video_is_marked_and_the_others_are_listed(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    write_video(root / "test" / "fine.mp4", 6)
    (root / "test" / "broken.mp4").write_bytes(b"not a video")
    records = {r.video_id: r for r in get_adapter("folder", root).videos("test")}
    assert records["broken"].labels is None and "broken.mp4: cannot be read as a video" in records["broken"].error
    assert records["fine"].error is None and records["fine"].labels.tolist() == [0] * 6
    assert records["run"].error is None
