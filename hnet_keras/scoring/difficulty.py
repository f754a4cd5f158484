"""Whole-image pairs of real difficulty, by class: what people's own two photos do.

Each class moves or changes image B as real pairs do, at :data:`LEVELS` levels of severity
(level 0 mildest), from one photo (image A). Convention (as in :mod:`hnet_keras.geometry`):
``H_ab`` maps a point of A to the point of B showing the same content, so
``B = cv2.warpPerspective(A, H_ab, size)``; parts of B that A does not cover are black, as in
real viewpoint changes.

* ``zoom_rotation``: a rotation about the centre of ``15 * level`` to ``15 * (level + 1)``
  degrees (either sign, so up to 60) and a zoom of up to ``2 ** ((level + 1) / 4)`` either way
  (up to 0.5-2x), plus a shift of up to 5 % of the size;
* ``viewpoint``: a camera turned by ``12.5 * level`` to ``12.5 * (level + 1)`` degrees about an
  axis in the image plane (up to 50; focal length the image's long side), up to 10 degrees of
  rotation and 5 % of shift;
* ``blur``: every corner moved by up to 10 % of the size, then B blurred (Gaussian, sigma
  ``level + 1`` px: 1-4);
* ``illumination``: that motion, then an illumination gradient of strength ``0.2 * (level + 1)``,
  a gamma of ``1.25 ** (level + 1)`` (either way) and a brightness shift of up to
  ``10 * (level + 1)`` gray levels;
* ``jpeg``: that motion, then B JPEG-compressed at quality 40, 25, 15 or 8;
* ``no_motion``: ``H_ab`` is the identity; B is A after a JPEG round trip at quality 80, 60, 40
  or 20 and sensor noise of sigma ``level + 1``.

Every draw comes from the ``numpy`` generator passed in. numpy and OpenCV only.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..data import photometric
from ..data.images import read_grayscale
from ..data.motion import camera_tilt, similarity
from .real_pairs import random_corner_homography, write_ppm

__all__ = ["CLASSES", "LEVELS", "CLASS_IMAGE_SIZE", "class_homography", "class_pair", "read_photo", "class_images",
           "write_class_pairs"]

CLASSES = ("zoom_rotation", "viewpoint", "blur", "illumination", "jpeg", "no_motion")
LEVELS = 4
CLASS_IMAGE_SIZE = (640, 480)
"""``(width, height)`` of the whole-image benchmark's images A."""
_JPEG_QUALITY = (40, 25, 15, 8)
_NO_MOTION_QUALITY = (80, 60, 40, 20)


def _about_centre(size, linear, shift=(0.0, 0.0)):
    """``T(c + shift) @ linear @ T(-c)`` for the centre ``c`` of a ``(width, height)`` image."""
    cx, cy = size[0] / 2.0, size[1] / 2.0
    to_centre = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx + shift[0]], [0.0, 1.0, cy + shift[1]], [0.0, 0.0, 1.0]])
    return back @ linear @ to_centre


def class_homography(kind, level, size, rng):
    """The ``H_ab`` of a pair of class ``kind`` at ``level``, for an image of ``size = (width, height)``."""
    if kind not in CLASSES:
        raise ValueError(f"kind must be one of {', '.join(CLASSES)}, got {kind!r}")
    if not 0 <= level < LEVELS:
        raise ValueError(f"level must be in 0..{LEVELS - 1}, got {level}")
    size = np.asarray(size, np.float64)
    u = rng.random(6)
    shift = (2 * u[4:6] - 1) * 0.05 * size
    if kind == "zoom_rotation":
        angle = math.radians((15 * level + 15 * u[0]) * (1 if u[1] < 0.5 else -1))
        scale = 2.0 ** ((2 * u[2] - 1) * (level + 1) / LEVELS)
        return _about_centre(size, similarity(angle, scale), shift)
    if kind == "viewpoint":
        tilt = camera_tilt(math.radians(12.5 * level + 12.5 * u[0]), 2 * math.pi * u[1], float(size.max()))
        return _about_centre(size, similarity(math.radians((2 * u[2] - 1) * 10), 1.0) @ tilt, shift)
    if kind == "no_motion":
        return np.eye(3)
    return random_corner_homography(size, rng, 0.10)


