"""Synthetic shapes with exact corner labels: MagicPoint's training data, drawn on the fly.

Each image is one primitive drawn with OpenCV at ``upscale`` times the output size on a
blurred random background, then area-downsampled (default 160x120), so edges are
anti-aliased and corners sub-pixel exact. The labels are the corners, ``(x, y)`` pixels of
the output image (pixel centres at integers: a high-resolution point ``X`` lands at
``(X + 0.5) / upscale - 0.5``):

* ``lines``: non-crossing segments, their end points;
* ``polygon``: one convex polygon (3 to 5 vertices), its vertices;
* ``multiple_polygons``: several non-overlapping polygons, their vertices;
* ``star``: rays from a centre, the centre and the ray ends;
* ``checkerboard``: a perspective-warped board, its grid points;
* ``stripes``: perspective-warped stripes, the ends of each stripe edge;
* ``cube``: a rotated cube's three visible faces, its seven visible vertices;
* ``ellipses`` and ``noise``: negatives, no corner.

:class:`ShapesDataset` (a ``keras.utils.PyDataset``) serves batches ``(images, targets)``
with the reference's photometric and homographic augmentation: images (B, H, W, 1) float32
in ``[0, 1]`` and targets (B, H/8, W/8, 2) float32 holding each 8x8 cell's class (0..63 the
position of its corner in the cell, row-major; 64 "no corner") and a valid flag (0 where the
homography left the cell outside the source image). Batch ``i`` of epoch ``e`` comes from
``(seed, e, i)``. numpy and OpenCV only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..data.augment import Augmentation, augment_patch
from ..data.loaders import SeededBatches
from .homographies import SHAPES_HOMOGRAPHY, HomographyConfig, sample_homography, valid_mask, warp_image, \
    warp_keypoints

__all__ = [
    "PRIMITIVES",
    "CELL",
    "ShapesConfig",
    "draw_shape",
    "augment_shape",
    "points_to_cells",
    "cells_to_points",
    "ShapesDataset",
]

PRIMITIVES = ("lines", "polygon", "multiple_polygons", "ellipses", "star", "checkerboard", "stripes", "cube", "noise")
CELL = 8
"""Side of a detector cell in pixels (the encoder's stride)."""

SHAPES_PHOTOMETRIC = Augmentation(probability=0.5, brightness=50.0, contrast=1.8, gamma=1.3, noise=10.0, blur=1.0)
"""Photometric augmentation of shapes (brightness, contrast, gamma, noise, blur; plus shade, see below)."""


@dataclass(frozen=True)
class ShapesConfig:
    """How synthetic shapes are drawn and augmented.

    Attributes:
        size: ``(width, height)`` of the output images, multiples of 8.
        upscale: drawing resolution factor (shapes are drawn at ``size * upscale``).
        primitives: the primitives drawn, each equally often.
        photometric: an :class:`~hnet_keras.data.augment.Augmentation`, or ``None``.
        shade: chance of an additive soft shadow (the reference's ``additive_shade``).
        homography: a :class:`~hnet_keras.features.homographies.HomographyConfig`, or ``None``.
        homography_probability: chance an image is warped.
        border: erosion (px) of the valid mask after a warp.
    """

    size: tuple = (160, 120)
    upscale: int = 4
    primitives: tuple = PRIMITIVES
    photometric: Augmentation | None = SHAPES_PHOTOMETRIC
    shade: float = 0.3
    homography: HomographyConfig | None = SHAPES_HOMOGRAPHY
    homography_probability: float = 0.8
    border: int = 2

    def __post_init__(self):
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "primitives", tuple(self.primitives))
        if len(self.size) != 2 or any(s < CELL or s % CELL for s in self.size):
            raise ValueError(f"size must be (width, height), multiples of {CELL}, got {self.size}")
        unknown = [p for p in self.primitives if p not in PRIMITIVES]
        if unknown or not self.primitives:
            raise ValueError(f"unknown primitive(s) {unknown}; choose from {', '.join(PRIMITIVES)}")
        if self.upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {self.upscale}")

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# --- drawing helpers (high-resolution canvas, uint8, points (x, y) float) ---------------------


