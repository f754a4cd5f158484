"""Classical homography estimators behind one interface, to compare HomographyNet against.

Every method is called on one pair, ``method(patch_a, patch_b)`` with two (P, P) uint8
patches, and returns an :class:`Estimate`: the 8 corner ``offsets`` in pixels (the
:mod:`hnet_keras.geometry` convention, perturbed - original corners, obtained from the
estimated ``H_ab`` with :func:`~hnet_keras.geometry.homography_to_offsets`), a ``failed``
flag and the time it took in milliseconds.

A method never raises on a hard pair. Too few keypoints or matches, a ``None``,
singular, ill-conditioned or non-finite ``H`` from RANSAC, or ECC not converging make
it fall back to the identity (zero offsets) with ``failed=True``; the method counts
the reason in its ``failures`` Counter. This is how DeTone et al. score ORB + RANSAC
too: a failed pair still counts in the mean corner error, with the identity's error.

Methods (registered in :data:`hnet_keras.estimators.methods.BASELINES`, name -> method;
:func:`hnet_keras.estimators.methods.get_method` gives a fresh copy):

* ``identity``: zero offsets, the "no motion" reference.
* ``orb_ransac``: ORB features, Hamming matching with Lowe's ratio test,
  ``cv2.findHomography`` with RANSAC (the paper's baseline).
* ``sift_ransac``: the same with SIFT (L2 matching).
* ``akaze_ransac``: the same with AKAZE. OpenCV 5 moved AKAZE out of the main
  package (to opencv-contrib-python); where the build has no AKAZE the method
  is left out of the defaults and asking for it raises a clear error.
* ``sift_magsac``: SIFT matches with ``cv2.USAC_MAGSAC`` instead of RANSAC.
* ``ecc``: direct (intensity-based) alignment, ``cv2.findTransformECC`` with
  ``MOTION_HOMOGRAPHY``, run coarse to fine on an image pyramid from the identity.

:class:`hnet_keras.estimators.methods.NetworkMethod` wraps a Keras model in the same interface.

Direction of the estimated homography (see :mod:`hnet_keras.geometry`): ``H_ab`` maps a
point of patch A to the point of patch B showing the same content.

* Feature matching finds points ``p_a`` in A and ``p_b`` in B, so
  ``findHomography(p_a, p_b)`` is ``H_ab``.
* ``findTransformECC(template, input)`` returns ``W`` with ``input(W x) ~ template(x)``.
  With ``template = A`` and ``input = B``, ``B(W x) = A(x)``, and since
  ``B(H_ab x) = A(x)``, ``W`` is ``H_ab`` itself.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import NamedTuple

import cv2
import numpy as np

from ..geometry import homography_to_offsets
from .refine import ECCSettings, RefinementFailed, ecc_coarse_to_fine

__all__ = [
    "Estimate",
    "EstimationFailed",
    "Method",
    "IdentityMethod",
    "FeatureMethod",
    "ECCMethod",
    "check_homography",
    "check_pair",
    "akaze_available",
    "orb_detector",
    "sift_detector",
    "akaze_detector",
]

# --- thresholds (named, so a reader can see and change them) -------------------------
LOWE_RATIO = 0.75
"""Lowe's ratio test: keep a match when best distance < LOWE_RATIO * second best."""
MIN_KEYPOINTS = 4
"""Fewer keypoints than this in either patch is a failure ("too few keypoints")."""
MIN_MATCHES = 4
"""Fewer ratio-test matches than this is a failure (a homography needs 4)."""
MIN_INLIERS = 4
"""A robust fit supported by fewer inliers than this is a failure."""
RANSAC_REPROJ_THRESHOLD = 3.0
"""Largest reprojection error, in pixels, of a RANSAC inlier."""
MAGSAC_THRESHOLD = 3.0
"""Largest reprojection error, in pixels, MAGSAC++ considers (its sigma is marginalized)."""
RANSAC_MAX_ITERS = 2000
RANSAC_CONFIDENCE = 0.995
MIN_ABS_DET = 1e-6
"""|det(H)| below this (H scaled so H[2, 2] = 1) is singular."""
MAX_CONDITION = 1e6
"""A condition number of H (in patch-normalized coordinates) above this is degenerate."""
MAX_OFFSET_FRACTION = 1.0
"""A corner offset larger than this fraction of the patch side is a degenerate fit."""
ORB_FEATURES = 500
ORB_EDGE_THRESHOLD = 15
"""ORB's border and patch size; OpenCV's 31 leaves little of a 128 px patch to detect in."""
ECC_SETTINGS = ECCSettings(levels=3, min_side=24, iterations=100, epsilon=1e-5, gauss_filter=5)
"""The ``ecc`` baseline's pyramid (coarsest first, each level half the previous size) and ECC criteria."""


