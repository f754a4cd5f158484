"""Dense learned descriptors: a small stride-8 CNN, bilinear sampling, an InfoNCE loss, training.

The network maps a grayscale image (H, W) (0..255, any size) to a descriptor map
(H // 8, W // 8, D) of L2-normalised D-vectors. Map cell ``(i, j)`` covers pixels
``8j .. 8j + 7`` by ``8i .. 8i + 7``, so its centre is the pixel point
``(8j + 3.5, 8i + 3.5)``; the descriptor at any point ``(x, y)`` is the bilinear
interpolation of the four cells around ``((x - 3.5) / 8, (y - 3.5) / 8)`` (clamped to the
map), normalised again (:func:`sample_bilinear`, ``keras.ops``; :class:`BilinearSample` is
the same as a layer).

Training pairs (:class:`DescriptorPairs`) are real photos: image A is a square crop, image B
the photo warped by a random homography around that crop (``H_ab`` maps points of A to B),
each changed photometrically on its own (:func:`hnet_keras.data.augment.augment_patch`, the
real-pair changes of exposure, noise and blur). A few hundred correspondences ``(p, H_ab p)``
are drawn per pair: half at the strongest Harris corners of A, half uniformly, and each
with a *hard negative* partner a few pixels away. The loss is :func:`info_nce`.

Training reuses :mod:`hnet_keras.training.run`: :class:`~hnet_keras.training.run.RunCheckpoint`
writes ``last.keras``/``best.keras``/``history.json``/``state.json`` each epoch, and a killed
run resumes from ``last.keras`` (``optimizer.iterations`` carries the schedule on). Only
``keras`` and ``keras.ops`` are used in the models and the loss (TensorFlow or JAX).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
from keras import ops

from ..data.augment import DEFAULT_AUGMENTATION, augment_patch
from ..data.images import embedded_photo_paths, list_images, read_grayscale, require_split_parts, split_images
from ..fileio import atomic_write_json
from ..geometry import warp_points
from .homographies import HomographyConfig, inside, sample_homography, warp_image
from ..nets.checkpoint import save_model
from ..training.run import RunCheckpoint, _optimizer_position, _read_resume_point, _progress_bar

__all__ = [
    "STRIDE",
    "CELL_CENTRE",
    "DescriptorPreset",
    "DESCRIPTOR_PRESETS",
    "get_descriptor_preset",
    "build_descriptor_net",
    "build_training_model",
    "compile_training_model",
    "BilinearSample",
    "sample_bilinear",
    "info_nce",
    "InfoNCE",
    "pair_homographies",
    "make_training_pair",
    "DescriptorPairs",
    "prepare_photos",
    "train_descriptors",
    "DescriptorTrainResult",
    "net_options",
    "save_descriptor_net",
    "load_descriptor_net",
    "SHIPPED_DESCRIPTORS",
    "describe_image",
]

STRIDE = 8
"""Pixels per descriptor-map cell."""
CELL_CENTRE = (STRIDE - 1) / 2
"""Pixel coordinate of the centre of map cell 0 (3.5 for stride 8)."""

SHIPPED_DESCRIPTORS = Path(__file__).resolve().parents[2] / "checkpoints" / "dense_descriptors" / "dense_descriptors.keras"
"""The shipped, CPU-trained descriptor network (see its README.md)."""


@dataclass(frozen=True)
class DescriptorPreset:
    """A descriptor training recipe, as data.

    Attributes:
        name: the preset's name (the default run name).
        dim: descriptor length D.
        widths: filters of the four convolution stages (two 3x3 convolutions each, a 2x2
            max-pool after each of the first three: stride 8).
        image_size: side of the square training images A and B.
        points: correspondences per pair (half of them hard-negative partners).
        batch_size: pairs per step.
        iterations: optimizer steps of the whole run.
        steps_per_epoch: steps between checkpoints.
        learning_rate: Adam's learning rate (constant, then divided by 10 for the last 20 %).
        temperature: of :func:`info_nce`.
        radius: pixels within which two points of A are not each other's negatives.
        photo_side: longer side photos are shrunk to before crops are taken.
        zoom: crops are shrunk by a factor log-uniform in ``[1 / zoom, 1]`` first (>= 1).
        scaling, perspective, rotation, patch_ratio: the random homographies' amplitudes (see
            :func:`pair_homographies`; ``rotation`` in degrees).
        augment: change A and B photometrically, each on its own.
        validation_batches: fixed validation batches scored each epoch.
    """

    name: str
    dim: int = 64
    widths: tuple = (16, 32, 64, 128)
    image_size: int = 128
    points: int = 256
    batch_size: int = 8
    iterations: int = 3000
    steps_per_epoch: int = 100
    learning_rate: float = 1e-3
    temperature: float = 0.07
    radius: float = 3.0
    photo_side: int = 640
    zoom: float = 2.0
    scaling: float = 0.3
    perspective: float = 0.15
    rotation: float = 20.0
    patch_ratio: float = 0.85
    augment: bool = True
    validation_batches: int = 4

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        for name in ("dim", "image_size", "points", "batch_size", "iterations", "steps_per_epoch",
                     "photo_side", "validation_batches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be 4 positive filter counts, got {self.widths}")
        if self.image_size % STRIDE or self.image_size < 4 * STRIDE:
            raise ValueError(f"image_size must be a multiple of {STRIDE} and >= {4 * STRIDE}, got {self.image_size}")
        if self.photo_side < self.image_size:
            raise ValueError(f"photo_side ({self.photo_side}) must be >= image_size ({self.image_size})")
        if not (self.learning_rate > 0 and self.temperature > 0 and self.zoom >= 1):
            raise ValueError("learning_rate and temperature must be > 0 and zoom >= 1")

    def net_options(self):
        """The :func:`build_descriptor_net` options of the recipe."""
        return {"dim": self.dim, "widths": list(self.widths)}

    def description(self):
        """The checkpoint description (what :class:`~hnet_keras.training.run.RunCheckpoint` stores)."""
        return {"kind": "dense_descriptors", "options": self.net_options(), "stride": STRIDE}


DESCRIPTOR_PRESETS = {
    # One CPU core for 20-40 minutes (0.5-1 s a step): 128 px pairs, 8 per step, 256 correspondences each.
    "descriptors_cpu": DescriptorPreset(name="descriptors_cpu", iterations=2400, steps_per_epoch=200,
                                        validation_batches=8),
    # A GPU run: larger images and batches, more points, a wider and longer-trained net.
    "descriptors": DescriptorPreset(name="descriptors", dim=128, widths=(32, 64, 128, 256), image_size=192,
                                    points=512, batch_size=32, iterations=20_000, steps_per_epoch=500,
                                    validation_batches=8),
    # A wiring check: a few seconds.
    "descriptors_smoke": DescriptorPreset(name="descriptors_smoke", dim=16, widths=(8, 8, 16, 16), image_size=64,
                                          points=64, batch_size=4, iterations=6, steps_per_epoch=3, photo_side=96,
                                          validation_batches=1),
}


def get_descriptor_preset(preset="descriptors_cpu", **overrides):
    """A :class:`DescriptorPreset` by name (or as given), with fields replaced by ``overrides``."""
    chosen = DESCRIPTOR_PRESETS.get(preset) if isinstance(preset, str) else preset
    if chosen is None:
        raise ValueError(f"unknown descriptor preset {preset!r}; choose one of {', '.join(DESCRIPTOR_PRESETS)}")
    try:
        return dataclasses.replace(chosen, **overrides)
    except TypeError as error:  # an unknown field
        raise ValueError(f"descriptor preset: {error}") from error


def pair_homographies(preset):
    """The :class:`~hnet_keras.features.homographies.HomographyConfig` of a preset's training pairs:
    SuperPoint's sampler with the preset's amplitudes, B allowed to see past A (B is cut from the
    whole photo, so it shows real content there)."""
    return HomographyConfig(scaling_amplitude=preset.scaling, perspective_amplitude_x=preset.perspective,
                            perspective_amplitude_y=preset.perspective, patch_ratio=preset.patch_ratio,
                            max_angle=math.radians(preset.rotation), allow_artifacts=True)


# The network.


def build_descriptor_net(dim=64, widths=(16, 32, 64, 128), name="descriptor_net"):
    """The dense descriptor CNN: (B, H, W, 1) gray levels 0..255 -> (B, H//8, W//8, dim), unit length.

    Four stages of two 3x3 convolutions (BatchNorm, ReLU), a 2x2 max-pool after the
    first three, then a 1x1 convolution to ``dim`` and L2 normalisation.
    """
    inputs = keras.Input((None, None, 1), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    for stage, width in enumerate(widths):
        for k in range(2):
            x = keras.layers.Conv2D(int(width), 3, padding="same", use_bias=False, name=f"conv{stage + 1}_{k + 1}")(x)
            x = keras.layers.BatchNormalization(name=f"bn{stage + 1}_{k + 1}")(x)
            x = keras.layers.ReLU(name=f"relu{stage + 1}_{k + 1}")(x)
        if stage < 3:
            x = keras.layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
    x = keras.layers.Conv2D(int(dim), 1, name="descriptor")(x)
    outputs = keras.layers.UnitNormalization(axis=-1, name="normalize")(x)
    return keras.Model(inputs, outputs, name=name)


def sample_bilinear(maps, points, stride=STRIDE, normalize=True):
    """Descriptors of maps at pixel points, bilinearly interpolated (``keras.ops``).

    Args:
        maps: (B, h, w, D) descriptor maps, ``h, w >= 2``; cell ``(i, j)`` is centred at pixel
            ``(stride * j + (stride - 1) / 2, stride * i + (stride - 1) / 2)``.
        points: (B, N, 2) pixel points ``(x, y)``; points beyond the outer cell centres take
            the border's values.
        stride: pixels per cell.
        normalize: divide each sampled descriptor by its L2 norm (floored at 1e-12).

    Returns:
        (B, N, D) descriptors.

    Formula (``u = clip((x - c) / stride, 0, w - 1)``, ``u0 = min(floor(u), w - 2)``,
    ``a = u - u0``; the same for ``v``, ``b``)::

        d = (1-a)(1-b) M[v0, u0] + a(1-b) M[v0, u0+1] + (1-a) b M[v0+1, u0] + a b M[v0+1, u0+1]
    """
    maps = ops.convert_to_tensor(maps)
    points = ops.cast(ops.convert_to_tensor(points), maps.dtype)
    shape = ops.shape(maps)
    height, width, depth = shape[1], shape[2], shape[3]
    centre = (stride - 1) / 2
    u = ops.clip((points[..., 0] - centre) / stride, 0.0, ops.cast(width - 1, maps.dtype))
    v = ops.clip((points[..., 1] - centre) / stride, 0.0, ops.cast(height - 1, maps.dtype))
    u0 = ops.minimum(ops.floor(u), ops.cast(width - 2, maps.dtype))
    v0 = ops.minimum(ops.floor(v), ops.cast(height - 2, maps.dtype))
    a = ops.expand_dims(u - u0, -1)
    b = ops.expand_dims(v - v0, -1)
    u0 = ops.cast(u0, "int32")
    v0 = ops.cast(v0, "int32")
    flat = ops.reshape(maps, (shape[0], height * width, depth))

    def corner(dv, du):
        index = ops.expand_dims((v0 + dv) * width + (u0 + du), -1)
        return ops.take_along_axis(flat, index, axis=1)

    out = ((1 - a) * (1 - b) * corner(0, 0) + a * (1 - b) * corner(0, 1)
           + (1 - a) * b * corner(1, 0) + a * b * corner(1, 1))
    if normalize:
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(out), axis=-1, keepdims=True), 1e-12))
        out = out / norm
    return out


@keras.saving.register_keras_serializable(package="hnet_keras")
class BilinearSample(keras.layers.Layer):
    """:func:`sample_bilinear` as a layer: ``[maps (B, h, w, D), points (B, N, 2)] -> (B, N, D)``."""

    def __init__(self, stride=STRIDE, normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.stride, self.normalize = int(stride), bool(normalize)

    def call(self, inputs):
        maps, points = inputs
        return sample_bilinear(maps, points, self.stride, self.normalize)

    def compute_output_shape(self, input_shape):
        maps, points = input_shape
        return (maps[0], points[1], maps[3])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "normalize": self.normalize}


@keras.saving.register_keras_serializable(package="hnet_keras")
def info_nce(y_true, y_pred, temperature=0.07, radius=3.0):
    """Symmetric InfoNCE over a pair's correspondences, the other points as negatives.

    Every correspondence ``i`` is a positive ``(a_i, b_i)``; every other ``b_j`` (and, the
    other way, ``a_j``) is a negative, except those whose point in A lies within ``radius``
    pixels of point ``i`` (a stride-8 map cannot tell them apart). The correspondences come
    with a hard-negative partner a few pixels away, so the softmax's largest negatives are
    hard ones. Invalid (padding) correspondences are neither anchors nor negatives.

    Formula (``s_ij = <a_i, b_j> / temperature``; ``K_i`` the kept j: valid, and ``j = i``
    or ``||p_i - p_j|| > radius``; ``n`` the valid count)::

        loss = sum_i valid_i * ( logsumexp_{j in K_i} s_ij + logsumexp_{j in K_i} s_ji - 2 s_ii ) / (2 n)

    Args:
        y_true: (B, N, 3): each correspondence's point in A ``(x, y)`` and a validity flag 0/1.
        y_pred: (B, N, 2D): the descriptors ``a_i`` (first D values) and ``b_i`` (last D), unit length.
        temperature: the softmax temperature.
        radius: pixels; see above.

    Returns:
        (B,) losses.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    depth = ops.shape(y_pred)[-1] // 2
    a, b = y_pred[..., :depth], y_pred[..., depth:]
    points, valid = y_true[..., :2], y_true[..., 2]
    logits = ops.einsum("bnd,bmd->bnm", a, b) / temperature
    squared = ops.sum(ops.square(ops.expand_dims(points, 2) - ops.expand_dims(points, 1)), axis=-1)
    count = ops.shape(points)[1]
    eye = ops.cast(ops.eye(count), y_pred.dtype)
    keep = ops.maximum(ops.cast(squared > radius**2, y_pred.dtype), eye)
    keep = keep * ops.expand_dims(valid, 1) * ops.expand_dims(valid, 2)
    very_negative = ops.cast(-1e4, y_pred.dtype)
    masked = ops.where(keep > 0, logits, very_negative)
    positive = ops.sum(logits * eye, axis=-1)
    rows = ops.logsumexp(masked, axis=2) - positive
    columns = ops.logsumexp(masked, axis=1) - positive
    total = ops.sum((rows + columns) * valid, axis=-1)
    return total / (2 * ops.maximum(ops.sum(valid, axis=-1), 1.0))


@keras.saving.register_keras_serializable(package="hnet_keras")
class InfoNCE(keras.losses.Loss):
    """:func:`info_nce` as a loss object, its ``temperature`` and ``radius`` in the saved config."""

    def __init__(self, temperature=0.07, radius=3.0, name="info_nce", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature, self.radius = float(temperature), float(radius)

    def call(self, y_true, y_pred):
        return info_nce(y_true, y_pred, self.temperature, self.radius)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "radius": self.radius}


def build_training_model(net):
    """The model trained: ``{image_a, image_b, points_a, points_b}`` -> (B, N, 2D) descriptors at the points.

    ``image_*`` are (B, S, S, 1) gray levels, ``points_*`` (B, N, 2) pixel points of the
    correspondences; the output is the input of :func:`info_nce`. ``net`` is shared.
    """
    image_a = keras.Input((None, None, 1), name="image_a")
    image_b = keras.Input((None, None, 1), name="image_b")
    points_a = keras.Input((None, 2), name="points_a")
    points_b = keras.Input((None, 2), name="points_b")
    sample = BilinearSample(name="sample")
    a = sample([net(image_a), points_a])
    b = sample([net(image_b), points_b])
    outputs = keras.layers.Concatenate(axis=-1, name="pairs")([a, b])
    inputs = {"image_a": image_a, "image_b": image_b, "points_a": points_a, "points_b": points_b}
    return keras.Model(inputs, outputs, name="descriptor_training")


# Training pairs.


def harris_response(image, block=3, aperture=3, k=0.04):
    """Harris corner response of a uint8 image (OpenCV), float32 (H, W)."""
    return cv2.cornerHarris(np.float32(image), block, aperture, k)


def make_training_pair(photo, rng, preset, augmentation=DEFAULT_AUGMENTATION):
    """One training pair from a photo: ``(image_a, image_b, points_a, points_b, valid)``.

    Image A is a random ``image_size`` square crop of ``photo`` ((H, W) uint8, both sides
    >= ``image_size``) shrunk by a factor log-uniform in ``[1 / zoom, 1]`` (``T_a``: photo -> A);
    image B is the photo seen through ``H_ab T_a`` (``H_ab`` from
    :func:`~hnet_keras.features.homographies.sample_homography` with :func:`pair_homographies`),
    so ``points_b = H_ab points_a``.
    Points are drawn where B sees the photo: half among A's strongest 10 % Harris
    responses, a quarter uniformly, and each of those with a hard-negative partner 4-12 px
    away. When too few points are visible, the rest are padding with ``valid`` 0.

    Returns:
        ``image_a, image_b`` (S, S) uint8, ``points_a, points_b`` (N, 2) float32, ``valid`` (N,) float32.
    """
    size, count = preset.image_size, preset.points
    height, width = photo.shape
    smallest = max(1.0 / preset.zoom, size / min(height, width))
    zoom = math.exp(rng.uniform(math.log(smallest), 0.0)) if smallest < 1 else 1.0
    x0 = rng.uniform(0, max(zoom * width - size, 0))
    y0 = rng.uniform(0, max(zoom * height - size, 0))
    to_a = np.array([[zoom, 0, -x0], [0, zoom, -y0], [0, 0, 1]], np.float64)
    image_a = warp_image(photo, to_a, (size, size))
    h_ab = sample_homography((size, size), rng, pair_homographies(preset))
    image_b = warp_image(photo, h_ab @ to_a, (size, size))
    # Candidates: a dense set of A's pixels whose B point is inside B and whose photo point is on the photo.
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).reshape(-1, 2).astype(np.float64)
    view = (size, size)
    visible = np.flatnonzero(inside(warp_points(h_ab, grid), view)
                             & inside(warp_points(np.linalg.inv(to_a), grid), (width, height)))
    anchors = count // 2
    points = np.zeros((count, 2))
    valid = np.zeros(count, np.float32)
    if len(visible) >= 8:
        response = harris_response(image_a).reshape(-1)[visible]
        strong = visible[response >= np.quantile(response, 0.9)]
        n_strong = anchors // 2 + anchors % 2
        chosen = np.concatenate([rng.choice(strong, n_strong), rng.choice(visible, anchors - n_strong)])
        first = grid[chosen] + rng.uniform(-0.5, 0.5, (anchors, 2))
        angle = rng.uniform(0, 2 * np.pi, anchors)
        distance = rng.uniform(4.0, 12.0, anchors)
        partner = first + np.stack([np.cos(angle), np.sin(angle)], -1) * distance[:, None]
        candidates = np.concatenate([first, partner])
        points[: len(candidates)] = candidates
        valid[: len(candidates)] = inside(candidates, view) & inside(warp_points(h_ab, candidates), view)
    points_b = warp_points(h_ab, points)
    points_b[valid == 0] = 0.0
    points[valid == 0] = 0.0
    if augmentation is not None:
        image_a = augment_patch(image_a, rng, augmentation)
        image_b = augment_patch(image_b, rng, augmentation)
    return image_a, image_b, points.astype(np.float32), points_b.astype(np.float32), valid


