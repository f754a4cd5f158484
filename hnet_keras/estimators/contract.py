"""The estimator contract: what every homography method, classical or learned, promises.

A method is called on one pair, ``method(patch_a, patch_b)`` with two (P, P) uint8 patches, and
returns an :class:`Estimate`: the 8 corner ``offsets`` in pixels (the :mod:`hnet_keras.geometry`
convention, perturbed - original corners, from the estimated ``H_ab`` by
:func:`~hnet_keras.geometry.homography_to_offsets`), whether it ``failed``, the time in
milliseconds, and the failure's ``reason``.

A method never raises on a hard pair: inside, it raises :class:`EstimationFailed` with a reason
(too few keypoints, a singular or non-finite ``H``, ECC not converging ...), and the call falls
back to the identity (zero offsets), carrying the reason in the estimate. This is how DeTone et
al. score ORB + RANSAC too: a failed pair still counts in the mean corner error, with the
identity's error. The registry of methods is :mod:`hnet_keras.estimators.methods`.
"""

from __future__ import annotations

import copy
import time
from typing import NamedTuple

import cv2
import numpy as np

from ..features.matching import RANSAC_THRESHOLD, ransac_homography
from ..geometry import homography_to_offsets

__all__ = ["Estimate", "Estimates", "EstimationFailed", "Method", "check_homography", "check_pair",
           "matched_homography"]

MIN_ABS_DET = 1e-6
"""|det(H)| below this (H scaled so H[2, 2] = 1) is singular."""
MAX_CONDITION = 1e6
"""A condition number of H (in patch-normalized coordinates) above this is degenerate."""
MAX_OFFSET_FRACTION = 1.0
"""A corner offset larger than this fraction of the patch side is a degenerate fit."""


class Estimate(NamedTuple):
    """What a method returns for one pair.

    Attributes:
        offsets: (8,) float64 corner offsets in pixels (zeros when ``failed``).
        failed: the method failed and fell back (to the identity, or for ``network+ecc`` to the
            network's own estimate).
        ms: time the estimate took, in milliseconds.
        reason: why it failed (``None`` when it did not).
    """

    offsets: np.ndarray
    failed: bool
    ms: float
    reason: str | None = None


class Estimates(NamedTuple):
    """What a method returns for a batch of N pairs: (N, 8) ``offsets``, (N,) ``failed``,
    (N,) ``ms`` and the N failure ``reasons`` (``None`` where it did not fail)."""

    offsets: np.ndarray
    failed: np.ndarray
    ms: np.ndarray
    reasons: list


