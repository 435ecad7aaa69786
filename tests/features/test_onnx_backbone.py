"""The CPU crop encoders (onnxruntime, OpenVINO at bfloat16): the same crops, normalisation and chunks as every
encoder, known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mulde_vad.features import precision
from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extractors import build_extractor
from mulde_vad.features.extractors.backbone import OpenVinoEncoder, cpu_runtime
from mulde_vad.features.extractors.embedding import CPU_BATCH_STEP, ENCODE_CHUNK, CropEncoder
from mulde_vad.features.onnx_runtime import OnnxModel
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


def test_bf16_encoder_keeps_the_features_of_fp32_within_bfloat16_rounding() -> None:
    """cpu_precision bf16 (OpenVINO) encodes the same crops as fp32 (onnxruntime) to within bfloat16's ~3
    significant digits, on a real-sized network (MobileNetV2, seeded random weights)."""
    crops = torch.rand(6, 3, 96, 96)
    features = {}
    for arithmetic in ("fp32", "bf16"):
        torch.manual_seed(0)  # the same random weights for both builds
        config = ExtractionConfig(
            extractors=("backbone",),
            backbone="mobilenetv2_bottleneck",
            backbone_weights="random",
            backbone_size=96,
            cpu_precision=arithmetic,
            device="cpu",
        )
        extractor = build_extractor("backbone", config)
        features[arithmetic] = extractor.encode(crops).numpy()
    fp32, bf16 = features["fp32"], features["bf16"]
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.999
    assert np.abs(bf16 - fp32).max() < 0.05 * np.abs(fp32).max()
    if precision.native_bf16():  # the arithmetic really changed, so the speed-up is bfloat16's, not a silent fp32 run
        assert not np.array_equal(fp32, bf16)


def _mean_onnx(path: Path, size: int) -> Path:
    example = (torch.zeros(2, 3, size, size),)
    torch.onnx.export(ChannelMean(), example, str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("n")},))
    return path


def test_bf16_onnx_file_runs_on_openvino_where_native_and_an_unreadable_one_is_named(tmp_path: Path) -> None:
    path = _mean_onnx(tmp_path / "mean.onnx", 8)
    config = ExtractionConfig(
        extractors=("backbone",), backbone="onnx", backbone_weights=str(path), backbone_size=8, cpu_precision="bf16"
    )
    extractor = build_extractor("backbone", config)
    assert isinstance(extractor.encode, OpenVinoEncoder) == precision.native_bf16()
    crops = torch.rand(3, 3, 8, 8)
    np.testing.assert_allclose(extractor.encode(crops).numpy(), crops.mean(dim=(2, 3)).numpy(), rtol=1e-2)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.onnx: not an ONNX model OpenVINO can compile"):
        OpenVinoEncoder(tmp_path / "junk.onnx", threads=1)


def test_bf16_on_a_cpu_without_native_bfloat16_runs_fp32_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    precision._warn_emulated.cache_clear()
    assert not precision.cpu_bf16("bf16", "cpu")
    assert isinstance(cpu_runtime(_mean_onnx(tmp_path / "mean.onnx", 8), "bf16"), OnnxModel)
    warnings = [r for r in caplog.records if "no native bfloat16" in r.getMessage()]
    assert len(warnings) == 1 and "cpu_precision=fp32" in warnings[0].getMessage()
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert precision.cpu_bf16("bf16", "cpu") and not precision.cpu_bf16("fp32", "cpu")
    assert not precision.cpu_bf16("bf16", "meta")  # not the CPU: CUDA has its own precision


@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 35])
def test_cpu_chunks_pad_to_few_batch_shapes_and_drop_the_padding(n: int) -> None:
    """Every forward pass sees at most ENCODE_CHUNK rows, a multiple of CPU_BATCH_STEP (OpenVINO prepares
    each new batch shape once); each crop's row is its own, the padding rows are dropped."""
    seen: list[int] = []

    def encode(x: torch.Tensor) -> torch.Tensor:
        seen.append(len(x))
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)

    encoder = CropEncoder(
        "t", encode, 6, size=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), device=torch.device("cpu")
    )
    crops = torch.rand(n, 3, 4, 4)
    rows = encoder.features(crops)
    normalised = (crops - encoder.mean) / encoder.std
    expected = torch.cat([normalised.mean(dim=(2, 3)), normalised.amax(dim=(2, 3))], dim=1).numpy()
    assert rows.shape == (n, 6)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
    assert all(size <= ENCODE_CHUNK["cpu"] and size % CPU_BATCH_STEP == 0 for size in seen)
    assert sum(seen) - n < CPU_BATCH_STEP


@pytest.mark.parametrize("native", [False, True])
def test_a_config_resolves_to_the_precision_this_cpu_computes_and_is_keyed_by_it(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    from mulde_vad.tasks.extract import extract_key

    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    asked = ExtractionConfig.preset("yolo_mobilenet", device="cpu")
    assert asked.cpu_precision == "bf16"
    assert asked.resolved().cpu_precision == ("bf16" if native else "fp32")
    assert ExtractionConfig.preset("ped2_cpu", device="cpu").resolved().cpu_precision == "fp32"
    fp32_key = extract_key(ExtractionConfig.preset("yolo_mobilenet", device="cpu", cpu_precision="fp32"))
    assert (extract_key(asked) == fp32_key) is not native  # a store files float32 features as fp32
