"""An iterative correlation model for the 4-point homography, in Keras 3 (``keras.ops`` only).

The regression network of DeTone et al. must learn, from one forward pass, a mapping
from raw pixels to 8 numbers; it needs millions of pairs. The iterative family (IHN,
CVPR 2022; RHWF, CVPR 2023) learns far faster per pair by asking a much easier
question many times: *given the current estimate, how far off is it?* This model:

1. encodes each patch with one shared convolutional encoder (``stride`` 4 or 8);
2. for ``refinements`` steps:

   a. solves the homography ``H_ab`` of the current 4-point estimate (a batched
      8x8 DLT, :func:`four_point_to_homography`);
   b. samples B's features at ``H_ab`` of A's feature grid (bilinear,
      :func:`sample_bilinear`): B warped into A's frame by the current estimate;
   c. correlates A's features with the warped B's in a ``(2r+1)^2`` window
      (:func:`local_correlation`), so the residual motion becomes a peak in a
      cost volume;
   d. an update head turns the cost volume (and A's context features) into one
      correction per corner, on a 2x2 grid (a corner's correction comes from its
      own quadrant), added to the estimate.

The weights are shared by every iteration (tied). The model outputs every iteration's
estimate, (B, K, 8) in units of ``rho`` (the targets' ``offsets / rho``); the last one
is the answer. :func:`hnet_keras.nets.losses.sequence_l1` trains all of them, the later ones weighted more.
The estimate fed to the next iteration is not differentiated through (as in RAFT):
each step learns to correct whatever the previous one left.

Geometry follows :mod:`hnet_keras.geometry`: points are ``(x, y)`` pixels of the
model's input (a ``S`` x ``S`` patch has corners ``(0, 0), (S, 0), (S, S), (0, S)``),
offsets are perturbed - original corners, and ``H_ab`` maps a point of A to the point
of B showing the same content: ``H_ab = getPerspectiveTransform(perturbed, original)``.
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "four_point_to_homography",
    "apply_homography",
    "sample_bilinear",
    "local_correlation",
    "IterativeHomography",
    "build_iterative",
    "MAX_INPUT_SIZE",
    "MAX_REFINEMENTS",
]

_PACKAGE = "hnet_keras"
MAX_INPUT_SIZE = 1024
"""The largest input side a model is built with (the paper's is 128): a sanity bound on edited files."""
MAX_REFINEMENTS = 64
"""The most refinement steps an iterative model runs (the shipped one runs 6)."""


def four_point_to_homography(source, target):
    """The homography mapping 4 source points to 4 target points, batched (the DLT).

    Solves the 8x8 linear system of ``getPerspectiveTransform`` with ``h33 = 1``.
    Use coordinates of order 1 (e.g. pixels divided by the patch side) so float32
    stays well conditioned.

    Args:
        source: (B, 4, 2) points ``(x, y)``.
        target: (B, 4, 2) or (4, 2) points ``(u, v)``.

    Returns:
        (B, 3, 3) ``H`` with ``H @ [x, y, 1] ~ [u, v, 1]``.
    """
    source = ops.convert_to_tensor(source)
    target = ops.broadcast_to(ops.cast(ops.convert_to_tensor(target), source.dtype), ops.shape(source))
    x, y = source[..., 0], source[..., 1]
    u, v = target[..., 0], target[..., 1]
    one, zero = ops.ones_like(x), ops.zeros_like(x)
    rows_u = ops.stack([x, y, one, zero, zero, zero, -u * x, -u * y], axis=-1)  # (B, 4, 8)
    rows_v = ops.stack([zero, zero, zero, x, y, one, -v * x, -v * y], axis=-1)
    matrix = ops.reshape(ops.stack([rows_u, rows_v], axis=2), (-1, 8, 8))
    rhs = ops.reshape(ops.stack([u, v], axis=-1), (-1, 8, 1))
    h = ops.reshape(ops.linalg.solve(matrix, rhs), (-1, 8))
    h = ops.concatenate([h, ops.ones_like(h[:, :1])], axis=-1)
    return ops.reshape(h, (-1, 3, 3))


def apply_homography(homography, points):
    """Map points by a batch of homographies.

    Args:
        homography: (B, 3, 3).
        points: (P, 2) points shared by the batch, or (B, P, 2).

    Returns:
        (B, P, 2) mapped points. A point mapped to (or behind) infinity gets a huge
        but finite coordinate, which :func:`sample_bilinear` treats as outside.
    """
    points = ops.cast(ops.convert_to_tensor(points), homography.dtype)
    homogeneous = ops.concatenate([points, ops.ones_like(points[..., :1])], axis=-1)
    if len(points.shape) == 2:
        mapped = ops.einsum("bij,pj->bpi", homography, homogeneous)
    else:
        mapped = ops.einsum("bij,bpj->bpi", homography, homogeneous)
    z = mapped[..., 2:3]
    z = ops.where(ops.abs(z) < 1e-6, ops.where(z < 0, -1e-6, 1e-6), z)
    return mapped[..., :2] / z


def sample_bilinear(features, points):
    """Bilinear samples of a batch of feature maps at (fractional) cell coordinates.

    Args:
        features: (B, H, W, C).
        points: (B, P, 2) ``(x, y)`` in cells (``(0, 0)`` is the top-left cell's
            centre). Neighbours outside the map count as zero.

    Returns:
        (B, P, C).
    """
    batch, height, width, channels = ops.shape(features)
    flat = ops.reshape(features, (-1, channels))
    x, y = points[..., 0], points[..., 1]
    x0, y0 = ops.floor(x), ops.floor(y)
    base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1))
    result = 0.0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        weight = (1.0 - ops.abs(x - xi)) * (1.0 - ops.abs(y - yi))
        inside = (xi >= 0) & (xi <= width - 1) & (yi >= 0) & (yi <= height - 1)
        weight = ops.where(inside, weight, ops.zeros_like(weight))
        xi = ops.cast(ops.clip(xi, 0, width - 1), "int32")
        yi = ops.cast(ops.clip(yi, 0, height - 1), "int32")
        index = base + yi * width + xi
        result = result + ops.take(flat, ops.reshape(index, (-1,)), axis=0) * ops.reshape(weight, (-1, 1))
    return ops.reshape(result, (batch, -1, channels))


