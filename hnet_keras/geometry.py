"""Four-point homography geometry in numpy.

Convention (the one used everywhere in hnet_keras):

* Points are ``(x, y)`` pixel coordinates.
* Corners are ordered top-left, top-right, bottom-right, bottom-left. The
  corners of a ``size`` x ``size`` patch whose top-left pixel is ``(x, y)`` are
  ``(x, y), (x + size, y), (x + size, y + size), (x, y + size)``.
* ``offsets`` = perturbed corners - original corners, flattened as
  ``[x_tl, y_tl, x_tr, y_tr, x_br, y_br, x_bl, y_bl]``.
* The homography of a pair is ``H_ab = getPerspectiveTransform(perturbed,
  original)``. It maps a point of patch A to the point of patch B that shows
  the same content, so ``patch_b = cv2.warpPerspective(patch_a, H_ab, ...)``
  (up to what falls outside patch A). Equivalently, patch B's corner ``i``
  shows the image content found at perturbed corner ``i`` in patch A.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "patch_corners",
    "offsets_to_homography",
    "homography_to_offsets",
    "warp_points",
    "corner_errors",
    "mean_corner_error",
]


def patch_corners(size, origin=(0.0, 0.0)):
    """Corners of a square patch, shape (4, 2), float64, in the TL, TR, BR, BL order.

    Args:
        size: side of the patch in pixels (int), or a ``(width, height)`` pair.
        origin: ``(x, y)`` of the patch's top-left corner.
    """
    width, height = (size, size) if np.isscalar(size) else size
    x, y = origin
    return np.array(
        [[x, y], [x + width, y], [x + width, y + height], [x, y + height]],
        dtype=np.float64,
    )


def warp_points(homography, points):
    """Apply a homography to points.

    Args:
        homography: (3, 3) or (N, 3, 3).
        points: (..., 2) with the same leading N as ``homography`` when batched.

    Returns:
        float64 array of the shape of ``points``.
    """
    homography = np.asarray(homography, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1)
    if homography.ndim == 2:
        mapped = homogeneous @ homography.T
    else:
        mapped = np.einsum("nij,n...j->n...i", homography, homogeneous)
    return mapped[..., :2] / mapped[..., 2:3]


def offsets_to_homography(offsets, size=128, origin=(0.0, 0.0)):
    """Homography ``H_ab`` of a pair from its 4-point offsets.

    Args:
        offsets: (8,) or (N, 8) corner offsets in pixels, in the flattened
            ``[x_tl, y_tl, ..., x_bl, y_bl]`` order.
        size: side of the patch (or ``(width, height)``) the offsets refer to.
        origin: top-left corner of that patch; ``(0, 0)`` gives the homography
            in patch coordinates.

    Returns:
        (3, 3) or (N, 3, 3) float64: ``getPerspectiveTransform(original +
        offsets, original)``, which maps points of A to points of B.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.shape[-1] != 8:
        raise ValueError(f"offsets must have 8 values in their last axis, got shape {offsets.shape}")
    original = patch_corners(size, origin)
    batch = offsets.reshape(-1, 4, 2)
    matrices = np.stack(
        [
            cv2.getPerspectiveTransform((original + o).astype(np.float32), original.astype(np.float32))
            for o in batch
        ]
    )
    return matrices[0] if offsets.ndim == 1 else matrices


def homography_to_offsets(homography, size=128, origin=(0.0, 0.0)):
    """Inverse of :func:`offsets_to_homography`.

    Args:
        homography: (3, 3) or (N, 3, 3) ``H_ab``.
        size, origin: the patch the offsets refer to.

    Returns:
        (8,) or (N, 8) float64 offsets: the original corners mapped by
        ``inv(H_ab)``, minus the original corners.
    """
    homography = np.asarray(homography, dtype=np.float64)
    original = patch_corners(size, origin)
    inverse = np.linalg.inv(homography)
    if inverse.ndim == 2:
        return (warp_points(inverse, original) - original).reshape(8)
    corners = np.broadcast_to(original, (len(inverse), 4, 2))
    return (warp_points(inverse, corners) - original).reshape(-1, 8)


def corner_errors(offsets_true, offsets_pred):
    """Euclidean error of each corner in pixels.

    Args:
        offsets_true, offsets_pred: (..., 8) offsets in pixels.

    Returns:
        (..., 4) array: ``||pred_i - true_i||_2`` for the 4 corners.
    """
    difference = np.asarray(offsets_pred, np.float64) - np.asarray(offsets_true, np.float64)
    difference = difference.reshape(difference.shape[:-1] + (4, 2))
    return np.sqrt(np.sum(difference**2, axis=-1))


def mean_corner_error(offsets_true, offsets_pred):
    """MACE in pixels: the mean over corners (and samples) of :func:`corner_errors`."""
    return float(np.mean(corner_errors(offsets_true, offsets_pred)))
