"""Per-video score curves with the ground-truth anomalous frames shaded (PNG, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def anomalous_intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    """0-based inclusive (start, end) runs of label 1."""
    padded = np.concatenate(([0], np.asarray(labels, dtype=np.int8) != 0, [0])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def plot_video_scores(
    scores: np.ndarray, labels: np.ndarray | None, path: str | Path, *, title: str = "", raw: np.ndarray | None = None
) -> Path:
    """Plot one video's frame scores (and optionally the unsmoothed ones) over shaded ground truth."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 3), dpi=100)  # no pyplot: no global backend or figure registry
    ax = fig.add_subplot()
    if labels is not None:
        for start, end in anomalous_intervals(labels):
            ax.axvspan(start - 0.5, end + 0.5, color="tab:red", alpha=0.2, lw=0)
    if raw is not None:
        ax.plot(raw, color="0.6", lw=0.8, label="raw")
    ax.plot(scores, color="tab:blue", lw=1.2, label="score")
    ax.set(xlabel="frame", ylabel="anomaly score", title=title, xlim=(0, max(len(scores) - 1, 1)))
    if raw is not None:
        ax.legend(loc="upper right")
    fig.tight_layout()
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(temp, format="png")
    os.replace(temp, path)
    return path
