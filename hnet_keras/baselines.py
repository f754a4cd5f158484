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

Methods (:data:`BASELINES`, name -> method; :func:`get_method` gives a fresh copy):

* ``identity``: zero offsets, the "no motion" reference.
* ``orb_ransac``: ORB features, Hamming matching with Lowe's ratio test,
  ``cv2.findHomography`` with RANSAC (the paper's baseline).
* ``sift_ransac``: the same with SIFT (L2 matching).
* ``akaze_ransac``: the same with AKAZE. OpenCV 5 moved AKAZE out of the main
  package (to opencv-contrib-python); where the build has no AKAZE the method
  is left out of :func:`available_methods` and asking for it raises a clear error.
* ``sift_magsac``: SIFT matches with ``cv2.USAC_MAGSAC`` instead of RANSAC.
* ``ecc``: direct (intensity-based) alignment, ``cv2.findTransformECC`` with
  ``MOTION_HOMOGRAPHY``, run coarse to fine on an image pyramid from the identity.

:func:`network_method` wraps a Keras model (through :mod:`hnet_keras.predict`) in the
same interface, with a batched path for speed.

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

from .geometry import homography_to_offsets

__all__ = [
    "Estimate",
    "EstimationFailed",
    "Method",
    "FeatureMethod",
    "ECCMethod",
    "NetworkMethod",
    "BASELINES",
    "DEFAULT_BASELINES",
    "available_methods",
    "get_method",
    "network_method",
    "check_homography",
    "akaze_available",
    "LOWE_RATIO",
    "MIN_KEYPOINTS",
    "MIN_MATCHES",
    "MIN_INLIERS",
    "RANSAC_REPROJ_THRESHOLD",
    "MAGSAC_THRESHOLD",
    "RANSAC_MAX_ITERS",
    "RANSAC_CONFIDENCE",
    "MIN_ABS_DET",
    "MAX_CONDITION",
    "MAX_OFFSET_FRACTION",
    "ORB_FEATURES",
    "ORB_EDGE_THRESHOLD",
    "ECC_MAX_ITERATIONS",
    "ECC_EPSILON",
    "ECC_GAUSS_FILTER",
    "ECC_PYRAMID_LEVELS",
    "ECC_MIN_SIDE",
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
ECC_MAX_ITERATIONS = 100
ECC_EPSILON = 1e-5
ECC_GAUSS_FILTER = 5
ECC_PYRAMID_LEVELS = 3
"""ECC runs on this many pyramid levels, coarsest first (each half the previous size)."""
ECC_MIN_SIDE = 24
"""No pyramid level smaller than this many pixels."""


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

    def __call__(self, patch_a, patch_b):
        """The :class:`Estimate` for one pair of (P, P) uint8 patches; a failure gives zero offsets."""
        patch_a, patch_b = _check_pair(patch_a, patch_b)
        size = patch_a.shape[0]
        start = time.perf_counter()
        try:
            h = self.homography(patch_a, patch_b)
            offsets = homography_to_offsets(check_homography(h, size), size=size)
            if not np.all(np.isfinite(offsets)):
                raise EstimationFailed("non-finite offsets")
            failed = False
        except EstimationFailed as failure:
            self.failures[failure.reason] += 1
            offsets, failed = np.zeros(8), True
        except (cv2.error, np.linalg.LinAlgError) as error:
            self.failures[f"{type(error).__name__}"] += 1
            offsets, failed = np.zeros(8), True
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


def _check_pair(patch_a, patch_b):
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


def _orb():
    return cv2.ORB_create(nfeatures=ORB_FEATURES, edgeThreshold=ORB_EDGE_THRESHOLD, patchSize=ORB_EDGE_THRESHOLD)


def _akaze():
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

    Starts from the identity on the coarsest of :data:`ECC_PYRAMID_LEVELS` levels and
    refines level by level. ``cv2.error`` (no convergence) is a failure.
    """

    def __init__(self):
        super().__init__("ecc", "ECC direct alignment")

    def homography(self, image_a, image_b):
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_MAX_ITERATIONS, ECC_EPSILON)
        pyramid = [(image_a, image_b)]
        while len(pyramid) < ECC_PYRAMID_LEVELS and min(pyramid[-1][0].shape) // 2 >= ECC_MIN_SIDE:
            a, b = pyramid[-1]
            pyramid.append((cv2.pyrDown(a), cv2.pyrDown(b)))
        warp = np.eye(3, dtype=np.float32)
        for level, (a, b) in enumerate(reversed(pyramid)):
            if level > 0:
                # the warp of a level with coordinates twice as large: D W D^-1
                warp = (np.diag([2.0, 2.0, 1.0]) @ warp @ np.diag([0.5, 0.5, 1.0])).astype(np.float32)
            try:
                _, warp = cv2.findTransformECC(
                    a, b, warp, cv2.MOTION_HOMOGRAPHY, criteria, None, ECC_GAUSS_FILTER
                )
            except cv2.error as error:
                raise EstimationFailed("ECC did not converge") from error
            if not np.all(np.isfinite(warp)):
                raise EstimationFailed("non-finite homography")
        # template A, input B: B(W x) ~ A(x), so W is H_ab (see the module docstring)
        return warp.astype(np.float64)


class NetworkMethod(Method):
    """A Keras HomographyNet in the common interface.

    Pairs of any patch size are resized to the model's input and the offsets scaled
    back (:func:`hnet_keras.predict.predict_offsets`); ``rho`` is the network's
    *training* rho (32 for the paper's model), which de-normalizes its outputs,
    whatever the rho of the test pairs. A network never "fails".

    :meth:`estimate_batch` runs the model on batches; its per-pair time is the batch
    time divided by the batch size, after one untimed warm-up batch (graph tracing).
    """

    def __init__(self, model, rho=32, batch_size=64, name="network", description=None):
        super().__init__(name, description or f"HomographyNet ({getattr(model, 'name', 'model')})")
        self.model, self.rho, self.batch_size = model, rho, batch_size
        self._warm = False

    def _predict(self, pairs):
        from .predict import predict_offsets

        return np.asarray(predict_offsets(self.model, pairs, rho=self.rho, batch_size=self.batch_size), np.float64)

    def homography(self, image_a, image_b):
        from .predict import estimate_homography

        return estimate_homography(self.model, image_a, image_b, rho=self.rho)

    def __call__(self, patch_a, patch_b):
        patch_a, patch_b = _check_pair(patch_a, patch_b)
        start = time.perf_counter()
        offsets = self._predict(np.stack([patch_a, patch_b], axis=-1)[None])[0]
        return Estimate(offsets, False, (time.perf_counter() - start) * 1000.0)

    def estimate_batch(self, pairs, progress=None):
        pairs = np.asarray(pairs)
        if pairs.ndim != 4 or pairs.shape[-1] != 2 or pairs.dtype != np.uint8:
            raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
        if not self._warm and len(pairs):
            self._predict(pairs[: self.batch_size])
            self._warm = True
        offsets = np.zeros((len(pairs), 8))
        ms = np.zeros(len(pairs))
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            began = time.perf_counter()
            offsets[start : start + len(chunk)] = self._predict(chunk)
            ms[start : start + len(chunk)] = (time.perf_counter() - began) * 1000.0 / len(chunk)
            if progress is not None:
                progress(len(chunk))
        return offsets, np.zeros(len(pairs), bool), ms


def network_method(model, rho=None, batch_size=64, name="network"):
    """The ``network`` method from a Keras model or a checkpoint path.

    Args:
        model: a Keras model taking (B, S, S, 2) inputs, or a checkpoint path
            (:func:`hnet_keras.pretrained.load_checkpoint`).
        rho: the rho the network was trained with (de-normalizes its outputs);
            ``None`` takes a checkpoint's own, or 32 for a model object.
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from .pretrained import load_checkpoint

        model, checkpoint_rho = load_checkpoint(model)
        rho = checkpoint_rho if rho is None else rho
    return NetworkMethod(model, rho=32 if rho is None else rho, batch_size=batch_size, name=name)


# --- the registry -----------------------------------------------------------------------
def _sift():
    return cv2.SIFT_create()


BASELINES = {
    "identity": IdentityMethod(),
    "orb_ransac": FeatureMethod("orb_ransac", "ORB + RANSAC", _orb, cv2.NORM_HAMMING),
    "sift_ransac": FeatureMethod("sift_ransac", "SIFT + RANSAC", _sift, cv2.NORM_L2),
    "akaze_ransac": FeatureMethod("akaze_ransac", "AKAZE + RANSAC", _akaze, cv2.NORM_HAMMING),
    "sift_magsac": FeatureMethod(
        "sift_magsac", "SIFT + MAGSAC++", _sift, cv2.NORM_L2, cv2.USAC_MAGSAC, MAGSAC_THRESHOLD
    ),
    "ecc": ECCMethod(),
}
"""Registry: method name -> :class:`Method`, callable on a pair: ``BASELINES["sift_ransac"](a, b)``.

These shared instances accumulate failure counts over every call; :func:`get_method`
gives a fresh copy with its own counts (what the evaluation uses)."""


def available_methods():
    """Names of the baselines this OpenCV build can run (AKAZE only where present)."""
    return [name for name in BASELINES if name != "akaze_ransac" or akaze_available()]


DEFAULT_BASELINES = tuple(available_methods())
"""The baselines :func:`hnet_keras.evaluation.evaluate` runs by default."""


def get_method(name, model=None, rho=32, batch_size=64):
    """A fresh method by name; ``"network"`` needs ``model`` (a Keras model or a checkpoint path).

    A :class:`Method` instance passes through unchanged.

    Raises:
        ValueError: an unknown name, ``network`` without a model, or AKAZE missing from OpenCV.
    """
    if isinstance(model, Method) and name == "network":
        return model
    if isinstance(name, Method):
        return name
    if name == "network":
        if model is None:
            raise ValueError("the 'network' method needs a model: pass a Keras model or --checkpoint PATH")
        return network_method(model, rho=rho, batch_size=batch_size)
    if name not in BASELINES:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(BASELINES) + ['network']}")
    if name == "akaze_ransac":
        _akaze()  # a clear error now rather than on the first pair
    return BASELINES[name].fresh()
