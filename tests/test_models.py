"""Model architectures, the classification helpers, and the prediction API."""

import socket

import cv2
import keras
import numpy as np
import pytest

from hnet_keras.geometry import offsets_to_homography, patch_corners, warp_points
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.nets.models import WeightsUnavailable, build_model
from hnet_keras.nets.targets import bin_centres, corner_confidence, decode_bins, offsets_to_bins, unreachable_bins
from hnet_keras.estimators.predict import estimate_homography, predict_offsets

PAPER_PARAMETERS = 34_195_336


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_paper_regression_model_matches_the_paper():
    model = build_model("regression")
    assert model.count_params() == PAPER_PARAMETERS
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [1024, 8] and dense[0].kernel.shape == (16 * 16 * 128, 1024)
    assert model.input_shape == (None, 128, 128, 2) and model.output_shape == (None, 8)

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 64, 64, 64, 128, 128, 128, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    types = layer_types(model)
    assert types.count("BatchNormalization") == 8 and types.count("ReLU") == 8
    # Each conv is followed by BatchNorm then ReLU; pools come after conv 2, 4 and 6.
    conv_at = [i for i, t in enumerate(types) if t == "Conv2D"]
    for i in conv_at:
        assert types[i + 1 : i + 3] == ["BatchNormalization", "ReLU"]
    pools = [sum(1 for t in types[:i] if t == "Conv2D") for i, t in enumerate(types) if t == "MaxPooling2D"]
    assert pools == [2, 4, 6]
    assert types[-5:] == ["Flatten", "Dropout", "Dense", "Dropout", "Dense"]
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.5, 0.5]
    fc1, out = model.layers[-3], model.layers[-1]
    assert fc1.units == 1024 and fc1.activation is keras.activations.relu
    assert out.units == 8


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def test_no_model_uses_lambda_layers():
    for kind, options in [("regression", {}), ("classification", {}), ("mobilenet", {"input_size": 32, "width": 0.35})]:
        model = build_model(kind, **options)
        names = {type(layer).__name__ for layer in _all_layers(model)}
        assert "Lambda" not in names, kind


def test_ablation_options_remove_layers():
    full = build_model("regression", input_size=64, width=0.25)
    no_dropout = build_model("regression", input_size=64, width=0.25, dropout=False)
    no_bn = build_model("regression", input_size=64, width=0.25, batchnorm=False)
    assert "Dropout" in layer_types(full) and "Dropout" not in layer_types(no_dropout)
    assert "BatchNormalization" in layer_types(full) and "BatchNormalization" not in layer_types(no_bn)
    assert no_dropout.count_params() == full.count_params()
    assert full.count_params() - no_bn.count_params() == 4 * (4 * 16 + 4 * 32)


def test_width_and_input_size_scale_the_model():
    model = build_model("regression", input_size=64, width=0.25)
    assert model.input_shape == (None, 64, 64, 2)
    assert model.get_layer("conv1").filters == 16 and model.get_layer("conv8").filters == 32
    assert model.get_layer("fc1").units == 256
    assert model.count_params() < PAPER_PARAMETERS / 50


@pytest.mark.parametrize("options", [{"input_size": 60}, {"width": 0}, {"dropout": 1.5}])
def test_bad_options_are_rejected(options):
    with pytest.raises(ValueError):
        build_model("regression", **options)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        build_model("vgg")


def test_classification_model_outputs_a_distribution_per_coordinate():
    model = build_model("classification", input_size=32, width=0.125)
    assert model.output_shape == (None, 8, 21)
    assert isinstance(model.layers[-1], keras.layers.Softmax)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 2)).astype(np.float32)
    probabilities = model.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    confidence = corner_confidence(probabilities)
    assert confidence.shape == (3, 4) and np.all((confidence > 0) & (confidence <= 1))


def test_bins_round_trip_exactly_at_bin_centres():
    centres = bin_centres(32, 21)
    assert centres[0] == -32 and centres[-1] == 32 and centres[10] == 0
    offsets = np.stack([np.roll(centres, k)[:8] for k in range(21)])
    one_hot = offsets_to_bins(offsets, rho=32)
    assert one_hot.shape == (21, 8, 21) and one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot.sum(axis=-1), 1.0)
    assert np.array_equal(decode_bins(one_hot, 32, "expectation"), offsets)
    assert np.array_equal(decode_bins(one_hot, 32, "argmax"), offsets)
    indices = offsets_to_bins(offsets, rho=32, one_hot=False)
    assert np.array_equal(centres[indices], offsets)


def test_bins_quantize_to_the_nearest_centre_and_clip():
    indices = offsets_to_bins([[0, 1, 2, -2, 32, -32, 40, -40]], rho=32, one_hot=False)
    assert indices.tolist() == [[10, 10, 11, 9, 20, 0, 20, 0]]


