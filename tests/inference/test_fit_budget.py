"""fit's training budget follows the data: FIT_EPOCHS passes over the rows, capped by the step budget."""

from __future__ import annotations

from mulde_vad.inference.fit import FIT_EPOCHS, FIT_MULDE_DEFAULTS, training_params
from mulde_vad.models.mulde import MULDE


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
