"""Frames/s of ``mulde-vad predict`` with real weights, a per-stage profile, and the floor of each stage alone.

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python -m bench.predict_speed [--inputs ped2 vtest] [--frames 200]

Inputs: ``ped2`` is UCSD Ped2 test video 01 (360×240, 180 frames, ``--ped2 DIR`` or ``$MULDE_VAD_PED2``,
default /work/shared/ped2); ``vtest`` is OpenCV's vtest.avi (768×576) from the assets folder. Each is
scored with the ``yolo_mobilenet`` preset and its real weights (YOLOv8n, the ImageNet MobileNetV2
bottleneck), overlays off, by a bundle fitted on two short normal clips of the same footage (Ped2
training videos 01 and 02; vtest frames 400… and 600…; the default MULDE network on a short budget: only
its scoring cost matters here).

Two tables per input:

* predict: stage seconds as ``Predictor.predict`` books them (stages that overlap, such as decoding and
  detection of the next batch in the prefetch thread, can add up to more than the wall time), then the
  CPU time of the process: on a shared machine wall time also counts waiting for a core.
* floors: each stage run alone, one after the other, on the same frames and boxes: what the stage costs
  with the machine to itself. decode (frames from the file), detect (detector + box filters + foreground
  boxes), flow, crops (image crops at the encoder's size and flow crops at the velocity's), encode (the
  MobileNetV2 on those crops), velocity (histograms of the flow crops), other extractors, mulde (scoring).
"""

from __future__ import annotations

import mulde_vad  # noqa: F401  # before torch: idle OpenMP threads then sleep, as in the CLI

# isort: split
import argparse
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import torch
import yaml

from bench.real_assets import PRESET_WEIGHTS
from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.decode import FrameBatch, open_video
from mulde_vad.features.extract import ObjectPipeline
from mulde_vad.features.extractors.velocity import orientation_histogram
from mulde_vad.inference.fit import FitOptions, fit_bundle
from mulde_vad.inference.predict import PredictOptions, Predictor
from mulde_vad.inference.scorer import score_objects
from mulde_vad.storage.schema import ObjectChunk

#: The estimator's default network (its scoring cost is what predict pays), barely trained: fitting is not timed.
BENCH_MULDE = {"max_steps": 20}
PED2_VIDEO = "testing/frames/01"
PED2_FIT = ("training/frames/01", "training/frames/02")
STAGES = ("decode", "detect", "flow", "crops", "encode", "velocity", "appearance_hist", "geometry", "mulde")


def write_clip(source: Path, dest: Path, start: int, n: int) -> Path:
    """Frames [start, start + n) of the video ``source`` as a lossless FFV1 file."""
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


def link_frames(source: Path, dest: Path, n: int) -> Path:
    """A frame folder holding links to the first ``n`` frames of the frame folder ``source``."""
    dest.mkdir(parents=True)
    for path in sorted(source.iterdir())[:n]:
        (dest / path.name).symlink_to(path)
    return dest


def inputs(name: str, args: argparse.Namespace, tmp: Path) -> tuple[Path, list[Path]]:
    """(video to score, two short normal clips to fit on) for ``ped2`` or ``vtest``."""
    if name == "ped2":
        root = Path(args.ped2)
        fit = [link_frames(root / clip, tmp / f"ped2-fit{i}", args.fit_frames) for i, clip in enumerate(PED2_FIT)]
        return root / PED2_VIDEO, fit
    video = args.assets / "video" / "vtest.avi"
    fit = [write_clip(video, tmp / f"vtest-fit{i}.mkv", start, args.fit_frames) for i, start in enumerate((400, 600))]
    return video, fit


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def print_table(title: str, seconds: dict[str, float], n_frames: int, wall: float) -> None:
    print(f"\n{title}\n| stage | s | ms/frame |\n|---|---|---|")
    for stage, value in seconds.items():
        print(f"| {stage} | {value:.2f} | {1000 * value / n_frames:.1f} |")
    print(f"| **wall** | {wall:.2f} | {1000 * wall / n_frames:.1f} |")


