"""Using a trained model: corner offsets of pairs of any patch size, and the homography
between two whole images of any size (the network's coarse estimate, refined by ECC).

The model works at its own input size ``S`` (128 for the paper). Inputs of another
size are resized to ``S``; the predicted offsets, which are in pixels of the resized
input, are then scaled back to the given size. Regression models output
``offsets / rho``; classification models output bin probabilities, decoded by their
expectation (:func:`hnet_keras.nets.targets.outputs_to_offsets`). The ``rho`` the model was
trained with is always an argument: :func:`hnet_keras.nets.checkpoint.load_checkpoint` gives it.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from ..data.synthesis import (
    TRAIN_PROTOCOL,
    normalize_images,
    resize_image,
    resize_with_scale,
    resize_pairs,
)
from ..geometry import offsets_to_homography
from ..nets.checkpoint import check_rho
from ..nets.targets import outputs_to_offsets
from .refine import MIN_TEXTURE, align_images, image_texture

__all__ = [
    "model_input_size",
    "predict_offsets",
    "coarse_homography",
    "estimate_homography",
    "LowTextureWarning",
]

"""Every MACE a notebook reports is in pixels of a patch of this side (128, the paper's)."""

COARSE_PATCH = TRAIN_PROTOCOL.patch_size
"""Side of the central patch the network sees of two whole images (its training patches' side)."""
COARSE_SIDE = COARSE_PATCH * 5 // 4
"""Short side the whole images are scaled to before the central patch is cut (160 px)."""
COARSE_PASSES = 3
"""Network passes of the coarse estimate (each further one on B aligned by the previous).
On 60 whole-image test pairs (640x480, corners moved up to 20%, a mid-training model),
98% ended within 3 px after ECC with 3 passes, 95% with 2 and 88% with 1."""



def model_input_size(model):
    """The side ``S`` of the square ``(S, S, 2)`` pairs the model takes."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 2 or shape[1] is None:
        raise ValueError(f"expected a model taking (S, S, 2) pairs, got input shape {shape}")
    return int(shape[1])


def _predict_model_pixels(model, pairs, rho, batch_size, decode="expectation"):
    """Offsets in pixels of the model's input for (N, S, S, 2) uint8 pairs."""
    rho = check_rho(rho, "rho")
    outputs = model.predict(normalize_images(pairs), batch_size=batch_size, verbose=0)
    return outputs_to_offsets(outputs, rho, decode)


def predict_offsets(model, pairs, rho, batch_size=64, decode="expectation"):
    """Corner offsets of stacked pairs, in pixels of the pairs' own size.

    Args:
        model: a HomographyNet (regression, classification or mobilenet).
        pairs: uint8 (N, P, P, 2), patch A in channel 0 and patch B in channel 1, any P.
            Pairs whose P differs from the model's input are resized to it.
        rho: the ``rho`` the model was trained with (its targets were ``offsets / rho``).
        batch_size: pairs per forward pass.
        decode: how a classification model's bins become offsets, ``"expectation"``
            or ``"argmax"`` (:func:`hnet_keras.nets.targets.decode_bins`).

    Returns:
        (N, 8) float64 offsets, scaled by ``P / S``.
    """
    pairs = np.asarray(pairs)
    if pairs.dtype != np.uint8 or pairs.ndim != 4 or pairs.shape[3] != 2 or pairs.shape[1] != pairs.shape[2]:
        raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
    size = model_input_size(model)
    patch = pairs.shape[1]
    pairs = resize_pairs(pairs, size)
    return _predict_model_pixels(model, pairs, rho, batch_size, decode) * (patch / size)


def _to_gray(image, name):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 grayscale (H, W) or BGR (H, W, 3) image, got {image.dtype} {image.shape}")
    return image


class LowTextureWarning(UserWarning):
    """An image has too little texture for any estimate of its homography to be trusted."""


def coarse_homography(model, gray_a, gray_b, rho, passes=COARSE_PASSES):
    """The network's ``H_ab`` of two same-size grayscale images, from their central patch.

    Both images are scaled so their short side is :data:`COARSE_SIDE` (128 * 1.25) and
    the network sees the central :data:`COARSE_PATCH` px square of each: what it was
    trained on (a patch of a larger image, B the same window of the moved image). Its
    offsets are those of that square's corners, turned into ``H_ab`` in full-image pixels.
    Each further pass warps B by the estimate so far into A's frame and asks the network
    for what is left (``H_ab = H @ R``), a smaller motion it measures more precisely.
    """
    h_ab = _central_patch_homography(model, gray_a, gray_b, rho)
    height, width = gray_a.shape
    for _ in range(passes - 1):
        aligned_b = cv2.warpPerspective(gray_b, h_ab, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        h_ab = h_ab @ _central_patch_homography(model, gray_a, aligned_b, rho)
    return h_ab / h_ab[2, 2]


def _central_patch_homography(model, gray_a, gray_b, rho):
    height, width = gray_a.shape
    scale = COARSE_SIDE / min(height, width)
    small_w, small_h = max(COARSE_PATCH, round(width * scale)), max(COARSE_PATCH, round(height * scale))
    left, top = (small_w - COARSE_PATCH) // 2, (small_h - COARSE_PATCH) // 2
    window = (slice(top, top + COARSE_PATCH), slice(left, left + COARSE_PATCH))
    pair = np.stack([resize_image(gray_a, small_w, small_h)[window], resize_image(gray_b, small_w, small_h)[window]],
                    axis=-1)[None]
    offsets = predict_offsets(model, pair, rho, batch_size=1)[0]
    to_patch = np.array([[small_w / width, 0.0, -left], [0.0, small_h / height, -top], [0.0, 0.0, 1.0]])
    return np.linalg.inv(to_patch) @ offsets_to_homography(offsets, COARSE_PATCH) @ to_patch


def estimate_homography(model, image_a, image_b, rho, refine=True, settings=None, details=False):
    """The homography between two whole images of any size and aspect.

    1. A coarse estimate by the network (:func:`coarse_homography`).
    2. With ``refine``: ECC refinement up the image pyramid to full resolution, and
       the best of the refined estimate, the network's and the identity by normalized
       correlation (:func:`hnet_keras.estimators.refine.align_images`), so the answer is never
       worse aligned than doing nothing.

    Image B may differ in size from A: it is resized to A's size first and the result
    composed with that scaling. An image with too little texture to align on (mean
    gradient under :data:`MIN_TEXTURE` gray levels per pixel) gives a
    :class:`LowTextureWarning`.

    Args:
        model: a HomographyNet.
        image_a, image_b: uint8 grayscale (H, W) or BGR (H, W, 3) images.
        rho: the ``rho`` the model was trained with.
        refine: refine the network's estimate (default) or return it as is.
        settings: :class:`hnet_keras.estimators.refine.ECCSettings` for the refinement.
        details: also return a dict: ``chosen`` (``"refined"``, ``"start"`` (the
            network's) or ``"identity"``), ``scores``, ``fallback`` (why the refinement
            was not used, or ``None``) and ``texture`` (of A and B).

    Returns:
        (3, 3) float64 ``H_ab`` mapping points of image A to the points of image B that
        show the same content (``image_b ~ warpPerspective(image_a, H_ab)``); with
        ``details``, ``(H_ab, details)``.
    """
    gray_a, gray_b = _to_gray(image_a, "image_a"), _to_gray(image_b, "image_b")
    height, width = gray_a.shape
    gray_b, to_a_size = resize_with_scale(gray_b, width, height)
    texture = (image_texture(gray_a), image_texture(gray_b))
    if min(texture) < MIN_TEXTURE:
        warnings.warn(f"too little texture to trust the estimate (mean gradient {min(texture):.2f} gray levels/px, "
                      f"under {MIN_TEXTURE})", LowTextureWarning, stacklevel=2)
    h_ab = coarse_homography(model, gray_a, gray_b, rho)
    info = {"chosen": "start", "scores": {}, "fallback": None, "texture": texture}
    if refine:
        h_ab, found = align_images(gray_a, gray_b, h_ab, settings)
        info.update(found)
    h_ab = np.linalg.inv(to_a_size) @ h_ab
    h_ab = h_ab / h_ab[2, 2]
    return (h_ab, info) if details else h_ab
