import cv2
import numpy as np
import pytest

from hnet_keras.geometry import (
    corner_errors,
    homography_to_offsets,
    mean_corner_error,
    offsets_to_homography,
    patch_corners,
    warp_points,
)


def test_corner_order_is_tl_tr_br_bl():
    corners = patch_corners(128, origin=(10, 20))
    np.testing.assert_array_equal(corners, [[10, 20], [138, 20], [138, 148], [10, 148]])


def test_homography_maps_perturbed_corners_to_original():
    rng = np.random.default_rng(0)
    offsets = rng.integers(-32, 33, size=8)
    h_ab = offsets_to_homography(offsets, size=128)
    original = patch_corners(128)
    perturbed = original + offsets.reshape(4, 2)
    np.testing.assert_allclose(warp_points(h_ab, perturbed), original, atol=1e-6)


@pytest.mark.parametrize("size,origin", [(128, (0, 0)), (256, (40, 17)), ((320, 240), (0, 0))])
def test_offsets_homography_round_trip(size, origin):
    rng = np.random.default_rng(1)
    offsets = rng.integers(-30, 31, size=(16, 8)).astype(np.float64)
    matrices = offsets_to_homography(offsets, size=size, origin=origin)
    assert matrices.shape == (16, 3, 3)
    np.testing.assert_allclose(homography_to_offsets(matrices, size=size, origin=origin), offsets, atol=1e-6)
    # single pair
    np.testing.assert_allclose(
        homography_to_offsets(offsets_to_homography(offsets[3], size, origin), size, origin), offsets[3], atol=1e-6
    )


def test_reprojected_interior_points_agree_with_opencv():
    offsets = np.array([5, -3, -7, 2, 4, 6, -2, -8], dtype=np.float64)
    h_ab = offsets_to_homography(offsets, size=64)
    points = np.random.default_rng(2).uniform(0, 64, size=(50, 2))
    expected = cv2.perspectiveTransform(points[None].astype(np.float64), h_ab)[0]
    np.testing.assert_allclose(warp_points(h_ab, points), expected, atol=1e-9)


def test_corner_errors_known_values():
    truth = np.zeros(8)
    predicted = np.array([3, 4, 0, 0, -6, 8, 1, 0], dtype=np.float64)
    np.testing.assert_allclose(corner_errors(truth, predicted), [5, 0, 10, 1])
    assert mean_corner_error(truth, predicted) == pytest.approx(4.0)


def test_wrong_offset_shape_is_refused():
    with pytest.raises(ValueError, match="8 values"):
        offsets_to_homography(np.zeros(6))
