"""HomographyNet models: the paper's regression and classification networks, a
twin-MobileNetV2 transfer model, and the iterative correlation model.

Every model takes the stacked pair, shape ``(input_size, input_size, 2)``, normalized
to ``[-1, 1]``. The regression and MobileNet models output the 8 offsets divided by
``rho``; the classification model outputs, for each of the 8 coordinates, a
probability over ``bins`` offset values (the bin centres ``linspace(-rho, rho, bins)``);
the iterative model (:mod:`hnet_keras.nets.iterative`) outputs the estimate of each of its
steps, (B, K, 8) in units of ``rho``.

Models use Keras layers only (no ``Lambda``), so they save to ``.keras``, reload in
safe mode and run under any Keras backend.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import layers

from .iterative import build_iterative
from .targets import MODEL_KINDS

__all__ = ["build_model", "WeightsUnavailable"]


# The paper's 8 convolutions; a 2x2 max-pool follows the 2nd, 4th and 6th.
_PAPER_FILTERS = (64, 64, 64, 64, 128, 128, 128, 128)
_POOL_AFTER = (2, 4, 6)


def build_model(kind="regression", **options):
    """Build (not compile) a HomographyNet model.

    Args:
        kind: ``"regression"`` (the paper's regression network), ``"classification"``
            (same trunk, 8 x ``bins`` softmax head) or ``"mobilenet"`` (twin
            MobileNetV2 with shared weights).
        **options: for ``regression`` and ``classification``:

            * ``input_size`` (128): side of the square input patches; a multiple of 8.
            * ``width`` (1.0): multiplier of the conv filters and of the 1024 FC units,
              for CPU-sized variants.
            * ``dense_units`` (``1024 * width``): units of the hidden FC layer.
            * ``dropout`` (True): the paper's dropout 0.5 before both FC layers;
              ``False`` removes the layers (ablation). A float sets the rate.
            * ``batchnorm`` (True): ``False`` removes the BatchNorm layers (ablation).
            * ``standardize`` (False): first bring each patch to zero mean and unit
              variance (a parameter-free layer); small models leave the identity's
              error several times sooner.
            * ``bins`` (21): classification only.

            for ``mobilenet``: ``input_size`` (128, a multiple of 16, at least 32), ``width``
            (1.0, the MobileNetV2 ``alpha``), ``dense_units`` (512), ``dropout`` (True),
            ``weights`` (``None``; ``"imagenet"`` downloads the pre-trained weights, or
            raises :class:`WeightsUnavailable`).

            for ``iterative`` (:func:`hnet_keras.nets.iterative.build_iterative`): ``input_size``
            (64), ``rho`` (16, its output unit, saved in the model), ``iterations`` (6),
            ``stride``, ``radius``, ``channels``, ``context``, ``head``.

    Returns:
        An uncompiled ``keras.Model``; its ``name`` is ``hnet_<kind>``.
    """
    builders = {"regression": _build_paper, "classification": _build_paper, "mobilenet": _build_mobilenet,
                "iterative": lambda kind, **iterative: build_iterative(**iterative)}
    if kind not in builders:
        raise ValueError(f"kind must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
    return builders[kind](kind=kind, **options)


def _dropout_rate(dropout):
    if dropout is True:
        return 0.5
    if dropout is False or dropout is None:
        return 0.0
    rate = float(dropout)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout must be a bool or a rate in [0, 1), got {dropout!r}")
    return rate


def _scaled(units, width):
    return max(1, int(round(units * width)))


def _build_paper(kind, input_size=128, width=1.0, dense_units=None, dropout=True, batchnorm=True, bins=21,
                 standardize=False):
    """The paper's VGG-like trunk and its regression or classification head."""
    if input_size < 8 or input_size % 8:
        raise ValueError(f"input_size must be a positive multiple of 8 (three 2x2 pools), got {input_size}")
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if kind == "classification" and bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    rate = _dropout_rate(dropout)
    dense_units = _scaled(1024, width) if dense_units is None else int(dense_units)

    model = keras.Sequential(name=f"hnet_{kind}")
    model.add(keras.Input(shape=(input_size, input_size, 2), name="pair"))
    if standardize:
        # Each patch to zero mean and unit variance, so dark or flat patches give the
        # first layer signals of the same size as bright, textured ones.
        model.add(layers.LayerNormalization(axis=(1, 2), center=False, scale=False, name="standardize"))
    for index, filters in enumerate(_PAPER_FILTERS, start=1):
        model.add(layers.Conv2D(_scaled(filters, width), 3, padding="same", name=f"conv{index}"))
        if batchnorm:
            model.add(layers.BatchNormalization(name=f"bn{index}"))
        model.add(layers.ReLU(name=f"relu{index}"))
        if index in _POOL_AFTER:
            model.add(layers.MaxPooling2D(2, name=f"pool{index}"))
    model.add(layers.Flatten(name="flatten"))
    if rate:
        model.add(layers.Dropout(rate, name="dropout_fc1"))
    model.add(layers.Dense(dense_units, activation="relu", name="fc1"))
    if rate:
        model.add(layers.Dropout(rate, name="dropout_out"))
    # The output layer starts at zero: the untrained model is the identity (zero offsets,
    # uniform bins). With random output weights, the first steps' cheapest way to lower the
    # loss is to silence the 1024-unit layer, and most of its ReLUs die for good (with
    # dropout, all of them): the model then sits at the identity's error for hundreds of steps.
    if kind == "regression":
        # float32 output keeps the loss exact under mixed precision.
        model.add(layers.Dense(8, name="offsets", dtype="float32", kernel_initializer="zeros"))
    else:
        model.add(layers.Dense(8 * bins, name="logits", kernel_initializer="zeros"))
        model.add(layers.Reshape((8, bins), name="coordinate_logits"))
        model.add(layers.Softmax(axis=-1, name="probabilities", dtype="float32"))
    return model


MOBILENET_CUT = "block_3_expand_relu"
"""The MobileNetV2 layer (stride 4) where the transfer model's trunk ends and its head begins."""


class WeightsUnavailable(RuntimeError, OSError):
    """Pre-trained weights were asked for and could not be had (no network, no cached file).

    An ``OSError`` too, so the command line reports it in one line."""


def _mobilenet_trunk(input_size, width, weights):
    try:
        with warnings.catch_warnings():
            # The 224 px ImageNet weights serve any input size (the trunk is convolutional).
            warnings.filterwarnings("ignore", message=".*will be loaded as the default")
            backbone = keras.applications.MobileNetV2(
                input_shape=(input_size, input_size, 3), alpha=width, include_top=False, weights=weights
            )
    except Exception as error:  # keras.utils.get_file raises a bare Exception when offline
        if weights is None:
            raise
        raise WeightsUnavailable(
            f"MobileNetV2 {weights} weights (alpha {width}) could not be downloaded; fetch the file into "
            f"~/.keras/models/ where there is network access, or train from scratch (weights=None). {error}"
        ) from error
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            # Frozen, so it runs in inference mode (Keras' transfer-learning guide): with
            # ImageNet weights it keeps ImageNet's statistics; from scratch it passes the
            # features through. Trained in batch mode, the training error fell while the
            # held-out error, in inference mode, stayed at the identity's.
            layer.trainable = False
    return keras.Model(backbone.input, backbone.get_layer(MOBILENET_CUT).output, name="mobilenet_trunk")


def _pair_as_rgb(pair):
    """The pair as a 3-channel image (A, B, their mean), by a frozen 1x1 convolution.

    It turns the stacked grayscale pair into what an RGB network takes without a Lambda
    layer; the kernel is fixed here and saved with the weights.
    """
    mixer = layers.Conv2D(3, 1, use_bias=False, trainable=False, kernel_initializer="zeros", name="pair_rgb")
    rgb = mixer(pair)
    kernel = np.zeros((1, 1, 2, 3), np.float32)
    kernel[0, 0, 0, 0] = kernel[0, 0, 1, 1] = 1.0
    kernel[0, 0, :, 2] = 0.5
    mixer.set_weights([kernel])
    return rgb


def _build_mobilenet(kind, input_size=128, width=1.0, dense_units=512, dropout=True, weights=None):
    """A MobileNetV2 trunk (its first stages, to stride 4) on the pair as one RGB image.

    Patch A, patch B and their mean are the three channels, so the first convolution
    already sees both patches at every pixel, as in the paper's network; a small conv head
    regresses the offsets from the trunk's feature maps. A twin design (each patch
    through the trunk, then pooled to a feature vector, as in a classifier) throws away
    where things are, which is what a homography is about: it stayed at the identity's error.
    """
    if input_size < 32 or input_size % 16:
        raise ValueError(f"MobileNetV2 needs input_size a multiple of 16, at least 32, got {input_size}")
    rate = _dropout_rate(dropout)
    pair = keras.Input(shape=(input_size, input_size, 2), name="pair")
    # The pair is already in [-1, 1], the range MobileNetV2 was trained on.
    x = _mobilenet_trunk(input_size, width, weights)(_pair_as_rgb(pair))
    for index in (1, 2):
        x = layers.Conv2D(64, 3, padding="same", use_bias=False, name=f"head_conv{index}")(x)
        x = layers.BatchNormalization(name=f"head_bn{index}")(x)
        x = layers.ReLU(name=f"head_relu{index}")(x)
        x = layers.MaxPooling2D(2, name=f"head_pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    if rate:
        x = layers.Dropout(rate, name="dropout_fc1")(x)
    hidden = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    if rate:
        hidden = layers.Dropout(rate, name="dropout_out")(hidden)
    offsets = layers.Dense(8, name="offsets", dtype="float32", kernel_initializer="zeros")(hidden)  # see _build_paper
    return keras.Model(pair, offsets, name=f"hnet_{kind}")
