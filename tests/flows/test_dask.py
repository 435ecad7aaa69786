"""Extraction through a real 2-process Dask LocalCluster writes the same shards as the thread runner."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_DEMO, tiny_overrides
from prefect.settings import PREFECT_API_URL

from mulde_vad.flows.config import load_config
from mulde_vad.flows.pipeline import extract_flow
from mulde_vad.storage import read_shard

pytestmark = pytest.mark.usefixtures("prefect_db")


def test_extraction_on_a_two_process_local_cluster_matches_the_thread_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # for the Dask worker processes
    base = {
        **tiny_overrides(tmp_path),
        "extraction.preset": "weightfree",  # the real extractors: worker processes do not see test patches
        "dataset.demo": {**TINY_DEMO, "n_train": 2, "n_test": 2, "width": 160, "height": 120},
        "runner.max_workers": 2,
    }
    runs = {}
    for kind in ("dask", "thread"):
        overrides = {**base, "store": str(tmp_path / f"store-{kind}"), "runner.kind": kind}
        if kind == "dask":
            overrides["runner.dashboard"] = "127.0.0.1:0"
        summary = extract_flow(load_config("demo", overrides))
        assert (summary.counts["extracted"], summary.counts["extraction_skipped"]) == (4, 0)
        runs[kind] = {p.stem: read_shard(p) for p in (tmp_path / f"store-{kind}").glob("extract/*/*.h5")}
    assert sorted(runs["dask"]) == ["test_00", "test_01", "train_00", "train_01"]
    for video, shard in runs["dask"].items():
        other = runs["thread"][video]
        assert shard.n_frames == other.n_frames == 40
        for name, values in shard.features.items():
            np.testing.assert_array_equal(values, other.features[name])
