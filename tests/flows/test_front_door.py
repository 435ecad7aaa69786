"""What a user sees of a run at the command line: one live progress display unless ``--quiet``, no
FutureWarning, and a dataset layout error as one line with exit code 2, found before any work, never retried."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import tiny_overrides

from mulde_vad.datasets import DatasetLayoutError
from mulde_vad.datasets.ucsd import UCSDPed
from mulde_vad.flows.cli import main
from mulde_vad.flows.config import load_config
from mulde_vad.flows.pipeline import extract_flow

pytestmark = pytest.mark.usefixtures("prefect_db")


def _argv(command: str, config: str, settings: dict) -> list[str]:
    """The command line setting each dotted field (JSON is YAML, which ``--set`` reads)."""
    return [
        command,
        config,
        *(arg for key, value in settings.items() for arg in ("--set", f"{key}={json.dumps(value)}")),
    ]


def test_run_shows_a_live_progress_display_unless_quiet_and_no_future_warning(tmp_path, fake_features, capsys):
    argv = _argv("run", "demo", tiny_overrides(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        assert main(argv) == 0
    shown = capsys.readouterr().err
    assert "extract: 100%" in shown and "6/6" in shown and re.search(r"\d+\.\d frames/s", shown)
    assert "train: 100%" in shown and re.search(r"(motion|colour) step 5/5 loss \d", shown)  # 5 epochs of 1 step
    assert "score: 100%" in shown and "3/3" in shown
    assert "FutureWarning" not in shown
    assert not [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]

    assert main([*argv, "--quiet"]) == 0
    out, shown = capsys.readouterr()
    assert "fused" in out  # the summary still comes
    assert "%|" not in shown and "frames/s" not in shown


def _ped2_without_ground_truth(root: Path) -> Path:
    """The AI-VAD redistribution layout of Ped2, one video per split, and no ped2.mat."""
    for split in ("training", "testing"):
        folder = root / split / "frames" / "01"
        folder.mkdir(parents=True)
        for frame in range(1, 4):
            cv2.imwrite(str(folder / f"{frame:03d}.jpg"), np.zeros((16, 16, 3), np.uint8))
    return root


def _ped2_settings(tmp_path: Path) -> dict:
    root = _ped2_without_ground_truth(tmp_path / "ped2")
    return {"dataset.root": str(root), "store": str(tmp_path / "store"), "output": str(tmp_path / "runs")}


def test_a_missing_ground_truth_is_one_line_and_exit_2_before_any_work(tmp_path, capsys):
    argv = _argv("extract", "ped2", {**_ped2_settings(tmp_path), "extraction.preset": "weightfree"})
    assert main(argv) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("mulde-vad: config 'ped2': ") and "no ground truth" in line
    assert str(tmp_path / "ped2") in line and "UCSDped2.m or ped2.mat" in line and "docs/datasets.md" in line
    assert not out and sorted(p.name for p in tmp_path.iterdir()) == ["ped2"]  # no store, no run folder

    assert main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == line


def test_a_layout_error_in_a_flow_run_is_not_retried(tmp_path, monkeypatch):
    """The deployments skip the command line's check: the flow's discovery tries once, as retries cannot help."""
    tries = []
    videos = UCSDPed.videos
    monkeypatch.setattr(UCSDPed, "videos", lambda self, split: tries.append(split) or videos(self, split))
    config = load_config("ped2", {**_ped2_settings(tmp_path), "extraction.preset": "weightfree"})
    with pytest.raises(DatasetLayoutError, match="no ground truth"):
        extract_flow(config)
    assert tries == ["train", "test"]
