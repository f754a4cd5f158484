"""The methods registry: every estimator the evaluations run, by name.

:data:`BASELINES` holds the classical methods of :mod:`hnet_keras.baselines`; ``network``
is a Keras HomographyNet wrapped by :class:`NetworkMethod` in the same interface.
:func:`get_method` gives a fresh method by name and :func:`resolve_methods` the list an
evaluation runs. Keras is imported only when a network method is made.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from .baselines import (
    MAGSAC_THRESHOLD,
    ECCMethod,
    Estimate,
    FeatureMethod,
    IdentityMethod,
    Method,
    akaze_available,
    akaze_detector,
    check_pair,
    orb_detector,
    sift_detector,
)
from .checkpoint import check_rho, load_checkpoint

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "METHOD_CHOICES",
    "NetworkMethod",
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

These shared instances accumulate failure counts over every call; :func:`get_method`
gives a fresh copy with its own counts (what the evaluations use)."""

DEFAULT_BASELINES = tuple(name for name in BASELINES if name != "akaze_ransac" or akaze_available())
"""The baselines an evaluation runs by default: those this OpenCV build has."""

METHOD_CHOICES = tuple(BASELINES) + ("network",)


class NetworkMethod(Method):
    """A Keras HomographyNet in the common interface.

    Pairs of any patch size are resized to the model's input and the offsets scaled
    back (:func:`hnet_keras.predict.predict_offsets`); ``rho`` is the network's
    *training* rho, which de-normalizes its outputs, whatever the rho of the test pairs.
    A network never "fails".

    :meth:`estimate_batch` runs the model on batches; its per-pair time is the batch
    time divided by the batch size, after one untimed warm-up batch (graph tracing).
    """

    def __init__(self, model, rho, batch_size=64, name="network", description=None):
        super().__init__(name, description or f"HomographyNet ({getattr(model, 'name', 'model')})")
        self.model, self.rho, self.batch_size = model, check_rho(rho, "network rho"), batch_size
        self._warm = False

    def _predict(self, pairs):
        from .predict import predict_offsets  # Keras, only when a network runs

        return np.asarray(predict_offsets(self.model, pairs, rho=self.rho, batch_size=self.batch_size), np.float64)

    def homography(self, image_a, image_b):
        from .predict import estimate_homography  # Keras, only when a network runs

        return estimate_homography(self.model, image_a, image_b, rho=self.rho)

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
        return offsets, np.zeros(len(pairs), bool), ms


def network_method(model, rho=None, batch_size=64, name="network"):
    """The ``network`` method from a Keras model or a checkpoint path.

    Args:
        model: a Keras model taking (B, S, S, 2) inputs, or a checkpoint path
            (:func:`hnet_keras.checkpoint.load_checkpoint`).
        rho: the rho the network was trained with (de-normalizes its outputs);
            ``None`` takes a checkpoint's own; a model object needs it.
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model, rho = load_checkpoint(model, rho)
    elif rho is None:
        raise ValueError("the 'network' method needs the rho its model was trained with (network_rho)")
    return NetworkMethod(model, rho=rho, batch_size=batch_size, name=name)


def get_method(name, model=None, rho=None, batch_size=64):
    """A fresh method by name; ``"network"`` needs ``model`` (a Keras model or a checkpoint path).

    A :class:`~hnet_keras.baselines.Method` instance passes through unchanged.

    Raises:
        ValueError: an unknown name, ``network`` without a model or rho, or AKAZE missing from OpenCV.
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
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHOD_CHOICES)}")
    if name == "akaze_ransac":
        akaze_detector()  # a clear error now rather than on the first pair
    return BASELINES[name].fresh()


def resolve_methods(methods=None, model=None, network_rho=None, batch_size=64):
    """Fresh methods with distinct names from names and/or Method objects.

    Default: every available baseline, plus ``network`` when ``model`` is given.
    """
    if methods is None:
        methods = list(DEFAULT_BASELINES) + (["network"] if model is not None else [])
    if isinstance(methods, (str, Method)):
        methods = [methods]
    resolved = [get_method(method, model=model, rho=network_rho, batch_size=batch_size) for method in methods]
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"methods must have distinct names, got {names}")
    return resolved
