"""Frame-level ROC-AUC as reported for VAD (method.md §5): micro over all frames, macro over videos.

Macro AUC follows AI-VAD's ``evaluate.py``: every video gets one dummy normal frame scored 0 in front
and one dummy anomalous frame scored ``sys.float_info.max`` at the end, so a video with a single class
still yields an AUC. The ``"skip"`` variant averages only over videos that contain both classes.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Literal

import numpy as np
from sklearn.metrics import roc_auc_score

SingleClass = Literal["pad", "skip"]


def _aligned(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    missing = set(scores) ^ set(labels)
    if missing:
        raise ValueError(f"scores and labels cover different videos: {sorted(missing)[:10]}")
    pairs = []
    for video in sorted(scores):
        s, y = np.asarray(scores[video], dtype=np.float64), np.asarray(labels[video])
        if s.shape != y.shape:
            raise ValueError(f"video {video}: {len(s)} scores but {len(y)} labels")
        pairs.append((s, y))
    return pairs


def micro_auc(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> float:
    """ROC-AUC over the concatenation of all videos' frames."""
    pairs = _aligned(scores, labels)
    y = np.concatenate([p[1] for p in pairs])
    if len(np.unique(y)) < 2:
        raise ValueError("micro AUC needs both normal and anomalous frames in the test set")
    return float(roc_auc_score(y, np.concatenate([p[0] for p in pairs])))


def per_video_auc(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], single_class: SingleClass = "pad"
) -> dict[str, float]:
    """AUC of each video; with ``"skip"``, single-class videos are left out of the result."""
    if single_class not in ("pad", "skip"):
        raise ValueError(f"single_class must be 'pad' or 'skip', got {single_class!r}")
    out = {}
    for video, (s, y) in zip(sorted(scores), _aligned(scores, labels), strict=True):
        if single_class == "pad":
            y = np.concatenate(([0], y, [1]))
            s = np.concatenate(([0.0], s, [sys.float_info.max]))
        elif len(np.unique(y)) < 2:
            continue
        out[video] = float(roc_auc_score(y, s))
    return out


def macro_auc(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], single_class: SingleClass = "pad"
) -> float:
    """Mean of per-video AUCs (AI-VAD padding by default; ``"skip"`` drops single-class videos)."""
    aucs = per_video_auc(scores, labels, single_class)
    if not aucs:
        raise ValueError("no video contains both classes; macro AUC with single_class='skip' is undefined")
    return float(np.mean(list(aucs.values())))
