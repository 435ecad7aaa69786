"""Where a shard came from: config hash, input fingerprint, weight hashes and library versions.

The config hash names the stage directory, so it must be stable across processes and Python
versions: it is the SHA-256 of a canonical JSON rendering (sorted keys, no whitespace, tuples as lists).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mulde_vad.storage.schema import SCHEMA_VERSION

CONFIG_HASH_LENGTH = 16
_LIBRARIES = (
    "numpy",
    "h5py",
    "scipy",
    "scikit-learn",
    "torch",
    "torchvision",
    "opencv-python-headless",
    "av",
    "ultralytics",
    "open-clip-torch",
    "mulde-vad",
)


def canonical_json(config: Mapping[str, Any]) -> str:
    """Deterministic JSON for hashing: sorted keys, compact separators, paths and tuples as JSON values."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON config."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:CONFIG_HASH_LENGTH]


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON serialisable")


@functools.lru_cache(maxsize=1 << 16)
def _digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """SHA-256 of a file read in 8 MiB blocks; cached per (path, size, mtime, inode): each file is hashed once."""
    del size, mtime_ns, inode  # the cache key only: a rewritten or replaced file changes one of them
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """Full SHA-256 of a file (a video, a weights file), memoised per (resolved path, size, mtime)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _digest(str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def content_digest(source: str | Path) -> str:
    """What a video's shards are keyed on: the SHA-256 of a file, or of a frame folder's names and file digests.

    Names and paths of the source itself do not enter it: the same content under another root reuses
    results, while a replaced, re-encoded or edited video (or frame) gets a new digest.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"cannot fingerprint {path}: it does not exist")
    if path.is_file():
        return file_digest(path)
    digest = hashlib.sha256()
    for file in _frame_files(path):
        digest.update(f"{file.name}\0{file_digest(file)}\n".encode())
    return digest.hexdigest()


def fingerprint(source: str | Path) -> dict[str, Any]:
    """Identify a video file or frame folder: path, size, mtime and ``content_digest``."""
    path = Path(source)
    digest = content_digest(path)  # raises naming a missing source
    files = [path] if path.is_file() else _frame_files(path)
    return {
        "path": str(path.resolve()),
        "n_files": len(files),
        "size": sum(f.stat().st_size for f in files),
        "mtime": max((f.stat().st_mtime for f in files), default=path.stat().st_mtime),
        "sha256": digest,
    }


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape features (from package metadata; nothing is imported)."""
    versions = {}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def make_provenance(
    *,
    video: str | Path | None,
    config: Mapping[str, Any],
    weights: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Everything needed to trace a shard back to its input, settings, weights and code."""
    weight_info = {}
    for name, file in (weights or {}).items():
        if not os.path.isfile(file):
            raise FileNotFoundError(f"weights {name!r}: file {file} does not exist; pass the path of the local file")
        weight_info[name] = {"path": str(Path(file).resolve()), "sha256": file_digest(file)}
    return {
        "schema_version": SCHEMA_VERSION,
        "config": json.loads(canonical_json(config)),
        "config_hash": config_hash(config),
        "video": None if video is None else fingerprint(video),
        "weights": weight_info,
        "libraries": library_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