class Estimate(NamedTuple):
    """What a method returns for one pair.

    Attributes:
        offsets: (8,) float64 corner offsets in pixels (zeros when ``failed``).
        failed: the method failed and fell back to the identity.
        ms: time the estimate took, in milliseconds.
    """

    offsets: np.ndarray
    failed: bool
    ms: float


class EstimationFailed(Exception):
    """Raised inside a method when it cannot give a homography; ``reason`` is counted."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


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
        failures: Counter of failure reasons over every call so far.
    """

    def __init__(self, name, description):
        self.name = name
        self.description = description
        self.failures = Counter()

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}: {self.description}>"

    def homography(self, image_a, image_b):
        """``H_ab`` for two grayscale uint8 images (A -> B); raises :class:`EstimationFailed`."""
        raise NotImplementedError

    def fresh(self):
        """A copy of this method with its own, empty failure counts."""
        clone = copy.copy(self)
        clone.failures = Counter()
        return clone

    def offsets(self, patch_a, patch_b):
        """The (8,) corner offsets of a checked pair; raises :class:`EstimationFailed`."""
        size = patch_a.shape[0]
        offsets = homography_to_offsets(check_homography(self.homography(patch_a, patch_b), size), size=size)
        if not np.all(np.isfinite(offsets)):
            raise EstimationFailed("non-finite offsets")
        return offsets

    def attempt(self, estimate, fallback):
        """``(estimate(), False)``, or ``(fallback, True)`` with the failure's reason counted."""
        try:
            return estimate(), False
        except EstimationFailed as failure:
            self.failures[failure.reason] += 1
        except (cv2.error, np.linalg.LinAlgError) as error:
            self.failures[type(error).__name__] += 1
        return fallback, True

    def __call__(self, patch_a, patch_b):
        """The :class:`Estimate` for one pair of (P, P) uint8 patches; a failure gives zero offsets."""
        patch_a, patch_b = check_pair(patch_a, patch_b)
        start = time.perf_counter()
        offsets, failed = self.attempt(lambda: self.offsets(patch_a, patch_b), np.zeros(8))
        return Estimate(np.asarray(offsets, np.float64), failed, (time.perf_counter() - start) * 1000.0)

    def estimate_batch(self, pairs, progress=None):
        """Estimates for (N, P, P, 2) uint8 pairs: ``(offsets (N, 8), failed (N,), ms (N,))``.

        Args:
            progress: an optional callable called with the number of pairs just done.
        """
        pairs = np.asarray(pairs)
        offsets = np.zeros((len(pairs), 8))
        failed = np.zeros(len(pairs), bool)
        ms = np.zeros(len(pairs))
        for i, pair in enumerate(pairs):
            offsets[i], failed[i], ms[i] = self(pair[..., 0], pair[..., 1])
            if progress is not None:
                progress(1)
        return offsets, failed, ms


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


class IdentityMethod(Method):
    """Zero offsets: the error of doing nothing."""

    def __init__(self):
        super().__init__("identity", "identity (no motion)")

    def homography(self, image_a, image_b):
        return np.eye(3)


def sift_detector():
    """OpenCV's SIFT."""
    return cv2.SIFT_create()


def akaze_available():
    """Whether this OpenCV build has AKAZE (OpenCV 5 moved it to opencv-contrib-python)."""
    return _akaze_factory() is not None


def _akaze_factory():
    if hasattr(cv2, "AKAZE_create"):
        return cv2.AKAZE_create
    contrib = getattr(cv2, "xfeatures2d", None)
    if contrib is not None and hasattr(contrib, "AKAZE_create"):
        return contrib.AKAZE_create
    return None


