"""The random-homography sampler of SuperPoint and its warping helpers."""

import math

import cv2
import numpy as np
import pytest

from hnet_keras.features.homographies import (
    ADAPTATION_HOMOGRAPHY,
    HomographyConfig,
    inside,
    sample_homographies,
    sample_homography,
    valid_mask,
    warp_image,
    warp_keypoints,
    warp_points,
)

SIZE = (160, 120)
CORNERS = np.array([[0, 0], [160, 0], [160, 120], [0, 120]], np.float64)


def test_same_seed_same_homographies_and_another_seed_others():
    a = sample_homographies(8, SIZE, seed=3, config=ADAPTATION_HOMOGRAPHY)
    assert a.shape == (8, 3, 3) and np.allclose(a[:, 2, 2], 1.0)
    assert np.array_equal(a, sample_homographies(8, SIZE, seed=3, config=ADAPTATION_HOMOGRAPHY))
    assert not np.allclose(a, sample_homographies(8, SIZE, seed=4, config=ADAPTATION_HOMOGRAPHY))


def test_with_every_move_off_image_b_is_the_centred_patch_stretched():
    still = HomographyConfig(perspective=False, scaling=False, rotation=False, translation=False, patch_ratio=0.5)
    h = sample_homography(SIZE, 0, still)
    # B's corners come from the centred half-size patch of A
    patch = np.array([[40, 30], [120, 30], [120, 90], [40, 90]], np.float64)
    assert np.allclose(warp_points(h, patch), CORNERS, atol=1e-6)


def test_without_artifacts_b_only_sees_inside_a():
    for h in sample_homographies(100, SIZE, seed=0, config=HomographyConfig(max_angle=math.pi)):
        source = warp_points(np.linalg.inv(h), CORNERS)  # where B's corners come from in A
        assert np.all(source >= -1e-6) and np.all(source <= np.array(SIZE) + 1e-6)
        assert valid_mask(SIZE, h)[1:-1, 1:-1].all()  # up to the outermost pixel rows (nearest sampling)


def test_warped_points_land_where_warp_image_puts_their_pixels():
    image = np.zeros((120, 160), np.uint8)
    points = np.array([[70.0, 50.0], [90.0, 68.0], [96.0, 52.0]])  # near the centre, inside the sampled patch
    for x, y in points.astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255
    h = sample_homography(SIZE, 7, HomographyConfig(max_angle=0.5))
    warped_image = warp_image(image, h)
    warped, kept = warp_keypoints(points, h, SIZE)
    assert kept.all()
    for x, y in warped:
        window = warped_image[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2]
        assert window.max() > 100


def test_valid_mask_is_false_on_the_black_border_and_erodes():
    h = np.array([[1.0, 0, 20], [0, 1, 10], [0, 0, 1]])  # shift right by 20, down by 10
    mask = valid_mask(SIZE, h)
    assert not mask[:, :20].any() and not mask[:10].any() and mask[10:, 20:].all()
    eroded = valid_mask(SIZE, h, erosion=3)
    assert eroded.sum() < mask.sum() and not eroded[:, 20:23].any() and eroded[20:100, 30:150].all()
    assert np.array_equal(inside([[0, 0], [159, 119], [160, 5], [-0.1, 3]], SIZE), [True, True, False, False])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="patch_ratio"):
        HomographyConfig(patch_ratio=0)
    with pytest.raises(ValueError, match="scaling_amplitude"):
        HomographyConfig(scaling_amplitude=-1)


def test_warp_image_matches_opencv():
    image = (np.arange(120 * 160) % 251).astype(np.uint8).reshape(120, 160)
    h = sample_homography(SIZE, 1)
    assert np.array_equal(warp_image(image, h), cv2.warpPerspective(image, h, SIZE))
