"""Pooled features of each object crop from a built-in ImageNet CNN, any torchvision image model, or TorchScript."""

from __future__ import annotations

import torch

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors import register
from mulde_vad.features.extractors.cnn import CNN_ENCODERS
from mulde_vad.features.extractors.embedding import CropEncoder, strip_classifier
from mulde_vad.features.weights import load_torchscript, load_weights, require_file


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
    what = f"backbone {config.backbone}"
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
    return CropEncoder(
        "backbone", model, dim, size=size, mean=config.backbone_mean, std=config.backbone_std, device=device
    )
