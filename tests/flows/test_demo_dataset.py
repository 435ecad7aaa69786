"""The synthetic demo dataset: deterministic, in the generic folder layout, with exact ground truth."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mulde_vad.datasets import get_adapter
from mulde_vad.datasets.demo import DemoSpec, anomaly_plan, generate_demo

SPEC = DemoSpec(seed=3, n_train=2, n_test=4, n_frames=40, width=64, height=48)


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a = generate_demo(tmp_path / "a", SPEC)
    b = generate_demo(tmp_path / "b", SPEC)
    c = generate_demo(tmp_path / "c", DemoSpec(**{**SPEC.__dict__, "seed": 4}))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_folder_adapter_reads_it_with_labels_from_the_plan(tmp_path):
    root = generate_demo(tmp_path / "demo", SPEC)
    adapter = get_adapter("folder", root)
    train, test = adapter.videos("train"), adapter.videos("test")
    assert [r.video_id for r in train] == ["train_00", "train_01"]
    assert [r.video_id for r in test] == ["test_00", "test_01", "test_02", "test_03"]
    plan = dict(anomaly_plan(SPEC))
    assert plan == {"test_00": "fast", "test_01": "offpath", "test_02": "large", "test_03": None}
    for record in test:
        assert record.labels.shape == (40,)
        assert (record.labels.any()) == (plan[record.video_id] is not None)
    # the anomalous actor enters between n_frames/5 and n_frames/3 and is visible from then on for a while
    first = [int(np.flatnonzero(r.labels)[0]) for r in test if r.labels.any()]
    assert all(8 <= f <= 16 for f in first), first


def test_frames_have_the_requested_size_and_count(tmp_path):
    import cv2

    root = generate_demo(tmp_path / "demo", SPEC)
    frames = sorted((root / "train" / "train_00").glob("*.png"))
    assert len(frames) == 40
    assert cv2.imread(str(frames[0])).shape == (48, 64, 3)


def test_existing_dataset_is_kept_and_a_foreign_folder_refused(tmp_path):
    root = generate_demo(tmp_path / "demo", SPEC)
    marker = root / "train" / "train_00" / "0.png"
    mtime = marker.stat().st_mtime_ns
    generate_demo(root, SPEC)
    assert marker.stat().st_mtime_ns == mtime  # same spec: nothing rewritten
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a demo dataset"):
        generate_demo(foreign, SPEC)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="unknown demo anomalies"):
        DemoSpec(anomalies=("teleport",))
