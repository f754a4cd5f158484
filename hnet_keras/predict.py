"""Using a trained model: corner offsets of pairs of any patch size, and the homography
between two whole images.

The model works at its own input size ``S`` (128 for the paper). Inputs of another
size are resized to ``S``; the predicted offsets, which are in pixels of the resized
input, are then scaled back to the given size. Regression models output
``offsets / rho``; classification models output bin probabilities, decoded by their
expectation (:func:`hnet_keras.models.outputs_to_offsets`). The ``rho`` the model was
trained with is always an argument: :func:`hnet_keras.checkpoint.load_checkpoint` gives it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .checkpoint import check_rho
from .geometry import offsets_to_homography
from .models import outputs_to_offsets
from .synthesis import normalize_images, resize_image, resize_pairs

__all__ = ["model_input_size", "predict_offsets", "estimate_homography"]


def model_input_size(model):
    """The side ``S`` of the square ``(S, S, 2)`` pairs the model takes."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 2 or shape[1] is None:
        raise ValueError(f"expected a model taking (S, S, 2) pairs, got input shape {shape}")
    return int(shape[1])


def _predict_model_pixels(model, pairs, rho, batch_size):
    """Offsets in pixels of the model's input for (N, S, S, 2) uint8 pairs."""
    rho = check_rho(rho, "rho")
    return outputs_to_offsets(model.predict(normalize_images(pairs), batch_size=batch_size, verbose=0), rho)


def predict_offsets(model, pairs, rho, batch_size=64):
    """Corner offsets of stacked pairs, in pixels of the pairs' own size.

    Args:
        model: a HomographyNet (regression, classification or mobilenet).
        pairs: uint8 (N, P, P, 2), patch A in channel 0 and patch B in channel 1, any P.
            Pairs whose P differs from the model's input are resized to it.
        rho: the ``rho`` the model was trained with (its targets were ``offsets / rho``).
        batch_size: pairs per forward pass.

    Returns:
        (N, 8) float64 offsets, scaled by ``P / S``.
    """
    pairs = np.asarray(pairs)
    if pairs.dtype != np.uint8 or pairs.ndim != 4 or pairs.shape[3] != 2 or pairs.shape[1] != pairs.shape[2]:
        raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
    size = model_input_size(model)
    patch = pairs.shape[1]
    pairs = resize_pairs(pairs, size)
    return _predict_model_pixels(model, pairs, rho, batch_size) * (patch / size)


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


def estimate_homography(model, image_a, image_b, rho):
    """The homography between two views, predicted on the whole images.

    Both images are resized to the model's input (aspect ratio not kept); the
    predicted corner offsets are scaled back to the images' ``(width, height)``.

    Args:
        model: a HomographyNet.
        image_a, image_b: uint8 grayscale (H, W) or BGR (H, W, 3) images of the same size.
        rho: the ``rho`` the model was trained with.

    Returns:
        (3, 3) float64 ``H_ab``, mapping points of image A to the points of image B
        that show the same content (``image_b ~ warpPerspective(image_a, H_ab)``), i.e.
        ``getPerspectiveTransform(perturbed, original)`` over the image's corners
        (:func:`hnet_keras.geometry.offsets_to_homography`).
    """
    gray_a, gray_b = _to_gray(image_a, "image_a"), _to_gray(image_b, "image_b")
    if gray_a.shape != gray_b.shape:
        raise ValueError(f"image_a and image_b must have the same size, got {gray_a.shape} and {gray_b.shape}")
    height, width = gray_a.shape
    size = model_input_size(model)
    pair = np.stack([resize_image(gray_a, size, size), resize_image(gray_b, size, size)], axis=-1)[None]
    offsets = _predict_model_pixels(model, pair, rho, batch_size=1)[0]
    offsets = offsets * np.tile([width / size, height / size], 4)
    return offsets_to_homography(offsets, size=(width, height))
