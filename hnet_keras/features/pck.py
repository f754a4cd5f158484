"""PCK of dense descriptors on image pairs with known homographies, under three protocols.

A pair is image A, image B and the true ``H_ab`` (A's points to B's). Both images are first
resized to a long side of :data:`LONG_SIDE` (640) px, ``H`` composed with the scalings. Every
method is a :class:`Describer`: it turns an image into one or more :class:`DenseMap` (one per
scale; several for the descriptor space, :mod:`hnet_keras.features.descriptor_space`, one per
scale and rotation there: a map carries its image -> map-input ``transform``) and gives
descriptors at any point. Descriptors are compared by dot product of unit vectors; with several
maps, two points' similarity is the best over the map pairs (scale pairs, or (scale, angle) pairs).

Protocols (the thresholds are :data:`PCK_THRESHOLDS`, 1, 3 and 5 px, in the 640-px frame of B):

* ``seed``, the protocol of the dense-descriptor study this project started from: up to
  :data:`POINTS` (1000) points drawn at random among the pixels of A whose Harris response is in
  the top 10 % *of the common region* (pixels whose warp lands inside B); each is matched by
  nearest neighbour **only among the descriptors at the warped points** ``H p`` in B. A point is
  correct at ``t`` px when the target it picked lies within ``t`` px of its own warp. (The
  study's evaluator reports this at 3 px under the name PCK@5.) Easy: 1000 candidates.
* ``dense``, harder: the same points, matched by nearest neighbour over the **whole dense map
  of B** (every cell of every scale inside B), then refined around the winning cell with
  descriptors interpolated from its map: a quarter-cell grid within one cell spacing, then a
  1-px grid around the best of those; correct when the refined position lies within ``t`` px
  of ``H p``.
* ``homography``: up to 1000 Harris corners detected in A and in B independently
  (``cv2.goodFeaturesToTrack``), described, matched by mutual nearest neighbours, ``H_ab``
  fitted by RANSAC (3 px); a pair is correct at ``t`` px when the mean distance of A's four
  corners under the estimate and under the truth is at most ``t`` (HPatches' homography
  accuracy). A pair without 4 matches or a RANSAC model counts as wrong.

A method's PCK is the mean over pairs of each pair's fraction of correct points; results are
split by the kind of the sequence when its name says it (``v_*`` viewpoint, ``i_*``
illumination). Baselines use the same code: DAISY (:class:`DaisyDescriptors`, skimage) and SIFT
(:class:`SiftDescriptors`, OpenCV: upright descriptors computed *at the given points* in the
``seed`` protocol, and its dense map on a 4-px grid for the ``dense`` one).

This module reads no folders: the caller passes :class:`DescriptorPair` objects (the
``evaluate-descriptors`` command reads HPatches/Oxford folders with
:func:`hnet_keras.scoring.real_pairs.load_real_pairs`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.feature import daisy
from tqdm.auto import tqdm

from ..geometry import patch_corners, warp_points
from .descriptors import CELL_CENTRE, STRIDE, describe_image
from .homographies import inside
from .matching import normalise_descriptors, ransac_homography
from .superpoint import descriptor_map

__all__ = [
    "PCK_THRESHOLDS",
    "LONG_SIDE",
    "POINTS",
    "PROTOCOLS",
    "DescriptorPair",
    "sequence_kind",
    "DenseMap",
    "Describer",
    "LearnedDescriptors",
    "SuperPointDescriptors",
    "DaisyDescriptors",
    "SiftDescriptors",
    "resize_pair",
    "common_harris_points",
    "harris_corners",
    "corners_error",
    "best_similarity",
    "mutual_matches",
    "seed_protocol",
    "dense_protocol",
    "homography_protocol",
    "evaluate_pck",
    "pck_table",
]

PCK_THRESHOLDS = (1, 3, 5)
"""Pixels (in the 640-px frame) within which a match counts as correct."""
LONG_SIDE = 640
"""Both images of a pair are resized to this longer side first."""
POINTS = 1000
"""Points drawn per pair."""
HARRIS_QUANTILE = 0.9
"""Points come from the pixels above this quantile of the Harris response (the top 10 %)."""
PROTOCOLS = ("seed", "dense", "homography")


@dataclass
class DescriptorPair:
    """Two grayscale uint8 images and the true ``homography`` (3, 3) mapping A's points to B's.

    ``kind`` is ``"viewpoint"``, ``"illumination"``, ``"zoom"`` or ``"other"`` (see :func:`sequence_kind`).
    """

    name: str
    image_a: np.ndarray
    image_b: np.ndarray
    homography: np.ndarray
    kind: str = "other"


def sequence_kind(name):
    """``"viewpoint"`` for a name starting ``v_`` (HPatches), ``"illumination"`` for ``i_``, ``"zoom"`` for
    ``z_`` (the zoom sequences of ``experiments/13_descriptors.py``), else ``"other"``."""
    base = str(name).replace("\\", "/").split("/")[0]
    return {"v_": "viewpoint", "i_": "illumination", "z_": "zoom"}.get(base[:2], "other")


@dataclass
class DenseMap:
    """A map of descriptors over an image.

    Cell ``(i, j)`` of ``descriptors`` (h, w, D) describes the pixel point
    ``((offset + stride * j) / scale, (offset + stride * i) / scale)`` of the image: the map
    was computed on the image resized by ``scale`` with cell centres ``offset + stride * k``.

    With ``transform`` (a (2, 3) or (3, 3) affine map from the image's pixel points to the
    map's input, e.g. the image rotated on an enlarged canvas, then resized) ``scale`` is
    ignored: cell ``(i, j)`` describes ``transform^-1 (offset + stride * j, offset + stride * i)``
    and :meth:`sample` reads the map at ``transform p``. Points are always (x, y) pixels of
    the original image. ``transform=None`` is the plain scaling above, computed as before.
    """

    descriptors: np.ndarray
    stride: float
    offset: float
    scale: float = 1.0
    transform: np.ndarray | None = None

    def _affine(self):
        """The (2, 3) image -> map-input transform (``None`` for the plain scaling)."""
        if self.transform is None:
            return None
        return np.asarray(self.transform, np.float64)[:2]

    def positions(self):
        """(h * w, 2) image points of the cells, row by row."""
        height, width = self.descriptors.shape[:2]
        rows, columns = np.mgrid[0:height, 0:width]
        points = np.stack([columns.ravel(), rows.ravel()], -1) * self.stride + self.offset
        affine = self._affine()
        if affine is None:
            return points / self.scale
        return (points - affine[:, 2]) @ np.linalg.inv(affine[:, :2]).T

    @property
    def spacing(self):
        """Pixels of the image between neighbouring cells."""
        affine = self._affine()
        if affine is None:
            return self.stride / self.scale
        return self.stride / math.sqrt(abs(np.linalg.det(affine[:, :2])))

    def sample(self, points):
        """Unit descriptors (N, D) at image points (N, 2), bilinear (clamped at the border)."""
        maps = self.descriptors
        height, width = maps.shape[:2]
        points = np.asarray(points, np.float64).reshape(-1, 2)
        affine = self._affine()
        if affine is None:
            x, y = points[:, 0] * self.scale, points[:, 1] * self.scale
        else:
            x, y = (points @ affine[:, :2].T + affine[:, 2]).T
        u = np.clip((x - self.offset) / self.stride, 0, width - 1)
        v = np.clip((y - self.offset) / self.stride, 0, height - 1)
        u0 = np.minimum(np.floor(u), max(width - 2, 0)).astype(int)
        v0 = np.minimum(np.floor(v), max(height - 2, 0)).astype(int)
        u1, v1 = np.minimum(u0 + 1, width - 1), np.minimum(v0 + 1, height - 1)
        a, b = (u - u0)[:, None], (v - v0)[:, None]
        out = ((1 - a) * (1 - b) * maps[v0, u0] + a * (1 - b) * maps[v0, u1]
               + (1 - a) * b * maps[v1, u0] + a * b * maps[v1, u1])
        return normalise_descriptors(out)


def _resize(image, size):
    """``image`` resized to ``size = (width, height)`` (area when shrinking, linear otherwise)."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[1]
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class Describer:
    """A dense descriptor method: :meth:`dense` one map of an image; :meth:`maps` one per scale.

    Subclasses implement :meth:`dense`; :meth:`at` samples the maps (a subclass may compute
    descriptors at the points themselves instead, as SIFT does).

    Attributes:
        name: the method's name in results.
        scales: the image scales described (``(1.0,)``: single scale).
    """

    name = "describer"
    scales = (1.0,)

    def dense(self, image):
        """The :class:`DenseMap` of a grayscale uint8 image at its own size."""
        raise NotImplementedError

    def maps(self, image):
        """One :class:`DenseMap` per scale of :attr:`scales`, in image coordinates."""
        out = []
        for scale in self.scales:
            size = (max(16, round(image.shape[1] * scale)), max(16, round(image.shape[0] * scale)))
            dense = self.dense(_resize(image, size))
            dense.scale = size[0] / image.shape[1] if scale != 1 else 1.0
            out.append(dense)
        return out

    def at(self, image, maps, points):
        """(S, N, D) unit descriptors of ``points`` (N, 2), one row of N per map in ``maps``."""
        return np.stack([dense.sample(points) for dense in maps])


class LearnedDescriptors(Describer):
    """The learned network of :mod:`hnet_keras.features.descriptors` (a stride-8 map, bilinear)."""

    def __init__(self, net, name="learned"):
        self.net, self.name = net, name

    def dense(self, image):
        return DenseMap(describe_image(self.net, image), STRIDE, CELL_CENTRE)


class SuperPointDescriptors(Describer):
    """SuperPoint's descriptor head (:func:`hnet_keras.features.superpoint.descriptor_map`): a stride-8
    map, sampled bilinearly as the learned network's. The image is cropped to multiples of 8 at
    its bottom and right, which leaves every cell where it was."""

    def __init__(self, model, name="superpoint"):
        self.model, self.name = model, name

    def dense(self, image):
        cropped = image[: image.shape[0] // STRIDE * STRIDE, : image.shape[1] // STRIDE * STRIDE]
        return DenseMap(descriptor_map(self.model, cropped), STRIDE, CELL_CENTRE)


class DaisyDescriptors(Describer):
    """DAISY (``skimage.feature.daisy``): a map on a ``step``-px grid, cells centred from ``radius``.

    Each of the ``rings * histograms + 1`` histograms is L2-normalised (``normalization="l2"``),
    then the whole descriptor (for the dot product).
    """

    name = "daisy"

    def __init__(self, step=4, radius=15, rings=2, histograms=6, orientations=8):
        self.step, self.radius, self.rings, self.histograms, self.orientations = step, radius, rings, histograms, orientations

    def dense(self, image):
        descriptors = daisy(image, step=self.step, radius=self.radius, rings=self.rings, histograms=self.histograms,
                            orientations=self.orientations, normalization="l2")
        descriptors = descriptors.astype(np.float32)
        descriptors /= np.maximum(np.linalg.norm(descriptors, axis=-1, keepdims=True), 1e-12)
        return DenseMap(descriptors, self.step, self.radius)


class SiftDescriptors(Describer):
    """Upright SIFT descriptors (OpenCV) of keypoints of diameter ``size`` at the given points.

    :meth:`at` computes them at the points themselves; the dense map (for the ``dense``
    protocol) is SIFT on a ``step``-px grid.
    """

    name = "sift"

    def __init__(self, size=12.0, step=8):
        self.size, self.step = float(size), int(step)
        self._sift = cv2.SIFT_create()

    def _compute(self, image, points):
        keypoints = [cv2.KeyPoint(float(x), float(y), self.size, 0.0) for x, y in points]
        kept, descriptors = self._sift.compute(image, keypoints)
        if descriptors is None or len(kept) != len(keypoints):
            raise ValueError(f"SIFT described {0 if descriptors is None else len(kept)} of {len(keypoints)} points")
        return normalise_descriptors(descriptors)

    def dense(self, image):
        height, width = image.shape
        offset = self.step / 2
        rows, columns = (np.arange(offset, n, self.step) for n in (height, width))
        grid = np.stack(np.meshgrid(columns, rows), -1).reshape(-1, 2)
        descriptors = self._compute(image, grid).reshape(len(rows), len(columns), -1)
        return DenseMap(descriptors, self.step, offset)

    def at(self, image, maps, points):
        if len(maps) != 1:
            return super().at(image, maps, points)
        return self._compute(image, points)[None]


# The protocols.


def resize_pair(pair, long_side=LONG_SIDE):
    """``(image_a, image_b, H)``: both images resized to ``long_side`` and ``H = S_b H S_a^-1``."""
    scaled, scales = [], []
    for image in (pair.image_a, pair.image_b):
        image = np.asarray(image)
        if image.ndim != 2 or image.dtype != np.uint8 or min(image.shape) < 16:
            raise ValueError(f"{pair.name}: images must be grayscale uint8 of at least 16 px, got "
                             f"{image.dtype} {image.shape}")
        factor = long_side / max(image.shape)
        size = (max(16, round(image.shape[1] * factor)), max(16, round(image.shape[0] * factor)))
        scaled.append(_resize(image, size))
        scales.append(np.diag([size[0] / image.shape[1], size[1] / image.shape[0], 1.0]))
    homography = scales[1] @ np.asarray(pair.homography, np.float64) @ np.linalg.inv(scales[0])
    return scaled[0], scaled[1], homography / homography[2, 2]


def common_harris_points(image_a, image_b, homography, count=POINTS, rng=0, quantile=HARRIS_QUANTILE):
    """Up to ``count`` pixels of A drawn among the top 10 % Harris responses of the common region.

    Returns:
        ``(points_a (N, 2), points_b (N, 2))`` float64, ``points_b = H points_a`` inside B.
    """
    rng = np.random.default_rng(rng)
    height, width = image_a.shape
    grid = np.stack(np.mgrid[0:height, 0:width][::-1], -1).reshape(-1, 2).astype(np.float64)
    common = np.flatnonzero(inside(warp_points(homography, grid), (image_b.shape[1], image_b.shape[0])))
    if len(common) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    response = cv2.cornerHarris(np.float32(image_a), 3, 3, 0.04).reshape(-1)[common]
    strong = common[response >= np.quantile(response, quantile)]
    chosen = np.sort(rng.choice(strong, min(count, len(strong)), replace=False))
    points = grid[chosen]
    return points, warp_points(homography, points)


def best_similarity(features_a, features_b):
    """``(similarity (N, M), scales (N, M, 2))``: the best dot product over scale (map) pairs.

    Args:
        features_a: (S, N, D), features_b: (T, M, D) unit descriptors, one row per map (scale, or
            (scale, angle) of the descriptor space with rotations).

    Returns:
        the largest ``<a_s,i, b_t,j>`` over ``(s, t)`` and the indices ``(s, t)`` that gave it.
    """
    products = np.einsum("snd,tmd->stnm", features_a, features_b, optimize=True)
    s, t = products.shape[:2]
    flat = products.reshape(s * t, *products.shape[2:])
    best = np.argmax(flat, axis=0)
    similarity = np.take_along_axis(flat, best[None], axis=0)[0]
    return similarity, np.stack([best // t, best % t], -1)


def _describe(describer, image):
    start = time.perf_counter()
    maps = describer.maps(image)
    return maps, time.perf_counter() - start


def seed_protocol(describer, image_a, image_b, homography, points_a, points_b, maps_a=None, maps_b=None):
    """Errors (N,) px of each point's nearest neighbour among the targets, and the scale pairs (N, 2)."""
    maps_a = maps_a if maps_a is not None else describer.maps(image_a)
    maps_b = maps_b if maps_b is not None else describer.maps(image_b)
    similarity, scales = best_similarity(describer.at(image_a, maps_a, points_a),
                                         describer.at(image_b, maps_b, points_b))
    nearest = np.argmax(similarity, axis=1)
    errors = np.linalg.norm(points_b[nearest] - points_b, axis=1)
    return errors, scales[np.arange(len(nearest)), nearest]


def dense_protocol(describer, image_a, image_b, homography, points_a, points_b, maps_a=None, maps_b=None):
    """Errors (N,) px of each point's best match over B's whole dense map(s), refined to 1 px.

    Returns:
        ``(errors (N,), positions (N, 2), map_index (N,))``: the refined matches and which of B's maps won.
    """
    maps_a = maps_a if maps_a is not None else describer.maps(image_a)
    maps_b = maps_b if maps_b is not None else describer.maps(image_b)
    size_b = (image_b.shape[1], image_b.shape[0])
    features_a = describer.at(image_a, maps_a, points_a)  # (S, N, D)
    best_value = np.full(len(points_a), -np.inf)
    best_position = np.zeros((len(points_a), 2))
    best_map = np.zeros(len(points_a), int)
    for index, dense in enumerate(maps_b):
        positions = dense.positions()
        keep = inside(positions, size_b)
        cells = dense.descriptors.reshape(-1, dense.descriptors.shape[-1])[keep]
        similarity = np.max(np.einsum("snd,md->snm", features_a, cells, optimize=True), axis=0)
        nearest = np.argmax(similarity, axis=1)
        value = similarity[np.arange(len(nearest)), nearest]
        better = value > best_value
        best_value[better], best_map[better] = value[better], index
        best_position[better] = positions[keep][nearest[better]]
    refined = best_position.copy()
    for index, dense in enumerate(maps_b):
        queries = np.flatnonzero(best_map == index)
        if len(queries) == 0:
            continue
        # Two passes: a quarter-cell grid over one cell spacing around the winner, then 1 px steps.
        reach = int(np.ceil(dense.spacing))
        step = max(1, reach // 4)
        centre = np.rint(best_position[queries])
        for radius, stride in ((reach, step), (step, 1)):
            steps = np.arange(-radius, radius + 1, stride, dtype=np.float64)
            offsets = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2)
            candidates = centre[:, None, :] + offsets[None]  # (Q, K, 2)
            candidates[..., 0] = np.clip(candidates[..., 0], 0, size_b[0] - 1)
            candidates[..., 1] = np.clip(candidates[..., 1], 0, size_b[1] - 1)
            local = dense.sample(candidates.reshape(-1, 2)).reshape(len(queries), len(offsets), -1)
            scores = np.max(np.einsum("sqd,qkd->sqk", features_a[:, queries], local, optimize=True), axis=0)
            centre = candidates[np.arange(len(queries)), np.argmax(scores, axis=1)]
        refined[queries] = centre
    errors = np.linalg.norm(refined - points_b, axis=1)
    return errors, refined, best_map


def mutual_matches(similarity):
    """(K, 2) index pairs that are each other's nearest neighbours in a similarity matrix."""
    forward, backward = np.argmax(similarity, axis=1), np.argmax(similarity, axis=0)
    rows = np.flatnonzero(backward[forward] == np.arange(len(forward)))
    return np.stack([rows, forward[rows]], -1)


def corners_error(estimate, truth, size):
    """Mean distance (px) of the four image corners of ``size = (width, height)`` under two homographies."""
    corners = patch_corners(size)
    return float(np.mean(np.linalg.norm(warp_points(estimate, corners) - warp_points(truth, corners), axis=1)))


def harris_corners(image, count=POINTS, min_distance=4):
    """Up to ``count`` Harris corners of a uint8 image (``cv2.goodFeaturesToTrack``), (N, 2) float64."""
    found = cv2.goodFeaturesToTrack(image, int(count), 0.001, min_distance, useHarrisDetector=True, k=0.04)
    return np.zeros((0, 2)) if found is None else found.reshape(-1, 2).astype(np.float64)


def homography_protocol(describer, image_a, image_b, homography, count=POINTS, maps_a=None, maps_b=None, seed=0):
    """Corner error (px, ``inf`` when no homography was found) of mutual-NN + RANSAC on Harris corners."""
    maps_a = maps_a if maps_a is not None else describer.maps(image_a)
    maps_b = maps_b if maps_b is not None else describer.maps(image_b)
    corners_a, corners_b = harris_corners(image_a, count), harris_corners(image_b, count)
    if len(corners_a) < 4 or len(corners_b) < 4:
        return float("inf"), 0
    similarity, _ = best_similarity(describer.at(image_a, maps_a, corners_a), describer.at(image_b, maps_b, corners_b))
    matches = mutual_matches(similarity)
    estimate, _ = ransac_homography(corners_a[matches[:, 0]], corners_b[matches[:, 1]], seed=seed)
    if estimate is None:
        return float("inf"), len(matches)
    return corners_error(estimate, homography, (image_a.shape[1], image_a.shape[0])), len(matches)


@dataclass
class PairResult:
    """One method on one pair: per-point errors of the two PCK protocols, the homography's corner
    error, the scale pairs of the ``seed`` matches, seconds spent describing both images (A's
    maps are computed once per reference image, their time counted with its first pair)."""

    name: str
    kind: str
    seed_errors: np.ndarray = field(repr=False)
    dense_errors: np.ndarray = field(repr=False)
    corner_error: float
    scales: np.ndarray = field(repr=False)
    seconds: float


def evaluate_pck(pairs, describers, points=POINTS, long_side=LONG_SIDE, seed=0, protocols=PROTOCOLS, progress=True):
    """Every describer on every pair under the chosen protocols.

    Args:
        pairs: :class:`DescriptorPair` objects.
        describers: :class:`Describer` objects (distinct names).
        points: points per pair (the ``seed`` and ``dense`` protocols) and corners per image
            (``homography``).
        long_side: both images are resized to this longer side.
        seed: seeds the points drawn (pair ``k`` uses ``(seed, k)``: the same points for every method).
            Consecutive pairs whose ``image_a`` is the same array share image A's maps.
        protocols: a subset of :data:`PROTOCOLS`.
        progress: a tqdm bar over the pairs.

    Returns:
        ``{method name: [PairResult, ...]}``; :func:`pck_table` summarises it.
    """
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocol(s) {', '.join(sorted(unknown))}; choose among {', '.join(PROTOCOLS)}")
    names = [d.name for d in describers]
    if len(set(names)) != len(names):
        raise ValueError(f"describers need distinct names, got {names}")
    results = {name: [] for name in names}
    empty = np.zeros(0)
    reference = {}  # the maps of the last image A: a sequence's pairs share their reference image
    for k, pair in enumerate(tqdm(pairs, desc="pairs", disable=not progress)):
        image_a, image_b, homography = resize_pair(pair, long_side)
        points_a, points_b = common_harris_points(image_a, image_b, homography, points, rng=(seed, k))
        for describer in describers:
            cached, time_a = reference.get(describer.name), 0.0
            if cached is None or cached[0] is not pair.image_a:
                maps_a, time_a = _describe(describer, image_a)
                cached = reference[describer.name] = (pair.image_a, maps_a)
            maps_a = cached[1]
            maps_b, time_b = _describe(describer, image_b)
            seed_errors, scales = empty, np.zeros((0, 2), int)
            dense_errors, corner_error = empty, float("nan")
            if len(points_a) and "seed" in protocols:
                seed_errors, scales = seed_protocol(describer, image_a, image_b, homography, points_a, points_b,
                                                    maps_a, maps_b)
            if len(points_a) and "dense" in protocols:
                dense_errors = dense_protocol(describer, image_a, image_b, homography, points_a, points_b,
                                              maps_a, maps_b)[0]
            if "homography" in protocols:
                corner_error = homography_protocol(describer, image_a, image_b, homography, points, maps_a, maps_b,
                                                   seed=seed)[0]
            results[describer.name].append(PairResult(pair.name, pair.kind, seed_errors, dense_errors, corner_error,
                                                      scales, time_a + time_b))
    return results


def pck_table(results, thresholds=PCK_THRESHOLDS):
    """Summary of :func:`evaluate_pck`: ``{method: {split: {protocol: {"1": x, "3": y, "5": z}, "pairs": n}}}``.

    Splits are ``all`` and each kind present (``viewpoint``, ``illumination``, ``other``). PCK
    is the mean over pairs of the fraction of points within each threshold; ``homography`` is
    the fraction of pairs whose corner error is within it. Values are rounded to 4 digits.
    """
    table = {}
    for method, rows in results.items():
        kinds = sorted({row.kind for row in rows})
        table[method] = {}
        for split in ["all", *kinds]:
            chosen = [row for row in rows if split == "all" or row.kind == split]
            entry = {"pairs": len(chosen), "seconds_per_pair": round(float(np.mean([r.seconds for r in chosen])), 3)}
            for protocol, get in (("seed", lambda r: r.seed_errors), ("dense", lambda r: r.dense_errors)):
                errors = [get(r) for r in chosen if len(get(r))]
                if errors:
                    entry[protocol] = {str(t): round(float(np.mean([np.mean(e <= t) for e in errors])), 4)
                                       for t in thresholds}
            corner = [r.corner_error for r in chosen if not np.isnan(r.corner_error)]
            if corner:
                entry["homography"] = {str(t): round(float(np.mean(np.asarray(corner) <= t)), 4) for t in thresholds}
            table[method][split] = entry
    return table
