"""Homographic adaptation: a detector's pseudo ground truth on photos, from many warped views.

For an image and ``N`` random homographies ``H_k`` (the reference sampler,
:data:`~hnet_keras.features.homographies.ADAPTATION_HOMOGRAPHY`), the detector's probability
map of each warped view ``warp(image, H_k)`` is warped back with ``H_k^-1`` and averaged
where the view saw the image (its valid mask, warped back and eroded so the view's border
responses do not count)::

    P(x) = sum_k m_k(x) p_k(H_k x) / sum_k m_k(x),     with H_0 = I and m_0 = 1 (the image itself).

Corners that are stable across viewpoints survive the average; the pseudo labels are its
local maxima above a threshold (:func:`hnet_keras.features.superpoint.nms`). Running it again
with a detector retrained on those labels is another round. numpy/OpenCV around the model's
forward passes; seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data.images import list_images, read_grayscale, split_images
from .homographies import ADAPTATION_HOMOGRAPHY, sample_homographies, valid_mask, warp_image
from .superpoint import nms, prepare_photo, probability_maps, write_labels

__all__ = ["adapted_probability", "adapt_image", "adapt_photos", "select_photos", "ADAPTATION_THRESHOLD"]

ADAPTATION_THRESHOLD = 0.015
"""Threshold of the averaged map's maxima (the reference's detection threshold)."""


def adapted_probability(model, image, homographies=64, seed=0, config=ADAPTATION_HOMOGRAPHY, erosion=3,
                        batch_size=16):
    """The averaged corner probability (H, W) of a gray image over random warped views.

    Args:
        model: a MagicPoint / SuperPoint network.
        image: (H, W) uint8, sides multiples of 8.
        homographies: ``N``, warped views besides the image itself; or an (N, 3, 3) array of ``H_ab``.
        seed: seed of the homographies.
        config: a :class:`~hnet_keras.features.homographies.HomographyConfig`.
        erosion: pixels of each view's border left out of the average.

    Returns:
        ``(probability (H, W) float32, counts (H, W) float32)``: the average and how many views saw each pixel.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8 or image.shape[0] % 8 or image.shape[1] % 8:
        raise ValueError(f"image must be (H, W) uint8 with sides multiples of 8, got {image.dtype} {image.shape}")
    size = (image.shape[1], image.shape[0])
    hs = np.asarray(homographies) if np.ndim(homographies) == 3 else sample_homographies(int(homographies), size,
                                                                                         seed, config)
    hs = np.concatenate([np.eye(3)[None], hs])
    views = np.stack([warp_image(image, h) for h in hs])
    maps = probability_maps(model, views, batch_size)
    total = np.zeros(image.shape, np.float32)
    counts = np.zeros(image.shape, np.float32)
    total += maps[0]  # the image itself counts everywhere
    counts += 1.0
    for h, probability in zip(hs[1:], maps[1:]):
        back = np.linalg.inv(h)
        # The view's pixels that show the image, eroded, seen from the image: A's pixels whose H x lands there.
        seen = valid_mask(size, h, erosion=erosion).astype(np.uint8)
        mask = warp_image(seen, back, interpolation=0).astype(np.float32)  # nearest
        total += warp_image(probability, back) * mask
        counts += mask
    return total / np.maximum(counts, 1.0), counts


def adapt_image(model, image, homographies=64, seed=0, config=ADAPTATION_HOMOGRAPHY, threshold=ADAPTATION_THRESHOLD,
                radius=4, top_k=300, border=4):
    """Pseudo labels of one gray image: ``(points (N, 2), scores (N,))`` of the adapted map (see the module doc)."""
    probability, _ = adapted_probability(model, image, homographies, seed, config)
    return nms(probability, radius, threshold, top_k, border)


def adapt_photos(model, paths, output, size=(160, 120), homographies=64, seed=0, config=ADAPTATION_HOMOGRAPHY,
                 threshold=ADAPTATION_THRESHOLD, top_k=300, progress=True):
    """Write pseudo ground truth for photos: each is read gray, scaled and centre-cropped to ``size``
    (:func:`~hnet_keras.features.superpoint.prepare_photo`), adapted with its own seed ``(seed, i)``
    and saved with :func:`~hnet_keras.features.superpoint.write_labels` (a ``.npz`` and a ``.json``
    of facts). Unreadable photos are skipped and counted.

    Returns:
        ``(images (N, H, W) uint8, labels [points (K_i, 2)], facts dict)``.
    """
    images, labels, skipped, names = [], [], [], []
    for i, path in enumerate(tqdm(list(paths), desc="homographic adaptation", unit="photo", disable=not progress)):
        photo, reason = read_grayscale(path, warn=False)
        if photo is None:
            skipped.append({"path": str(path), "reason": reason})
            continue
        image = prepare_photo(photo, size)
        points, _ = adapt_image(model, image, homographies, [seed, i], config, threshold, top_k=top_k)
        images.append(image)
        labels.append(points)
        names.append(Path(path).name)
    if not images:
        raise ValueError(f"none of the {len(skipped)} photos could be read" if skipped else "no photos given")
    facts = {"photos": len(images), "skipped": skipped, "size": list(size), "homographies": int(homographies),
             "seed": seed, "threshold": threshold, "top_k": top_k, "mean_points": float(np.mean([len(p) for p in labels])),
             "names": names}
    write_labels(output, np.stack(images), labels, facts)
    return np.stack(images), labels, facts


def select_photos(folder, limit=None, part="train", seed=0):
    """Up to ``limit`` photos of one part of a folder's fixed split (:func:`hnet_keras.data.images.split_images`:
    ``"train"``, ``"validation"`` or ``"test"``), a seeded random choice, sorted."""
    parts = split_images(list_images(folder))
    if part not in parts:
        raise ValueError(f"part must be one of {', '.join(parts)}, got {part!r}")
    paths = parts[part]
    if not paths:
        raise ValueError(f"{folder}: its {part} part is empty")
    if limit is not None and limit < len(paths):
        chosen = np.random.default_rng(seed).choice(len(paths), int(limit), replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    return paths
