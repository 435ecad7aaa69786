"""Where model weights come from: a local file, or the library's own hub download when allowed."""

from __future__ import annotations

from pathlib import Path

import torch

RANDOM_INIT = "random"
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


def weights_file(value: str | None, what: str, field: str) -> Path | None:
    """A config's weights value as an existing file, or None for an explicit ``"random"`` initialisation.

    Unset weights are an error rather than a silent random model: features from random weights are
    only good for tests of the plumbing.
    """
    if value is None:
        raise MissingWeightsError(
            f"{what} needs weights: set {field} to a local file, or to {RANDOM_INIT!r} for a random "
            f"initialisation (tests only); {FETCH_HINT}"
        )
    return None if value == RANDOM_INIT else require_file(value, what)


def load_state_dict(module: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a state-dict file into ``module`` strictly; a mismatch names the file and the offending keys."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"{path}: not a state dict of {type(module).__name__} ({error}); export the model to TorchScript "
            "and use it with backbone='torchscript' instead"
        ) from error
    return module


def load_torchscript(path: Path, device: torch.device) -> torch.nn.Module:
    """A TorchScript module from ``path``; anything else raises naming the file and how to export one."""
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{path}: not a TorchScript archive ({error}); export one with "
            "torch.jit.trace(model.eval(), example).save(path)"
        ) from error
