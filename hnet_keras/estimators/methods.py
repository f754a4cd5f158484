"""The methods registry: every estimator the evaluations run, by name.

:data:`BASELINES` holds the classical methods of :mod:`hnet_keras.estimators.baselines`; ``network``
is a Keras HomographyNet wrapped by :class:`NetworkMethod` in the same interface;
:data:`LEARNED_FEATURES` are SuperPoint and the dense descriptors, matched by RANSAC.
:func:`get_method` gives a fresh method by name and :func:`resolve_methods` the list an
evaluation runs. Nothing here imports Keras: a network method runs the model it is given.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..geometry import homography_to_offsets, offsets_to_homography
from ..nets.checkpoint import check_rho, load_checkpoint
from .baselines import (
    MAGSAC_THRESHOLD,
    ECCMethod,
    FeatureMethod,
    IdentityMethod,
    akaze_available,
    akaze_detector,
    orb_detector,
    sift_detector,
)
from .contract import Estimate, Estimates, EstimationFailed, Method, check_pair
from .descriptor_method import DenseDescriptorMethod
from .predict import estimate_homography, predict_offsets
from .refine import ECCSettings, refine_homography
from .superpoint_method import SuperPointMethod

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "METHOD_CHOICES",
    "NETWORK_METHODS",
    "HYPOTHESES_METHOD",
    "LEARNED_FEATURES",
    "NetworkMethod",
    "RefinedNetworkMethod",
    "network_method",
    "get_method",
    "resolve_methods",
]

BASELINES = {
    "identity": IdentityMethod(),
    "orb_ransac": FeatureMethod("orb_ransac", "ORB + RANSAC", orb_detector, cv2.NORM_HAMMING),
    "sift_ransac": FeatureMethod("sift_ransac", "SIFT + RANSAC", sift_detector, cv2.NORM_L2),
    "akaze_ransac": FeatureMethod("akaze_ransac", "AKAZE + RANSAC", akaze_detector, cv2.NORM_HAMMING),
    "sift_magsac": FeatureMethod(
        "sift_magsac", "SIFT + MAGSAC++", sift_detector, cv2.NORM_L2, cv2.USAC_MAGSAC, MAGSAC_THRESHOLD
    ),
    "ecc": ECCMethod(),
}
"""Classical methods by name, callable on a pair: ``BASELINES["sift_ransac"](a, b)``.

