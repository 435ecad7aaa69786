"""What every stage shares: the code version that enters every cache key, and atomic small-file writes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mulde_vad import __version__
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


def write_json_atomic(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)  # named like a shard's temp file, so clean_partial removes it after a crash
    temp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(temp, path)
    return path
