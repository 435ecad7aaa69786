"""Micro / macro AUC (AI-VAD padding and skip variant) and the score plot, on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mulde_vad.models.metrics import macro_auc, micro_auc, per_video_auc
from mulde_vad.models.plots import anomalous_intervals, plot_video_scores

SCORES = {
    "a": np.array([0.1, 0.4]),  # all normal
    "b": np.array([0.35, 0.8]),  # all anomalous
    "c": np.array([0.1, 0.4, 0.35, 0.8]),
}
LABELS = {"a": np.array([0, 0]), "b": np.array([1, 1]), "c": np.array([0, 0, 1, 1])}


def test_micro_auc_over_concatenated_frames() -> None:
    # positives {.35, .8, .35, .8} vs negatives {.1, .4, .1, .4}: each .35 beats 2 of 4, each .8 beats 4 → 12/16
    assert micro_auc(SCORES, LABELS) == 0.75


def test_macro_auc_with_aivad_padding() -> None:
    # a: negatives {0, .1, .4} vs positive {max} → 1; b: negative {0} vs {.35, .8, max} → 1;
    # c: negatives {0, .1, .4} vs positives {.35, .8, max}: 2 + 3 + 3 = 8 of 9 pairs.
    assert per_video_auc(SCORES, LABELS) == pytest.approx({"a": 1.0, "b": 1.0, "c": 8 / 9})
    assert macro_auc(SCORES, LABELS) == pytest.approx((1 + 1 + 8 / 9) / 3)


def test_macro_auc_skipping_single_class_videos() -> None:
    assert per_video_auc(SCORES, LABELS, "skip") == {"c": 0.75}
    assert macro_auc(SCORES, LABELS, "skip") == 0.75
    with pytest.raises(ValueError, match="no video contains both classes"):
        macro_auc({"a": SCORES["a"]}, {"a": LABELS["a"]}, "skip")


def test_metrics_name_the_video_whose_lengths_disagree() -> None:
    with pytest.raises(ValueError, match="video c: 4 scores but 3 labels"):
        micro_auc(SCORES, {**LABELS, "c": np.array([0, 1, 1])})
    with pytest.raises(ValueError, match="different videos"):
        macro_auc(SCORES, {"a": LABELS["a"]})


def test_plot_shades_ground_truth_and_writes_a_png(tmp_path: Path) -> None:
    assert anomalous_intervals(np.array([0, 1, 1, 0, 1])) == [(1, 2), (4, 4)]
    assert anomalous_intervals(np.zeros(3)) == []
    path = plot_video_scores(np.linspace(0, 1, 50), (np.arange(50) > 30).astype(np.uint8), tmp_path / "p" / "v.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["v.png"]