def orb_detector():
    """ORB tuned for small patches (see :data:`ORB_EDGE_THRESHOLD`)."""
    return cv2.ORB_create(nfeatures=ORB_FEATURES, edgeThreshold=ORB_EDGE_THRESHOLD, patchSize=ORB_EDGE_THRESHOLD)


def akaze_detector():
    """AKAZE, or a clear error where this OpenCV build has none."""
    factory = _akaze_factory()
    if factory is None:
        raise ValueError(
            f"this OpenCV build ({cv2.__version__}) has no AKAZE: OpenCV 5 moved it to the contrib "
            "modules (pip install opencv-contrib-python-headless)"
        )
    return factory()


class FeatureMethod(Method):
    """Keypoints + descriptors, brute-force k=2 matching with Lowe's ratio test, robust fit.

    Args:
        name, description: registry name and label.
        make_detector: a callable returning an OpenCV ``Feature2D``.
        norm: the descriptor distance (``cv2.NORM_L2`` or ``cv2.NORM_HAMMING``).
        robust: ``cv2.RANSAC`` or ``cv2.USAC_MAGSAC``.
        threshold: the inlier threshold in pixels.
    """

    def __init__(self, name, description, make_detector, norm, robust=cv2.RANSAC, threshold=RANSAC_REPROJ_THRESHOLD):
        super().__init__(name, description)
        self.make_detector, self.norm, self.robust, self.threshold = make_detector, norm, robust, threshold
        self._detector = None
        self._matcher = None

    def fresh(self):
        clone = super().fresh()
        clone._detector, clone._matcher = None, None
        return clone

    @property
    def detector(self):
        if self._detector is None:
            self._detector = self.make_detector()
        return self._detector

    def matches(self, image_a, image_b):
        """Ratio-test matches as two (M, 2) float32 arrays of points ``p_a`` in A and ``p_b`` in B."""
        keys_a, desc_a = self.detector.detectAndCompute(image_a, None)
        keys_b, desc_b = self.detector.detectAndCompute(image_b, None)
        if desc_a is None or desc_b is None or min(len(keys_a), len(keys_b)) < MIN_KEYPOINTS:
            raise EstimationFailed("too few keypoints")
        if self._matcher is None:
            self._matcher = cv2.BFMatcher(self.norm)
        candidates = self._matcher.knnMatch(desc_a, desc_b, k=2)
        good = [c[0] for c in candidates if len(c) == 2 and c[0].distance < LOWE_RATIO * c[1].distance]
        if len(good) < MIN_MATCHES:
            raise EstimationFailed("too few matches")
        points_a = np.float32([keys_a[m.queryIdx].pt for m in good])
        points_b = np.float32([keys_b[m.trainIdx].pt for m in good])
        return points_a, points_b

    def homography(self, image_a, image_b):
        points_a, points_b = self.matches(image_a, image_b)
        h, mask = cv2.findHomography(
            points_a,
            points_b,
            self.robust,
            self.threshold,
            maxIters=RANSAC_MAX_ITERS,
            confidence=RANSAC_CONFIDENCE,
        )
        if h is None:
            raise EstimationFailed("no homography")
        if mask is not None and int(np.count_nonzero(mask)) < MIN_INLIERS:
            raise EstimationFailed("too few inliers")
        return h


class ECCMethod(Method):
    """Direct alignment maximizing the enhanced correlation coefficient (Evangelidis & Psarakis).

    Starts from the identity on the coarsest level of :data:`ECC_SETTINGS` and refines
    level by level (the loop of :func:`hnet_keras.estimators.refine.refine_homography`, without its
    bound on the move). No convergence is a failure.
    """

    def __init__(self):
        super().__init__("ecc", "ECC direct alignment")

    def homography(self, image_a, image_b):
        # template A, input B: B(W x) ~ A(x), so W is H_ab (see the module docstring)
        try:
            return ecc_coarse_to_fine(image_a, image_b, np.eye(3), ECC_SETTINGS)
        except RefinementFailed as failure:
            raise EstimationFailed(failure.reason) from failure
