"""CLIP image features of each object crop (AI-VAD's deep feature: ViT-B/16 ``encode_image``, 512-d)."""

from __future__ import annotations

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors import register
from mulde_vad.features.extractors.embedding import CropEncoder
from mulde_vad.features.weights import RANDOM_INIT, MissingWeightsError, require_file

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_clip(model_name: str, weights: str | None, *, allow_download: bool):
    """An open_clip model in eval mode from a local checkpoint, a hub tag (``allow_download``) or "random"."""
    import open_clip

    if weights is None:
        raise MissingWeightsError(
            f"CLIP {model_name} needs weights: set appearance_weights to a local checkpoint, an open_clip tag "
            f"({', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none known'}) with "
            f"allow_download, or {RANDOM_INIT!r} (tests only)"
        )
    if weights == RANDOM_INIT:
        pretrained = None
    elif weights in open_clip.list_pretrained_tags_by_model(model_name):
        if not allow_download:
            raise MissingWeightsError(
                f"CLIP weights {model_name}/{weights} come from the open_clip hub: set allow_download=true on a "
                "machine with internet access (they are cached afterwards), or pass a local checkpoint file"
            )
        pretrained = weights
    else:
        pretrained = str(require_file(weights, f"CLIP {model_name}"))
    return open_clip.create_model(model_name, pretrained=pretrained).eval()


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
