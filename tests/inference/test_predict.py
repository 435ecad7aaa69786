"""Fit on the demo's normal videos, predict on its test videos: per-frame scores, events, overlay, streams."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from demo_footage import SPEC, decoded, encode_video, labels

from mulde_vad.features.extract import PREFETCH_BATCHES
from mulde_vad.inference.bundle import load_bundle
from mulde_vad.inference.predict import PredictOptions, Predictor
from mulde_vad.models.smoothing import causal_smooth, smooth_scores


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def predictor(bundle_dir):
    return Predictor(load_bundle(bundle_dir, device="cpu"), PredictOptions(progress=False, device="cpu"))


def test_predict_writes_scores_events_overlay_and_thumbnails(predictor, demo, tmp_path):
    video = demo / "test" / "test_01"  # the off-path walker
    truth = labels(demo, "test_01")
    result = predictor.predict(video, tmp_path)
    rows = read_csv(result.files["scores"])
    assert [int(r["frame"]) for r in rows] == list(range(len(truth)))  # one row per frame
    assert list(rows[0]) == ["frame", "time_s", "score", "score_raw", *predictor.bundle.features, "is_anomalous"]
    scores = np.array([float(r["score"]) for r in rows])
    np.testing.assert_allclose(scores, smooth_scores([float(r["score_raw"]) for r in rows], 3.0), rtol=1e-5)
    flagged = np.array([int(r["is_anomalous"]) for r in rows])
    np.testing.assert_array_equal(flagged, scores > result.threshold)

    events = json.loads(result.files["events"].read_text())
    assert events["n_frames"] == len(truth) and events["threshold"] == result.threshold
    assert events["events"], "the off-path walker raised no event"
    anomalous = set(np.flatnonzero(truth))
    assert any(anomalous & set(range(e["start_frame"], e["end_frame"] + 1)) for e in events["events"])
    for event in events["events"]:
        assert event["start_frame"] <= event["peak_frame"] <= event["end_frame"]
        assert event["peak_score"] == pytest.approx(scores[event["peak_frame"]], rel=1e-5)
        assert event["feature_type"] in predictor.bundle.features and event["objects"]
        assert (result.out_dir / event["thumbnail"]).is_file()
    assert decoded(result.files["overlay"]) == (len(truth), (SPEC.width, SPEC.height))  # same count and size


def test_normal_video_stays_below_the_label_free_threshold(predictor, demo, tmp_path):
    result = predictor.predict(demo / "test" / "test_03", tmp_path, keep_scores=True)  # all normal
    assert result.events == [] and result.scores.max() <= result.threshold


def test_stream_mode_on_a_file_url_equals_file_mode_up_to_causal_smoothing(predictor, demo, tmp_path):
    path = encode_video(demo / "test" / "test_00", tmp_path / "clip.mkv")
    offline = read_csv(predictor.predict(path, tmp_path / "file").files["scores"])
    streamed = predictor.predict(f"file://{path}", tmp_path / "stream")
    live = read_csv(streamed.files["scores"])
    raw = np.array([float(r["score_raw"]) for r in offline])
    np.testing.assert_allclose([float(r["score_raw"]) for r in live], raw, rtol=1e-6)  # same frames, same models
    np.testing.assert_allclose([float(r["score"]) for r in live], causal_smooth(raw, 3.0), rtol=1e-5)
    assert json.loads(streamed.files["events"].read_text())["latency_frames"] == predictor.config.batch_size - 1


def test_max_frames_and_threshold_override(bundle_dir, demo, tmp_path):
    options = PredictOptions(progress=False, device="cpu", max_frames=30, threshold=-1.0, overlay=False)
    result = Predictor(load_bundle(bundle_dir, device="cpu"), options).predict(demo / "test" / "test_02", tmp_path)
    rows = read_csv(result.files["scores"])
    assert len(rows) == 30 and all(r["is_anomalous"] == "1" for r in rows)
    (event,) = result.events  # every frame above a threshold of -1: one event spanning the clip
    assert (event.start_frame, event.end_frame) == (0, 29)
    assert not (result.out_dir / "overlay.mp4").exists()


def test_bundle_loads_and_scores_the_same_in_a_fresh_process(bundle_dir, predictor, demo, tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from mulde_vad.inference.bundle import load_bundle\n"
        "from mulde_vad.inference.predict import Predictor, PredictOptions\n"
        "b = load_bundle(sys.argv[1], device='cpu')\n"
        "p = Predictor(b, PredictOptions(progress=False, device='cpu', overlay=False))\n"
        "r = p.predict(sys.argv[2], sys.argv[3], keep_scores=True)\n"
        "print(repr(b.threshold.value)); print(','.join(repr(float(s)) for s in r.scores))\n"
    )
    video = demo / "test" / "test_00"
    out = subprocess.run(
        [sys.executable, "-c", script, str(bundle_dir), str(video), str(tmp_path / "fresh")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    here = predictor.predict(video, tmp_path / "here", keep_scores=True)
    assert float(out[0]) == predictor.bundle.threshold.value
    np.testing.assert_allclose([float(s) for s in out[1].split(",")], here.scores, rtol=1e-9)


def test_http_stream_is_scored_causally_up_to_max_frames(predictor, demo, tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    encode_video(demo / "test" / "test_02", tmp_path / "cam.mkv")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cam.mkv"
        options = PredictOptions(progress=False, device="cpu", max_frames=40, overlay=False)
        result = Predictor(predictor.bundle, options).predict(url, tmp_path / "out")
    finally:
        server.shutdown()
    assert result.name == "cam" and result.n_frames == 40
    events = json.loads(result.files["events"].read_text())
    assert events["smoothing"].startswith("causal") and events["source"] == url


def test_interrupted_stream_finalises_every_file(predictor, demo, tmp_path, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) while decoding: the frames scored so far are written and consistent."""
    run = predictor.pipeline.run

    def interrupted_run(reader, sink, summary):
        batches = reader.iter_batches

        def two_batches(size):
            for i, batch in enumerate(batches(size)):
                if i == 2:
                    raise KeyboardInterrupt
                yield batch

        monkeypatch.setattr(reader, "iter_batches", two_batches)
        run(reader, sink, summary)

    monkeypatch.setattr(predictor.pipeline, "run", interrupted_run)
    result = predictor.predict(demo / "test" / "test_00", tmp_path)
    n = 2 * predictor.config.batch_size
    assert result.interrupted and result.n_frames == n
    assert len(read_csv(result.files["scores"])) == n
    assert json.loads(result.files["events"].read_text())["interrupted"] is True
    assert decoded(result.files["overlay"])[0] == n
    assert not list(result.out_dir.glob(".*"))  # no temporary files left


def test_buffers_stay_bounded_whatever_the_length(predictor, demo, tmp_path, monkeypatch):
    """Frames wait only for their batch and the smoothing window: never the whole video."""
    from mulde_vad.inference import predict as module

    peak = {"frames": 0, "pending": 0}
    add_frames = module._Session.add_frames

    def watched(self, batch):
        add_frames(self, batch)
        peak["frames"] = max(peak["frames"], len(self.frames))
        peak["pending"] = max(peak["pending"], len(self.pending))

    monkeypatch.setattr(module._Session, "add_frames", watched)
    options = PredictOptions(progress=False, device="cpu", overlay=False, batch_size=8)
    result = Predictor(predictor.bundle, options).predict(demo / "test" / "test_01", tmp_path)
    assert result.n_frames == 100
    delay = 12  # centred smoothing radius for sigma 3
    # decoded ahead: the batches the prefetch thread has finished, and the one it is detecting
    ahead = (PREFETCH_BATCHES + 1) * 8
    assert peak["frames"] <= 8 + delay + 8 + ahead and peak["pending"] <= delay + 8
