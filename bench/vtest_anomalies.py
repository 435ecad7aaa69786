"""A real-footage anomaly benchmark cut from vtest.avi (real pedestrian CCTV), anomalies inserted by construction.

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python bench/vtest_anomalies.py OUT_DIR [--width 384]

Writes the generic folder layout (``OUT_DIR/{train,test}/<video>/<frame>.jpg`` + ``labels.csv``):

* train: the first ``train_frames`` frames of vtest in clips of ``clip_frames`` (real people walking,
  nothing inserted: normal by definition);
* test: the remaining frames in segments of ``clip_frames``; each segment is written once per anomaly kind
  (25 clips), each copy with one inserted anomaly visible on the frames ``labels.csv`` lists, on top of
  the real, normal scene of that segment; ``boxes.csv`` gives the sprite's box on each of those frames.

The anomalous windows of one segment's five copies tile it: the segment is cut into five windows and each
kind takes another one (a Latin square over segments and kinds), so every real frame is anomalous in
exactly one copy and normal in the other four. Without that, the labels mark the same stretch of real
footage in every copy, and a scorer that merely finds that stretch unusual (more people, odd motion) wins
without seeing the anomaly: on benchmark v2, where every anomaly ran over frames 15–44, the scorers
reached 59–63 % micro and 67–73 % macro frame AUC on the test segments with nothing pasted at all.

Every anomaly is a real person (or vehicle) cut from a *training* frame with a soft foreground mask and
pasted moving through a test clip, chosen so that object-level features must catch it and a global
frame-difference score cannot (each adds about one person's worth of changed pixels):

* ``fast``:      a person crossing the plaza at 5× the median walking speed measured in training;
* ``offlimits``: a person walking at normal speed across the lawn, where the training traffic map is empty;
* ``large``:     a parked van scaled ×3 driving slowly across the plaza: an object far larger than people;
* ``against``:   a person walking at normal speed against the dominant direction of the busiest lane;
* ``loiter``:    a person standing in the middle of the plaza for the whole anomalous interval.

Deterministic: the same vtest.avi and arguments give the same frames (no randomness at all).
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ANOMALIES = ("fast", "offlimits", "large", "against", "loiter")
#: Bumped whenever the generated frames change, so that a cache of an older benchmark is never reused.
VERSION = 3
_FG_THRESHOLD = 30  # max |frame − background| over channels that counts as foreground (uint8)


@dataclass(frozen=True)
class Sprite:
    """An image patch with a soft alpha mask (float32 in [0, 1]) to paste."""

    pixels: np.ndarray  # (h, w, 3) uint8 BGR
    alpha: np.ndarray  # (h, w) float32

    def scaled(self, factor: float) -> Sprite:
        size = (max(1, round(self.pixels.shape[1] * factor)), max(1, round(self.pixels.shape[0] * factor)))
        return Sprite(cv2.resize(self.pixels, size), cv2.resize(self.alpha, size))


@dataclass(frozen=True)
class Path2D:
    """Where the sprite's centre is on each anomalous frame of a clip."""

    start: int  # first anomalous frame (clip-relative)
    centres: np.ndarray  # (n, 2) float x, y


