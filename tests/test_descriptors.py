"""Dense descriptors: bilinear sampling, the InfoNCE loss, training pairs, training and resume, checkpoints."""

import json

import cv2
import keras
import numpy as np
import pytest
import skimage.data

from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.features import descriptors as dd


def linear_map(height=5, width=6):
    """A (1, h, w, 3) map whose cell (i, j) holds (j, i, 1): bilinear interpolation is exact on it."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([columns, rows, np.ones_like(rows)], -1)[None]


def test_bilinear_sampling_is_exact_on_known_values():
    maps = linear_map()
    points = np.array([[[3.5, 3.5], [11.5, 3.5], [7.5, 19.5], [10.0, 13.0], [30.25, 5.0]]], np.float32)
    got = np.asarray(dd.sample_bilinear(maps, points, normalize=False))
    u = (points[0, :, 0] - 3.5) / 8
    v = (points[0, :, 1] - 3.5) / 8
    np.testing.assert_allclose(got[0], np.stack([u, v, np.ones_like(u)], -1), atol=1e-5)
    # Cell centres give the cells' own values; points beyond the last centres take the border's.
    assert got[0, 1].tolist() == [1.0, 0.0, 1.0]
    outside = np.asarray(dd.sample_bilinear(maps, np.array([[[-20.0, 100.0], [1e4, -5.0]]], np.float32),
                                            normalize=False))
    np.testing.assert_allclose(outside[0], [[0, 4, 1], [5, 0, 1]], atol=1e-6)
    unit = np.asarray(dd.sample_bilinear(maps, points))
    np.testing.assert_allclose(np.linalg.norm(unit, axis=-1), 1.0, atol=1e-5)


def test_sampling_layer_matches_the_function_and_serializes():
    layer = dd.BilinearSample(normalize=False)
    maps, points = linear_map(), np.array([[[9.0, 12.0]]], np.float32)
    np.testing.assert_allclose(np.asarray(layer([maps, points])), dd.sample_bilinear(maps, points, normalize=False))
    assert dd.BilinearSample.from_config(layer.get_config()).normalize is False


def test_info_nce_is_low_for_matching_descriptors_and_high_for_swapped_ones():
    count, depth = 16, 16
    points = np.stack([np.arange(count) * 20.0, np.zeros(count)], -1)
    y_true = np.concatenate([points, np.ones((count, 1))], -1)[None].astype(np.float32)
    a = np.eye(count, depth, dtype=np.float32)
    perfect = float(np.asarray(dd.info_nce(y_true, np.concatenate([a, a], -1)[None]))[0])
    swapped = float(np.asarray(dd.info_nce(y_true, np.concatenate([a, a[::-1]], -1)[None]))[0])
    uniform = np.log(count)  # every similarity equal
    same = np.full((count, depth), 0.25, np.float32)
    flat = float(np.asarray(dd.info_nce(y_true, np.concatenate([same, same], -1)[None]))[0])
    assert perfect < 1e-3 and swapped > 10 and flat == pytest.approx(uniform, rel=1e-4)
    # Points within the radius are not negatives: two identical descriptors 2 px apart cost nothing.
    close = y_true.copy()
    close[0, 1, :2] = close[0, 0, :2] + (2.0, 0.0)
    b = a.copy()
    a2 = a.copy()
    a2[1], b[1] = a[0], a[0]
    near = float(np.asarray(dd.info_nce(close, np.concatenate([a2, b], -1)[None], radius=3.0))[0])
    assert near < 1e-3
    # Invalid correspondences are ignored entirely.
    masked = y_true.copy()
    masked[0, 5:, 2] = 0
    garbage = np.concatenate([a, a], -1)
    garbage[5:] = np.random.default_rng(0).normal(size=(count - 5, 2 * depth))
    assert float(np.asarray(dd.info_nce(masked, garbage[None]))[0]) < 1e-3


def test_training_pairs_correspond_and_repeat_with_the_seed():
    preset = dd.get_descriptor_preset("descriptors_smoke")
    photos = dd.prepare_photos(embedded_photo_paths("train")[:3], preset.photo_side, preset.image_size)
    data = dd.DescriptorPairs(photos, preset, batches=2, seed=3, fixed=True)
    x, y = data[1]
    x2, y2 = dd.DescriptorPairs(photos, preset, batches=2, seed=3, fixed=True)[1]
    assert x["image_a"].shape == (preset.batch_size, 64, 64, 1) and y.shape == (preset.batch_size, preset.points, 3)
    np.testing.assert_array_equal(x["image_b"], x2["image_b"])
    np.testing.assert_array_equal(y, y2)
    valid = y[..., 2] > 0
    assert valid.mean() > 0.5
    # Un-augmented, the gray levels at corresponding points agree (up to interpolation).
    a, b = x["image_a"][..., 0], x["image_b"][..., 0]
    batch = np.nonzero(valid)[0]
    pa, pb = np.rint(x["points_a"][valid]).astype(int), np.rint(x["points_b"][valid]).astype(int)
    difference = np.abs(a[batch, pa[:, 1], pa[:, 0]] - b[batch, pb[:, 1], pb[:, 0]])
    other = np.abs(a[batch, pa[:, 1], pa[:, 0]] - np.roll(b[batch, pb[:, 1], pb[:, 0]], 7))
    assert np.median(difference) < 8 and np.median(other) > 2 * np.median(difference)


def test_a_few_training_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    preset = dd.get_descriptor_preset("descriptors_smoke", learning_rate=3e-3, iterations=100)
    photos = dd.prepare_photos(embedded_photo_paths("train")[:4], preset.photo_side, preset.image_size)
    x, y = dd.DescriptorPairs(photos, preset, batches=1, seed=0, fixed=True)[0]
    model = dd.compile_training_model(dd.build_training_model(dd.build_descriptor_net(**preset.net_options())), preset)
    # The training-mode loss of the same batch (BatchNorm's moving statistics lag behind 12 steps).
    losses = model.fit(x, y, epochs=12, batch_size=preset.batch_size, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_a_run_checkpoints_and_resumes(tmp_path):
    images = embedded_photo_paths("train")
    first = dd.train_descriptors("descriptors_smoke", checkpoint_dir=tmp_path, images=images, seed=0,
                                 verbose=0, iterations=12, steps_per_epoch=6)
    assert len(first.history) == 2
    state = json.loads((tmp_path / "descriptors_smoke" / "state.json").read_text())
    assert state["iterations"] == 12 and state["preset"]["name"] == "descriptors_smoke"
    more = dd.train_descriptors("descriptors_smoke", checkpoint_dir=tmp_path, images=images, seed=0,
                                verbose=0, iterations=18, steps_per_epoch=6)
    assert more.resumed_from == 2 and [row["epoch"] for row in more.history] == [1, 2, 3]
    with pytest.raises(ValueError, match="other options"):
        dd.train_descriptors("descriptors_smoke", checkpoint_dir=tmp_path, images=images, verbose=0,
                             iterations=18, steps_per_epoch=6, learning_rate=1e-2)


def test_checkpoint_round_trip_in_safe_mode(tmp_path):
    net = dd.build_descriptor_net(dim=8, widths=(4, 4, 8, 8))
    image = np.random.default_rng(0).integers(0, 256, (40, 48), dtype=np.uint8)
    before = dd.describe_image(net, image)
    assert before.shape == (5, 6, 8)
    np.testing.assert_allclose(np.linalg.norm(before, axis=-1), 1.0, atol=1e-5)
    path = dd.save_descriptor_net(net, tmp_path / "net.keras", {"training": {"iterations": 0}})
    description = json.loads(path.with_suffix(".json").read_text())
    assert description["options"] == {"dim": 8, "widths": [4, 4, 8, 8]} and description["stride"] == 8
    loaded = dd.load_descriptor_net(path)
    np.testing.assert_allclose(dd.describe_image(loaded, image), before, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="nothing.keras"):
        dd.load_descriptor_net(tmp_path / "nothing.keras")
    (tmp_path / "bad.keras").write_text("not a model")
    with pytest.raises(ValueError, match="bad.keras"):
        dd.load_descriptor_net(tmp_path / "bad.keras")


def test_the_shipped_checkpoint_loads_offline_in_safe_mode_and_aligns_a_pair():
    from hnet_keras.estimators.descriptor_method import DenseDescriptorMethod
    from hnet_keras.features.pck import corners_error

    assert dd.SHIPPED_DESCRIPTORS.stat().st_size <= 16 * 2**20
    net = dd.load_descriptor_net()
    description = json.loads(dd.SHIPPED_DESCRIPTORS.with_suffix(".json").read_text())
    assert description["options"] == dd.net_options(net) and description["stride"] == dd.STRIDE
    assert description["training"]["preset"]["name"] == "descriptors_cpu"
    image = cv2.resize(skimage.data.camera(), (320, 240), interpolation=cv2.INTER_AREA)
    truth = np.array([[0.95, 0.1, 12.0], [-0.08, 1.02, -6.0], [1e-4, 5e-5, 1.0]])
    warped = cv2.warpPerspective(image, truth, (320, 240))
    estimate = DenseDescriptorMethod(net).homography(image, warped)
    assert corners_error(estimate, truth, (320, 240)) < 2.0