class Floors:
    """Stage seconds of one sequential pass, each stage timed alone (see the module docstring)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[stage] += time.perf_counter() - start


def batches(video: Path, config: ExtractionConfig, limit: int, floors: Floors) -> Iterator[FrameBatch]:
    frames = open_video(video).iter_batches(config.batch_size)
    seen = 0
    while seen < limit:
        with floors.timed("decode"):
            batch = next(frames, None)
        if batch is None:
            return
        seen += len(batch)
        yield batch


def stage_floors(predictor: Predictor, video: Path, limit: int) -> tuple[Floors, int]:
    """The floors of every stage of the predictor's pipeline on the first ``limit`` frames of ``video``."""
    pipeline = predictor.pipeline
    assert isinstance(pipeline, ObjectPipeline)
    config, floors, previous, n = predictor.config, Floors(), None, 0
    extractors = {e.name: e for e in pipeline.extractors}
    encoder = extractors["backbone"]
    for batch in batches(video, config, limit, floors):
        with floors.timed("detect"):
            table, keypoints = pipeline.objects(batch, previous)
        with floors.timed("flow"):
            flows = pipeline.flow.sequence(previous, batch.frames)
        index = np.searchsorted(batch.indices, table.frame_index)
        objects = ObjectBatch(batch.frames, table, index, pipeline.device, flows=flows, keypoints=keypoints)
        with floors.timed("crops"):
            image_crops = objects.crops(encoder.size)
            flow_crops = objects.flow_crops(config.velocity_crop)
        with floors.timed("encode"):
            rows = encoder.features(image_crops)
        with floors.timed("velocity"):
            orientation_histogram(flow_crops, config.velocity_bins)
        features = {"backbone": rows, "velocity": extractors["velocity"](objects)}
        for name in ("appearance_hist", "geometry"):
            with floors.timed(name):
                features[name] = extractors[name](objects)
        with floors.timed("mulde"):
            score_objects(predictor.scorer, ObjectChunk(table, features), batch.start_index, len(batch))
        previous, n = batch.frames[-1], n + len(batch)
    return floors, n


def measure(name: str, args: argparse.Namespace, overrides: dict, tmp: Path) -> None:
    video, fit_clips = inputs(name, args, tmp)
    weights = {field: str(args.assets / path) for field, path in PRESET_WEIGHTS["yolo_mobilenet"].items()}
    weights["detector_weights"] = str(args.assets / "yolo" / "yolov8n.pt")
    config = ExtractionConfig.preset("yolo_mobilenet", **weights, **overrides, device=args.device)
    started = time.perf_counter()
    options = FitOptions({**BENCH_MULDE, "device": args.device}, folds=2)
    bundle = fit_bundle(fit_clips, "yolo_mobilenet", config, options, log=lambda _: None)
    print(f"\n## {name}: {video}\nfit on 2 × {args.fit_frames} frames: {time.perf_counter() - started:.1f} s")
    predict_options = PredictOptions(max_frames=args.frames, device=args.device, progress=False, overlay=False)
    predictor = Predictor(bundle, predict_options)
    predictor.predict(fit_clips[0], tmp / "warm")  # first-call costs (allocations, lazy imports)
    before = cpu_seconds()
    result = predictor.predict(video, tmp / "out")
    cpu = cpu_seconds() - before
    n, wall = result.n_frames, result.wall
    print(
        f"predict: {n} frames in {wall:.1f} s = {n / wall:.2f} frames/s, {result.n_objects / n:.1f} objects/frame, "
        f"CPU {1000 * cpu / n:.0f} ms/frame ({load()}; overrides {overrides or 'none'})"
    )
    print_table(f"predict stages ({name})", dict(sorted(result.seconds.items())), n, wall)
    started = time.perf_counter()
    floors, n = stage_floors(predictor, video, args.frames or 10**9)
    wall = time.perf_counter() - started
    print_table(f"floors: each stage alone ({name}, {load()})", floors.seconds, n, wall)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("MULDE_VAD_ASSETS"), help="DEST/assets")
    parser.add_argument("--ped2", default=os.environ.get("MULDE_VAD_PED2", "/work/shared/ped2"))
    parser.add_argument("--inputs", nargs="+", choices=["ped2", "vtest"], default=["ped2", "vtest"])
    parser.add_argument("--frames", type=int, default=180, help="frames to predict on (at most)")
    parser.add_argument("--fit-frames", type=int, default=30, help="frames per fitting clip (two clips)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="extraction field")
    args = parser.parse_args(argv)
    if args.assets is None:
        parser.error("pass --assets DEST/assets or set MULDE_VAD_ASSETS")
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    print(f"torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, device: {args.device}, {load()}")
    with tempfile.TemporaryDirectory(prefix="mulde-predict-bench-") as tmp:
        for name in args.inputs:
            measure(name, args, overrides, Path(tmp))


if __name__ == "__main__":
    main()
