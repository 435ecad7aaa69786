"""A small demo dataset and a bundle fitted on its normal training videos, shared by the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_footage import SPEC, TINY_MULDE

from mulde_vad.datasets.demo import generate_demo
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.inference.fit import FitOptions, fit_bundle


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("demo") / "data", SPEC)


@pytest.fixture(scope="session")
def bundle_dir(demo, tmp_path_factory) -> Path:
    config = ExtractionConfig.preset("weightfree", device="cpu")
    options = FitOptions(mulde_params=TINY_MULDE, folds=4)
    bundle = fit_bundle(sorted((demo / "train").iterdir()), "weightfree", config, options, log=lambda _: None)
    return bundle.save(tmp_path_factory.mktemp("bundles") / "demo")
