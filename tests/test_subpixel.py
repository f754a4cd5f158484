"""Sub-pixel keypoints: the soft-argmax of MagicPoint/SuperPoint's probability map and cv2.cornerSubPix
for the classical detectors, on known answers and on synthetic shapes."""

from pathlib import Path

import numpy as np
import pytest

from hnet_keras.features import keypoint_eval as ke
from hnet_keras.features.superpoint import SUBPIXEL_WINDOW, build_superpoint, describe, detect, load_superpoint, \
    nms, refine_subpixel

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "superpoint"


def _blob(centre, shape=(20, 24), sigma=0.8):
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_a_gaussian_peak_between_pixels_is_found_within_a_tenth_of_a_pixel():
    probability = _blob((10.3, 7.6))
    points, scores = nms(probability, radius=4, threshold=0.1, border=4)
    assert points.tolist() == [[10.0, 8.0]]  # NMS: the nearest whole pixel, 0.5 px off
    refined = refine_subpixel(probability, points)
    assert np.linalg.norm(refined[0] - [10.3, 7.6]) < 0.1
    assert np.linalg.norm(points[0] - [10.3, 7.6]) > 0.4
    # two peaks at once, each refined on its own
    two = np.maximum(_blob((10.3, 7.6), (30, 40)), _blob((25.8, 19.45), (30, 40)))
    points, _ = nms(two, radius=4, threshold=0.1, border=4)
    refined = refine_subpixel(two, points)
    expected = np.array([[10.3, 7.6], [25.8, 19.45]])
    order = np.argsort(refined[:, 0])
    assert np.all(np.linalg.norm(refined[order] - expected, axis=1) < 0.1)


def test_whole_pixel_peaks_stay_put_and_window_one_is_off():
    symmetric = _blob((12.0, 9.0))
    point = np.array([[12.0, 9.0]])
    assert np.allclose(refine_subpixel(symmetric, point), point, atol=1e-9)
    spike = np.zeros((20, 24), np.float32)
    spike[5, 7] = 1.0
    assert np.array_equal(refine_subpixel(spike, [[7, 5]], window=7), [[7.0, 5.0]])
    off_centre = _blob((10.3, 7.6))
    assert np.array_equal(refine_subpixel(off_centre, [[10, 8]], window=1), [[10.0, 8.0]])
    assert np.array_equal(refine_subpixel(off_centre, [[10, 8]], window=0), [[10.0, 8.0]])
    assert refine_subpixel(off_centre, np.zeros((0, 2))).shape == (0, 2)
    # an all-zero window leaves the point; a point at the edge stays inside the image
    assert np.array_equal(refine_subpixel(np.zeros((8, 8), np.float32), [[3, 4]]), [[3.0, 4.0]])
    corner = _blob((0.0, 0.0), (10, 10))
    refined = refine_subpixel(corner, [[0, 0]])
    assert np.all(refined >= 0) and np.all(refined < 0.5)
    with pytest.raises(ValueError, match="odd"):
        refine_subpixel(off_centre, [[10, 8]], window=4)


def test_detect_and_describe_refine_by_default_and_agree():
    net = build_superpoint(widths=(4,) * 8, head=8, descriptor_dim=8)
    image = (np.random.default_rng(0).random((32, 40)) * 255).astype(np.uint8)
    (points, scores), = detect(net, image, threshold=0.0, top_k=20)
    (whole, whole_scores), = detect(net, image, threshold=0.0, top_k=20, subpixel=0)
    assert np.array_equal(scores, whole_scores) and np.all(np.abs(points - whole) <= SUBPIXEL_WINDOW // 2)
    assert np.all(whole == np.round(whole)) and np.any(points != np.round(points))
    described, described_scores, descriptors = describe(net, image, threshold=0.0, top_k=20)
    assert np.allclose(described, points) and descriptors.shape == (len(points), 8)


def test_refinement_lowers_the_shipped_magicpoints_localisation_error_on_shapes():
    images, truths = ke.held_out_shapes(40, seed=30_000)
    magic = load_superpoint(SHIPPED / "magicpoint.weights.h5")
    refined = ke.detection_scores(ke.network_detector(magic), images, truths)
    whole = ke.detection_scores(ke.network_detector(magic, subpixel=0), images, truths)
    assert refined.localisation_error < whole.localisation_error - 0.1
    assert refined.mAP > whole.mAP - 0.01


def test_corner_subpix_lowers_harris_and_shi_tomasi_localisation_error():
    images, truths = ke.held_out_shapes(40, seed=30_000)
    for plain, refined in ((ke.harris, ke.harris_subpix), (ke.shi_tomasi, ke.shi_tomasi_subpix)):
        before = ke.detection_scores(plain, images, truths)
        after = ke.detection_scores(refined, images, truths)
        assert after.localisation_error < before.localisation_error - 0.2
        assert after.localisation_sem > 0
    points, scores = ke.harris(images[0])
    moved = ke.corner_subpix(images[0], points)
    assert moved.shape == points.shape and np.all(np.abs(moved - points) <= ke.CORNER_SUBPIX_HALF_WINDOW)
    assert np.array_equal(ke.corner_subpix(images[0], points, half_window=0), points)


def test_localisation_standard_error_of_known_answers():
    truths = [np.array([[10.0, 10.0], [30.0, 20.0], [40.0, 30.0]])]

    def detector(image):
        return truths[0] + [[0.5, 0.0], [1.0, 0.0], [1.5, 0.0]], np.array([0.9, 0.8, 0.7])

    scores = ke.detection_scores(detector, np.zeros((1, 48, 64), np.uint8), truths)
    assert scores.localisation_error == pytest.approx(1.0)
    assert scores.localisation_sem == pytest.approx(0.5 / np.sqrt(3))
    assert scores.summary()["localisation_sem"] == pytest.approx(0.289)
