"""Matching learned descriptors and fitting a homography to the matches (numpy and OpenCV).

Descriptors are rows of L2-normalised vectors, so the squared distance of two of them is
``2 - 2 * a . b`` and the nearest neighbour is the largest dot product. Points are ``(x, y)``
pixels; the fitted ``H_ab`` maps points of image A to image B.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["normalise_descriptors", "mutual_nearest_neighbours", "ransac_homography", "RANSAC_THRESHOLD"]

RANSAC_THRESHOLD = 3.0
"""Largest reprojection error (px) of a RANSAC inlier (the SuperPoint evaluation's)."""


def normalise_descriptors(descriptors):
    """(N, D) float32 rows scaled to unit L2 norm (zero rows stay zero)."""
    descriptors = np.asarray(descriptors, np.float32)
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must be (N, D), got shape {descriptors.shape}")
    norms = np.linalg.norm(descriptors, axis=1, keepdims=True)
    return descriptors / np.maximum(norms, 1e-12)


def mutual_nearest_neighbours(descriptors_a, descriptors_b, max_distance=None):
    """Pairs ``(i, j)`` where B's row j is A's row i's nearest neighbour and the other way round.

    Args:
        descriptors_a: (N, D) descriptors of A (normalised here).
        descriptors_b: (M, D) descriptors of B, same D.
        max_distance: drop matches whose L2 distance exceeds this (``None``: keep all).

    Returns:
        ``(matches (K, 2) int64, distances (K,) float32)``, sorted by ``i``.
    """
    a, b = normalise_descriptors(descriptors_a), normalise_descriptors(descriptors_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"descriptors of different lengths: {a.shape[1]} and {b.shape[1]}")
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    similarity = a @ b.T
    forward = np.argmax(similarity, axis=1)
    backward = np.argmax(similarity, axis=0)
    rows = np.flatnonzero(backward[forward] == np.arange(len(a)))
    columns = forward[rows]
    distances = np.sqrt(np.maximum(2.0 - 2.0 * similarity[rows, columns], 0.0)).astype(np.float32)
    if max_distance is not None:
        keep = distances <= max_distance
        rows, columns, distances = rows[keep], columns[keep], distances[keep]
    return np.stack([rows, columns], axis=1).astype(np.int64), distances


def ransac_homography(points_a, points_b, threshold=RANSAC_THRESHOLD, max_iterations=2000, confidence=0.995, seed=0):
    """``H_ab`` fitted to matched points with ``cv2.findHomography`` and RANSAC.

    Args:
        points_a, points_b: (K, 2) matched points of A and B.
        threshold: inlier reprojection error, pixels.
        seed: seeds OpenCV's RNG, so the same matches give the same fit.

    Returns:
        ``(H (3, 3) float64 or None, inliers (K,) bool)``; ``None`` with fewer than 4 matches
        or when RANSAC finds no model.
    """
    points_a = np.asarray(points_a, np.float32).reshape(-1, 2)
    points_b = np.asarray(points_b, np.float32).reshape(-1, 2)
    if len(points_a) != len(points_b):
        raise ValueError(f"{len(points_a)} points in A but {len(points_b)} in B")
    if len(points_a) < 4:
        return None, np.zeros(len(points_a), bool)
    cv2.setRNGSeed(int(seed))
    h, mask = cv2.findHomography(points_a, points_b, cv2.RANSAC, threshold, maxIters=max_iterations,
                                 confidence=confidence)
    if h is None:
        return None, np.zeros(len(points_a), bool)
    return h / h[2, 2], mask.ravel().astype(bool)
