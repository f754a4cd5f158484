"""SuperPoint (DeTone, Malisiewicz, Rabinovich, 2018) in Keras 3: MagicPoint's detector and the descriptor head.

The network takes a grayscale image (B, H, W, 1) in ``[0, 1]`` (H, W multiples of 8) and
runs a VGG-style encoder of eight 3x3 convolutions (a 2x2 max-pool after the 2nd, 4th and
6th: stride 8). Two heads follow:

* the detector: a 3x3 convolution and a 1x1 convolution to 65 logits per 8x8 cell, one per
  pixel position of the cell (row-major: class ``(y % 8) * 8 + x % 8``) plus a "no corner"
  dustbin. The softmax over the 65, dustbin dropped and cells unfolded (depth to space),
  is a (H, W) corner probability map (:func:`heatmap`); :func:`detect` keeps its local
  maxima above a threshold (NMS) and the top k, and moves each to the probability-weighted
  centroid of its :data:`SUBPIXEL_WINDOW` neighbourhood (:func:`refine_subpixel`, sub-pixel);
* the descriptor (SuperPoint only): a 3x3 and a 1x1 convolution to D values per cell,
  L2-normalised; a point's descriptor is bilinearly sampled from it and normalised again
  (:func:`hnet_keras.features.descriptors.sample_bilinear`, cell ``(i, j)`` centred at pixel
  ``(8j + 3.5, 8i + 3.5)``).

MagicPoint is the network without the descriptor head, trained on synthetic shapes
(:class:`hnet_keras.features.shapes.ShapesDataset`) with :func:`detector_loss`. SuperPoint
trains on warped pairs of photos with pseudo ground truth from homographic adaptation
(:mod:`hnet_keras.features.adaptation`), with :func:`detector_loss` on both images and the
sparse :func:`descriptor_loss` on sampled correspondences (:class:`PhotoPairs`).

Training reuses :mod:`hnet_keras.training.run`: :class:`~hnet_keras.training.run.RunCheckpoint`
writes ``last.keras`` / ``best.keras`` / ``history.json`` / ``state.json`` every epoch (with
the random-number states), and a killed run resumes from ``last.keras`` on the same batches.
Models and losses use ``keras`` / ``keras.ops`` only (TensorFlow or JAX); pre- and
post-processing is numpy and OpenCV. Points are ``(x, y)`` pixels.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
from keras import ops

from ..data.augment import Augmentation, augment_patch
from ..fileio import atomic_write_json, replacing
from ..nets.checkpoint import save_model
from ..training.run import RunCheckpoint, _optimizer_position, _progress_bar, _read_resume_point, \
    _seed_generator_states
from .descriptors import BilinearSample, sample_bilinear
from .homographies import PAIRS_HOMOGRAPHY, sample_homography, valid_mask, warp_image, \
    warp_keypoints
from ..data.loaders import SeededBatches
from .shapes import CELL, ShapesConfig, ShapesDataset, shape_targets

__all__ = [
    "SuperPointPreset",
    "SUPERPOINT_PRESETS",
    "get_superpoint_preset",
    "build_superpoint",
    "build_pair_model",
    "detector_loss",
    "descriptor_loss",
    "DescriptorHinge",
    "heatmap",
    "nms",
    "refine_subpixel",
    "keypoints_from_map",
    "SUBPIXEL_WINDOW",
    "detect",
    "describe",
    "descriptor_map",
    "PhotoPairs",
    "train_superpoint",
    "train_on_labels",
    "write_labels",
    "read_labels",
    "SuperPointResult",
    "save_superpoint",
    "load_superpoint",
    "SHIPPED_SUPERPOINT",
    "prepare_photo",
]

DUSTBIN = CELL * CELL
"""Index of the "no corner" class of a cell (64)."""

SHIPPED_SUPERPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "superpoint" / "superpoint.weights.h5"
"""The shipped, CPU-trained SuperPoint (see its README.md); ``$HNET_KERAS_SUPERPOINT`` overrides it."""


@dataclass(frozen=True)
class SuperPointPreset:
    """A MagicPoint / SuperPoint training recipe, as data.

    Attributes:
        name: the preset's name (the default run name).
        widths: filters of the encoder's eight 3x3 convolutions.
        head: filters of each head's 3x3 convolution.
        descriptor_dim: D of the descriptor head; 0 is MagicPoint (detector only).
        batchnorm: BatchNorm after every convolution.
        image_size: ``(width, height)`` of the training images, multiples of 8.
        batch_size: images (MagicPoint) or pairs (SuperPoint) per step.
        iterations: optimizer steps of the whole run.
        steps_per_epoch: steps between checkpoints.
        learning_rate: Adam's learning rate (constant).
        validation_batches: fixed validation batches scored each epoch.
        points: correspondences sampled per pair for the descriptor loss.
        descriptor_weight: weight of :func:`descriptor_loss` against the two detector losses.
        positive_margin, negative_margin, radius: of :func:`descriptor_loss`.
    """

    name: str
    widths: tuple = (64, 64, 64, 64, 128, 128, 128, 128)
    head: int = 256
    descriptor_dim: int = 0
    batchnorm: bool = True
    image_size: tuple = (160, 120)
    batch_size: int = 32
    iterations: int = 20_000
    steps_per_epoch: int = 500
    learning_rate: float = 1e-3
    validation_batches: int = 4
    points: int = 128
    descriptor_weight: float = 1.0
    positive_margin: float = 1.0
    negative_margin: float = 0.2
    radius: float = 8.0

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
        if len(self.widths) != 8 or min(self.widths) < 1:
            raise ValueError(f"widths must be 8 positive filter counts, got {self.widths}")
        if len(self.image_size) != 2 or any(s < 2 * CELL or s % CELL for s in self.image_size):
            raise ValueError(f"image_size must be (width, height), multiples of {CELL}, got {self.image_size}")
        for name in ("head", "batch_size", "iterations", "steps_per_epoch", "validation_batches", "points"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.descriptor_dim < 0 or not self.learning_rate > 0:
            raise ValueError("descriptor_dim must be >= 0 and learning_rate > 0")

    def net_options(self):
        """The :func:`build_superpoint` options of the recipe."""
        return {"widths": list(self.widths), "head": self.head, "descriptor_dim": self.descriptor_dim,
                "batchnorm": self.batchnorm}

    def description(self):
        """The checkpoint description (what :class:`~hnet_keras.training.run.RunCheckpoint` stores)."""
        kind = "superpoint" if self.descriptor_dim else "magicpoint"
        return {"kind": kind, "options": self.net_options(), "cell": CELL}


_SLIM = (16, 16, 32, 32, 64, 64, 64, 64)
SUPERPOINT_PRESETS = {
    # The paper's widths (0.94 M parameters for MagicPoint), for a GPU.
    "magicpoint": SuperPointPreset(name="magicpoint", batch_size=32, iterations=100_000, steps_per_epoch=1000,
                                   validation_batches=8),
    # Slim for one CPU core: 16-16-32-32-64-64-64-64, no BatchNorm, 16 images a step
    # (40,000 images in 2,500 steps).
    "magicpoint_cpu": SuperPointPreset(name="magicpoint_cpu", widths=_SLIM, head=64, batchnorm=False,
                                       batch_size=16, iterations=2500, steps_per_epoch=100),
    "superpoint": SuperPointPreset(name="superpoint", descriptor_dim=256, batch_size=16, iterations=60_000,
                                   steps_per_epoch=1000, validation_batches=8, points=256),
    "superpoint_cpu": SuperPointPreset(name="superpoint_cpu", widths=_SLIM, head=64, descriptor_dim=128,
                                       batchnorm=False, batch_size=8, iterations=1000, steps_per_epoch=100,
                                       validation_batches=4, points=128),
    # Wiring checks: a few seconds.
    "magicpoint_smoke": SuperPointPreset(name="magicpoint_smoke", widths=(8,) * 8, head=16, batchnorm=False,
                                         image_size=(64, 48), batch_size=8, iterations=6, steps_per_epoch=3,
                                         validation_batches=1),
    "superpoint_smoke": SuperPointPreset(name="superpoint_smoke", widths=(8,) * 8, head=16, descriptor_dim=16,
                                         batchnorm=False, image_size=(64, 48), batch_size=2, iterations=4,
                                         steps_per_epoch=2, validation_batches=1, points=32),
}


def get_superpoint_preset(preset="magicpoint_cpu", **overrides):
    """A :class:`SuperPointPreset` by name (or as given), with fields replaced by ``overrides``."""
    if isinstance(preset, str) and preset not in SUPERPOINT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(SUPERPOINT_PRESETS)}")
    chosen = SUPERPOINT_PRESETS[preset] if isinstance(preset, str) else preset
    try:
        return dataclasses.replace(chosen, **overrides)
    except TypeError as error:  # a field the recipe does not have
        raise ValueError(f"unknown preset field(s) in {sorted(overrides)}: {error}") from error


# The network.


def _conv(x, filters, kernel, name, batchnorm, activation="relu"):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=not batchnorm, name=name)(x)
    if batchnorm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x) if activation else x


def build_superpoint(widths=_SLIM, head=64, descriptor_dim=0, batchnorm=False, name=None):
    """MagicPoint (``descriptor_dim=0``) or SuperPoint.

    Returns:
        A ``keras.Model`` from images (B, H, W, 1) in ``[0, 1]`` to the detector logits
        (B, H/8, W/8, 65), and with a descriptor head also the descriptor map
        (B, H/8, W/8, D), unit length: ``[logits, descriptors]``.
    """
    inputs = keras.Input((None, None, 1), name="image")
    x = inputs
    for k, width in enumerate(widths):
        x = _conv(x, int(width), 3, f"conv{k // 2 + 1}{'ab'[k % 2]}", batchnorm)
        if k in (1, 3, 5):
            x = keras.layers.MaxPooling2D(2, name=f"pool{k // 2 + 1}")(x)
    detector = _conv(x, int(head), 3, "detector_conv", batchnorm)
    logits = _conv(detector, DUSTBIN + 1, 1, "detector_logits", False, activation=None)
    if not descriptor_dim:
        return keras.Model(inputs, logits, name=name or "magicpoint")
    descriptor = _conv(x, int(max(head, descriptor_dim)), 3, "descriptor_conv", batchnorm)
    descriptor = _conv(descriptor, int(descriptor_dim), 1, "descriptor_map", False, activation=None)
    descriptor = keras.layers.UnitNormalization(axis=-1, name="descriptor_normalize")(descriptor)
    return keras.Model(inputs, [logits, descriptor], name=name or "superpoint")


def build_pair_model(net, points):
    """The SuperPoint training model around ``net`` (shared by both images).

    Inputs ``{image_a, image_b, points_a, points_b}``: (B, H, W, 1) images and (B, N, 2) pixel
    points of the correspondences (``points_b = H_ab points_a``). Outputs
    ``{detector_a, detector_b}`` logits (B, H/8, W/8, 65) and ``descriptors`` (B, N, 2D), the
    descriptors sampled at ``points_a`` then ``points_b``.
    """
    image_a = keras.Input((None, None, 1), name="image_a")
    image_b = keras.Input((None, None, 1), name="image_b")
    points_a = keras.Input((points, 2), name="points_a")
    points_b = keras.Input((points, 2), name="points_b")
    logits_a, map_a = net(image_a)
    logits_b, map_b = net(image_b)
    sample = BilinearSample(stride=CELL, name="sample")
    sampled = keras.layers.Concatenate(axis=-1, name="descriptors")([sample([map_a, points_a]),
                                                                   sample([map_b, points_b])])
    outputs = {"detector_a": keras.layers.Identity(name="detector_a")(logits_a),
               "detector_b": keras.layers.Identity(name="detector_b")(logits_b),
               "descriptors": sampled}
    inputs = {"image_a": image_a, "image_b": image_b, "points_a": points_a, "points_b": points_b}
    return keras.Model(inputs, outputs, name="superpoint_pairs")


# Losses.


@keras.saving.register_keras_serializable(package="hnet_keras")
def detector_loss(y_true, y_pred):
    """MagicPoint's cell cross-entropy, masked where the warp left no image.

    Formula (over the cells ``c`` of a sample; ``k_c`` the true class, 0..64; ``v_c`` 1 when
    the cell is valid)::

        loss = sum_c v_c * -log(softmax(y_pred_c)[k_c]) / max(sum_c v_c, 1)

    Args:
        y_true: (B, h, w, 2): the class of each cell and its valid flag
            (:func:`hnet_keras.features.shapes.shape_targets`).
        y_pred: (B, h, w, 65) logits.

    Returns:
        (B,) losses.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    labels = ops.cast(y_true[..., 0], "int32")
    valid = ops.cast(y_true[..., 1], y_pred.dtype)
    log_p = ops.log_softmax(y_pred, axis=-1)
    picked = ops.sum(log_p * ops.one_hot(labels, DUSTBIN + 1, dtype=y_pred.dtype), axis=-1)
    total = -ops.sum(picked * valid, axis=(1, 2))
    return total / ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)


