"""CPU crops (two matrix products per box) equal torchvision's ``roi_align`` crops, and so do the features;
the orientation histogram equals the degree formulation it replaced.

Tolerance: 1e-4 on pixels in [0, 1] (roi_align computes its sample coordinates in float32; the largest
difference seen is 3e-5), and the same relative tolerance on features computed from the crops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.crops import crop_boxes, crop_frames
from mulde_vad.features.extractors import build_extractor
from mulde_vad.features.extractors.cnn import MobileNetV2Bottleneck
from mulde_vad.features.extractors.velocity import orientation_histogram
from mulde_vad.models.mulde import MULDE
from mulde_vad.storage.schema import ObjectTable

CROP_ATOL = 1e-4


def _boxes(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """Random boxes of every kind the pipeline meets: small, large, sub-pixel, partly outside, whole frame."""
    x1, y1 = rng.uniform(-20, width - 10, n), rng.uniform(-20, height - 10, n)
    w, h = rng.uniform(0.3, width * 0.6, n), rng.uniform(0.3, height * 0.6, n)
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    boxes[0] = (0, 0, width - 1, height - 1)  # the whole-frame fallback
    boxes[1] = (width - 10, height - 10, width + 5, height + 10)  # past the bottom-right corner
    boxes[2] = (5.2, 7.7, 5.6, 8.1)  # smaller than a pixel
    return boxes


@pytest.fixture
def batch() -> ObjectBatch:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 48, 72, 3), dtype=np.uint8)
    # A ramp rather than a flat patch: on a flat crop the gradient histogram is float rounding noise, whatever
    # cuts the crop, so it would not test the crops.
    ramp = np.linspace(60, 250, 30)[None, :, None] + np.linspace(0, -50, 20)[:, None, None]
    frames[:, 10:30, 20:50] = ramp.astype(np.uint8)
    boxes = _boxes(rng, 40, 72, 48)
    table = ObjectTable(
        rng.integers(0, 3, len(boxes)),
        boxes,
        np.ones(len(boxes), np.float32),
        np.zeros(len(boxes), np.int32),
        np.zeros(len(boxes), np.uint8),
    )
    flows = rng.normal(0, 3, (3, 48, 72, 2)).astype(np.float32)
    return ObjectBatch(frames, table, table.frame_index, torch.device("cpu"), flows=flows)


@pytest.mark.parametrize("size", [224, 32, 5])
def test_cpu_crops_equal_roi_align(batch: ObjectBatch, size: int) -> None:
    boxes = batch.objects.boxes
    reference = crop_boxes(batch.images, batch.batch_index, boxes, size)
    crops = batch.crops(size)
    assert crops.shape == reference.shape == (len(boxes), 3, size, size)
    torch.testing.assert_close(crops, reference, atol=CROP_ATOL, rtol=0)
    assert reference.abs().max() > 0.5  # the comparison is on real pixel values, not zeros
    flow_reference = crop_boxes(batch.flow_tensor, batch.batch_index, boxes, size)
    torch.testing.assert_close(batch.flow_crops(size), flow_reference, atol=CROP_ATOL * 10, rtol=0)  # |flow| ~ 10


def test_crop_frames_of_no_boxes_is_empty() -> None:
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    crops = crop_frames(frames, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 16)
    assert crops.shape == (0, 3, 16, 16)


def _roi_align_crops(self: ObjectBatch, size: int) -> torch.Tensor:
    return crop_boxes(self.images, self.batch_index, self.objects.boxes, size)


def _roi_align_flow_crops(self: ObjectBatch, size: int) -> torch.Tensor:
    return crop_boxes(self.flow_tensor, self.batch_index, self.objects.boxes, size)


def test_features_from_cpu_crops_equal_features_from_roi_align(
    batch: ObjectBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "mnv2.pt"
    torch.save(MobileNetV2Bottleneck().state_dict(), weights)
    config = ExtractionConfig(
        extractors=("velocity", "appearance_hist", "backbone"),
        backbone="mobilenetv2_bottleneck",
        backbone_weights=str(weights),
        backbone_size=64,
        device="cpu",
    )
    extractors = [build_extractor(name, config) for name in config.extractors]
    fast = {e.name: e(batch) for e in extractors}
    monkeypatch.setattr(ObjectBatch, "crops", _roi_align_crops)
    monkeypatch.setattr(ObjectBatch, "flow_crops", _roi_align_flow_crops)
    reference = {e.name: e(batch) for e in extractors}
    scale = np.abs(reference["backbone"]).max()  # a random-init MobileNetV2's features are tiny: compare relative
    assert scale > 0 and (reference["backbone"] != 0).mean() > 0.1
    np.testing.assert_allclose(fast["backbone"] / scale, reference["backbone"] / scale, atol=1e-3)
    # Histograms: a crop pixel within float rounding of a bin edge may change bins, moving its weight to the
    # next bin; a velocity row's sum (the crop's mean L1 flow) does not change, and no bin moves by more
    # than 1e-3 of it. A colour bin moves by at most a few pixels' counts (1/1024 of a 32×32 crop).
    total = reference["velocity"].sum(axis=1)
    np.testing.assert_allclose(fast["velocity"].sum(axis=1), total, rtol=1e-5)
    assert (np.abs(fast["velocity"] - reference["velocity"]).max(axis=1) <= 1e-3 * total).all() and total.max() > 0
    colour, gradients = np.split(np.abs(fast["appearance_hist"] - reference["appearance_hist"]), [24], axis=1)
    assert colour.max() <= 3 / 1024
    # the gradient histogram is L2-normalised: on a nearly flat crop (a sub-pixel box) a few flips weigh more
    assert gradients.mean() < 1e-3 and gradients.max() < 0.05
    # and the anomaly scores a model gives the rows move by no more than the features do
    model = MULDE(hidden_units=(16, 16), max_steps=20, device="cpu").fit(reference["velocity"])
    scores = model.anomaly_score(reference["velocity"])
    np.testing.assert_allclose(model.anomaly_score(fast["velocity"]), scores, rtol=1e-3, atol=1e-3 * np.ptp(scores))


def _degree_histogram(flow: torch.Tensor, bins: int) -> torch.Tensor:
    """The orientation histogram as first written: degrees, ``remainder``, ``scatter_add``."""
    u, v = flow[:, 0], flow[:, 1]
    angle = torch.remainder(torch.rad2deg(torch.atan2(v, u)), 360.0)
    index = torch.clamp((angle / (360.0 / bins)).long(), max=bins - 1).flatten(1)
    hist = torch.zeros(len(flow), bins)
    hist.scatter_add_(1, index, (u.abs() + v.abs()).flatten(1))
    return hist / (flow.shape[2] * flow.shape[3])


@pytest.mark.parametrize("bins", [8, 3, 1])
def test_orientation_histogram_equals_the_degree_formulation(bins: int) -> None:
    flow = torch.from_numpy(np.random.default_rng(1).normal(0, 3, (20, 2, 32, 32)).astype(np.float32))
    flow[0] = 0  # no motion: an empty histogram
    reference, hist = _degree_histogram(flow, bins), orientation_histogram(flow, bins)
    torch.testing.assert_close(hist.sum(dim=1), reference.sum(dim=1), rtol=1e-5, atol=0)
    # only a pixel within float rounding of a bin edge may land on the other side of it
    assert ((hist - reference).abs().amax(dim=1) <= 1e-3 * reference.sum(dim=1)).all()
    assert hist[0].abs().max() == 0 and reference[1:].amin() > 0
