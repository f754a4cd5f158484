"""Photometric augmentation of training pairs: brightness, contrast, gamma, noise and blur.

Synthetic pairs differ only by geometry; real pairs also differ in exposure, sensor
noise and focus. A network trained on clean pairs learns that equal intensities mean
equal content, and fails as soon as the light changes. Drawing these changes
*independently* for patch A and patch B teaches it to match structure, not gray levels.

Each change is applied to a patch with probability ``probability``, with a level drawn
uniformly from its range (the units of :mod:`hnet_keras.scoring.robustness`):

* ``brightness``: an added offset in gray levels, in ``[-b, b]``;
* ``contrast``: ``127.5 + factor * (x - 127.5)``, factor in ``[1/c, c]`` (log-uniform);
* ``gamma``: ``255 * (x / 255) ** g``, g in ``[1/g_max, g_max]`` (log-uniform);
* ``noise``: Gaussian noise, sigma in ``[0, sigma_max]`` gray levels;
* ``blur``: Gaussian blur, sigma in ``[0.3, blur_max]`` pixels.

Every draw comes from the ``numpy.random.Generator`` passed in, so augmented data is
as reproducible as the pairs. Geometry (and so the targets) never changes. numpy and
OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import photometric

__all__ = ["Augmentation", "DEFAULT_AUGMENTATION", "augment_patch", "augment_pairs"]


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the photometric changes; a range of 0 (or 1 for the factors) switches one off.

    Attributes:
        probability: chance that each change is applied to each patch.
        brightness: largest added offset, gray levels.
        contrast: largest contrast factor (its inverse is the smallest), >= 1.
        gamma: largest gamma (its inverse is the smallest), >= 1.
        noise: largest noise sigma, gray levels.
        blur: largest blur sigma, pixels (of the patch the change is applied to).
    """

    probability: float = 0.5
    brightness: float = 50.0
    contrast: float = 1.6
    gamma: float = 1.6
    noise: float = 12.0
    blur: float = 1.5

    def __post_init__(self):
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")
        for name in ("brightness", "noise", "blur"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("contrast", "gamma"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} is the largest factor and must be >= 1, got {getattr(self, name)}")


DEFAULT_AUGMENTATION = Augmentation()
"""The ranges the shipped model was trained with."""


def augment_patch(patch, rng, augmentation=DEFAULT_AUGMENTATION):
    """One patch, (H, W) uint8, changed photometrically; returns a new uint8 patch.

    The same number of random draws is made whatever is switched on or applied, so
    turning one change off does not alter the draws of the others.
    """
    a = augmentation
    apply = rng.random(5) < a.probability
    u = rng.random(5)
    x = patch.astype(np.float32)
    if apply[4] and a.blur > 0:  # blur first: optics come before the sensor
        x = photometric.blur(x, 0.3 + u[4] * max(a.blur - 0.3, 0.0))
    if apply[1] and a.contrast > 1:
        x = photometric.scale_contrast(x, np.float32(a.contrast ** (2 * u[1] - 1)))
    if apply[2] and a.gamma > 1:
        x = photometric.apply_gamma(x, np.float32(a.gamma ** (2 * u[2] - 1)))
    if apply[0] and a.brightness > 0:
        x = photometric.brighten(x, np.float32((2 * u[0] - 1) * a.brightness))
    noise = rng.standard_normal(patch.shape, dtype=np.float32)
    if apply[3] and a.noise > 0:
        x = photometric.add_noise(x, noise, np.float32(u[3] * a.noise))
    return photometric.to_uint8(x)


def augment_pairs(pairs, rng, augmentation=DEFAULT_AUGMENTATION):
    """Stacked pairs (N, P, P, 2) uint8 with each patch changed independently (a new array)."""
    pairs = np.asarray(pairs)
    if pairs.dtype != np.uint8 or pairs.ndim != 4 or pairs.shape[-1] != 2:
        raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
    out = np.empty_like(pairs)
    for i in range(len(pairs)):
        for channel in range(2):
            out[i, :, :, channel] = augment_patch(pairs[i, :, :, channel], rng, augmentation)
    return out