def test_unreachable_bins_are_those_no_whole_pixel_offset_lands_in():
    # rho 8, 21 bins 0.8 px apart: offsets -8..8 never land in bins 3, 7, 13, 17.
    assert unreachable_bins(8, 21) == [3, 7, 13, 17]
    hit = set(offsets_to_bins(np.arange(-8, 9), 8, 21, one_hot=False).tolist())
    assert hit.isdisjoint(unreachable_bins(8, 21)) and len(hit) == 17
    assert unreachable_bins(8, 17) == [] and unreachable_bins(32, 21) == []


def test_decode_bins_expectation_and_argmax_differ_on_soft_distributions():
    probabilities = np.zeros((1, 8, 21))
    probabilities[..., 10], probabilities[..., 11] = 0.75, 0.25
    np.testing.assert_allclose(decode_bins(probabilities, 32), 0.25 * 3.2)
    np.testing.assert_array_equal(decode_bins(probabilities, 32, "argmax"), 0.0)
    with pytest.raises(ValueError, match="method"):
        decode_bins(probabilities, 32, "mode")


def test_corner_confidence_is_the_product_of_the_coordinate_peaks():
    certain = offsets_to_bins(np.zeros((1, 8)), 32)
    np.testing.assert_array_equal(corner_confidence(certain), 1.0)
    uniform = np.full((1, 8, 21), 1 / 21)
    np.testing.assert_allclose(corner_confidence(uniform), 1 / 21**2)
    mixed = certain.astype(np.float64).copy()
    mixed[0, 3] = 0.0
    mixed[0, 3, 10], mixed[0, 3, 12] = 0.6, 0.4  # y of the top-right corner
    np.testing.assert_allclose(corner_confidence(mixed), [[1.0, 0.6, 1.0, 1.0]])


