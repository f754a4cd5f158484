"""Losses and metrics against hand-computed values, and their serialization."""

import keras
import numpy as np
import pytest

from hnet_keras.geometry import mean_corner_error
from hnet_keras.nets.losses import MACE, euclidean_l2
from hnet_keras.nets.losses import _mace as mace  # the per-sample values behind MACE
from hnet_keras.nets.losses import _mace_from_bins as mace_from_bins
from hnet_keras.nets.targets import bin_centres, offsets_to_bins

# Corner errors of 5, 0, 10 and 1 pixels: MACE = 16 / 4 = 4.
PIXEL_ERRORS = np.array([[3, 4, 0, 0, -6, 8, 1, 0]], np.float64)


def as_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value), np.float64)


def test_euclidean_l2_known_values():
    y_true = np.zeros((3, 8), np.float32)
    y_pred = np.array([[3, 4, 0, 0, 0, 0, 0, 0], [1] * 8, [0] * 8], np.float32)
    values = as_numpy(euclidean_l2(y_true, y_pred))
    assert values.shape == (3,)
    np.testing.assert_allclose(values, [5.0, np.sqrt(8.0), 0.0], atol=1e-5)


def test_euclidean_l2_is_symmetric_and_per_sample():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    np.testing.assert_allclose(as_numpy(euclidean_l2(a, b)), np.linalg.norm(a - b, axis=1), rtol=1e-5)
    np.testing.assert_allclose(as_numpy(euclidean_l2(a, b)), as_numpy(euclidean_l2(b, a)), rtol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="gradient taken with tf.GradientTape")
def test_euclidean_l2_gradient_is_finite_at_a_perfect_prediction():
    import tensorflow as tf

    y_pred = tf.Variable(np.full((2, 8), 0.25, np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(euclidean_l2(np.full((2, 8), 0.25, np.float32), y_pred))
    assert np.all(np.isfinite(tape.gradient(loss, y_pred).numpy()))


@pytest.mark.parametrize("rho", [32, 16])
def test_mace_known_value_in_pixels(rho):
    y_true = np.zeros((1, 8), np.float32)
    y_pred = (PIXEL_ERRORS / rho).astype(np.float32)
    np.testing.assert_allclose(as_numpy(mace(y_true, y_pred, rho=rho)), [4.0], rtol=1e-6)


def test_mace_matches_geometry_on_random_offsets():
    rng = np.random.default_rng(1)
    true = rng.integers(-32, 33, (64, 8))
    pred = true + rng.normal(0, 5, (64, 8))
    values = as_numpy(mace(true / 32, (pred / 32).astype(np.float32), rho=32))
    assert values.shape == (64,)
    assert np.mean(values) == pytest.approx(mean_corner_error(true, pred), rel=1e-5)


def test_identity_mace_of_the_paper_protocol_is_about_24_9_px():
    rng = np.random.default_rng(2)
    true = rng.integers(-32, 33, (20000, 8))
    identity = np.mean(as_numpy(mace(true / 32, np.zeros((20000, 8), np.float32), rho=32)))
    assert identity == pytest.approx(24.9, abs=0.2)


def test_mace_from_bins_decodes_one_hot_to_bin_centres():
    centres = bin_centres(32, 21)
    true = np.zeros(8)
    pred = np.array([centres[11], centres[12], 0, 0, 0, 0, 0, 0])  # 3.2 and 6.4 px
    y_true, y_pred = offsets_to_bins(true[None], 32), offsets_to_bins(pred[None], 32)
    expected = np.hypot(3.2, 6.4) / 4
    np.testing.assert_allclose(as_numpy(mace_from_bins(y_true, y_pred, rho=32)), [expected], rtol=1e-5)


def test_mace_metric_averages_over_samples_and_round_trips_its_config():
    metric = MACE(16)
    assert metric.name == "mace"
    y_true = np.zeros((2, 8), np.float32)
    metric.update_state(y_true, np.stack([PIXEL_ERRORS[0] / 16, np.zeros(8)]).astype(np.float32))
    assert float(metric.result()) == pytest.approx(2.0, rel=1e-6)
    clone = MACE.from_config(metric.get_config())
    assert clone.rho == 16 and clone.from_bins is False and clone.name == "mace"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric), safe_mode=True)
    assert isinstance(restored, MACE) and restored.rho == 16


def test_compiled_losses_reload_in_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)])
    model.compile(optimizer="sgd", loss=euclidean_l2, metrics=[MACE(16)])
    x = np.random.default_rng(3).normal(size=(4, 8)).astype(np.float32)
    model.evaluate(x, x, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert restored.loss is euclidean_l2
    results = restored.evaluate(x, x, verbose=0, return_dict=True)
    assert set(results) == {"loss", "mace"}
    flat = [m for top in restored.metrics for m in getattr(top, "metrics", [top])]
    assert [m.rho for m in flat if isinstance(m, MACE)] == [16]
