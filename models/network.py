"""The noise-conditioned MLP f(x, σ) of MULDE: Linear → [LayerNorm] → GELU → [Dropout] blocks, raw σ appended."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class NoiseConditionedMLP(nn.Module):
    """MLP on the concatenation [x, σ] (method.md §1.2).

    ``out_features=1`` is MULDE's log-density network (f ≈ −log q_σ); ``out_features=d`` is the
    score network of the MSMA baseline. The first layer is kept separate so that scoring at L noise
    levels computes its x-part once and only adds σ·w_σ per level.
    """

    def __init__(
        self,
        n_features: int,
        hidden_units: Sequence[int],
        out_features: int = 1,
        layernorm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden_units:
            raise ValueError("hidden_units must name at least one hidden layer")
        self.n_features = n_features
        self.input_layer = nn.Linear(n_features + 1, hidden_units[0])
        body: list[nn.Module] = []
        widths = [*hidden_units, out_features]
        for i, width in enumerate(hidden_units):
            if i > 0:
                body.append(nn.Linear(hidden_units[i - 1], width))
            if layernorm:
                body.append(nn.LayerNorm(width))
            body.append(nn.GELU())
            if dropout:
                body.append(nn.Dropout(dropout))
        body.append(nn.Linear(widths[-2], widths[-1]))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """f(x, σ) for x (n, d) and σ (n, 1): returns (n, out_features)."""
        return self.body(self.input_layer(torch.cat([x, sigma], dim=1)))

    def forward_multiscale(self, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
        """f(x, σ_i) for every row of x (n, d) and every σ_i in sigmas (L,): returns (n, L, out_features)."""
        weight, bias = self.input_layer.weight, self.input_layer.bias
        shared = nn.functional.linear(x, weight[:, : self.n_features], bias)  # (n, h), once for all σ
        pre = shared.unsqueeze(1) + sigmas.view(1, -1, 1) * weight[:, self.n_features]  # (n, L, h)
        return self.body(pre)
