"""Pooled features of each object crop from any torchvision image model or a TorchScript module on disk."""

from __future__ import annotations

import torch

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors import register
from mulde_vad.features.extractors.embedding import CropEncoder, for_cpu_inference, strip_classifier
from mulde_vad.features.weights import load_state_dict, load_torchscript, weights_file


def torchscript_width(module: torch.nn.Module, example: torch.Tensor) -> int:
    """Output width of a TorchScript encoder, found with one forward pass on ``example``."""
    with torch.inference_mode():
        out = module(example)
    if out.ndim != 2 or out.shape[0] != example.shape[0]:
        raise ValueError(f"a TorchScript encoder must return (batch, dim) features, got shape {tuple(out.shape)}")
    return int(out.shape[1])


@register("backbone")
def backbone_extractor(config: ExtractionConfig) -> CropEncoder:
    device = resolve_device(config.device)
    size = config.backbone_size
    if config.backbone == "torchscript":
        path = weights_file(config.backbone_weights, "TorchScript backbone", "backbone_weights")
        if path is None:
            raise ValueError("backbone='torchscript' loads a module from backbone_weights; 'random' has no meaning")
        model = load_torchscript(path, device)
        dim = torchscript_width(model, torch.zeros(1, 3, size, size, device=device))
    else:
        from torchvision.models import get_model

        path = weights_file(config.backbone_weights, f"torchvision {config.backbone}", "backbone_weights")
        model = get_model(config.backbone, weights=None)
        if path is not None:
            load_state_dict(model, path)
        dim = strip_classifier(model)
        model = model.eval().to(device)
    if device.type == "cpu":
        model = for_cpu_inference(model, torch.zeros(2, 3, size, size))
    return CropEncoder(
        "backbone", model, dim, size=size, mean=config.backbone_mean, std=config.backbone_std, device=device
    )
