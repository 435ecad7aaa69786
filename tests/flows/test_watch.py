"""The watch flow scores each new video in an inbox once: content already scored with the bundle is skipped."""

from __future__ import annotations

import json
import shutil

from mulde_vad.datasets.demo import DemoSpec, generate_demo
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.inference.fit import FitOptions, fit_bundle


def test_watch_scores_new_videos_once_by_content(prefect_db, tmp_path):
    from mulde_vad.flows.watch import predict_flow, watch_flow

    demo = generate_demo(tmp_path / "demo", DemoSpec(n_train=2, n_test=2, n_frames=50))
    mulde = {"hidden_units": (16, 16), "epochs": 2, "device": "cpu"}
    config = ExtractionConfig.preset("weightfree", device="cpu")
    bundle = fit_bundle(sorted((demo / "train").iterdir()), "weightfree", config, FitOptions(mulde, folds=2), log=print)
    bundle_dir = str(bundle.save(tmp_path / "bundle"))
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    shutil.copytree(demo / "test" / "test_00", inbox / "cam1")
    params = {"bundle": bundle_dir, "inbox": str(inbox), "out": str(out), "overlay": False, "settle_seconds": 0}

    first = watch_flow(**params)
    assert (first["scored"], first["skipped"]) == (1, 0)
    events = json.loads((out / "cam1" / "events.json").read_text())
    assert events["n_frames"] == 50 and len(events["events"]) == first["events"]
    assert watch_flow(**params)["skipped"] == 1  # the same content again
    (inbox / "cam1").rename(inbox / "renamed")  # a renamed copy is the same content
    assert watch_flow(**params) == {"scored": 0, "skipped": 1, "events": 0}
    shutil.copytree(demo / "test" / "test_01", inbox / "cam2")  # new content
    assert watch_flow(**params)["scored"] == 1
    assert (out / "cam2" / "scores.csv").is_file() and (out / "cam2" / "scores.png").is_file()

    (summary,) = predict_flow(bundle=bundle_dir, input=str(demo / "test" / "test_01"), out=str(out), overlay=False)
    assert summary.skipped  # the predict flow shares the content-key cache
