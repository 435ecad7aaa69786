"""Noise levels: log-uniform σ for training, a fixed grid of L σ values for scoring (method.md §1.3-1.4),
and the data-driven upper level ``covering_sigma``."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

ScaleSpacing = Literal["linear", "log"]


def scoring_scales(sigma_low: float, sigma_high: float, n_scales: int, spacing: ScaleSpacing) -> np.ndarray:
    """The L test-time noise levels.

    "linear" is what the official code evaluates (``linspace(σ_low, σ_high, L)`` rounded to 5 decimals);
    "log" is the geometric grid the code left commented out, offered as an ablation.
    """
    if not 0 < sigma_low < sigma_high:
        raise ValueError(f"need 0 < sigma_low < sigma_high, got sigma_low={sigma_low}, sigma_high={sigma_high}")
    if n_scales < 1:
        raise ValueError(f"n_scales must be >= 1, got {n_scales}")
    if spacing == "linear":
        return np.round(np.linspace(sigma_low, sigma_high, n_scales), 5)
    if spacing == "log":
        return np.geomspace(sigma_low, sigma_high, n_scales)
    raise ValueError(f"scale_spacing must be 'linear' or 'log', got {spacing!r}")


def sample_training_sigmas(
    n: int, sigma_low: float, sigma_high: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """One σ per sample, log-uniform on [σ_low, σ_high], shape (n, 1)."""
    u = torch.rand(n, 1, generator=generator, device=device)
    log_low, log_high = np.log(sigma_low), np.log(sigma_high)
    return torch.exp(log_low + (log_high - log_low) * u)


def covering_sigma(x_std: np.ndarray, seed: int, sample: int = 2048) -> float:
    """σ_high for standardised training rows: the largest pairwise distance divided by √d, at least 1.

    Denoising score matching trains f only where noisy samples land, so anomalies farther from the data
    than the largest noise are scored by the network's extrapolation, which nothing constrains. Song &
    Ermon (2020, "Improved techniques for training score-based generative models", technique 1) take the
    largest noise as large as the largest distance between training points; with per-coordinate noise
    σ·ε in d dimensions the noise norm is about σ·√d, hence the division. The distances are taken on a
    seeded subsample of ``sample`` rows, which bounds the cost to sample² distances.
    """
    rows = np.random.default_rng(seed).permutation(len(x_std))[:sample]
    subset = torch.as_tensor(x_std[rows], dtype=torch.float64)
    largest = float(torch.cdist(subset, subset).max())
    return max(1.0, largest / np.sqrt(x_std.shape[1]))
