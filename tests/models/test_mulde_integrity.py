"""A stored MULDE is checked on load (tensor hash) and retrained when corrupt; scoring memory does not grow with n."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mulde_vad.models import MULDE
from mulde_vad.models.score_store import FeatureSource
from mulde_vad.storage import BoxSource, FeatureStore, ObjectChunk, ObjectTable, ShardWriter, make_provenance
from mulde_vad.tasks.train import RetrainWarning, train_feature, train_key

TINY = {"hidden_units": [16, 16], "epochs": 2, "batch_size": 64, "n_scales": 4, "gmm_components": 1, "device": "cpu"}


def _fitted(n: int = 200, d: int = 4) -> MULDE:
    X = np.random.default_rng(0).normal(size=(n, d))
    return MULDE(**TINY).fit(X)


def _flip_weights(path: Path, model: MULDE) -> None:
    """Invert 16 bytes of the first layer's weights where they sit in the file (torch stores them raw)."""
    weights = next(iter(model.network_.state_dict().values())).numpy().tobytes()
    data = bytearray(path.read_bytes())
    offset = data.find(weights[:64])
    assert offset > 0
    data[offset : offset + 16] = bytes(b ^ 0xFF for b in data[offset : offset + 16])
    path.write_bytes(bytes(data))


def test_flipped_weight_bytes_are_refused_on_load(tmp_path: Path) -> None:
    model = _fitted()
    path = tmp_path / "m.mulde"
    model.save(path)
    assert MULDE.load(path).anomaly_score(np.zeros((2, 4))) == pytest.approx(model.anomaly_score(np.zeros((2, 4))))
    _flip_weights(path, model)
    with pytest.raises(ValueError, match=rf"{path}.* is corrupt: its weights do not match the hash"):
        MULDE.load(path)


def _store_with_training_video(root: Path) -> tuple[FeatureStore, FeatureSource]:
    store, source = FeatureStore(root), FeatureSource("f", "extract", {"k": 1})
    rows = np.random.default_rng(1).normal(size=(120, 4)).astype(np.float32)
    table = ObjectTable(
        frame_index=np.arange(120, dtype=np.int64),
        boxes=np.zeros((120, 4), np.float32),
        confidence=np.ones(120, np.float32),
        class_id=np.zeros(120, np.int32),
        source=np.full(120, BoxSource.DETECTOR, np.uint8),
    )
    path = store.shard_path("extract", source.config, "train_00")
    with ShardWriter(path, kind="object", provenance=make_provenance(video=None, config=source.config)) as writer:
        writer.append_objects(ObjectChunk(table, {"f": rows}))
        writer.finish(120)
    return store, source


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_or_truncated_stored_model_is_reported_and_retrained(tmp_path: Path, damage: str) -> None:
    _, source = _store_with_training_video(tmp_path)
    first = train_feature(source, ["train_00"], TINY, tmp_path)
    assert first.computed and not train_feature(source, ["train_00"], TINY, tmp_path).computed
    if damage == "flip":
        _flip_weights(first.model_path, MULDE.load(first.model_path))
    else:
        first.model_path.write_bytes(first.model_path.read_bytes()[:1000])
    with pytest.warns(RetrainWarning, match=rf"retraining f: .*{first.model_path.name}"):
        again = train_feature(source, ["train_00"], TINY, tmp_path)
    assert again.computed and again.model_path == first.model_path
    MULDE.load(again.model_path)  # whole again, and the next run reuses it
    assert not train_feature(source, ["train_00"], TINY, tmp_path).computed


def test_a_changed_calibration_tail_reuses_the_model_and_applies_the_new_tail(tmp_path: Path) -> None:
    _, source = _store_with_training_video(tmp_path)
    linear = train_feature(replace(source, tail="linear"), ["train_00"], TINY, tmp_path)
    log = train_feature(replace(source, tail="log"), ["train_00"], TINY, tmp_path)
    assert linear.computed and not log.computed  # the saved statistics do not depend on the tail
    assert (log.calibration.low, log.calibration.high) == (linear.calibration.low, linear.calibration.high)
    assert (linear.calibration.tail, log.calibration.tail) == ("linear", "log")


def _extra_peak_bytes(model: MULDE, X: np.ndarray) -> int:
    """Peak bytes numpy allocates while scoring X, beyond the (n, L) float64 result itself."""
    tracemalloc.start()
    try:
        model.scale_scores(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - len(X) * len(model.scales_) * 8


def test_scale_scores_extra_memory_does_not_grow_with_n() -> None:
    model = _fitted(d=64)
    small = np.random.default_rng(2).normal(size=(4_000, 64)).astype(np.float32)
    large = np.random.default_rng(3).normal(size=(40_000, 64)).astype(np.float32)
    np.testing.assert_array_equal(model.scale_scores(large[:4_000]), model.scale_scores(large)[:4_000])
    extra_small, extra_large = _extra_peak_bytes(model, small), _extra_peak_bytes(model, large)
    assert extra_large < 0.5 * large.nbytes  # one full-size float64 copy alone would be 2x the input
    assert extra_large < 1.5 * extra_small + (1 << 20)


def test_model_key_holds_every_resolved_parameter_so_a_changed_default_is_a_new_model() -> None:
    source = FeatureSource("velocity", "extract", {"preset": "weightfree"})
    default_fusion = MULDE().fusion
    other_fusion = "robust" if default_fusion != "robust" else "max"
    assert train_key(source, {}) == train_key(source, {"fusion": default_fusion})  # same model, same key
    assert train_key(source, {})["config"]["mulde"]["fusion"] == default_fusion  # the default is in the key
    assert train_key(source, {}) != train_key(source, {"fusion": other_fusion})
