"""Dataset adapters yielding video records with frame-level ground truth (no Prefect)."""

from mulde_vad.datasets.base import DatasetAdapter, DatasetLayoutError, VideoRecord
from mulde_vad.datasets.registry import ADAPTERS, get_adapter

__all__ = ["ADAPTERS", "DatasetAdapter", "DatasetLayoutError", "VideoRecord", "get_adapter"]
