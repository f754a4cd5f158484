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

Real pairs also differ in ways that DeTone's pairs never do; these are off by default and
switched on by :data:`REAL_PAIR_AUGMENTATION` (the large-motion model's):

* ``gradient``: an illumination gradient across the patch, ``x * (1 + s * r)`` with ``r`` from -1
  to 1 in a random direction, strength ``s`` in ``[0, gradient]``;
* ``vignetting``: darker corners, ``x * (1 - v * d^2)``, ``v`` in ``[0, vignetting]``;
* ``jpeg``: a JPEG round trip at a quality in ``[jpeg, 95]`` (0 switches it off).

Every draw comes from the ``numpy.random.Generator`` passed in, so augmented data is
as reproducible as the pairs. Geometry (and so the targets) never changes. numpy and
OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import photometric

__all__ = ["Augmentation", "DEFAULT_AUGMENTATION", "REAL_PAIR_AUGMENTATION", "augment_patch", "augment_pairs"]


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
        gradient: largest strength of an illumination gradient (0: off).
        vignetting: largest strength of vignetting (0: off).
        jpeg: lowest JPEG quality of a round trip, up to 95 (0: off).
    """

    probability: float = 0.5
    brightness: float = 50.0
    contrast: float = 1.6
    gamma: float = 1.6
    noise: float = 12.0
    blur: float = 1.5
    gradient: float = 0.0
    vignetting: float = 0.0
    jpeg: int = 0

    def __post_init__(self):
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")
        for name in ("brightness", "noise", "blur"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("contrast", "gamma"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} is the largest factor and must be >= 1, got {getattr(self, name)}")
        for name in ("gradient", "vignetting"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not (self.jpeg == 0 or 1 <= self.jpeg <= 95):
            raise ValueError(f"jpeg is the lowest quality and must be 0 (off) or in [1, 95], got {self.jpeg}")

    @property
    def real_pair(self):
        """Whether a real-pair change (gradient, vignetting, JPEG) is switched on."""
        return bool(self.gradient or self.vignetting or self.jpeg)


DEFAULT_AUGMENTATION = Augmentation()
"""The ranges the shipped model was trained with."""

REAL_PAIR_AUGMENTATION = Augmentation(gradient=0.5, vignetting=0.4, jpeg=30)
"""DEFAULT_AUGMENTATION plus an illumination gradient, vignetting and JPEG: the large-motion model's."""


def augment_patch(patch, rng, augmentation=DEFAULT_AUGMENTATION):
    """One patch, (H, W) uint8, changed photometrically; returns a new uint8 patch.

    The same number of random draws is made whatever is switched on or applied, so
    turning one change off does not alter the draws of the others; the real-pair changes
    draw four more numbers only when one of them is on, so the default's stream is unchanged.
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
    if a.real_pair:  # the light on the scene and the lens, before the sensor's noise
        real_apply, real = rng.random(3) < a.probability, rng.random(4)
        if real_apply[0] and a.gradient > 0:
            x = photometric.shade(x, real[0] * a.gradient, 2 * np.pi * real[1])
        if real_apply[1] and a.vignetting > 0:
            x = photometric.vignette(x, real[2] * a.vignetting)
    noise = rng.standard_normal(patch.shape, dtype=np.float32)
    if apply[3] and a.noise > 0:
        x = photometric.add_noise(x, noise, np.float32(u[3] * a.noise))
    if a.real_pair and real_apply[2] and a.jpeg:  # the camera's encoder comes last
        x = photometric.compress_jpeg(x, a.jpeg + real[3] * (95 - a.jpeg))
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
