"""``mulde-vad fit | predict | export``: score your own footage (plain commands; Prefect flows in flows/watch.py).

mulde-vad fit SOURCE --preset P --out BUNDLE      # SOURCE: a folder of normal videos, or a dataset config
mulde-vad predict BUNDLE INPUT --out DIR          # INPUT: a video, a folder of videos, or a stream URL
mulde-vad export BUNDLE --format torchscript|onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from mulde_vad.features.decode import VideoDecodeError

#: Errors a user can fix (bad paths, bundles, configs, videos): one line on stderr and exit code 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError, VideoDecodeError)


def _field_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected field=value (an extraction config field)")
        out[key] = yaml.safe_load(value)
    return out


def _training_set(args: argparse.Namespace) -> tuple[list, str, dict[str, Any], dict[str, Any]]:
    """(videos, preset, extraction overrides, fit option overrides) from a folder or a dataset config."""
    from mulde_vad.inference.fit import FIT_MULDE_DEFAULTS
    from mulde_vad.inference.predict import list_inputs

    source = Path(args.source)
    if source.is_dir():
        return list_inputs(source), args.preset or "weightfree", {}, {"mulde_params": dict(FIT_MULDE_DEFAULTS)}
    from mulde_vad.flows.config import load_config
    from mulde_vad.tasks.discover import discover

    cfg = load_config(args.source)
    demo = cfg.dataset.demo.model_dump() if cfg.dataset.demo else None
    index = discover(cfg.dataset.name, cfg.dataset.root, demo)
    options = {
        "mulde_params": cfg.mulde.estimator_params(),
        "smoothing_sigma": cfg.evaluation.smoothing_sigma,
        "calibration_tail": cfg.evaluation.calibration_tail,
    }
    return [r.source for r in index.train], args.preset or cfg.extraction.preset, cfg.extraction.overrides, options


def fit_command(args: argparse.Namespace) -> int:
    from mulde_vad.features.config import ExtractionConfig
    from mulde_vad.inference.fit import FitOptions, fit_bundle

    videos, preset, overrides, options = _training_set(args)
    config = ExtractionConfig.preset(preset, **{**overrides, **_field_overrides(args.set), "device": args.device})
    mulde = options["mulde_params"]
    if args.steps:
        mulde.update(max_steps=args.steps, epochs=None)
    if args.epochs:
        mulde["epochs"] = args.epochs
    mulde["device"] = args.device
    options.update(threshold_percentile=args.threshold_percentile, folds=args.folds)
    if args.sigma is not None:
        options["smoothing_sigma"] = args.sigma
    print(f"fitting on {len(videos)} normal video(s) with preset {preset!r}")
    bundle = fit_bundle(videos, preset, config, FitOptions(**options), progress=not args.quiet)
    path = bundle.save(args.out)
    print(f"bundle: {path} (feature types {', '.join(bundle.features)}; threshold {bundle.threshold.value:.4g})")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    from mulde_vad.inference.bundle import load_bundle
    from mulde_vad.inference.predict import PredictOptions, Predictor, list_inputs

    options = PredictOptions(
        threshold=args.threshold,
        overlay=not args.no_overlay,
        max_frames=args.max_frames,
        duration=args.duration,
        stream=args.stream,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.quiet,
    )
    predictor = Predictor(load_bundle(args.bundle, preset=args.preset, device=args.device), options)
    for source in list_inputs(args.input):
        result = predictor.predict(source, args.out)
        fps = result.n_frames / result.wall if result.wall else 0.0
        print(
            f"{result.name}: {result.n_frames} frames at {fps:.1f} frames/s, {len(result.events)} event(s) "
            f"above {result.threshold:.4g} -> {result.out_dir}"
        )
    return 0


def export_command(args: argparse.Namespace) -> int:
    from mulde_vad.inference.bundle import load_bundle
    from mulde_vad.inference.export import export_bundle

    out = args.out or Path(args.bundle) / f"export-{args.format}"
    path = export_bundle(load_bundle(args.bundle, device="cpu"), out, args.format)
    print(f"exported {args.format} scoring to {path} (see scoring.json)")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    fit = commands.add_parser("fit", help="fit a bundle on normal footage (no labels)")
    fit.add_argument("source", help="a folder of normal videos (files or frame folders), or a dataset config")
    fit.add_argument("--preset", help="extraction preset (default weightfree, or the config's)")
    fit.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    fit.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="extraction config field")
    fit.add_argument("--steps", type=int, help="MULDE training budget in optimiser steps")
    fit.add_argument("--epochs", type=int, help="MULDE training budget in epochs (overrides --steps)")
    fit.add_argument("--threshold-percentile", type=float, default=99.0, help="of held-out frame scores (99)")
    fit.add_argument("--folds", type=int, default=3, help="video folds for the threshold (3)")
    fit.add_argument("--sigma", type=float, help="smoothing sigma in frames (3, or the config's)")
    fit.add_argument("--device", default="auto")
    fit.add_argument("--quiet", action="store_true", help="no progress display")
    fit.set_defaults(handler=fit_command)
    predict = commands.add_parser("predict", help="score videos, folders or streams with a bundle")
    predict.add_argument("bundle", type=Path)
    predict.add_argument(
        "input", help="a video file, a frame folder, a folder of videos, or rtsp:// http(s):// /dev/video0"
    )
    predict.add_argument("--out", type=Path, required=True, help="one folder per video is written here")
    predict.add_argument("--threshold", type=float, help="override the bundle's frame-score threshold")
    predict.add_argument("--no-overlay", action="store_true", help="skip overlay.mp4")
    predict.add_argument("--max-frames", type=int, help="stop after this many frames")
    predict.add_argument("--duration", type=float, help="stop after this many seconds of video")
    mode = predict.add_mutually_exclusive_group()
    mode.add_argument("--stream", action="store_true", default=None, help="causal smoothing (default for URLs)")
    mode.add_argument("--offline", dest="stream", action="store_false", help="centred smoothing (default for files)")
    predict.add_argument("--preset", help="fail unless the bundle was fitted with this preset")
    predict.add_argument("--batch-size", type=int, help="frames per batch (lower = less latency)")
    predict.add_argument("--device", default="auto")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(handler=predict_command)
    export = commands.add_parser("export", help="export a bundle's scoring to TorchScript or ONNX")
    export.add_argument("bundle", type=Path)
    export.add_argument("--format", choices=["torchscript", "onnx"], required=True)
    export.add_argument("--out", type=Path, help="default BUNDLE/export-FORMAT")
    export.set_defaults(handler=export_command)


def run(args: argparse.Namespace) -> int:
    """Run a footage command; a user error prints one line naming what to fix and exits with code 2."""
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        print(f"mulde-vad {args.command}: {error}", file=sys.stderr)
        return 2
