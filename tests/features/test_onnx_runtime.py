"""The ONNX export cache: one export per network, a changed network exported anew, a broken file replaced."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mulde_vad.features import onnx_runtime
from mulde_vad.features.onnx_runtime import OnnxModel, cached_export
from mulde_vad.storage.shards import TEMP_SUFFIX

BATCH = {0: torch.export.Dim("n")}


@pytest.fixture
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[nn.Module]:
    """The modules exported by ``cached_export``, with the cache in ``tmp_path``."""
    monkeypatch.setenv("MULDE_VAD_CACHE", str(tmp_path))
    exported: list[nn.Module] = []
    export = onnx_runtime.export_onnx
    monkeypatch.setattr(onnx_runtime, "export_onnx", lambda model, *a: exported.append(model) or export(model, *a))
    return exported


def _build(model: nn.Module) -> OnnxModel:
    return cached_export(model, torch.zeros(2, 3, 8, 8), BATCH, lambda onnx: OnnxModel(onnx, threads=1))


def _assert_runs_as(runtime: OnnxModel, model: nn.Module) -> None:
    x = torch.rand(3, 3, 8, 8)
    with torch.inference_mode():
        np.testing.assert_allclose(runtime(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_network_is_exported_once_and_a_changed_one_again(tmp_path: Path, exports: list[nn.Module]) -> None:
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, 1)
    _assert_runs_as(_build(model), model)
    _assert_runs_as(_build(model), model)  # served from the cache file
    assert len(exports) == 1
    with torch.no_grad():
        model.weight.add_(1.0)
    _assert_runs_as(_build(model), model)  # new weights: a new export, never the stale file
    assert len(exports) == 2 and len(list((tmp_path / "onnx").glob("*.onnx"))) == 2
    assert not list((tmp_path / "onnx").glob(f"*{TEMP_SUFFIX}"))  # written atomically


def test_a_cached_file_the_runtime_cannot_read_is_exported_again(
    tmp_path: Path, exports: list[nn.Module], caplog: pytest.LogCaptureFixture
) -> None:
    model = nn.Conv2d(3, 2, 1)
    _build(model)
    (cached,) = (tmp_path / "onnx").glob("*.onnx")
    cached.write_bytes(b"half-written")
    with caplog.at_level(logging.WARNING):
        _assert_runs_as(_build(model), model)
    assert len(exports) == 2 and any(str(cached) in r.getMessage() for r in caplog.records)
    _assert_runs_as(OnnxModel(cached, threads=1), model)  # the file was replaced by a good export


def test_threads_that_miss_the_cache_together_export_once(exports: list[nn.Module]) -> None:
    model = nn.Conv2d(3, 2, 1)
    with ThreadPoolExecutor(2) as pool:
        runtimes = list(pool.map(lambda _: _build(model), range(2)))
    assert len(exports) == 1
    for runtime in runtimes:
        _assert_runs_as(runtime, model)
