"""Model-backed extractors built offline: crop encoders (TorchScript, torchvision, CLIP), YOLO and pose, RAFT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import get_model

from mulde_vad.features import precision
from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.boxes import match_boxes, pairwise_iou
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.crops import crop_boxes
from mulde_vad.features.decode import FrameBatch
from mulde_vad.features.detection import Detections, YoloDetector
from mulde_vad.features.extract import ObjectPipeline
from mulde_vad.features.extractors import build_extractor
from mulde_vad.features.extractors.embedding import strip_classifier
from mulde_vad.features.extractors.pose import normalise_keypoints
from mulde_vad.features.flow import RaftFlow
from mulde_vad.features.weights import MissingWeightsError
from mulde_vad.storage.schema import BoxSource, ObjectTable

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated upstream, still supported


class ChannelMean(torch.nn.Module):
    """A TorchScript "encoder" with a known answer: the mean of each input channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _batch(frames: np.ndarray, boxes: list[list[float]], frame_of_box: list[int]) -> ObjectBatch:
    n = len(boxes)
    table = ObjectTable(
        frame_index=np.asarray(frame_of_box, np.int64),
        boxes=np.asarray(boxes, np.float32),
        confidence=np.ones(n, np.float32),
        class_id=np.zeros(n, np.int32),
        source=np.zeros(n, np.uint8),
    )
    return ObjectBatch(frames, table, np.asarray(frame_of_box), torch.device("cpu"))


def _two_colour_frames() -> np.ndarray:
    """Two 40×60 frames: frame 0 has a red left half, frame 1 a blue right half, the rest mid grey."""
    frames = np.full((2, 40, 60, 3), 128, np.uint8)
    frames[0, :, :30] = (200, 10, 10)
    frames[1, :, 30:] = (10, 10, 200)
    return frames


def test_torchscript_backbone_crops_normalises_and_encodes_each_box(tmp_path: Path) -> None:
    torch.jit.script(ChannelMean()).save(tmp_path / "mean.pt")
    mean, std = (0.5, 0.25, 0.0), (0.5, 0.25, 1.0)
    config = ExtractionConfig(
        extractors=("backbone",),
        backbone="torchscript",
        backbone_weights=str(tmp_path / "mean.pt"),
        backbone_size=16,
        backbone_mean=mean,
        backbone_std=std,
        device="cpu",
    )
    extractor = build_extractor("backbone", config)
    assert extractor.dim == 3
    batch = _batch(_two_colour_frames(), [[2, 2, 20, 30], [35, 5, 55, 35], [40, 0, 59, 39]], [0, 0, 1])
    colours = np.array([[200, 10, 10], [128, 128, 128], [10, 10, 200]]) / 255
    expected = (colours - mean) / std
    np.testing.assert_allclose(extractor(batch), expected, atol=1e-5)


