"""Provenance: stable config hashes, fingerprints that notice changed inputs, weight hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mulde_vad.storage import config_hash, fingerprint, make_provenance


def test_config_hash_is_canonical() -> None:
    assert config_hash({"a": 1, "b": (2, 3)}) == config_hash({"b": [2, 3], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 16


def test_fingerprint_changes_with_the_video_and_the_frame_folder(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * (3 << 20))
    before, stamp = fingerprint(video), video.stat().st_mtime_ns
    middle = bytearray(b"x" * (3 << 20))
    middle[3 << 19] = ord("y")  # same size, one byte in the middle differs
    video.write_bytes(bytes(middle))
    os.utime(video, ns=(stamp + 10**9,) * 2)  # a rewrite seconds later
    assert fingerprint(video)["sha256"] != before["sha256"]
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "0.jpg").write_bytes(b"a")
    first = fingerprint(frames)
    (frames / "1.jpg").write_bytes(b"b")
    assert first["n_files"] == 1 and fingerprint(frames)["sha256"] != first["sha256"]


def test_provenance_records_weights_and_names_a_missing_file(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    provenance = make_provenance(video=None, config={"k": 1}, weights={"detector": weights})
    assert provenance["weights"]["detector"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert provenance["config_hash"] == config_hash({"k": 1}) and "h5py" in provenance["libraries"]
    with pytest.raises(FileNotFoundError, match=r"weights 'pose': file .*missing\.pt does not exist"):
        make_provenance(video=None, config={}, weights={"pose": tmp_path / "missing.pt"})
