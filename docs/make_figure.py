"""Build the README's picture, ``docs/images/demo_overlay.jpg``, from the built-in demo.

    .venv/bin/python docs/make_figure.py [--work DIR] [--out docs/images/demo_overlay.jpg]

The same steps as ``mulde-vad fit configs/demo.yaml --out B`` and ``mulde-vad predict B data/demo/test
--out P``, through the Python API: generate the demo dataset (configs/demo.yaml's spec) under ``--work``,
fit a bundle on its normal training videos (weight-free features, the config's MULDE settings, the
held-out threshold), then score its test videos with the overlay on. The overlay frame at the peak of
the strongest event of two test videos, drawn by the overlay code (``inference/render.py``: boxes
coloured green → red by their score, the score strip with its threshold line, the red event border) at
twice the demo's 160×120, goes side by side into one JPEG of 644 × 240 pixels. The strip spans the
clip's 150 frames rather than the overlay's 300, so the short clip's curve fills it. About 1.5 minutes
on two CPU cores; the result is deterministic up to the JPEG encoder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

import mulde_vad.inference.predict as predict_module
from mulde_vad.datasets import get_adapter
from mulde_vad.datasets.demo import DemoSpec, generate_demo
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.flows.config import load_config
from mulde_vad.inference.fit import FitOptions, fit_bundle
from mulde_vad.inference.predict import PredictOptions, Predictor
from mulde_vad.inference.render import ScoreStrip, annotate

ROOT = Path(__file__).resolve().parents[1]
SCALE = 2  # the demo's frames are 160×120: draw the overlay at 320×240 so boxes and text stay readable
GAP = 4  # pixels of white between the two frames


class OverlayRecorder:
    """Stands in for ``annotate`` while predicting: draws every overlay frame at ``SCALE`` times the size
    and keeps it by (video, frame index), so the peak frames can be picked once the events are known."""

    def __init__(self, strip_frames: int) -> None:
        self.strip_frames = strip_frames
        self.video = ""
        self.frames: dict[tuple[str, int], np.ndarray] = {}
        self._index = 0

    def __call__(self, image, boxes, object_scores, threshold, strip, label, alarm):  # annotate's signature
        big = cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
        big_strip = ScoreStrip(self.strip_frames, strip.height * SCALE, strip.threshold)
        for score, on in list(zip(strip.scores, strip.alarms, strict=True))[-self.strip_frames :]:
            big_strip.push(score, on)
        self.frames[(self.video, self._index)] = annotate(
            big, np.asarray(boxes) * SCALE, object_scores, threshold, big_strip, label, alarm
        )
        self._index += 1
        return annotate(image, boxes, object_scores, threshold, strip, label, alarm)

    def start(self, video: str) -> None:
        self.video, self._index = video, 0


def build(work: Path, out: Path) -> Path:
    cfg = load_config("demo", {"dataset.root": str(work / "data")})
    root = generate_demo(cfg.dataset.root, DemoSpec(**cfg.dataset.demo.model_dump()))
    adapter = get_adapter("folder", root)
    train = [r.source for r in adapter.videos("train")]
    test = [r.source for r in adapter.videos("test")]

    extraction = ExtractionConfig.preset(cfg.extraction.preset, **cfg.extraction.overrides, device="cpu")
    options = FitOptions(
        mulde_params={**cfg.mulde.estimator_params(), "device": "cpu"},
        smoothing_sigma=cfg.evaluation.smoothing_sigma,
        calibration_tail=cfg.evaluation.calibration_tail,
    )
    bundle = fit_bundle(train, cfg.extraction.preset, extraction, options)

    recorder = OverlayRecorder(cfg.dataset.demo.n_frames)
    predictor = Predictor(bundle, PredictOptions(device="cpu", progress=False))
    peaks = []  # (peak score, video, peak frame)
    with mock.patch.object(predict_module, "annotate", recorder):
        for source in test:
            recorder.start(predict_module.video_name(source))
            result = predictor.predict(source, work / "predictions")
            print(f"{result.name}: {result.n_frames} frames, {len(result.events)} event(s)")
            if result.events:
                best = max(result.events, key=lambda e: e.peak_score)
                peaks.append((best.peak_score, result.name, best.peak_frame))
    if len(peaks) < 2:
        raise RuntimeError(f"the demo gave events in {len(peaks)} test video(s); the figure needs two")
    chosen = sorted(sorted(peaks, reverse=True)[:2], key=lambda p: p[1])
    panels = [recorder.frames[(video, frame)] for _, video, frame in chosen]
    gap = np.full((panels[0].shape[0], GAP, 3), 255, np.uint8)
    figure = np.concatenate([panels[0], gap, panels[1]], axis=1)

    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88]):
        raise OSError(f"could not write {out}")
    for score, video, frame in chosen:
        print(f"panel: {video} frame {frame}, peak score {score:.2f} (threshold {bundle.threshold.value:.3f})")
    print(f"{out}: {figure.shape[1]}x{figure.shape[0]} pixels, {out.stat().st_size / 1024:.0f} KiB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="folder for the demo data and predictions (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "demo_overlay.jpg")
    args = parser.parse_args()
    if args.work:
        build(args.work, args.out)
    else:
        with tempfile.TemporaryDirectory() as work:
            build(Path(work), args.out)


if __name__ == "__main__":
    main()
