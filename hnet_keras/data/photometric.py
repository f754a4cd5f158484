"""The photometric changes, one formula each, shared by training augmentation
(:mod:`hnet_keras.data.augment`) and the robustness sweep (:mod:`hnet_keras.scoring.robustness`).

Each takes a float image ``x`` in gray levels (any shape; ``blur`` a 2-D image) and returns a
float image of the same dtype; :func:`to_uint8` rounds and clips the result back.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["brighten", "scale_contrast", "apply_gamma", "add_noise", "blur", "to_uint8"]


def brighten(x, delta):
    """``x + delta``: a brightness shift in gray levels."""
    return x + delta


def scale_contrast(x, factor):
    """``127.5 + factor * (x - 127.5)``: contrast scaled about mid-gray."""
    return 127.5 + factor * (x - 127.5)


def apply_gamma(x, gamma):
    """``255 * (x / 255) ** gamma``, with ``x`` clipped to ``[0, 255]`` first."""
    return 255.0 * (np.clip(x, 0, 255) / 255.0) ** gamma


def add_noise(x, noise, sigma):
    """``x + sigma * noise``: sensor noise from a standard-normal field ``noise`` of ``x``'s shape."""
    return x + noise * sigma


def blur(x, sigma):
    """Gaussian blur of a 2-D image, ``sigma`` in pixels (the kernel size follows from it)."""
    return cv2.GaussianBlur(x, (0, 0), sigma)


def to_uint8(x):
    """Round and clip to ``[0, 255]``, as uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
