"""bench/vtest_anomalies.py: the anomalous windows are balanced, so the labels cannot be read off the real footage."""

import numpy as np
import pytest

from bench.vtest_anomalies import ANOMALIES, anomaly_window


@pytest.mark.parametrize("n_frames", [60, 63])
def test_the_five_kinds_of_a_segment_cover_each_frame_once(n_frames):
    """Every real frame of a segment is anomalous in exactly one of its five copies (and normal in four), so a
    scorer that finds some stretch of the footage unusual gains nothing in micro AUC."""
    for variant in range(len(ANOMALIES)):
        covered = np.zeros(n_frames, int)
        for kind in ANOMALIES:
            start, length = anomaly_window(kind, n_frames, variant)
            assert length == n_frames // len(ANOMALIES)
            covered[start : start + length] += 1
        assert (covered[: len(ANOMALIES) * (n_frames // len(ANOMALIES))] == 1).all()
        assert (covered[len(ANOMALIES) * (n_frames // len(ANOMALIES)) :] == 0).all()


def test_each_kind_takes_every_window_once_over_the_segments():
    """A Latin square: no kind is always early or always late in its clip."""
    for kind in ANOMALIES:
        starts = sorted(anomaly_window(kind, 60, variant)[0] for variant in range(len(ANOMALIES)))
        assert starts == [0, 12, 24, 36, 48]


def test_without_the_anomaly_every_scorer_gets_the_same_frame_auc():
    """The null the tiling buys: on a segment with nothing pasted, whatever scores a scorer gives its frames,
    micro AUC over the five copies is exactly 0.5 and macro AUC the same value for every scorer (every pair of
    frames from different windows is counted once each way)."""
    from mulde_vad.models.metrics import macro_auc, micro_auc

    labels = {}
    for kind in ANOMALIES:
        start, length = anomaly_window(kind, 60, variant=2)
        labels[kind] = np.zeros(60, bool)
        labels[kind][start : start + length] = True
    macros = []
    for seed in range(3):  # three unrelated "scorers" of the same unmodified footage
        frame_scores = np.random.default_rng(seed).gamma(2.0, size=60)
        scores = {kind: frame_scores for kind in ANOMALIES}
        assert micro_auc(scores, labels) == pytest.approx(0.5)
        macros.append(macro_auc(scores, labels))
    assert macros == pytest.approx([macros[0]] * 3)
    window_at_start = {kind: np.arange(1.0, 61.0)[::-1] for kind in ANOMALIES}  # a scorer that "finds" frames 0-11
    assert macro_auc(window_at_start, labels) == pytest.approx(macros[0])
