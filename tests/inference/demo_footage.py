"""The small demo dataset the inference tests share, and helpers to read its labels and encode or decode videos."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from mulde_vad.datasets.base import frame_files
from mulde_vad.datasets.demo import DemoSpec

SPEC = DemoSpec(seed=0, n_train=4, n_test=4, n_frames=100)
TINY_MULDE = {"hidden_units": (32, 32), "epochs": 20, "batch_size": 256, "learning_rate": 1e-3, "device": "cpu"}


def labels(demo: Path, video: str) -> np.ndarray:
    """Ground-truth 0/1 per frame of a demo test video."""
    n = len(frame_files(demo / "test" / video))
    out = np.zeros(n, np.uint8)
    for line in (demo / "labels.csv").read_text().splitlines()[1:]:
        name, start, end = line.split(",")
        if name == video:
            out[int(start) : int(end) + 1] = 1
    return out


def encode_video(frames_dir: Path, path: Path) -> Path:
    """A demo frame folder as a lossless (FFV1, RGB) video file, for the file-vs-stream comparison."""
    files = frame_files(frames_dir)
    height, width = cv2.imread(str(files[0])).shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for file in files:
            rgb = cv2.cvtColor(cv2.imread(str(file)), cv2.COLOR_BGR2RGB)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decoded(path: Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) of a video, by decoding every frame."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return len(frames), (frames[0].width, frames[0].height)