def test_torchvision_backbone_loads_the_state_dict_and_drops_the_head(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = get_model("mobilenet_v3_small", weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "mnv3.pth")
    config = ExtractionConfig(
        extractors=("backbone",),
        backbone="mobilenet_v3_small",
        backbone_weights=str(tmp_path / "mnv3.pth"),
        backbone_size=32,
        device="cpu",
    )
    extractor = build_extractor("backbone", config)
    assert extractor.dim == strip_classifier(reference) == 1024  # penultimate layer of the classifier
    batch = _batch(_two_colour_frames(), [[0, 0, 29, 39], [10, 5, 50, 35]], [0, 1])
    crops = crop_boxes(batch.images, batch.batch_index, batch.objects.boxes, 32)
    normalised = (crops - torch.tensor(config.backbone_mean).view(1, 3, 1, 1)) / torch.tensor(config.backbone_std).view(
        1, 3, 1, 1
    )
    with torch.inference_mode():
        expected = reference(normalised).numpy()
    np.testing.assert_allclose(extractor(batch), expected, rtol=1e-4, atol=1e-5)


def test_strip_classifier_exposes_pooled_features() -> None:
    resnet = get_model("resnet18", weights=None).eval()
    assert strip_classifier(resnet) == 512
    with torch.inference_mode():
        assert resnet(torch.zeros(2, 3, 32, 32)).shape == (2, 512)
    with pytest.raises(ValueError, match="no Linear head"):
        strip_classifier(torch.nn.Conv2d(3, 3, 1))


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 1-layer open_clip config registered under a test-only name (no download, fast on CPU)."""
    import open_clip

    folder = tmp_path_factory.mktemp("clip_config")
    config = {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    (folder / "mulde-test-tiny.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / "mulde-test-tiny.json")
    return "mulde-test-tiny"


def test_clip_extractor_loads_a_local_checkpoint_and_encodes_crops(tiny_clip: str, tmp_path: Path) -> None:
    import open_clip

    torch.manual_seed(1)
    reference = open_clip.create_model(tiny_clip, pretrained=None).eval()
    torch.save(reference.state_dict(), tmp_path / "clip.pt")
    frames = _two_colour_frames()
    batch = _batch(frames, [[0, 0, 29, 39], [10, 5, 50, 35], [30, 0, 59, 39]], [0, 1, 1])
    base = dict(extractors=("clip",), appearance_model=tiny_clip, appearance_weights=str(tmp_path / "clip.pt"))
    extractor = build_extractor("clip", ExtractionConfig(**base, device="cpu"))
    assert extractor.dim == 24
    crops = crop_boxes(batch.images, batch.batch_index, batch.objects.boxes, 32)
    clip_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    clip_std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = reference.encode_image((crops - clip_mean) / clip_std).numpy()
        expected_bgr = reference.encode_image((crops.flip(1) - clip_mean) / clip_std).numpy()
    np.testing.assert_allclose(extractor(batch), expected, rtol=1e-4, atol=1e-5)
    bgr = build_extractor("clip", ExtractionConfig(**base, appearance_bgr=True, device="cpu"))
    np.testing.assert_allclose(bgr(batch), expected_bgr, rtol=1e-4, atol=1e-5)  # AI-VAD's BGR quirk


def test_clip_weights_errors_say_how_to_provide_them(tiny_clip: str, tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="appearance_weights"):
        build_extractor("clip", ExtractionConfig(appearance_model=tiny_clip, device="cpu"))
    with pytest.raises(MissingWeightsError, match="allow_download"):
        build_extractor("clip", ExtractionConfig(appearance_weights="openai", device="cpu"))
    with pytest.raises(MissingWeightsError, match=r"nowhere\.pt.*MULDE_VAD_WEIGHTS"):
        build_extractor("clip", ExtractionConfig(appearance_weights=str(tmp_path / "nowhere.pt"), device="cpu"))


def test_missing_detector_and_backbone_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"yolov8n\.pt.*MULDE_VAD_WEIGHTS"):
        YoloDetector(tmp_path / "yolov8n.pt")
    with pytest.raises(MissingWeightsError, match=r"mnv2\.pth"):
        build_extractor("backbone", ExtractionConfig(backbone_weights=str(tmp_path / "mnv2.pth"), device="cpu"))
    with pytest.raises(MissingWeightsError, match="backbone_weights"):
        build_extractor("backbone", ExtractionConfig(device="cpu"))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    config = ExtractionConfig(backbone="torchscript", backbone_weights=str(tmp_path / "junk.pt"), device="cpu")
    with pytest.raises(ValueError, match=r"junk\.pt: not a TorchScript archive"):
        build_extractor("backbone", config)


def test_normalise_keypoints_to_box_units() -> None:
    keypoints = np.zeros((1, 17, 2), np.float32)
    keypoints[0, 0] = (15, 40)  # box centre-top
    keypoints[0, 16] = (20, 60)  # bottom-right corner
    out = normalise_keypoints(keypoints, np.array([[10, 40, 20, 60]], np.float32))
    assert out.shape == (1, 34)
    np.testing.assert_allclose(out[0, :2], [0.5, 0.0])
    np.testing.assert_allclose(out[0, 32:], [1.0, 1.0])
    np.testing.assert_allclose(out[0, 2:4], [-1.0, -2.0])  # a keypoint at the image origin


def test_match_boxes_is_one_to_one_above_the_iou_threshold() -> None:
    objects = np.array([[0, 0, 9, 9], [20, 20, 29, 29], [50, 50, 59, 59]], np.float32)
    people = np.array([[21, 21, 30, 30], [0, 0, 9, 10], [1, 1, 10, 10]], np.float32)
    assert pairwise_iou(objects[:1], objects[:1])[0, 0] == pytest.approx(1.0)
    rows, cols = match_boxes(objects, people, 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


class FakePose:
    """Stands in for a YOLO-pose model: one person per frame, at a fixed box with known keypoints."""

    box = np.array([[10, 10, 29, 49]], np.float32)

    def __call__(self, frames: np.ndarray) -> list[Detections]:
        keypoints = np.tile(np.array([20.0, 30.0], np.float32), (1, 17, 1))  # box centre
        return [Detections(self.box, np.ones(1, np.float32), np.zeros(1, np.int32), keypoints) for _ in frames]


def test_pipeline_attaches_keypoints_to_the_matching_box_and_nan_elsewhere() -> None:
    config = ExtractionConfig(extractors=("pose", "geometry"), pose_weights="pose.pt", foreground=False, device="cpu")
    pipeline = ObjectPipeline.__new__(ObjectPipeline)  # no YOLO weights in tests: swap in the fake models
    pipeline.config, pipeline.device, pipeline.flow = config, torch.device("cpu"), None
    pipeline.extractors = [build_extractor(name, config) for name in config.extractors]
    pipeline.pose = FakePose()
    detected = np.array([[11, 11, 29, 48], [40, 5, 59, 30]], np.float32)
    pipeline.detector = lambda frames: [
        Detections(detected, np.full(2, 0.9, np.float32), np.array([0, 2], np.int32)) for _ in frames
    ]
    frames = np.zeros((2, 60, 80, 3), np.uint8)
    table, keypoints = pipeline.objects(FrameBatch(np.array([7, 8]), frames), None)
    np.testing.assert_array_equal(table.frame_index, [7, 7, 8, 8])
    assert (table.source == BoxSource.DETECTOR).all()
    batch = ObjectBatch(frames, table, np.array([0, 0, 1, 1]), torch.device("cpu"), keypoints=keypoints)
    pose = pipeline.extractors[0](batch)
    np.testing.assert_allclose(pose[0, :2], [(20 - 11) / 18, (30 - 11) / 37], rtol=1e-6)
    assert np.isnan(pose[1]).all() and not np.isnan(pose[2]).any() and np.isnan(pose[3]).all()


def test_pose_extractor_requires_a_pose_model() -> None:
    with pytest.raises(ValueError, match="pose_weights"):
        build_extractor("pose", ExtractionConfig(device="cpu"))


@pytest.mark.parametrize("weights", ["yolov8n.yaml", "yolov8n-pose.yaml"])
def test_yolo_from_yaml_runs_batched_with_class_filter(weights: str) -> None:
    torch.manual_seed(0)
    detector = YoloDetector(weights, confidence=0.0, classes=(0,), image_size=64, device="cpu")
    frames = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
    detections = detector(frames)
    assert len(detections) == 3
    for d in detections:
        assert d.boxes.shape == (len(d.confidence), 4) and (d.class_id == 0).all()
        assert (d.boxes[:, [0, 2]] <= 64).all() and (d.boxes[:, [1, 3]] <= 48).all()
        if weights.endswith("-pose.yaml"):
            assert d.keypoints is not None and d.keypoints.shape == (len(d.boxes), 17, 2)


def test_cpu_yolo_runs_on_onnxruntime_with_torch_s_predictions_at_any_input_size() -> None:
    """At float32 on the CPU the network runs through onnxruntime, exported once at one size: its predictions
    (boxes in pixels, class scores) equal torch's at other batch sizes and input sides too."""
    torch.manual_seed(0)
    detector = YoloDetector("yolov8n.yaml", confidence=0.0, image_size=64, device="cpu")
    network = detector.model.model
    assert "forward" in vars(network)  # routed through onnxruntime, not the class's torch forward
    for shape in [(1, 3, 64, 96), (3, 3, 256, 160)]:
        images = torch.rand(shape)
        with torch.inference_mode():
            expected = type(network).forward(network.eval(), images)[0]
        np.testing.assert_allclose(network(images).numpy(), expected.numpy(), atol=1e-3, rtol=1e-4)


def test_yolo_leaves_the_callers_torch_threads_as_they_were() -> None:
    """ultralytics' first predict sets torch's threads to the cores − 1 (one core of two) in the calling
    thread; the detector puts back what the caller had."""
    from ultralytics.utils import NUM_THREADS

    original = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS + 1)
    try:
        detector = YoloDetector("yolov8n.yaml", confidence=0.0, image_size=64, device="cpu")
        detector(np.zeros((1, 48, 64, 3), np.uint8))
        assert torch.get_num_threads() == NUM_THREADS + 1
    finally:
        torch.set_num_threads(original)


