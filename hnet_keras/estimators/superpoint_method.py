"""``superpoint``: SuperPoint keypoints and descriptors, mutual nearest neighbours, RANSAC.

The learned-feature pipeline of DeTone et al. (2018) in the common method interface
(:class:`hnet_keras.estimators.baselines.Method`): on each image, up to
:data:`MAX_KEYPOINTS` SuperPoint detections (NMS 4 px) and their descriptors
(:func:`hnet_keras.features.superpoint.describe`); mutual nearest-neighbour matches
(:func:`hnet_keras.features.matching.mutual_nearest_neighbours`); ``H_ab`` from
``cv2.findHomography`` with RANSAC at 3 px. Images are cropped to multiples of 8 from their
top-left corner, which leaves point coordinates unchanged.

The network is the shipped checkpoint (``checkpoints/superpoint/``, or
``$HNET_KERAS_SUPERPOINT``), loaded offline the first time the method runs; Keras is
imported only then, so registering the method costs nothing.
"""

from __future__ import annotations

import numpy as np

from ..features.matching import mutual_nearest_neighbours
from .baselines import MIN_INLIERS, MIN_KEYPOINTS, MIN_MATCHES
from .contract import EstimationFailed, Method, matched_homography

__all__ = ["SuperPointMethod", "MAX_KEYPOINTS", "DETECTION_THRESHOLD"]

MAX_KEYPOINTS = 1000
"""Keypoints kept per image (the SuperPoint homography protocol)."""
DETECTION_THRESHOLD = 0.001
"""Smallest corner probability of a keypoint."""


class SuperPointMethod(Method):
    """SuperPoint + mutual nearest neighbours + RANSAC (see the module doc).

    Args:
        checkpoint: a SuperPoint checkpoint path (see :func:`hnet_keras.features.superpoint.load_superpoint`),
            a loaded network, or ``None`` for the shipped one.
        max_keypoints, threshold: detections kept per image and their smallest probability.
    """

    def __init__(self, checkpoint=None, max_keypoints=MAX_KEYPOINTS, threshold=DETECTION_THRESHOLD,
                 name="superpoint", description="SuperPoint + mutual NN + RANSAC"):
        super().__init__(name, description)
        self.checkpoint, self.max_keypoints, self.threshold = checkpoint, int(max_keypoints), float(threshold)
        self._net = None if checkpoint is None or isinstance(checkpoint, (str, bytes)) or \
            hasattr(checkpoint, "__fspath__") else checkpoint

    @property
    def net(self):
        """The SuperPoint network, loaded on first use."""
        if self._net is None:
            from ..features.superpoint import load_superpoint  # Keras, only when the method runs

            self._net = load_superpoint(self.checkpoint)
            if len(self._net.outputs) != 2:
                raise ValueError(f"{self.checkpoint or 'the shipped checkpoint'}: a MagicPoint has no descriptors; "
                                 "the superpoint method needs a SuperPoint checkpoint")
        return self._net

    def features(self, image):
        """``(points (N, 2), descriptors (N, D))`` of a (H, W) uint8 image."""
        from ..features.superpoint import describe  # Keras, only when the method runs

        image = np.asarray(image)
        height, width = image.shape[0] // 8 * 8, image.shape[1] // 8 * 8
        if height < 16 or width < 16:
            raise EstimationFailed("image too small")
        points, _, descriptors = describe(self.net, image[:height, :width], threshold=self.threshold,
                                          top_k=self.max_keypoints)
        return points, descriptors

    def homography(self, image_a, image_b):
        points_a, descriptors_a = self.features(image_a)
        points_b, descriptors_b = self.features(image_b)
        if min(len(points_a), len(points_b)) < MIN_KEYPOINTS:
            raise EstimationFailed("too few keypoints")
        matches, _ = mutual_nearest_neighbours(descriptors_a, descriptors_b)
        return matched_homography(points_a, points_b, matches, MIN_MATCHES, MIN_INLIERS)
