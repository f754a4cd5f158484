"""ECC refinement from an estimate: sub-pixel on real photo pairs, guarded when it cannot help."""

import numpy as np
import pytest

from hnet_keras.geometry import corner_errors, homography_to_offsets, offsets_to_homography
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.estimators.contract import EstimationFailed
from hnet_keras.estimators.refine import ECCSettings, image_texture, refine_homography
from hnet_keras.data.synthesis import TRAIN_PROTOCOL, prepare_image, sample_pair


def _real_pairs(count=6, seed=0):
    rng = np.random.default_rng(seed)
    images = [prepare_image(read_grayscale(path)[0], TRAIN_PROTOCOL) for path in embedded_photo_paths("test")]
    return [sample_pair(images[i % len(images)], rng, TRAIN_PROTOCOL) for i in range(count)]


def test_refinement_from_a_few_pixels_off_reaches_sub_pixel_error():
    rng = np.random.default_rng(1)
    errors_before, errors_after = [], []
    for pair in _real_pairs(8):
        start = pair.offsets + rng.uniform(-3, 3, 8)
        refined = refine_homography(pair.patch_a, pair.patch_b, offsets_to_homography(start, 128))
        offsets = homography_to_offsets(refined, 128)
        errors_before.append(corner_errors(pair.offsets, start).mean())
        errors_after.append(corner_errors(pair.offsets, offsets).mean())
    assert np.mean(errors_before) > 1.5
    assert np.median(errors_after) < 0.3, errors_after


def test_an_exact_start_stays_put():
    pair = _real_pairs(1)[0]
    h = offsets_to_homography(pair.offsets, 128)
    refined = refine_homography(pair.patch_a, pair.patch_b, h)
    assert corner_errors(pair.offsets, homography_to_offsets(refined, 128)).max() < 0.5


def test_blank_images_fail_instead_of_returning_a_guess():
    blank = np.full((128, 128), 120, np.uint8)
    assert image_texture(blank) == 0.0
    with pytest.raises(EstimationFailed):
        refine_homography(blank, blank, np.eye(3))


def test_a_move_beyond_the_bound_falls_back():
    pair = _real_pairs(1, seed=3)[0]
    far = pair.offsets + np.array([6, -6, 6, 6, -6, 6, -6, -6])  # 8.5 px off at every corner
    with pytest.raises(EstimationFailed, match="too far"):
        refine_homography(pair.patch_a, pair.patch_b, offsets_to_homography(far, 128), ECCSettings(max_move=2.0))


def test_texture_measures_gradients():
    ramp = np.tile(np.arange(0, 128, dtype=np.uint8) * 2, (128, 1))
    assert image_texture(ramp) == pytest.approx(2.0, abs=0.1)
    with pytest.raises(ValueError, match="one size"):
        refine_homography(ramp, ramp[:64], np.eye(3))
