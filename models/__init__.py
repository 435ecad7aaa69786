"""Density models and evaluation: the MULDE estimator, GMM fusion, frame scores and metrics (no Prefect)."""

from mulde_vad.models.mulde import MULDE

__all__ = ["MULDE"]
