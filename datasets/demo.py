"""A deterministic synthetic surveillance dataset for the built-in demo (generic ``folder`` layout).

A static camera looks at a textured lawn crossed by a horizontal footpath. In the training videos
people (articulated sprites: head, torso, swinging legs, random clothing colours) walk along the path
in both directions at walking speed. Each test video contains normal walkers plus one anomaly:

* ``fast``:     a runner on the path at ~4× walking speed,
* ``offpath``:  a walker crossing the lawn vertically (wrong place, wrong direction),
* ``large``:    a vehicle-sized object driving along the path (unusual size),

and one test video is all normal. The ground truth marks the frames on which the anomalous actor is
visible, written to ``labels.csv`` as 0-based inclusive intervals. Frames are PNG (lossless), so the
frame count and the labels agree exactly. The same seed and parameters give byte-identical frames.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

ANOMALIES = ("fast", "offpath", "large")
_MANIFEST = "demo.json"


@dataclass(frozen=True)
class DemoSpec:
    """What to generate; two specs with equal fields give identical datasets."""

    seed: int = 0
    n_train: int = 6
    n_test: int = 4
    n_frames: int = 150
    width: int = 160
    height: int = 120
    walkers: int = 3  # simultaneous normal walkers per video (on average)
    anomalies: tuple[str, ...] = field(default=ANOMALIES)

    def __post_init__(self) -> None:
        unknown = set(self.anomalies) - set(ANOMALIES)
        if unknown:
            raise ValueError(f"unknown demo anomalies {sorted(unknown)}; choose from {ANOMALIES}")
        if self.width < 64 or self.height < 48 or self.n_frames < 20:
            size = f"{self.width}x{self.height}x{self.n_frames}"
            raise ValueError(f"demo videos must be at least 64x48 with 20 frames, got {size}")


@dataclass
class _Actor:
    kind: str  # "walker", "fast", "offpath", "large"
    start: int  # first frame
    x0: float
    y0: float
    vx: float
    vy: float
    height: float
    colors: tuple[tuple[int, int, int], ...]
    phase: float

    def position(self, t: int) -> tuple[float, float]:
        dt = t - self.start
        return self.x0 + self.vx * dt, self.y0 + self.vy * dt


def _background(spec: DemoSpec, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """Lawn texture with a lighter paved path band; returns the RGB image and the path's (top, bottom) rows."""
    h, w = spec.height, spec.width
    noise = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    coarse = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 1, (h, w)).astype(np.float32)
    texture = 10 * coarse + 4 * fine
    image = np.empty((h, w, 3), np.float32)
    image[:] = (70, 120, 60)  # grass
    top, bottom = int(h * 0.45), int(h * 0.7)
    image[top:bottom] = (150, 145, 135)  # path
    stripes = (np.arange(w) // 12) % 2 == 0  # paving joints
    image[top:bottom, stripes] -= 8
    image += texture[..., None]
    return np.clip(image, 0, 255).astype(np.uint8), (top, bottom)


# Clothing comes from small palettes, so a handful of training videos covers what normal people look like;
# the anomalies are in motion, place and size, not in an unseen colour.
_SHIRTS = ((200, 40, 40), (40, 80, 200), (230, 200, 60), (240, 240, 240), (60, 160, 70), (150, 60, 170))
_TROUSERS = ((40, 40, 60), (90, 70, 50), (70, 90, 140), (30, 30, 30))
_SKIN = ((230, 190, 160), (180, 130, 100), (120, 80, 60))


def _pick(rng: np.random.Generator, palette: tuple[tuple[int, int, int], ...]) -> tuple[int, int, int]:
    return palette[int(rng.integers(len(palette)))]


def _walker(rng: np.random.Generator, spec: DemoSpec, path: tuple[int, int], start: int, kind: str) -> _Actor:
    top, bottom = path
    unit = spec.height / 120  # pixel scale relative to a 160x120 frame
    direction = 1 if rng.random() < 0.5 else -1
    colors = (_pick(rng, _SHIRTS), _pick(rng, _TROUSERS), _pick(rng, _SKIN))
    height = float(rng.uniform(17, 21) * unit)
    if kind == "offpath":  # walks down (or up) across the lawn, near a random column
        x0 = float(rng.uniform(0.2, 0.8) * spec.width)
        y0 = -height if direction > 0 else spec.height + height
        speed = float(rng.uniform(0.9, 1.2) * unit)
        return _Actor(kind, start, x0, y0, 0.0, direction * speed, height, colors, float(rng.uniform(0, 6.3)))
    speed = {"walker": rng.uniform(0.8, 1.3), "fast": rng.uniform(4.0, 5.0), "large": rng.uniform(1.5, 2.0)}[kind]
    foot = float(rng.uniform(top + 0.35 * (bottom - top), bottom - 1))
    if kind == "large":
        height = float(rng.uniform(38, 44) * unit)
    x0 = -height if direction > 0 else spec.width + height
    vx = direction * float(speed * unit)
    return _Actor(kind, start, x0, foot, vx, 0.0, height, colors, float(rng.uniform(0, 6.3)))


def _visible(actor: _Actor, t: int, spec: DemoSpec) -> bool:
    x, y = actor.position(t)
    half = actor.height  # generous: sprites are at most ~2×height wide
    return t >= actor.start and -half < x < spec.width + half and 0 < y < spec.height + actor.height


def _draw(frame: np.ndarray, actor: _Actor, t: int) -> None:
    """Draw one actor with its feet (or wheels) at its position."""
    x, y = actor.position(t)
    h = actor.height
    shirt, trousers, skin = actor.colors
    if actor.kind == "large":  # a van: body, windows, two wheels
        length = 1.8 * h
        x1, x2 = int(x - length / 2), int(x + length / 2)
        cv2.rectangle(frame, (x1, int(y - h)), (x2, int(y - 0.2 * h)), shirt, -1)
        cv2.rectangle(frame, (x1 + 3, int(y - 0.9 * h)), (x2 - 3, int(y - 0.6 * h)), (40, 60, 80), -1)
        for cx in (x1 + 0.2 * length, x2 - 0.2 * length):
            cv2.circle(frame, (int(cx), int(y - 0.15 * h)), max(2, int(0.15 * h)), (20, 20, 20), -1)
        return
    speed = abs(actor.vx) + abs(actor.vy)
    swing = np.sin(actor.phase + 0.9 * t * max(speed, 0.5)) * 0.22 * h  # stride grows with speed
    hip = (x, y - 0.45 * h)
    for sign, shade in ((1, 1.0), (-1, 0.8)):
        leg = tuple(int(c * shade) for c in trousers)
        cv2.line(frame, (int(hip[0]), int(hip[1])), (int(x + sign * swing), int(y)), leg, max(1, int(0.12 * h)))
    torso_w = max(2, int(0.16 * h))
    cv2.ellipse(frame, (int(x), int(y - 0.65 * h)), (torso_w, max(2, int(0.22 * h))), 0, 0, 360, shirt, -1)
    arm = np.sin(actor.phase + 0.9 * t * max(speed, 0.5) + np.pi) * 0.15 * h
    cv2.line(frame, (int(x), int(y - 0.8 * h)), (int(x + arm), int(y - 0.5 * h)), shirt, max(1, int(0.08 * h)))
    cv2.circle(frame, (int(x), int(y - 0.93 * h)), max(2, int(0.09 * h)), skin, -1)


def _actors(spec: DemoSpec, rng: np.random.Generator, path: tuple[int, int], anomaly: str | None) -> list[_Actor]:
    """Normal walkers entering at random times (plus one anomalous actor entering at a third of the video)."""
    # A walker crosses the frame in about width / speed frames; enter often enough to keep ~`walkers` visible.
    crossing = spec.width / (1.05 * spec.height / 120)
    rate = spec.walkers / crossing
    starts = np.flatnonzero(rng.random(spec.n_frames + int(crossing)) < rate) - int(crossing)
    actors = [_walker(rng, spec, path, int(s), "walker") for s in starts]
    if anomaly is not None:
        actors.append(_walker(rng, spec, path, int(rng.integers(spec.n_frames // 5, spec.n_frames // 3)), anomaly))
    return actors


def _render(
    spec: DemoSpec, rng: np.random.Generator, background: np.ndarray, actors: list[_Actor], out: Path
) -> list[int]:
    """Write the frames of one video as PNGs; return the frames on which an anomalous actor is visible."""
    out.mkdir(parents=True)
    anomalous = []
    for t in range(spec.n_frames):
        frame = background.copy()
        visible = [a for a in actors if _visible(a, t, spec)]
        for actor in sorted(visible, key=lambda a: a.position(t)[1]):  # far (higher up) first
            _draw(frame, actor, t)
        noise = rng.integers(-3, 4, frame.shape, dtype=np.int16)  # sensor noise
        frame = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"{t}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if any(a.kind != "walker" for a in visible):
            anomalous.append(t)
    return anomalous


def _intervals(frames: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def anomaly_plan(spec: DemoSpec) -> list[tuple[str, str | None]]:
    """(video_id, anomaly) of every test video: the anomalies in turn, the last video all normal."""
    kinds = [spec.anomalies[i % len(spec.anomalies)] if spec.anomalies else None for i in range(spec.n_test - 1)]
    return [(f"test_{i:02d}", kind) for i, kind in enumerate([*kinds, None])]


def generate_demo(root: str | Path, spec: DemoSpec | None = None) -> Path:
    """Write the demo dataset under ``root`` (``train/``, ``test/``, ``labels.csv``, ``demo.json``); return ``root``.

    Idempotent: an existing dataset generated from the same spec is kept as is. The dataset is built in a
    sibling temporary directory and renamed into place, so an interrupted run never leaves half a dataset.
    """
    spec = spec or DemoSpec()
    root = Path(root)
    manifest = root / _MANIFEST
    wanted = json.dumps(asdict(spec), sort_keys=True)
    if manifest.is_file() and json.dumps(json.loads(manifest.read_text()), sort_keys=True) == wanted:
        return root
    if root.exists() and any(root.iterdir()):
        if not manifest.is_file():
            raise FileExistsError(f"{root} exists and is not a demo dataset (no {_MANIFEST}); pick an empty folder")
        shutil.rmtree(root)  # a demo from another spec: regenerate
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        rng = np.random.default_rng(spec.seed)
        background, path = _background(spec, rng)
        rows = []
        for i in range(spec.n_train):
            _render(spec, rng, background, _actors(spec, rng, path, None), work / "train" / f"train_{i:02d}")
        for video_id, anomaly in anomaly_plan(spec):
            frames = _render(spec, rng, background, _actors(spec, rng, path, anomaly), work / "test" / video_id)
            rows += [(video_id, a, b) for a, b in _intervals(frames)]
        with open(work / "labels.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["video_id", "start_frame", "end_frame"])
            writer.writerows(rows)
        (work / _MANIFEST).write_text(json.dumps(asdict(spec), indent=2, sort_keys=True) + "\n")
        if root.exists():
            root.rmdir()
        os.replace(work, root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return root
