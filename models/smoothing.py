"""Per-video temporal smoothing of frame scores (AI-VAD ``evaluate.py``: σ 3 Ped2/Avenue, 7 ShanghaiTech)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Smoothing σ (frames) per dataset, from AI-VAD's README; other datasets have no published value.
DEFAULT_SIGMA = {"ped2": 3.0, "ped1": 3.0, "avenue": 3.0, "shanghaitech": 7.0}


def smooth_scores(scores: np.ndarray, sigma: float) -> np.ndarray:
    """``gaussian_filter1d`` (scipy defaults: reflect border, truncate 4σ) of one video; σ=0 returns a copy."""
    scores = np.asarray(scores, dtype=np.float64)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    return gaussian_filter1d(scores, sigma) if sigma > 0 and len(scores) else scores.copy()


def smooth_videos(scores: Mapping[str, np.ndarray], sigma: float) -> dict[str, np.ndarray]:
    """Smooth each video on its own, so no score leaks across a video boundary."""
    return {video: smooth_scores(values, sigma) for video, values in scores.items()}


def kernel_radius(sigma: float) -> int:
    """Frames on each side that ``gaussian_filter1d`` reads (its default truncate=4): int(4σ + 0.5)."""
    return int(4.0 * sigma + 0.5)


def causal_smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    """Offline twin of ``CausalSmoother``: each frame is the half-Gaussian weighted mean of itself and the past."""
    smoother = CausalSmoother(sigma)
    return np.concatenate([smoother.push(scores), smoother.finish()])


class CentredSmoother:
    """``smooth_scores`` computed on a stream: exactly equal to it, with a delay of ``kernel_radius(σ)`` frames.

    Frame t is emitted once frame t + r has been pushed (or at ``finish``, where the end is reflected as
    scipy does), so memory holds 2r + (one push) scores whatever the video's length.
    """

    def __init__(self, sigma: float) -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = sigma
        self.delay = kernel_radius(sigma) if sigma > 0 else 0
        self._buffer = np.zeros(0)  # raw scores from frame self._start on
        self._start = 0  # frame index of _buffer[0]
        self._emitted = 0  # frames emitted so far

    def _emit(self, last: int) -> np.ndarray:
        """Smoothed frames [emitted, last); keep only what later frames still read."""
        if last <= self._emitted:
            return np.zeros(0)
        smoothed = smooth_scores(self._buffer, self.sigma)[self._emitted - self._start : last - self._start]
        self._emitted = last
        keep_from = max(self._start, last - self.delay)
        self._buffer, self._start = self._buffer[keep_from - self._start :], keep_from
        return smoothed

    def push(self, scores: np.ndarray) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, np.asarray(scores, dtype=np.float64)])
        return self._emit(self._start + len(self._buffer) - self.delay)

    def finish(self) -> np.ndarray:
        return self._emit(self._start + len(self._buffer))


class CausalSmoother:
    """Stream-mode smoothing: frame t is the mean of frames t − r … t weighted by a half-Gaussian exp(−k²/2σ²).

    No look-ahead (delay 0), so a score is final the moment its frame is scored; the price is a lag: a
    peak shows up about σ·√(2/π) ≈ 0.8σ frames late and decays more slowly than it rises, where the
    offline (centred) smoothing is symmetric. Frames near the start average over the frames that exist.
    """

    delay = 0

    def __init__(self, sigma: float) -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        radius = kernel_radius(sigma) if sigma > 0 else 0
        self._weights = np.exp(-0.5 * (np.arange(radius + 1) / max(sigma, 1e-12)) ** 2)  # w[k] for lag k
        self._past = np.zeros(0)  # the last `radius` raw scores

    def push(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        history = np.concatenate([self._past, scores])
        out = np.empty(len(scores))
        radius = len(self._weights) - 1
        for i in range(len(scores)):
            end = len(self._past) + i + 1
            window = history[max(0, end - radius - 1) : end][::-1]  # lag 0, 1, 2, ...
            weights = self._weights[: len(window)]
            out[i] = weights @ window / weights.sum()
        self._past = history[max(0, len(history) - radius) :] if radius else history[:0]
        return out

    def finish(self) -> np.ndarray:
        return np.zeros(0)
