"""MULDE: multiscale log-density estimation via denoising score matching (Micorek et al., CVPR 2024).

A scikit-learn style estimator. ``fit`` trains f(x, σ) ≈ −log q_σ(x) by denoising score matching
with the β-regulariser, then fuses the L-scale scores of the training set (``fusion``);
``anomaly_score`` is the fused score, higher = more anomalous.

The loss, noise schedule, regulariser and multiscale scoring are the paper's. Three defaults differ, each
chosen on the real-data study of bench/quality.py (docs/method.md): a budget in optimiser steps with
warm-up + cosine decay instead of 1000 epochs at a constant 4e-5; σ_high set from the data so that the
noise covers every training distance (the paper's 1.0 leaves far anomalies to the network's
extrapolation); and a GMM on standardised, PCA-reduced scale scores with shrunk covariances instead of
one on the raw, nearly collinear scale scores. ``MULDE(**PAPER_RECIPE)`` is the paper's exact recipe.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from tqdm.auto import tqdm

from mulde_vad.models.fusion import FusionName, fusion_from_state, make_fusion
from mulde_vad.models.network import NoiseConditionedMLP
from mulde_vad.models.noise import ScaleSpacing, covering_sigma, sample_training_sigmas, scoring_scales
from mulde_vad.models.threads import CoreBudget

FILE_FORMAT_VERSION = 3  # 2: the SHA-256 of the tensors, checked on load; 3: fusion state as plain arrays
_STD_EPS = 1e-8  # the official code's (std + 1e-8)
_REFERENCE_BATCH = 512  # learning_rate=None means 1e-3 at this batch size, scaled by sqrt(batch / 512)

# The official code's recipe as its README runs it (2 × 4096, Adam(0.5, 0.9) at a constant 4e-5, batch
# 2048, 1000 epochs, a 5-component GMM on the raw training scale scores): one setting away.
PAPER_RECIPE: dict[str, object] = {
    "hidden_units": (4096, 4096),
    "sigma_high": 1.0,
    "learning_rate": 4e-5,
    "lr_schedule": "constant",
    "warmup": 0.0,
    "batch_size": 2048,
    "epochs": 1000,
    "ema_decay": None,
    "fusion": "gmm",
    "gmm_components": 5,
    "fusion_holdout": 0.0,
}

Parametrization = Literal["log_density", "score"]
#: ``MULDE.fit``'s ``on_epoch``: (optimiser steps done, the step budget, the epoch's mean total loss).
EpochCallback = Callable[[int, int, float], None]
Aggregate = Literal["max", "median", "mean"]


class MULDE(BaseEstimator):
    """Multiscale log-density anomaly detector.

    Parameters (the loss, σ range, β and L are the paper's; the recipe is ours, see ``PAPER_RECIPE``):
        hidden_units: widths of the hidden layers (the paper: 2 × 4096).
        sigma_low, sigma_high: noise range, in units of standardised features. ``sigma_high="auto"`` sets
            it from the training data (``noise.covering_sigma``): large enough that the noise at the top
            level reaches across the whole training set, never below 1 (the paper's value).
        n_scales: L, the number of noise levels evaluated at test time.
        scale_spacing: "linear" (official code) or "log" (ablation) spacing of the L levels.
        beta: weight of the regulariser β/2·f(x, σ)² on clean samples (None or 0 turns it off).
        learning_rate: Adam's peak step size; None = 1e-3·sqrt(batch_size / 512) (the paper: 4e-5).
        adam_betas: Adam's (β1, β2), (0.5, 0.9) as hard-coded officially.
        lr_schedule: "warmup_cosine" (linear warm-up over ``warmup`` of the steps, then cosine decay to 0),
            "cosine", "constant" (official default) or "step" (the official ``--use_scheduler``: ×0.9
            every 50 epochs' worth of steps).
        warmup: fraction of the steps spent warming up (``warmup_cosine`` only).
        batch_size: samples per optimiser step (capped at the training-set size).
        max_steps: the training budget in optimiser steps (used when ``epochs`` is None).
        epochs: the budget as passes over the training set instead; overrides ``max_steps`` when set.
        max_time: optional wall-clock limit in seconds; training stops there, whatever the budget.
        ema_decay: keep an exponential moving average of the weights with this decay and score with it
            (None = off).
        layernorm, dropout: optional LayerNorm / Dropout in every hidden block.
        parametrization: "log_density" is MULDE; "score" is the MSMA baseline, a network that outputs
            the score directly and is scored by its squared norm ‖s(x, σ_i)‖² per level.
        fusion: how the L scale scores become one score: "robust" (standardise, PCA, shrunk GMM with k by
            BIC), "gmm" (the paper's GMM on raw scores), "max" or "mean" (standardised aggregates).
        gmm_components: the GMM's components ("gmm"), or the most BIC may choose ("robust").
        fusion_holdout: fraction of the training rows withheld from the network and used to fit the
            fusion and to give ``calibration_scores_``: a network's scores on rows it has seen are
            optimistic (0 = fit on all rows).
        scoring_batch_size: samples per chunk when scoring, bounding memory to about
            scoring_batch_size × n_scales × max(hidden_units) activations.
        precision: "float32", or "bfloat16" autocast (fast on GPUs; scores are checked against fp32 in bench).
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
        random_state: seed for initialisation, batching, noise, the hold-out split and the GMM.
        verbose: show a progress bar while training.

    Fitted attributes: ``n_features_in_``, ``mean_``, ``scale_`` (standardisation), ``network_``,
    ``scales_`` (the L test σ), ``fusion_`` (the fitted fusion), ``train_scale_mean_``,
    ``train_scale_std_`` (for ``aggregate_score``), ``loss_history_`` (per-epoch mean DSM, regulariser
    and total loss), ``n_steps_`` (optimiser steps taken), ``training_seconds_`` (wall time of the
    optimisation loop alone), ``fusion_rows_`` ((n,) bool: the training rows the fusion was fitted on: the
    held-out rows, or all rows when ``fusion_holdout`` is 0), ``calibration_scores_`` (their anomaly
    scores: the statistics a pipeline calibrates this model's scores with, like AI-VAD's
    leave-one-video-out scores). Neither is saved with the model.
    """

    def __init__(
        self,
        hidden_units: tuple[int, ...] = (512, 512),
        sigma_low: float = 1e-3,
        sigma_high: float | Literal["auto"] = "auto",
        n_scales: int = 16,
        scale_spacing: ScaleSpacing = "linear",
        beta: float | None = 0.1,
        learning_rate: float | None = None,
        adam_betas: tuple[float, float] = (0.5, 0.9),
        lr_schedule: Literal["warmup_cosine", "cosine", "constant", "step"] = "warmup_cosine",
        warmup: float = 0.05,
        batch_size: int = 512,
        max_steps: int | None = 2000,
        epochs: int | None = None,
        max_time: float | None = None,
        ema_decay: float | None = None,
        layernorm: bool = False,
        dropout: float = 0.0,
        parametrization: Parametrization = "log_density",
        fusion: FusionName = "robust",
        gmm_components: int = 5,
        fusion_holdout: float = 0.0,
        scoring_batch_size: int = 1024,
        precision: Literal["float32", "bfloat16"] = "float32",
        device: str = "auto",
        random_state: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.hidden_units = hidden_units
        self.sigma_low = sigma_low
        self.sigma_high = sigma_high
        self.n_scales = n_scales
        self.scale_spacing = scale_spacing
        self.beta = beta
        self.learning_rate = learning_rate
        self.adam_betas = adam_betas
        self.lr_schedule = lr_schedule
        self.warmup = warmup
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.epochs = epochs
        self.max_time = max_time
        self.ema_decay = ema_decay
        self.layernorm = layernorm
        self.dropout = dropout
        self.parametrization = parametrization
        self.fusion = fusion
        self.gmm_components = gmm_components
        self.fusion_holdout = fusion_holdout
        self.scoring_batch_size = scoring_batch_size
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: np.ndarray,
        y: None = None,
        groups: np.ndarray | None = None,
        *,
        on_epoch: EpochCallback | None = None,
    ) -> MULDE:
        """Train f(x, σ) on normal samples X (n, d), then fit the fusion on their L-scale scores.

        ``groups`` (n,): the video (or any unit) of each row. With ``fusion_holdout`` > 0 the held-out rows
        are then whole groups, so the calibration sees videos the network never saw, as unseen test
        videos are (rows of one video are near-duplicates: rows held out of a seen video score optimistically).
        ``on_epoch`` runs after every epoch, for a progress display: a fit argument, not a parameter, so it
        enters neither ``get_params`` (a model's cache key) nor a saved model.
        """
        X = _validate_matrix(X, n_features=None)
        if len(X) < 2:
            raise ValueError(f"MULDE needs at least 2 training samples, got {len(X)}")
        if self.parametrization not in ("log_density", "score"):
            raise ValueError(f"parametrization must be 'log_density' or 'score', got {self.parametrization!r}")
        if self.max_steps is None and self.epochs is None:
            raise ValueError("set a training budget: max_steps (optimiser steps) or epochs")
        if not 0 <= self.fusion_holdout < 1:
            raise ValueError(f"fusion_holdout must be in [0, 1), got {self.fusion_holdout}")
        seed = 0 if self.random_state is None else self.random_state
        self.fusion_rows_ = _fusion_rows(len(X), self.fusion_holdout, seed, groups)
        X_fusion = X[self.fusion_rows_]
        X_net = X if self.fusion_rows_.all() else X[~self.fusion_rows_]
        self.n_features_in_ = X.shape[1]
        self.mean_ = X_net.mean(axis=0)
        std = X_net.std(axis=0, ddof=1)  # torch.std in the official code is unbiased
        # A constant training column would be divided by 1e-8; scale it by 1 instead (identical otherwise).
        self.scale_ = np.where(std > 0, std, 1.0) + _STD_EPS
        x_net = self._standardise(X_net)
        self.sigma_high_ = covering_sigma(x_net, seed) if self.sigma_high == "auto" else float(self.sigma_high)
        self.scales_ = scoring_scales(self.sigma_low, self.sigma_high_, self.n_scales, self.scale_spacing)
        self.device_ = _resolve_device(self.device)

        with torch.random.fork_rng(devices=[self.device_] if self.device_.type == "cuda" else []):
            torch.manual_seed(seed)
            self.network_ = self._build_network().to(self.device_)
        started, cores = time.perf_counter(), CoreBudget(self.device_)
        try:
            self.loss_history_ = self._train(x_net, seed, cores, on_epoch)
        finally:
            cores.restore()
        self.training_seconds_ = time.perf_counter() - started

        z_fusion = self.scale_scores(X_fusion)
        self.train_scale_mean_ = z_fusion.mean(axis=0)
        self.train_scale_std_ = z_fusion.std(axis=0)
        self.fusion_ = make_fusion(self.fusion, self.gmm_components, self.random_state).fit(z_fusion)
        self.calibration_scores_ = self.fusion_.score(z_fusion)
        return self

    def _n_steps(self, n: int, batch: int) -> int:
        steps = self.max_steps if self.epochs is None else self.epochs * math.ceil(n / batch)
        if steps < 1:
            raise ValueError(f"the training budget must be at least one step, got {steps}")
        return steps

    def _train(
        self, x_std: np.ndarray, seed: int, cores: CoreBudget, on_epoch: EpochCallback | None
    ) -> dict[str, np.ndarray]:
        network = self.network_.train()
        generator = torch.Generator(device=self.device_).manual_seed(seed)
        x_all = torch.as_tensor(x_std, dtype=torch.float32, device=self.device_)
        n, batch = len(x_all), min(self.batch_size, len(x_all))
        n_steps = self._n_steps(n, batch)
        lr = self.learning_rate or 1e-3 * math.sqrt(batch / _REFERENCE_BATCH)
        optimizer = torch.optim.Adam(network.parameters(), lr=lr, betas=self.adam_betas)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_factor(self.lr_schedule, n_steps, self.warmup, math.ceil(n / batch))
        )
        ema = _ema(network, self.ema_decay)
        beta = float(self.beta or 0.0) if self.parametrization == "log_density" else 0.0
        deadline = None if self.max_time is None else time.perf_counter() + self.max_time
        history, step = [], 0
        progress = tqdm(total=n_steps, desc="MULDE fit", disable=not self.verbose, unit="step")
        while step < n_steps:
            totals = torch.zeros(3, device=self.device_)  # summed on the device: one host sync per epoch
            order = torch.randperm(n, generator=generator, device=self.device_)
            for start in range(0, n, batch):
                x = x_all[order[start : start + batch]]
                with self._autocast():
                    dsm, reg = self._losses(network, x, generator, beta)
                optimizer.zero_grad(set_to_none=True)
                (dsm + beta * reg).backward()
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(network)
                size = x.new_tensor(len(x))
                totals += torch.stack([dsm.detach().float() * size, reg.detach().float() * size, size])
                step += 1
                if step % 25 == 0:
                    cores.adapt()
                if step == n_steps:
                    break
            dsm_sum, reg_sum, seen = totals.tolist()
            dsm_mean, reg_mean = dsm_sum / seen, reg_sum / seen
            if not (np.isfinite(dsm_mean) and np.isfinite(reg_mean)):
                raise FloatingPointError(
                    f"MULDE training diverged at step {step}: loss is {dsm_mean} (DSM), {reg_mean} "
                    "(regulariser). Lower learning_rate, check the features for extreme values, or use "
                    "precision='float32'."
                )
            history.append((dsm_mean, reg_mean, dsm_mean + beta * reg_mean))
            progress.update(step - progress.n)
            progress.set_postfix(loss=f"{dsm_mean + beta * reg_mean:.4f}")
            if on_epoch is not None:
                on_epoch(step, n_steps, dsm_mean + beta * reg_mean)
            if deadline is not None and time.perf_counter() > deadline:
                break
        progress.close()
        self.n_steps_ = step
        if ema is not None:
            network.load_state_dict(ema.module.state_dict())
        network.eval()
        h = np.asarray(history, dtype=np.float64).reshape(-1, 3)
        return {"dsm": h[:, 0], "regulariser": h[:, 1], "total": h[:, 2]}

    def _losses(
        self, network: NoiseConditionedMLP, x: torch.Tensor, generator: torch.Generator, beta: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """DSM with λ(σ)=σ², i.e. ½·E‖σ·∇ₓf(x̃, σ) − ε‖², and the regulariser ½·E f(x, σ)² (method.md §1.3)."""
        sigma = sample_training_sigmas(len(x), self.sigma_low, self.sigma_high_, generator, x.device)
        eps = torch.randn(x.shape, generator=generator, device=x.device)
        x_noisy = (x + sigma * eps).requires_grad_(True)
        if self.parametrization == "score":
            score = network(x_noisy, sigma)
            dsm = 0.5 * ((sigma * score + eps) ** 2).sum(dim=1).mean()
            return dsm, torch.zeros((), device=x.device)
        f_noisy = network(x_noisy, sigma)
        (grad_f,) = torch.autograd.grad(f_noisy.sum(), x_noisy, create_graph=True)
        dsm = 0.5 * ((sigma * grad_f - eps) ** 2).sum(dim=1).mean()
        if not beta:
            return dsm, torch.zeros((), device=x.device)
        f_clean = network(x, sigma)  # same σ, clean sample: pins normal data near 0 at every σ
        return dsm, 0.5 * (f_clean.float() ** 2).mean()

    # ------------------------------------------------------------------ scoring
    def scale_scores(self, X: np.ndarray) -> np.ndarray:
        """Per-level scores (n, L): f(x, σ_i) on clean x, or ‖s(x, σ_i)‖² for the score parametrization.

        Forward only, all L levels in one batched pass per chunk of ``scoring_batch_size`` samples. X is
        checked and standardised chunk by chunk, so the memory beyond X and the (n, L) result does not
        grow with n.
        """
        self._check_fitted("network_")
        X = np.asarray(X)
        _check_shape(X, self.n_features_in_)
        sigmas = torch.as_tensor(self.scales_, dtype=torch.float32, device=self.device_)
        out = np.empty((len(X), len(self.scales_)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(X), self.scoring_batch_size):
                chunk = _validate_matrix(X[start : start + self.scoring_batch_size], self.n_features_in_, start)
                x = torch.from_numpy(self._standardise(chunk)).to(self.device_, non_blocking=True)
                with self._autocast():
                    f = self.network_.forward_multiscale(x, sigmas).float()
                z = f[..., 0] if self.parametrization == "log_density" else (f**2).sum(dim=-1)
                out[start : start + len(x)] = z.cpu().numpy()
        return out

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """The fused score of the L scale scores (n,): higher = more anomalous (a GMM NLL for the GMM fusions)."""
        self._check_fitted()
        return self.fusion_.score(self.scale_scores(X))

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn convention: higher = more normal (minus ``anomaly_score``)."""
        return -self.anomaly_score(X)

    def aggregate_score(self, X: np.ndarray, how: Aggregate = "max") -> np.ndarray:
        """Max / median / mean over σ of the scale scores standardised with training statistics."""
        z = (self.scale_scores(X) - self.train_scale_mean_) / (self.train_scale_std_ + _STD_EPS)
        reducers = {"max": np.max, "median": np.median, "mean": np.mean}
        if how not in reducers:
            raise ValueError(f"how must be one of {sorted(reducers)}, got {how!r}")
        return reducers[how](z, axis=1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write weights, standardiser, fusion, params and library versions atomically to ``path``."""
        self._check_fitted()
        path = Path(path)
        state = {
            "format_version": FILE_FORMAT_VERSION,
            "params": self.get_params(),
            "n_features_in": self.n_features_in_,
            "network": self.network_.state_dict(),
            "arrays": {
                name: torch.from_numpy(np.asarray(getattr(self, name)))
                for name in ("mean_", "scale_", "sigma_high_", "scales_", "train_scale_mean_", "train_scale_std_")
            },
            "loss_history": {k: torch.from_numpy(v) for k, v in self.loss_history_.items()},
            "fusion": {k: _to_tensor(v) for k, v in self.fusion_.state().items()},
            "versions": library_versions(),
        }
        state["tensor_sha256"] = tensor_digest(state)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path, *, n_features: int | None = None, device: str | None = None) -> MULDE:
        """Load a model written by ``save``; ``n_features`` asserts the feature dimension it must have."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no MULDE model at {path}; train one with MULDE(...).fit(X).save(path)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{path} is not a readable MULDE model file ({error}); retrain and save again") from error
        if not isinstance(state, dict) or state.get("format_version") != FILE_FORMAT_VERSION:
            raise ValueError(f"{path} is not a MULDE model file of format version {FILE_FORMAT_VERSION}")
        if state.get("tensor_sha256") != tensor_digest(state):
            raise ValueError(f"{path} is corrupt: its weights do not match the hash saved with them; retrain")
        if n_features is not None and state["n_features_in"] != n_features:
            raise ValueError(
                f"{path} holds a MULDE model for {state['n_features_in']} features, but {n_features} were "
                "expected: it was trained on another feature type or configuration"
            )
        params = dict(state["params"])
        if device is not None:
            params["device"] = device
        model = cls(**params)
        model.n_features_in_ = state["n_features_in"]
        for name, tensor in state["arrays"].items():
            setattr(model, name, tensor.numpy())
        model.loss_history_ = {k: v.numpy() for k, v in state["loss_history"].items()}
        model.device_ = _resolve_device(model.device)
        model.network_ = model._build_network()
        model.network_.load_state_dict(state["network"])
        model.network_.to(model.device_).eval()
        model.fusion_ = fusion_from_state(model.fusion, {k: _from_tensor(v) for k, v in state["fusion"].items()})
        model.versions_ = state["versions"]
        return model

    # ------------------------------------------------------------------ helpers
    def _build_network(self) -> NoiseConditionedMLP:
        """f(x, σ) with one output (MULDE) or d outputs (the score network of the MSMA baseline)."""
        return NoiseConditionedMLP(
            self.n_features_in_,
            self.hidden_units,
            out_features=1 if self.parametrization == "log_density" else self.n_features_in_,
            layernorm=self.layernorm,
            dropout=self.dropout,
        )

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "float32":
            return contextlib.nullcontext()
        if self.precision == "bfloat16":
            return torch.autocast(device_type=self.device_.type, dtype=torch.bfloat16)
        raise ValueError(f"precision must be 'float32' or 'bfloat16', got {self.precision!r}")

    def _check_fitted(self, attribute: str = "fusion_") -> None:
        if not hasattr(self, attribute):
            raise NotFittedError("this MULDE is not fitted yet; call fit(X) first")


def _check_shape(X: np.ndarray, n_features: int | None) -> None:
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but this MULDE was fitted on {n_features}")


def _validate_matrix(X: np.ndarray, n_features: int | None, first_row: int = 0) -> np.ndarray:
    """X as float64 (n, d) with finite values; ``first_row`` numbers the rows of a chunk in error messages."""
    X = np.asarray(X, dtype=np.float64)
    _check_shape(X, n_features)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(
            f"X contains NaN or inf in {int(bad.sum())} of {len(X)} rows (first: row "
            f"{first_row + int(np.argmax(bad))}); drop or impute them before fitting or scoring"
        )
    return X


def _lr_factor(schedule: str, n_steps: int, warmup: float, steps_per_epoch: int) -> Callable[[int], float]:
    """Per-step multiplier of the peak learning rate."""
    if schedule == "constant":
        return lambda _: 1.0
    if schedule == "step":  # the official StepLR: ×0.9 every 50 epochs
        return lambda step: 0.9 ** (step // (50 * steps_per_epoch))
    if schedule in ("cosine", "warmup_cosine"):
        warm = round(warmup * n_steps) if schedule == "warmup_cosine" else 0

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(n_steps - warm, 1))))

        return factor
    raise ValueError(f"lr_schedule must be 'warmup_cosine', 'cosine', 'constant' or 'step', got {schedule!r}")


def _ema(network: torch.nn.Module, decay: float | None) -> torch.optim.swa_utils.AveragedModel | None:
    if decay is None:
        return None
    if not 0 < decay < 1:
        raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
    return torch.optim.swa_utils.AveragedModel(network, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay))


def _fusion_rows(n: int, fraction: float, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) bool: the rows withheld from the network for the fusion; without a hold-out, all rows (the fusion
    then fits on the network's own rows).

    Rows are drawn at random, or, with ``groups``, whole groups in random order until ``fraction`` of the
    rows is reached (at least one group, never all of them).
    """
    n_out = round(fraction * n)
    if not n_out:
        return np.ones(n, bool)
    rng = np.random.default_rng(seed)
    if groups is None:
        held = np.zeros(n, bool)
        held[rng.permutation(n)[:n_out]] = True
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must give one group per training row: shape {groups.shape}, {n} rows")
        names, index = np.unique(groups, return_inverse=True)
        order = rng.permutation(len(names))
        sizes = np.bincount(index, minlength=len(names))[order]
        taken = order[: min(int(np.searchsorted(np.cumsum(sizes), n_out)) + 1, len(names) - 1)]
        held = np.isin(index, taken)
    if (~held).sum() < 2 or held.sum() < 2:
        raise ValueError(
            f"fusion_holdout={fraction} leaves too few of the {n} training rows"
            + ("" if groups is None else f" in {len(np.unique(groups))} groups")
            + " for the network or the fusion: train on more rows or videos, or set fusion_holdout=0 "
            "(mulde.fusion_holdout in a config) to fit both on all rows"
        )
    return held


def _to_tensor(value: np.ndarray) -> torch.Tensor | str:
    value = np.asarray(value)
    return str(value) if value.dtype.kind in "US" else torch.from_numpy(np.ascontiguousarray(value))


def _from_tensor(value: torch.Tensor | str) -> np.ndarray:
    return np.asarray(value) if isinstance(value, str) else value.numpy()


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    return resolved


def tensor_digest(state: dict) -> str:
    """SHA-256 over every tensor of a saved state (by sorted name, with dtype and shape), for ``load`` to check."""
    digest = hashlib.sha256()
    groups = ("network", "arrays", "loss_history", "fusion")
    for group in groups:
        for name in sorted(state[group]):
            if isinstance(state[group][name], str):  # e.g. the aggregate fusion's "max" / "mean"
                digest.update(f"{group}/{name}={state[group][name]}".encode())
                continue
            tensor = state[group][name].detach().cpu().contiguous()
            digest.update(f"{group}/{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions recorded with every artifact, so a result can be traced to the code that made it."""
    versions = {"torch": str(torch.__version__), "numpy": np.__version__, "scikit-learn": sklearn.__version__}
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["mulde-vad"] = metadata.version("mulde-vad")
    return versions
