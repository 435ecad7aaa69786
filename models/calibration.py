"""Per-feature-type calibration with training-score statistics, then the sum over types (AI-VAD, method.md §3.3).

AI-VAD min-max scales each feature type's frame scores with statistics of that type's *training object*
scores: the minimum and the 99.9th percentile (velocity, pose) or the maximum (deep). The calibrated
types are then summed. A frame where a type has no object gets the calibrated value ``empty_fill``
(0 = the training minimum, as AI-VAD does for frames without poses).

``tail="log"`` keeps that map up to the upper statistic and grows logarithmically above it. Beyond the
training range a score's size is the model's extrapolation, and how fast it grows depends on the scorer,
not on the anomaly: a kNN distance grows like the distance d, a log-density like d², MULDE's GMM over
its scale log-densities like d⁴. Linear tails let the fastest-growing type decide the sum; logarithmic
ones turn a growth d^k into k·log d, so no type's tail can outvote the others by orders of magnitude.

``ExceedanceCalibration`` is the scale-free alternative: a score becomes the surprise −log p of its
conformal p-value among the training scores, so the sum over types is Fisher's combination and no type's
score units (a log-density grows with the squared distance, a kNN distance linearly) can dominate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Tail = Literal["linear", "log"]
#: How the calibrated feature types of a frame become one score.
Combine = Literal["sum", "max"]

#: How a pipeline that sums calibrated feature types trains and calibrates each MULDE by default (the
#: pipeline, ``mulde-vad fit``, bench/quality.py): the network trains on every training row and the
#: calibration statistics are its scores of those rows, as AI-VAD calibrates its velocity GMM. Decided on
#: real UCSD Ped2 (docs/benchmarks.md): withholding 20% of the training videos for the statistics gave
#: 94.3 / 96.1 fused micro / macro AUC against 96.0 / 95.4, because 16 short training videos leave a
#: network trained on 13 of them clearly weaker (velocity 86.8 against 89.5 micro). A fraction > 0
#: (``mulde.fusion_holdout``) withholds whole training videos, so the statistics come from unseen videos.
#: Scores beyond the upper statistic grow logarithmically (see the module docstring): on Ped2 the log tail
#: beat the linear one (96.0 / 95.4 against 95.1 / 94.3) and the conformal surprise (92.1 / 93.5).
CALIBRATION_HOLDOUT = 0.0
CALIBRATION_TAIL: Tail = "log"

#: AI-VAD's upper statistic per feature type: a percentile, or "max".
AIVAD_UPPER: dict[str, float | str] = {"velocity": 99.9, "pose": 99.9, "deep_features": "max"}


def default_upper(feature: str) -> float | str:
    """AI-VAD's upper calibration statistic for its feature types, the 99.9th percentile otherwise."""
    return AIVAD_UPPER.get(feature, 99.9)


@dataclass(frozen=True)
class Calibration:
    """u = (s − low) / (high − low) fitted on training scores; above 1, u itself (``"linear"``) or 1 + log u."""

    low: float
    high: float
    tail: Tail = "linear"

    @classmethod
    def fit(
        cls, train_scores: np.ndarray, upper: float | str = 99.9, *, tail: Tail = "linear", name: str = "scores"
    ) -> Calibration:
        """``low`` = min of the training scores, ``high`` = their ``upper`` percentile, or max for "max"."""
        train_scores = np.asarray(train_scores, dtype=np.float64).ravel()
        if train_scores.size == 0 or not np.isfinite(train_scores).all():
            raise ValueError(f"{name}: calibration needs finite training scores, got {train_scores.size} values")
        if upper == "max":
            high = float(train_scores.max())
        elif isinstance(upper, int | float) and 0 < upper <= 100:
            high = float(np.percentile(train_scores, upper))
        else:
            raise ValueError(f"{name}: upper must be 'max' or a percentile in (0, 100], got {upper!r}")
        low = float(train_scores.min())
        if not high > low:
            raise ValueError(f"{name}: training scores are constant up to the {upper} statistic ({low}); cannot scale")
        return cls(low, high, tail)

    def __post_init__(self) -> None:
        if self.tail not in get_args(Tail):
            raise ValueError(f"calibration tail must be 'linear' or 'log', got {self.tail!r}")

    def transform(self, scores: np.ndarray) -> np.ndarray:
        u = (np.asarray(scores, dtype=np.float64) - self.low) / (self.high - self.low)
        if self.tail == "linear":
            return u
        return np.where(u > 1, 1 + np.log(np.maximum(u, 1)), u)  # continuous, slope 1 at u = 1


@dataclass(frozen=True, eq=False)
class ExceedanceCalibration:
    """s ↦ −log p with p = (1 + #{training scores ≥ s}) / (n + 1), the conformal p-value of s.

    0 at or below the training minimum, log(n + 1) above the training maximum; monotone, so the ranking
    within one type is unchanged and only the scale the types are summed on differs from ``Calibration``.
    """

    reference: np.ndarray  # the training scores, sorted ascending

    @classmethod
    def fit(cls, train_scores: np.ndarray, upper: float | str = 99.9, *, name: str = "scores") -> ExceedanceCalibration:
        """``upper`` is accepted for the same call as ``Calibration.fit`` and unused: every score counts."""
        train_scores = np.asarray(train_scores, dtype=np.float64).ravel()
        if train_scores.size == 0 or not np.isfinite(train_scores).all():
            raise ValueError(f"{name}: calibration needs finite training scores, got {train_scores.size} values")
        return cls(np.sort(train_scores))

    def transform(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        at_least = len(self.reference) - np.searchsorted(self.reference, scores, side="left")
        surprise = -np.log((1.0 + at_least) / (len(self.reference) + 1.0))
        return np.where(np.isnan(scores), np.nan, surprise)


def fuse_calibrated(
    frame_scores: Mapping[str, np.ndarray],
    calibrations: Mapping[str, Calibration | ExceedanceCalibration],
    empty_fill: float = 0.0,
    combine: Combine = "sum",
) -> np.ndarray:
    """Sum (AI-VAD) or max of the calibrated per-type frame scores; NaN (a frame with no object of that type)
    → ``empty_fill``.

    The max lets each frame be judged by its most surprised type, so a type that is noise on some
    anomaly kind adds nothing there; the sum adds every type's evidence, and with it every type's noise.
    """
    if not frame_scores:
        raise ValueError("no feature types to fuse")
    missing = set(frame_scores) - set(calibrations)
    if missing:
        raise ValueError(f"no calibration for feature type(s) {sorted(missing)}")
    lengths = {name: len(s) for name, s in frame_scores.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"feature types cover different frame counts: {lengths}")
    if combine not in get_args(Combine):
        raise ValueError(f"combine must be one of {get_args(Combine)}, got {combine!r}")
    calibrated = np.stack([calibrations[name].transform(scores) for name, scores in frame_scores.items()])
    calibrated = np.where(np.isnan(calibrated), empty_fill, calibrated)
    return calibrated.sum(axis=0) if combine == "sum" else calibrated.max(axis=0)
