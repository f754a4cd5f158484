"""Losses and metrics of HomographyNet, in ``keras.ops`` only (any Keras backend).

In the style of ``keras/src/losses/losses.py``: plain functions of ``(y_true, y_pred)``
returning one value per sample, so ``compile`` and ``MeanMetricWrapper`` can reduce
them. All are registered under the ``hnet_keras`` package so a saved ``.keras`` model
reloads with ``safe_mode=True``.

Targets follow the project convention: regression targets are ``offsets / rho``
(shape (B, 8)); classification targets and outputs are distributions over
``bins`` values per coordinate (shape (B, 8, bins)), the bin centres being
``linspace(-rho, rho, bins)`` (see :func:`hnet_keras.nets.targets.bin_centres`).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["euclidean_l2", "sequence_l1", "MACE"]

# Below this squared norm the square root is clamped: sqrt has an infinite
# gradient at 0, which would turn a perfect prediction into NaN weights.
_TINY = 1e-12


def _cast_pair(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
    return y_true, y_pred


@keras.saving.register_keras_serializable(package="hnet_keras")
def euclidean_l2(y_true, y_pred):
    """Euclidean (L2) distance between the normalized offset vectors: the paper's loss.

    The loss of the published Keras notebook
    (``K.sqrt(K.sum(K.square(y_pred - y_true), axis=-1))``).

    Formula:

    ```python
    loss = sqrt(sum(square(y_pred - y_true), axis=-1))
    ```

    The sum is clamped below at 1e-12 so the gradient stays finite when
    ``y_pred == y_true``; values above 1e-6 are unchanged.

    Args:
        y_true: (B, 8) targets ``offsets / rho``.
        y_pred: (B, 8) predictions in the same units.

    Returns:
        (B,) distances.
    """
    y_true, y_pred = _cast_pair(y_true, y_pred)
    squared = ops.sum(ops.square(y_pred - y_true), axis=-1)
    return ops.sqrt(ops.maximum(squared, _TINY))


def _mace(y_true, y_pred, rho):
    """Mean average corner error in pixels, from normalized offsets.

    The mean over the 4 corners of the Euclidean distance between the predicted
    and true corner, after scaling the normalized offsets back by ``rho``.

    Formula:

    ```python
    d = reshape(y_pred - y_true, (-1, 4, 2)) * rho
    mace = mean(sqrt(sum(square(d), axis=-1)), axis=-1)
    ```

    Args:
        y_true: (B, 8) targets ``offsets / rho``.
        y_pred: (B, 8) predictions in the same units, or (B, K, 8) estimates of K
            refinement steps (the iterative model), of which the last is scored.
        rho: the normalization of the offsets.

    Returns:
        (B,) errors in pixels.
    """
    y_true, y_pred = _cast_pair(y_true, y_pred)
    if len(y_pred.shape) == 3:
        y_pred = y_pred[:, -1]
    difference = ops.reshape(y_pred - y_true, (-1, 4, 2)) * ops.cast(rho, y_pred.dtype)
    return ops.mean(ops.sqrt(ops.sum(ops.square(difference), axis=-1)), axis=-1)


def _mace_from_bins(y_true, y_pred, rho):
    """Mean average corner error in pixels, from per-coordinate bin distributions.

    Both distributions are decoded by their expectation over the bin centres
    ``c = linspace(-rho, rho, bins)``, so a one-hot ``y_true`` decodes to its bin
    centre (the quantized true offset).

    Formula:

    ```python
    offsets = sum(p * c, axis=-1)                # (B, 8), for p = y_true and y_pred
    mace = mean over corners of ||offsets_pred - offsets_true||
    ```

    Args:
        y_true: (B, 8, bins) one-hot (or soft) targets.
        y_pred: (B, 8, bins) predicted probabilities.
        rho: the offsets' range.

    Returns:
        (B,) errors in pixels.
    """
    y_true, y_pred = _cast_pair(y_true, y_pred)
    bins = ops.shape(y_pred)[-1]
    centres = ops.cast(ops.linspace(-rho, rho, bins), y_pred.dtype)
    difference = ops.sum((y_pred - y_true) * centres, axis=-1)
    difference = ops.reshape(difference, (-1, 4, 2))
    return ops.mean(ops.sqrt(ops.sum(ops.square(difference), axis=-1)), axis=-1)


@keras.saving.register_keras_serializable(package="hnet_keras")
def sequence_l1(y_true, y_pred, gamma=0.85):
    """The sequence loss of the iterative model: every step's L1 error, later steps weighted more.

    Formula (``K`` steps, ``k = 1..K``):

    ```python
    loss = sum_k gamma ** (K - k) * mean(abs(y_pred[:, k] - y_true), axis=-1)
    ```

    Args:
        y_true: (B, 8) targets ``offsets / rho``.
        y_pred: (B, K, 8) the estimates of the K steps, same units.
        gamma: the weight's decay towards the earlier steps.

    Returns:
        (B,) losses.
    """
    y_true, y_pred = _cast_pair(y_true, y_pred)
    steps = y_pred.shape[1]
    weights = ops.convert_to_tensor([gamma ** (steps - 1 - k) for k in range(steps)], dtype=y_pred.dtype)
    errors = ops.mean(ops.abs(y_pred - ops.expand_dims(y_true, 1)), axis=-1)  # (B, K)
    return ops.sum(errors * weights, axis=-1)


@keras.saving.register_keras_serializable(package="hnet_keras")
class MACE(keras.metrics.MeanMetricWrapper):
    """MACE in pixels as a stateful metric, with its ``rho`` in the saved config.

    ``rho`` varies between recipes (32 for the paper, smaller for CPU-sized runs),
    so it is a constructor argument rather than a closure: the metric is then
    rebuilt from its config when a ``.keras`` file is loaded in safe mode.

    Args:
        rho: the normalization of the offsets.
        from_bins: the model outputs bin distributions (classification).
        name: the metric's name in the logs (``mace``, so ``val_mace``).
    """

    def __init__(self, rho, from_bins=False, name="mace", dtype=None):
        super().__init__(fn=_mace_from_bins if from_bins else _mace, name=name, dtype=dtype, rho=rho)
        self.rho, self.from_bins = rho, bool(from_bins)
        self._direction = "down"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "rho": self.rho, "from_bins": self.from_bins}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