:func:`get_method` gives a fresh copy with its own detector and matcher (what the evaluations use)."""

DEFAULT_BASELINES = tuple(name for name in BASELINES if name != "akaze_ransac" or akaze_available())
"""The baselines an evaluation runs by default: those this OpenCV build has."""

NETWORK_METHODS = ("network", "network+ecc")
"""The methods that need a model: the network alone, and refined by ECC (the default pipeline on
patches; on whole images without the large-motion hypotheses, for comparison)."""

HYPOTHESES_METHOD = "network+ecc+hypotheses"
"""``network+ecc`` that, on whole images it aligns poorly, also tries large rotations and zooms and a
start from SuperPoint keypoints:
the default pipeline of :func:`~hnet_keras.estimators.predict.estimate_homography` and of the
``estimate`` command, and a default method of ``evaluate-pairs``. On patches it is ``network+ecc``."""

LEARNED_FEATURES = {"superpoint": SuperPointMethod, "dense_descriptors": DenseDescriptorMethod}
"""Learned keypoints and descriptors matched by RANSAC (:mod:`hnet_keras.features`), each with its
shipped checkpoint; not in the defaults, since they load Keras: ask for them by name."""

METHOD_CHOICES = tuple(BASELINES) + NETWORK_METHODS + (HYPOTHESES_METHOD,) + tuple(LEARNED_FEATURES)


class NetworkMethod(Method):
    """A Keras HomographyNet in the common interface.

    Pairs of any patch size are resized to the model's input and the offsets scaled
    back (:func:`hnet_keras.estimators.predict.predict_offsets`); ``rho`` is the network's
    *training* rho, which de-normalizes its outputs, whatever the rho of the test pairs.
    A network never "fails".

    :meth:`estimate_batch` runs the model on batches; its per-pair time is the batch
    time divided by the batch size, after one untimed warm-up batch (graph tracing).
    """

    def __init__(self, model, rho, batch_size=64, name="network", description=None, decode="expectation"):
        super().__init__(name, description or f"HomographyNet ({getattr(model, 'name', 'model')})")
        self.model, self.rho, self.batch_size = model, check_rho(rho, "network rho"), batch_size
        self.decode = decode  # a classification model's decoding (predict_offsets)
        self._warm = False

    def _predict(self, pairs):
        # A batch of another size makes Keras trace the model again (seconds, counted in
        # the pairs' time): a short last batch is padded to the full size instead.
        padding = -len(pairs) % self.batch_size if len(pairs) > 1 else 0
        if padding:
            pairs = np.concatenate([pairs, np.repeat(pairs[-1:], padding, axis=0)])
        offsets = predict_offsets(self.model, pairs, rho=self.rho, batch_size=self.batch_size, decode=self.decode)
        return np.asarray(offsets[: len(offsets) - padding], np.float64)

    def homography(self, image_a, image_b):
        return estimate_homography(self.model, image_a, image_b, rho=self.rho, refine=False)

    def offsets(self, patch_a, patch_b):
        return self._predict(np.stack([patch_a, patch_b], axis=-1)[None])[0]

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
        return Estimates(offsets, np.zeros(len(pairs), bool), ms, [None] * len(pairs))


class RefinedNetworkMethod(NetworkMethod):
    """``network+ecc``: the network's estimate refined by ECC (:func:`hnet_keras.estimators.refine.refine_homography`).

    On a pair, ECC starts from the network's offsets, coarse to fine at the patch's
    resolution. When it raises, gives a non-finite homography or moves a corner further
    than its bound (:class:`~hnet_keras.estimators.refine.ECCSettings`) from the network's guess, the
    network's estimate stays: the pair is counted as failed with the reason, and keeps
    the network's offsets (not the identity's). On whole images
    (:meth:`homography`) it is :func:`hnet_keras.estimators.predict.estimate_homography`'s pipeline,
    with its ``hypotheses`` and ``keypoints``. A pair's time is its share of the network's batch plus its refinement.
    """

    def __init__(self, model, rho, batch_size=64, name="network+ecc", description=None, settings=None,
                 hypotheses=False, keypoints=True):
        default = f"HomographyNet + ECC{' + hypotheses' if hypotheses else ''} ({getattr(model, 'name', 'model')})"
        super().__init__(model, rho, batch_size, name, description or default)
        self.settings = settings or ECCSettings()
        self.hypotheses, self.keypoints = hypotheses, keypoints
        self.last_choice = None
        """The candidate the last :meth:`homography` kept: ``refined``, ``start`` (the network's),
        ``identity``, ``hypothesis (angle, zoom)`` or ``keypoints``."""

    def homography(self, image_a, image_b):
        """The whole-image pipeline; :attr:`last_choice` then says which candidate it kept."""
        self.last_choice = None
        h_ab, info = estimate_homography(self.model, image_a, image_b, rho=self.rho, hypotheses=self.hypotheses,
                                         keypoints=self.keypoints, details=True)
        hypothesis = info.get("hypothesis")
        self.last_choice = info["chosen"] + (
            f" ({hypothesis['angle']:g} deg, zoom {hypothesis['scale']:g})" if hypothesis else "")
        return h_ab

    def refine(self, patch_a, patch_b, offsets):
        """``(offsets, reason)``: the network's ``offsets`` refined (reason ``None``), or kept with
        the reason of the fallback."""
        size = patch_a.shape[0]
        try:
            refined = refine_homography(patch_a, patch_b, offsets_to_homography(offsets, size), self.settings)
            return homography_to_offsets(refined, size), None
        except EstimationFailed as failure:
            return np.asarray(offsets, np.float64), failure.reason

    def __call__(self, patch_a, patch_b):
        patch_a, patch_b = check_pair(patch_a, patch_b)
        start = time.perf_counter()
        offsets, reason = self.refine(patch_a, patch_b, self.offsets(patch_a, patch_b))
        return Estimate(offsets, reason is not None, (time.perf_counter() - start) * 1000.0, reason)

    def estimate_batch(self, pairs, progress=None):
        offsets, failed, ms, reasons = super().estimate_batch(pairs)
        for i, pair in enumerate(np.asarray(pairs)):
            began = time.perf_counter()
            offsets[i], reasons[i] = self.refine(pair[..., 0], pair[..., 1], offsets[i])
            failed[i] = reasons[i] is not None
            ms[i] += (time.perf_counter() - began) * 1000.0
            if progress is not None:
                progress(1)
        return Estimates(offsets, failed, ms, reasons)


def network_method(model, rho=None, batch_size=64, name="network"):
    """The ``network`` (or ``network+ecc``) method from a Keras model or a checkpoint path.

    Args:
        model: a Keras model taking (B, S, S, 2) inputs, or a checkpoint path
            (:func:`hnet_keras.nets.checkpoint.load_checkpoint`).
        rho: the rho the network was trained with (de-normalizes its outputs);
            ``None`` takes a checkpoint's own; a model object needs it.
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model, rho = load_checkpoint(model, rho)
    elif rho is None:
        raise ValueError("the 'network' method needs the rho its model was trained with (network_rho)")
    if name == HYPOTHESES_METHOD:
        return RefinedNetworkMethod(model, rho=rho, batch_size=batch_size, name=name, hypotheses=True)
    kind = RefinedNetworkMethod if name == "network+ecc" else NetworkMethod
    return kind(model, rho=rho, batch_size=batch_size, name=name)


def get_method(name, model=None, rho=None, batch_size=64):
    """A fresh method by name; ``"network"`` and ``"network+ecc"`` need ``model`` (a Keras model or a checkpoint path).

    A :class:`~hnet_keras.estimators.baselines.Method` instance passes through unchanged.

    Raises:
        ValueError: an unknown name, ``network`` without a model or rho, or AKAZE missing from OpenCV.
    """
    if isinstance(model, Method) and name == "network":
        return model
    if isinstance(name, Method):
        return name
    if name in NETWORK_METHODS + (HYPOTHESES_METHOD,):
        if model is None:
            raise ValueError(f"the {name!r} method needs a model: pass a Keras model or --checkpoint PATH")
        return network_method(model, rho=rho, batch_size=batch_size, name=name)
    if name in LEARNED_FEATURES:
        return LEARNED_FEATURES[name]()
    if name not in BASELINES:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHOD_CHOICES)}")
    if name == "akaze_ransac":
        akaze_detector()  # a clear error now rather than on the first pair
    return BASELINES[name].fresh()


def resolve_methods(methods=None, model=None, network_rho=None, batch_size=64):
    """Fresh methods with distinct names from names and/or Method objects.

    Default: every available baseline, plus ``network`` and ``network+ecc`` when ``model`` is given.
    """
    if methods is None:
        methods = list(DEFAULT_BASELINES) + (list(NETWORK_METHODS) if model is not None else [])
    if isinstance(methods, (str, Method)):
        methods = [methods]
    resolved = [get_method(method, model=model, rho=network_rho, batch_size=batch_size) for method in methods]
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"methods must have distinct names, got {names}")
    return resolved
