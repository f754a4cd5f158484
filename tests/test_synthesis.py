import cv2
import numpy as np
import pytest

from hnet_keras.geometry import offsets_to_homography
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.data.synthesis import PAPER_TEST_PROTOCOL, SynthesisConfig, prepare_image, sample_pair


@pytest.fixture(scope="module")
def photo():
    gray, _ = read_grayscale(embedded_photo_paths()[0])
    return gray


def test_prepare_scales_and_centre_crops(photo):
    prepared = prepare_image(photo)
    assert prepared.shape == (240, 320) and prepared.dtype == np.uint8
    # a wide synthetic image keeps its centre: the vertical stripe in the middle survives
    wide = np.zeros((300, 800), np.uint8)
    wide[:, 395:405] = 255
    cropped = prepare_image(wide)
    assert cropped.shape == (240, 320)
    assert cropped[:, 155:165].mean() > 200 and cropped[:, :100].max() == 0


def test_offsets_are_integers_within_rho_and_corners_inside(photo):
    config = SynthesisConfig((320, 240), 128, 32)
    prepared = prepare_image(photo, config)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(300):
        pair = sample_pair(prepared, rng, config)
        assert pair.offsets.dtype == np.int64
        seen.append(pair.offsets)
        _, perturbed = pair.corners()
        assert perturbed.min() >= 0 and perturbed[:, 0].max() <= 320 and perturbed[:, 1].max() <= 240
    seen = np.array(seen)
    assert seen.min() == -32 and seen.max() == 32  # inclusive range is reached


def test_window_warp_equals_full_warp_then_crop(photo):
    for config in (SynthesisConfig(), PAPER_TEST_PROTOCOL):
        prepared = prepare_image(photo, config)
        for seed in range(10):
            window = sample_pair(prepared, np.random.default_rng(seed), config, warp="window")
            full = sample_pair(prepared, np.random.default_rng(seed), config, warp="full")
            np.testing.assert_array_equal(window.offsets, full.offsets)
            difference = np.abs(window.patch_b.astype(int) - full.patch_b.astype(int))
            assert difference.max() <= 1


def test_patch_a_warped_by_stored_offsets_reproduces_patch_b(photo):
    config = SynthesisConfig()
    prepared = prepare_image(photo, config)
    rng = np.random.default_rng(5)
    size = config.patch_size
    for _ in range(5):
        pair = sample_pair(prepared, rng, config)
        h_ab = offsets_to_homography(pair.offsets, size=size)
        reproduced = cv2.warpPerspective(pair.patch_a, h_ab, (size, size), flags=cv2.INTER_LINEAR)
        # interior: pixels of B whose source lies well inside patch A
        valid = cv2.warpPerspective(np.ones((size, size), np.uint8), h_ab, (size, size), flags=cv2.INTER_NEAREST)
        valid = cv2.erode(valid, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        assert valid.sum() > 0.2 * size * size
        error = np.abs(reproduced.astype(int) - pair.patch_b.astype(int))[valid]
        assert error.max() <= 1
        # and the wrong direction does not reproduce it
        wrong = cv2.warpPerspective(pair.patch_a, np.linalg.inv(h_ab), (size, size))
        assert np.abs(wrong.astype(int) - pair.patch_b.astype(int))[valid].mean() > 3 * max(error.mean(), 0.5)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(image_size=(320, 240), patch_size=128, rho=64), "too small for patch_size 128 with rho 64"),
        (dict(image_size=(100, 240), patch_size=64, rho=32), "image_size 100x240"),
        (dict(patch_size=128, rho=-1), "rho must be >= 0"),
    ],
)
def test_inconsistent_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynthesisConfig(**kwargs)


def test_too_small_image_is_refused():
    with pytest.raises(ValueError, match="too small"):
        prepare_image(np.zeros((100, 150), np.uint8))
