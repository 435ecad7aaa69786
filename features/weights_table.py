"""What each extraction preset needs in weights, and whether this machine has them (``mulde-vad weights``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mulde_vad.features.config import PRESETS, ExtractionConfig
from mulde_vad.features.extractors.cnn import CNN_ENCODERS
from mulde_vad.features.weights import (
    CACHE_ENV,
    WEIGHTS_ENV,
    Resolution,
    resolve_file,
    resolve_open_clip,
    resolve_torchvision,
    resolve_yolo,
    search_dirs,
)


@dataclass(frozen=True)
class WeightNeed:
    """One model of a config: what it is, the config field that names its weights, and how they resolve."""

    model: str
    field: str
    resolution: Resolution


def _image_model(name: str, value: str | None) -> Resolution:
    """A "torchscript" file, a built-in CNN's state dict, or a torchvision model's weights."""
    if name == "torchscript" or name in CNN_ENCODERS:
        return resolve_file(value)
    return resolve_torchvision(value, name)


def weight_needs(config: ExtractionConfig) -> list[WeightNeed]:
    """Every model ``config`` loads, in pipeline order (detector, pose, flow, crop encoders, video backbone)."""
    c, uses = config, set(config.extractors)
    needs = []
    if c.detector_weights is not None:
        needs.append(WeightNeed("detector (ultralytics YOLO)", "detector_weights", resolve_yolo(c.detector_weights)))
    if "pose" in uses and c.uses_blazepose:
        needs.append(WeightNeed("pose (BlazePose, LiteRT)", "pose_weights", resolve_file(c.pose_weights)))
    elif "pose" in uses:
        needs.append(WeightNeed("pose (ultralytics YOLO-pose)", "pose_weights", resolve_yolo(c.pose_weights)))
    if "velocity" in uses and c.flow.startswith("raft"):
        needs.append(
            WeightNeed(f"flow (torchvision {c.flow})", "flow_weights", resolve_torchvision(c.flow_weights, c.flow))
        )
    if "clip" in uses:
        model = f"crops (open_clip {c.appearance_model})"
        needs.append(
            WeightNeed(model, "appearance_weights", resolve_open_clip(c.appearance_weights, c.appearance_model))
        )
    if "backbone" in uses:
        needs.append(
            WeightNeed(f"crops ({c.backbone})", "backbone_weights", _image_model(c.backbone, c.backbone_weights))
        )
    if "video" in uses and c.video_backbone:
        model = f"clips ({c.video_backbone})"
        needs.append(WeightNeed(model, "video_weights", _image_model(c.video_backbone, c.video_weights)))
    return needs


def weight_files(config: ExtractionConfig) -> dict[str, Path]:
    """The weight files ``config`` loads from disk (field → path), for the provenance of what it writes."""
    return {n.field: n.resolution.path for n in weight_needs(config) if n.resolution.path is not None}


def weights_table(presets: Mapping[str, ExtractionConfig] = PRESETS) -> str:
    """A plain-text table: preset, model, configured weights, status and file; then how to get what is missing."""
    rows = [("preset", "model", "weights", "status", "file")]
    hints: dict[str, str] = {}
    for name, config in presets.items():
        needs = weight_needs(config)
        if not needs:
            rows.append((name, "(none: weight-free)", "-", "-", "-"))
        for need in needs:
            r = need.resolution
            rows.append((name, need.model, f"{need.field}={r.value}", r.status, str(r.path) if r.path else "-"))
            if r.path is None and not r.random:
                hints[str(r.value)] = r.hint()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows]
    folders = ", ".join(map(str, search_dirs()))
    lines += [
        "",
        f"Files are looked for as given, then by name in ${WEIGHTS_ENV} and the cache (${CACHE_ENV}): {folders}",
    ]
    lines += [f"  {value}: {hint}" for value, hint in hints.items()]
    return "\n".join(lines)
