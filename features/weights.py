"""Where model weights come from: a local file, or the library's own hub download when allowed."""

from __future__ import annotations

from pathlib import Path

FETCH_HINT = (
    "fetch real weights with `bash ../shared/assets/fetch_assets.sh DEST all` (YOLOv8n, MobileNetV2, "
    "EfficientNet-Lite0) or download them on a machine with internet access, then pass the file's path"
)


class MissingWeightsError(FileNotFoundError):
    """A model's weights are not on disk; the message names the file and how to provide it."""


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path when it is an existing file; otherwise a MissingWeightsError that says what to do."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"{what} weights not found at {path}: {FETCH_HINT}")
    return path
