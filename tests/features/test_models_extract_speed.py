"""bench/extract_speed.py: looped clips repeat their content exactly k times, and one measurement is consistent."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.extract_speed import MULTIPLES, measure, table, write_looped
from mulde_vad.features.decode import open_video


def _frame_folder(root: Path, n: int) -> Path:
    """``n`` 64×48 frames of a bright square moving 3 px per frame over a dark background."""
    root.mkdir()
    for i in range(n):
        frame = np.full((48, 64, 3), 30, np.uint8)
        frame[16:32, 4 + 3 * i : 20 + 3 * i] = (220, 180, 90)
        cv2.imwrite(str(root / f"{i}.png"), frame)
    return root


def _decode(path: Path) -> np.ndarray:
    return np.concatenate([b.frames for b in open_video(path).iter_batches(64)])


def test_looped_clip_repeats_the_first_frames(tmp_path: Path) -> None:
    source = _frame_folder(tmp_path / "frames", 10)
    clip = _decode(write_looped(source, 6, 3, tmp_path / "x3.mp4"))
    assert clip.shape == (18, 48, 64, 3)
    first = clip[:6].astype(np.int16)
    for k in (1, 2):  # each loop decodes to the same pictures, up to MPEG-4 coding noise
        assert np.abs(clip[6 * k : 6 * (k + 1)] - first).mean() < 3
    # ...while consecutive frames really differ (the square moves), so the check above has teeth
    assert np.abs(first[1:] - first[:-1]).mean() > 3 * np.abs(clip[6:12] - first).mean()
    centre_x = [np.flatnonzero(f[24].mean(axis=1) > 100).mean() for f in clip[:6]]
    np.testing.assert_allclose(np.diff(centre_x), 3, atol=1)


def test_one_measurement_counts_every_frame_and_prints_a_row_per_length(tmp_path: Path) -> None:
    source = _frame_folder(tmp_path / "frames", 12)
    clip = write_looped(source, 12, 1, tmp_path / "x1.mp4")
    warmup = write_looped(source, 4, 1, tmp_path / "warmup.mp4")
    row = measure("weightfree", "backbone", str(clip), str(warmup), "cpu", 4)
    assert row["frames"] == 12 and row["objects"] >= 12  # the moving square (or the whole frame) on every frame
    assert {"decode", "detect", "flow", "velocity", "appearance_hist", "geometry"} <= set(row["seconds"])
    # decode, detect and flow run in the prefetch thread while the main thread extracts: two threads' stage
    # times add up to at most twice the wall time, and no stage outlasts it
    stages = row["seconds"].values()
    assert max(stages) <= row["wall"] * 1.01 and sum(stages) <= 2 * row["wall"] * 1.01
    assert row["rss_mb"] > 0 and row["cuda_mb"] is None
    rows = [row, {**row, "wall": 2 * row["wall"]}, {**row, "wall": 4 * row["wall"]}]
    text = table("weightfree", rows, ["decode", "flow"]).splitlines()
    assert len(text) == 4 + len(MULTIPLES) and text[2].startswith("| length | frames")
    assert [line.split("|")[-3].strip() for line in text[4:]] == ["1.00", "2.00", "4.00"]  # the ×1 time column
