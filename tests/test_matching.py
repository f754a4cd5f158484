"""Mutual nearest-neighbour matching and the RANSAC homography of matched keypoints."""

import numpy as np

from hnet_keras.features.homographies import sample_homography, warp_points
from hnet_keras.features.matching import mutual_nearest_neighbours, normalise_descriptors, ransac_homography


def test_mutual_nearest_neighbours_recovers_a_shuffled_set_and_drops_one_sided_matches():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 32))
    order = rng.permutation(50)
    b = a[order] + rng.normal(scale=0.01, size=(50, 32))
    matches, distances = mutual_nearest_neighbours(a, b)
    assert len(matches) == 50 and np.all(order[matches[:, 1]] == matches[:, 0]) and distances.max() < 0.1
    # two rows of A closest to the same row of B: only one of them is mutual
    matches, _ = mutual_nearest_neighbours(np.array([[1.0, 0], [0.9, 0.1]]), np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert matches.tolist() == [[0, 0]]
    assert len(mutual_nearest_neighbours(a, b, max_distance=1e-6)[0]) == 0
    assert np.allclose(np.linalg.norm(normalise_descriptors(a), axis=1), 1.0)


def test_ransac_recovers_a_known_homography_despite_outliers():
    rng = np.random.default_rng(1)
    h_true = sample_homography((160, 120), 5)
    points_a = rng.uniform([0, 0], [160, 120], (80, 2))
    points_b = warp_points(h_true, points_a)
    points_b[:20] = rng.uniform([0, 0], [160, 120], (20, 2))  # a quarter are wrong matches
    h, inliers = ransac_homography(points_a, points_b)
    assert inliers[20:].all() and inliers[:20].sum() <= 2
    corners = np.array([[0, 0], [160, 0], [160, 120], [0, 120]], np.float64)
    assert np.abs(warp_points(h, corners) - warp_points(h_true, corners)).max() < 0.1
    assert ransac_homography(points_a[:3], points_b[:3])[0] is None
