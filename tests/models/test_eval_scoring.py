"""Frame aggregation, calibration and smoothing against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from mulde_vad.models.calibration import Calibration, ExceedanceCalibration, fuse_calibrated
from mulde_vad.models.frame_scores import object_to_frame_scores
from mulde_vad.models.smoothing import smooth_scores, smooth_videos


def test_frame_score_is_max_over_objects_and_empty_frames_get_the_given_value() -> None:
    frames = np.array([0, 0, 2, 4])
    scores = np.array([1.0, 3.0, 2.0, -1.0])
    np.testing.assert_array_equal(object_to_frame_scores(frames, scores, 6), [3, np.nan, 2, np.nan, -1, np.nan])
    np.testing.assert_array_equal(object_to_frame_scores(frames, scores, 5, empty_value=-7), [3, -7, 2, -7, -1])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        object_to_frame_scores(frames, scores, 4)


def test_calibration_uses_min_and_percentile_or_max_of_training_scores() -> None:
    train = np.arange(1001, dtype=float)  # 99.9th percentile = 999 (linear interpolation at rank 999)
    percentile = Calibration.fit(train, 99.9)
    assert percentile.low == 0.0 and percentile.high == pytest.approx(999.0)
    assert percentile.transform(np.array([499.5]))[0] == pytest.approx(0.5)
    assert Calibration.fit(train, "max").high == 1000.0
    with pytest.raises(ValueError, match="pose: training scores are constant"):
        Calibration.fit(np.ones(5), name="pose")


def test_log_tail_is_min_max_within_the_training_range_and_k_log_d_beyond_it() -> None:
    d = np.array([0.0, 0.5, 1.0, 2.0, 10.0])  # distances in units of the training range's upper statistic
    for k in (1, 2, 4):  # a distance, a log-density (~d²), a GMM on scale log-densities (~d⁴)
        calibration = Calibration(0.0, 1.0, tail="log")
        expected = np.where(d <= 1, d**k, 1 + k * np.log(np.maximum(d, 1)))
        np.testing.assert_allclose(calibration.transform(d**k), expected)
    assert np.isnan(Calibration(0.0, 1.0, tail="log").transform(np.array([np.nan])))[0]
    with pytest.raises(ValueError, match="tail must be 'linear' or 'log'"):
        Calibration(0.0, 1.0, tail="square")


def test_log_tail_keeps_the_fastest_growing_type_from_deciding_the_sum() -> None:
    # Type "distance" scores d, type "quartic" d⁴, both calibrated to 1 at d = 1. The anomaly is 3 training
    # ranges out in both types; a normal frame is 4 out in the quartic type only (0.5 in the other).
    frames = {"distance": np.array([3.0, 0.5]), "quartic": np.array([3.0**4, 4.0**4])}
    linear = {name: Calibration(0.0, 1.0) for name in frames}
    log = {name: Calibration(0.0, 1.0, tail="log") for name in frames}
    anomaly, normal = fuse_calibrated(frames, linear)
    assert normal > anomaly  # 256.5 against 84: the quartic type's extrapolation outvotes both types' evidence
    anomaly, normal = fuse_calibrated(frames, log)
    assert anomaly > normal  # 2 + 5 log 3 ≈ 7.49 against 1.5 + 4 log 4 ≈ 7.05


def test_exceedance_calibration_is_the_conformal_surprise_and_ignores_score_units() -> None:
    train = np.array([3.0, 1.0, 2.0, 4.0])  # n = 4
    calibration = ExceedanceCalibration.fit(train)
    # p = (1 + #{train ≥ s}) / 5: s ≤ 1 → 5/5, s = 2.5 → 3/5, s = 4 → 2/5, s > 4 → 1/5.
    expected = -np.log([1.0, 1.0, 3 / 5, 2 / 5, 1 / 5, 1 / 5])
    np.testing.assert_allclose(calibration.transform(np.array([0.0, 1.0, 2.5, 4.0, 4.5, 1e9])), expected)
    assert np.isnan(calibration.transform(np.array([np.nan])))[0]
    # A monotone change of units (a squared distance instead of a distance) calibrates to the same values.
    squared = ExceedanceCalibration.fit(train**2)
    np.testing.assert_allclose(
        squared.transform(np.array([2.5, 4.5]) ** 2), calibration.transform(np.array([2.5, 4.5]))
    )
    # One type with heavy-tailed units cannot outvote another: both fused terms are at most log(n + 1).
    fused = fuse_calibrated({"a": np.array([1e12]), "b": np.array([0.0])}, {"a": calibration, "b": calibration})
    assert fused[0] == pytest.approx(np.log(5))
    with pytest.raises(ValueError, match="pose: calibration needs finite"):
        ExceedanceCalibration.fit(np.array([1.0, np.inf]), name="pose")


def test_fusion_sums_calibrated_types_and_fills_empty_frames_with_training_minimum() -> None:
    frame_scores = {"velocity": np.array([0.0, 999.0, np.nan]), "deep_features": np.array([10.0, 20.0, 30.0])}
    calibrations = {"velocity": Calibration(0.0, 999.0), "deep_features": Calibration(10.0, 30.0)}
    np.testing.assert_allclose(fuse_calibrated(frame_scores, calibrations), [0.0, 1.5, 1.0])
    np.testing.assert_allclose(fuse_calibrated(frame_scores, calibrations, empty_fill=-1.0), [0.0, 1.5, 0.0])
    with pytest.raises(ValueError, match="no calibration for feature type"):
        fuse_calibrated({"pose": np.zeros(3)}, calibrations)


def test_gaussian_smoothing_matches_the_normalised_kernel_and_stays_within_a_video() -> None:
    impulse = np.zeros(41)
    impulse[20] = 1.0
    smoothed = smooth_scores(impulse, sigma=1.0)
    # scipy truncates at 4σ: weights exp(-x²/2) for x = -4..4, normalised.
    z = 1 + 2 * sum(np.exp(-(x**2) / 2) for x in range(1, 5))
    assert smoothed[20] == pytest.approx(1 / z)
    assert smoothed[21] == pytest.approx(np.exp(-0.5) / z)
    assert smoothed[25] == 0.0 and smoothed.sum() == pytest.approx(1.0)
    out = smooth_videos({"a": np.zeros(5), "b": np.array([9.0, 0, 0, 0, 0])}, sigma=3)
    np.testing.assert_array_equal(out["a"], np.zeros(5))  # nothing leaks from video b
    np.testing.assert_array_equal(smooth_scores(np.array([1.0, 5.0]), 0), [1.0, 5.0])