def prepare_photos(paths, side, minimum):
    """Photos read as grayscale and shrunk so the longer side is at most ``side``; those with a
    shorter side below ``minimum`` after that are skipped. Returns a list of (H, W) uint8."""
    photos = []
    for path in paths:
        image, _ = read_grayscale(path, warn=False)
        if image is None:
            continue
        factor = min(1.0, side / max(image.shape))
        if factor < 1:
            image = cv2.resize(image, (round(image.shape[1] * factor), round(image.shape[0] * factor)),
                               interpolation=cv2.INTER_AREA)
        if min(image.shape) >= minimum:
            photos.append(image)
    return photos


class DescriptorPairs(keras.utils.PyDataset):
    """Batches of training pairs for :func:`build_training_model`, drawn from photos.

    Batch ``i`` of epoch ``e`` is drawn with the seed ``(seed, e, i)`` (``fixed``: always
    epoch 0), so the same seed gives the same batches and a resumed run the same data.

    Yields ``({"image_a", "image_b": (B, S, S, 1) float32 0..255, "points_a", "points_b":
    (B, N, 2) float32}, y)`` with ``y`` (B, N, 3): points in A and the validity flag.

    Args:
        photos: (H, W) uint8 photos (see :func:`prepare_photos`).
        preset: the :class:`DescriptorPreset`.
        batches: batches per epoch.
        seed: the data seed.
        fixed: the same batches every epoch (validation), never augmented.
    """

    def __init__(self, photos, preset, batches, seed=0, fixed=False, **kwargs):
        super().__init__(**kwargs)
        if not photos:
            raise ValueError("no photos to draw descriptor training pairs from")
        self.photos, self.preset, self.batches = list(photos), preset, int(batches)
        self.seed, self.fixed, self.epoch = int(seed), bool(fixed), 0
        self.augmentation = DEFAULT_AUGMENTATION if preset.augment and not fixed else None

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, int(index)])
        pairs = [make_training_pair(self.photos[rng.integers(len(self.photos))], rng, self.preset, self.augmentation)
                 for _ in range(self.preset.batch_size)]
        image_a, image_b, points_a, points_b, valid = (np.stack(parts) for parts in zip(*pairs))
        x = {"image_a": image_a[..., None].astype(np.float32), "image_b": image_b[..., None].astype(np.float32),
             "points_a": points_a, "points_b": points_b}
        return x, np.concatenate([points_a, valid[..., None]], axis=-1)

    def on_epoch_end(self):
        self.epoch += 1


