"""Score one video with a bundle, skip it when its content was already scored, publish its artifacts.

The library call is ``inference.predict.Predictor.predict``; this task adds the content-key cache (a
marker ``OUT/.scored/<key>.json`` per scored content × bundle, so a renamed or re-copied file is not
scored twice and a changed file is) and the per-video Prefect artifacts: the events table and a
markdown page with the score plot and the event thumbnails.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mulde_vad.features.decode import is_stream
from mulde_vad.inference.bundle import load_bundle
from mulde_vad.inference.predict import PredictOptions, Predictor
from mulde_vad.models.plots import plot_video_scores
from mulde_vad.storage.provenance import content_digest
from mulde_vad.tasks.common import write_json_atomic
from mulde_vad.tasks.report import artifact_key

MARKERS = ".scored"
MAX_THUMBNAILS = 8  # inline in the markdown artifact; every thumbnail stays on disk


@dataclass(frozen=True)
class PredictSummary:
    source: str
    key: str
    skipped: bool
    out_dir: str = ""
    n_frames: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def content_key(source: str | Path, bundle_key: str) -> str:
    """SHA-256 of the video's bytes (a frame folder: its listing digest) and the bundle's key."""
    path = Path(source)
    return hashlib.sha256(f"{content_digest(path)}/{bundle_key}".encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=2)
def _predictor(bundle: str, options: PredictOptions) -> Predictor:
    """Models load once per worker process for a bundle and options, not once per video."""
    return Predictor(load_bundle(bundle, device=options.device), options)


def _markdown(summary: PredictSummary, plot: Path, out_dir: Path) -> str:
    def inline(path: Path, kind: str) -> str:
        return f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"

    lines = [f"# `{Path(summary.source).name}`: {len(summary.events)} event(s)", "", f"Outputs: `{out_dir}`", ""]
    lines += [f"![scores]({inline(plot, 'png')})", ""]
    for event in summary.events[:MAX_THUMBNAILS]:
        if event.get("thumbnail"):
            title = f"event {event['index']}: {event['start_time']:.1f}-{event['end_time']:.1f} s"
            lines += [f"### {title}, peak {event['peak_score']:.2f} ({event['feature_type']})", ""]
            lines += [f"![event {event['index']}]({inline(out_dir / event['thumbnail'], 'jpeg')})", ""]
    return "\n".join(lines) + "\n"


def predict_one(bundle: str, source: str, out: str, options: PredictOptions) -> PredictSummary:
    """Score ``source`` into ``out/<name>/`` unless this content was scored with this bundle before."""
    predictor = _predictor(bundle, options)
    key = "" if is_stream(source) else content_key(source, predictor.bundle.key)
    marker = Path(out) / MARKERS / f"{key}.json"
    if key and marker.is_file():
        return PredictSummary(source, key, skipped=True)
    result = predictor.predict(source, out, keep_scores=True)
    events = [e.to_dict() for e in result.events]
    summary = PredictSummary(source, key, False, str(result.out_dir), result.n_frames, events)
    plot = plot_video_scores(result.scores, None, result.out_dir / "scores.png", title=result.name)
    artifact = artifact_key(f"events-{result.name}")
    rows = [
        {k: e[k] for k in ("index", "start_time", "end_time", "peak_time", "peak_score", "feature_type")}
        for e in events
    ]
    create_table_artifact(rows, key=artifact, description=f"events of {result.name}")
    create_markdown_artifact(_markdown(summary, plot, result.out_dir), key=f"{artifact}-report")
    if key:
        write_json_atomic(marker, asdict(summary))
    return summary


predict_task = task(predict_one, name="predict-video", task_run_name="predict-{source}", cache_policy=NO_CACHE)
