"""Stage 1: list a dataset's train and test videos (generating the demo dataset first when asked)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from mulde_vad.datasets import DatasetLayoutError, VideoRecord, get_adapter
from mulde_vad.datasets.demo import DemoSpec, generate_demo
from mulde_vad.tasks.common import retry_transient


@dataclass(frozen=True)
class DatasetIndex:
    name: str
    train: list[VideoRecord]
    test: list[VideoRecord]
    failed: dict[str, str] = field(default_factory=dict)  # test video id → why it cannot be used

    @property
    def labels(self) -> dict[str, np.ndarray]:
        return {r.video_id: r.labels for r in self.test if r.labels is not None}


def discover(name: str, root: Path, demo: Mapping[str, Any] | None = None) -> DatasetIndex:
    """The adapter's video records; ``demo`` is the generic folder layout, generated on first use.

    A test video the adapter marks with an ``error`` (unreadable, frames missing) is set aside in
    ``failed``: the others run, and the flow fails at the end naming it. A training video with an error
    stops the run here: a model fitted without it would silently differ.
    """
    if name == "demo":
        generate_demo(root, DemoSpec(**(demo or {})))
    adapter = get_adapter("folder" if name == "demo" else name, root)
    train, test = adapter.videos("train"), adapter.videos("test")
    broken = [f"{r.video_id}: {r.error}" for r in train if r.error]
    if broken:
        raise DatasetLayoutError(f"{root}: training videos cannot be read: {'; '.join(broken)}")
    failed = {r.video_id: r.error for r in test if r.error}
    index = DatasetIndex(name, train, [r for r in test if not r.error], failed)
    if not index.train or not index.test:
        raise DatasetLayoutError(
            f"{root}: dataset {name!r} has {len(index.train)} train and {len(index.test)} test "
            "videos; both splits need at least one"
        )
    return index


# A layout error comes out the same on every try: only I/O hiccups are retried. No result cache: a retried
# run reads the dataset as it is now, after the user fixed it.
discover_task = task(
    discover,
    name="discover-dataset",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