def _change(kind, level, image, rng):
    """Image B's photometric change of class ``kind`` (float gray levels in, uint8 out)."""
    x = image.astype(np.float32)
    if kind == "blur":
        x = photometric.blur(x, float(level + 1))
    elif kind == "illumination":
        draws = rng.random(3)
        x = photometric.shade(x, 0.2 * (level + 1), 2 * math.pi * draws[0])
        x = photometric.apply_gamma(x, np.float32(1.25 ** ((level + 1) * (1 if draws[1] < 0.5 else -1))))
        x = photometric.brighten(x, np.float32((2 * draws[2] - 1) * 10 * (level + 1)))
    elif kind == "jpeg":
        x = photometric.compress_jpeg(x, _JPEG_QUALITY[level])
    elif kind == "no_motion":
        x = photometric.compress_jpeg(x, _NO_MOTION_QUALITY[level])
        x = photometric.add_noise(x, rng.standard_normal(x.shape, dtype=np.float32), np.float32(level + 1))
    return photometric.to_uint8(x)


def class_pair(image, kind, level, rng):
    """Image B and ``H_ab`` of a pair of class ``kind`` at ``level`` from image A.

    Args:
        image: (H, W) uint8 grayscale image A.
        kind: one of :data:`CLASSES`.
        level: ``0 .. LEVELS - 1``.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(image_b, h_ab)``: (H, W) uint8 and (3, 3) float64 with ``h_ab[2, 2] == 1``.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image must be a 2-D uint8 grayscale image, got {image.dtype} {image.shape}")
    height, width = image.shape
    h_ab = class_homography(kind, level, (width, height), rng)
    h_ab = h_ab / h_ab[2, 2]
    moved = cv2.warpPerspective(image, h_ab, (width, height), flags=cv2.INTER_LINEAR)
    return _change(kind, level, moved, rng), h_ab


def read_photo(path, size):
    """A photo as a (H, W) uint8 gray image of ``size = (width, height)`` (area averaging when it
    shrinks, linear when it grows), or ``None`` when it cannot be read."""
    gray, _ = read_grayscale(path, warn=False)
    if gray is None:
        return None
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if gray.shape[1] > size[0] else cv2.INTER_LINEAR)


def class_images(photos, count, size=CLASS_IMAGE_SIZE):
    """Images A of the classes as ``benchmarks/bench_whole_images.py`` draws them: the first
    ``count`` of ``photos`` by :func:`read_photo`, an unreadable one skipped.

    Returns:
        ``(paths, images)``: the photos used and their images, in order.
    """
    read = [(path, read_photo(path, size)) for path in photos[:count]]
    return [path for path, image in read if image is not None], [image for _, image in read if image is not None]


def write_class_pairs(folder, photos, kind, count, seed=0, size=(640, 480)):
    """``count`` pairs of class ``kind`` in the HPatches layout, one sequence folder each.

    Pair ``i`` is photo ``i % len(photos)`` (grayscale arrays, resized to ``size``) at level
    ``i % LEVELS``, drawn from ``(seed, class index, i)``: the same pairs whatever else is drawn.

    Returns:
        the sequence folders, in order.
    """
    folder = Path(folder)
    folders = []
    for index in range(count):
        photo = photos[index % len(photos)]
        image = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if photo.shape[1] > size[0] else cv2.INTER_LINEAR)
        rng = np.random.default_rng([seed, CLASSES.index(kind), index])
        image_b, h_ab = class_pair(image, kind, index % LEVELS, rng)
        sequence = folder / f"{kind}_{index:04d}"
        sequence.mkdir(parents=True, exist_ok=True)
        write_ppm(sequence / "1.ppm", image)
        write_ppm(sequence / "2.ppm", image_b)
        np.savetxt(sequence / "H_1_2", h_ab)
        folders.append(sequence)
    return folders
