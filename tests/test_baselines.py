import cv2
import numpy as np
import pytest

from hnet_keras.estimators import baselines
from hnet_keras.estimators.contract import EstimationFailed, Estimate, check_homography
from hnet_keras.estimators.methods import BASELINES, DEFAULT_BASELINES, get_method
from hnet_keras.geometry import corner_errors, offsets_to_homography, warp_points
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.data.synthesis import SynthesisConfig, TRAIN_PROTOCOL, prepare_image, sample_pair


def _photo(name):
    (path,) = [p for p in embedded_photo_paths("all") if p.name == name]
    return read_grayscale(path)[0]


@pytest.fixture(scope="module")
def gravel():
    return prepare_image(_photo("gravel.png"), TRAIN_PROTOCOL)


def _pairs(image, count, seed, config=TRAIN_PROTOCOL):
    rng = np.random.default_rng(seed)
    return [sample_pair(image, rng, config) for _ in range(count)]


def identity_expectation(rho):
    """E||(dx, dy)|| for dx, dy iid uniform integers in [-rho, rho], and its standard deviation."""
    values = np.arange(-rho, rho + 1, dtype=np.float64)
    norms = np.sqrt(values[:, None] ** 2 + values[None, :] ** 2)
    mean = norms.mean()
    return mean, np.sqrt((norms**2).mean() - mean**2)


def test_identity_mace_matches_the_closed_form(gravel):
    rho, count = TRAIN_PROTOCOL.rho, 600
    expected, std = identity_expectation(rho)
    # the exact expectation for rho = 32, summed over the 65 x 65 grid
    assert expected == pytest.approx(24.8665, abs=1e-3)
    identity = get_method("identity")
    pairs = _pairs(gravel, count, seed=3)
    errors = np.array([corner_errors(p.offsets, identity(p.patch_a, p.patch_b).offsets) for p in pairs])
    standard_error = std / np.sqrt(errors.size)  # 4 independent corners per pair
    assert abs(errors.mean() - expected) < 4 * standard_error
    # tight enough to tell apart an expectation 1 px off
    assert 4 * standard_error < 1.0


def test_sift_ransac_is_near_exact_on_a_textured_pair(gravel):
    sift = get_method("sift_ransac")
    pairs = _pairs(gravel, 8, seed=0)
    errors = []
    for pair in pairs:
        estimate = sift(pair.patch_a, pair.patch_b)
        assert isinstance(estimate, Estimate) and estimate.offsets.shape == (8,) and estimate.ms > 0
        errors.append(corner_errors(pair.offsets, estimate.offsets).mean())
    errors = np.array(errors)
    identity = np.array([corner_errors(p.offsets, np.zeros(8)).mean() for p in pairs])
    assert np.median(errors) < 1.0
    assert np.sum(errors < 1.0) >= 6
    assert np.all(identity[errors < 1.0] > 5)  # the pairs really moved


@pytest.mark.parametrize("name", ["orb_ransac", "sift_magsac", "ecc"])
def test_other_methods_recover_a_moderate_pair(gravel, name):
    # rho 12: small enough for ECC's basin of convergence and ORB's matching
    config = SynthesisConfig((320, 240), 128, 12)
    pairs = _pairs(gravel, 6, seed=1, config=config)
    method = get_method(name)
    errors = np.array([corner_errors(p.offsets, method(p.patch_a, p.patch_b).offsets).mean() for p in pairs])
    identity = np.array([corner_errors(p.offsets, np.zeros(8)).mean() for p in pairs])
    assert np.median(errors) < 1.5, errors
    assert np.median(identity) > 5


def test_ecc_direction_on_a_synthetic_pair():
    # ECC's warp maps template to input coordinates; a wrong direction gives about twice
    # the offsets as error, so near-zero error pins the direction down
    image = prepare_image(_photo("camera.png"), TRAIN_PROTOCOL)
    config = SynthesisConfig((320, 240), 128, 8)
    pair = _pairs(image, 1, seed=5, config=config)[0]
    ecc = get_method("ecc")
    estimate = ecc(pair.patch_a, pair.patch_b)
    assert not estimate.failed
    assert corner_errors(pair.offsets, estimate.offsets).mean() < 0.5
    assert corner_errors(pair.offsets, np.zeros(8)).mean() > 3
    # the raw warp is H_ab itself: it maps A's content to where B shows it
    warp = ecc.homography(pair.patch_a, pair.patch_b)
    true = offsets_to_homography(pair.offsets, 128)
    assert np.allclose(warp / warp[2, 2], true / true[2, 2], atol=0.02)


def test_ecc_aligns_images_of_different_sizes():
    # whole-image pairs differ in size: refine_homography refuses them, the ecc baseline must not
    image = _photo("camera.png")
    crop = image[12:-30, 7:-21]  # B(x) = A(x + (7, 12)), so H_ab moves every point by (-7, -12)
    warp = get_method("ecc").homography(image, crop)
    corners = np.array([[0, 0], [511, 0], [511, 511], [0, 511]], np.float64)
    assert np.abs(warp_points(warp, corners) - (corners - [7, 12])).max() < 0.05


def test_feature_direction_swapping_the_patches_inverts_the_estimate(gravel):
    pair = _pairs(gravel, 1, seed=0)[0]
    sift = get_method("sift_ransac")
    forward = sift(pair.patch_a, pair.patch_b)
    backward = sift(pair.patch_b, pair.patch_a)
    assert corner_errors(pair.offsets, forward.offsets).mean() < 1.0
    assert corner_errors(pair.offsets, backward.offsets).mean() > 5.0


