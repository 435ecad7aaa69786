"""Prefect flows for your own footage: ``predict`` (a video, a folder or a stream) and ``watch`` (an inbox).

``watch`` is meant to run on a schedule (the ``watch`` deployment in prefect.yaml): every run scores the
videos in the inbox whose content it has not scored with this bundle yet, so a video dropped into the
inbox is scored once, by the next run.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger

from mulde_vad.datasets.base import IMAGE_SUFFIXES, list_sources
from mulde_vad.inference.predict import PredictOptions, list_inputs
from mulde_vad.tasks.predict import PredictSummary, predict_task


def _options(threshold: float | None, overlay: bool, max_frames: int | None, device: str) -> PredictOptions:
    return PredictOptions(threshold=threshold, overlay=overlay, max_frames=max_frames, device=device, progress=False)


@flow(name="predict", log_prints=True)
def predict_flow(
    bundle: str,
    input: str,
    out: str,
    threshold: float | None = None,
    overlay: bool = True,
    max_frames: int | None = None,
    device: str = "auto",
) -> list[PredictSummary]:
    """Score a video file, a frame folder, a folder of videos or a stream URL with a bundle."""
    options = _options(threshold, overlay, max_frames, device)
    return [predict_task(bundle, str(source), out, options) for source in list_inputs(input)]


def _settled(source: Path, seconds: float) -> bool:
    """False while a file (or a frame folder's newest file) was modified in the last ``seconds``: still copying."""
    files = [source] if source.is_file() else [p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return bool(files) and time.time() - max(p.stat().st_mtime for p in files) >= seconds


@flow(name="watch", log_prints=True)
def watch_flow(
    bundle: str,
    inbox: str,
    out: str,
    threshold: float | None = None,
    overlay: bool = True,
    settle_seconds: float = 10.0,
    device: str = "auto",
) -> dict[str, int]:
    """Score every video in ``inbox`` not scored before (by content); files still being written wait a run."""
    logger = get_run_logger()
    inbox_path = Path(inbox)
    if not inbox_path.is_dir():
        raise FileNotFoundError(f"inbox {inbox_path} does not exist; create it or set the deployment's `inbox`")
    sources = [s for s in list_sources(inbox_path) if _settled(s, settle_seconds)]
    options = _options(threshold, overlay, None, device)
    results = [predict_task(bundle, str(source), out, options) for source in sources]
    counts = {"scored": sum(not r.skipped for r in results), "skipped": sum(r.skipped for r in results)}
    counts["events"] = sum(len(r.events) for r in results)
    logger.info("watch %s: %s", inbox_path, counts)
    return counts
