"""Files from outside run no code: pickled AI-VAD arrays need --allow-pickle, YOLO weights load in safe mode."""

from __future__ import annotations

import pathlib
from pathlib import Path

import numpy as np
import pytest
import torch
from test_aivad_import import make_release

from mulde_vad.flows.cli import build_parser
from mulde_vad.storage import FeatureStore
from mulde_vad.storage.aivad import import_aivad


class Payload:
    """Unpickling this creates ``marker``: a stand-in for any code an attacker's file would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_aivad_import_refuses_pickled_arrays_unless_allowed(tmp_path: Path) -> None:
    features_dir, lengths_dir, _ = make_release(tmp_path)
    marker = tmp_path / "ran"
    payload = np.empty(7, dtype=object)
    payload[:] = [Payload(marker)] * 7
    np.save(features_dir / "train" / "velocity.npy", payload, allow_pickle=True)
    store = FeatureStore(tmp_path / "store")
    with pytest.raises(ValueError, match=r"velocity\.npy: holds a pickled object array.*pass --allow-pickle"):
        import_aivad(features_dir, lengths_dir, store, dataset="ped2", features=["velocity"])
    assert not marker.exists()
    with pytest.raises(ValueError):  # trusted on purpose: the file is unpickled (and is not AI-VAD's format)
        import_aivad(features_dir, lengths_dir, store, dataset="ped2", features=["velocity"], allow_pickle=True)
    assert marker.exists()
    args = build_parser().parse_args(["import-aivad", "ped2", "--features-dir", "f", "--clip-lengths-dir", "c"])
    assert args.allow_pickle is False


def test_import_aivad_help_says_which_files_are_trusted(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["import-aivad", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--allow-pickle" in help_text and "unpickling runs any code" in help_text
    assert "a source you trust" in help_text


def test_yolo_weights_that_would_run_code_are_refused(tmp_path: Path) -> None:
    from mulde_vad.features.detection import load_yolo

    marker = tmp_path / "ran"
    weights = tmp_path / "evil.pt"
    torch.save({"model": Payload(marker)}, weights)
    with pytest.raises(TypeError, match="outside the supported Ultralytics checkpoint format"):
        load_yolo(str(weights))
    assert not marker.exists()
