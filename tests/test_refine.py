"""ECC refinement from an estimate: sub-pixel on real photo pairs, guarded when it cannot help."""

import dataclasses

import cv2
import numpy as np
import pytest

from hnet_keras.geometry import corner_errors, homography_to_offsets, offsets_to_homography
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.estimators.contract import EstimationFailed
from hnet_keras.estimators.refine import (FRAME_MARGIN, ECCSettings, align_images, alignment_score, image_texture,
                                          normalize_contrast, refine_homography)
from hnet_keras.geometry import patch_corners, warp_points
from hnet_keras.scoring.difficulty import class_pair
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


def test_local_contrast_ignores_a_smooth_gain_and_offset():
    image = read_grayscale(embedded_photo_paths("test")[0])[0][:200, :200].astype(np.float32)
    assert np.abs(normalize_contrast(np.full((64, 64), 200, np.uint8))).max() < 1e-3  # flat: nothing to amplify
    gain = np.linspace(0.5, 1.5, 200, dtype=np.float32)[None, :]  # shading across the image
    changed = np.clip(image * gain + 20, 0, 255)
    before, after = normalize_contrast(image)[20:-20, 20:-20], normalize_contrast(changed)[20:-20, 20:-20]
    assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.97
    assert np.corrcoef(image[20:-20, 20:-20].ravel(), changed[20:-20, 20:-20].ravel())[0, 1] < 0.97


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_images_align_through_shading_and_gamma(seed):
    """The illumination class at its hardest level: ECC on gray levels stays near a start 4-5 px off
    (or keeps the start), on local contrast it reaches sub-pixel."""
    image = read_grayscale(embedded_photo_paths("test")[0])[0]
    image = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
    image_b, h_ab = class_pair(image, "illumination", 3, np.random.default_rng(seed))
    corners = patch_corners((640, 480))
    moved = warp_points(np.linalg.inv(h_ab), corners) + np.random.default_rng(seed).uniform(-6, 6, (4, 2))
    start = np.linalg.inv(cv2.getPerspectiveTransform(np.float32(corners), np.float32(moved)))

    def error(settings):
        found, _ = align_images(image, image_b, start, settings)
        return np.linalg.norm(warp_points(found, corners) - warp_points(h_ab, corners), axis=-1).mean()

    plain = ECCSettings(levels=3, iterations=50, epsilon=1e-4)
    assert error(plain) > 3.0
    assert error(None) < 1.0  # the default: contrast_sigma=CONTRAST_SIGMA


@pytest.mark.parametrize("refined_score, expected", [(0.79, "refined"), (0.70, "start")])
def test_a_converged_refinement_is_kept_unless_clearly_outscored(monkeypatch, refined_score, expected):
    from hnet_keras.estimators import refine

    refined, start = np.diag([1.01, 1.0, 1.0]), np.diag([1.02, 1.0, 1.0])
    monkeypatch.setattr(refine, "refine_homography", lambda a, b, h, settings: refined)
    scores = {refined.tobytes(): refined_score, start.tobytes(): 0.80, np.eye(3).tobytes(): 0.0}
    monkeypatch.setattr(refine, "_filtered_score", lambda a, b, h: scores[np.asarray(h, np.float64).tobytes()])
    image = np.zeros((64, 64), np.uint8)
    found, details = refine.align_images(image, image, start)
    assert details["chosen"] == expected  # 0.01 under the start: within REFINED_MARGIN; 0.10 under: not
    np.testing.assert_array_equal(found, refined if expected == "refined" else start)


def _object_on_flat_background(seed):
    """A photo's 200x260 crop on a flat 640x480 background (a product shot), and its illumination pair
    at the hardest level: B's uncovered part is black, the only strong edge on the background."""
    photo = read_grayscale(embedded_photo_paths("test")[0])[0]
    image = np.full((480, 640), 180, np.uint8)
    image[110:370, 220:420] = cv2.resize(photo, (200, 260), interpolation=cv2.INTER_AREA)
    image_b, h_ab = class_pair(image, "illumination", 3, np.random.default_rng(seed))
    return image, image_b, h_ab


@pytest.mark.parametrize("seed", [2, 3])
def test_ecc_leaves_the_frame_where_b_ends_out(seed):
    """Where B's content ends, its local contrast has a strong edge A lacks; at the right alignment it
    lies along A's frame. With the whole template ECC is pulled 7-14 px off, without A's frame sub-pixel."""
    image, image_b, h_ab = _object_on_flat_background(seed)
    corners = patch_corners((640, 480))
    moved = warp_points(np.linalg.inv(h_ab), corners) + np.random.default_rng(seed).uniform(-6, 6, (4, 2))
    start = np.linalg.inv(cv2.getPerspectiveTransform(np.float32(corners), np.float32(moved)))
    settings = ECCSettings(levels=3, iterations=50, epsilon=1e-4, finest_iterations=10, contrast_sigma=8.0)

    def error(margin):
        found = refine_homography(image, image_b, start, dataclasses.replace(settings, template_margin=margin))
        return np.linalg.norm(warp_points(found, corners) - warp_points(h_ab, corners), axis=-1).mean()

    assert error(0) > 3.0
    assert error(FRAME_MARGIN) < 1.0
    found, details = align_images(image, image_b, start)  # the default leaves the frame out
    assert details["chosen"] == "refined"
    assert np.linalg.norm(warp_points(found, corners) - warp_points(h_ab, corners), axis=-1).mean() < 1.0


def test_the_alignment_score_leaves_the_frame_where_b_ends_out(monkeypatch):
    from hnet_keras.estimators import refine

    image, image_b, h_ab = _object_on_flat_background(2)
    assert alignment_score(image, image_b, h_ab) > 0.9
    monkeypatch.setattr(refine, "SCORE_MARGIN", 0)
    assert alignment_score(image, image_b, h_ab) < 0.7  # B's black edge counted against the truth