# Training.


def compile_training_model(model, preset):
    """Adam, ``learning_rate`` for the first 80 % of the run then a tenth of it, and :class:`InfoNCE`."""
    boundary = max(1, int(0.8 * preset.iterations))
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [boundary], [preset.learning_rate, preset.learning_rate / 10])
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
                  loss=InfoNCE(preset.temperature, preset.radius))
    return model


@dataclass
class DescriptorTrainResult:
    """What :func:`train_descriptors` returns: the dense ``net``, the ``training_model``, the
    ``history`` (one dict per epoch, resumed epochs included), the run ``directory``, the
    ``preset`` and ``resumed_from`` (epochs done before this call)."""

    net: keras.Model
    training_model: keras.Model
    history: list
    directory: Path
    preset: DescriptorPreset
    resumed_from: int = 0


def _photo_parts(images, preset):
    """``(train, validation)`` photos: a folder is split by file name (its test part is never read)."""
    if images is None:
        train_paths, validation_paths = embedded_photo_paths("train"), embedded_photo_paths("test")
    elif isinstance(images, (str, os.PathLike)):
        parts = split_images(list_images(images))
        require_split_parts(images, parts)
        train_paths, validation_paths = parts["train"], parts["validation"]
    else:
        train_paths, validation_paths = list(images), list(images)
    minimum = preset.image_size
    train = prepare_photos(train_paths, preset.photo_side, minimum)
    validation = prepare_photos(validation_paths, preset.photo_side, minimum)
    if not train or not validation:
        raise ValueError(f"{images}: no photo with a shorter side of at least {minimum} px after shrinking "
                         f"to {preset.photo_side} px")
    return train, validation


