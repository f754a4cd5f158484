"""The PCK evaluation: exact on a descriptor perfect by construction, chance on a shuffled one, the helpers."""

import hashlib

import cv2
import numpy as np
import pytest
import skimage.data

from hnet_keras.features import pck
from hnet_keras.geometry import warp_points

WIDTH, HEIGHT = 192, 144
TRUE_H = np.array([[1.05, 0.08, -6.0], [-0.05, 0.97, 5.0], [1e-4, -2e-4, 1.0]])
LENGTH = 80.0  # the encoding's wavelength / 2 pi: its similarity falls with distance across the whole image


def encode(points):
    """A unit 4-vector per point whose dot products fall monotonically with the x and y distances."""
    points = np.asarray(points, np.float64) / LENGTH
    return (np.stack([np.cos(points[:, 0]), np.sin(points[:, 0]), np.cos(points[:, 1]), np.sin(points[:, 1])], -1)
            / np.sqrt(2)).astype(np.float32)


class OracleMap(pck.DenseMap):
    """A 1-px map of an image whose descriptors encode where each pixel comes from in image A."""

    def __init__(self, image, to_a, shuffle=None):
        height, width = image.shape
        self.to_a, self.shuffle = to_a, shuffle
        super().__init__(np.zeros((height, width, 4), np.float32), 1.0, 0.0)
        self.descriptors = self.exact(self.positions()).reshape(height, width, 4)

    def exact(self, points):
        points = np.asarray(points, np.float64).reshape(-1, 2)
        homogeneous = np.c_[points, np.ones(len(points))] @ self.to_a.T
        codes = encode(homogeneous[:, :2] / homogeneous[:, 2:])
        return codes if self.shuffle is None else codes[self.shuffle.permutation(len(codes))]


class Oracle(pck.Describer):
    """Perfect by construction: it knows each image's map to image A (by the image's bytes)."""

    name = "oracle"

    def __init__(self, to_a, shuffle_b=None):
        self.to_a, self.shuffle_b = to_a, shuffle_b

    def maps(self, image):
        key = hashlib.sha1(image.tobytes()).hexdigest()
        shuffle = np.random.default_rng(self.shuffle_b) if self.shuffle_b is not None and key != self.key_a else None
        return [OracleMap(image, self.to_a[key], shuffle)]

    def at(self, image, maps, points):
        return maps[0].exact(points)[None]


