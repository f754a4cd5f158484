"""Large motion for training pairs: rotation, zoom, viewpoint and translation, as real pairs move.

DeTone's recipe (:mod:`hnet_keras.data.synthesis`) moves each corner of the patch by at most
``rho`` pixels: about +-15 degrees of rotation and a mild zoom at rho 32 of 128. Photos that
users bring differ by far more. :func:`sample_motion` draws the homography of a camera that
turns, zooms, tilts and shifts, about the patch's centre ``c``::

    M = T(c + t) @ R(angle) @ S(scale) @ V(tilt) @ T(-c)

* ``V``: a camera rotation by ``tilt`` about an axis in the image plane (direction uniform),
  ``K R K^-1`` with a focal length of one patch side (a 53 degree field of view), re-centred
  so the patch centre stays put: the perspective of a viewpoint change;
* ``S``: a zoom, ``scale`` log-uniform in ``[min_scale, max_scale]`` (above 1, B shows a
  larger part of the image, shrunk: the camera moved back);
* ``R``: an in-plane rotation, ``angle`` uniform in ``[-max_rotation, max_rotation]`` degrees;
* ``T(t)``: a shift of up to ``translation`` patch sides on each axis.

Convention (as in :mod:`hnet_keras.geometry`): ``M`` maps the corners of patch A (its square
in the image) to the *perturbed* corners, the image quadrilateral that patch B shows, so the
pair's ``offsets`` are ``M(corners) - corners`` and ``H_ab = getPerspectiveTransform(perturbed,
original)``, exactly as for DeTone's pairs. The quadrilateral must lie inside the image: a draw
that cannot be placed is drawn again (up to :data:`TRIES` times, then its zoom is brought
towards 1 until it fits), so the largest zooms combined with the largest rotations are a little
rarer than uniform. Offsets are floats (the corners are not on the pixel grid). numpy and
OpenCV only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import patch_corners, warp_points
from .synthesis import Pair

__all__ = ["Motion", "LARGE_MOTION", "MOTIONS", "camera_tilt", "similarity", "sample_motion", "sample_moved_pair", "sample_moved_pairs"]

TRIES = 20
"""Draws of a motion tried before its zoom is brought towards 1 to fit the image."""


@dataclass(frozen=True)
class Motion:
    """Ranges of :func:`sample_motion`.

    Attributes:
        max_rotation: largest in-plane rotation, degrees.
        min_scale, max_scale: the zoom's range (log-uniform), ``0 < min_scale <= 1 <= max_scale``.
        max_tilt: largest viewpoint change (camera rotation about an axis in the image plane), degrees.
        translation: largest shift on each axis, in patch sides.
    """

    max_rotation: float = 45.0
    min_scale: float = 0.5
    max_scale: float = 2.0
    max_tilt: float = 50.0
    translation: float = 0.5

    def __post_init__(self):
        ranges = {  # name: (within its range, the range in words)
            "max_rotation": (0 <= self.max_rotation <= 180, "[0, 180]"),
            "min_scale": (0 < self.min_scale <= 1, "(0, 1]"),
            "max_scale": (1 <= self.max_scale < math.inf, "[1, inf)"),
            "max_tilt": (0 <= self.max_tilt < 80, "[0, 80)"),
            "translation": (0 <= self.translation <= 1, "[0, 1]"),
        }
        for name, (ok, words) in ranges.items():
            if not ok:
                raise ValueError(f"{name} must be in {words}, got {getattr(self, name)}")


LARGE_MOTION = Motion()
"""What real pairs do (issue 18): +-45 degrees, zoom 0.5-2, 50 degrees of viewpoint, half a patch of shift."""

MOTIONS = {"large": LARGE_MOTION}
"""Motions by name (a :class:`~hnet_keras.training.presets.Preset`'s ``motion``)."""


def camera_tilt(angle, direction, focal):
    """The homography of a viewpoint change, in coordinates centred on the image (or patch).

    ``K R K^-1`` of a camera turned by ``angle`` (radians) about the in-plane axis at angle
    ``direction``, with focal length ``focal`` (pixels), followed by the shift that brings the
    centre (the origin) back to itself.

    Returns:
        (3, 3) float64, mapping the origin to the origin.
    """
    axis = np.array([math.cos(direction), math.sin(direction), 0.0])
    rotation, _ = cv2.Rodrigues(axis * angle)
    k = np.diag([focal, focal, 1.0])
    homography = k @ rotation @ np.linalg.inv(k)
    centre = warp_points(homography, np.zeros((1, 2)))[0]
    return np.array([[1.0, 0.0, -centre[0]], [0.0, 1.0, -centre[1]], [0.0, 0.0, 1.0]]) @ homography


def sample_motion(rng, size, motion=LARGE_MOTION):
    """One random motion of a ``size`` px patch, about its centre.

    Args:
        rng: a ``numpy.random.Generator`` (seven draws).
        size: the patch side, pixels.
        motion: a :class:`Motion`.

    Returns:
        ``(M, scale)``: the (3, 3) homography in coordinates centred on the patch (the patch's
        corners are ``+-size / 2``), mapping A's corners to the quadrilateral B shows, and its zoom.
    """
    u = rng.random(7)
    angle = math.radians((2 * u[0] - 1) * motion.max_rotation)
    scale = math.exp(math.log(motion.min_scale) + u[1] * (math.log(motion.max_scale) - math.log(motion.min_scale)))
    tilt = camera_tilt(math.radians(u[2] * motion.max_tilt), 2 * math.pi * u[3], float(size))
    shift = (2 * u[4:6] - 1) * motion.translation * size
    return similarity(angle, scale, shift) @ tilt, scale


def similarity(angle, scale, shift=(0.0, 0.0)):
    """The (3, 3) rotation by ``angle`` (radians) and zoom by ``scale`` about the origin, then ``shift``."""
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[scale * cos, -scale * sin, shift[0]], [scale * sin, scale * cos, shift[1]], [0.0, 0.0, 1.0]])


