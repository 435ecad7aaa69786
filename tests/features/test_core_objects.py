"""Box filters, foreground boxes, velocity histograms and per-video extraction into a real shard."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mulde_vad.features.boxes import keep_min_area, remove_covered
from mulde_vad.features.config import PRESETS, ExtractionConfig
from mulde_vad.features.extract import extract_video
from mulde_vad.features.extractors import available_extractors
from mulde_vad.features.extractors.velocity import orientation_histogram
from mulde_vad.features.foreground import ForegroundParams, foreground_boxes
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance, read_shard
from mulde_vad.storage.schema import BoxSource


def test_cover_removal_drops_boxes_inside_larger_ones() -> None:
    boxes = np.array([[0, 0, 99, 99], [10, 10, 19, 19], [90, 90, 109, 109], [200, 200, 209, 209]], np.float32)
    # box 1 lies inside box 0; box 2 overlaps box 0 by 10×10 of its 20×20 = 25% < 0.6; box 3 is alone
    np.testing.assert_array_equal(remove_covered(boxes, 0.6), [0, 2, 3])
    np.testing.assert_array_equal(remove_covered(boxes, 0.2), [0, 3])
    np.testing.assert_array_equal(keep_min_area(boxes, 20 * 20), [0, 2])


_TEXTURE = np.random.default_rng(0).integers(120, 256, (12, 12, 3), dtype=np.uint8)


def _square(x: int, y: int, shape: tuple[int, int] = (60, 80)) -> np.ndarray:
    """A textured 12×12 object on a flat background (a flat object would only change at its edges)."""
    frame = np.full((*shape, 3), 40, np.uint8)
    frame[y : y + 12, x : x + 12] = _TEXTURE
    return frame


def test_foreground_box_surrounds_the_moved_object_unless_already_detected() -> None:
    params = ForegroundParams(binary_threshold=18, blur_kernel=3, min_contour_area=5 * 5)
    before, after = _square(10, 20), _square(16, 20)
    (box,) = foreground_boxes(before, after, np.zeros((0, 4)), params)
    x1, y1, x2, y2 = box
    assert x1 <= 10 and y1 <= 20 and x2 >= 27 and y2 >= 31  # union of old and new position, plus margin
    assert x2 - x1 < 30 and y2 - y1 < 20
    known = np.array([[8, 18, 30, 34]])
    assert len(foreground_boxes(before, after, known, params)) == 0
    assert len(foreground_boxes(before, before, np.zeros((0, 4)), params)) == 0


@pytest.mark.parametrize(
    ("u", "v", "bin_index", "value"), [(3.0, 0.0, 0, 3.0), (0.0, 2.0, 2, 2.0), (-1.0, -1.0, 5, 2.0)]
)
def test_orientation_histogram_puts_l1_magnitude_in_the_angle_bin(u, v, bin_index, value) -> None:
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0], flow[:, 1] = u, v
    hist = orientation_histogram(flow, 8)[0]
    assert hist[bin_index].item() == pytest.approx(value)
    assert hist.sum().item() == pytest.approx(value)
    assert orientation_histogram(flow, 1)[0, 0].item() == pytest.approx(abs(u) + abs(v))


def _moving_square_video(path: Path, n_frames: int = 24, step: int = 2) -> Path:
    path.mkdir()
    for t in range(n_frames):
        cv2.imwrite(str(path / f"{t}.png"), cv2.cvtColor(_square(5 + step * t, 24), cv2.COLOR_RGB2BGR))
    return path


def test_extract_video_writes_aligned_rows_to_a_shard_deterministically(tmp_path: Path) -> None:
    video = _moving_square_video(tmp_path / "clip")
    config = ExtractionConfig.preset("weightfree", device="cpu", batch_size=5, foreground_min_area=5 * 5)
    assert {"velocity", "appearance_hist", "geometry"} <= set(available_extractors())
    store = FeatureStore(tmp_path / "store")
    shards = []
    for run in range(2):
        path = store.shard_path("extract", config.to_dict(), f"clip{run}")
        with ShardWriter(path, kind="object", provenance=make_provenance(video=video, config=config.to_dict())) as w:
            summary = extract_video(video, config, w)
        shards.append(read_shard(path))
    shard = shards[0]
    assert shard.n_frames == 24 == summary.n_frames
    objects = shard.objects
    assert np.all(np.diff(objects.frame_index) >= 0)
    for name, dim in (("velocity", 8), ("appearance_hist", 56), ("geometry", 5)):
        assert shard.features[name].shape == (len(objects), dim)
        assert np.isfinite(shard.features[name]).all()
        np.testing.assert_array_equal(shard.features[name], shards[1].features[name])
    # Frame 0 has no predecessor: the whole frame is the only object. Later frames see the moving square.
    assert objects.source[objects.frame_index == 0].tolist() == [BoxSource.WHOLE_FRAME]
    moving = objects.source == BoxSource.FOREGROUND
    assert set(objects.frame_index[moving]) == set(range(1, 24))
    # The square moves right: velocity mass sits in the 0° bin (or its neighbours from edge effects).
    velocity = shard.features["velocity"][moving]
    assert (velocity[:, [0, 1, 7]].sum(1) > 0.8 * velocity.sum(1)).all()


def test_preset_rejects_unknown_names_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown extraction preset 'nope'"):
        ExtractionConfig.preset("nope")
    with pytest.raises(ValueError, match="unknown extraction field"):
        ExtractionConfig.preset("weightfree", detector_treshold=3)
    assert "device" not in ExtractionConfig().to_dict()


def test_cpu_precision_is_validated_and_hashed_only_when_bf16() -> None:
    """fp32 (the default) leaves the stage hash as it was before the field existed, so stores stay valid;
    bf16 changes the features, so it must change the hash and never be served fp32 features."""
    with pytest.raises(ValueError, match="cpu_precision must be 'fp32' or 'bf16', got 'fp16'"):
        ExtractionConfig(cpu_precision="fp16")
    assert "cpu_precision" not in ExtractionConfig().to_dict()
    bf16 = ExtractionConfig(cpu_precision="bf16").to_dict()
    assert bf16["cpu_precision"] == "bf16" and bf16 != ExtractionConfig().to_dict()
    # the presets for live footage run bfloat16; the Ped2 quality gate keeps the float32 of its figures
    assert {name for name, preset in PRESETS.items() if preset.cpu_precision == "bf16"} == {
        "yolo_mobilenet",
        "yolo_blazepose",
    }
