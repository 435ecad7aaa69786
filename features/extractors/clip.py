"""CLIP image features of each object crop (AI-VAD's deep feature: ViT-B/16 ``encode_image``, 512-d)."""

from __future__ import annotations

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors import register
from mulde_vad.features.extractors.embedding import CropEncoder
from mulde_vad.features.weights import cache_dir, require, resolve_open_clip

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_clip(model_name: str, weights: str | None, *, allow_download: bool):
    """An open_clip model in eval mode from a local checkpoint, an open_clip pretrained tag (already in the
    cache, or downloaded there with ``allow_download``) or "random"."""
    import open_clip

    resolution = resolve_open_clip(weights, model_name)
    require(resolution, f"CLIP {model_name}", "appearance_weights", allow_download=allow_download)
    if resolution.random:
        return open_clip.create_model(model_name, pretrained=None).eval()
    if resolution.path is not None:
        return open_clip.create_model(model_name, pretrained=str(resolution.path)).eval()
    return open_clip.create_model(model_name, pretrained=weights, cache_dir=str(cache_dir() / "open_clip")).eval()


@register("clip")
def clip_extractor(config: ExtractionConfig) -> CropEncoder:
    device = resolve_device(config.device)
    model = load_clip(config.appearance_model, config.appearance_weights, allow_download=config.allow_download)
    model = model.to(device)
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple | list) else size
    return CropEncoder(
        "clip",
        model.encode_image,
        model.visual.output_dim,
        size=size,
        mean=CLIP_MEAN,
        std=CLIP_STD,
        device=device,
        bgr=config.appearance_bgr,
    )