def local_correlation(features_a, features_b, radius):
    """Cost volume: for every cell, A's feature dotted with B's at each shift in a window.

    Computed as the full (H W) x (H W) correlation matrix (one batched matmul, fast on
    any backend, forward and backward) from which each cell's window is gathered.

    Args:
        features_a, features_b: (B, H, W, C), B already warped into A's frame.
        radius: the window is ``(2 * radius + 1)`` cells square.

    Returns:
        (B, H, W, (2 r + 1)^2): channel ``(dy + r) * (2r + 1) + (dx + r)`` holds
        ``<a(x, y), b(x + dx, y + dy)>`` (zero where the shift leaves the map).
    """
    _, height, width, channels = features_a.shape
    cells = height * width
    flat_a = ops.reshape(features_a, (-1, cells, channels))
    flat_b = ops.reshape(features_b, (-1, cells, channels))
    full = ops.matmul(flat_a, ops.transpose(flat_b, (0, 2, 1)))
    index, inside = _window_index(height, width, radius)
    window = ops.take(ops.reshape(full, (-1, cells * cells)), index, axis=1) * inside
    return ops.reshape(window, (-1, height, width, (2 * radius + 1) ** 2))


def _window_index(height, width, radius):
    """Flat indices into a (H W) x (H W) matrix of each cell's window, and their validity."""
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    dy, dx = np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1), indexing="ij")
    ty, tx = y.reshape(-1, 1) + dy.reshape(1, -1), x.reshape(-1, 1) + dx.reshape(1, -1)
    inside = (ty >= 0) & (ty < height) & (tx >= 0) & (tx < width)
    source = (y * width + x).reshape(-1, 1)
    target = np.clip(ty, 0, height - 1) * width + np.clip(tx, 0, width - 1)
    index = (source * (height * width) + target).reshape(-1).astype("int32")
    return index, inside.reshape(1, -1).astype("float32")


