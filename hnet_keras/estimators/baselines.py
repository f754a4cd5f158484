"""Classical homography estimators behind one interface, to compare HomographyNet against.

Every method keeps the contract of :mod:`hnet_keras.estimators.contract`: called on a pair
of patches it gives an :class:`~hnet_keras.estimators.contract.Estimate` and never raises on a
hard pair. Too few keypoints or matches, a ``None``, singular, ill-conditioned or non-finite
``H`` from RANSAC, or ECC not converging make it fall back to the identity (zero offsets),
with the reason in the estimate.

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

import cv2
import numpy as np

from .contract import EstimationFailed, Method
from .refine import ECCSettings, ecc_coarse_to_fine

__all__ = [
    "IdentityMethod",
    "FeatureMethod",
    "ECCMethod",
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
ORB_FEATURES = 500
ORB_EDGE_THRESHOLD = 15
"""ORB's border and patch size; OpenCV's 31 leaves little of a 128 px patch to detect in."""
ECC_SETTINGS = ECCSettings(levels=3, min_side=24, iterations=100, epsilon=1e-5, gauss_filter=5)
"""The ``ecc`` baseline's pyramid (coarsest first, each level half the previous size) and ECC criteria."""


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
        return ecc_coarse_to_fine(image_a, image_b, np.eye(3), ECC_SETTINGS)
