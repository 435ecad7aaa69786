"""Where a shard came from: config hash, input fingerprint, weight hashes and library versions.

The config hash names the stage directory, so it must be stable across processes and Python
versions: it is the SHA-256 of a canonical JSON rendering (sorted keys, no whitespace, tuples as lists).
"""

from __future__ import annotations

import contextlib
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
_FINGERPRINT_BYTES = 1 << 20  # hash the first and last MiB: cheap on any video, catches re-encodes and truncation
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


def _hash_head_tail(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            digest.update(handle.read())
    return digest.hexdigest()


def fingerprint(source: str | Path) -> dict[str, Any]:
    """Identify a video file (size, mtime, SHA-256 of first+last MiB) or a frame folder (its file list).

    For a folder the digest covers every file name and size plus the first and last file's head/tail,
    so adding, removing or replacing frames changes it without reading every frame.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"cannot fingerprint {path}: it does not exist")
    if path.is_file():
        stat = path.stat()
        return {
            "path": str(path.resolve()),
            "size": stat.st_size,
            "mtime": stat.st_mtime,
            "sha256_head_tail": _hash_head_tail(path, stat.st_size),
        }
    files = sorted(p for p in path.iterdir() if p.is_file())
    digest = hashlib.sha256()
    total = 0
    for file in files:
        size = file.stat().st_size
        total += size
        digest.update(f"{file.name}\0{size}\n".encode())
    for file in files[:1] + files[-1:]:
        digest.update(_hash_head_tail(file, file.stat().st_size).encode())
    return {
        "path": str(path.resolve()),
        "n_files": len(files),
        "size": total,
        "mtime": max((f.stat().st_mtime for f in files), default=path.stat().st_mtime),
        "sha256_listing": digest.hexdigest(),
    }


def sha256_file(path: str | Path) -> str:
    """Full SHA-256 of a weights file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        weight_info[name] = {"path": str(Path(file).resolve()), "sha256": sha256_file(file)}
    return {
        "schema_version": SCHEMA_VERSION,
        "config": json.loads(canonical_json(config)),
        "config_hash": config_hash(config),
        "video": None if video is None else fingerprint(video),
        "weights": weight_info,
        "libraries": library_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
