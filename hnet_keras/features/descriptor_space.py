"""The descriptor space: dense descriptors at several scales of each image, matched over scale pairs.

A learned dense descriptor is not scale invariant: it describes a neighbourhood of a fixed size
in pixels. When one view is zoomed, the same point is described from neighbourhoods of
different content. :class:`DescriptorSpace` describes each image at a pyramid of
:attr:`~DescriptorSpace.scales` (the image resized by each factor, then the base method's dense
map, mapped back to image coordinates) and two points' similarity is the best over the scale
pairs ``(s_a, s_b)`` (:func:`hnet_keras.features.pck.best_similarity`); the winning pair is
reported per match. With downscaling only (the default, ``1, 1/sqrt 2, 1/2``) on both sides,
the relative scales ``s_a / s_b`` cover 1/2 .. 2.

The cost: more candidates per point, so more chances to match the wrong one when both views
have the same scale. :func:`zoom_pairs` makes pairs with a known zoom to measure when the space
pays (see ``experiments/13_descriptors.py``).
"""

from __future__ import annotations

import math
from collections import Counter

import cv2
import numpy as np

from .pck import DescriptorPair, Describer

__all__ = ["DEFAULT_SCALES", "DescriptorSpace", "zoom_pairs", "zoom_homography", "scale_pairs_used"]

DEFAULT_SCALES = (1.0, 1 / math.sqrt(2), 0.5)
"""Scales of the pyramid of each image."""


class DescriptorSpace(Describer):
    """A dense :class:`~hnet_keras.features.pck.Describer` (``base``) at several image scales.

    Its :meth:`maps` are ``base``'s dense maps of the image resized by each of ``scales``, in
    the image's coordinates; :meth:`at` gives (S, N, D) descriptors, one row per scale.
    """

    def __init__(self, base, scales=DEFAULT_SCALES, name=None):
        scales = tuple(float(s) for s in scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales}")
        self.base, self.scales = base, scales
        self.name = name or f"{base.name}_space"

    def dense(self, image):
        return self.base.dense(image)


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
    """How often each scale pair won, over the ``seed``-protocol matches of ``results``.

    Args:
        results: a list of :class:`~hnet_keras.features.pck.PairResult` (one method's).
        scales: the method's scales.
        correct_within: count only matches within this many pixels (``None``: all).

    Returns:
        ``{"1->0.5": count, ...}`` (``s_a->s_b``), most frequent first.
    """
    counts = Counter()
    for row in results:
        keep = np.ones(len(row.seed_errors), bool) if correct_within is None else row.seed_errors <= correct_within
        for s, t in row.scales[keep]:
            counts[f"{scales[s]:.2g}->{scales[t]:.2g}"] += 1
    return dict(counts.most_common())