def make_pair(kind="v_test"):
    image = cv2.resize(skimage.data.camera(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    warped = cv2.warpPerspective(image, TRUE_H, (WIDTH, HEIGHT))
    return pck.DescriptorPair(f"{kind}/1-2", image, warped, TRUE_H, pck.sequence_kind(kind))


def oracle_for(pair, shuffle_b=None):
    image_a, image_b, homography = pck.resize_pair(pair, WIDTH)
    oracle = Oracle({hashlib.sha1(image_a.tobytes()).hexdigest(): np.eye(3),
                     hashlib.sha1(image_b.tobytes()).hexdigest(): np.linalg.inv(homography)}, shuffle_b)
    oracle.key_a = hashlib.sha1(image_a.tobytes()).hexdigest()
    return oracle


def test_a_perfect_descriptor_scores_one_under_every_protocol():
    pair = make_pair()
    results = pck.evaluate_pck([pair], [oracle_for(pair)], points=300, long_side=WIDTH, progress=False)
    row = results["oracle"][0]
    assert len(row.seed_errors) == 300 and np.max(row.seed_errors) == 0.0
    assert np.max(row.dense_errors) <= 0.75  # refined on a 1-px grid: within half a pixel's diagonal
    assert row.corner_error < 1.0
    table = pck.pck_table(results)["oracle"]
    assert table["all"]["seed"] == {"1": 1.0, "3": 1.0, "5": 1.0}
    assert table["all"]["dense"] == {"1": 1.0, "3": 1.0, "5": 1.0}
    assert table["all"]["homography"] == {"1": 1.0, "3": 1.0, "5": 1.0}
    assert table["viewpoint"]["pairs"] == 1 and set(table) == {"all", "viewpoint"}


def test_a_shuffled_descriptor_scores_near_chance():
    pair = make_pair("i_test")
    image_a, image_b, homography = pck.resize_pair(pair, WIDTH)
    points_a, points_b = pck.common_harris_points(image_a, image_b, homography, 300, rng=(0, 0))
    distances = np.linalg.norm(points_b[:, None] - points_b[None], axis=-1)
    chance = {t: float(np.mean(distances <= t)) for t in (1, 3, 5)}  # a random target's chance
    results = pck.evaluate_pck([pair], [oracle_for(pair, shuffle_b=1)], points=300, long_side=WIDTH,
                               protocols=("seed", "dense"), progress=False)
    table = pck.pck_table(results)["oracle"]["illumination"]
    for t in (1, 3, 5):
        assert abs(table["seed"][str(t)] - chance[t]) < 0.03 + 2 * chance[t]
        assert table["dense"][str(t)] < 0.03
    assert chance[5] < 0.05


def test_points_come_from_the_strongest_harris_responses_of_the_common_region():
    pair = make_pair()
    image_a, image_b, homography = pck.resize_pair(pair, WIDTH)
    points_a, points_b = pck.common_harris_points(image_a, image_b, homography, 200, rng=3)
    again, _ = pck.common_harris_points(image_a, image_b, homography, 200, rng=3)
    np.testing.assert_array_equal(points_a, again)
    assert points_a.shape == (200, 2) and len(np.unique(points_a, axis=0)) == 200
    response = cv2.cornerHarris(np.float32(image_a), 3, 3, 0.04)
    strong = response[points_a[:, 1].astype(int), points_a[:, 0].astype(int)]
    assert np.min(strong) >= np.quantile(response, 0.85)
    assert np.all((points_b >= 0) & (points_b <= (WIDTH - 1, HEIGHT - 1)))


def test_resizing_a_pair_keeps_its_homography():
    pair = make_pair()
    image_a, image_b, homography = pck.resize_pair(pair, 320)
    assert image_a.shape == (240, 320) and image_b.shape == (240, 320)
    point = np.array([[50.0, 40.0]])
    expected = warp_points(TRUE_H, point) * (320 / WIDTH)
    np.testing.assert_allclose(warp_points(homography, point * (320 / WIDTH)), expected, atol=1e-9)
    with pytest.raises(ValueError, match="v_test/1-2"):
        pck.resize_pair(pck.DescriptorPair("v_test/1-2", pair.image_a[:8], pair.image_b, TRUE_H), 320)


def test_dense_maps_sample_bilinearly_at_any_scale():
    rows, columns = np.mgrid[0:4, 0:5].astype(np.float32)
    values = np.stack([columns + 1, rows + 1], -1)
    dense = pck.DenseMap(values, stride=4, offset=2, scale=0.5)  # cell (i, j) at image point ((2 + 4j) / 0.5, ...)
    np.testing.assert_allclose(dense.positions()[:2], [[4, 4], [12, 4]])
    got = dense.sample([[4.0, 4.0], [8.0, 8.0], [100.0, 0.0]])
    expected = np.array([[1, 1], [1.5, 1.5], [5, 1]], np.float32)
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)
    assert dense.spacing == 8


def test_a_dense_map_with_a_transform_matches_the_plain_scaling():
    rows, columns = np.mgrid[0:4, 0:5].astype(np.float32)
    values = np.stack([columns + 1, rows + 1], -1)
    plain = pck.DenseMap(values, stride=4, offset=2, scale=0.5)
    affine = pck.DenseMap(values, stride=4, offset=2, scale=123.0, transform=np.diag([0.5, 0.5, 1.0]))  # scale ignored
    points = np.array([[4.0, 4.0], [8.0, 8.0], [100.0, 0.0], [13.3, 5.7]])
    np.testing.assert_allclose(affine.sample(points), plain.sample(points), atol=1e-6)
    np.testing.assert_allclose(affine.positions(), plain.positions(), atol=1e-9)
    assert affine.spacing == pytest.approx(8.0)


def test_sequence_kinds_and_best_similarity_over_scales():
    assert [pck.sequence_kind(n) for n in ("v_boat/1-2", "i_ajuntament/1-3", "z_cat/1-4", "graf/1-2")] == [
        "viewpoint", "illumination", "zoom", "other"]
    a = np.array([[[1, 0]], [[0, 1]]], np.float32)  # one point at two scales
    b = np.array([[[0.6, 0.8], [1, 0]], [[0, 1], [0.8, 0.6]]], np.float32)  # two points at two scales
    similarity, scales = pck.best_similarity(a, b)
    np.testing.assert_allclose(similarity, [[1.0, 1.0]])
    assert scales.tolist() == [[[1, 1], [0, 0]]]


def test_daisy_and_sift_match_a_real_photo_pair():
    pair = make_pair()
    results = pck.evaluate_pck([pair], [pck.DaisyDescriptors(), pck.SiftDescriptors()], points=200,
                               long_side=WIDTH, protocols=("seed",), progress=False)
    table = pck.pck_table(results)
    for method in ("daisy", "sift"):
        assert table[method]["all"]["seed"]["5"] > 0.5
        assert "dense" not in table[method]["all"]
    with pytest.raises(ValueError, match="distinct"):
        pck.evaluate_pck([pair], [pck.SiftDescriptors(), pck.SiftDescriptors()], progress=False)


def test_superpoint_descriptors_match_a_real_photo_pair_and_keep_their_cells_in_place():
    from hnet_keras.features.superpoint import SHIPPED_SUPERPOINT, descriptor_map, load_superpoint

    model = load_superpoint()  # the shipped SuperPoint
    pair = make_pair()
    describer = pck.SuperPointDescriptors(model)
    dense = describer.dense(pair.image_a[:101, :99])  # cropped to 96 x 96: cells stay where they were
    full = descriptor_map(model, pair.image_a[:96, :96])
    assert dense.descriptors.shape == full.shape == (12, 12, full.shape[-1])
    assert np.allclose(dense.descriptors, full, atol=1e-5)
    assert np.allclose(np.linalg.norm(full, axis=-1), 1.0, atol=1e-3)
    results = pck.evaluate_pck([pair], [describer], points=200, long_side=WIDTH, protocols=("seed",), progress=False)
    assert pck.pck_table(results)["superpoint"]["all"]["seed"]["5"] > 0.5
    with pytest.raises(ValueError, match="descriptor head"):
        descriptor_map(load_superpoint(SHIPPED_SUPERPOINT.with_name("magicpoint.weights.h5")), pair.image_a[:64, :64])
