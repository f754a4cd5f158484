"""Keypoint evaluation: detection on synthetic shapes and repeatability on image pairs.

A *detector* is a callable ``detector(image) -> (points (N, 2), scores (N,))`` on a (H, W)
uint8 image, points ``(x, y)`` pixels, strongest first. Classical ones are here
(:func:`harris`, :func:`shi_tomasi`, :func:`fast`, :func:`sift`), a learned one is
:func:`network_detector` (sub-pixel by default: the soft-argmax of its probability map,
:func:`hnet_keras.features.superpoint.refine_subpixel`). :func:`harris_subpix` and
:func:`shi_tomasi_subpix` are Harris and Shi-Tomasi with OpenCV's sub-pixel refinement
(``cv2.cornerSubPix``); :func:`with_corner_subpix` gives it to any detector.

* :func:`detection_scores`: on labelled images (500 held-out synthetic shapes in the
  reference), every detection within ``distance`` (4 px) of a still unmatched true corner
  is correct (greedy, strongest first). Precision and recall over all score thresholds give
  the precision-recall curve and its average precision (``mAP``, the area under the curve,
  VOC style: the mean precision at each correct detection over the number of corners). The
  localisation error is the mean distance of the correct detections to their corner, at the
  threshold of best F1 (with its standard error).
* :func:`repeatability`: on pairs ``(image_a, image_b, H_ab)``, each image's ``top_k`` points
  (300, NMS 4) in the part both images see; a point repeats when the other image has one
  within ``distance`` (3 px) after the warp; the pair's score is the repeated points of both
  images over all of them (SuperPoint's protocol).

numpy and OpenCV; the model runs through :mod:`hnet_keras.features.superpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm.auto import tqdm

from .homographies import inside, warp_points
from .shapes import ShapesConfig, draw_shape
from .superpoint import CELL, SUBPIXEL_WINDOW, keypoints_from_map, nms, probability_maps

__all__ = [
    "harris",
    "shi_tomasi",
    "harris_subpix",
    "shi_tomasi_subpix",
    "corner_subpix",
    "with_corner_subpix",
    "CORNER_SUBPIX_HALF_WINDOW",
    "fast",
    "sift",
    "orb",
    "network_detector",
    "CLASSICAL_DETECTORS",
    "held_out_shapes",
    "DetectionScores",
    "detection_scores",
    "repeatability",
    "downsize_pair",
    "evaluate_keypoints",
]

NMS_RADIUS = 4
"""Pixels of non-maximum suppression of every detector."""


def _response_points(response, threshold=1e-6, top_k=None, radius=NMS_RADIUS, border=4):
    response = np.asarray(response, np.float32)
    peak = float(response.max()) if response.size else 0.0
    normalised = response / peak if peak > 0 else np.zeros_like(response)
    return nms(normalised, radius, threshold, top_k, border)


def harris(image, top_k=None, block=3, aperture=3, k=0.04):
    """Harris corners: local maxima of ``cv2.cornerHarris`` (scores: the response over its maximum)."""
    return _response_points(cv2.cornerHarris(np.float32(image), block, aperture, k), top_k=top_k)


def shi_tomasi(image, top_k=None, block=3):
    """Shi-Tomasi corners as ``cv2.goodFeaturesToTrack`` finds them (min-eigenvalue response, 4 px apart),
    scored by the response over its maximum."""
    response = cv2.cornerMinEigenVal(np.float32(image), block)
    corners = cv2.goodFeaturesToTrack(image, maxCorners=top_k or 0, qualityLevel=1e-4, minDistance=NMS_RADIUS,
                                      blockSize=block)
    if corners is None:
        return np.zeros((0, 2)), np.zeros(0, np.float32)
    points = corners.reshape(-1, 2).astype(np.float64)
    peak = float(response.max()) or 1.0
    scores = response[points[:, 1].astype(int), points[:, 0].astype(int)] / peak
    order = np.argsort(-scores, kind="stable")
    return points[order], scores[order].astype(np.float32)


CORNER_SUBPIX_HALF_WINDOW = 4
"""Half side of ``cv2.cornerSubPix``'s search window in :func:`corner_subpix` (4: a 9x9 window).

