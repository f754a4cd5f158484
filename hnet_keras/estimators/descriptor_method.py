"""``dense_descriptors``: learned dense descriptors at Harris corners, mutual nearest neighbours, RANSAC.

The dense-descriptor network of :mod:`hnet_keras.features.descriptors` in the common method
interface (:class:`hnet_keras.estimators.contract.Method`): on each image, up to
:data:`MAX_KEYPOINTS` Harris corners (``cv2.goodFeaturesToTrack``, 4 px apart), their
descriptors bilinearly sampled from the stride-8 map; mutual nearest-neighbour matches (best
similarity over scale pairs when ``scales`` has several, the descriptor space of
:mod:`hnet_keras.features.descriptor_space`); ``H_ab`` from ``cv2.findHomography`` with RANSAC at
3 px.

The network is the shipped checkpoint (``checkpoints/dense_descriptors/``, or
``$HNET_KERAS_DESCRIPTORS``), loaded offline the first time the method runs; Keras is imported
only then, so registering the method costs nothing.
"""

from __future__ import annotations

import numpy as np

from .contract import EstimationFailed, Method, matched_homography

__all__ = ["DenseDescriptorMethod", "MAX_KEYPOINTS", "MIN_POINTS"]

MAX_KEYPOINTS = 1000
"""Harris corners kept per image."""
MIN_POINTS = 8
"""Fewer corners, matches or inliers than this is a failure."""


class DenseDescriptorMethod(Method):
    """Dense descriptors + mutual nearest neighbours + RANSAC (see the module doc).

    Args:
        checkpoint: a descriptor checkpoint path (see
            :func:`hnet_keras.features.descriptors.load_descriptor_net`), a loaded network, or
            ``None`` for the shipped one.
        scales: image scales described (``(1.0,)``: single scale; several: the descriptor space).
        max_keypoints: Harris corners per image.
    """

    def __init__(self, checkpoint=None, scales=(1.0,), max_keypoints=MAX_KEYPOINTS, name="dense_descriptors",
                 description="dense descriptors + mutual NN + RANSAC"):
        super().__init__(name, description)
        self.checkpoint, self.scales, self.max_keypoints = checkpoint, tuple(scales), int(max_keypoints)
        self._net = None if checkpoint is None or isinstance(checkpoint, (str, bytes)) or \
            hasattr(checkpoint, "__fspath__") else checkpoint
        self._describer = None

    @property
    def describer(self):
        """The :class:`~hnet_keras.features.pck.Describer` of the network, loaded on first use."""
        if self._describer is None:
            from ..features.descriptor_space import DescriptorSpace  # Keras, only when the method runs
            from ..features.descriptors import load_descriptor_net
            from ..features.pck import LearnedDescriptors

            if self._net is None:
                self._net = load_descriptor_net(self.checkpoint)
            learned = LearnedDescriptors(self._net)
            self._describer = learned if self.scales == (1.0,) else DescriptorSpace(learned, self.scales)
        return self._describer

    def features(self, image):
        """``(points (N, 2), descriptors (S, N, D))`` of a (H, W) uint8 image."""
        from ..features.pck import harris_corners  # Keras, only when the method runs

        image = np.asarray(image)
        if min(image.shape[:2]) < 16 * max(1.0, 1.0 / min(self.scales)):
            raise EstimationFailed("image too small")
        points = harris_corners(image, self.max_keypoints)
        if len(points) < MIN_POINTS:
            raise EstimationFailed("too few keypoints")
        describer = self.describer
        return points, describer.at(image, describer.maps(image), points)

    def homography(self, image_a, image_b):
        from ..features.pck import best_similarity, mutual_matches  # Keras, only when the method runs

        points_a, descriptors_a = self.features(image_a)
        points_b, descriptors_b = self.features(image_b)
        matches = mutual_matches(best_similarity(descriptors_a, descriptors_b)[0])
        return matched_homography(points_a, points_b, matches, MIN_POINTS, MIN_POINTS)
