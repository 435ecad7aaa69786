"""What every stage shares: the code version that enters every cache key, atomic small-file writes, how a
per-video task reports what it did, and which errors are worth a retry."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from prefect import get_run_logger
from prefect.states import Completed, State

from mulde_vad import __version__
from mulde_vad.features.decode import VideoDecodeError
from mulde_vad.features.weights import MissingWeightsError
from mulde_vad.storage import SCHEMA_VERSION, config_hash
from mulde_vad.storage.shards import temp_path_for

#: Enters every stage key: a new release (``mulde_vad.__version__``, the one version source, also the
#: wheel's) or shard schema never reuses results of an older one.
CODE_VERSION = f"{__version__}/schema{SCHEMA_VERSION}"


def stage_key(stage: str, config: Mapping[str, Any], upstream: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The configuration a stage is keyed by: its own settings, the keys of its inputs, and the code version.

    The feature store hashes this mapping into the stage directory, so the directory name *is* the cache key.
    """
    return {"stage": stage, "config": dict(config), "upstream": dict(upstream or {}), "code": CODE_VERSION}


def key_hash(key: Mapping[str, Any]) -> str:
    return config_hash(key)


def new_run_dir(parent: Path) -> Path:
    """A fresh ``parent/<UTC time>/`` folder for one run (``-2``, ``-3``... when two start within a second)."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in itertools.count(1):
        path = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def point_latest(run_dir: Path) -> Path:
    """Make ``<parent>/latest`` a relative link to ``run_dir``, replaced atomically; return the link."""
    link = run_dir.parent / "latest"
    temp = temp_path_for(link)
    temp.unlink(missing_ok=True)
    os.symlink(run_dir.name, temp)
    os.replace(temp, link)
    return link


def write_json_atomic(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)  # named like a shard's temp file, so clean_partial removes it after a crash
    temp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(temp, path)
    return path


class _Outcome(Protocol):
    computed: bool


R = TypeVar("R", bound=_Outcome)

#: Errors that come out the same on every try: a corrupt video, a missing weights file, and ValueError,
#: which covers a wrong dataset layout (DatasetLayoutError), a bad config (ConfigError) and a corrupt shard
#: (ShardError). Retrying them only delays the failure.
DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    VideoDecodeError,
    MissingWeightsError,
    ValueError,
    TypeError,
    KeyError,
)


def retry_transient(task: Any, task_run: Any, state: State) -> bool:
    """``retry_condition_fn`` for every task: retry unless the error is one of DETERMINISTIC_ERRORS (anything
    else, such as an I/O hiccup or a timeout on a loaded machine, may pass next time)."""
    return not isinstance(state.result(raise_on_failure=False), DETERMINISTIC_ERRORS)


def run_visibly(what: str, work: Callable[[], R]) -> R | State:
    """Run one unit of cached work and say what happened, in one log line and in the task-run state.

    Work reused from the store finishes in a Completed state named "Skipped" (carrying the same result),
    so the UI tells a skip from a computation.
    """
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    logger = get_run_logger()
    if result.computed:
        logger.info("%s: computed in %.2f s", what, seconds)
        return result
    logger.info("%s: skipped, valid result in the store (%.2f s)", what, seconds)
    return Completed(data=result, name="Skipped", message=f"{what}: reused from the store")