def read_frames(video: Path, width: int) -> np.ndarray:
    """All frames of vtest, resized to ``width`` (about 100 MB at 384×288: the clip is 795 frames)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        height = round(frame.shape[0] * width / frame.shape[1])
        frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise SystemExit(f"{video}: no frame decoded; is it vtest.avi from the assets folder?")
    return np.stack(frames)


def foreground(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.abs(frames.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > _FG_THRESHOLD


def person_sprites(frames: np.ndarray, background: np.ndarray, count: int) -> list[Sprite]:
    """Upright foreground blobs of person size from training frames, with feathered masks."""
    height = frames.shape[1]
    sprites: list[Sprite] = []
    for index in range(0, len(frames), 37):
        mask = foreground(frames[index : index + 1], background)[0].astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        for x, y, w, h, area in stats[1:n]:
            person_like = 0.12 * height < h < 0.3 * height and 1.6 < h / max(w, 1) < 4.5 and area > 0.4 * w * h
            if person_like and y > 0.3 * height:  # on the plaza, not the far road
                crop = (slice(y, y + h), slice(x, x + w))
                alpha = cv2.GaussianBlur(mask[crop].astype(np.float32), (3, 3), 0)
                sprites.append(Sprite(frames[index][crop].copy(), alpha))
                break
        if len(sprites) == count:
            return sprites
    raise SystemExit(f"found only {len(sprites)} person-like blobs in the training frames; need {count}")


def dominant_flow(frames: np.ndarray, background: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per grid cell, the mean foreground optical flow of the training frames and its pixel count; and the
    walking speed: the median flow magnitude of foreground pixels, in pixels per frame.

    The flow runs between every second frame, so its vectors are halved to make them per frame. The speed is
    taken over pixels, not over the cell means, because people walking opposite ways cancel in a mean vector.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[::2]]
    fg = foreground(frames[::2], background)
    rows, cols = frames.shape[1] // cell, frames.shape[2] // cell
    total, count = np.zeros((rows, cols, 2)), np.zeros((rows, cols))
    speeds = []
    for prev, nxt, mask in zip(gray[:-1], gray[1:], fg[1:], strict=True):
        flow = dis.calc(prev, nxt, None) / 2.0
        speeds.append(np.median(np.linalg.norm(flow[mask], axis=-1)) if mask.any() else np.nan)
        for r in range(rows):
            for c in range(cols):
                m = mask[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell]
                if m.sum() > 20:
                    total[r, c] += flow[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell][m].mean(axis=0)
                    count[r, c] += 1
    return total / np.maximum(count, 1)[..., None], count, float(np.nanmedian(speeds))


def straight(start: int, n: int, a: tuple[float, float], b: tuple[float, float]) -> Path2D:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return Path2D(start, (1 - t) * np.asarray(a) + t * np.asarray(b))


def paste(frame: np.ndarray, sprite: Sprite, centre: np.ndarray) -> bool:
    """Alpha-blend ``sprite`` centred (bottom-centre anchored) at ``centre``; False if it lies outside."""
    x0, y0 = _top_left(sprite, centre)
    fx0, fy0, fx1, fy1 = sprite_box(sprite, centre, frame.shape[1], frame.shape[0])
    if fx0 >= fx1 or fy0 >= fy1:
        return False
    alpha = sprite.alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]
    patch = sprite.pixels[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (alpha * patch + (1 - alpha) * region).round().astype(np.uint8)
    return True


def sprite_box(sprite: Sprite, centre: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the pasted sprite, clipped to a ``width`` × ``height`` frame."""
    x0, y0 = _top_left(sprite, centre)
    h, w = sprite.alpha.shape
    return max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)


def _top_left(sprite: Sprite, centre: np.ndarray) -> tuple[int, int]:
    """The sprite's top-left pixel when its bottom centre sits at ``centre``."""
    h, w = sprite.alpha.shape
    return round(centre[0] - w / 2), round(centre[1] - h)


@dataclass(frozen=True)
class Scene:
    """What the anomalies are built from: measured on the training frames only."""

    width: int
    height: int
    walk_speed: float  # median flow magnitude of foreground pixels, px/frame
    people: list[Sprite]
    van: Sprite
    lawn_y: float  # a row of the lawn with no training traffic
    lane_centre: tuple[float, float]  # the cell with the most consistent training motion
    lane_direction: np.ndarray  # its unit mean flow


def measure_scene(train: np.ndarray, background: np.ndarray) -> Scene:
    height, width = train.shape[1:3]
    cell = width // 8
    mean_flow, count, walk_speed = dominant_flow(train, background, cell)
    magnitude = np.linalg.norm(mean_flow, axis=-1)
    busiest = np.unravel_index(np.argmax(magnitude * np.minimum(count, 50)), magnitude.shape)
    direction = mean_flow[busiest] / max(magnitude[busiest], 1e-6)
    traffic = foreground(train[::5], background).mean(axis=(0, 2))  # per image row
    lawn_rows = np.arange(int(0.75 * height), int(0.95 * height))
    lawn_y = float(lawn_rows[np.argmin(traffic[lawn_rows])])
    # The white van parked at the top right of vtest (cut from the background image, relative coordinates).
    y0, y1, x0, x1 = (round(v) for v in (0.075 * height, 0.17 * height, 0.845 * width, 0.945 * width))
    van_alpha = np.ones((y1 - y0, x1 - x0), np.float32)
    van = Sprite(background[y0:y1, x0:x1].copy(), cv2.GaussianBlur(van_alpha, (5, 5), 0))
    centre = ((busiest[1] + 0.5) * cell, (busiest[0] + 0.5) * cell)
    return Scene(width, height, walk_speed, person_sprites(train, background, 4), van, lawn_y, centre, direction)


