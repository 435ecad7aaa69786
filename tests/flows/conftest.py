"""Flow-test fixtures: a tiny demo dataset, an isolated Prefect database, and the fake extractor wired in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # fake_extraction, also for subprocesses started by tests

import fake_extraction

TINY_DEMO = {"seed": 0, "n_train": 3, "n_test": 3, "n_frames": 40, "width": 64, "height": 48}
TINY_MULDE = {"hidden_units": [64, 64], "epochs": 5, "batch_size": 256, "learning_rate": 1e-3, "device": "cpu"}


def tiny_overrides(tmp: Path, name: str = "tiny") -> dict:
    """Dotted overrides turning configs/demo.yaml into a seconds-long run under ``tmp``."""
    return {
        "name": name,
        "dataset.root": str(tmp / "data"),
        "dataset.demo": TINY_DEMO,
        "store": str(tmp / "store"),
        "output": str(tmp / "runs"),
        "extraction.preset": "fake",
        "mulde": TINY_MULDE,
        "evaluation.smoothing_sigma": 1.0,
        "evaluation.plots": True,
    }


@pytest.fixture(scope="session")
def prefect_db():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def fake_features(monkeypatch):
    """Route extraction through ``fake_extraction``; reset its fault switches."""
    from mulde_vad.flows import pipeline
    from mulde_vad.tasks import extract as extract_tasks

    monkeypatch.setattr(extract_tasks, "extract_video", fake_extraction.fake_extract_video)
    monkeypatch.setattr(extract_tasks, "extraction_config", fake_extraction.fake_config)
    monkeypatch.setattr(pipeline, "extraction_config", fake_extraction.fake_config)
    fake_extraction.FAIL_ON.clear()
    fake_extraction.CALLS.clear()
    monkeypatch.setattr(fake_extraction, "SLEEP_S", 0.0)
    monkeypatch.setattr(fake_extraction, "FAIL_ERROR", RuntimeError)
    return fake_extraction
