"""The live progress display: MULDE's per-epoch callback changes no number, a listener hears whole percents."""

from __future__ import annotations

import numpy as np
import pytest

from mulde_vad.inference.progress import ExtractionProgress, TrainingProgress
from mulde_vad.models.mulde import MULDE


def test_on_epoch_sees_every_epoch_and_changes_no_number():
    X = np.random.default_rng(0).normal(size=(300, 3))
    params = {"hidden_units": (16, 16), "epochs": 4, "batch_size": 128, "device": "cpu"}
    seen = []
    shown = MULDE(**params).fit(X, on_epoch=lambda *epoch: seen.append(epoch))
    plain = MULDE(**params).fit(X)
    assert [epoch[:2] for epoch in seen] == [(3, 12), (6, 12), (9, 12), (12, 12)]  # 300 rows: 3 batches of 128
    assert [epoch[2] for epoch in seen] == pytest.approx(shown.loss_history_["total"], rel=1e-12)
    np.testing.assert_allclose(shown.loss_history_["total"], plain.loss_history_["total"], rtol=1e-6)
    np.testing.assert_allclose(shown.anomaly_score(X), plain.anomaly_score(X), rtol=1e-5)
    assert "on_epoch" not in shown.get_params()  # not a parameter: no cache key or saved model changes


def test_a_listener_hears_each_whole_percent_once_in_order():
    heard = []
    with TrainingProgress(2, enabled=False, listener=heard.append) as training:
        for name in ("velocity", "pose"):
            on_epoch = training.on_epoch(name)
            for step in range(1, 1001):  # 2000 epochs in all: 101 calls, not 2000
                on_epoch(step, 1000, 0.5)
            training.model_done()
    assert heard == [percent / 100 for percent in range(101)]


def test_extraction_shows_videos_and_frames_per_second_only_when_enabled(capsys):
    heard = []
    with ExtractionProgress(2, enabled=True, listener=heard.append) as extraction:
        extraction.video_done(40)
        extraction.video_done(0)  # reused from the store: no frames extracted
    assert extraction.frames == 40 and heard == [0.5, 1.0]
    shown = capsys.readouterr().err
    assert "extract: 100%" in shown and "2/2" in shown and "frames/s" in shown
    with ExtractionProgress(2, enabled=False) as extraction:
        extraction.video_done(40)
    assert not capsys.readouterr().err
