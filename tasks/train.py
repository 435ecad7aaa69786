"""Stage 3: fit one MULDE per feature type on the training objects, and its calibration statistics.

The model directory is keyed like a shard directory (MULDE params + feature + the extraction key +
code version), so an existing model is loaded instead of retrained. The training objects' GMM NLL
scores give the AI-VAD calibration (min and 99.9th percentile or max) used when types are summed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from models import MULDE
from models.calibration import AIVAD_UPPER, Calibration
from storage import FeatureStore, stack_features
from tasks.common import stage_key, write_json_atomic

STAGE = "models"
MODEL_FILE = "mulde.pt"
CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class TrainedModel:
    feature: str
    model_path: Path
    calibration: Calibration
    n_train: int
    computed: bool
    seconds: float

    @property
    def key(self) -> str:
        """The model's cache key (its directory name): what downstream scores are keyed by."""
        return self.model_path.parent.name


def train_key(feature: str, mulde_params: Mapping[str, Any], extract_hash: str) -> dict[str, Any]:
    return stage_key(STAGE, {"feature": feature, "mulde": dict(mulde_params)}, {"extract": extract_hash})


def default_upper(feature: str) -> float | str:
    """AI-VAD's upper calibration statistic for known types, the 99.9th percentile otherwise."""
    return AIVAD_UPPER.get(feature, 99.9)


def train_feature(
    feature: str,
    train_shards: Sequence[Path],
    mulde_params: Mapping[str, Any],
    store_root: Path,
    upper: float | str | None = None,
) -> TrainedModel:
    """Fit (or load) the MULDE model of ``feature`` on every training object of the given shards."""
    extract_hash = Path(train_shards[0]).parent.name
    directory = FeatureStore(store_root).stage_dir(STAGE, train_key(feature, mulde_params, extract_hash))
    model_path, calibration_path = directory / f"{feature}.{MODEL_FILE}", directory / f"{feature}.{CALIBRATION_FILE}"
    if model_path.is_file() and calibration_path.is_file():
        saved = json.loads(calibration_path.read_text())
        return TrainedModel(feature, model_path, Calibration(saved["low"], saved["high"]), saved["n_train"], False, 0.0)
    start = time.perf_counter()
    X = stack_features(train_shards, feature)
    if len(X) < 2:
        raise ValueError(f"feature {feature!r}: only {len(X)} training objects in {len(train_shards)} shards")
    model = MULDE(**mulde_params).fit(X)
    train_scores = model.anomaly_score(X)
    calibration = Calibration.fit(train_scores, upper if upper is not None else default_upper(feature), name=feature)
    model.save(model_path)
    write_json_atomic(
        calibration_path,
        {
            "low": calibration.low,
            "high": calibration.high,
            "n_train": len(X),
            "score_quantiles": _quantiles(train_scores),
        },
    )
    return TrainedModel(feature, model_path, calibration, len(X), True, time.perf_counter() - start)


def _quantiles(scores: np.ndarray) -> dict[str, float]:
    return {f"q{q}": float(np.percentile(scores, q)) for q in (0, 50, 99, 99.9, 100)}


train_task = task(train_feature, name="train-mulde", task_run_name="train-{feature}", retries=1, cache_policy=NO_CACHE)
