"""The photometric changes, one formula each, shared by training augmentation
(:mod:`hnet_keras.data.augment`) and the robustness sweep (:mod:`hnet_keras.scoring.robustness`).

Each takes a float image ``x`` in gray levels (any shape; ``blur`` a 2-D image) and returns a
float image of the same dtype; :func:`to_uint8` rounds and clips the result back.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["brighten", "scale_contrast", "apply_gamma", "add_noise", "blur", "shade", "vignette", "compress_jpeg",
           "to_uint8"]


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


def shade(x, strength, direction):
    """``x * (1 + strength * r)``: an illumination gradient across a 2-D image, ``r`` going linearly
    from -1 to 1 along the direction at angle ``direction`` (radians), corner to corner."""
    height, width = x.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = np.cos(direction) * (xs / max(width - 1, 1) - 0.5) + np.sin(direction) * (ys / max(height - 1, 1) - 0.5)
    reach = 0.5 * (abs(np.cos(direction)) + abs(np.sin(direction)))
    return x * (1.0 + np.float32(strength) * along / np.float32(reach))


def vignette(x, strength):
    """``x * (1 - strength * d^2)``: a lens's darker corners, ``d`` the distance from the centre of a
    2-D image over the half-diagonal (1 in the corners)."""
    height, width = x.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    d2 = ((xs - (width - 1) / 2) ** 2 + (ys - (height - 1) / 2) ** 2) / (((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2)
    return x * (1.0 - np.float32(strength) * d2)


def compress_jpeg(x, quality):
    """The image after a JPEG round trip at ``quality`` (1-100): blocks and ringing, as a float image."""
    ok, encoded = cv2.imencode(".jpg", to_uint8(x), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any 2-D uint8 image
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(x.dtype)


def to_uint8(x):
    """Round and clip to ``[0, 255]``, as uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