Chosen for the classical detectors on 500 synthetic shapes of a validation seed (20,000, not the
test seed 10,000) with ``python experiments/12_superpoint.py subpixel``
(``experiments/results/12_superpoint_subpixel.json``): Harris's localisation error at 4 px is
0.973 px without refinement and 0.940 / 0.584 / 0.515 / 0.494 / 0.514 / 0.566 px with half windows
1 / 2 / 3 / 4 / 5 / 6; Shi-Tomasi's 0.950 px, then 0.935 / 0.579 / 0.527 / 0.498 / 0.531 / 0.575 px
(standard errors about 0.015 px); mAP moves by under 0.01. The best, 4, is what they get here.
"""

_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.001)


def corner_subpix(image, points, half_window=CORNER_SUBPIX_HALF_WINDOW):
    """Points (N, 2) moved to sub-pixel corner positions of a gray image by ``cv2.cornerSubPix``
    (the point where the image's gradients within the window are orthogonal to their offsets;
    40 iterations or 0.001 px; OpenCV keeps a point that would leave its window)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if not len(points) or half_window < 1:
        return points.copy()
    corners = np.ascontiguousarray(points, np.float32).reshape(-1, 1, 2)
    refined = cv2.cornerSubPix(np.ascontiguousarray(image), corners, (int(half_window), int(half_window)), (-1, -1),
                               _SUBPIX_CRITERIA)
    return refined.reshape(-1, 2).astype(np.float64)


def with_corner_subpix(detector, half_window=CORNER_SUBPIX_HALF_WINDOW):
    """``detector`` with its points refined by :func:`corner_subpix` (scores and order kept)."""

    def detect(image, top_k=None):
        points, scores = detector(image, top_k)
        return corner_subpix(image, points, half_window), scores

    return detect


def harris_subpix(image, top_k=None):
    """:func:`harris` refined by ``cv2.cornerSubPix`` (:func:`corner_subpix`)."""
    return with_corner_subpix(harris)(image, top_k)


def shi_tomasi_subpix(image, top_k=None):
    """:func:`shi_tomasi` refined by ``cv2.cornerSubPix`` (:func:`corner_subpix`), as OpenCV's
    documentation pairs them."""
    return with_corner_subpix(shi_tomasi)(image, top_k)


def _keypoints(detector, image, top_k):
    keypoints = detector.detect(image, None)
    if not keypoints:
        return np.zeros((0, 2)), np.zeros(0, np.float32)
    points = np.array([k.pt for k in keypoints], np.float64)
    scores = np.array([k.response for k in keypoints], np.float32)
    order = np.argsort(-scores, kind="stable")
    points, scores = points[order], scores[order]
    # one point per NMS window, as for the other detectors (SIFT repeats a point per orientation)
    taken = np.zeros(len(points), bool)
    for i in range(len(points)):
        if not taken[i]:
            close = np.linalg.norm(points[i + 1:] - points[i], axis=1) <= NMS_RADIUS
            taken[i + 1:] |= close
    keep = ~taken
    points, scores = points[keep], scores[keep]
    return (points[:top_k], scores[:top_k]) if top_k else (points, scores)


def fast(image, top_k=None, threshold=10):
    """FAST-9 corners with OpenCV's own non-maximum suppression, scored by their response."""
    return _keypoints(cv2.FastFeatureDetector_create(threshold=threshold), image, top_k)


def sift(image, top_k=None):
    """SIFT keypoints (difference-of-Gaussians extrema), scored by their response."""
    return _keypoints(cv2.SIFT_create(), image, top_k)


def orb(image, top_k=None):
    """ORB keypoints (oriented FAST with a Harris score), scored by their response."""
    return _keypoints(cv2.ORB_create(nfeatures=top_k or 1000, edgeThreshold=15, patchSize=15), image, top_k)


CLASSICAL_DETECTORS = {"harris": harris, "shi_tomasi": shi_tomasi, "harris_subpix": harris_subpix,
                       "shi_tomasi_subpix": shi_tomasi_subpix, "fast": fast, "sift": sift, "orb": orb}