def test_mobilenet_builds_and_predicts(tmp_path):
    model = build_model("mobilenet", input_size=32, width=0.35, dense_units=16)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 2)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == (2, 8)
    # The frozen 1x1 mixer makes the pair one RGB image: A, B and their mean.
    rgb = keras.ops.convert_to_numpy(model.get_layer("pair_rgb")(x))
    np.testing.assert_allclose(rgb, np.stack([x[..., 0], x[..., 1], x.mean(axis=-1)], axis=-1), atol=1e-6)
    assert not model.get_layer("pair_rgb").trainable
    # The trunk: MobileNetV2 to stride 4, its BatchNorm frozen (inference mode).
    (trunk,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert trunk.output.shape[1:3] == (8, 8)
    norms = [layer for layer in trunk.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)
    # The untrained model is the identity: its output layer starts at zero.
    np.testing.assert_array_equal(model.predict(x, verbose=0), 0.0)
    model.save(tmp_path / "mobilenet.keras")
    restored = keras.saving.load_model(tmp_path / "mobilenet.keras", safe_mode=True)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mobilenet_imagenet_weights_offline_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("[Errno -2] the network is off in this test")

    monkeypatch.setattr(socket, "create_connection", offline)  # every HTTP(S) download goes through it
    with pytest.raises(WeightsUnavailable, match="MobileNetV2 imagenet weights .* could not be downloaded; .*weights=None.*URL fetch failure"):
        build_model("mobilenet", input_size=32, width=0.35, weights="imagenet")


# Prediction API, with small models whose output is known.


def mean_intensity_model(size):
    """Outputs [mean of channel A, mean of channel B, 0, ...] of the normalized input."""
    model = keras.Sequential([keras.Input((size, size, 2)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8)])
    kernel = np.zeros((2, 8), np.float32)
    kernel[0, 0] = kernel[1, 1] = 1.0
    model.layers[-1].set_weights([kernel, np.zeros(8, np.float32)])
    return model


def constant_model(size, normalized_offsets):
    """A regression model that always outputs ``normalized_offsets``."""
    model = keras.Sequential([keras.Input((size, size, 2)), keras.layers.Flatten(), keras.layers.Dense(8)])
    model.layers[-1].set_weights([np.zeros((size * size * 2, 8), np.float32), np.asarray(normalized_offsets, np.float32)])
    return model


def test_predict_offsets_resizes_normalizes_and_scales():
    model = mean_intensity_model(32)
    pairs = np.empty((2, 64, 64, 2), np.uint8)
    pairs[0, ..., 0], pairs[0, ..., 1] = 255, 0
    pairs[1, ..., 0], pairs[1, ..., 1] = 191, 64
    offsets = predict_offsets(model, pairs, rho=8)
    assert offsets.shape == (2, 8) and offsets.dtype == np.float64
    normalized = (np.array([[255, 0], [191, 64]]) - 127.5) / 127.5
    np.testing.assert_allclose(offsets[:, :2], normalized * 8 * (64 / 32), rtol=1e-5)
    np.testing.assert_allclose(offsets[:, 2:], 0.0, atol=1e-6)
    # The same pairs at the model's size give offsets half as large.
    np.testing.assert_allclose(predict_offsets(model, pairs[:, ::2, ::2], rho=8), offsets / 2, rtol=1e-5)


def test_predict_offsets_decodes_classification_by_expectation():
    size, bins = 32, 21
    logits = np.full((8, bins), -50.0, np.float32)
    logits[np.arange(8), [0, 5, 10, 15, 20, 11, 9, 10]] = 50.0
    model = keras.Sequential([
        keras.Input((size, size, 2)), keras.layers.Flatten(), keras.layers.Dense(8 * bins),
        keras.layers.Reshape((8, bins)), keras.layers.Softmax(axis=-1),
    ])
    model.layers[1].set_weights([np.zeros((size * size * 2, 8 * bins), np.float32), logits.reshape(-1)])
    pairs = np.zeros((1, 48, 48, 2), np.uint8)
    expected = bin_centres(16, bins)[[0, 5, 10, 15, 20, 11, 9, 10]] * 48 / 32
    np.testing.assert_allclose(predict_offsets(model, pairs, rho=16)[0], expected, atol=1e-4)


def test_predict_offsets_rejects_bad_pairs():
    model = constant_model(32, np.zeros(8))
    with pytest.raises(ValueError, match="uint8"):
        predict_offsets(model, np.zeros((1, 32, 32, 2), np.float32), rho=8)
    with pytest.raises(ValueError, match="uint8"):
        predict_offsets(model, np.zeros((1, 32, 30, 2), np.uint8), rho=8)


def test_coarse_homography_reprojects_the_corners_of_the_images():
    """The network's offsets on the central patch become H_ab of the whole images."""
    from hnet_keras.estimators.predict import COARSE_PATCH, COARSE_SIDE, coarse_homography

    gray, _ = read_grayscale(embedded_photo_paths("train")[0])
    width, height, size, rho = 200, 150, 32, 8
    image_a = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
    model_offsets = np.array([3, -2, -4, 1, 2, 5, -1, -3], np.float64)  # what the model answers, at 32 px
    # the central COARSE_PATCH square of the images scaled to a short side of COARSE_SIDE
    scale = COARSE_SIDE / height
    left, top = (round(width * scale) - COARSE_PATCH) // 2, (COARSE_SIDE - COARSE_PATCH) // 2
    to_patch = np.array([[round(width * scale) / width, 0, -left], [0, COARSE_SIDE / height, -top], [0, 0, 1.0]])
    patch_offsets = model_offsets * COARSE_PATCH / size
    h_true = np.linalg.inv(to_patch) @ offsets_to_homography(patch_offsets, COARSE_PATCH) @ to_patch
    image_b = cv2.warpPerspective(image_a, h_true, (width, height))
    model = constant_model(size, model_offsets / rho)

    h_ab = coarse_homography(model, image_a, image_b, rho=rho, passes=1)
    # H_ab maps the patch's perturbed corners (in image pixels) onto its corners, and A onto B.
    corners = warp_points(np.linalg.inv(to_patch), patch_corners(COARSE_PATCH))
    perturbed = warp_points(np.linalg.inv(to_patch), patch_corners(COARSE_PATCH) + patch_offsets.reshape(4, 2))
    np.testing.assert_allclose(warp_points(h_ab, perturbed), corners, atol=1e-3)
    inner = np.array([[50.0, 40.0], [120.0, 90.0], [160.0, 30.0]])
    np.testing.assert_allclose(warp_points(h_ab, inner), warp_points(h_true, inner), atol=1e-3)
    warped = cv2.warpPerspective(image_a, h_ab, (width, height))
    assert np.mean(np.abs(warped.astype(int) - image_b.astype(int))) < 1.0
    unrefined = estimate_homography(model, cv2.cvtColor(image_a, cv2.COLOR_GRAY2BGR), image_b, rho=rho, refine=False)
    assert unrefined.shape == (3, 3) and np.all(np.isfinite(unrefined))


def test_estimate_homography_rejects_images_that_are_not_uint8():
    model = constant_model(32, np.zeros(8))
    with pytest.raises(ValueError, match="uint8"):
        estimate_homography(model, np.zeros((50, 60), np.float32), np.zeros((50, 60), np.uint8), rho=8)


def test_outputs_become_pixels_only_with_a_given_rho():
    from hnet_keras.nets.targets import outputs_to_offsets

    steps = np.stack([np.full((2, 8), 0.1), np.full((2, 8), 0.5)], axis=1)  # (B, K, 8): the last step counts
    np.testing.assert_allclose(outputs_to_offsets(steps, 16), 8.0)
    np.testing.assert_allclose(outputs_to_offsets(np.full((2, 8), 0.25), 16), 4.0)
    probabilities = offsets_to_bins(np.full((1, 8), 3.2), 32)  # (B, 8, 21): decoded by expectation
    np.testing.assert_allclose(outputs_to_offsets(probabilities, 32), 3.2)
    model = constant_model(32, np.zeros(8))
    for bad in (None, 0, -8):
        with pytest.raises(ValueError, match="rho must be a finite number"):
            predict_offsets(model, np.zeros((1, 32, 32, 2), np.uint8), rho=bad)