class EstimationFailed(Exception):
    """Raised inside a method (or the ECC refinement) when it cannot give a homography; ``reason``
    says why, and the call's :class:`Estimate` carries it."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def check_pair(patch_a, patch_b):
    """Two square uint8 patches of one size, contiguous; a ValueError otherwise."""
    patch_a, patch_b = np.asarray(patch_a), np.asarray(patch_b)
    if patch_a.ndim != 2 or patch_a.shape != patch_b.shape or patch_a.shape[0] != patch_a.shape[1]:
        raise ValueError(
            f"a pair is two square 2-D patches of one size, got shapes {patch_a.shape} and {patch_b.shape}"
        )
    if patch_a.dtype != np.uint8 or patch_b.dtype != np.uint8:
        raise ValueError(f"patches must be uint8, got {patch_a.dtype} and {patch_b.dtype}")
    return np.ascontiguousarray(patch_a), np.ascontiguousarray(patch_b)



def check_homography(homography, size, max_offset_fraction=MAX_OFFSET_FRACTION):
    """Validate an estimated homography; return it scaled so ``H[2, 2] = 1``.

    Args:
        homography: a (3, 3) array or ``None``.
        size: ``(width, height)`` of image A (or the side of a square patch); used to
            judge the condition number in normalized coordinates and the size of the
            corner displacements.

    Raises:
        EstimationFailed: ``None``, non-finite, singular (``|det| < MIN_ABS_DET``),
            ill-conditioned (``cond > MAX_CONDITION``), or mapping a corner of the
            image to infinity or more than ``max_offset_fraction`` of the image size away
            (in either direction, by ``H`` or its inverse).
    """
    if homography is None:
        raise EstimationFailed("no homography")
    h = np.asarray(homography, dtype=np.float64)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)):
        raise EstimationFailed("non-finite homography")
    if abs(h[2, 2]) < 1e-12:
        raise EstimationFailed("singular homography")
    h = h / h[2, 2]
    if abs(np.linalg.det(h)) < MIN_ABS_DET:
        raise EstimationFailed("singular homography")
    width, height = (size, size) if np.isscalar(size) else size
    scale = np.diag([float(width), float(height), 1.0])
    normalized = np.linalg.inv(scale) @ h @ scale
    condition = np.linalg.cond(normalized)
    if not np.isfinite(condition) or condition > MAX_CONDITION:
        raise EstimationFailed("ill-conditioned homography")
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    for matrix in (h, np.linalg.inv(h)):
        mapped = corners @ matrix.T
        if np.any(np.abs(mapped[:, 2]) < 1e-9):
            raise EstimationFailed("degenerate homography (a corner maps to infinity)")
        moved = mapped[:, :2] / mapped[:, 2:3] - corners[:, :2]
        if not np.all(np.isfinite(moved)) or np.any(np.abs(moved) > max_offset_fraction * np.array([width, height])):
            raise EstimationFailed("degenerate homography (a corner moves too far)")
    return h


class Method:
    """A homography estimator with the common interface.

    Subclasses implement :meth:`homography`, which raises :class:`EstimationFailed`
    when it cannot estimate. Calling the method on a pair of patches gives an
    :class:`Estimate` and never raises on a hard pair.

    Attributes:
        name: the registry name.
        description: a human-readable label for tables and plots.
    """

    def __init__(self, name, description):
        self.name = name
        self.description = description

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}: {self.description}>"

    def homography(self, image_a, image_b):
        """``H_ab`` for two grayscale uint8 images (A -> B); raises :class:`EstimationFailed`."""
        raise NotImplementedError

    def fresh(self):
        """A copy of this method with its own working state (detectors, matchers)."""
        return copy.copy(self)

    def offsets(self, patch_a, patch_b):
        """The (8,) corner offsets of a checked pair; raises :class:`EstimationFailed`."""
        size = patch_a.shape[0]
        offsets = homography_to_offsets(check_homography(self.homography(patch_a, patch_b), size), size=size)
        if not np.all(np.isfinite(offsets)):
            raise EstimationFailed("non-finite offsets")
        return offsets

    @staticmethod
    def attempt(estimate, fallback):
        """``(estimate(), None)``, or ``(fallback, reason)`` when it fails."""
        try:
            return estimate(), None
        except EstimationFailed as failure:
            return fallback, failure.reason
        except (cv2.error, np.linalg.LinAlgError) as error:
            return fallback, type(error).__name__

    def __call__(self, patch_a, patch_b):
        """The :class:`Estimate` for one pair of (P, P) uint8 patches; a failure gives zero offsets."""
        patch_a, patch_b = check_pair(patch_a, patch_b)
        start = time.perf_counter()
        offsets, reason = self.attempt(lambda: self.offsets(patch_a, patch_b), np.zeros(8))
        ms = (time.perf_counter() - start) * 1000.0
        return Estimate(np.asarray(offsets, np.float64), reason is not None, ms, reason)

    def estimate_batch(self, pairs, progress=None):
        """:class:`Estimates` for (N, P, P, 2) uint8 pairs.

        Args:
            progress: an optional callable called with the number of pairs just done.
        """
        pairs = np.asarray(pairs)
        offsets = np.zeros((len(pairs), 8))
        failed = np.zeros(len(pairs), bool)
        ms = np.zeros(len(pairs))
        reasons = [None] * len(pairs)
        for i, pair in enumerate(pairs):
            offsets[i], failed[i], ms[i], reasons[i] = self(pair[..., 0], pair[..., 1])
            if progress is not None:
                progress(1)
        return Estimates(offsets, failed, ms, reasons)


def matched_homography(points_a, points_b, matches, min_matches, min_inliers, threshold=RANSAC_THRESHOLD):
    """``H_ab`` by RANSAC from matched keypoints, or :class:`EstimationFailed` with the reason.

    Args:
        points_a, points_b: (Na, 2) and (Nb, 2) keypoints (x, y) of images A and B.
        matches: (M, 2) int indices ``(i_a, i_b)`` of matched keypoints.
        min_matches, min_inliers: fewer matches, or RANSAC inliers, than these is a failure.
        threshold: the largest reprojection error (px) of an inlier.
    """
    matches = np.asarray(matches)
    if len(matches) < min_matches:
        raise EstimationFailed("too few matches")
    h, inliers = ransac_homography(points_a[matches[:, 0]], points_b[matches[:, 1]], threshold)
    if h is None:
        raise EstimationFailed("no homography")
    if int(inliers.sum()) < min_inliers:
        raise EstimationFailed("too few inliers")
    return h
