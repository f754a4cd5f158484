"""What the networks output and learn from, in numpy (no Keras): model kinds and their
options, outputs to pixel offsets, and the classification bins.

Regression outputs are ``offsets / rho``; classification outputs are, per coordinate, a
probability over ``bins`` offset values (the centres ``linspace(-rho, rho, bins)``); the
iterative model outputs the estimate of each of its steps, (B, K, 8) in units of ``rho``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MODEL_KINDS",
    "model_options",
    "outputs_to_offsets",
    "bin_centres",
    "offsets_to_bins",
    "decode_bins",
    "corner_confidence",
    "unreachable_bins",
]

MODEL_KINDS = ("regression", "classification", "mobilenet", "iterative")


def model_options(kind, input_size=128, width=1.0, dropout=True, batchnorm=True, bins=21, rho=32, refinements=6,
                  weights=None, standardize=False, **_):
    """The :func:`build_model` options of a recipe (a :class:`hnet_keras.training.run.Preset`'s fields)."""
    if kind == "iterative":
        return {"input_size": input_size, "rho": rho, "iterations": refinements}
    options = {"input_size": input_size, "width": width, "dropout": dropout}
    if kind == "mobilenet" and weights is not None:
        options["weights"] = weights
    if kind != "mobilenet":
        options["batchnorm"] = batchnorm
        if standardize:
            options["standardize"] = True
    if kind == "classification":
        options["bins"] = bins
    return options


def outputs_to_offsets(outputs, rho, decode="expectation"):
    """A model's outputs as (B, 8) pixel offsets (in pixels of its input).

    (B, 8) regression outputs are ``offsets / rho``; (B, 8, bins) classification
    outputs are decoded by ``decode`` (:func:`decode_bins`); (B, K, 8) outputs of K
    refinement steps give the last one.
    """
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim == 3 and outputs.shape[1] == 8 and outputs.shape[2] != 8:
        return decode_bins(outputs, rho, decode)
    return (outputs[:, -1] if outputs.ndim == 3 else outputs) * rho


# Classification helpers, in numpy: they prepare targets and read predictions.


def bin_centres(rho, bins=21):
    """The offset each bin stands for: ``linspace(-rho, rho, bins)`` (0 is a centre for odd ``bins``)."""
    return np.linspace(-rho, rho, bins)


def offsets_to_bins(offsets, rho, bins=21, one_hot=True):
    """Quantize pixel offsets to the nearest of ``bins`` centres spanning ``[-rho, rho]``.

    Args:
        offsets: (..., 8) offsets in pixels; values beyond ``rho`` go to the end bins.
        one_hot: return float32 one-hot (..., 8, bins) (the classification target);
            ``False`` returns int64 bin indices (..., 8).
    """
    offsets = np.asarray(offsets, np.float64)
    step = 2.0 * rho / (bins - 1)
    indices = np.clip(np.rint((offsets + rho) / step), 0, bins - 1).astype(np.int64)
    if not one_hot:
        return indices
    return np.eye(bins, dtype=np.float32)[indices]


def unreachable_bins(rho, bins=21, scale=1.0):
    """Bins that no training target falls in, when offsets are whole pixels.

    Archives and synthesis draw integer offsets in ``[-R, R]`` (``R = rho / scale``)
    which become targets ``offsets * scale``: with bins narrower than a target step,
    some bins are never a target (rho 8 with 21 bins leaves 4 of them), so the model
    learns to never predict them. Returns their indices.
    """
    reach = int(round(rho / scale))
    targets = offsets_to_bins(np.arange(-reach, reach + 1) * scale, rho, bins, one_hot=False)
    return sorted(set(range(bins)) - set(targets.tolist()))


def decode_bins(probabilities, rho, method="expectation"):
    """Pixel offsets (..., 8) from per-coordinate bin probabilities (..., 8, bins).

    ``"expectation"`` is the probability-weighted mean of the bin centres (sub-bin
    precision, the default); ``"argmax"`` is the centre of the most likely bin.
    """
    probabilities = np.asarray(probabilities, np.float64)
    centres = bin_centres(rho, probabilities.shape[-1])
    if method == "expectation":
        return probabilities @ centres
    if method == "argmax":
        return centres[np.argmax(probabilities, axis=-1)]
    raise ValueError(f"method must be 'expectation' or 'argmax', got {method!r}")


def corner_confidence(probabilities):
    """Confidence of each corner: the product of the max-probabilities of its x and y.

    It is the probability the model gives to its own most likely (x, y) bin pair for
    the corner, treating the two coordinates as independent (as the softmax heads
    are). 1 means certain; ``1 / bins**2`` is a uniform guess.

    Args:
        probabilities: (..., 8, bins) per-coordinate probabilities.

    Returns:
        (..., 4) confidences in the TL, TR, BR, BL order.
    """
    peaks = np.max(np.asarray(probabilities, np.float64), axis=-1)
    peaks = peaks.reshape(peaks.shape[:-1] + (4, 2))
    return peaks[..., 0] * peaks[..., 1]
