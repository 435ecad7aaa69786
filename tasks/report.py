"""Stage 6: the run's report, as Prefect artifacts (markdown, AUC table, score plots) and as files.

Artifacts are what the Prefect UI shows on the flow run's "Artifacts" tab; the same markdown is also
written to ``output/report.md`` so a run without a server leaves a readable record.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mulde_vad.tasks.common import write_json_atomic
from mulde_vad.tasks.evaluate import Evaluation

#: Plots embedded inline (data URIs) in the plots artifact; more videos are listed as file paths.
MAX_INLINE_PLOTS = 12


def artifact_key(name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def percent(value: float, undefined: str | None) -> str:
    """An AUC as a percentage, or why it is undefined (NaN)."""
    return f"{100 * value:.2f}" if math.isfinite(value) else (undefined or "undefined")


def auc_rows(evaluation: Evaluation) -> list[dict[str, Any]]:
    return [
        {"scores": name, **{k: round(v, 4) if math.isfinite(v) else None for k, v in row.items()}}
        for name, row in evaluation.aucs.items()
    ]


def render_markdown(
    name: str,
    config: Mapping[str, Any],
    counts: Mapping[str, Any],
    timings: Mapping[str, float],
    evaluation: Evaluation,
    cpu_timings: Mapping[str, float] | None = None,
    keys: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    lines = [f"# mulde-vad run `{name}`", "", "## AUC-ROC (frame level, %)", ""]
    lines += ["| scores | micro | macro (AI-VAD padding) | macro (skip single-class) |", "|---|---|---|---|"]
    lines += [
        f"| {name} | "
        + " | ".join(percent(row[k], evaluation.undefined) for k in ("micro", "macro", "macro_skip"))
        + " |"
        for name, row in evaluation.aucs.items()
    ]
    lines += ["", "## Counts", "", *(f"- {k}: {v}" for k, v in counts.items())]
    lines += [f"- test frames: {evaluation.n_frames} ({evaluation.n_anomalous} anomalous)"]
    cpu = cpu_timings or {}
    lines += ["", "## Timings (s)", "", "| stage | wall | CPU |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {cpu[k]:.1f} |" if k in cpu else f"| {k} | {v:.1f} | |" for k, v in timings.items()]
    if keys:
        lines += ["", "## Store keys", "", "| feature type | features | model + calibration |", "|---|---|---|"]
        lines += [f"| {name} | `{k['features']}` | `{k['model']}` |" for name, k in keys.items()]
    lines += ["", f"Per-frame scores: `{evaluation.files['scores_csv']}`", "", "## Config", "", "```json"]
    lines += [json.dumps(config, indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"


def _plots_markdown(plots: Mapping[str, Path]) -> str:
    parts = ["# Per-video scores (fused, smoothed; red = ground-truth anomalies)", ""]
    for i, (video, path) in enumerate(sorted(plots.items())):
        if i < MAX_INLINE_PLOTS:
            data = base64.b64encode(Path(path).read_bytes()).decode()
            parts += [f"### {video}", "", f"![{video}](data:image/png;base64,{data})", ""]
        else:
            parts += [f"- {video}: `{path}`"]
    return "\n".join(parts) + "\n"


def report(
    name: str,
    config: Mapping[str, Any],
    counts: Mapping[str, Any],
    timings: Mapping[str, float],
    evaluation: Evaluation,
    output: Path,
    cpu_timings: Mapping[str, float] | None = None,
    keys: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Publish the report artifacts and write ``output/report.md`` and ``output/aucs.json``; return the report path.

    ``keys``: per feature type, the store keys of its features and of its model and calibration.
    """
    markdown = render_markdown(name, config, counts, timings, evaluation, cpu_timings, keys)
    key = artifact_key(name)
    create_markdown_artifact(markdown, key=f"{key}-report", description=f"mulde-vad report for {name}")
    create_table_artifact(auc_rows(evaluation), key=f"{key}-auc", description="micro / macro AUC per feature type")
    if evaluation.plots:
        create_markdown_artifact(_plots_markdown(evaluation.plots), key=f"{key}-plots", description="score plots")
    path = output / "report.md"
    temp = path.with_name(f".report.md.{os.getpid()}.tmp")
    temp.write_text(markdown)
    os.replace(temp, path)
    write_json_atomic(output / "aucs.json", evaluation.aucs)
    return path


report_task = task(report, name="report", cache_policy=NO_CACHE)
