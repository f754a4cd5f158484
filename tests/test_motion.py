"""Large-motion pairs (hnet_keras.data.motion) and the real-pair photometrics: geometry re-projected,
ranges reached, draws seeded, and the default augmentation's stream untouched."""

import math

import cv2
import numpy as np
import pytest

from hnet_keras.data import photometric
from hnet_keras.data.augment import DEFAULT_AUGMENTATION, REAL_PAIR_AUGMENTATION, Augmentation, augment_patch
from hnet_keras.data.motion import LARGE_MOTION, Motion, sample_motion, sample_moved_pair, sample_moved_pairs
from hnet_keras.geometry import offsets_to_homography, patch_corners, warp_points


def _texture(height=360, width=480, seed=0):
    """A smooth random texture: every pixel distinct enough to tell positions apart."""
    noise = np.random.default_rng(seed).random((height // 8, width // 8)).astype(np.float32)
    return (cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def test_patch_b_is_patch_a_moved_by_the_pairs_homography():
    image = _texture()
    for seed in range(5):
        pair = sample_moved_pair(image, np.random.default_rng(seed))
        h_ab = offsets_to_homography(pair.offsets, 128)
        # Each pixel of B shows the image at H_ab^-1 of it: re-project B's pixels into the image.
        ys, xs = np.mgrid[8:120:8, 8:120:8]
        points_b = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
        in_image = warp_points(np.linalg.inv(h_ab), points_b) + pair.origin
        expected = cv2.remap(image.astype(np.float32), in_image[:, 0].astype(np.float32).reshape(-1, 1),
                             in_image[:, 1].astype(np.float32).reshape(-1, 1), cv2.INTER_LINEAR).ravel()
        found = pair.patch_b[points_b[:, 1].astype(int), points_b[:, 0].astype(int)].astype(np.float32)
        assert np.abs(found - expected).max() <= 1.0
        x, y = pair.origin
        assert np.array_equal(pair.patch_a, image[y:y + 128, x:x + 128])


def test_quadrilaterals_stay_inside_and_the_ranges_are_reached():
    image = _texture()
    rng = np.random.default_rng(1)
    angles, scales = [], []
    for _ in range(300):
        pair = sample_moved_pair(image, rng)
        original = patch_corners(128, pair.origin)
        quad = original + pair.offsets.reshape(4, 2)
        assert quad.min() >= 0 and quad[:, 0].max() <= 479 and quad[:, 1].max() <= 359
        top = quad[1] - quad[0]
        angles.append(math.degrees(math.atan2(top[1], top[0])))
        scales.append(math.sqrt(abs(cv2.contourArea(quad.astype(np.float32)))) / 128)
    assert max(np.abs(angles)) > 40 and min(scales) < 0.6 and max(scales) > 1.6
    assert np.mean(np.abs(angles) > 20) > 0.3  # not only small rotations


def test_motion_is_about_the_patch_centre_and_reaches_each_range():
    rng = np.random.default_rng(2)
    no_shift = Motion(translation=0.0, max_tilt=0.0)
    for _ in range(20):
        homography, scale = sample_motion(rng, 128, no_shift)
        assert np.allclose(warp_points(homography, np.zeros((1, 2))), 0.0, atol=1e-9)
        assert 0.5 <= scale <= 2.0
        assert math.isclose(abs(np.linalg.det(homography[:2, :2])), scale ** 2, rel_tol=1e-9)


def test_moved_pairs_are_seeded():
    images = [_texture(seed=0), _texture(seed=1)]
    first = sample_moved_pairs(images, [0, 1, 1], np.random.default_rng(7))
    second = sample_moved_pairs(images, [0, 1, 1], np.random.default_rng(7))
    other = sample_moved_pairs(images, [0, 1, 1], np.random.default_rng(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[1], other[1])
    assert first[0].shape == (3, 128, 128, 2) and first[1].shape == (3, 8)


def test_a_small_image_still_gives_pairs_and_a_too_small_one_is_refused():
    pair = sample_moved_pair(_texture(130, 140), np.random.default_rng(0))
    assert pair.patch_b.shape == (128, 128)
    with pytest.raises(ValueError, match="smaller than the 128 px patch"):
        sample_moved_pair(_texture(100, 140), np.random.default_rng(0))


@pytest.mark.parametrize("field,value", [("max_rotation", -1), ("min_scale", 0), ("min_scale", 1.5),
                                         ("max_scale", 0.9), ("max_tilt", 90), ("translation", 2)])
def test_bad_motion_ranges_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        Motion(**{field: value})


def test_shading_vignetting_and_jpeg_have_their_formulas():
    flat = np.full((9, 9), 100.0, np.float32)
    shaded = photometric.shade(flat, 0.4, 0.0)  # left to right
    assert np.allclose(shaded[:, 0], 60.0) and np.allclose(shaded[:, -1], 140.0) and np.allclose(shaded[:, 4], 100.0)
    vignetted = photometric.vignette(flat, 0.3)
    assert np.isclose(vignetted[4, 4], 100.0) and np.allclose(vignetted[[0, 0, -1, -1], [0, -1, 0, -1]], 70.0)
    image = _texture(64, 64).astype(np.float32)
    compressed = photometric.compress_jpeg(image, 30)
    error = np.abs(compressed - image)
    assert compressed.shape == image.shape and 0 < error.mean() < 5


def test_the_default_augmentation_draws_as_before_and_real_pairs_draw_more():
    patch = _texture(32, 32)
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    augment_patch(patch, rng, DEFAULT_AUGMENTATION)
    reference.random(5), reference.random(5), reference.standard_normal(patch.shape, dtype=np.float32)
    assert rng.random() == reference.random()  # the same stream: the shipped model's pairs are unchanged

    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    changed = augment_patch(patch, rng, REAL_PAIR_AUGMENTATION)
    reference.random(5), reference.random(5), reference.random(3), reference.random(4)
    reference.standard_normal(patch.shape, dtype=np.float32)
    assert rng.random() == reference.random()
    assert changed.dtype == np.uint8 and changed.shape == patch.shape


def test_each_real_pair_change_is_applied_when_on():
    patch = _texture(32, 32)
    only = dict(probability=1.0, brightness=0, contrast=1, gamma=1, noise=0, blur=0)
    for field, value in (("gradient", 0.5), ("vignetting", 0.5), ("jpeg", 10)):
        changed = augment_patch(patch, np.random.default_rng(0), Augmentation(**only, **{field: value}))
        assert not np.array_equal(changed, patch), field
    assert np.array_equal(augment_patch(patch, np.random.default_rng(0), Augmentation(**only)), patch)
    with pytest.raises(ValueError, match="jpeg"):
        Augmentation(jpeg=99)
    with pytest.raises(ValueError, match="vignetting"):
        Augmentation(vignetting=1.0)


def test_the_large_motion_preset_feeds_moved_pairs_to_the_model():
    from hnet_keras.training.presets import get_preset
    from hnet_keras.training.run import on_the_fly

    preset = get_preset("large_motion", batch_size=4)
    images = [_texture(seed=seed) for seed in range(3)]
    dataset = on_the_fly(preset, None, 2, seed=0, prepared=images)
    x, y = dataset[0]
    assert x.shape == (4, 64, 64, 2) and y.shape == (4, 8)
    assert np.abs(y).max() > 1.0  # beyond DeTone's rho: the motion is large
    assert dataset.motion is LARGE_MOTION and dataset.augmentation is REAL_PAIR_AUGMENTATION
    x_again, y_again = on_the_fly(preset, None, 2, seed=0, prepared=images)[0]
    assert np.array_equal(x, x_again) and np.array_equal(y, y_again)
    with pytest.raises(ValueError, match="motion"):
        get_preset("large_motion", motion="huge")