def _background(rng, shape):
    """A blurred random background: thresholded noise, blobs, then a wide box blur."""
    height, width = shape
    image = (rng.random((height // 8, width // 8)) * 255).astype(np.uint8)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)
    image = np.where(image > rng.integers(0, 256), 255, 0).astype(np.uint8)
    mean = int(image.mean())
    for _ in range(rng.integers(20, 60)):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, int(rng.integers(2, max(3, width // 30))), _colour(rng, mean), -1)
    kernel = int(rng.integers(width // 20, width // 4)) | 1
    return cv2.blur(image, (kernel, kernel))


def _colour(rng, *avoid):
    """A gray level at least 30 away from each of ``avoid`` (given up on after 100 draws)."""
    for _ in range(100):
        value = int(rng.integers(0, 256))
        if all(abs(value - other) >= 30 for other in avoid):
            break
    return value


def _region_mean(image, points):
    """Mean gray level of the image in the bounding box of ``points``."""
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, None)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
    region = image[y0:y1, x0:x1]
    return int(region.mean()) if region.size else int(image.mean())


def _contrast_colour(rng, image, points):
    """A gray level far from the background under ``points``."""
    return _colour(rng, _region_mean(image, points))


def _segments_cross(p, q, r, s):
    """Whether segments p-q and r-s intersect (strictly or touching)."""
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return orient(p, q, r) != orient(p, q, s) and orient(r, s, p) != orient(r, s, q)


def _thickness(rng, width):
    return int(rng.integers(max(1, width // 200), max(2, width // 60)))


def _random_convex_polygon(rng, width, height, radius_range, sides=None):
    """Vertices (K, 2) of a convex polygon with no flat angle and no short side, or None."""
    sides = sides or int(rng.integers(3, 6))
    radius = rng.uniform(*radius_range)
    centre = rng.uniform([radius, radius], [width - radius, height - radius])
    angles = np.sort(rng.uniform(0, 2 * math.pi, sides))
    vertices = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    edges = np.roll(vertices, -1, axis=0) - vertices
    if np.min(np.linalg.norm(edges, axis=1)) < radius * 0.4:
        return None
    # interior angle at each vertex: reject nearly flat ones (not a corner a detector should find)
    incoming, outgoing = -np.roll(edges, 1, axis=0), edges
    cosines = np.sum(incoming * outgoing, axis=1) / (np.linalg.norm(incoming, axis=1) * np.linalg.norm(outgoing, axis=1))
    if np.any(np.degrees(np.arccos(np.clip(cosines, -1, 1))) > 160):
        return None
    return vertices


def _draw_lines(rng, image):
    height, width = image.shape
    segments = []
    for _ in range(int(rng.integers(1, 6)) * 4):
        if len(segments) >= 5:
            break
        p, q = rng.uniform([0, 0], [width, height], (2, 2))
        if np.linalg.norm(p - q) < width / 8 or any(_segments_cross(p, q, r, s) for r, s in segments):
            continue
        segments.append((p, q))
        cv2.line(image, _int(p), _int(q), _contrast_colour(rng, image, np.stack([p, q])), _thickness(rng, width),
                 cv2.LINE_AA)
    return np.array([point for segment in segments for point in segment]).reshape(-1, 2)


def _int(point):
    return int(round(point[0])), int(round(point[1]))


def _draw_polygons(rng, image, count):
    height, width = image.shape
    occupied = np.zeros_like(image)
    points = []
    for _ in range(count * 10):
        if len(points) >= count:
            break
        radius = (width / 16, width / 5) if count > 1 else (width / 8, width / 3)
        vertices = _random_convex_polygon(rng, width, height, radius)
        if vertices is None:
            continue
        mask = np.zeros_like(image)
        cv2.fillPoly(mask, [np.round(vertices).astype(np.int32)], 1)
        if np.any(mask & occupied):
            continue
        occupied |= cv2.dilate(mask, np.ones((9, 9), np.uint8))
        cv2.fillPoly(image, [np.round(vertices).astype(np.int32)], _contrast_colour(rng, image, vertices), cv2.LINE_AA)
        points.append(vertices)
    return np.concatenate(points) if points else np.zeros((0, 2))


def _draw_ellipses(rng, image):
    height, width = image.shape
    occupied = np.zeros_like(image)
    for _ in range(int(rng.integers(1, 6))):
        axes = rng.uniform(width / 30, width / 6, 2)
        centre = rng.uniform(axes.max(), [width - axes.max(), height - axes.max()])
        mask = np.zeros_like(image)
        args = (_int(centre), _int(axes), float(rng.uniform(0, 180)), 0, 360)
        cv2.ellipse(mask, *args, 1, -1)
        if np.any(mask & occupied):
            continue
        occupied |= mask
        cv2.ellipse(image, *args, _contrast_colour(rng, image, np.stack([centre - axes, centre + axes])), -1,
                    cv2.LINE_AA)
    return np.zeros((0, 2))


def _draw_star(rng, image):
    height, width = image.shape
    rays = int(rng.integers(3, 6))
    radius = rng.uniform(width / 8, width / 3)
    centre = rng.uniform([radius, radius], [width - radius, height - radius])
    # well separated ray directions (no two closer than 40 degrees) so every end is a corner
    for _ in range(50):
        angles = np.sort(rng.uniform(0, 2 * math.pi, rays))
        gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * math.pi]))
        if gaps.min() > math.radians(40):
            break
    lengths = rng.uniform(0.5, 1.0, rays) * radius
    ends = centre + lengths[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    colour = _contrast_colour(rng, image, np.concatenate([ends, centre[None]]))
    thickness = _thickness(rng, width)
    for end in ends:
        cv2.line(image, _int(centre), _int(end), colour, thickness, cv2.LINE_AA)
    return np.concatenate([centre[None], ends])


def _warped_board(rng, width, height, edges_x, edges_y):
    """A random perspective ``H`` placing a board with grid lines at ``edges_x``/``edges_y`` over the canvas."""
    board = np.array([[edges_x[0], edges_y[0]], [edges_x[-1], edges_y[0]], [edges_x[-1], edges_y[-1]],
                      [edges_x[0], edges_y[-1]]], np.float32)
    jitter = rng.uniform(-0.2, 0.2, (4, 2)) * (width, height)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32) + jitter
    centre = target.mean(axis=0)
    angle = rng.uniform(-math.pi / 4, math.pi / 4)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    scale = rng.uniform(0.5, 1.1)
    target = (target - centre) @ rotation.T * scale + centre
    return cv2.getPerspectiveTransform(board, target.astype(np.float32))


def _fill_warped(image, h, corners, colour):
    warped = cv2.perspectiveTransform(np.asarray(corners, np.float64)[None], h)[0]
    cv2.fillConvexPoly(image, np.round(warped * 16).astype(np.int32), colour, cv2.LINE_AA, 4)


def _draw_checkerboard(rng, image):
    height, width = image.shape
    columns, rows = int(rng.integers(3, 8)), int(rng.integers(3, 8))
    edges_x = np.concatenate([[0], np.cumsum(rng.uniform(0.6, 1.4, columns))])
    edges_y = np.concatenate([[0], np.cumsum(rng.uniform(0.6, 1.4, rows))])
    h = _warped_board(rng, width, height, edges_x, edges_y)
    grid = np.stack(np.meshgrid(edges_x, edges_y), axis=-1).reshape(-1, 2)
    points = cv2.perspectiveTransform(grid[None].astype(np.float64), h)[0]
    background = _region_mean(image, np.clip(points, 0, [width - 1, height - 1]))
    colours = [_colour(rng, background)]
    colours.append(_colour(rng, background, colours[0], colours[0] + 10, colours[0] - 10))  # >= 40 apart
    for i in range(rows):
        for j in range(columns):
            cell = [[edges_x[j], edges_y[i]], [edges_x[j + 1], edges_y[i]], [edges_x[j + 1], edges_y[i + 1]],
                    [edges_x[j], edges_y[i + 1]]]
            _fill_warped(image, h, cell, colours[(i + j) % 2])
    return points


def _draw_stripes(rng, image):
    height, width = image.shape
    count = int(rng.integers(3, 9))
    edges_x = np.concatenate([[0], np.cumsum(rng.uniform(0.4, 1.6, count))])
    edges_y = np.array([0.0, edges_x[-1] * rng.uniform(0.5, 1.0)])
    h = _warped_board(rng, width, height, edges_x, edges_y)
    previous = int(image.mean())
    for j in range(count):
        colour = _colour(rng, previous, int(image.mean()))
        _fill_warped(image, h, [[edges_x[j], 0], [edges_x[j + 1], 0], [edges_x[j + 1], edges_y[1]],
                                [edges_x[j], edges_y[1]]], colour)
        previous = colour
    ends = np.stack(np.meshgrid(edges_x, edges_y), axis=-1).reshape(-1, 2)
    return cv2.perspectiveTransform(ends[None].astype(np.float64), h)[0]


def _draw_cube(rng, image):
    height, width = image.shape
    size = rng.uniform(0.5, 1.5, 3)
    cube = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float64) * size
    cube -= cube.mean(axis=0)
    angles = rng.uniform([math.pi / 8, math.pi / 8, 0], [3 * math.pi / 8, 3 * math.pi / 8, 2 * math.pi])
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        r = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rotation = r @ rotation
    rotated = cube @ rotation.T
    scale = rng.uniform(0.2, 0.4) * min(width, height) / np.abs(rotated[:, :2]).max()
    projected = rotated[:, :2] * scale + rng.uniform([0.3 * width, 0.3 * height], [0.7 * width, 0.7 * height])
    faces = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
    visible = []
    for face in faces:
        normal = np.cross(rotated[face[1]] - rotated[face[0]], rotated[face[3]] - rotated[face[0]])
        outward = rotated[face].mean(axis=0)
        if np.dot(normal, outward) < 0:
            normal = -normal
        if normal[2] < -1e-6 * np.linalg.norm(normal):  # faces the viewer (looking along +z)
            visible.append(face)
    used = [_region_mean(image, projected)]
    for face in visible:
        used.append(_colour(rng, *used))  # far from the background and from the other faces
        cv2.fillConvexPoly(image, np.round(projected[face] * 16).astype(np.int32), used[-1], cv2.LINE_AA, 4)
    corners = sorted({vertex for face in visible for vertex in face})
    return projected[corners]


def _draw_noise(rng, image):
    noise = (rng.random(image.shape) * 255).astype(np.uint8)
    image[:] = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 2.0) * image.shape[1] / 160)
    return np.zeros((0, 2))


_DRAW = {
    "lines": _draw_lines,
    "polygon": lambda rng, image: _draw_polygons(rng, image, 1),
    "multiple_polygons": lambda rng, image: _draw_polygons(rng, image, int(rng.integers(2, 5))),
    "ellipses": _draw_ellipses,
    "star": _draw_star,
    "checkerboard": _draw_checkerboard,
    "stripes": _draw_stripes,
    "cube": _draw_cube,
    "noise": _draw_noise,
}


def draw_shape(rng, config=ShapesConfig(), primitive=None):
    """One synthetic image and its corners, before augmentation.

    Args:
        rng: a ``numpy.random.Generator`` (or an int seed).
        config: a :class:`ShapesConfig` (its size and upscale).
        primitive: a name in :data:`PRIMITIVES`; default one of ``config.primitives`` at random.

    Returns:
        ``(image (H, W) uint8, points (N, 2) float64)``: the corners inside the image, ``(x, y)``
        pixels of the output resolution.
    """
    rng = np.random.default_rng(rng)
    primitive = primitive or config.primitives[int(rng.integers(len(config.primitives)))]
    if primitive not in _DRAW:
        raise ValueError(f"unknown primitive {primitive!r}; choose from {', '.join(PRIMITIVES)}")
    width, height = config.size
    up = config.upscale
    canvas = _background(rng, (height * up, width * up))
    points = np.asarray(_DRAW[primitive](rng, canvas), np.float64).reshape(-1, 2)
    image = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA) if up > 1 else canvas
    points = (points + 0.5) / up - 0.5
    keep = (points[:, 0] >= 0) & (points[:, 0] <= width - 1) & (points[:, 1] >= 0) & (points[:, 1] <= height - 1)
    return image, points[keep]


def _shade(rng, image):
    """Add a soft random shadow or highlight (an ellipse, heavily blurred), as the reference does."""
    height, width = image.shape
    mask = np.zeros((height, width), np.float32)
    centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    axes = (int(rng.integers(width // 8, width // 2)), int(rng.integers(height // 8, height // 2)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    kernel = int(rng.integers(width // 6, width // 3)) | 1
    mask = cv2.GaussianBlur(mask, (kernel, kernel), 0)
    transparency = rng.uniform(-0.5, 0.8)
    return np.clip(image * (1 - transparency * mask), 0, 255).astype(np.uint8)


def augment_shape(image, points, rng, config=ShapesConfig()):
    """Photometric and homographic augmentation of one shape image.

    Returns:
        ``(image (H, W) uint8, points (N, 2), valid (H, W) bool)``; ``valid`` is False where
        the warp brought in pixels from outside the source (eroded by ``config.border``).
    """
    size = (image.shape[1], image.shape[0])
    valid = np.ones(image.shape, bool)
    warp = rng.random() < config.homography_probability
    if config.homography is not None and warp:
        h = sample_homography(size, rng, config.homography)
        image = warp_image(image, h)
        points, _ = warp_keypoints(points, h, size)
        valid = valid_mask(size, h, erosion=config.border)
    if config.photometric is not None:
        image = augment_patch(image, rng, config.photometric)
    if rng.random() < config.shade:
        image = _shade(rng, image)
    return image, points, valid


def points_to_cells(points, size, rng=None):
    """(H/8, W/8) int32 cell classes of points (N, 2) in an image of ``size = (width, height)``.

    A point at pixel ``(round(x), round(y))`` sets its cell's class to ``(y % 8) * 8 + x % 8``;
    cells with no point are 64; a cell with several keeps one (random with ``rng``, else the first).
    """
    width, height = size
    cells = np.full((height // CELL, width // CELL), CELL * CELL, np.int32)
    pixels = np.round(np.asarray(points, np.float64).reshape(-1, 2)).astype(np.int64)
    pixels = pixels[(pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)]
    order = rng.permutation(len(pixels)) if rng is not None else np.arange(len(pixels))[::-1]
    for x, y in pixels[order]:
        cells[y // CELL, x // CELL] = (y % CELL) * CELL + x % CELL
    return cells


def cells_to_points(cells):
    """Points (N, 2) float64 ``(x, y)`` of a (H/8, W/8) cell-class map (the inverse of :func:`points_to_cells`)."""
    rows, columns = np.nonzero(cells < CELL * CELL)
    classes = cells[rows, columns]
    return np.stack([columns * CELL + classes % CELL, rows * CELL + classes // CELL], axis=1).astype(np.float64)


def cell_validity(valid):
    """(H/8, W/8) float32: 1 for a cell whose pixels are all valid."""
    height, width = valid.shape
    blocks = valid.reshape(height // CELL, CELL, width // CELL, CELL)
    return blocks.all(axis=(1, 3)).astype(np.float32)


def shape_targets(points, valid, size, rng=None):
    """(H/8, W/8, 2) float32 targets: cell class and cell validity."""
    return np.stack([points_to_cells(points, size, rng).astype(np.float32), cell_validity(valid)], axis=-1)


class ShapesDataset(SeededBatches):
    """Batches of augmented synthetic shapes with their cell targets (see the module doc).

    Args:
        batch_size: images per batch.
        batches_per_epoch: the epoch's length.
        config: a :class:`ShapesConfig`.
        seed: the seed; batch ``i`` of epoch ``e`` is drawn from ``(seed, e, i)``.
        fixed: the same images every epoch (a validation or test set).
        augment: apply the augmentation (default: on unless ``fixed``).
    """

    def __init__(self, batch_size=32, batches_per_epoch=100, config=ShapesConfig(), seed=0, fixed=False, augment=None,
                 **kwargs):
        super().__init__(batches_per_epoch, seed, fixed, **kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.config = batch_size, config
        self.augment = (not fixed) if augment is None else augment

    def sample(self, index):
        """Batch ``index`` as ``(images (B, H, W) uint8, points [list of (N, 2)], valid (B, H, W) bool)``."""
        rng = self.batch_rng(index)
        images, points, valids = [], [], []
        for _ in range(self.batch_size):
            image, corners = draw_shape(rng, self.config)
            valid = np.ones(image.shape, bool)
            if self.augment:
                image, corners, valid = augment_shape(image, corners, rng, self.config)
            images.append(image)
            points.append(corners)
            valids.append(valid)
        return np.stack(images), points, np.stack(valids)

    def __getitem__(self, index):
        images, points, valids = self.sample(index)
        rng = np.random.default_rng([self.seed, self._epoch, int(index), 1])
        targets = np.stack([shape_targets(p, v, self.config.size, rng) for p, v in zip(points, valids)])
        return images[..., None].astype(np.float32) / 255.0, targets
