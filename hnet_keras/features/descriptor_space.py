"""The descriptor space: dense descriptors at several scales of each image, matched over scale pairs.

A learned dense descriptor is not scale invariant: it describes a neighbourhood of a fixed size
in pixels. When one view is zoomed, the same point is described from neighbourhoods of
different content. :class:`DescriptorSpace` describes each image at a pyramid of
:attr:`~DescriptorSpace.scales` (the image resized by each factor, then the base method's dense
map, mapped back to image coordinates) and two points' similarity is the best over the scale
pairs ``(s_a, s_b)`` (:func:`hnet_keras.features.pck.best_similarity`); the winning pair is
reported per match. With downscaling only (the default, ``1, 1/sqrt 2, 1/2``) on both sides,
the relative scales ``s_a / s_b`` cover 1/2 .. 2.

With ``angles`` (degrees, e.g. :data:`ROTATION_ANGLES`) the space is over scales *and*
rotations: each image is also rotated about its centre by each angle (on a canvas holding all of
it), resized by each scale and described there; each map carries its image -> map-input
transform (:attr:`~hnet_keras.features.pck.DenseMap.transform`) so its cells are still points
of the original image, and two points' similarity is the best over the (scale, angle) map
pairs. The default ``angles=(0.0,)`` gives exactly the scale space's maps.

The cost: more candidates per point, so more chances to match the wrong one when both views
have the same scale. :func:`zoom_pairs` makes pairs with a known zoom to measure when the space
pays (see ``experiments/13_descriptors.py``).
"""

from __future__ import annotations

import math
from collections import Counter

import cv2
import numpy as np

from .pck import Describer, DescriptorPair, _resize

__all__ = ["DEFAULT_SCALES", "ROTATION_ANGLES", "DescriptorSpace", "rotation_canvas", "zoom_pairs", "zoom_homography", "scale_pairs_used"]

DEFAULT_SCALES = (1.0, 1 / math.sqrt(2), 0.5)
"""Scales of the pyramid of each image."""


ROTATION_ANGLES = (-30.0, 0.0, 30.0)
"""Angles (degrees) of the space over scales and rotations: each image is described rotated by
each, on both sides, so the relative rotations tried are -60, -30, 0, 30 and 60 degrees (any
rotation up to 75 degrees is within 15 of one; the learned descriptors hold up to about 15-20).

Measured (``experiments/13_descriptor_classes.py --pairs 32 --methods learned learned_space
learned_space_rotations --out experiments/results/13_descriptor_classes_rotations.json``, see
checkpoints/dense_descriptors/README.md), learned descriptors, seed protocol PCK@3 over the
whole-image benchmark's first 32 pairs of each class, mean +- SE over pairs: on zoom + rotation
(rotations up to 60 degrees, zoom 0.5-2x) 0.922 +- 0.016 with scales and these rotations against
0.503 +- 0.072 single scale (paired +0.420 +- 0.071, better on 24 of 32; 0.486 for the scales
alone); at 45-60 degrees 0.926 against 0.025. On same-orientation pairs: viewpoint 0.902 against
0.827 (+0.075 +- 0.021), illumination 0.897 against 0.906 (-0.009 +- 0.004, the cost of 81 map
pairs). Describing both images of a 640x480 pair takes 1.6 s against 0.20 s single scale and
0.36 s for the scales alone (the loaded 2-core machine).

Why both sides rather than only B's: the same five relative rotations from B alone need five
angles (-60 .. 60), so both cost six descriptions of an image per pair (3 + 3 against 1 + 5, times
the scales); rotating both compares 9 angle pairs against 5 (relative 0 is tried three times),
but keeps the space symmetric (a describer does not know which image is A) like its scales.
"""


