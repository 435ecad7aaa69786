"""Frames/s of ``mulde-vad predict`` on real footage, with a per-stage profile.

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python -m bench.predict_speed [--frames 200] [--device cpu]

vtest.avi (768×576, 10 fps) through the real models: YOLOv8n (``yolo/yolov8n.pt``) boxes plus
frame-difference boxes, DIS flow → velocity, the ImageNet MobileNetV2 bottleneck (1280-d, exported to
TorchScript) on every box; then one MULDE per feature type, fusion, smoothing, events and the overlay
MP4. A bundle is first fitted on two vtest clips (frames 400… and 600…; the default MULDE network on a short
budget: only its scoring cost matters here).
Stages: decode, detect (YOLO + foreground boxes), flow, crops (``roi_align`` of image and flow crops),
encode (MobileNetV2), velocity (histograms), mulde (scoring + fusion), overlay (drawing + H.264), outputs.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import av
import torch
import yaml

from bench.real_assets import export_mobilenetv2_bottle
from mulde_vad.features import crops
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extractors import embedding, velocity
from mulde_vad.inference.fit import FitOptions, fit_bundle
from mulde_vad.inference.predict import PredictOptions, Predictor

#: The estimator's default network (its scoring cost is what predict pays) on a short training budget.
BENCH_MULDE = {"max_steps": 300}


def write_clip(source: Path, dest: Path, start: int, n: int) -> Path:
    """Frames [start, start + n) of ``source`` as a lossless FFV1 file."""
    with av.open(str(source)) as reader, av.open(str(dest), "w") as writer:
        stream = None
        for i, frame in enumerate(reader.decode(video=0)):
            if i < start:
                continue
            if i >= start + n:
                break
            if stream is None:
                stream = writer.add_stream("ffv1", rate=10)
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                writer.mux(packet)
        for packet in stream.encode():
            writer.mux(packet)
    return dest


def mobilenetv2_encoder(assets: Path, dest: Path, kind: str) -> Path:
    """The ImageNet MobileNetV2 bottleneck as TorchScript, or that module exported to ONNX (batch axis free)."""
    traced = export_mobilenetv2_bottle(assets, dest / "mnv2.pt")
    if kind == "torchscript":
        return traced
    path = dest / "mnv2.onnx"
    module = torch.jit.load(str(traced))
    example = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}})
    return path


def timed_crops(seconds: dict[str, float], stage: str):
    """``crop_boxes`` adding its time to ``seconds[stage]`` (extractors import it by name: patch per module)."""

    def crop_boxes(*args, **kwargs):
        start = time.perf_counter()
        out = crops.crop_boxes(*args, **kwargs)
        if out.is_cuda:
            torch.cuda.synchronize()
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
        return out

    return crop_boxes


def profile(seconds: dict[str, float], crop_seconds: dict[str, float]) -> dict[str, float]:
    """Stages of the issue's profile: crops taken out of the extractors that do them."""
    out = dict(seconds)
    out["crops"] = sum(crop_seconds.values())
    out["encode"] = out.pop("backbone", 0.0) - crop_seconds.get("backbone", 0.0)
    out["velocity"] = out.get("velocity", 0.0) - crop_seconds.get("velocity", 0.0)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("MULDE_VAD_ASSETS"), help="DEST/assets")
    parser.add_argument("--frames", type=int, default=200, help="vtest frames to predict on")
    parser.add_argument("--fit-frames", type=int, default=30, help="frames per fitting clip (two clips)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-overlay", action="store_true")
    parser.add_argument("--encoder", choices=["onnx", "torchscript"], default="onnx", help="MobileNetV2 runtime")
    parser.add_argument("--out", type=Path, help="keep the predictions (scores, events, overlay) here")
    parser.add_argument("--threshold", type=float, help="override the bundle's threshold (for the overlay)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="extraction field")
    args = parser.parse_args(argv)
    if args.assets is None:
        parser.error("pass --assets DEST/assets or set MULDE_VAD_ASSETS")
    video = args.assets / "video" / "vtest.avi"
    print(f"torch threads: {torch.get_num_threads()}, device: {args.device}")
    with tempfile.TemporaryDirectory(prefix="mulde-predict-bench-") as tmp:
        tmp = Path(tmp)
        overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
        config = ExtractionConfig.preset(
            "weightfree",
            extractors=("velocity", "backbone"),
            detector_weights=str(args.assets / "yolo" / "yolov8n.pt"),
            backbone=args.encoder,
            backbone_weights=str(mobilenetv2_encoder(args.assets, tmp, args.encoder)),
            device=args.device,
            batch_size=args.batch_size,
            **overrides,
        )
        clips = [write_clip(video, tmp / f"fit{i}.mkv", start, args.fit_frames) for i, start in enumerate((400, 600))]
        started = time.perf_counter()
        bundle = fit_bundle(
            clips, "weightfree", config, FitOptions({**BENCH_MULDE, "device": args.device}, folds=2), log=lambda _: None
        )
        print(f"fit on 2 × {args.fit_frames} frames: {time.perf_counter() - started:.1f} s")
        options = PredictOptions(
            max_frames=args.frames,
            device=args.device,
            progress=False,
            overlay=not args.no_overlay,
            batch_size=args.batch_size,
            threshold=args.threshold,
        )
        predictor = Predictor(bundle, options)
        predictor.predict(write_clip(video, tmp / "warm.mkv", 0, 4), tmp / "warm")  # first-call costs
        crop_seconds: dict[str, float] = {}
        embedding.crop_boxes = timed_crops(crop_seconds, "backbone")
        velocity.crop_boxes = timed_crops(crop_seconds, "velocity")
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        result = predictor.predict(video, args.out or tmp / "out")
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    seconds = profile(result.seconds, crop_seconds)
    fps = result.n_frames / result.wall
    print(f"\npredict on vtest.avi 768x576: {result.n_frames} frames in {result.wall:.1f} s = {fps:.2f} frames/s")
    print(f"objects per frame: {result.n_objects / result.n_frames:.1f}, encoder: {args.encoder}, set: {args.set}")
    # On a shared machine wall time includes waiting for the CPU; CPU time is what the work itself costs.
    ceiling = 2 * result.n_frames / cpu
    print(
        f"CPU time {cpu:.1f} s = {1000 * cpu / result.n_frames:.0f} ms/frame: at most {ceiling:.2f} frames/s on 2 idle"
    )
    print(f"cores (load average now {os.getloadavg()[0]:.1f})\n")
    print("| stage | s | ms/frame | share of wall |\n|---|---|---|---|")
    for stage in ("decode", "detect", "flow", "crops", "encode", "velocity", "mulde", "overlay", "outputs"):
        value = seconds.get(stage, 0.0)
        print(f"| {stage} | {value:.2f} | {1000 * value / result.n_frames:.1f} | {100 * value / result.wall:.0f}% |")
    print(f"| total (wall) | {result.wall:.2f} | {1000 * result.wall / result.n_frames:.1f} | 100% |")


if __name__ == "__main__":
    main()
