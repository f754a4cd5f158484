"""Whole-image benchmark classes (hnet_keras.scoring.difficulty): each class's homography re-projected,
its ranges reached, its photometric change applied, every draw seeded."""

import math

import cv2
import numpy as np
import pytest

from hnet_keras.geometry import warp_points
from hnet_keras.scoring.difficulty import LEVELS, class_homography, class_pair, write_class_pairs
from hnet_keras.scoring.real_pairs import load_real_pairs


def _photo(width=320, height=240, seed=0):
    noise = np.random.default_rng(seed).random((height // 8, width // 8)).astype(np.float32)
    return (cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["zoom_rotation", "viewpoint", "blur"])
def test_image_b_shows_a_moved_by_the_pairs_homography(kind):
    image = _photo()
    image_b, h_ab = class_pair(image, kind, 1, np.random.default_rng(3))
    if kind == "blur":
        image_b = cv2.warpPerspective(image, h_ab, (320, 240))  # the motion alone, before the blur
    # A point p of A shows in B at H_ab(p): sample B there and compare with A.
    ys, xs = np.mgrid[40:200:20, 40:280:20]
    points = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
    in_b = warp_points(h_ab, points)
    inside = (in_b[:, 0] > 1) & (in_b[:, 0] < 318) & (in_b[:, 1] > 1) & (in_b[:, 1] < 238)
    sampled = cv2.remap(image_b.astype(np.float32), in_b[inside, 0].astype(np.float32).reshape(-1, 1),
                        in_b[inside, 1].astype(np.float32).reshape(-1, 1), cv2.INTER_LINEAR).ravel()
    original = image[points[inside, 1].astype(int), points[inside, 0].astype(int)].astype(np.float32)
    assert inside.sum() > 20 and np.abs(sampled - original).mean() < 3.0


def test_zoom_rotation_levels_reach_60_degrees_and_half_to_double():
    angles, scales = {level: [] for level in range(LEVELS)}, []
    for seed in range(200):
        level = seed % LEVELS
        h = class_homography("zoom_rotation", level, (640, 480), np.random.default_rng(seed))
        angles[level].append(abs(math.degrees(math.atan2(h[1, 0], h[0, 0]))))
        scales.append(math.sqrt(abs(np.linalg.det(h[:2, :2]))))
    for level, values in angles.items():
        assert 15 * level - 1e-6 <= min(values) and max(values) <= 15 * (level + 1) + 1e-6
    assert max(angles[3]) > 55 and min(scales) < 0.6 and max(scales) > 1.7


def test_viewpoint_tilts_and_no_motion_stays():
    h = class_homography("viewpoint", 3, (640, 480), np.random.default_rng(0))
    assert abs(h[2, 0]) + abs(h[2, 1]) > 1e-4  # perspective
    image = _photo()
    image_b, h_ab = class_pair(image, "no_motion", 3, np.random.default_rng(0))
    assert np.array_equal(h_ab, np.eye(3))
    difference = np.abs(image_b.astype(int) - image.astype(int))
    assert 0 < difference.mean() < 8  # JPEG at quality 20 and noise of sigma 4, nothing more


def test_each_photometric_class_changes_b_and_grows_with_level():
    image = _photo()
    for kind in ("blur", "illumination", "jpeg"):
        changes = []
        for level in (0, 3):
            rng = np.random.default_rng(5)
            image_b, h_ab = class_pair(image, kind, level, rng)
            moved = cv2.warpPerspective(image, h_ab, (320, 240))
            changes.append(np.abs(image_b.astype(float) - moved).mean())
        assert 0 < changes[0] < changes[1], kind


def test_class_pairs_are_seeded_and_load_as_hpatches(tmp_path):
    photos = [_photo(seed=0), _photo(seed=1)]
    first = write_class_pairs(tmp_path / "a", photos, "zoom_rotation", 3, seed=1, size=(160, 120))
    second = write_class_pairs(tmp_path / "b", photos, "zoom_rotation", 3, seed=1, size=(160, 120))
    pairs, again = load_real_pairs(tmp_path / "a"), load_real_pairs(tmp_path / "b")
    assert len(pairs) == 3 and [p.name for p in pairs] == [p.name for p in again]
    for pair, other in zip(pairs, again):
        assert np.array_equal(pair.homography, other.homography)
        image_a, image_b = pair.images()
        assert image_a.shape == (120, 160) and np.array_equal(image_b, other.images()[1])
    assert len(first) == len(second) == 3


def test_bad_class_arguments_are_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        class_homography("fog", 0, (64, 48), np.random.default_rng(0))
    with pytest.raises(ValueError, match="level must be in 0..3"):
        class_homography("blur", 4, (64, 48), np.random.default_rng(0))
    with pytest.raises(ValueError, match="2-D uint8"):
        class_pair(np.zeros((8, 8, 3), np.uint8), "blur", 0, np.random.default_rng(0))