@keras.saving.register_keras_serializable(package="hnet_keras")
def descriptor_loss(y_true, y_pred, positive_margin=1.0, negative_margin=0.2, radius=8.0):
    """SuperPoint's descriptor hinge loss on sampled correspondences (sparse: N points, not every cell pair).

    Correspondence ``i`` is a positive pair ``(a_i, b_i)``; ``(a_i, b_j)`` is a negative for
    every other valid ``j`` whose point in B lies farther than ``radius`` pixels from ``i``'s.
    Descriptors are unit length, so ``a . b`` is their cosine. With ``P`` the valid positives
    and ``Q`` the negatives::

        loss = sum_P max(0, m_p - a_i . b_i) / |P| + sum_Q max(0, a_i . b_j - m_n) / |Q|

    Args:
        y_true: (B, N, 3): each correspondence's point in B ``(x, y)`` and a valid flag 0/1.
        y_pred: (B, N, 2D): the descriptors ``a_i`` (first D values) and ``b_i`` (last D).
        positive_margin, negative_margin: ``m_p`` and ``m_n``.
        radius: pixels; see above.

    Returns:
        (B,) losses.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    depth = ops.shape(y_pred)[-1] // 2
    a, b = y_pred[..., :depth], y_pred[..., depth:]
    points, valid = y_true[..., :2], y_true[..., 2]
    cosine = ops.einsum("bnd,bmd->bnm", a, b)
    positive = ops.sum(a * b, axis=-1)
    squared = ops.sum(ops.square(ops.expand_dims(points, 2) - ops.expand_dims(points, 1)), axis=-1)
    negatives = ops.cast(squared > radius**2, y_pred.dtype) * ops.expand_dims(valid, 1) * ops.expand_dims(valid, 2)
    positive_term = ops.sum(ops.relu(positive_margin - positive) * valid, axis=-1) / ops.maximum(
        ops.sum(valid, axis=-1), 1.0)
    negative_term = ops.sum(ops.relu(cosine - negative_margin) * negatives, axis=(1, 2)) / ops.maximum(
        ops.sum(negatives, axis=(1, 2)), 1.0)
    return positive_term + negative_term


@keras.saving.register_keras_serializable(package="hnet_keras")
class DescriptorHinge(keras.losses.Loss):
    """:func:`descriptor_loss` as a loss object, its margins and radius in the saved config."""

    def __init__(self, positive_margin=1.0, negative_margin=0.2, radius=8.0, name="descriptor_hinge",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.positive_margin, self.negative_margin, self.radius = float(positive_margin), float(negative_margin), \
            float(radius)

    def call(self, y_true, y_pred):
        return descriptor_loss(y_true, y_pred, self.positive_margin, self.negative_margin, self.radius)

    def get_config(self):
        return {**super().get_config(), "positive_margin": self.positive_margin,
                "negative_margin": self.negative_margin, "radius": self.radius}


def _compile(model, preset):
    optimizer = keras.optimizers.Adam(preset.learning_rate)
    if preset.descriptor_dim:
        losses = {"detector_a": detector_loss, "detector_b": detector_loss,
                  "descriptors": DescriptorHinge(preset.positive_margin, preset.negative_margin, preset.radius)}
        weights = {"detector_a": 1.0, "detector_b": 1.0, "descriptors": preset.descriptor_weight}
        model.compile(optimizer=optimizer, loss=losses, loss_weights=weights)
    else:
        model.compile(optimizer=optimizer, loss=detector_loss)
    return model


# Inference: heat map, NMS, top k, descriptors.


def _as_batch(images):
    """Gray images (H, W) or (B, H, W) uint8 (or float in [0, 1]) as (B, H', W', 1) float32, cropped to multiples of 8."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (H, W) or (B, H, W) grayscale, got shape {images.shape}")
    height, width = (images.shape[1] // CELL) * CELL, (images.shape[2] // CELL) * CELL
    if height < CELL or width < CELL:
        raise ValueError(f"images must be at least {CELL}x{CELL} pixels, got {images.shape[1:]}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return (images[:, :height, :width].astype(np.float32) / scale)[..., None]


def heatmap(logits):
    """(B, H, W) corner probabilities from (B, H/8, W/8, 65) logits: softmax, dustbin dropped, depth to space."""
    logits = ops.convert_to_tensor(logits)
    shape = ops.shape(logits)
    probabilities = ops.softmax(logits, axis=-1)[..., :DUSTBIN]
    cells = ops.reshape(probabilities, (shape[0], shape[1], shape[2], CELL, CELL))
    return ops.reshape(ops.transpose(cells, (0, 1, 3, 2, 4)), (shape[0], shape[1] * CELL, shape[2] * CELL))


def nms(probabilities, radius=4, threshold=0.015, top_k=None, border=4):
    """Local maxima of a (H, W) map: ``(points (N, 2) float64, scores (N,))``, strongest first.

    A pixel is kept when it is the largest within ``radius`` pixels (a square window; ties
    keep every equal pixel, then the one of them found first), at least ``threshold``, and
    at least ``border`` pixels from the image's edge; then the ``top_k`` best.
    """
    probabilities = np.asarray(probabilities, np.float32)
    size = 2 * int(radius) + 1
    peaks = probabilities >= cv2.dilate(probabilities, np.ones((size, size), np.uint8)) if radius > 0 else \
        np.ones(probabilities.shape, bool)
    peaks &= probabilities >= threshold
    if border > 0:
        peaks[:border], peaks[-border:], peaks[:, :border], peaks[:, -border:] = False, False, False, False
    ys, xs = np.nonzero(peaks)
    scores = probabilities[ys, xs]
    order = np.argsort(-scores, kind="stable")
    points = np.stack([xs, ys], axis=1).astype(np.float64)[order]
    scores = scores[order]
    if radius > 0 and len(points):  # equal neighbours (plateaus) keep their first, strongest point
        taken = np.zeros(probabilities.shape, bool)
        keep = np.zeros(len(points), bool)
        for k, (x, y) in enumerate(points.astype(int)):
            if not taken[y, x]:
                keep[k] = True
                taken[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1] = True
        points, scores = points[keep], scores[keep]
    if top_k is not None:
        points, scores = points[:top_k], scores[:top_k]
    return points, scores


SUBPIXEL_WINDOW = 5
"""Side (pixels, odd) of the window of :func:`refine_subpixel`, the default of :func:`detect`, :func:`describe`
and :func:`hnet_keras.features.keypoint_eval.network_detector`; 0 or 1 keeps NMS's whole pixels.

Measured with ``python experiments/12_superpoint.py subpixel`` (``experiments/results/12_superpoint_subpixel.json``)
on 500 synthetic shapes of a validation seed (20,000, not the test seed 10,000 of the reported scores),
the localisation error at 4 px (correct detections at best F1) for windows 1 (off) / 3 / 5 / 7:
shipped MagicPoint 0.996 / 0.861 / 0.806 / 0.799 px, shipped SuperPoint 0.843 / 0.701 / 0.675 / 0.673 px,
mAP unchanged (within 0.003). 5 is the public ports' 5x5 soft-argmax: 7 gains under 0.01 px and reaches
into the next maximum's NMS window (4 px). A per-axis parabola through the log-probabilities
of the peak and its neighbours did worse (0.880 and 0.717 px).
"""


def refine_subpixel(probabilities, points, window=SUBPIXEL_WINDOW):
    """Sub-pixel keypoints: each point moved to the probability-weighted centroid of its window (soft-argmax).

    For a point at pixel ``(x, y)`` (rounded) and ``r = window // 2``, with ``p`` the map::

        x' = x + sum_{|i|,|j| <= r} i p(y + j, x + i) / sum_{|i|,|j| <= r} p(y + j, x + i)

    and ``y'`` alike (pixels outside the image count as 0). This is the refinement of public
    SuperPoint ports (e.g. a 5x5 soft-argmax of the score map); a peak whose neighbours are
    symmetric stays where it is, and a point moves by at most ``r`` pixels.

    Args:
        probabilities: (H, W) map, non-negative (:func:`heatmap`).
        points: (N, 2) ``(x, y)`` pixels, e.g. :func:`nms`' maxima.
        window: odd side of the square window; 0 or 1 returns the points unchanged.

    Returns:
        (N, 2) float64 refined points.
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    window = int(window or 0)
    if window <= 1 or not len(points):
        return points.copy()
    if window % 2 == 0:
        raise ValueError(f"window must be odd, got {window}")
    probabilities = np.asarray(probabilities, np.float32)
    height, width = probabilities.shape
    radius = window // 2
    offsets = np.arange(-radius, radius + 1)
    xs, ys = np.rint(points[:, 0]).astype(np.int64), np.rint(points[:, 1]).astype(np.int64)
    rows, columns = ys[:, None] + offsets, xs[:, None] + offsets  # (N, window) each
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((columns >= 0) & (columns < width))[:, None, :]
    patches = probabilities[np.clip(rows, 0, height - 1)[:, :, None], np.clip(columns, 0, width - 1)[:, None, :]]
    weights = np.maximum(patches, 0.0).astype(np.float64) * inside  # (N, window rows, window columns)
    total = weights.sum(axis=(1, 2))
    safe = np.where(total > 0, total, 1.0)
    dx = np.where(total > 0, (weights * offsets[None, None, :]).sum(axis=(1, 2)) / safe, 0.0)
    dy = np.where(total > 0, (weights * offsets[None, :, None]).sum(axis=(1, 2)) / safe, 0.0)
    return np.stack([xs + dx, ys + dy], axis=1)


def keypoints_from_map(probabilities, radius=4, threshold=0.015, top_k=None, border=4, subpixel=SUBPIXEL_WINDOW):
    """``(points (N, 2), scores (N,))`` of one probability map: :func:`nms`'s maxima, refined by
    :func:`refine_subpixel` in a ``subpixel`` window (0 keeps whole pixels)."""
    points, scores = nms(probabilities, radius, threshold, top_k, border)
    return refine_subpixel(probabilities, points, subpixel), scores


def _run(model, images, batch_size=16):
    batch = _as_batch(images)
    outputs = []
    for start in range(0, len(batch), batch_size):
        out = model(batch[start:start + batch_size], training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        outputs.append([keras.ops.convert_to_numpy(o) for o in out])
    return [np.concatenate([o[k] for o in outputs]) for k in range(len(outputs[0]))]


def probability_maps(model, images, batch_size=16):
    """(B, H', W') float32 corner probabilities of gray images (cropped to multiples of 8)."""
    logits = _run(model, images, batch_size)[0]
    return keras.ops.convert_to_numpy(heatmap(logits))


def detect(model, images, threshold=0.015, radius=4, top_k=None, border=4, batch_size=16,
           subpixel=SUBPIXEL_WINDOW):
    """Keypoints of gray images: one ``(points (N, 2), scores (N,))`` per image (see :func:`nms`),
    refined to sub-pixel positions in a ``subpixel`` window (:func:`refine_subpixel`; 0 keeps whole pixels)."""
    maps = probability_maps(model, images, batch_size)
    return [keypoints_from_map(m, radius, threshold, top_k, border, subpixel) for m in maps]


def describe(model, image, points=None, threshold=0.015, radius=4, top_k=1000, border=4, subpixel=SUBPIXEL_WINDOW):
    """Keypoints and descriptors of one gray image with SuperPoint.

    Args:
        model: a SuperPoint (with a descriptor head).
        image: (H, W) uint8; cropped to multiples of 8.
        points: (N, 2) points to describe; default the detected ones (refined in a ``subpixel``
            window, :func:`refine_subpixel`; 0 keeps whole pixels).

    Returns:
        ``(points (N, 2), scores (N,), descriptors (N, D) float32, unit length)``.
    """
    logits, descriptor_map = _run(model, image)
    if points is None:
        points, scores = keypoints_from_map(keras.ops.convert_to_numpy(heatmap(logits))[0], radius, threshold, top_k, border,
                                    subpixel)
    else:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        scores = np.ones(len(points), np.float32)
    if not len(points):
        return points, scores, np.zeros((0, descriptor_map.shape[-1]), np.float32)
    sampled = sample_bilinear(descriptor_map, points[None].astype(np.float32), stride=CELL)
    return points, scores, np.asarray(keras.ops.convert_to_numpy(sampled)[0], np.float32)


def descriptor_map(model, image):
    """SuperPoint's dense descriptors of one gray image (cropped to multiples of 8).

    Returns:
        (H/8, W/8, D) float32 unit descriptors, cell ``(i, j)`` centred at pixel ``(8j + 3.5, 8i + 3.5)``.
    """
    outputs = _run(model, image)
    if len(outputs) < 2:
        raise ValueError("descriptor_map needs a SuperPoint with a descriptor head, not a MagicPoint")
    return np.asarray(outputs[1][0], np.float32)


# Training data: warped pairs of labelled photos.


def prepare_photo(image, size=(160, 120)):
    """A gray photo scaled to cover ``size = (width, height)`` (area) and centre-cropped: (h, w) uint8."""
    width, height = size
    scale = max(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])


PAIR_PHOTOMETRIC = Augmentation(probability=0.5, brightness=40.0, contrast=1.5, gamma=1.3, noise=8.0, blur=1.0)


class PhotoPairs(SeededBatches):
    """Warped pairs of labelled photos for SuperPoint (see :func:`build_pair_model`).

    Image A is a photo, image B the photo warped by a random ``H_ab``
    (:data:`~hnet_keras.features.homographies.PAIRS_HOMOGRAPHY`), each changed photometrically
    on its own. A's labels are its pseudo ground truth; B's are them warped, masked where B sees
    no photo. ``points`` correspondences per pair: half at A's labels, the rest uniform, all with
    ``H_ab p`` inside B's valid region (padding gets valid 0).

    Args:
        images: (N, H, W) uint8 photos of one size.
        labels: a list of N (K_i, 2) label points.
        preset: the :class:`SuperPointPreset` (batch size, points).
        batches: batches per epoch.
        seed: batch ``i`` of epoch ``e`` comes from ``(seed, e, i)``.
        fixed: the same batches every epoch (validation).
        homography: a :class:`~hnet_keras.features.homographies.HomographyConfig`.
    """

    def __init__(self, images, labels, preset, batches, seed=0, fixed=False, homography=PAIRS_HOMOGRAPHY,
                 photometric=PAIR_PHOTOMETRIC, **kwargs):
        super().__init__(batches, seed, fixed, **kwargs)
        self.images, self.labels = np.asarray(images), [np.asarray(p, np.float64).reshape(-1, 2) for p in labels]
        if self.images.ndim != 3 or self.images.dtype != np.uint8 or len(self.images) != len(self.labels):
            raise ValueError(f"images must be (N, H, W) uint8 with one label array each, got {self.images.shape} "
                             f"{self.images.dtype} and {len(self.labels)} label arrays")
        if not len(self.images):
            raise ValueError("no labelled photos to train on")
        self.preset, self.homography, self.photometric = preset, homography, photometric

    def pair(self, rng, index):
        """One pair: ``(image_a, image_b, points_a, points_b, valid, targets_a, targets_b)``."""
        image = self.images[index]
        size = (image.shape[1], image.shape[0])
        h_ab = sample_homography(size, rng, self.homography)
        image_b = warp_image(image, h_ab)
        mask_b = valid_mask(size, h_ab, erosion=2)
        labels_b, _ = warp_keypoints(self.labels[index], h_ab, size)
        labels_b = labels_b[mask_b[np.round(labels_b[:, 1]).astype(int), np.round(labels_b[:, 0]).astype(int)]]
        image_a = augment_patch(image, rng, self.photometric) if self.photometric else image
        image_b = augment_patch(image_b, rng, self.photometric) if self.photometric else image_b
        count = self.preset.points
        candidates = np.concatenate([self.labels[index][rng.permutation(len(self.labels[index]))],
                                     rng.uniform([0, 0], [size[0] - 1, size[1] - 1], (4 * count, 2))])
        moved = warp_points_safe(h_ab, candidates)
        ok = np.all(np.isfinite(moved), axis=1) & (moved[:, 0] >= 0) & (moved[:, 0] <= size[0] - 1) & \
            (moved[:, 1] >= 0) & (moved[:, 1] <= size[1] - 1)
        ok[ok] = mask_b[np.round(moved[ok, 1]).astype(int), np.round(moved[ok, 0]).astype(int)]
        labelled = np.flatnonzero(ok[:len(self.labels[index])])[: count // 2]
        uniform = len(self.labels[index]) + np.flatnonzero(ok[len(self.labels[index]):])
        chosen = np.concatenate([labelled, uniform[: count - len(labelled)]]).astype(int)
        points_a = np.zeros((count, 2), np.float32)
        points_b = np.zeros((count, 2), np.float32)
        valid = np.zeros(count, np.float32)
        points_a[: len(chosen)], points_b[: len(chosen)], valid[: len(chosen)] = candidates[chosen], moved[chosen], 1
        targets_a = shape_targets(self.labels[index], np.ones(image.shape, bool), size, rng)
        targets_b = shape_targets(labels_b, mask_b, size, rng)
        return image_a, image_b, points_a, points_b, valid, targets_a, targets_b

    def __getitem__(self, index):
        rng = self.batch_rng(index)
        chosen = rng.integers(0, len(self.images), self.preset.batch_size)
        parts = list(zip(*(self.pair(rng, int(k)) for k in chosen)))
        image_a, image_b, points_a, points_b, valid, targets_a, targets_b = (np.stack(p) for p in parts)
        inputs = {"image_a": image_a[..., None].astype(np.float32) / 255.0,
                  "image_b": image_b[..., None].astype(np.float32) / 255.0,
                  "points_a": points_a, "points_b": points_b}
        targets = {"detector_a": targets_a, "detector_b": targets_b,
                   "descriptors": np.concatenate([points_b, valid[..., None]], axis=-1)}
        return inputs, targets


def warp_points_safe(homography, points):
    """Points (N, 2) warped by a homography; points mapped to infinity come out non-finite instead of raising."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ np.asarray(homography).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return homogeneous[:, :2] / homogeneous[:, 2:3]


# Training.


@dataclass
class SuperPointResult:
    """What :func:`train_superpoint` returns: the network (``net``), the trained model, the
    per-epoch ``history``, the run ``directory``, the ``preset`` and ``resumed_from`` (epochs done before)."""

    net: keras.Model
    model: keras.Model
    history: list
    directory: Path
    preset: SuperPointPreset
    resumed_from: int = 0


def _net_of(model, preset):
    return model if not preset.descriptor_dim else model.get_layer("superpoint")


def train_superpoint(preset="magicpoint_cpu", *, run=None, checkpoint_dir="checkpoints", data=None,
                     validation_data=None, shapes=ShapesConfig(), initial_weights=None, seed=0, resume=True,
                     callbacks=(), verbose="auto", progress=False, **overrides):
    """Train MagicPoint on synthetic shapes, or SuperPoint on photo pairs; resumable.

    Args:
        preset: a name in :data:`SUPERPOINT_PRESETS` or a :class:`SuperPointPreset`.
        run: the run's folder under ``checkpoint_dir`` (default: the preset's name).
        data: the training ``PyDataset``; default for MagicPoint a :class:`~hnet_keras.features.shapes.ShapesDataset`
            of ``shapes`` (seeded by ``seed``); SuperPoint needs a :class:`PhotoPairs`.
        validation_data: a ``PyDataset``, default fixed shapes (seed ``seed + 1``) for MagicPoint.
        shapes: the :class:`~hnet_keras.features.shapes.ShapesConfig` of the default data (its
            size is replaced by the preset's ``image_size``).
        initial_weights: a MagicPoint/SuperPoint network (or ``.weights.h5`` path of one) whose
            matching layers start the new run (the encoder and detector of a trained MagicPoint).
        seed: seeds Keras and the default data.
        resume: continue from the run's ``last.keras`` when there is one (same recipe, ``iterations`` aside).
        callbacks, verbose, progress: as :func:`hnet_keras.training.run.train`.
        **overrides: :class:`SuperPointPreset` fields to replace.

    Returns:
        A :class:`SuperPointResult`.
    """
    preset = get_superpoint_preset(preset, **overrides)
    folder = Path(checkpoint_dir) / (run or preset.name)
    keras.utils.set_random_seed(seed)
    if data is None:
        if preset.descriptor_dim:
            raise ValueError("SuperPoint trains on PhotoPairs of labelled photos: pass data=PhotoPairs(...)")
        shapes = shapes.replace(size=preset.image_size)
        data = ShapesDataset(preset.batch_size, preset.steps_per_epoch, shapes, seed)
        if validation_data is None:
            validation_data = ShapesDataset(preset.batch_size, preset.validation_batches, shapes, seed + 1, fixed=True,
                                            augment=True)
    epochs = math.ceil(preset.iterations / len(data))
    resume_point = _read_resume_point(folder, preset) if resume else None
    initial_epoch, history = 0, []
    if resume_point is None:
        net = build_superpoint(**preset.net_options())
        if initial_weights is not None:
            _copy_matching_weights(initial_weights, net)
        model = _compile(build_pair_model(net, preset.points) if preset.descriptor_dim else net, preset)
    else:
        model = keras.saving.load_model(folder / "last.keras", safe_mode=True)
        state, history = resume_point
        initial_epoch = _optimizer_position(model)[0] // len(data)
        saved = state.get("seed_generators", [])
        for variable, value in zip(_seed_generator_states(model), saved):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        history = [row for row in history if row["epoch"] <= initial_epoch]
        for _ in range(initial_epoch):  # the batches of epoch e depend on e
            data.on_epoch_end()
    checkpoint = RunCheckpoint(folder, preset, history, monitor="val_loss", extra_state={"seed": seed})
    if initial_epoch < epochs:
        model.fit(data, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data, shuffle=False,
                  verbose=verbose, callbacks=[*callbacks, checkpoint, *([_progress_bar()] if progress else [])])
    return SuperPointResult(_net_of(model, preset), model, checkpoint.history, folder, preset, initial_epoch)


def _copy_matching_weights(source, net):
    """Copy every layer of ``source`` (a model or a checkpoint path) whose name and weight shapes match ``net``'s."""
    if not isinstance(source, keras.Model):
        source = load_superpoint(source)
    copied = 0
    for layer in net.layers:
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            continue
        weights = other.get_weights()
        if weights and [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied += 1
    if not copied:
        raise ValueError("initial_weights: no layer of the given network matches this one")
    return copied


def train_on_labels(preset="superpoint_cpu", labels=None, *, validation_every=10, seed=0, **options):
    """Train SuperPoint (or MagicPoint on photos) on a labels file of :func:`write_labels`.

    Every ``validation_every``-th photo is held out for validation (fixed pairs); the others make
    :class:`PhotoPairs`. ``options`` go to :func:`train_superpoint` (run, checkpoint_dir,
    initial_weights, resume, verbose, preset overrides...).
    """
    preset = get_superpoint_preset(preset, **{k: v for k, v in options.items() if k in _PRESET_FIELDS})
    options = {k: v for k, v in options.items() if k not in _PRESET_FIELDS}
    if not preset.descriptor_dim:
        raise ValueError(f"preset {preset.name!r} has no descriptor head; photo pairs train a SuperPoint preset")
    images, points = read_labels(labels)
    held = np.arange(len(images)) % validation_every == validation_every - 1
    if held.all() or not held.any():
        raise ValueError(f"{labels}: {len(images)} photos are too few to hold out every {validation_every}th")
    train_data = PhotoPairs(images[~held], [p for p, h in zip(points, held) if not h], preset,
                            preset.steps_per_epoch, seed)
    validation = PhotoPairs(images[held], [p for p, h in zip(points, held) if h], preset,
                            preset.validation_batches, seed + 1, fixed=True)
    return train_superpoint(preset, data=train_data, validation_data=validation, seed=seed, **options)


_PRESET_FIELDS = {f.name for f in dataclasses.fields(SuperPointPreset)}


# Checkpoints.


def save_superpoint(net, path, facts=None):
    """Write a MagicPoint/SuperPoint network: ``.weights.h5`` with its description ``.json`` beside it,
    or a whole ``.keras`` model with the description inside; atomically. ``facts`` join the description."""
    dim = net.get_layer("descriptor_map").filters if "descriptor_map" in [layer.name for layer in net.layers] else 0
    widths = [net.get_layer(f"conv{k // 2 + 1}{'ab'[k % 2]}").filters for k in range(8)]
    batchnorm = any(isinstance(layer, keras.layers.BatchNormalization) for layer in net.layers)
    options = {"widths": widths, "head": net.get_layer("detector_conv").filters, "descriptor_dim": dim,
               "batchnorm": batchnorm}
    description = {"kind": "superpoint" if dim else "magicpoint", "options": options, "cell": CELL, **(facts or {})}
    return save_model(net, path, description)


def _read_description(path):
    sidecar = path.with_name(path.name[: -len(".weights.h5")] + ".json")
    try:
        description = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: a .weights.h5 SuperPoint needs its description {sidecar.name} beside it "
                         f"({error})") from error
    options = description.get("options") if isinstance(description, dict) else None
    if description.get("kind") not in ("magicpoint", "superpoint") or not isinstance(options, dict):
        raise ValueError(f"{sidecar}: not a MagicPoint/SuperPoint description (kind and options)")
    widths = options.get("widths")
    if not (isinstance(widths, list) and len(widths) == 8 and all(isinstance(w, int) and w > 0 for w in widths)):
        raise ValueError(f"{sidecar}: options.widths must be 8 positive integers, got {widths!r}")
    for name in ("head", "descriptor_dim"):
        if not isinstance(options.get(name), int) or options[name] < 0:
            raise ValueError(f"{sidecar}: options.{name} must be a non-negative integer, got {options.get(name)!r}")
    return description


def load_superpoint(path=None):
    """A MagicPoint/SuperPoint network, offline (Keras's safe mode for ``.keras`` files).

    Args:
        path: a ``.weights.h5`` with its ``.json`` description, a ``.keras`` network, a run
            folder (its ``best.keras``, else ``last.keras``; the network is taken out of a pair
            model), or ``None``: ``$HNET_KERAS_SUPERPOINT`` or :data:`SHIPPED_SUPERPOINT`.

    Raises:
        FileNotFoundError / ValueError naming the path.
    """
    path = Path(path if path is not None else os.environ.get("HNET_KERAS_SUPERPOINT") or SHIPPED_SUPERPOINT)
    if path.is_dir():  # a run folder: its best model, else its last
        path = next((path / n for n in ("best.keras", "last.keras") if (path / n).is_file()), path / "best.keras")
    if not path.is_file():
        raise FileNotFoundError(f"SuperPoint checkpoint not found: {path}")
    try:
        if path.name.endswith(".weights.h5"):
            options = _read_description(path)["options"]
            net = build_superpoint(**{key: options[key] for key in ("widths", "head", "descriptor_dim", "batchnorm")})
            net.load_weights(path)
            return net
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (KeyError, TypeError, OSError) as error:
        raise ValueError(f"cannot load the SuperPoint checkpoint {path}: {error}") from error
    return model.get_layer("superpoint") if model.name == "superpoint_pairs" else model


def write_labels(path, images, labels, facts=None):
    """Save labelled photos as an uncompressed ``.npz``: ``images`` (N, H, W) uint8, ``points`` (M, 2)
    float32 and ``counts`` (N,) int64 (photo i's points are the next ``counts[i]`` rows), atomically."""
    images = np.asarray(images, np.uint8)
    counts = np.array([len(p) for p in labels], np.int64)
    points = np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in labels]) if len(labels) else \
        np.zeros((0, 2), np.float32)
    path = Path(path)
    with replacing(path, f".tmp-{path.name}") as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, images=images, points=points, counts=counts)
    if facts is not None:
        atomic_write_json(path.with_suffix(".json"), facts)
    return path


def read_labels(path):
    """``(images (N, H, W) uint8, [points (K_i, 2)])`` from :func:`write_labels`' file, checked."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, points, counts = archive["images"], archive["points"], archive["counts"]
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a labels file (images, points, counts): {error}") from error
    if images.ndim != 3 or images.dtype != np.uint8 or counts.shape != (len(images),) or points.ndim != 2 \
            or points.shape[1] != 2 or counts.min(initial=0) < 0 or counts.sum() != len(points) \
            or not np.all(np.isfinite(points)):
        raise ValueError(f"{path}: inconsistent labels file (images {images.shape} {images.dtype}, "
                         f"points {points.shape}, counts {counts.shape} summing to {counts.sum()})")
    return images, np.split(points.astype(np.float64), np.cumsum(counts)[:-1])
