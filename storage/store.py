"""The feature store: ``root/<stage>/<config hash>/<video_id>.h5``, one directory per stage configuration.

A changed configuration hashes to a new directory, so old results are never overwritten, and "done"
means "the shard exists and validates". Workers writing different videos touch different files and
only ever create ``config.json`` atomically, so they never conflict.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mulde_vad.storage.provenance import canonical_json, config_hash
from mulde_vad.storage.shards import TEMP_SUFFIX, ShardError, host_tag, temp_path_for, validate_shard

SHARD_SUFFIX = ".h5"
_VIDEO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# .<name>.<host>.<pid>.<8 hex>.tmp, as written by storage.shards.temp_path_for
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + "$")


class StaleShardWarning(UserWarning):
    """A stored shard was stale (its inputs changed) or corrupt (a checksum failed); it is recomputed."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FeatureStore:
    """Directory of shards keyed by (stage, config, video id)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def stage_dir(self, stage: str, config: Mapping[str, Any]) -> Path:
        """``root/stage/<sha256(config)[:16]>/``, created with its ``config.json`` on first use."""
        if not _VIDEO_ID.match(stage):
            raise ValueError(f"stage name {stage!r} must be filesystem-safe (letters, digits, '_', '-', '.')")
        directory = self.root / stage / config_hash(config)
        config_file = directory / "config.json"
        if not config_file.exists():
            directory.mkdir(parents=True, exist_ok=True)
            temp = temp_path_for(config_file)
            temp.write_text(json.dumps(json.loads(canonical_json(config)), indent=2, sort_keys=True) + "\n")
            os.replace(temp, config_file)
        return directory

    def shard_path(self, stage: str, config: Mapping[str, Any], video_id: str) -> Path:
        if not _VIDEO_ID.match(video_id):
            raise ValueError(f"video id {video_id!r} is not filesystem-safe (letters, digits, '_', '-', '.')")
        return self.stage_dir(stage, config) / f"{video_id}{SHARD_SUFFIX}"

    def is_complete(self, path: str | Path, *, inputs: str | None = None) -> bool:
        """True when the shard exists, opens, has this schema, is marked complete and matches its directory's config
        (and, when given, was computed from ``inputs``: the content digest of its inputs now)."""
        path = Path(path)
        try:
            validate_shard(path, expected_hash=path.parent.name, expected_inputs=inputs)
        except ShardError:
            return False
        return True

    def reusable(self, path: str | Path, *, inputs: str) -> bool:
        """True when a complete shard computed from ``inputs`` is at ``path`` and every checksum holds.

        A present but stale or corrupt shard is deleted (and reported by the caller's recompute),
        so it can never be read later; a missing one is simply not reusable.
        """
        path = Path(path)
        if not path.exists():
            return False
        try:
            validate_shard(path, expected_hash=path.parent.name, expected_inputs=inputs, verify_data=True)
        except ShardError as error:
            warnings.warn(f"recomputing: {error}", StaleShardWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return False
        return True

    def shards(self, stage: str, config: Mapping[str, Any], video_ids: list[str] | None = None) -> list[Path]:
        """Complete shards of a stage config: all of them sorted by name, or exactly ``video_ids`` in that order.

        Raises ShardError naming every requested video whose shard is missing or invalid.
        """
        directory = self.stage_dir(stage, config)
        if video_ids is None:
            return sorted(p for p in directory.glob(f"*{SHARD_SUFFIX}") if self.is_complete(p))
        paths = [directory / f"{v}{SHARD_SUFFIX}" for v in video_ids]
        missing = [p.stem for p in paths if not self.is_complete(p)]
        if missing:
            raise ShardError(f"{directory}: {len(missing)} shard(s) missing or invalid: {', '.join(missing[:10])}")
        return paths

    def config(self, stage: str, config_hash_: str) -> dict[str, Any]:
        """The config a stage directory was created for (to recover it from a hash)."""
        path = self.root / stage / config_hash_ / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such stage configuration in {self.root}")
        return json.loads(path.read_text())

    def clean_partial(self, *, older_than_s: float | None = None) -> list[Path]:
        """Delete temporary files left by writers that died; return what was removed.

        A temp file is stale when its writer ran on this host and that pid is gone, or, for writers on
        other hosts of a shared store, when it is older than ``older_than_s`` seconds (if given).
        Live writers' files are never touched.
        """
        removed = []
        host, now = host_tag(), time.time()
        for temp in self.root.glob(f"*/*/.*{TEMP_SUFFIX}"):
            match = _TEMP_NAME.match(temp.name)
            if match is None:
                continue
            local = match["host"] == host
            stale = (local and not _pid_alive(int(match["pid"]))) or (
                not local and older_than_s is not None and now - temp.stat().st_mtime > older_than_s
            )
            if stale:
                temp.unlink(missing_ok=True)
                removed.append(temp)
        return removed