def test_bf16_yolo_convolves_in_bfloat16_and_decodes_boxes_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """cpu_precision bf16: the convolutions run at bfloat16 (the speed-up), the box decoder at float32 (box
    coordinates of hundreds of pixels need more than bfloat16's 8-bit mantissa). Checked as if the CPU had
    native bfloat16 (autocast runs anywhere, only slower)."""
    from ultralytics.nn.modules.block import DFL

    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    torch.manual_seed(0)
    detector = YoloDetector("yolov8n.yaml", confidence=0.0, image_size=64, cpu_precision="bf16", device="cpu")
    dtypes: dict[str, torch.dtype] = {}

    def record(name: str):  # a forward hook that returns None leaves the output alone
        return lambda module, inputs, out: dtypes.update({name: out.dtype}) if name not in dtypes else None

    first_conv = next(m for m in detector.model.model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(record("conv"))
    dfl = next(m for m in detector.model.model.modules() if isinstance(m, DFL))
    dfl.register_forward_hook(record("decode"))
    detections = detector(np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), dtype=np.uint8))
    assert len(detections) == 2 and all(d.boxes.dtype == np.float32 for d in detections)
    assert dtypes == {"conv": torch.bfloat16, "decode": torch.float32}


def test_raft_flow_from_a_local_state_dict_keeps_the_frame_size(tmp_path: Path) -> None:
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    torch.save(raft_small(weights=None).state_dict(), tmp_path / "raft.pth")
    flow = RaftFlow("raft_small", str(tmp_path / "raft.pth"), torch.device("cpu"), iterations=2)
    frames = np.random.default_rng(0).integers(0, 255, (2, 36, 52, 3), dtype=np.uint8)  # not a multiple of 8
    out = flow.sequence(None, frames)
    assert out.shape == (2, 36, 52, 2) and np.isfinite(out).all()
    np.testing.assert_array_equal(out, flow.sequence(None, frames))
    with pytest.raises(MissingWeightsError, match="flow_weights"):
        RaftFlow("raft_small", None, torch.device("cpu"))