def test_blank_patches_fail_cleanly_with_their_reason():
    blank = np.full((128, 128), 128, np.uint8)
    for name in DEFAULT_BASELINES:
        if name == "identity":
            continue
        method = get_method(name)
        estimate = method(blank, blank)
        assert estimate.failed, name
        assert np.array_equal(estimate.offsets, np.zeros(8)) and estimate.reason, name
    assert get_method("sift_ransac")(blank, blank).reason == "too few keypoints"


@pytest.mark.parametrize(
    "returned, reason",
    [
        (np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]]), "singular homography"),
        (np.full((3, 3), np.nan), "non-finite homography"),
        (None, "no homography"),
        (np.array([[1.0, 0, 0], [0, 1e-9, 0], [0, 0, 1]]), "singular homography"),
    ],
)
def test_bad_ransac_output_falls_back_to_identity(gravel, monkeypatch, returned, reason):
    def fake_find_homography(*args, **kwargs):
        return (None, None) if returned is None else (returned, np.ones((10, 1), np.uint8))

    monkeypatch.setattr(cv2, "findHomography", fake_find_homography)
    method = get_method("sift_ransac")
    pairs = _pairs(gravel, 3, seed=0)
    results = [method(p.patch_a, p.patch_b) for p in pairs]
    assert all(r.failed and np.array_equal(r.offsets, np.zeros(8)) and r.reason == reason for r in results)
    offsets, failed, ms, reasons = method.estimate_batch(np.stack([p.stacked for p in pairs]))
    assert failed.all() and not offsets.any() and (ms > 0).all() and reasons == [reason] * 3


def test_ecc_not_converging_is_a_failure(gravel, monkeypatch):
    def raising(*args, **kwargs):
        raise cv2.error("StsNoConv: the algorithm stopped before its convergence")

    monkeypatch.setattr(cv2, "findTransformECC", raising)
    pair = _pairs(gravel, 1, seed=0)[0]
    method = get_method("ecc")
    estimate = method(pair.patch_a, pair.patch_b)
    assert estimate.failed and estimate.reason == "ECC did not converge"


def test_check_homography():
    good = offsets_to_homography(np.array([3, -2, 5, 1, -4, 6, 2, -3]), 128)
    checked = check_homography(2.0 * good, 128)
    assert checked[2, 2] == pytest.approx(1.0) and np.allclose(checked, good / good[2, 2])
    with pytest.raises(EstimationFailed, match="ill-conditioned"):
        check_homography(np.diag([1e4, 1e-4, 1.0]), 128)  # det 1, cond 1e8
    with pytest.raises(EstimationFailed, match="too far"):
        check_homography(np.array([[1.0, 0, 500], [0, 1, 0], [0, 0, 1]]), 128)
    with pytest.raises(EstimationFailed, match="infinity|too far"):
        check_homography(np.array([[1.0, 0, 0], [0, 1, 0], [-1 / 128, 0, 1]]), 128)


def test_registry_and_errors():
    assert set(BASELINES) == {"identity", "orb_ransac", "sift_ransac", "akaze_ransac", "sift_magsac", "ecc"}
    assert "identity" in DEFAULT_BASELINES and "sift_ransac" in DEFAULT_BASELINES
    with pytest.raises(ValueError, match="unknown method 'surf'"):
        get_method("surf")
    with pytest.raises(ValueError, match="needs a model"):
        get_method("network")
    with pytest.raises(ValueError, match="same size|square"):
        get_method("identity")(np.zeros((8, 8), np.uint8), np.zeros((9, 9), np.uint8))
    if baselines.akaze_available():
        assert "akaze_ransac" in DEFAULT_BASELINES
        get_method("akaze_ransac")
    else:
        assert "akaze_ransac" not in DEFAULT_BASELINES
        with pytest.raises(ValueError, match="contrib"):
            get_method("akaze_ransac")
    # the registry holds ready methods; get_method gives fresh copies with their own detectors
    blank = np.zeros((64, 64), np.uint8)
    assert BASELINES["sift_ransac"](blank, blank).failed
    fresh = get_method("sift_ransac")
    assert fresh is not BASELINES["sift_ransac"] and fresh(blank, blank).reason == "too few keypoints"


def test_estimates_are_deterministic(gravel):
    pairs = np.stack([p.stacked for p in _pairs(gravel, 4, seed=2)])
    for name in ("orb_ransac", "sift_ransac", "sift_magsac", "ecc"):
        first = get_method(name).estimate_batch(pairs).offsets
        second = get_method(name).estimate_batch(pairs).offsets
        assert np.array_equal(first, second), name


def test_the_network_method_with_a_zero_model_is_the_identity(gravel):
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 2)), keras.layers.Flatten(), keras.layers.Dense(8, kernel_initializer="zeros")]
    )
    with pytest.raises(ValueError, match="rho"):
        get_method("network", model=model)  # a model object never gets a guessed rho
    method = get_method("network", model=model, rho=16)
    pairs = np.stack([p.stacked for p in _pairs(gravel, 5, seed=0)])
    offsets, failed, ms, reasons = method.estimate_batch(pairs)
    assert offsets.shape == (5, 8) and np.allclose(offsets, 0) and not failed.any() and (ms > 0).all()
    assert reasons == [None] * 5
    single = method(pairs[0, ..., 0], pairs[0, ..., 1])
    assert np.allclose(single.offsets, 0) and not single.failed
