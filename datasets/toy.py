"""The official MULDE 2-D toy problem (method.md §1.6): 4 normal Gaussians, anomalies at 9 other centres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NORMAL_CENTRES = np.array([(4, 0), (-4, 0), (0, 4), (0, -4)], dtype=np.float64)
_ANOMALY_CENTRES = np.array(
    [(2, 2), (2, -2), (-2, 2), (-2, -2), (0, 0), (6.8, 0), (-6.8, 0), (0, 6.8), (0, -6.8)], dtype=np.float64
)
_SPREAD = 0.3
_SHRINK = 1 / np.sqrt(2)


@dataclass(frozen=True)
class ToyData:
    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray  # 1 = anomalous


def _mixture(centres: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    picks = centres[rng.integers(0, len(centres), size=n)]
    return (picks + _SPREAD * rng.standard_normal((n, 2))) * _SHRINK


def make_toy_data(
    n_train: int = 10_000, n_test_normal: int = 5_000, n_test_anomalous: int = 5_000, seed: int = 0
) -> ToyData:
    """Training normals, then a test set of normals followed by anomalies (sizes as in the official code)."""
    rng = np.random.default_rng(seed)
    X_train = _mixture(_NORMAL_CENTRES, n_train, rng)
    X_test = np.vstack(
        [_mixture(_NORMAL_CENTRES, n_test_normal, rng), _mixture(_ANOMALY_CENTRES, n_test_anomalous, rng)]
    )
    y_test = np.r_[np.zeros(n_test_normal, np.int64), np.ones(n_test_anomalous, np.int64)]
    return ToyData(X_train, X_test, y_test)
