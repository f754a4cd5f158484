"""DeTone et al.'s pair synthesis, in its four steps.

1. Read the image as grayscale, scale it to cover ``image_size`` and centre-crop it.
2. Take a random ``patch_size`` square placed so that every perturbed corner stays
   inside the image (``rho`` pixels of margin on every side).
3. Perturb each corner by an integer drawn uniformly from ``[-rho, rho]``.
4. Patch A is the crop at the original corners; patch B is the same crop of the image
   warped by ``H_ab = getPerspectiveTransform(perturbed, original)`` (see
   :mod:`hnet_keras.geometry` for the convention).

Only the patch window is warped (``H_ab`` composed with a translation to the patch):
this samples the same pixels as warping the whole image and cropping, for a fraction
of the work.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import patch_corners

__all__ = [
    "SynthesisConfig",
    "TRAIN_PROTOCOL",
    "PAPER_TEST_PROTOCOL",
    "Pair",
    "prepare_image",
    "sample_pair",
    "pairs_from_image",
]


@dataclass(frozen=True)
class SynthesisConfig:
    """Parameters of the recipe.

    Attributes:
        image_size: ``(width, height)`` the image is scaled and cropped to.
        patch_size: side of the square patches.
        rho: largest corner perturbation in pixels (inclusive).
    """

    image_size: tuple = (320, 240)
    patch_size: int = 128
    rho: int = 32

    def __post_init__(self):
        width, height = self.image_size
        if self.patch_size < 2:
            raise ValueError(f"patch_size must be at least 2, got {self.patch_size}")
        if self.rho < 0:
            raise ValueError(f"rho must be >= 0, got {self.rho}")
        needed = self.patch_size + 2 * self.rho
        if width < needed or height < needed:
            raise ValueError(
                f"image_size {width}x{height} is too small for patch_size {self.patch_size} "
                f"with rho {self.rho}: both sides must be at least patch_size + 2*rho = {needed}"
            )

    @property
    def min_source_side(self):
        """Smallest side a source image needs (patch plus its margins), in pixels."""
        return self.patch_size + 2 * self.rho


TRAIN_PROTOCOL = SynthesisConfig((320, 240), 128, 32)
PAPER_TEST_PROTOCOL = SynthesisConfig((640, 480), 256, 64)


@dataclass
class Pair:
    """One synthesized pair.

    Attributes:
        patch_a, patch_b: (P, P) uint8.
        offsets: (8,) int64, perturbed - original corners.
        origin: ``(x, y)`` of the patch's top-left corner in the prepared image.
    """

    patch_a: np.ndarray
    patch_b: np.ndarray
    offsets: np.ndarray
    origin: tuple

    @property
    def stacked(self):
        """(P, P, 2) uint8, patch A in channel 0 and patch B in channel 1."""
        return np.stack([self.patch_a, self.patch_b], axis=-1)

    def corners(self, patch_size=None):
        """Original and perturbed corners in image coordinates, each (4, 2)."""
        size = patch_size or self.patch_a.shape[0]
        original = patch_corners(size, self.origin)
        return original, original + self.offsets.reshape(4, 2)


def prepare_image(gray, config=TRAIN_PROTOCOL):
    """Step 1: scale a (H, W) uint8 image to cover ``config.image_size``, then centre-crop.

    Raises:
        ValueError: the image is not 2-D or is smaller than ``config.min_source_side``.
    """
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    height, width = gray.shape
    if min(height, width) < config.min_source_side:
        raise ValueError(
            f"image {width}x{height} is too small: both sides must be at least "
            f"{config.min_source_side} (patch_size + 2*rho)"
        )
    target_w, target_h = config.image_size
    scale = max(target_w / width, target_h / height)
    new_w, new_h = max(target_w, round(width * scale)), max(target_h, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_w, new_h), interpolation=interpolation)
    left, top = (new_w - target_w) // 2, (new_h - target_h) // 2
    return np.ascontiguousarray(resized[top : top + target_h, left : left + target_w])


@functools.lru_cache(maxsize=64)
def _draw_bounds(width, height, size, rho):
    """Lowest value and number of values of x, y and the 8 offsets, as float64."""
    low = np.array([rho, rho] + [-rho] * 8, np.float64)
    high = np.array([width - size - rho + 1, height - size - rho + 1] + [rho + 1] * 8, np.float64)
    return low, high - low


@functools.lru_cache(maxsize=16)
def _square(size):
    square = patch_corners(size).astype(np.float32)
    square.flags.writeable = False
    return square


def sample_pair(image, rng, config=TRAIN_PROTOCOL, warp="window"):
    """Steps 2-4 on a prepared image.

    Args:
        image: (H, W) uint8 prepared by :func:`prepare_image`.
        rng: a ``numpy.random.Generator``; it is the only source of randomness.
        config: the recipe's sizes.
        warp: ``"window"`` (warp only the patch) or ``"full"`` (warp the whole image
            and crop, kept for the benchmark and the equivalence test).
    """
    size, rho = config.patch_size, config.rho
    height, width = image.shape
    # One draw for the position and the 8 offsets (x, y, then offsets), each uniform
    # over its integers: floor(low + u * count) for u uniform in [0, 1).
    low, count = _draw_bounds(width, height, size, rho)
    draws = np.floor(low + rng.random(10) * count).astype(np.int64)
    x, y = int(draws[0]), int(draws[1])
    offsets = draws[2:]
    square = _square(size)
    perturbed = square + offsets.reshape(4, 2).astype(np.float32)
    perturbed += (x, y)
    patch_a = image[y : y + size, x : x + size].copy()
    if warp == "window":
        # The map from patch-B pixels to image pixels is inv(H_ab) after a shift by
        # (x, y): exactly getPerspectiveTransform(square, perturbed), used as an
        # inverse map so OpenCV samples only the patch window.
        to_image = cv2.getPerspectiveTransform(square, perturbed)
        patch_b = cv2.warpPerspective(
            image, to_image, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
    elif warp == "full":
        h_ab = cv2.getPerspectiveTransform(perturbed, square + np.float32([x, y]))
        patch_b = cv2.warpPerspective(image, h_ab, (width, height), flags=cv2.INTER_LINEAR)[
            y : y + size, x : x + size
        ].copy()
    else:
        raise ValueError(f"warp must be 'window' or 'full', got {warp!r}")
    return Pair(patch_a, patch_b, offsets, (x, y))


def pairs_from_image(gray, count, rng, config=TRAIN_PROTOCOL):
    """``count`` pairs from one raw grayscale image, as ((count, P, P, 2) uint8, (count, 8) int64)."""
    prepared = prepare_image(gray, config)
    size = config.patch_size
    images = np.empty((count, size, size, 2), np.uint8)
    offsets = np.empty((count, 8), np.int64)
    for i in range(count):
        pair = sample_pair(prepared, rng, config)
        images[i, :, :, 0] = pair.patch_a
        images[i, :, :, 1] = pair.patch_b
        offsets[i] = pair.offsets
    return images, offsets
