"""MULDE behaves as the paper says: correct DSM scores, toy-data AUC, regulariser, persistence, input checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from mulde_vad.datasets.toy import make_toy_data
from mulde_vad.models import MULDE
from mulde_vad.models.fusion import fit_gaussian_mixture
from mulde_vad.models.noise import scoring_scales

SMALL = dict(hidden_units=(128, 128), batch_size=256, learning_rate=1e-3, gmm_components=3, device="cpu")


@pytest.fixture(scope="module")
def toy_model() -> tuple[MULDE, object]:
    data = make_toy_data(n_train=4000, n_test_normal=2000, n_test_anomalous=2000, seed=1)
    # The paper's σ range: the per-scale assertions below describe its levels (σ_high = 1).
    return MULDE(**SMALL, epochs=80, beta=0.1, sigma_high=1.0, random_state=0).fit(data.X_train), data


def test_learned_score_matches_analytic_score_of_noised_gaussian() -> None:
    """−∇ₓf(x, σ) must equal ∇ log N(x; m, S + σ²I) for Gaussian data (in standardised coordinates).

    β=0: the regulariser deliberately trades exactness of f's shape for aligned offsets across σ, so
    plain DSM is what must be consistent. A cosine schedule removes end-of-training SGD jitter.
    """
    rng = np.random.default_rng(0)
    mean, std = np.array([3.0, -1.0]), np.array([2.0, 0.5])
    X = mean + std * rng.standard_normal((8000, 2))
    model = MULDE(**SMALL, epochs=40, beta=0.0, sigma_low=0.05, lr_schedule="cosine", random_state=0).fit(X)

    # In the model's standardised space the data are N(m, diag(s²)) with these exact m, s:
    m = (mean - model.mean_) / model.scale_
    s2 = (std / model.scale_) ** 2
    probe = X[:500]
    x = torch.tensor(model._standardise(probe), requires_grad=True)
    for sigma in (0.2, 0.5, 1.0):
        f = model.network_(x, torch.full((len(x), 1), sigma))
        (grad,) = torch.autograd.grad(f.sum(), x)
        learned = -grad.numpy()
        analytic = -(x.detach().numpy() - m) / (s2 + sigma**2)
        rel_err = np.linalg.norm(learned - analytic, axis=1).mean() / np.linalg.norm(analytic, axis=1).mean()
        assert rel_err < 0.10, f"σ={sigma}: relative score error {rel_err:.3f}"


def test_toy_gmm_auc_and_per_scale_behaviour(toy_model) -> None:
    model, data = toy_model
    assert roc_auc_score(data.y_test, model.anomaly_score(data.X_test)) >= 0.99
    z = model.scale_scores(data.X_test)
    assert z.shape == (len(data.X_test), 16)
    per_scale = [roc_auc_score(data.y_test, z[:, i]) for i in range(z.shape[1])]
    # Small σ resolve the modes; the largest σ blurs the 4 modes together (method.md §1.1).
    assert per_scale[0] > 0.98 and per_scale[-1] < per_scale[0] - 0.03
    for how in ("max", "median", "mean"):
        assert roc_auc_score(data.y_test, model.aggregate_score(data.X_test, how)) > 0.9
    np.testing.assert_allclose(model.score_samples(data.X_test[:10]), -model.anomaly_score(data.X_test[:10]))


def test_regulariser_keeps_training_log_density_near_zero(toy_model) -> None:
    """DSM fixes f only up to a constant per σ; β·f² on clean data pins the normal data near 0 at every σ."""
    model, data = toy_model
    offsets = np.abs(model.scale_scores(data.X_train).mean(axis=0))
    unregularised = MULDE(**SMALL, epochs=80, beta=0.0, random_state=0).fit(data.X_train)
    free_offsets = np.abs(unregularised.train_scale_mean_)
    assert offsets.max() < 1.0, offsets
    assert offsets.mean() < free_offsets.mean() / 2, (offsets, free_offsets)
    assert model.loss_history_["regulariser"].shape == (80,)
    assert model.loss_history_["dsm"][-1] < model.loss_history_["dsm"][0]


def test_scale_scores_are_the_network_at_each_sigma(toy_model) -> None:
    """The batched, shared-first-layer pass equals f(x, σ_i) evaluated one σ at a time."""
    model, data = toy_model
    X = data.X_test[:300]
    x = torch.from_numpy(model._standardise(X))
    with torch.no_grad():
        looped = np.stack([model.network_(x, torch.full((len(x), 1), s)).numpy()[:, 0] for s in model.scales_], 1)
    np.testing.assert_allclose(model.scale_scores(X), looped, rtol=1e-4, atol=1e-4)
    chunked = clone(model).set_params(scoring_batch_size=7)
    chunked.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    np.testing.assert_allclose(chunked.scale_scores(X), model.scale_scores(X), rtol=1e-5, atol=1e-5)


def test_scoring_scales_follow_the_official_code() -> None:
    linear = scoring_scales(1e-3, 1.0, 16, "linear")
    assert linear[0] == 0.001 and linear[1] == 0.0676 and linear[-1] == 1.0
    log = scoring_scales(1e-3, 1.0, 4, "log")
    np.testing.assert_allclose(log, [1e-3, 1e-2, 1e-1, 1.0])


def test_save_load_roundtrip_gives_identical_scores(toy_model, tmp_path) -> None:
    model, data = toy_model
    path = tmp_path / "m.pt"
    model.save(path)
    loaded = MULDE.load(path)
    X = data.X_test[:200]
    np.testing.assert_array_equal(loaded.scale_scores(X), model.scale_scores(X))
    np.testing.assert_allclose(loaded.anomaly_score(X), model.anomaly_score(X), rtol=1e-12)
    assert loaded.get_params() == model.get_params()
    assert "torch" in loaded.versions_
    with pytest.raises(ValueError, match="2 features, but 5 were expected"):
        MULDE.load(path, n_features=5)


def test_bad_inputs_raise_clear_errors(toy_model, tmp_path) -> None:
    model, _ = toy_model
    with pytest.raises(ValueError, match="X has 3 features, but this MULDE was fitted on 2"):
        model.anomaly_score(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN or inf in 1 of 4 rows"):
        model.anomaly_score(np.array([[0, 0], [1, np.nan], [0, 1], [1, 1]], dtype=float))
    with pytest.raises(ValueError, match="2-D array"):
        model.scale_scores(np.zeros(5))
    with pytest.raises(FileNotFoundError, match="no MULDE model at"):
        MULDE.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable MULDE model"):
        MULDE.load(tmp_path / "junk.pt")


def test_diverging_training_stops_with_an_error() -> None:
    X = np.random.default_rng(0).standard_normal((512, 2))
    with pytest.raises(FloatingPointError, match="diverged at step"):
        MULDE(**{**SMALL, "learning_rate": 1e12}, epochs=5).fit(X)


def test_fit_is_reproducible_with_a_seed() -> None:
    X = np.random.default_rng(0).standard_normal((600, 3))
    a = MULDE(**SMALL, epochs=2, random_state=3).fit(X).scale_scores(X[:50])
    b = MULDE(**SMALL, epochs=2, random_state=3).fit(X).scale_scores(X[:50])
    np.testing.assert_array_equal(a, b)


def test_score_parametrization_is_the_msma_baseline() -> None:
    data = make_toy_data(n_train=3000, n_test_normal=1000, n_test_anomalous=1000, seed=2)
    model = MULDE(**SMALL, epochs=30, parametrization="score", fusion="gmm").fit(data.X_train)
    assert model.network_.body[-1].out_features == 2
    z = model.scale_scores(data.X_test)
    assert (z >= 0).all()  # squared score norms
    assert roc_auc_score(data.y_test, model.anomaly_score(data.X_test)) > 0.9


def test_gmm_fusion_escalates_reg_covar_on_degenerate_scores() -> None:
    t = np.random.default_rng(0).standard_normal(500)
    collinear = np.c_[t, t, t] * 1e5 + 1e6  # sklearn's default reg_covar fails on this
    gmm = fit_gaussian_mixture(collinear, n_components=3, random_state=0)
    assert gmm.reg_covar > 1e-6 and np.isfinite(gmm.score_samples(collinear)).all()
    with pytest.raises(ValueError, match="must be a finite"):
        fit_gaussian_mixture(np.full((10, 2), np.nan), 1, 0)


def test_budget_is_steps_or_epochs_and_a_time_limit_stops_early() -> None:
    X = np.random.default_rng(0).standard_normal((1000, 3))
    small = {**SMALL, "gmm_components": 1}
    assert MULDE(**small, max_steps=7).fit(X).n_steps_ == 7
    assert MULDE(**small, max_steps=7, epochs=3).fit(X).n_steps_ == 3 * 4  # ceil(1000 / 256) steps per epoch
    timed = MULDE(**small, max_steps=10**7, max_time=0.5).fit(X)
    assert 0 < timed.n_steps_ < 10**7 and timed.training_seconds_ < 10
    with pytest.raises(ValueError, match="training budget"):
        MULDE(**small, max_steps=None).fit(X)


def test_warmup_cosine_schedule_rises_then_decays_to_zero() -> None:
    from mulde_vad.models.mulde import _lr_factor

    factor = _lr_factor("warmup_cosine", n_steps=100, warmup=0.1, steps_per_epoch=10)
    values = [factor(step) for step in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(values[9:]))
    assert values[-1] < 0.01
    assert _lr_factor("step", 100, 0.0, steps_per_epoch=2)(100) == pytest.approx(0.9)  # after 50 epochs


def test_paper_recipe_is_one_setting_away() -> None:
    from mulde_vad.models.mulde import PAPER_RECIPE

    params = MULDE(**PAPER_RECIPE).get_params()
    assert params["hidden_units"] == (4096, 4096) and params["learning_rate"] == 4e-5
    assert params["lr_schedule"] == "constant" and params["epochs"] == 1000 and params["fusion"] == "gmm"


def test_ema_and_fusion_holdout_train_usable_models() -> None:
    data = make_toy_data(n_train=3000, n_test_normal=500, n_test_anomalous=500, seed=5)
    model = MULDE(**SMALL, max_steps=400, ema_decay=0.99, fusion_holdout=0.2).fit(data.X_train)
    assert roc_auc_score(data.y_test, model.anomaly_score(data.X_test)) > 0.95
    with pytest.raises(ValueError, match="fusion_holdout"):
        MULDE(**SMALL, fusion_holdout=1.5).fit(data.X_train)
    with pytest.raises(ValueError, match=r"too few of the 5 training rows.*set fusion_holdout=0"):
        MULDE(**SMALL, fusion_holdout=0.2).fit(data.X_train[:5])


def test_calibration_scores_come_from_rows_the_network_did_not_train_on() -> None:
    """A network scores the rows it trained on optimistically; the held-out rows' scores are the calibration."""
    rng = np.random.default_rng(0)
    X, fresh = rng.standard_normal((300, 32)), rng.standard_normal((2000, 32))  # few rows, many dims: memorised
    model = MULDE(**{**SMALL, "batch_size": 128}, max_steps=600, fusion_holdout=0.3).fit(X)
    seen, held_out = X[~model.fusion_rows_], X[model.fusion_rows_]
    assert model.fusion_rows_.sum() == 90
    np.testing.assert_allclose(model.calibration_scores_, model.anomaly_score(held_out))
    upper = {name: np.percentile(s, 90) for name, s in [("seen", model.anomaly_score(seen)),
                                                         ("held_out", model.calibration_scores_),
                                                         ("fresh", model.anomaly_score(fresh))]}  # fmt: skip
    assert upper["seen"] < upper["fresh"]  # the optimism in-sample calibration would inherit
    assert upper["held_out"] > upper["seen"]
    nothing_held = MULDE(**SMALL, max_steps=50).fit(X)
    np.testing.assert_allclose(nothing_held.calibration_scores_, nothing_held.anomaly_score(X))