def rotation_canvas(size, angle):
    """``(M (2, 3), (width, height))``: image points -> the image rotated by ``angle`` degrees about its
    centre (counter-clockwise as displayed, ``cv2.getRotationMatrix2D``'s sense) on a canvas just
    large enough to hold all of it."""
    width, height = size
    centre = ((width - 1) / 2, (height - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, float(angle), 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    canvas = (math.ceil(width * cos + height * sin - 1e-9), math.ceil(width * sin + height * cos - 1e-9))
    matrix[0, 2] += (canvas[0] - 1) / 2 - centre[0]
    matrix[1, 2] += (canvas[1] - 1) / 2 - centre[1]
    return matrix, canvas


class DescriptorSpace(Describer):
    """A dense :class:`~hnet_keras.features.pck.Describer` (``base``) at several image scales and rotations.

    Its :meth:`maps` are ``base``'s dense maps of the image rotated by each of ``angles``
    (degrees, about its centre, on a canvas holding all of it) and resized by each of
    ``scales``, in the image's coordinates (angle-major: map ``k`` is ``transforms[k]``);
    :meth:`at` gives (S * A, N, D) descriptors, one row per map. Two points' similarity is the
    best over the map pairs. With ``angles=(0.0,)`` (the default) the maps are exactly the
    scale space's (``Describer.maps``); :data:`ROTATION_ANGLES` adds rotations.
    """

    def __init__(self, base, scales=DEFAULT_SCALES, angles=(0.0,), name=None):
        scales = tuple(float(s) for s in scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales}")
        angles = tuple(float(a) for a in angles)
        if not angles or not all(math.isfinite(a) for a in angles):
            raise ValueError(f"angles must be finite numbers (degrees), got {angles}")
        self.base, self.scales, self.angles = base, scales, angles
        self.transforms = [(s, a) for a in angles for s in scales]
        self.name = name or f"{base.name}_space"

    def dense(self, image):
        return self.base.dense(image)

    @property
    def labels(self):
        """One label per map: ``"0.71"`` (a scale) without rotations, else ``"0.71@30"`` (scale @ degrees)."""
        if self.angles == (0.0,):
            return [f"{s:.2g}" for s in self.scales]
        return [f"{s:.2g}@{a:g}" for s, a in self.transforms]

    def maps(self, image):
        if self.angles == (0.0,):
            return super().maps(image)
        out = []
        for angle in self.angles:
            if angle == 0:
                out.extend(super().maps(image))
                continue
            rotation, canvas = rotation_canvas((image.shape[1], image.shape[0]), angle)
            rotated = cv2.warpAffine(image, rotation, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=0)
            for scale in self.scales:
                size = (max(16, round(canvas[0] * scale)), max(16, round(canvas[1] * scale)))
                dense = self.base.dense(_resize(rotated, size))
                resize = np.diag([size[0] / canvas[0], size[1] / canvas[1]])
                dense.transform = np.hstack([resize @ rotation[:, :2], resize @ rotation[:, 2:]])
                dense.scale = size[0] / canvas[0]
                out.append(dense)
        return out


def zoom_homography(size, zoom, angle=0.0, centre=None):
    """``H_ab`` of a view B zoomed by ``zoom`` about ``centre`` of A and rotated by ``angle`` degrees.

    B has A's ``size = (width, height)``; A's point ``centre`` (default A's centre) lands at B's centre.
    """
    width, height = size
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    theta = math.radians(angle)
    cos, sin = zoom * math.cos(theta), zoom * math.sin(theta)
    return np.array([[cos, -sin, width / 2 - cos * cx + sin * cy],
                     [sin, cos, height / 2 - sin * cx - cos * cy],
                     [0.0, 0.0, 1.0]])


def zoom_pairs(images, zooms=(1.5, 2.0, 2.5), angle=10.0, seed=0, name="zoom"):
    """Pairs ``(image, image zoomed)`` with their homographies, kind ``"zoom"``.

    Each image makes one pair per zoom: B is A zoomed by the factor about a point drawn in A's
    middle half, rotated by an angle uniform in ``[-angle, angle]`` degrees.

    Args:
        images: (H, W) uint8 grayscale images.
        zooms: zoom factors (> 0; above 1 B shows a part of A enlarged).
        seed: seeds the centres and angles.
    """
    rng = np.random.default_rng(seed)
    pairs = []
    for index, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 2 or image.dtype != np.uint8:
            raise ValueError(f"zoom_pairs: image {index} must be grayscale uint8, got {image.dtype} {image.shape}")
        height, width = image.shape
        for zoom in zooms:
            if not zoom > 0:
                raise ValueError(f"zoom factors must be > 0, got {zoom}")
            centre = (width * rng.uniform(0.25, 0.75), height * rng.uniform(0.25, 0.75))
            homography = zoom_homography((width, height), zoom, rng.uniform(-angle, angle), centre)
            warped = cv2.warpPerspective(image, homography, (width, height), flags=cv2.INTER_LINEAR)
            pairs.append(DescriptorPair(f"{name}_{index}/x{zoom:g}", image, warped, homography, "zoom"))
    return pairs


def scale_pairs_used(results, scales, correct_within=3.0):
    """How often each map pair won, over the ``seed``-protocol matches of ``results``.

    Args:
        results: a list of :class:`~hnet_keras.features.pck.PairResult` (one method's).
        scales: the method's scales (numbers), or a :class:`DescriptorSpace` (its :attr:`~DescriptorSpace.labels`:
            ``scale@angle`` when it has rotations), or one label per map.
        correct_within: count only matches within this many pixels (``None``: all).

    Returns:
        ``{"1->0.5": count, ...}`` (``s_a->s_b``; ``"1@-30->0.5@30"`` with rotations), most frequent first.
    """
    if isinstance(scales, DescriptorSpace):
        labels = scales.labels
    else:
        labels = [s if isinstance(s, str) else f"{s:.2g}" for s in scales]
    counts = Counter()
    for row in results:
        keep = np.ones(len(row.seed_errors), bool) if correct_within is None else row.seed_errors <= correct_within
        for s, t in row.scales[keep]:
            counts[f"{labels[s]}->{labels[t]}"] += 1
    return dict(counts.most_common())
