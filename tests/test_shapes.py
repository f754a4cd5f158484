"""Synthetic shapes: exact corner labels, cell targets, seeded batches."""

import numpy as np
import pytest

from hnet_keras.features.shapes import (
    PRIMITIVES,
    ShapesConfig,
    ShapesDataset,
    augment_shape,
    cells_to_points,
    draw_shape,
    points_to_cells,
)


def _checker_corners_alternate(image, points, offset=2):
    """Counts ``(interior, flat)`` labels: the board's interior corners, where the diagonal quadrants
    agree and the adjacent ones differ, and labels with four equal quadrants (off any corner)."""
    height, width = image.shape
    interior = flat = 0
    for x, y in points:
        xi, yi = int(round(x)), int(round(y))
        if not (offset <= xi < width - offset and offset <= yi < height - offset):
            continue
        q = [float(image[yi + dy, xi + dx]) for dx, dy in ((-offset, -offset), (offset, -offset),
                                                           (offset, offset), (-offset, offset))]
        if max(q) - min(q) < 15:
            flat += 1
        elif abs(q[0] - q[2]) < 15 and abs(q[1] - q[3]) < 15 and abs(q[0] - q[1]) > 25:
            interior += 1
    return interior, flat


def test_checkerboard_labels_sit_on_the_corners_before_and_after_a_warp():
    config = ShapesConfig(photometric=None, shade=0.0, homography_probability=1.0)
    counts = np.zeros(2, int)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        image, points = draw_shape(rng, config, "checkerboard")
        counts += _checker_corners_alternate(image, points)
        warped, moved, valid = augment_shape(image, points, rng, config)
        assert valid.shape == image.shape and not valid.all()
        counts += _checker_corners_alternate(warped, moved)
    # a label is off a corner only where a squeezed or low-contrast board blurs it away
    assert counts[0] > 30 and counts[1] <= 0.05 * counts.sum(), counts


def test_every_primitive_draws_and_only_negatives_have_no_corner():
    config = ShapesConfig()
    for primitive in PRIMITIVES:
        counts = [len(draw_shape(np.random.default_rng(seed), config, primitive)[1]) for seed in range(3)]
        assert (max(counts) == 0) == (primitive in ("ellipses", "noise")), (primitive, counts)
        image, points = draw_shape(np.random.default_rng(0), config, primitive)
        assert image.shape == (120, 160) and image.dtype == np.uint8
        assert np.all((points >= 0) & (points <= [159, 119]))
    with pytest.raises(ValueError, match="unknown primitive"):
        ShapesConfig(primitives=("circle",))


def test_cells_round_trip_integer_points():
    points = np.array([[0, 0], [7, 15], [9, 3], [159, 119], [80, 64]], np.float64)
    cells = points_to_cells(points, (160, 120))
    assert cells.shape == (15, 20) and (cells < 64).sum() == 5
    assert cells[0, 0] == 0 and cells[0, 1] == 3 * 8 + 1 and cells[14, 19] == 63
    assert sorted(map(tuple, cells_to_points(cells))) == sorted(map(tuple, points))


def test_batches_are_seeded_and_shaped():
    data = ShapesDataset(batch_size=4, batches_per_epoch=3, seed=5)
    x, y = data[1]
    assert x.shape == (4, 120, 160, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (4, 15, 20, 2) and set(np.unique(y[..., 1])) <= {0.0, 1.0}
    again = ShapesDataset(batch_size=4, batches_per_epoch=3, seed=5)[1]
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
    data.on_epoch_end()
    assert not np.array_equal(x, data[1][0])
    fixed = ShapesDataset(batch_size=4, batches_per_epoch=3, seed=5, fixed=True)
    first = fixed[0][0]
    fixed.on_epoch_end()
    assert np.array_equal(first, fixed[0][0])