def network_detector(model, threshold=1e-3, radius=NMS_RADIUS, border=4, subpixel=SUBPIXEL_WINDOW):
    """A MagicPoint/SuperPoint network as a detector (images are cropped to multiples of 8): NMS maxima
    of its probability map, moved to the map's centroid in a ``subpixel`` window
    (:func:`~hnet_keras.features.superpoint.refine_subpixel`; 0 keeps whole pixels)."""

    def detect(image, top_k=None):
        return keypoints_from_map(probability_maps(model, image)[0], radius, threshold, top_k, border, subpixel)

    return detect


def held_out_shapes(count=500, seed=10_000, config=ShapesConfig()):
    """The held-out synthetic shapes (drawn, not augmented): ``(images (N, H, W) uint8, [points (K, 2)])``.

    Image ``i`` comes from ``(seed, i)``, a seed no training batch uses (training batches are
    seeded ``(seed, epoch, batch)``)."""
    drawn = [draw_shape(np.random.default_rng([seed, i]), config) for i in range(count)]
    return np.stack([d[0] for d in drawn]), [d[1] for d in drawn]


@dataclass
class DetectionScores:
    """Detection scores of one detector on labelled images (see the module doc).

    Attributes:
        mAP: average precision at ``distance`` px.
        precision, recall: the curve, one value per detection threshold (strongest first).
        localisation_error: mean px distance of correct detections at the best-F1 threshold.
        localisation_sem: its standard error (standard deviation over the square root of their count).
        best_f1, precision_at_best, recall_at_best: that operating point.
    """

    mAP: float
    localisation_error: float
    best_f1: float
    precision_at_best: float
    recall_at_best: float
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)
    localisation_sem: float = float("nan")

    def summary(self, digits=3):
        """The scalars, rounded."""
        return {key: round(float(getattr(self, key)), digits) for key in
                ("mAP", "localisation_error", "localisation_sem", "best_f1", "precision_at_best", "recall_at_best")}


def _match(points, truth, distance):
    """Per detection (strongest first): distance to the true corner it claims, or inf."""
    claimed = np.full(len(points), np.inf)
    free = np.ones(len(truth), bool)
    if not len(truth):
        return claimed
    for i, point in enumerate(points):
        d = np.linalg.norm(truth - point, axis=1)
        d[~free] = np.inf
        j = int(np.argmin(d))
        if d[j] <= distance:
            claimed[i], free[j] = d[j], False
    return claimed


def detection_scores(detector, images, truths, distance=4.0, progress=False):
    """:class:`DetectionScores` of ``detector`` on images (N, H, W) uint8 with true corners ``truths``."""
    scores, errors = [], []
    total = sum(len(t) for t in truths)
    for image, truth in tqdm(list(zip(images, truths)), desc="detection", disable=not progress):
        points, score = detector(image)
        scores.append(np.asarray(score, np.float64))
        errors.append(_match(np.asarray(points).reshape(-1, 2), np.asarray(truth).reshape(-1, 2), distance))
    scores, errors = np.concatenate(scores), np.concatenate(errors)
    order = np.argsort(-scores, kind="stable")
    errors = errors[order]
    correct = np.isfinite(errors)
    true_positives = np.cumsum(correct)
    precision = true_positives / np.arange(1, len(errors) + 1)
    recall = true_positives / max(total, 1)
    average_precision = float(np.sum(precision[correct]) / max(total, 1))
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1)) if len(f1) else 0
    kept = correct[: best + 1]
    located = errors[: best + 1][kept] if len(errors) else np.zeros(0)
    location = float(np.mean(located)) if len(located) else float("nan")
    sem = float(np.std(located, ddof=1) / np.sqrt(len(located))) if len(located) > 1 else float("nan")
    return DetectionScores(average_precision, location, float(f1[best]) if len(f1) else 0.0,
                           float(precision[best]) if len(f1) else 0.0, float(recall[best]) if len(f1) else 0.0,
                           precision, recall, sem)


