"""Pooled features of each object crop: a built-in ImageNet CNN, a torchvision image model, TorchScript or ONNX."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors import register
from mulde_vad.features.extractors.cnn import CNN_ENCODERS
from mulde_vad.features.extractors.embedding import CropEncoder, for_cpu_inference, strip_classifier
from mulde_vad.features.weights import load_torchscript, load_weights, require_file


def torchscript_width(module: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor) -> int:
    """Output width of a TorchScript (or ONNX) encoder, found with one forward pass on ``example``."""
    with torch.inference_mode():
        out = module(example)
    if out.ndim != 2 or out.shape[0] != example.shape[0]:
        raise ValueError(f"a TorchScript encoder must return (batch, dim) features, got shape {tuple(out.shape)}")
    return int(out.shape[1])


class OnnxEncoder:
    """An ONNX image encoder run by onnxruntime on the CPU: (n, 3, S, S) float32 → (n, dim).

    For MobileNet-style encoders onnxruntime's CPU kernels are about 1.5× faster than a frozen oneDNN
    TorchScript module (bench/predict_speed.py); export one with ``torch.onnx.export``.
    """

    def __init__(self, path: Path, threads: int) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("backbone='onnx' needs onnxruntime: pip install 'mulde-vad[export]'") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            raise ValueError(f"{path}: not an ONNX model onnxruntime can run ({error})") from error
        self.input = self.session.get_inputs()[0].name

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(crops.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: x})[0])


@register("backbone")
def backbone_extractor(config: ExtractionConfig) -> CropEncoder:
    device = resolve_device(config.device)
    size = config.backbone_size
    what = f"backbone {config.backbone}"
    if config.backbone == "onnx":
        encoder = OnnxEncoder(require_file(config.backbone_weights, what, "backbone_weights"), torch.get_num_threads())
        dim = torchscript_width(encoder, torch.zeros(1, 3, size, size))
        return CropEncoder(
            "backbone", encoder, dim, size=size, mean=config.backbone_mean, std=config.backbone_std, device=device
        )
    if config.backbone == "torchscript":
        model = load_torchscript(require_file(config.backbone_weights, what, "backbone_weights"), device)
        dim = torchscript_width(model, torch.zeros(1, 3, size, size, device=device))
    elif config.backbone in CNN_ENCODERS:
        model = CNN_ENCODERS[config.backbone]()
        load_weights(model, config.backbone_weights, what, "backbone_weights")
        dim = model.dim
        model = model.eval().to(device)
    else:
        from torchvision.models import get_model

        model = get_model(config.backbone, weights=None)
        load_weights(
            model,
            config.backbone_weights,
            what,
            "backbone_weights",
            torchvision_model=config.backbone,
            allow_download=config.allow_download,
        )
        dim = strip_classifier(model)
        model = model.eval().to(device)
    if device.type == "cpu":
        model = for_cpu_inference(model, torch.zeros(2, 3, size, size))
    return CropEncoder(
        "backbone", model, dim, size=size, mean=config.backbone_mean, std=config.backbone_std, device=device
    )
