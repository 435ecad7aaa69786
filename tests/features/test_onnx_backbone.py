"""The ONNX crop encoder (onnxruntime): the same crops and normalisation as every encoder, known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extractors import build_extractor
from mulde_vad.storage.schema import ObjectTable


class ChannelMean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def test_onnx_backbone_encodes_each_normalised_crop(tmp_path: Path) -> None:
    path = tmp_path / "mean.onnx"
    example = (torch.zeros(2, 3, 16, 16),)
    torch.onnx.export(ChannelMean(), example, str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("n")},))
    mean, std = (0.5, 0.25, 0.0), (0.5, 0.25, 1.0)
    config = ExtractionConfig(
        extractors=("backbone",),
        backbone="onnx",
        backbone_weights=str(path),
        backbone_size=16,
        backbone_mean=mean,
        backbone_std=std,
        device="cpu",
    )
    extractor = build_extractor("backbone", config)
    assert extractor.dim == 3
    frames = np.full((1, 40, 60, 3), 128, np.uint8)
    frames[0, :, :30] = (200, 10, 10)
    boxes = np.array([[2, 2, 20, 30], [35, 5, 55, 35], [40, 0, 59, 39]], np.float32)
    table = ObjectTable(
        np.zeros(3, np.int64), boxes, np.ones(3, np.float32), np.zeros(3, np.int32), np.zeros(3, np.uint8)
    )
    batch = ObjectBatch(frames, table, np.zeros(3, np.int64), torch.device("cpu"))
    expected = (np.array([[200, 10, 10], [128, 128, 128], [128, 128, 128]]) / 255 - mean) / std
    np.testing.assert_allclose(extractor(batch), expected, atol=1e-5)


def test_unreadable_onnx_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    config = ExtractionConfig(backbone="onnx", backbone_weights=str(tmp_path / "junk.onnx"), device="cpu")
    with pytest.raises(ValueError, match=r"junk\.onnx: not an ONNX model onnxruntime can run"):
        build_extractor("backbone", config)
