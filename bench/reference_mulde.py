"""A straightforward MULDE written the way the official code does it: the baseline of bench/mulde_speed.py.

Same maths and architecture as ``models.MULDE``, but with the official code's habits: a TensorDataset +
DataLoader, σ drawn in NumPy and copied to the device, the score taken with ``create_graph=True`` for
the clean regulariser pass too, ``.item()`` / ``.tolist()`` bookkeeping every step, and scoring that
loops over σ with an autograd score per level.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mulde_vad.models.network import NoiseConditionedMLP


def reference_network(n_features: int, hidden_units: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_features + 1
    for units in hidden_units:
        layers += [nn.Linear(width, units), nn.GELU()]
        width = units
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def copy_weights(source: NoiseConditionedMLP, target: nn.Sequential) -> None:
    """Give the reference the same weights as a MULDE network, so both compute the same function."""
    sources = [source.input_layer, *(m for m in source.body if isinstance(m, nn.Linear))]
    targets = [m for m in target if isinstance(m, nn.Linear)]
    for src, dst in zip(sources, targets, strict=True):
        dst.load_state_dict(src.state_dict())


def _score(network: nn.Sequential, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = inputs.requires_grad_()
    log_density = network(inputs)
    score = torch.autograd.grad(-log_density.sum(), inputs, create_graph=True)[0]
    return score, log_density


def reference_train(
    network: nn.Sequential,
    X: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    sigma_low: float,
    sigma_high: float,
    beta: float,
    learning_rate: float,
    device: torch.device,
) -> list[float]:
    data = torch.Tensor(X)
    mean, std = data.mean(dim=0).to(device), data.std(dim=0).to(device)
    loader = DataLoader(TensorDataset(data, torch.zeros(len(data))), shuffle=True, batch_size=batch_size)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate, betas=(0.5, 0.9))
    losses: list[float] = []
    tracked: list[float] = []
    for _ in range(epochs):
        for batch, _labels in loader:
            x = (batch.to(device) - mean) / (std + 1e-8)
            sigma = torch.Tensor(np.exp(np.random.uniform(np.log(sigma_low), np.log(sigma_high), x.size(0))))
            sigma = sigma.unsqueeze(1).to(device)
            noise = torch.randn_like(x) * sigma
            x = x.requires_grad_()
            score, log_density = _score(network, torch.hstack([x + noise, sigma]))
            loss = (sigma.ravel() ** 2 * torch.norm(score[:, :-1] + noise / sigma**2, dim=-1) ** 2).mean() / 2
            tracked += log_density.ravel().tolist()
            _, log_density_clean = _score(network, torch.hstack([x, sigma]))
            loss = loss + beta * (log_density_clean**2).mean() / 2
            optimizer.zero_grad()
            loss.backward()
            _ = [torch.max(p.grad).item() for p in network.parameters() if p.grad is not None]
            optimizer.step()
            losses.append(loss.item())
    return losses


def reference_scale_scores(
    network: nn.Sequential,
    X: np.ndarray,
    *,
    mean: np.ndarray,
    scale: np.ndarray,
    sigmas: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """f(x, σ_i) per σ with the official evaluation loop (autograd score computed alongside)."""
    loader = DataLoader(TensorDataset(torch.Tensor(X)), shuffle=False, batch_size=batch_size)
    mean_t, scale_t = torch.Tensor(mean).to(device), torch.Tensor(scale).to(device)
    per_sigma: dict[float, list[float]] = {float(s): [] for s in sigmas}
    norms: dict[float, list[float]] = {float(s): [] for s in sigmas}
    for (batch,) in loader:
        x = ((batch.to(device) - mean_t) / scale_t).requires_grad_()
        for sigma in per_sigma:
            network.zero_grad()
            score, log_density = _score(network, torch.hstack([x, sigma * torch.ones((len(x), 1), device=device)]))
            per_sigma[sigma] += log_density.ravel().tolist()
            norms[sigma] += (torch.norm(score[:, :-1], dim=1) ** 2).ravel().tolist()
    return np.asarray([per_sigma[s] for s in per_sigma]).T
