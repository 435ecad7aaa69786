"""Object detection with ultralytics YOLO: batched, class filter, confidence threshold, optional pose keypoints.

On the CPU at float32 the network runs through onnxruntime inside ultralytics' own predictor, which still
letterboxes, suppresses and rescales (``run_on_onnxruntime``); on CUDA and at bfloat16 it runs in torch.

Weights load with ultralytics' safe mode (``torch.load(weights_only=True)`` plus its allow-list of model
classes): a ``.pt`` is a pickle, and without it loading a file runs any code the file carries.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from mulde_vad.features.onnx_runtime import OnnxModel, cached_export
from mulde_vad.features.precision import cpu_bf16
from mulde_vad.features.weights import cache_dir, quiet_ultralytics, require, resolve_yolo
from mulde_vad.models.threads import usable_cores

PERSON = 0  # COCO class id
YOLO_STRIDE = 32  # YOLO's input sides are multiples of its largest stride
YOLO_MAX_SIZE = 640  # the size the COCO weights were trained at


def detector_size(image_size: int | Literal["auto"], frame_shape: tuple[int, ...]) -> int:
    """The letterbox size for frames of ``frame_shape`` (H, W, ...): ``image_size``, or for "auto" the frame's
    long side rounded up to the stride and capped at 640, so a small frame is not upsampled to 640 first
    (a 360×240 frame runs at 384×256: a quarter of 640×640's pixels)."""
    if image_size != "auto":
        return int(image_size)
    long_side = max(frame_shape[:2])
    return min(YOLO_MAX_SIZE, -(-long_side // YOLO_STRIDE) * YOLO_STRIDE)


@dataclass(frozen=True)
class Detections:
    """Boxes of one frame: xyxy (k, 4), confidence (k,), class_id (k,), keypoints (k, 17, 2) or None."""

    boxes: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    keypoints: np.ndarray | None = None


def load_yolo(weights: str, *, allow_download: bool = False):
    """A YOLO model from a model ``.yaml`` (random init, offline), a local ``.pt`` (see ``features.weights``),
    or, with ``allow_download``, an ultralytics asset name such as ``yolov8n.pt`` downloaded into the cache.

    A hub name such as ``yolov8n.pt`` is only downloaded when ``allow_download``; anything else raises
    MissingWeightsError naming the file and how to get it. A checkpoint that references anything beyond
    ultralytics' known model classes is refused (TypeError), never executed.
    """
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"  # read once, when ultralytics is first imported
    quiet_ultralytics()
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    tasks.SAFE_LOAD = True  # the same switch, for a process that imported ultralytics before this call

    resolution = require(resolve_yolo(weights), "YOLO", "detector_weights", allow_download=allow_download)
    if resolution.path is not None:
        return YOLO(str(resolution.path))
    if resolution.random:
        return YOLO(weights)
    cache_dir().mkdir(parents=True, exist_ok=True)
    return YOLO(str(cache_dir() / weights))  # ultralytics downloads its release asset to this path


def decode_boxes_in_fp32(model: torch.nn.Module) -> None:
    """Run the box decoder (DFL: a softmax over 16 distance bins and their expectation) in float32 under a
    bfloat16 autocast. Left in bfloat16, its 8-bit mantissa rounds distances of up to 16 strides to a 16th
    of a stride (2 px at stride 32), and half of the boxes on vtest moved to an IoU below 0.9 with the
    float32 ones; the convolutions before it stay bfloat16, where the time goes."""
    from ultralytics.nn.modules.block import DFL

    for module in model.modules():
        if isinstance(module, DFL):
            forward = module.forward

            def fp32_forward(x: torch.Tensor, forward=forward) -> torch.Tensor:
                with torch.autocast("cpu", enabled=False):
                    return forward(x.float())

            module.forward = fp32_forward


class _Predictions(nn.Module):
    """YOLO's network with only its predictions as output (in eval mode it also returns the raw head maps)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.network(images)
        return out[0] if isinstance(out, tuple | list) else out


def run_on_onnxruntime(network: nn.Module, threads: int) -> None:
    """Run ultralytics' ``network`` (DetectionModel, PoseModel) through onnxruntime from now on.

    Its ``forward`` is replaced, so ultralytics' predictor keeps doing everything around the network
    (letterbox, NMS, rescaling boxes and keypoints). The exported graph takes any batch and any input side
    that is a multiple of 32, computing the heads' anchors from the input's shape. YOLOv8n on 16 Ped2 frames
    at 640 px on 2 cores: 53 against 75 ms per frame in torch, boxes equal to 1e-4 px.
    """
    from ultralytics.nn.modules.head import Detect

    network.fuse(verbose=False)  # BatchNorm folded into the convolutions, as ultralytics' predictor does
    exported = copy.deepcopy(network)  # tracing leaves traced tensors in the heads' attributes
    for head in exported.modules():
        if isinstance(head, Detect):
            head.dynamic = True  # anchors from the input's shape inside the graph, not frozen at the example's
    height, width = (torch.export.Dim(name, min=1, max=64) for name in ("height32", "width32"))  # up to 2048 px
    free_axes = {0: torch.export.Dim("n"), 2: YOLO_STRIDE * height, 3: YOLO_STRIDE * width}
    example = torch.zeros(2, 3, 2 * YOLO_STRIDE, 3 * YOLO_STRIDE)
    with warnings.catch_warnings():  # the anchors, assigned in forward, are computed inside the graph
        warnings.filterwarnings("ignore", message=r"The tensor attributes .* were assigned during export")
        model = cached_export(_Predictions(exported), example, free_axes, lambda onnx: OnnxModel(onnx, threads))
    network.forward = lambda images, *args, **kwargs: model(images)


@contextmanager
def restored_threads() -> Iterator[None]:
    """Keep the calling thread's torch thread count: ultralytics' first ``predict`` on the CPU sets it to the
    machine's cores − 1, which left YOLO and everything after it in that thread on one core of two."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class YoloDetector:
    """Runs YOLO on a batch of RGB frames; keeps classes in ``classes`` (None = all) above ``confidence``.

    ``cpu_precision="bf16"`` runs the network under torch's bfloat16 autocast on the CPU (about 2× faster
    where the CPU computes bfloat16 natively); boxes and NMS stay float32. Otherwise a CPU runs it through
    onnxruntime at float32 (``run_on_onnxruntime``).
    """

    def __init__(
        self,
        weights: str | Path,
        *,
        confidence: float = 0.5,
        classes: tuple[int, ...] | None = None,
        image_size: int | Literal["auto"] = YOLO_MAX_SIZE,
        cpu_precision: Literal["fp32", "bf16"] = "fp32",
        device: str = "cpu",
        allow_download: bool = False,
    ) -> None:
        self.model = load_yolo(str(weights), allow_download=allow_download)
        self.confidence = confidence
        self.classes = list(classes) if classes is not None else None
        self.image_size = image_size
        self.device = device
        self.bf16 = cpu_bf16(cpu_precision, device)
        if self.bf16:
            decode_boxes_in_fp32(self.model.model)
        elif torch.device(device).type == "cpu":
            run_on_onnxruntime(self.model.model, usable_cores())

    def __call__(self, frames: np.ndarray) -> list[Detections]:
        """One Detections per frame of ``frames`` (b, H, W, 3) RGB uint8, in a single batched call."""
        bgr = [np.ascontiguousarray(frame[..., ::-1]) for frame in frames]  # ultralytics reads numpy as BGR
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16), restored_threads():
            results = self.model.predict(
                bgr,
                conf=self.confidence,
                classes=self.classes,
                imgsz=detector_size(self.image_size, frames.shape[1:]),
                device=self.device,
                verbose=False,
            )
        out = []
        for result in results:
            boxes = result.boxes
            keypoints = None
            if getattr(result, "keypoints", None) is not None and result.keypoints.xy is not None:
                keypoints = result.keypoints.xy.cpu().numpy().astype(np.float32)
            out.append(
                Detections(
                    boxes=boxes.xyxy.cpu().numpy().astype(np.float32),
                    confidence=boxes.conf.cpu().numpy().astype(np.float32),
                    class_id=boxes.cls.cpu().numpy().astype(np.int32),
                    keypoints=keypoints,
                )
            )
        return out