def anomaly_path(kind: str, scene: Scene, n_frames: int, variant: int = 0) -> tuple[Sprite, Path2D]:
    """The sprite and its per-frame positions for one anomaly in a clip of ``n_frames``.

    ``variant`` (0–4, one per test segment) changes which real person is pasted and where the anomaly
    runs, within the region that defines it (the lawn, the lane, the plaza), so the five instances of one
    kind are not five copies of one example. It also picks the kind's window (``anomaly_window``).
    """
    w, h, speed = scene.width, scene.height, scene.walk_speed
    start, length = anomaly_window(kind, n_frames, variant)
    plaza_y = (0.56 + 0.03 * variant) * h
    person = scene.people[(ANOMALIES.index(kind) + variant) % len(scene.people)]  # unused by "large"
    if kind == "fast":
        span = 5 * speed * length
        return person, straight(start, length, (w / 2 - span / 2, plaza_y), (w / 2 + span / 2, plaza_y))
    if kind == "offlimits":
        span, x = speed * length, (0.08 + 0.1 * variant) * w
        return person, straight(start, length, (x, scene.lawn_y), (x + span, scene.lawn_y))
    if kind == "large":
        span, x = speed * length, (0.2 + 0.05 * variant) * w
        van = scene.van.scaled(3.0)
        return van, straight(start, length, (x, plaza_y + 0.1 * h), (x + span, plaza_y + 0.1 * h))
    if kind == "against":
        span = speed * length * (-scene.lane_direction)
        cx, cy = scene.lane_centre
        a = (cx - span[0] / 2, cy - span[1] / 2 + person.alpha.shape[0] / 2)
        return person, straight(start, length, a, (a[0] + span[0], a[1] + span[1]))
    if kind == "loiter":
        t = np.arange(length)
        centres = np.column_stack([(0.35 + 0.05 * variant) * w + 0.5 * np.sin(t / 3), np.full(length, plaza_y)])
        return person, Path2D(start, centres)
    raise ValueError(f"unknown anomaly {kind!r}; choose from {ANOMALIES}")


def anomaly_window(kind: str, n_frames: int, variant: int) -> tuple[int, int]:
    """(first frame, length) of the anomaly: the ``(kind + variant) mod 5``-th of five windows tiling the clip,
    so the five kinds pasted into one segment cover each of its frames exactly once."""
    length = n_frames // len(ANOMALIES)
    return (ANOMALIES.index(kind) + variant) % len(ANOMALIES) * length, length


def clips(start: int, stop: int, length: int) -> Iterator[tuple[int, int]]:
    for first in range(start, stop - length + 1, length):
        yield first, first + length


def write_clip(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])


def generate(video: Path, out: Path, *, width: int = 384, train_frames: int = 480, clip_frames: int = 60) -> Path:
    """Write the benchmark under ``out``; returns ``out``. Does nothing if ``out/labels.csv`` exists.

    Every anomaly kind is inserted into every test segment (5 kinds × 5 segments = 25 test clips), each
    time as another variant; ``boxes.csv`` lists the pasted sprite's box on every frame it is visible, for
    object-level evaluation.
    """
    if (out / "labels.csv").is_file():
        return out
    frames = read_frames(video, width)
    train = frames[:train_frames]
    background = np.median(train[::4], axis=0).astype(np.uint8)
    scene = measure_scene(train, background)
    for index, (a, b) in enumerate(clips(0, train_frames, 80)):
        write_clip(out / "train" / f"train_{index:02d}", frames[a:b])
    labels, boxes = [], []
    for segment, (a, b) in enumerate(clips(train_frames, len(frames), clip_frames)):
        for kind in ANOMALIES:
            clip = frames[a:b].copy()
            sprite, path = anomaly_path(kind, scene, len(clip), variant=segment)
            video_id = f"test_{segment:02d}_{kind}"
            visible = []
            for frame, centre in enumerate(path.centres, start=path.start):
                if paste(clip[frame], sprite, centre):
                    visible.append((video_id, frame, *sprite_box(sprite, centre, width, clip.shape[1])))
            write_clip(out / "test" / video_id, clip)
            boxes.extend(visible)
            labels.append((video_id, visible[0][1], visible[-1][1]))
    _write_csv(out / "boxes.csv", [("video_id", "frame", "x0", "y0", "x1", "y1"), *boxes])
    _write_csv(out / "labels.csv", [("video_id", "start_frame", "end_frame"), *labels])  # last: marks completion
    return out


def bench_folder(cache: Path) -> Path:
    """Where ``bench/quality.py --cache CACHE`` writes this version of the benchmark."""
    return cache / f"vtest_bench_v{VERSION}"


def add_location_arguments(parser: argparse.ArgumentParser, *, cache: bool = True) -> None:
    """``--assets`` (the folder holding video/vtest.avi) and, with ``cache``, ``--cache`` (where the benchmark
    and its feature store live): one default for every script that writes or reads this benchmark."""
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("MULDE_VAD_ASSETS", "assets")))
    if cache:
        parser.add_argument("--cache", type=Path, default=Path(os.environ.get("MULDE_VAD_CACHE", ".cache/quality")))


def _write_csv(path: Path, rows: list[tuple]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    add_location_arguments(parser, cache=False)
    parser.add_argument("--width", type=int, default=384)
    args = parser.parse_args()
    video = args.assets / "video" / "vtest.avi"
    if not video.is_file():
        parser.error(f"{video} not found: pass --assets DIR (the folder holding video/vtest.avi)")
    print(generate(video, args.out, width=args.width))


if __name__ == "__main__":
    main()
