"""Per-stage extraction throughput and peak memory for 1×, 2× and 4× a clip's length.

    .venv/bin/python bench/extract_speed.py                     # vtest.avi from $MULDE_VAD_ASSETS, else a demo clip
    .venv/bin/python bench/extract_speed.py --device cuda --batch-size 64 --frames 200

The clip (its first ``--frames`` frames) is written looped 1, 2 and 4 times to MPEG-4 files, so every
length shows the same content; each length is extracted by ``features.extract.extract_video`` into a
null sink. Cost must grow linearly with the length (the "×1 time" column stays near 1, 2, 4) and the
peak memory must stay flat, because extraction holds one batch of frames whatever the video's length.

Modes (weights never change the speed, so random initialisations stand in where no weights exist offline):
* ``weightfree``: foreground boxes, DIS flow → velocity, colour/gradient histogram, geometry (no model).
* ``models``: YOLOv8n (the real ``yolo/yolov8n.pt`` when the assets are there, else a random-init
  ``yolov8n.yaml``, which finds far fewer boxes) + velocity + an appearance encoder on every box:
  ``--appearance backbone`` (default) is torchvision MobileNetV2 (the architecture of the real
  ImageNet bottleneck in the assets, random init), ``--appearance clip`` is the paper's CLIP ViT-B-16
  (random init; about 1 s per crop on 2 CPU cores, so use it on a GPU).
* ``video``: frame-centric r3d_18 (random init) on 16-frame windows centred on every frame, 112×112.

Each (mode, length) runs in a fresh process, after a one-batch warm-up, so that its peak memory (RSS;
CUDA max allocated on a GPU) belongs to it alone. With glibc's default malloc, RSS creeps up by a few
hundred MB over the first ~10 batches of the model mode and then plateaus: freed crop/activation
buffers stay in the heap once glibc has raised its mmap threshold. ``--fixed-mmap-threshold`` runs the
children with ``MALLOC_MMAP_THRESHOLD_=131072`` (a fixed threshold turns that adaptation off) and shows
the pipeline's own, flat working set; it is no free fix: every large buffer then costs an mmap and fresh
page faults, and the model mode ran about 1.5× slower that way on 2 CPU cores.

Stage columns are frames per second of that stage alone (``ExtractionSummary.seconds``; "detect"
covers the detector, the frame-difference foreground boxes and the box filters); "total" is frames
over the wall time of the whole extraction.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.decode import open_video
from mulde_vad.features.extract import build_pipeline, extract_video
from mulde_vad.storage.schema import FrameChunk, ObjectChunk

MULTIPLES = (1, 2, 4)


class NullSink:
    """Counts what extraction writes and keeps nothing."""

    def __init__(self) -> None:
        self.rows = 0
        self.n_frames = -1

    def append_objects(self, chunk: ObjectChunk) -> None:
        self.rows += len(chunk.objects)

    def append_frames(self, chunk: FrameChunk) -> None:
        self.rows += len(next(iter(chunk.features.values()), ()))

    def finish(self, n_frames: int) -> None:
        self.n_frames = n_frames


def default_source() -> Path:
    """``$MULDE_VAD_ASSETS/video/vtest.avi`` when the assets are fetched, else a generated demo video."""
    assets = os.environ.get("MULDE_VAD_ASSETS")
    if assets and (Path(assets) / "video" / "vtest.avi").is_file():
        return Path(assets) / "video" / "vtest.avi"
    from mulde_vad.datasets.demo import generate_demo

    root = generate_demo(Path(tempfile.gettempdir()) / "mulde-vad-bench-demo")
    return sorted((root / "train").iterdir())[0]


def write_looped(source: Path, n_frames: int, times: int, path: Path) -> Path:
    """Write the first ``n_frames`` frames of ``source`` ``times`` times in a row to an MPEG-4 file (streamed)."""
    writer = None
    for _ in range(times):
        written = 0
        for batch in open_video(source).iter_batches(32):
            frames = batch.frames[: n_frames - written]
            if writer is None:
                h, w = frames.shape[1:3]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            written += len(frames)
            if written == n_frames:
                break
    assert writer is not None
    writer.release()
    return path


def mode_config(mode: str, appearance: str, device: str, batch_size: int) -> ExtractionConfig:
    runtime = {"device": device, "batch_size": batch_size}
    if mode == "weightfree":
        return ExtractionConfig.preset("weightfree", **runtime)
    if mode == "video":
        return ExtractionConfig(
            extractors=("video",),
            foreground=False,
            video_backbone="r3d_18",
            video_weights="random",
            video_size=112,
            **runtime,
        )
    yolo = Path(os.environ.get("MULDE_VAD_ASSETS") or "-") / "yolo" / "yolov8n.pt"
    return ExtractionConfig.preset(
        "weightfree",
        extractors=("velocity", appearance),
        detector_weights=str(yolo) if yolo.is_file() else "yolov8n.yaml",
        backbone="mobilenet_v2",
        backbone_weights="random",
        appearance_model="ViT-B-16",
        appearance_weights="random",
        **runtime,
    )


def _peak_mb(device) -> tuple[float, float | None]:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        return rss, torch.cuda.max_memory_allocated(device) / 2**20
    return rss, None


def measure(mode: str, appearance: str, video: str, warmup: str, device: str, batch_size: int) -> dict:
    """One extraction of ``video`` in this (fresh) process; the warm-up clip loads every lazy library first."""
    config = mode_config(mode, appearance, device, batch_size)
    pipeline = build_pipeline(config)
    extract_video(warmup, config, NullSink(), pipeline=pipeline)
    torch_device = resolve_device(device)
    if torch_device.type == "cuda":
        torch.cuda.synchronize(torch_device)
        torch.cuda.reset_peak_memory_stats(torch_device)
    sink = NullSink()
    start = time.perf_counter()
    summary = extract_video(video, config, sink, pipeline=pipeline)
    wall = time.perf_counter() - start
    rss, cuda = _peak_mb(torch_device)
    return {
        "frames": summary.n_frames,
        "objects": summary.n_objects,
        "seconds": dict(summary.seconds),
        "wall": wall,
        "rss_mb": rss,
        "cuda_mb": cuda,
        "detector": config.detector_weights,
    }


def _in_fresh_process(*args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, args)


def table(mode: str, rows: list[dict], stages: list[str]) -> str:
    head = ["length", "frames", "objects", *[f"{s} fps" for s in stages], "total fps", "wall s", "×1 time"]
    head += ["peak RSS MB"] + (["CUDA max MB"] if rows[0]["cuda_mb"] is not None else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for multiple, row in zip(MULTIPLES, rows, strict=True):
        n = row["frames"]
        cells = [f"{multiple}×", str(n), str(row["objects"])]
        cells += [f"{n / row['seconds'][s]:.1f}" if row["seconds"].get(s) else "–" for s in stages]
        cells += [f"{n / row['wall']:.1f}", f"{row['wall']:.1f}", f"{row['wall'] / rows[0]['wall']:.2f}"]
        cells += [f"{row['rss_mb']:.0f}"] + ([f"{row['cuda_mb']:.0f}"] if row["cuda_mb"] is not None else [])
        lines.append("| " + " | ".join(cells) + " |")
    return f"**{mode}** (detector: {rows[0]['detector'] or 'none'})\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=None, help="source clip (default: vtest.avi or a demo clip)")
    parser.add_argument("--frames", type=int, default=48, help="frames of the source in the 1× clip")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=None,
        choices=["weightfree", "models", "video"],
        help="default: weightfree models (CPU), all three on CUDA",
    )
    parser.add_argument("--appearance", default="backbone", choices=["backbone", "clip"])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--batch-size", type=int, default=16, help="frames per batch")
    parser.add_argument("--fixed-mmap-threshold", action="store_true", help="glibc MALLOC_MMAP_THRESHOLD_=131072")
    args = parser.parse_args(argv)
    if args.fixed_mmap_threshold:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"  # read by each spawned child's glibc at start-up
    device = resolve_device(args.device)
    source = args.video or default_source()
    reader = open_video(source)
    print(
        f"source: {source} ({reader.frame_size[0]}×{reader.frame_size[1]}, {reader.n_frames} frames); "
        f"1× = its first {args.frames} frames; device {device}, batch {args.batch_size}; "
        f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}; glibc mmap threshold "
        f"{'fixed at 128 KiB' if args.fixed_mmap_threshold else 'adaptive (default)'}\n"
    )
    with tempfile.TemporaryDirectory(prefix="extract-speed-") as tmp:
        warmup = str(write_looped(source, min(args.batch_size, args.frames), 1, Path(tmp) / "warmup.mp4"))
        clips = [str(write_looped(source, args.frames, k, Path(tmp) / f"x{k}.mp4")) for k in MULTIPLES]
        modes = args.modes or (["weightfree", "models", "video"] if device.type == "cuda" else ["weightfree", "models"])
        for mode in modes:
            rows = [_in_fresh_process(mode, args.appearance, c, warmup, str(device), args.batch_size) for c in clips]
            stages = ["decode", "detect", "flow", *mode_config(mode, args.appearance, "cpu", 1).extractors]
            print(table(mode, rows, stages) + "\n", flush=True)
            times = np.array([r["wall"] for r in rows])
            per_frame = times / np.array([r["frames"] for r in rows])
            print(
                f"time per frame at 1×/2×/4×: {', '.join(f'{t * 1e3:.1f} ms' for t in per_frame)} "
                f"(linear cost: equal); peak RSS spread {np.ptp([r['rss_mb'] for r in rows]):.0f} MB\n"
            )


if __name__ == "__main__":
    main()
