"""Stage 3: fit one MULDE per feature type on the training objects, and its calibration statistics.

The fit itself is ``models.score_store.fit_feature``; this task adds the cache: the model directory is
keyed like a shard directory (feature source + MULDE params + the content digests of the training
shards + code version), so a saved model is loaded instead of retrained, and a changed training video
means a new model. A saved model that fails to load (truncated, or its tensor hash does not match) is
reported and retrained, never used.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from mulde_vad.models import MULDE
from mulde_vad.models.calibration import Calibration
from mulde_vad.models.mulde import EpochCallback
from mulde_vad.models.score_store import FeatureSource, FittedFeature, default_estimator, fit_feature
from mulde_vad.storage import FeatureStore, config_hash
from mulde_vad.storage.shards import shard_inputs
from mulde_vad.tasks.common import retry_transient, run_visibly, stage_key, write_json_atomic

STAGE = "models"


@dataclass(frozen=True)
class TrainedModel:
    source: FeatureSource
    model_path: Path
    calibration: Calibration
    n_train: int
    computed: bool  # False: loaded from the store
    seconds: float

    @property
    def key(self) -> str:
        """The model's cache key (its directory name): what downstream scores are keyed by."""
        return self.model_path.parent.name

    def load(self) -> FittedFeature:
        """The fitted model, loaded once per process (and model file version) for all the videos it scores."""
        with _LOADING:  # concurrent scoring threads wait for the first load instead of repeating it
            model = _load_model(self.model_path, self.model_path.stat().st_mtime_ns)
        return FittedFeature(self.source, model, self.calibration, self.n_train)


_LOADING = threading.Lock()


@functools.lru_cache(maxsize=16)
def _load_model(path: Path, mtime_ns: int) -> MULDE:
    return MULDE.load(path)


class RetrainWarning(UserWarning):
    """A saved model or its calibration could not be loaded; the model is trained again."""


def training_inputs(store: FeatureStore, source: FeatureSource, train_ids: Sequence[str]) -> str:
    """One digest of every training shard's input digest: changes when any training video does."""
    paths = store.shards(source.stage, source.config, list(train_ids))
    return config_hash({video: shard_inputs(path) for video, path in zip(train_ids, paths, strict=True)})


#: What the calibration statistics are computed from (``MULDE.calibration_scores_``); part of the model key.
CALIBRATION_SCORES = "scores of the rows the fusion was fitted on (held out from the network if fusion_holdout > 0)"


def train_key(source: FeatureSource, mulde_params: Mapping[str, Any], inputs: str = "") -> dict[str, Any]:
    """Keyed by every MULDE parameter as the estimator resolves it, the defaults included: a changed
    default (a new fusion, say) is a new model, never one trained under the old default. ``calibration``
    names the scores the calibration is fitted on, so a calibration from an older rule is never reused."""
    upstream = {"stage": source.stage, "config": config_hash(source.config), "feature": source.key, "inputs": inputs}
    resolved = MULDE(**mulde_params).get_params()
    return stage_key(STAGE, {"mulde": resolved, "upper": source.upper, "calibration": CALIBRATION_SCORES}, upstream)


def _load_saved(source: FeatureSource, model_path: Path, calibration_path: Path) -> TrainedModel | None:
    """The stored model when both files load (the model's tensor hash checked); None, with a warning, otherwise."""
    if not (model_path.is_file() and calibration_path.is_file()):
        return None
    try:
        MULDE.load(model_path)
        saved = json.loads(calibration_path.read_text())
        calibration = Calibration(saved["low"], saved["high"], source.tail)
        return TrainedModel(source, model_path, calibration, saved["n_train"], computed=False, seconds=0.0)
    except (ValueError, KeyError, TypeError) as error:
        warnings.warn(f"retraining {source.name}: {error}", RetrainWarning, stacklevel=2)
        return None


def train_feature(
    source: FeatureSource,
    train_ids: Sequence[str],
    mulde_params: Mapping[str, Any],
    store_root: Path,
    on_epoch: EpochCallback | None = None,
) -> TrainedModel:
    """Fit (or load) the MULDE model of one feature type on all training videos' rows; ``on_epoch`` shows the fit's
    progress (``MULDE.fit``)."""
    store = FeatureStore(store_root)
    directory = store.stage_dir(STAGE, train_key(source, mulde_params, training_inputs(store, source, train_ids)))
    model_path, calibration_path = directory / f"{source.name}.mulde", directory / f"{source.name}.calibration.json"
    saved = _load_saved(source, model_path, calibration_path)
    if saved is not None:
        return saved
    start = time.perf_counter()
    fitted = fit_feature(store, source, train_ids, default_estimator(mulde_params), on_epoch=on_epoch)
    fitted.model.save(model_path)
    write_json_atomic(
        calibration_path, {"low": fitted.calibration.low, "high": fitted.calibration.high, "n_train": fitted.n_train}
    )
    return TrainedModel(source, model_path, fitted.calibration, fitted.n_train, True, time.perf_counter() - start)


#: About this many loss lines per trained model, evenly spaced over its epochs.
LOSS_LINES = 10


def log_loss(what: str, history: Mapping[str, np.ndarray]) -> None:
    """Log the per-epoch training loss at about LOSS_LINES evenly spaced epochs, the last one included."""
    logger = get_run_logger()
    total = history["total"]
    every = max(1, len(total) // LOSS_LINES)
    for epoch in [*range(every, len(total), every), len(total)]:
        logger.info(
            "%s: epoch %d/%d loss %.4g (DSM %.4g, regulariser %.4g)",
            what, epoch, len(total), total[epoch - 1], history["dsm"][epoch - 1], history["regulariser"][epoch - 1],
        )  # fmt: skip


def _train_visibly(
    source: FeatureSource,
    train_ids: Sequence[str],
    mulde_params: Mapping[str, Any],
    store_root: Path,
    on_epoch: EpochCallback | None = None,
) -> TrainedModel | State:
    what = f"train {source.name}"

    def work() -> TrainedModel:
        model = train_feature(source, train_ids, mulde_params, store_root, on_epoch)
        if model.computed:
            log_loss(what, MULDE.load(model.model_path).loss_history_)
        return model

    return run_visibly(what, work)


train_task = task(
    _train_visibly,
    name="train-mulde",
    task_run_name="train-{source.name}",
    retries=1,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