def train_descriptors(preset="descriptors_cpu", *, run=None, checkpoint_dir="checkpoints", images=None, seed=0,
                      resume=True, callbacks=(), verbose="auto", progress=False, **overrides):
    """Train the dense descriptor network, checkpointing every epoch; resume a killed run.

    Args:
        preset: a name in :data:`DESCRIPTOR_PRESETS` or a :class:`DescriptorPreset`.
        run: the run's folder name under ``checkpoint_dir`` (default: the preset's name).
        checkpoint_dir: where run folders live.
        images: a folder of photos (split by file name with
            :func:`~hnet_keras.data.images.split_images`: trains on its train part, validates on
            its validation part, never reads its test part), a list of paths (train and
            validate on them), or ``None`` (the embedded scikit-image photos' train / test split).
        seed: seeds Keras and the pairs.
        resume: continue from the run's ``last.keras`` when there is one.
        callbacks: more Keras callbacks.
        verbose: passed to ``fit``; ``progress``: a tqdm bar (use with ``verbose=0``).
        **overrides: :class:`DescriptorPreset` fields to replace.

    Returns:
        A :class:`DescriptorTrainResult`.
    """
    preset = get_descriptor_preset(preset, **overrides)
    folder = Path(checkpoint_dir) / (run or preset.name)
    keras.utils.set_random_seed(seed)
    train_photos, validation_photos = _photo_parts(images, preset)
    train_data = DescriptorPairs(train_photos, preset, preset.steps_per_epoch, seed)
    validation_data = DescriptorPairs(validation_photos, preset, preset.validation_batches, seed + 1, fixed=True)
    epochs = math.ceil(preset.iterations / preset.steps_per_epoch)
    resume_point = _read_resume_point(folder, preset) if resume else None
    initial_epoch, history = 0, []
    if resume_point is None:
        model = compile_training_model(build_training_model(build_descriptor_net(**preset.net_options())), preset)
    else:
        model = keras.saving.load_model(folder / "last.keras", safe_mode=True)
        state, history = resume_point
        initial_epoch = int(_optimizer_position(model)[0]) // preset.steps_per_epoch
        history = [row for row in history if row["epoch"] <= initial_epoch]
        for _ in range(initial_epoch):
            train_data.on_epoch_end()
    checkpoint = RunCheckpoint(folder, preset, history, monitor="val_loss", extra_state={"seed": seed})
    if initial_epoch < epochs:
        model.fit(train_data, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data,
                  shuffle=False, verbose=verbose,
                  callbacks=[*callbacks, checkpoint, *([_progress_bar()] if progress else [])])
    net = model.get_layer("descriptor_net")
    return DescriptorTrainResult(net, model, checkpoint.history, folder, preset, initial_epoch)