def test_grouped_holdout_withholds_whole_videos() -> None:
    """With groups, the calibration rows are whole videos the network never saw, about the asked fraction."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 4))
    groups = np.repeat(np.arange(10), 100)
    model = MULDE(**SMALL, max_steps=20, fusion_holdout=0.2).fit(X, groups=groups)
    held = np.unique(groups[model.fusion_rows_])
    assert len(held) == 2 and not np.isin(groups[~model.fusion_rows_], held).any()
    assert len(model.calibration_scores_) == 200
    one_video = MULDE(**SMALL, max_steps=20, fusion_holdout=0.01).fit(X, groups=groups)
    assert one_video.fusion_rows_.sum() == 100  # at least one whole video
    with pytest.raises(ValueError, match="in 1 groups"):
        MULDE(**SMALL, max_steps=20, fusion_holdout=0.2).fit(X, groups=np.zeros(1000))
    with pytest.raises(ValueError, match="one group per training row"):
        MULDE(**SMALL, max_steps=20, fusion_holdout=0.2).fit(X, groups=groups[:10])


def test_core_budget_gives_other_processes_their_cores(monkeypatch) -> None:
    """With spinning OpenMP threads, torch keeps only the cores other processes leave free, then gets them back."""
    from mulde_vad.models import threads

    clock = iter([0.0, 1.0, 2.0])
    readings = iter([(0.0, 0.0), (2.0, 0.4), (2.4, 0.8)])  # (all busy s, own busy s): 1.6 cores, then 0 cores
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads, "_busy_seconds", lambda: next(readings))
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.mulde_vad, "PASSIVE_WAIT", False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        budget = threads.CoreBudget(torch.device("cpu"))
        assert budget.adapt() == 1 and torch.get_num_threads() == 1
        assert budget.adapt() == 2
        budget.restore()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