def sample_moved_pair(image, rng, size=128, motion=LARGE_MOTION):
    """A pair of ``size`` px patches of a prepared image under a random :class:`Motion`.

    Patch A is a square of the image; patch B is the quadrilateral ``M(A's corners)`` stretched
    onto the square, where the quadrilateral lies inside the image (see the module's docstring).

    Args:
        image: (H, W) uint8.
        rng: a ``numpy.random.Generator``, the only source of randomness.
        size: the patch side.
        motion: a :class:`Motion`.

    Returns:
        A :class:`~hnet_keras.data.synthesis.Pair` with float64 ``offsets``.

    Raises:
        ValueError: the image is smaller than the patch.
    """
    height, width = image.shape
    if min(height, width) < size:
        raise ValueError(f"image {width}x{height} is smaller than the {size} px patch")
    half = size / 2.0
    centred = patch_corners(size) - half
    for attempt in range(TRIES + 8):
        homography, scale = sample_motion(rng, size, motion)
        if attempt >= TRIES:  # the largest zooms with the largest rotations: bring the zoom towards 1
            homography = _toward_identity(homography, scale, 0.75 ** (attempt - TRIES + 1))
        if attempt == TRIES + 7:
            homography = np.eye(3)  # at last: A's square itself, which always fits
        quad = warp_points(homography, centred)
        # The patch centre must keep A's square and B's quadrilateral inside the image.
        # A's top-left corner, on the pixel grid: from ``low`` to ``high`` inclusive.
        low = np.ceil(np.maximum(half, -quad.min(axis=0)) - half)
        high = np.floor(np.array([width, height]) - 1.0 - np.maximum(half - 1.0, quad.max(axis=0)) - half)
        if np.all(high >= low):
            break
    origin = low + np.floor(rng.random(2) * (high - low + 1))
    perturbed = (quad + origin + half).astype(np.float32)
    square = patch_corners(size).astype(np.float32)
    x, y = int(origin[0]), int(origin[1])
    patch_a = image[y : y + size, x : x + size].copy()
    to_image = cv2.getPerspectiveTransform(square, perturbed)
    patch_b = cv2.warpPerspective(image, to_image, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT_101)
    offsets = (perturbed.astype(np.float64) - (square + origin)).reshape(8)
    return Pair(patch_a, patch_b, offsets, (x, y))


def _toward_identity(homography, scale, shrink):
    """The motion zoomed about the patch centre so that its zoom's logarithm is scaled by ``shrink``
    (its shift shrinks with it; the rotation and tilt are kept)."""
    factor = math.exp(math.log(scale) * shrink) / scale
    return np.diag([factor, factor, 1.0]) @ homography


def sample_moved_pairs(prepared, sources, rng, size=128, motion=LARGE_MOTION):
    """Pair ``i`` from ``prepared[sources[i]]``, in order, from one ``rng``.

    Returns:
        ``(pairs, offsets)``: (N, size, size, 2) uint8 and (N, 8) float64.
    """
    pairs = np.empty((len(sources), size, size, 2), np.uint8)
    offsets = np.empty((len(sources), 8), np.float64)
    for i, source in enumerate(sources):
        pair = sample_moved_pair(prepared[source], rng, size, motion)
        pairs[i, :, :, 0], pairs[i, :, :, 1], offsets[i] = pair.patch_a, pair.patch_b, pair.offsets
    return pairs, offsets
