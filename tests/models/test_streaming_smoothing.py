"""Streaming smoothing: the centred smoother equals the offline one exactly; the causal one never looks ahead."""

from __future__ import annotations

import numpy as np
import pytest

from mulde_vad.models.smoothing import CausalSmoother, CentredSmoother, causal_smooth, kernel_radius, smooth_scores


def pushed(smoother, scores, sizes):
    out, start = [], 0
    for size in sizes:
        out.append(smoother.push(scores[start : start + size]))
        start += size
    return np.concatenate([*out, smoother.finish()])


@pytest.mark.parametrize("n", [1, 7, 40, 333])
@pytest.mark.parametrize("sigma", [0.0, 1.0, 3.0, 7.0])
def test_centred_smoother_equals_gaussian_filter_whatever_the_chunking(n, sigma):
    rng = np.random.default_rng(n)
    scores = rng.normal(size=n)
    sizes = rng.integers(1, 20, size=n)
    np.testing.assert_allclose(pushed(CentredSmoother(sigma), scores, sizes), smooth_scores(scores, sigma), atol=1e-12)


def test_centred_smoother_emits_each_frame_after_its_radius_and_holds_little():
    smoother = CentredSmoother(3.0)
    assert smoother.delay == kernel_radius(3.0) == 12
    assert len(smoother.push(np.zeros(12))) == 0 and len(smoother.push(np.zeros(5))) == 5
    smoother.push(np.zeros(1000))
    assert len(smoother._buffer) == 24  # r frames it still reads + r frames not yet emitted


def test_causal_smoother_known_answer_and_no_look_ahead():
    impulse = np.zeros(30)
    impulse[10] = 1.0
    out = causal_smooth(impulse, 2.0)
    weights = np.exp(-0.5 * (np.arange(9) / 2.0) ** 2)  # radius int(4·2 + 0.5) = 8
    assert np.all(out[:10] == 0)  # nothing before the impulse
    np.testing.assert_allclose(out[10:19], weights / weights.sum())
    assert np.all(out[19:] == 0)
    np.testing.assert_allclose(causal_smooth(np.full(20, 4.0), 3.0), 4.0)  # the start averages what exists
    stream = CausalSmoother(2.0)
    np.testing.assert_allclose(np.concatenate([stream.push(impulse[:13]), stream.push(impulse[13:])]), out)
