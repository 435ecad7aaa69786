"""torch networks run by onnxruntime on the CPU: exported once per machine, cached, run on sleeping threads.

torch's ONNX exporter (``torch.export``, then the translation to ONNX) takes 15-20 s for YOLOv8n and
several for MobileNetV2: longer than scoring a short video. The exported file is cached in the download
cache under a hash of everything the export depends on (the module's structure and tensors, the example's
shape, the free axes, the versions of torch and onnxscript), so a changed network is exported anew and
never served a stale file. Files are written atomically; a cached file the runtime cannot read is exported
again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from mulde_vad.features.weights import cache_dir
from mulde_vad.storage.shards import temp_path_for

log = logging.getLogger(__name__)

Runtime = TypeVar("Runtime")

#: Two threads exporting at once corrupt each other's graphs: ``cached_export`` exports one at a time.
_EXPORT_LOCK = threading.Lock()


class OnnxModel:
    """An ONNX network run by onnxruntime on the CPU: float32 tensor in, its first output as a tensor out.

    ``model`` is a file or the serialised model itself. Worker threads sleep rather than spin between
    operators (``allow_spinning`` 0): spinning threads take the cores that decoding and detection of the
    next batch need on a small machine. Calls are thread-safe.
    """

    def __init__(self, model: Path | bytes, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            name = "the exported model" if isinstance(model, bytes) else str(model)
            raise ValueError(f"{name}: not an ONNX model onnxruntime can run ({error})") from error
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: array})[0])


def export_onnx(model: nn.Module, example: torch.Tensor, dynamic_shapes: dict[int, object]) -> bytes:
    """``model`` exported by ``torch.export`` to ONNX, serialised; ``dynamic_shapes`` maps the example's free
    axes to ``torch.export.Dim`` expressions (the batch axis: ``{0: Dim("n")}``)."""
    with torch.inference_mode(False):
        program = torch.onnx.export(
            model.eval(), (example,), dynamo=True, dynamic_shapes=(dynamic_shapes,), verbose=False
        )
    return program.model_proto.SerializeToString()


def export_key(model: nn.Module, example: torch.Tensor, dynamic_shapes: dict[int, object]) -> str:
    """A hash of what the export of ``model`` depends on: structure, every tensor, input spec, exporter versions."""
    import onnxscript

    digest = hashlib.sha256()
    for part in (repr(model), tuple(example.shape), repr(dynamic_shapes), torch.__version__, onnxscript.__version__):
        digest.update(repr(part).encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_export(
    model: nn.Module,
    example: torch.Tensor,
    dynamic_shapes: dict[int, object],
    runtime: Callable[[Path], Runtime],
) -> Runtime:
    """``runtime`` (e.g. ``OnnxModel``) on ``model``'s ONNX file in the cache, exported first when absent or
    when the cached file cannot be read (``runtime`` raised ValueError). Threads that miss the cache together
    export once: the second finds the first one's file."""
    path = cache_dir() / "onnx" / f"{type(model).__name__}-{export_key(model, example, dynamic_shapes)}.onnx"
    if path.is_file():
        try:
            return runtime(path)
        except ValueError as error:
            log.warning("%s; exporting it again", error)
            path.unlink(missing_ok=True)
    with _EXPORT_LOCK:
        if not path.is_file():
            log.info("exporting %s to ONNX for onnxruntime, once for this network: %s", type(model).__name__, path)
            _write_atomically(path, export_onnx(model, example, dynamic_shapes))
    return runtime(path)


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path``, never half-written: a temporary sibling (the store's naming), then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
