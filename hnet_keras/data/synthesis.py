"""DeTone et al.'s pair synthesis, in its four steps.

1. Read the image as grayscale, scale it to cover ``image_size`` and centre-crop it.
2. Take a random ``patch_size`` square placed so that every perturbed corner stays
   inside the image (``rho`` pixels of margin on every side).
3. Perturb each corner by an integer drawn uniformly from ``[-rho, rho]``.
4. Patch A is the crop at the original corners; patch B is the same crop of the image
   warped by ``H_ab = getPerspectiveTransform(perturbed, original)`` (see
   :mod:`hnet_keras.geometry` for the convention).

Only the patch window is warped: ``getPerspectiveTransform(square, perturbed)`` is used
as an inverse map (``WARP_INVERSE_MAP``), which samples the same pixels as warping the
whole image by ``H_ab`` and cropping, for a fraction of the work.

The module also holds what turns images into arrays of pairs and pairs into network
inputs (numpy and OpenCV only, no Keras): :func:`load_prepared_images`,
:func:`sample_pairs`, :func:`synthesize_pairs`, :func:`resize_pairs` and
:func:`normalize_images` / :func:`normalize_offsets`.
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..geometry import patch_corners
from .images import read_grayscale, resolve_image_source

__all__ = [
    "SynthesisConfig",
    "TRAIN_PROTOCOL",
    "REPORT_PATCH",
    "PAPER_TEST_PROTOCOL",
    "Pair",
    "prepare_image",
    "sample_pair",
    "sample_pairs",
    "pairs_from_image",
    "load_prepared_images",
    "synthesize_pairs",
    "resize_image",
    "resize_with_scale",
    "resize_pairs",
    "normalize_images",
    "normalize_offsets",
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
REPORT_PATCH = TRAIN_PROTOCOL.patch_size
"""Every MACE is reported in pixels of a patch this wide (128 px), whatever the model's input size."""


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


def sample_pairs(prepared, sources, rng, config=TRAIN_PROTOCOL):
    """Pair ``i`` sampled from ``prepared[sources[i]]``, in order, from one ``rng``.

    Returns:
        ``(pairs, offsets)``: (N, P, P, 2) uint8 and (N, 8) int64, the archive format.
    """
    size = config.patch_size
    pairs = np.empty((len(sources), size, size, 2), np.uint8)
    offsets = np.empty((len(sources), 8), np.int64)
    for i, source in enumerate(sources):
        pair = sample_pair(prepared[source], rng, config)
        pairs[i, :, :, 0], pairs[i, :, :, 1], offsets[i] = pair.patch_a, pair.patch_b, pair.offsets
    return pairs, offsets


def pairs_from_image(gray, count, rng, config=TRAIN_PROTOCOL):
    """``count`` pairs from one raw grayscale image, as ((count, P, P, 2) uint8, (count, 8) int64)."""
    return sample_pairs([prepare_image(gray, config)], np.zeros(count, np.int64), rng, config)


def load_prepared_images(images=None, config=TRAIN_PROTOCOL, progress=False):
    """Read and prepare (step 1 of the recipe) every usable image, skipping bad ones.

    Returns:
        ``(prepared, skipped)``: a list of (H, W) uint8 arrays and a Counter of the
        reasons images were skipped. Each skip is also warned about, naming the file.
    """
    paths = resolve_image_source(images)
    prepared, skipped = [], Counter()
    for path in tqdm(paths, unit="img", desc="reading images", disable=not progress):
        gray, reason = read_grayscale(path)
        if gray is None:
            skipped["unreadable"] += 1
            continue
        try:
            prepared.append(prepare_image(gray, config))
        except ValueError as error:
            warnings.warn(f"skipping {path}: {error}", stacklevel=2)
            skipped["too small"] += 1
    if not prepared:
        raise ValueError(f"none of the {len(paths)} images is usable for {config}")
    return prepared, skipped


def synthesize_pairs(count, images=None, config=TRAIN_PROTOCOL, seed=0, prepared=None):
    """A seeded in-memory set of ``count`` pairs, drawn evenly over the images.

    Returns:
        ``(pairs, offsets)``: (count, P, P, 2) uint8 and (count, 8) int64, the
        archive format.
    """
    if prepared is None:
        prepared, _ = load_prepared_images(images, config)
    return sample_pairs(prepared, np.arange(count) % len(prepared), np.random.default_rng(seed), config)


def resize_image(image, width, height):
    """Resize with area averaging to shrink (no aliasing) and bilinear to enlarge."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_with_scale(image, width, height):
    """``(resized, S)``: the image resized to ``width`` x ``height`` (see :func:`resize_image`) and the
    (3, 3) ``S = diag(width / W, height / H, 1)`` mapping its (x, y) points to the resized image's."""
    scale = np.diag([width / image.shape[1], height / image.shape[0], 1.0])
    return resize_image(image, width, height), scale


def resize_pairs(pairs, size):
    """Stacked pairs (N, P, P, 2) resized to (N, size, size, 2) with :func:`resize_image`.

    Training on resized pairs (``OnTheFlyDataset(input_size=...)``) and prediction
    (:func:`hnet_keras.estimators.predict.predict_offsets`) both go through here, so a model sees
    the same pixels in both.
    """
    if pairs.shape[1] == size:
        return pairs
    resized = np.empty((len(pairs), size, size, 2), pairs.dtype)
    for i, pair in enumerate(pairs):
        for channel in range(2):  # channel by channel: OpenCV rounds 2-channel images differently
            resized[i, :, :, channel] = resize_image(pair[:, :, channel], size, size)
    return resized


def normalize_images(images):
    """uint8 pairs to the network's input range [-1, 1]: ``(x - 127.5) / 127.5``."""
    return (np.asarray(images, np.float32) - 127.5) / 127.5


def normalize_offsets(offsets, rho):
    """Pixel offsets to the regression target ``offsets / rho``."""
    return np.asarray(offsets, np.float32) / np.float32(rho)
