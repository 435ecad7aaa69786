"""Density models and evaluation: the MULDE estimator, GMM fusion, frame scores and metrics (no Prefect).

``MULDE`` loads lazily, so the torch-free modules here (calibration, metrics, smoothing) can be imported
by configuration code without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mulde_vad.models.mulde import MULDE

__all__ = ["MULDE"]


def __getattr__(name: str) -> Any:
    if name == "MULDE":
        from mulde_vad.models.mulde import MULDE

        return MULDE
    raise AttributeError(f"module 'mulde_vad.models' has no attribute {name!r}")
