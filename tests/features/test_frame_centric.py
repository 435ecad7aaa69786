"""Frame-centric extraction: centred windows with border padding, streamed in bounded memory, one row per frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import extract_video
from mulde_vad.features.video_backbone import RollingWindows, VideoBackbone, window_indices, window_offsets
from mulde_vad.features.weights import MissingWeightsError
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance, read_shard

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated upstream, still supported


def test_window_offsets_and_border_padding_by_hand() -> None:
    np.testing.assert_array_equal(window_offsets(16, 1), np.arange(-8, 8))
    np.testing.assert_array_equal(window_offsets(4, 2), [-4, -2, 0, 2])
    targets, offsets = np.array([0, 1, 5]), window_offsets(4, 2)
    np.testing.assert_array_equal(
        window_indices(targets, offsets, 6, "replicate"), [[0, 0, 0, 2], [0, 0, 1, 3], [1, 3, 5, 5]]
    )
    np.testing.assert_array_equal(
        window_indices(targets, offsets, 6, "reflect"), [[4, 2, 0, 2], [3, 1, 1, 3], [1, 3, 5, 3]]
    )
    # a video shorter than half the window: one reflection, then clamped to the frames that exist
    np.testing.assert_array_equal(
        window_indices(np.array([0]), window_offsets(8, 1), 2, "reflect"), [[0, 0, 0, 1, 0, 1, 0, 0]]
    )


@pytest.mark.parametrize(
    ("n", "window", "dilation", "batch", "padding"),
    [
        (1, 16, 1, 4, "replicate"),
        (23, 16, 1, 5, "replicate"),
        (23, 4, 3, 2, "reflect"),
        (40, 5, 2, 7, "reflect"),
    ],
)
def test_rolling_windows_match_the_direct_computation_in_bounded_memory(n, window, dilation, batch, padding) -> None:
    frames = np.arange(n, dtype=np.int64)[:, None]  # each "frame" is its own index
    windows = RollingWindows(window, dilation, padding, batch)
    got, buffered = [], 0
    for start in range(0, n, 3):
        got += list(windows.push(start, frames[start : start + 3]))
        buffered = max(buffered, len(windows.frames))
    got += list(windows.close())
    starts = [s for s, _ in got]
    rows = np.concatenate([clips[..., 0] for _, clips in got])
    assert starts == sorted(starts) and all(len(c) <= batch for _, c in got)
    np.testing.assert_array_equal(rows, window_indices(np.arange(n), window_offsets(window, dilation), n, padding))
    assert buffered <= window * dilation + 3  # the window's span plus one pushed batch, whatever n


class FrameMeans(torch.nn.Module):
    """A TorchScript "video backbone" with a known answer: the mean of each frame of the clip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 3, 4))


def _ramp_video(folder: Path, n: int) -> Path:
    """Frame t is flat grey at level 10·t (PNG: lossless)."""
    folder.mkdir()
    for t in range(n):
        cv2.imwrite(str(folder / f"{t}.png"), np.full((30, 40, 3), 10 * t, np.uint8))
    return folder


def test_frame_centric_shard_has_one_row_per_frame_with_known_values(tmp_path: Path) -> None:
    torch.jit.script(FrameMeans()).save(tmp_path / "means.pt")
    video = _ramp_video(tmp_path / "ramp", 21)
    config = ExtractionConfig.preset(
        "frame_centric",
        video_weights=str(tmp_path / "means.pt"),
        video_mean=[0.0, 0.0, 0.0],
        video_std=[1.0, 1.0, 1.0],
        video_size=8,
        window=4,
        window_dilation=2,
        batch_size=4,
        device="cpu",
    )
    assert config.kind == "frame"
    store = FeatureStore(tmp_path / "store")
    rows = []
    for run in range(2):
        path = store.shard_path("extract", config.to_dict(), f"ramp{run}")
        provenance = make_provenance(video=video, config=config.to_dict())
        with ShardWriter(path, kind=config.kind, provenance=provenance) as writer:
            summary = extract_video(video, config, writer)
        shard = read_shard(path)
        assert shard.kind == "frame" and shard.n_frames == 21 == summary.n_frames
        rows.append(shard.features["video"])
    expected = window_indices(np.arange(21), window_offsets(4, 2), 21, "replicate") * 10 / 255
    np.testing.assert_allclose(rows[0], expected, atol=1e-6)
    np.testing.assert_array_equal(rows[0], rows[1])


def test_torchvision_video_backbone_without_head_and_its_own_statistics() -> None:
    config = ExtractionConfig(
        extractors=("video",), video_backbone="r3d_18", video_weights="random", video_size=32, window=4, device="cpu"
    )
    backbone = VideoBackbone(config)
    assert backbone.dim == 512
    np.testing.assert_allclose(backbone.mean.flatten().numpy(), [0.43216, 0.394666, 0.37645], rtol=1e-6)
    clips = np.random.default_rng(0).integers(0, 255, (2, 4, 32, 32, 3), dtype=np.uint8)
    out = backbone(clips)
    assert out.shape == (2, 512) and np.isfinite(out).all()


def test_frame_centric_config_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"hiera_large_16x224\.pt"):
        VideoBackbone(ExtractionConfig.preset("frame_centric", device="cpu"))
    with pytest.raises(ValueError, match="cannot be mixed"):
        ExtractionConfig(extractors=("video", "velocity"), video_backbone="r3d_18")
    with pytest.raises(ValueError, match="needs video_backbone"):
        ExtractionConfig(extractors=("video",))
    with pytest.raises(ValueError, match="stride=1"):
        ExtractionConfig(extractors=("video",), video_backbone="r3d_18", stride=2)
    with pytest.raises(ValueError, match="video_mean and video_std"):
        VideoBackbone(ExtractionConfig(extractors=("video",), video_backbone="torchscript", video_weights="x.pt"))
