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


def _bf16_native() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_bf16_encoder_keeps_the_features_of_fp32_within_bfloat16_rounding() -> None:
    """cpu_precision bf16 (OpenVINO) encodes the same crops as fp32 (onnxruntime) to within bfloat16's ~3
    significant digits, on a real-sized network (MobileNetV2, seeded random weights)."""
    crops = torch.rand(6, 3, 96, 96)
    features = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)  # the same random weights for both builds
        config = ExtractionConfig(
            extractors=("backbone",),
            backbone="mobilenetv2_bottleneck",
            backbone_weights="random",
            backbone_size=96,
            cpu_precision=precision,
            device="cpu",
        )
        extractor = build_extractor("backbone", config)
        features[precision] = extractor.encode(crops).numpy()
    fp32, bf16 = features["fp32"], features["bf16"]
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.999
    assert np.abs(bf16 - fp32).max() < 0.05 * np.abs(fp32).max()
    if _bf16_native():  # the arithmetic really changed, so the speed-up is bfloat16's, not a silent fp32 run
        assert not np.array_equal(fp32, bf16)


def test_bf16_onnx_file_is_compiled_by_openvino_and_an_unreadable_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mean.onnx"
    example = (torch.zeros(2, 3, 8, 8),)
    torch.onnx.export(ChannelMean(), example, str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("n")},))
    config = ExtractionConfig(
        extractors=("backbone",), backbone="onnx", backbone_weights=str(path), backbone_size=8, cpu_precision="bf16"
    )
    extractor = build_extractor("backbone", config)
    crops = torch.rand(3, 3, 8, 8)
    np.testing.assert_allclose(extractor.encode(crops).numpy(), crops.mean(dim=(2, 3)).numpy(), rtol=1e-2)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    junk = ExtractionConfig(backbone="onnx", backbone_weights=str(tmp_path / "junk.onnx"), cpu_precision="bf16")
    with pytest.raises(ValueError, match=r"junk\.onnx: not an ONNX model OpenVINO can compile"):
        build_extractor("backbone", junk)
