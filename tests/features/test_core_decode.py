"""Decoding streams frames in order, honours stride/resize, and names the file and last good frame on errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mulde_vad.features.decode import VideoDecodeError, open_video


def write_video(path: Path, n_frames: int, size: tuple[int, int] = (64, 48), fourcc: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    for i in range(n_frames):
        writer.write(np.full((size[1], size[0], 3), (i * 8) % 256, np.uint8))
    writer.release()
    return path


def test_video_file_batches_cover_every_frame_in_order(tmp_path: Path) -> None:
    reader = open_video(write_video(tmp_path / "v.avi", 30))
    assert reader.n_frames == 30 and reader.frame_size == (64, 48)
    batches = list(reader.iter_batches(7))
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    indices = np.concatenate([b.indices for b in batches])
    np.testing.assert_array_equal(indices, np.arange(30))
    levels = np.concatenate([b.frames.reshape(len(b), -1).mean(axis=1) for b in batches])
    np.testing.assert_allclose(levels, np.arange(30) * 8, atol=3)  # MJPG is lossy


def test_stride_and_resize(tmp_path: Path) -> None:
    reader = open_video(write_video(tmp_path / "v.avi", 10), stride=3, resize=(32, 24))
    (batch,) = list(reader.iter_batches(16))
    np.testing.assert_array_equal(batch.indices, [0, 3, 6, 9])
    assert batch.frames.shape == (4, 24, 32, 3)


def test_frame_folder_sorts_numerically(tmp_path: Path) -> None:
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 20, np.uint8))
    (batch,) = list(open_video(tmp_path).iter_batches(8))
    assert batch.frames[:, 0, 0, 0].tolist() == [20, 40, 200]


def test_truncated_video_names_file_and_last_good_frame(tmp_path: Path) -> None:
    data = write_video(tmp_path / "v.avi", 30).read_bytes()
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match=r"cut\.avi.*(after frame \d+)"):
        for _ in open_video(truncated).iter_batches(4):
            pass


@pytest.mark.parametrize("make", ["missing", "empty_folder", "garbage"])
def test_unreadable_sources_raise_with_the_path(tmp_path: Path, make: str) -> None:
    path = tmp_path / make
    if make == "empty_folder":
        path.mkdir()
    elif make == "garbage":
        path = tmp_path / "garbage.mp4"
        path.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoDecodeError, match=path.name):
        list(open_video(path).iter_batches(4))