def downsize_pair(image_a, image_b, homography, max_side=480):
    """A pair scaled so each longer side is at most ``max_side`` and cropped to multiples of 8, with
    ``H_ab`` scaled to match: ``(image_a, image_b, H_ab)``."""
    def shrink(image):
        scale = min(1.0, max_side / max(image.shape))
        size = (max(CELL, round(image.shape[1] * scale)), max(CELL, round(image.shape[0] * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
        small = small[: small.shape[0] // CELL * CELL, : small.shape[1] // CELL * CELL]
        return np.ascontiguousarray(small), np.diag([size[0] / image.shape[1], size[1] / image.shape[0], 1.0])

    small_a, scale_a = shrink(image_a)
    small_b, scale_b = shrink(image_b)
    return small_a, small_b, scale_b @ np.asarray(homography, np.float64) @ np.linalg.inv(scale_a)


def _shared(points, homography, size_other):
    """Points whose warp lands inside the other image."""
    if not len(points):
        return points
    return points[inside(warp_points(homography, points), size_other)]


def repeatability(detector, pairs, top_k=300, distance=3.0, progress=False):
    """Mean repeatability of ``detector`` on pairs ``(image_a, image_b, H_ab)`` (see the module doc).

    Returns:
        ``(mean, per-pair scores (P,))``.
    """
    per_pair = []
    for image_a, image_b, h_ab in tqdm(list(pairs), desc="repeatability", disable=not progress):
        size_a, size_b = (image_a.shape[1], image_a.shape[0]), (image_b.shape[1], image_b.shape[0])
        h_ab = np.asarray(h_ab, np.float64)
        h_ba = np.linalg.inv(h_ab)
        # points of the region both see, strongest top_k of each
        points_a = _shared(np.asarray(detector(image_a)[0]).reshape(-1, 2), h_ab, size_b)[:top_k]
        points_b = _shared(np.asarray(detector(image_b)[0]).reshape(-1, 2), h_ba, size_a)[:top_k]
        if not len(points_a) or not len(points_b):
            per_pair.append(0.0)
            continue
        moved = warp_points(h_ab, points_a)
        distances = np.linalg.norm(moved[:, None] - points_b[None], axis=-1)
        repeated = np.sum(distances.min(axis=1) <= distance) + np.sum(distances.min(axis=0) <= distance)
        per_pair.append(float(repeated) / (len(points_a) + len(points_b)))
    per_pair = np.array(per_pair)
    return (float(per_pair.mean()) if len(per_pair) else float("nan")), per_pair


def evaluate_keypoints(networks=None, classical=("harris", "shi_tomasi", "harris_subpix", "shi_tomasi_subpix", "fast",
                                                 "sift"), shapes=500, pairs=(),
                       top_k=300, seed=10_000, progress=True):
    """Detection on held-out shapes and repeatability on pairs, every detector by the same code.

    Args:
        networks: ``{name: detector callable}`` (e.g. :func:`network_detector` of a model) scored beside
            the ``classical`` ones (names in :data:`CLASSICAL_DETECTORS`).
        shapes: held-out synthetic images (:func:`held_out_shapes`, ``seed``); 0 skips detection.
        pairs: ``(image_a, image_b, H_ab)`` triples for repeatability (e.g. :func:`downsize_pair` of real
            pairs); empty skips it.
        top_k: points per image for repeatability.

    Returns:
        a JSON-ready dict ``{"detection": {name: summary}, "repeatability": {name: mean}, ...}``, rounded.
    """
    detectors = {name: CLASSICAL_DETECTORS[name] for name in classical}
    detectors.update(networks or {})
    report = {"shapes": int(shapes), "seed": seed, "pairs": len(pairs), "top_k": top_k, "nms": NMS_RADIUS,
              "detection_distance": 4.0, "repeatability_distance": 3.0, "detection": {}, "repeatability": {}}
    if shapes:
        images, truths = held_out_shapes(shapes, seed)
        for name, detector in detectors.items():
            report["detection"][name] = detection_scores(detector, images, truths, progress=progress).summary()
    pairs = list(pairs)
    for name, detector in detectors.items():
        if pairs:
            report["repeatability"][name] = round(repeatability(detector, pairs, top_k, progress=progress)[0], 3)
    return report
