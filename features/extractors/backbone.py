"""Pooled features of each object crop: a built-in ImageNet CNN, a torchvision image model, TorchScript or ONNX.

An encoder is built once per process and shared by every extraction that asks for the same one
(``shared_encoder``): building means loading weights and, on the CPU, loading the network's ONNX export
(``features.onnx_runtime``, exported once per machine), and two threads tracing at once corrupt each other's
graphs. The built runtimes are thread-safe for inference (``InferenceSession.run``, a frozen TorchScript
module). onnxruntime runs MobileNetV2 crops about 3× faster on the CPU than the frozen oneDNN TorchScript
module it replaced, with the same features to float32 rounding.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mulde_vad.features.config import ExtractionConfig, resolve_device
from mulde_vad.features.extractors import register
from mulde_vad.features.extractors.cnn import CNN_ENCODERS
from mulde_vad.features.extractors.embedding import CropEncoder, strip_classifier
from mulde_vad.features.onnx_runtime import OnnxModel, cached_export
from mulde_vad.features.precision import cpu_bf16
from mulde_vad.features.weights import RANDOM_INIT, find_local, load_torchscript, load_weights, require_file
from mulde_vad.models.threads import usable_cores

Encode = Callable[[torch.Tensor], torch.Tensor]

#: Encoders built in this process, by ``_encoder_key``; ``_BUILD_LOCK`` serialises building them.
_ENCODERS: dict[Hashable, tuple[Encode, int]] = {}
_BUILD_LOCK = threading.Lock()


def torchscript_width(module: Encode, example: torch.Tensor) -> int:
    """Output width of a TorchScript (or ONNX) encoder, found with one forward pass on ``example``."""
    with torch.inference_mode():
        out = module(example)
    if out.ndim != 2 or out.shape[0] != example.shape[0]:
        raise ValueError(f"a TorchScript encoder must return (batch, dim) features, got shape {tuple(out.shape)}")
    return int(out.shape[1])


class OpenVinoEncoder:
    """An ONNX image encoder compiled by OpenVINO for the CPU at bfloat16: (n, 3, S, S) float32 → (n, dim).

    About 1.6× faster than onnxruntime at float32 on a CPU that computes bfloat16 natively (AVX512-BF16,
    AMX); the features move about as much as a half-pixel shift of the crop's box moves them
    (bench/predict_speed.py, bench/ped2_parity.py). Threads are not pinned
    to cores: the cores are shared with decoding and detection of the next batch. One infer request per
    calling thread, since a request is not safe to share between threads.
    """

    def __init__(self, model: Path | bytes, threads: int) -> None:
        import openvino

        core = openvino.Core()
        try:
            network = core.read_model(model, b"") if isinstance(model, bytes) else core.read_model(str(model))
            self.compiled = core.compile_model(
                network,
                "CPU",
                {
                    "INFERENCE_PRECISION_HINT": "bf16",
                    "INFERENCE_NUM_THREADS": threads,
                    "ENABLE_CPU_PINNING": False,
                    "PERFORMANCE_HINT": "LATENCY",
                },
            )
        except RuntimeError as error:  # OpenVINO raises RuntimeError for unreadable or unsupported models
            name = "the exported model" if isinstance(model, bytes) else str(model)
            raise ValueError(f"{name}: not an ONNX model OpenVINO can compile ({error})") from error
        self._requests = threading.local()

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        x = np.ascontiguousarray(crops.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(request.infer({0: x})[0].copy())


def cpu_runtime(model: Path | bytes, precision: str) -> Encode:
    """The CPU runtime for an ONNX encoder at ``precision``: OpenVINO for bf16 where the CPU has it natively,
    else onnxruntime (faster than OpenVINO at float32: MobileNetV2 at 224 px, 5.7 against 7.9 ms per crop on
    an AVX2 CPU's 2 cores)."""
    runtime = OpenVinoEncoder if cpu_bf16(precision) else OnnxModel
    return runtime(model, usable_cores())


def frozen_torchscript(module: torch.jit.ScriptModule) -> Encode:
    """A TorchScript encoder frozen for the CPU (BatchNorm folded, oneDNN kernels).

    A TorchScript archive cannot be exported by ``torch.export``; freezing is still supported but warns
    that it is deprecated, hence the filter around exactly these calls.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(module.eval()))
    return lambda crops: frozen(crops.contiguous(memory_format=torch.channels_last))  # what oneDNN reads fastest


def _eager_model(config: ExtractionConfig, device: torch.device) -> tuple[nn.Module, int]:
    """The built-in CNN or torchvision model of ``config`` with its weights, classification head removed."""
    what = f"backbone {config.backbone}"
    if config.backbone in CNN_ENCODERS:
        model = CNN_ENCODERS[config.backbone]()
        load_weights(model, config.backbone_weights, what, "backbone_weights")
        return model.eval().to(device), model.dim
    from torchvision.models import get_model

    model = get_model(config.backbone, weights=None)
    load_weights(
        model,
        config.backbone_weights,
        what,
        "backbone_weights",
        torchvision_model=config.backbone,
        allow_download=config.allow_download,
    )
    dim = strip_classifier(model)
    return model.eval().to(device), dim


def _build_encoder(config: ExtractionConfig, device: torch.device) -> tuple[Encode, int]:
    size, what = config.backbone_size, f"backbone {config.backbone}"
    example = torch.zeros(1, 3, size, size, device=device)
    if config.backbone == "onnx":
        path = require_file(config.backbone_weights, what, "backbone_weights")
        encoder: Encode = cpu_runtime(path, config.cpu_precision)  # an ONNX file runs on the CPU wherever
        return encoder, torchscript_width(encoder, example)
    if config.backbone == "torchscript":
        module = load_torchscript(require_file(config.backbone_weights, what, "backbone_weights"), device)
        encoder = frozen_torchscript(module) if device.type == "cpu" else module
        return encoder, torchscript_width(encoder, example)
    model, dim = _eager_model(config, device)
    if device.type == "cpu":
        batch, runtime = {0: torch.export.Dim("n")}, lambda onnx: cpu_runtime(onnx, config.cpu_precision)
        return cached_export(model, example.expand(2, -1, -1, -1), batch, runtime), dim
    return model, dim


def _encoder_key(config: ExtractionConfig, device: torch.device) -> Hashable | None:
    """What decides the built encoder: the fields it reads and the weights file's identity (path, size,
    mtime), so a file rewritten in place is rebuilt. None for random weights: every build is a new draw."""
    weights = config.backbone_weights
    if weights == RANDOM_INIT:
        return None
    path = find_local(weights) if weights else None
    identity = (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns) if path else weights
    return (config.backbone, identity, config.backbone_size, config.cpu_precision, str(device), config.allow_download)


def shared_encoder(config: ExtractionConfig, device: torch.device) -> tuple[Encode, int]:
    """The encoder of ``config`` and its output width, built at most once per process (thread-safe)."""
    key = _encoder_key(config, device)
    with _BUILD_LOCK:
        if key is not None and key in _ENCODERS:
            return _ENCODERS[key]
        built = _build_encoder(config, device)
        if key is not None:
            _ENCODERS[key] = built
        return built


@register("backbone")
def backbone_extractor(config: ExtractionConfig) -> CropEncoder:
    device = resolve_device(config.device)
    encoder, dim = shared_encoder(config, device)
    return CropEncoder(
        "backbone",
        encoder,
        dim,
        size=config.backbone_size,
        mean=config.backbone_mean,
        std=config.backbone_std,
        device=device,
    )
