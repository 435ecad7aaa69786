"""Noise levels: log-uniform σ for training, a fixed grid of L σ values for scoring (method.md §1.3-1.4)."""

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