# Checkpoints.


def save_descriptor_net(net, path, facts=None):
    """Write the dense network as a ``.keras`` file with its description inside (and a ``.json``
    copy beside it), atomically; ``facts`` (training facts) are added to the description."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: a descriptor checkpoint ends in .keras")
    description = {"kind": "dense_descriptors", "options": net_options(net), "stride": STRIDE, **(facts or {})}
    save_model(net, path, description)
    atomic_write_json(path.with_suffix(".json"), description)
    return path


def net_options(net):
    """The :func:`build_descriptor_net` options of a built network: ``{"dim", "widths"}``."""
    widths = [net.get_layer(f"conv{stage}_1").filters for stage in range(1, 5)]
    return {"dim": int(net.get_layer("descriptor").filters), "widths": widths}


def load_descriptor_net(path=None):
    """The dense descriptor network, offline, loaded in Keras's safe mode.

    Args:
        path: a ``.keras`` network (what :func:`save_descriptor_net` writes), a run folder of
            :func:`train_descriptors` (its ``best.keras``, else ``last.keras``), or ``None``:
            ``$HNET_KERAS_DESCRIPTORS`` or the shipped :data:`SHIPPED_DESCRIPTORS`.

    Raises:
        FileNotFoundError / ValueError naming the path.
    """
    path = Path(path if path is not None else os.environ.get("HNET_KERAS_DESCRIPTORS") or SHIPPED_DESCRIPTORS)
    if path.is_dir():
        found = [path / name for name in ("best.keras", "last.keras") if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{path}: no best.keras or last.keras in this folder")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"descriptor checkpoint not found: {path}")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise ValueError(f"cannot load the descriptor checkpoint {path}: {error}") from error
    if model.name == "descriptor_training":
        model = model.get_layer("descriptor_net")
    if len(model.outputs) != 1 or model.outputs[0].shape[-1] is None:
        raise ValueError(f"{path}: not a dense descriptor network")
    return model


def describe_image(net, image):
    """The descriptor map of a grayscale uint8 image (H, W): (H // 8, W // 8, D) float32, unit length."""
    image = np.asarray(image)
    if image.ndim != 2 or min(image.shape) < 2 * STRIDE:
        raise ValueError(f"expected a grayscale image of at least {2 * STRIDE} px a side, got shape {image.shape}")
    batch = image[None, :, :, None].astype(np.float32)
    return np.asarray(keras.ops.convert_to_numpy(net(batch, training=False))[0], np.float32)
