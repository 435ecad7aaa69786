"""Box filters shared by every detector: minimum area and AI-VAD's "cover" overlap removal (method.md §3.2)."""

from __future__ import annotations

import numpy as np


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """AI-VAD's pixel-inclusive area (x2 − x1 + 1)(y2 − y1 + 1) of xyxy boxes."""
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) pixel-inclusive intersection areas of two sets of xyxy boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1 + 1, 0, None) * np.clip(y2 - y1 + 1, 0, None)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union, with the same pixel-inclusive areas."""
    inter = intersections(a, b)
    return inter / (box_areas(a)[:, None] + box_areas(b)[None, :] - inter)


def match_boxes(a: np.ndarray, b: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (rows of ``a``, rows of ``b``) maximising total IoU, each pair with IoU ≥ ``min_iou``."""
    if not len(a) or not len(b):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    from scipy.optimize import linear_sum_assignment

    iou = pairwise_iou(a, b)
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] >= min_iou
    return rows[keep], cols[keep]


def remove_covered(boxes: np.ndarray, cover_threshold: float) -> np.ndarray:
    """Indices of the boxes to keep: a box goes when a *larger* box covers more than ``cover_threshold``
    of its own area. Vectorised over all pairs (a frame holds tens of boxes, not thousands)."""
    if len(boxes) < 2:
        return np.arange(len(boxes))
    areas = box_areas(boxes)
    inter = intersections(boxes, boxes)
    order = np.argsort(areas, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    larger = rank[None, :] > rank[:, None]  # [i, j]: box j is later in the ascending-area order than box i
    covered = ((inter / areas[:, None] > cover_threshold) & larger).any(axis=1)
    return np.flatnonzero(~covered)


def keep_min_area(boxes: np.ndarray, min_area: float) -> np.ndarray:
    """Indices of boxes whose area is at least ``min_area`` pixels."""
    return np.flatnonzero(box_areas(boxes) >= min_area)
