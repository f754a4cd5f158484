"""Random homographies for keypoint learning: the sampler of SuperPoint's reference, in numpy.

Convention (as everywhere in hnet_keras): points are ``(x, y)`` pixels, and a homography
``H_ab`` maps a point of image A to the point of warped image B that shows the same content,
so ``B = cv2.warpPerspective(A, H_ab, (width, height))`` (:func:`warp_image`).

The sampler follows the recipe of DeTone et al. (2018) as implemented by its public
TensorFlow reproduction: start from a centred patch of image A covering ``patch_ratio`` of
each side, move its corners (perspective), scale it about its centre, translate it and
rotate it, each move drawn among candidates that keep the patch inside the image (unless
``allow_artifacts``). Image B is that patch stretched onto the whole image, so ``H_ab`` maps
the patch's corners to B's corners. Every draw comes from a seeded ``numpy`` generator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import warp_points

__all__ = [
    "HomographyConfig",
    "SHAPES_HOMOGRAPHY",
    "ADAPTATION_HOMOGRAPHY",
    "PAIRS_HOMOGRAPHY",
    "sample_homography",
    "sample_homographies",
    "warp_points",
    "warp_image",
    "inside",
    "valid_mask",
    "warp_keypoints",
]


@dataclass(frozen=True)
class HomographyConfig:
    """Parameters of :func:`sample_homography` (amplitudes are fractions of the image side).

    Attributes:
        perspective, scaling, rotation, translation: switch each move on or off.
        n_scales: candidate scales drawn (plus 1.0); one that keeps the patch inside is picked.
        n_angles: candidate angles, evenly spaced in ``[-max_angle, max_angle]`` (plus 0).
        scaling_amplitude: scales are ``1 + N(0, scaling_amplitude / 2)`` truncated at 2 sigma.
        perspective_amplitude_x, perspective_amplitude_y: the corners' perspective moves are
            ``N(0, amplitude / 2)`` truncated at 2 sigma.
        patch_ratio: side of the initial centred patch, as a fraction of the image's.
        max_angle: largest rotation, radians.
        allow_artifacts: let the patch leave the image (B then shows black borders).
        translation_overflow: with artifacts, how far (fraction) the translation may go beyond.
    """

    perspective: bool = True
    scaling: bool = True
    rotation: bool = True
    translation: bool = True
    n_scales: int = 5
    n_angles: int = 25
    scaling_amplitude: float = 0.1
    perspective_amplitude_x: float = 0.1
    perspective_amplitude_y: float = 0.1
    patch_ratio: float = 0.5
    max_angle: float = math.pi / 2
    allow_artifacts: bool = False
    translation_overflow: float = 0.0

    def __post_init__(self):
        if not 0 < self.patch_ratio <= 1:
            raise ValueError(f"patch_ratio must be in (0, 1], got {self.patch_ratio}")
        if self.n_scales < 1 or self.n_angles < 1:
            raise ValueError(f"n_scales and n_angles must be >= 1, got {self.n_scales} and {self.n_angles}")
        for name in ("scaling_amplitude", "perspective_amplitude_x", "perspective_amplitude_y", "max_angle",
                     "translation_overflow"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def replace(self, **changes):
        """A copy with fields replaced."""
        return dataclasses.replace(self, **changes)


SHAPES_HOMOGRAPHY = HomographyConfig(scaling_amplitude=0.2, perspective_amplitude_x=0.2, perspective_amplitude_y=0.2,
                                     patch_ratio=0.8, max_angle=1.57, allow_artifacts=True, translation_overflow=0.05)
"""The homographic augmentation of synthetic shapes in the reference."""

ADAPTATION_HOMOGRAPHY = HomographyConfig(scaling_amplitude=0.2, perspective_amplitude_x=0.2,
                                         perspective_amplitude_y=0.2, patch_ratio=0.85, max_angle=1.57,
                                         allow_artifacts=True)
"""The homographies of homographic adaptation in the reference (its MS-COCO export)."""

PAIRS_HOMOGRAPHY = HomographyConfig(scaling_amplitude=0.2, perspective_amplitude_x=0.2, perspective_amplitude_y=0.2,
                                    patch_ratio=0.85, max_angle=math.pi / 4, allow_artifacts=True)
"""Warped training pairs of SuperPoint with descriptors."""


def _truncated_normal(rng, sigma, size=None):
    """``N(0, sigma)`` redrawn outside 2 sigma."""
    values = rng.normal(0.0, sigma, size)
    if sigma <= 0:
        return values * 0.0
    values = np.atleast_1d(values)
    while np.any(bad := np.abs(values) > 2 * sigma):
        values[bad] = rng.normal(0.0, sigma, int(bad.sum()))
    return values if size is not None else float(values[0])


def _inside(corners):
    """Which candidate patches (K, 4, 2), in unit coordinates, lie inside ``[0, 1)``."""
    return np.all((corners >= 0.0) & (corners < 1.0), axis=(1, 2))


def sample_homography(size, rng, config=HomographyConfig()):
    """One random ``H_ab`` for an image of ``size = (width, height)``.

    Args:
        size: ``(width, height)`` of image A (B has the same size).
        rng: a ``numpy.random.Generator`` (or an int seed).
        config: a :class:`HomographyConfig`.

    Returns:
        (3, 3) float64 ``H_ab``, normalised so ``H[2, 2] = 1``, mapping A's points to B's.
    """
    rng = np.random.default_rng(rng)
    c = config
    margin = (1.0 - c.patch_ratio) / 2.0
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)  # B's corners, TL TR BR BL
    patch = margin + c.patch_ratio * unit  # where they come from in A
    if c.perspective:
        amp_x, amp_y = c.perspective_amplitude_x, c.perspective_amplitude_y
        if not c.allow_artifacts:
            amp_x, amp_y = min(amp_x, margin), min(amp_y, margin)
        tilt = _truncated_normal(rng, amp_y / 2)
        left, right = _truncated_normal(rng, amp_x / 2), _truncated_normal(rng, amp_x / 2)
        # the left side moves by `left` in x, the right by `right`; top and bottom open or close by `tilt`
        patch = patch + np.array([[left, tilt], [right, tilt], [right, -tilt], [left, -tilt]])
    if c.scaling:
        scales = np.concatenate([[1.0], 1.0 + _truncated_normal(rng, c.scaling_amplitude / 2, c.n_scales)])
        centre = patch.mean(axis=0)
        candidates = (patch - centre)[None] * scales[:, None, None] + centre
        valid = np.arange(1, len(scales)) if c.allow_artifacts else np.flatnonzero(_inside(candidates))
        patch = candidates[rng.choice(valid) if len(valid) else 0]
    if c.translation:
        low, high = patch.min(axis=0), (1.0 - patch).min(axis=0)
        if c.allow_artifacts:
            low, high = low + c.translation_overflow, high + c.translation_overflow
        # uniform in [-low, high] (a patch larger than the image, with artifacts, swaps the ends)
        patch = patch - low + rng.random(2) * (high + low)
    if c.rotation:
        angles = np.concatenate([[0.0], np.linspace(-c.max_angle, c.max_angle, c.n_angles)])
        centre = patch.mean(axis=0)
        cos, sin = np.cos(angles), np.sin(angles)
        rotations = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (K, 2, 2)
        candidates = np.einsum("kij,nj->kni", rotations, patch - centre) + centre
        valid = np.arange(1, len(angles)) if c.allow_artifacts else np.flatnonzero(_inside(candidates))
        patch = candidates[rng.choice(valid) if len(valid) else 0]
    width, height = size
    scale = np.array([width, height], np.float64)
    h_ab = cv2.getPerspectiveTransform((patch * scale).astype(np.float32), (unit * scale).astype(np.float32))
    return h_ab / h_ab[2, 2]


def sample_homographies(count, size, seed=0, config=HomographyConfig()):
    """``count`` random ``H_ab`` from one seed: (count, 3, 3) float64 (see :func:`sample_homography`)."""
    rng = np.random.default_rng(seed)
    return np.stack([sample_homography(size, rng, config) for _ in range(count)]) if count else np.zeros((0, 3, 3))


def warp_image(image, homography, size=None, interpolation=cv2.INTER_LINEAR):
    """Image B of image A: ``cv2.warpPerspective(image, H_ab, size)``, black outside.

    Args:
        image: (H, W) or (H, W, C) array.
        homography: (3, 3) ``H_ab``.
        size: ``(width, height)`` of B (default A's).
    """
    size = size or (image.shape[1], image.shape[0])
    return cv2.warpPerspective(image, np.asarray(homography, np.float64), tuple(int(s) for s in size),
                               flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def inside(points, size, margin=0.0):
    """(N,) bool: points (N, 2) lying in ``[margin, width - 1 - margin] x [margin, height - 1 - margin]``."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    width, height = size
    return ((points[:, 0] >= margin) & (points[:, 0] <= width - 1 - margin)
            & (points[:, 1] >= margin) & (points[:, 1] <= height - 1 - margin))


def valid_mask(size, homography, erosion=0, size_b=None):
    """(H_b, W_b) bool: the pixels of B that see image A (not the black border of the warp).

    Args:
        size: ``(width, height)`` of A.
        homography: (3, 3) ``H_ab``.
        erosion: pixels dropped along the border of the valid region (a disc of this radius).
        size_b: ``(width, height)`` of B (default ``size``).
    """
    ones = np.ones((size[1], size[0]), np.uint8)
    mask = warp_image(ones, homography, size_b or size, interpolation=cv2.INTER_NEAREST)
    if erosion > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erosion + 1, 2 * erosion + 1))
        mask = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask.astype(bool)


def warp_keypoints(points, homography, size_b):
    """Points of A (N, 2) in B: ``(warped (M, 2), kept (N,) bool)``, those falling inside B."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    warped = warp_points(homography, points) if len(points) else points.copy()
    kept = inside(warped, size_b) & np.all(np.isfinite(warped), axis=1)
    return warped[kept], kept
