"""Dataset adapters yielding video records with frame-level ground truth (no Prefect)."""

from datasets.base import DatasetAdapter, DatasetLayoutError, VideoRecord
from datasets.registry import ADAPTERS, get_adapter

__all__ = ["ADAPTERS", "DatasetAdapter", "DatasetLayoutError", "VideoRecord", "get_adapter"]
