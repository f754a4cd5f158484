"""Robustness to photometric change: the same test pairs with patch B degraded, level by level.

Only patch B changes; the geometry (and so the true offsets) stays the same, so any
rise in the error is due to the photometric change. :data:`PERTURBATIONS` names the
changes and their levels; the neutral level (no change) is in every list so each curve
starts from the clean pairs:

* ``noise``: additive Gaussian noise, sigma in gray levels.
* ``brightness``: an added constant, in gray levels.
* ``contrast``: ``127.5 + factor * (x - 127.5)``.
* ``gamma``: ``255 * (x / 255) ** gamma``.
* ``blur``: Gaussian blur, sigma in pixels.

Every result is clipped and rounded back to uint8. Noise is the only random change;
it is drawn from ``numpy.random.default_rng([seed, crc32(kind), level index])``, so a
seed gives the same degraded pairs whatever perturbations are swept alongside.
"""

from __future__ import annotations

import zlib

import numpy as np
from tqdm.auto import tqdm

from ..data import photometric
from ..estimators.methods import resolve_methods
from .evaluation import evaluate, format_table

__all__ = [
    "PERTURBATIONS",
    "UNITS",
    "perturb",
    "perturb_pairs",
    "robustness_sweep",
    "format_robustness",
]

PERTURBATIONS = {
    "noise": (0, 5, 10, 20, 40),
    "brightness": (-60, -40, 0, 40, 60),
    "contrast": (0.25, 0.5, 1.0, 1.5, 2.0),
    "gamma": (0.5, 0.7, 1.0, 1.4, 2.0),
    "blur": (0, 1, 2, 3, 4),
}
"""Named photometric changes of patch B and their levels (each list holds the neutral level)."""

UNITS = {
    "noise": "sigma (gray levels)",
    "brightness": "offset (gray levels)",
    "contrast": "factor",
    "gamma": "gamma",
    "blur": "sigma (px)",
}


def perturb(patch, kind, level, rng=None):
    """One photometric change of a uint8 patch (or a stack of patches); returns uint8.

    Args:
        patch: uint8 array, (H, W) or a stack (..., H, W); the blur acts on each
            (H, W) image, the other changes per pixel.
        kind: a key of :data:`PERTURBATIONS`.
        level: the change's level (see the module docstring for the units).
        rng: a ``numpy.random.Generator``, needed by ``noise`` with ``level > 0``.
    """
    patch = np.asarray(patch)
    if patch.dtype != np.uint8:
        raise ValueError(f"perturb expects uint8 patches, got {patch.dtype}")
    x = patch.astype(np.float64)
    if kind == "noise":
        if level < 0:
            raise ValueError(f"noise sigma must be >= 0, got {level}")
        if level == 0:
            return patch.copy()
        if rng is None:
            raise ValueError("noise needs a seeded rng")
        x = photometric.add_noise(x, rng.normal(0.0, 1.0, size=x.shape), float(level))
    elif kind == "brightness":
        x = photometric.brighten(x, float(level))
    elif kind == "contrast":
        x = photometric.scale_contrast(x, float(level))
    elif kind == "gamma":
        if level <= 0:
            raise ValueError(f"gamma must be > 0, got {level}")
        x = photometric.apply_gamma(x, float(level))
    elif kind == "blur":
        if level < 0:
            raise ValueError(f"blur sigma must be >= 0, got {level}")
        if level == 0:
            return patch.copy()
        images = patch.reshape((-1,) + patch.shape[-2:])
        return np.stack([photometric.blur(image, float(level)) for image in images]).reshape(patch.shape)
    else:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {sorted(PERTURBATIONS)}")
    return photometric.to_uint8(x)


def _rng(seed, kind, index):
    return np.random.default_rng([int(seed), zlib.crc32(kind.encode()), int(index)])


def perturb_pairs(pairs, kind, level, seed=0, index=0):
    """A copy of (N, P, P, 2) pairs with patch B (channel 1) changed; patch A is untouched."""
    pairs = np.asarray(pairs)
    changed = pairs.copy()
    changed[..., 1] = perturb(pairs[..., 1], kind, level, _rng(seed, kind, index))
    return changed


def robustness_sweep(
    pairs,
    offsets,
    methods=None,
    perturbations=None,
    seed=0,
    model=None,
    network_rho=None,
    batch_size=64,
    progress=True,
):
    """MACE per method per perturbation level on the same pairs.

    Args:
        pairs, offsets: the clean test pairs (N, P, P, 2) uint8 and their (N, 8) offsets.
        methods: as in :func:`hnet_keras.scoring.evaluation.evaluate` (default: every available
            baseline, plus ``network`` and ``network+ecc`` when ``model`` is given).
        perturbations: dict kind -> levels (default :data:`PERTURBATIONS`).
        seed: seed of the noise.
        model: a Keras model (or checkpoint path) for ``network``.
        network_rho: the network's training rho (a checkpoint path brings its own).

    Returns:
        a JSON-able dict: ``seed``, ``pairs``, ``methods``, ``labels`` and
        ``perturbations``: kind -> ``{"levels", "unit", "mace": {method: [...]},
        "standard_error": {method: [...]} (of each MACE, over the pairs), "failure_rate": {method: [...]}}``.
    """
    perturbations = dict(PERTURBATIONS if perturbations is None else perturbations)
    for kind in perturbations:
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; choose from {sorted(PERTURBATIONS)}")
    resolved = resolve_methods(methods, model, network_rho, batch_size)
    report = {
        "seed": seed,
        "pairs": int(len(pairs)),
        "methods": [m.name for m in resolved],
        "labels": {m.name: m.description for m in resolved},
        "perturbations": {},
    }
    total = sum(len(levels) for levels in perturbations.values())
    with tqdm(total=total, desc="robustness", unit="level", disable=not progress) as bar:
        for kind, levels in perturbations.items():
            entry = {
                "levels": [float(level) for level in levels],
                "unit": UNITS[kind],
                "mace": {m.name: [] for m in resolved},
                "standard_error": {m.name: [] for m in resolved},
                "failure_rate": {m.name: [] for m in resolved},
            }
            for index, level in enumerate(levels):
                changed = perturb_pairs(pairs, kind, level, seed, index)
                result = evaluate(changed, offsets, resolved, protocol=None, seed=seed, progress=False)
                for name, figures in result.summary().items():
                    entry["mace"][name].append(figures["mace"])
                    entry["standard_error"][name].append(figures["standard_error"])
                    entry["failure_rate"][name].append(figures["failure_rate"])
                bar.update(1)
            report["perturbations"][kind] = entry
    return report


def format_robustness(report, metric="mace"):
    """A text table per perturbation: one row per method, one column per level (a MACE with its
    standard error over the pairs, ``v±se``, when the report has them)."""
    tables = []
    for kind, entry in report["perturbations"].items():
        errors = entry.get("standard_error", {}) if metric == "mace" else {}
        rows = [(report.get("labels", {}).get(name, name),
                 [f"{v:.2f}±{e:.2f}" for v, e in zip(values, errors[name])] if name in errors
                 else [f"{v:.2f}" for v in values])
                for name, values in entry[metric].items()]
        tables.append(format_table(f"{kind} ({entry['unit']})", [f"{level:g}" for level in entry["levels"]], rows,
                                   label_width=34, cell_width=13 if errors else 9))
    return "\n\n".join(tables) + "\n"