def _conv(filters, kernel, strides=1, activation="relu", name=None, **options):
    options.setdefault("kernel_initializer", "he_normal" if activation == "relu" else "glorot_uniform")
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation=activation, name=name, **options)


def _unit_length(features):
    """Each cell's feature vector scaled to length 1, so correlations are cosines in [-1, 1]."""
    return features / ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True) + 1e-6)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IterativeHomography(layers.Layer):
    """The iterative correlation core: a (B, S, S, 2) normalized pair in, (B, K, 8) out.

    Args:
        input_size: side ``S`` of the pair; a multiple of ``4 * stride``.
        rho: the offsets' unit: outputs are ``offsets / rho`` (pixels of the input).
        refinements: ``K``, the refinement steps (weights tied), at most :data:`MAX_REFINEMENTS`;
            ``iterations`` is its older name, still read (checkpoints written before the rename).
        stride: the encoder's downsampling, 4 or 8.
        radius: the correlation window's radius, in feature cells.
        channels: feature channels of the encoder.
        context: channels of A's context features fed to the update head.
        head: channels of the update head.
    """

    def __init__(self, input_size=64, rho=16, refinements=6, stride=4, radius=4, channels=64, context=32,
                 head=64, iterations=None, **kwargs):
        super().__init__(**kwargs)
        refinements = refinements if iterations is None else iterations
        for name, value, high in (("input_size", input_size, MAX_INPUT_SIZE), ("refinements", refinements,
                                  MAX_REFINEMENTS), ("radius", radius, 64), ("channels", channels, 4096),
                                  ("context", context, 4096), ("head", head, 4096)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= high:
                raise ValueError(f"{name} must be an integer in [1, {high}], got {value!r}")
        if stride not in (4, 8):
            raise ValueError(f"stride must be 4 or 8, got {stride}")
        if input_size % (4 * stride):
            raise ValueError(f"input_size must be a multiple of 4 * stride = {4 * stride}, got {input_size}")
        if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not 0 < rho < math.inf:
            raise ValueError(f"rho must be a finite number > 0, got {rho!r}")
        self.input_size, self.rho, self.refinements = int(input_size), float(rho), int(refinements)
        self.stride, self.radius = int(stride), int(radius)
        self.channels, self.context_channels, self.head_channels = int(channels), int(context), int(head)
        # Strided 3x3 convolutions down to ``stride`` (the first at a quarter of the
        # width: full resolution is where convolutions cost most), a 3x3 after each
        # of the last two, then a linear 1x1 projection to the features.
        levels = {4: (channels // 2, channels), 8: (channels // 4, channels // 2, channels)}[stride]
        encoder = []
        for level, width in enumerate(levels, start=1):
            encoder.append(_conv(width, 3, 2, name=f"enc{level}_down"))
            if level > 1 or stride == 4:
                encoder.append(_conv(width, 3, name=f"enc{level}"))
        encoder.append(_conv(channels, 1, activation=None, name="enc_out"))
        self.encoder = encoder
        self.context = _conv(context, 1, name="context")
        # Cells per side: S / stride; the head halves it down to 2x2 (one cell per corner).
        cells = input_size // stride
        self.head = [_conv(head, 1, name="head_in")]
        while cells > 2:
            cells //= 2
            self.head.append(_conv(head, 3, 2, name=f"head_down{len(self.head)}"))
        # A corner's correction in units of rho; starts small so the first steps are gentle.
        self.head.append(_conv(2, 1, activation=None, name="head_out",
                               kernel_initializer="zeros"))

    def get_config(self):
        config = super().get_config()
        config.update(
            input_size=self.input_size, rho=self.rho, refinements=self.refinements, stride=self.stride,
            radius=self.radius, channels=self.channels, context=self.context_channels, head=self.head_channels,
        )
        return config

    def build(self, input_shape):
        size = self.input_size
        single = (input_shape[0], size, size, 1)
        shape = single
        for layer in self.encoder:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.context.build(shape)
        window = (2 * self.radius + 1) ** 2
        shape = shape[:3] + (window + 2 + self.context_channels,)
        # Sharpness of the soft-argmax over the window (cosines are in [-1, 1]).
        self.temperature = self.add_weight(shape=(), initializer=keras.initializers.Constant(10.0), name="temperature")
        for layer in self.head:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.refinements, 8)

    def _encode(self, patch):
        for layer in self.encoder:
            patch = layer(patch)
        return patch

    def call(self, pair):
        size, stride = float(self.input_size), self.stride
        features_a, features_b = self._encode(pair[..., :1]), self._encode(pair[..., 1:])
        context = self.context(features_a)
        features_a, features_b = _unit_length(features_a), _unit_length(features_b)
        cells = self.input_size // stride
        # Feature cell (i, j) stands for the input pixel at its centre, in units of S.
        centres = (ops.arange(cells, dtype="float32") * stride + (stride - 1) / 2.0) / size
        grid_x, grid_y = ops.meshgrid(centres, centres)
        grid = ops.stack([ops.reshape(grid_x, (-1,)), ops.reshape(grid_y, (-1,))], axis=-1)
        square = ops.convert_to_tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        side = 2 * self.radius + 1
        shifts = ops.convert_to_tensor(
            [[dx - self.radius, dy - self.radius] for dy in range(side) for dx in range(side)], dtype="float32")
        offsets = ops.zeros((ops.shape(pair)[0], 8), dtype="float32")  # pixels of the input
        estimates = []
        for _ in range(self.refinements):
            offsets = ops.stop_gradient(offsets)
            perturbed = square + ops.reshape(offsets, (-1, 4, 2)) / size
            h_ab = four_point_to_homography(perturbed, square)
            in_b = apply_homography(h_ab, grid) * size  # pixels of B
            cells_b = (in_b - (stride - 1) / 2.0) / stride
            warped = ops.reshape(sample_bilinear(features_b, cells_b), ops.shape(features_a))
            cost = local_correlation(features_a, warped, self.radius)
            # Where each cell's best match lies (soft-argmax over the window, in cells):
            # a dense residual flow, which makes the corners' corrections nearly linear.
            flow = ops.matmul(ops.softmax(cost * self.temperature, axis=-1), shifts)
            x = ops.concatenate([cost, flow, context], axis=-1)
            for layer in self.head:
                x = layer(x)
            # (B, 2, 2, 2) as rows (top, bottom) x columns (left, right) x (dx, dy):
            # corners TL, TR, BR, BL are cells (0, 0), (0, 1), (1, 1), (1, 0).
            delta = ops.stack([x[:, 0, 0], x[:, 0, 1], x[:, 1, 1], x[:, 1, 0]], axis=1)
            offsets = offsets + ops.reshape(delta, (-1, 8)) * self.rho
            estimates.append(offsets / self.rho)
        return ops.stack(estimates, axis=1)


def build_iterative(input_size=64, rho=16, refinements=6, stride=4, radius=4, channels=64, context=32, head=64,
                    iterations=None):
    """The iterative model as a functional ``keras.Model`` named ``hnet_iterative``.

    It takes (B, S, S, 2) pairs normalized to [-1, 1] and outputs (B, K, 8): the
    estimate after each refinement in units of ``rho``; ``[:, -1]`` is the answer.
    The ``rho`` is saved in the model's config, so a ``.keras`` file carries it.
    ``iterations`` is the older name of ``refinements``, still accepted.
    """
    refinements = refinements if iterations is None else iterations
    pair = keras.Input(shape=(input_size, input_size, 2), name="pair")
    core = IterativeHomography(input_size, rho, refinements, stride, radius, channels, context, head, name="iterative")
    return keras.Model(pair, core(pair), name="hnet_iterative")
