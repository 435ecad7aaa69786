"""fit's training: a budget that follows the data (FIT_EPOCHS passes, capped by the step budget), and
calibration hold-outs of whole videos."""

from __future__ import annotations

import numpy as np

from mulde_vad.inference.fit import FIT_EPOCHS, FIT_MULDE_DEFAULTS, FitOptions, MemorySink, _fit_types, training_params
from mulde_vad.inference.progress import TrainingProgress
from mulde_vad.models.mulde import MULDE
from mulde_vad.storage.schema import BoxSource, ObjectChunk, ObjectTable


def test_a_small_training_set_trains_for_fit_epochs() -> None:
    params = training_params(FIT_MULDE_DEFAULTS, 2000)
    assert params == {**FIT_MULDE_DEFAULTS, "max_steps": FIT_EPOCHS * 4}  # 4 batches of 512 per pass
    held_out = training_params({"fusion_holdout": 0.5}, 2000)  # the network trains on the 1000 other rows
    assert held_out["max_steps"] == FIT_EPOCHS * 2


def test_a_large_training_set_keeps_the_estimators_step_budget() -> None:
    assert training_params(FIT_MULDE_DEFAULTS, 10**6)["max_steps"] == MULDE().max_steps


def test_a_budget_given_by_the_caller_is_kept() -> None:
    for budget in ({"max_steps": 77}, {"epochs": 3}, {"max_steps": None, "epochs": 5}):
        assert training_params({**FIT_MULDE_DEFAULTS, **budget}, 2000) == {**FIT_MULDE_DEFAULTS, **budget}
    assert training_params({"batch_size": 100, "fusion_holdout": 0.0}, 1000)["max_steps"] == FIT_EPOCHS * 10


def test_a_calibration_hold_out_withholds_whole_training_videos() -> None:
    """fit hands MULDE each row's video, as the pipeline does: its calibration rows are videos the network never saw."""
    rng = np.random.default_rng(0)
    videos = []
    for _ in range(4):
        sink = MemorySink()
        n = 50
        table = ObjectTable(
            frame_index=np.arange(n, dtype=np.int64),
            boxes=np.zeros((n, 4), np.float32),
            confidence=np.ones(n, np.float32),
            class_id=np.zeros(n, np.int32),
            source=np.full(n, BoxSource.DETECTOR, np.uint8),
        )
        sink.append_objects(ObjectChunk(table, {"velocity": rng.normal(size=(n, 2)).astype(np.float32)}))
        sink.finish(n)
        videos.append(sink)
    params = {"hidden_units": (16, 16), "max_steps": 5, "fusion_holdout": 0.25, "device": "cpu"}
    with TrainingProgress(1, enabled=False) as training:
        (fitted,) = _fit_types(videos, ["velocity"], FitOptions(mulde_params=params), training).values()
    held = fitted.model.fusion_rows_.reshape(4, 50)
    assert held.all(axis=1).sum() == 1 and not (held.any(axis=1) & ~held.all(axis=1)).any()
