"""SuperPoint in Keras: losses, heat map and NMS, MagicPoint learning on shapes, resumable training,
homographic adaptation, checkpoints in safe mode, keypoint evaluation."""

import math
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from hnet_keras.features import keypoint_eval as ke
from hnet_keras.features.adaptation import adapt_image, adapt_photos, adapted_probability
from hnet_keras.features.homographies import sample_homography, warp_image, warp_points
from hnet_keras.features.shapes import ShapesConfig, ShapesDataset, points_to_cells
from hnet_keras.features.superpoint import (
    PhotoPairs,
    build_superpoint,
    describe,
    descriptor_loss,
    detector_loss,
    get_superpoint_preset,
    heatmap,
    load_superpoint,
    nms,
    probability_maps,
    read_labels,
    save_superpoint,
    train_superpoint,
    write_labels,
)


def test_detector_loss_is_the_masked_cross_entropy():
    logits = np.zeros((1, 2, 3, 65), np.float32)
    targets = np.zeros((1, 2, 3, 2), np.float32)
    targets[..., 0], targets[..., 1] = 64, 1
    assert np.allclose(keras.ops.convert_to_numpy(detector_loss(targets, logits)), math.log(65), atol=1e-5)
    logits[0, 0, 0, 5] = 50.0  # a confident right answer in one cell, wrong in another, masked out there
    targets[0, 0, 0, 0] = 5
    logits[0, 1, 2, 7] = 50.0
    targets[0, 1, 2, 1] = 0
    expected = 4 * math.log(65) / 5
    assert np.allclose(keras.ops.convert_to_numpy(detector_loss(targets, logits)), expected, atol=1e-4)


def test_descriptor_loss_counts_positives_and_far_negatives():
    a = np.array([[1.0, 0], [0, 1.0]], np.float32)
    y_pred = np.concatenate([a, a], axis=-1)[None]  # each b equals its a: positives score 1, cosine(a0, b1) = 0
    y_true = np.array([[[0, 0, 1], [20, 0, 1]]], np.float32)
    assert np.allclose(keras.ops.convert_to_numpy(descriptor_loss(y_true, y_pred)), 0.0)
    same = np.concatenate([a[:1].repeat(2, 0), a[:1].repeat(2, 0)], axis=-1)[None]  # all four descriptors equal
    assert np.allclose(keras.ops.convert_to_numpy(descriptor_loss(y_true, same)), 0.8)  # negatives at 1 - 0.2
    near = np.array([[[0, 0, 1], [3, 0, 1]]], np.float32)  # within the radius: not negatives
    assert np.allclose(keras.ops.convert_to_numpy(descriptor_loss(near, same)), 0.0)


def test_heatmap_unfolds_cells_row_major_and_nms_keeps_local_maxima():
    points = np.array([[13.0, 2.0], [40.0, 21.0]])
    cells = points_to_cells(points, (48, 32))
    logits = np.full((1, 4, 6, 65), -10.0, np.float32)
    rows, columns = np.nonzero(cells < 64)
    logits[0, rows, columns, cells[rows, columns]] = 10.0
    probability = keras.ops.convert_to_numpy(heatmap(logits))[0]
    found, scores = nms(probability, radius=4, threshold=0.5, border=0)
    assert sorted(map(tuple, found)) == sorted(map(tuple, points)) and np.all(scores > 0.9)
    flat = np.zeros((20, 20), np.float32)
    flat[5:7, 5:7] = 1.0  # a plateau gives one point
    assert len(nms(flat, radius=2, threshold=0.5, border=0)[0]) == 1


def test_magicpoint_loss_falls_in_a_few_steps_on_shapes():
    keras.utils.set_random_seed(0)
    preset = get_superpoint_preset("magicpoint_smoke")
    net = build_superpoint(**preset.net_options())
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss=detector_loss)
    x, y = ShapesDataset(batch_size=8, batches_per_epoch=1, config=ShapesConfig(size=(64, 48)), seed=1)[0]
    before = float(net.evaluate(x, y, verbose=0))
    net.fit(x, y, epochs=25, batch_size=8, verbose=0)
    after = float(net.evaluate(x, y, verbose=0))
    assert after < 0.5 * before, (before, after)


def _trained_weights(run):
    return [w.copy() for w in run.net.get_weights()]


def test_training_resumes_on_the_same_batches(tmp_path):
    straight = train_superpoint("magicpoint_smoke", run="a", checkpoint_dir=tmp_path, seed=2, verbose=0)
    train_superpoint("magicpoint_smoke", run="b", checkpoint_dir=tmp_path, seed=2, verbose=0, iterations=3)
    resumed = train_superpoint("magicpoint_smoke", run="b", checkpoint_dir=tmp_path, seed=2, verbose=0)
    assert resumed.resumed_from == 1 and len(resumed.history) == 2
    for w1, w2 in zip(_trained_weights(straight), _trained_weights(resumed)):
        assert np.allclose(w1, w2, atol=1e-6)
    with pytest.raises(ValueError, match="other options"):
        train_superpoint("magicpoint_smoke", run="b", checkpoint_dir=tmp_path, verbose=0, learning_rate=0.5)


def test_checkpoints_round_trip_in_safe_mode(tmp_path):
    net = build_superpoint(widths=(8,) * 8, head=16, descriptor_dim=16)
    image = (np.random.default_rng(0).random((48, 64)) * 255).astype(np.uint8)
    expected = describe(net, image, threshold=0.0)
    for name in ("sp.weights.h5", "sp.keras"):
        save_superpoint(net, tmp_path / name, {"note": "test"})
        loaded = load_superpoint(tmp_path / name)
        got = describe(loaded, image, threshold=0.0)
        assert np.array_equal(got[0], expected[0]) and np.allclose(got[2], expected[2], atol=1e-6)
    assert expected[2].shape[1] == 16 and np.allclose(np.linalg.norm(expected[2], axis=1), 1, atol=1e-4)
    (tmp_path / "sp.json").write_text('{"kind": "superpoint", "options": {"widths": [8]}}')
    with pytest.raises(ValueError, match="widths"):
        load_superpoint(tmp_path / "sp.weights.h5")
    with pytest.raises(FileNotFoundError):
        load_superpoint(tmp_path / "missing.weights.h5")


class _HarrisNet:
    """A stand-in detector network: cell logits whose heat map is the normalised Harris response."""

    def __call__(self, batch, training=False):
        batch = np.asarray(batch)[..., 0]
        out = []
        for image in batch:
            response = np.maximum(cv2.cornerHarris(np.float32(image), 3, 3, 0.04), 0)
            response = response / max(float(response.max()), 1e-12)
            h, w = image.shape[0] // 8, image.shape[1] // 8
            cells = response.reshape(h, 8, w, 8).transpose(0, 2, 1, 3).reshape(h, w, 64)
            out.append(np.concatenate([np.log(cells + 1e-4), np.zeros((h, w, 1))], axis=-1))
        return np.stack(out).astype(np.float32)


def _square_image():
    image = np.full((96, 128), 60, np.uint8)
    corners = np.array([[40, 30], [88, 30], [88, 70], [40, 70]], np.float64)
    cv2.rectangle(image, (40, 30), (88, 70), 200, -1)
    return cv2.GaussianBlur(image, (3, 3), 0), corners


def test_homographic_adaptation_recovers_known_corners():
    image, corners = _square_image()
    points, _ = adapt_image(_HarrisNet(), image, homographies=12, seed=0, threshold=0.05, top_k=4)
    assert len(points) == 4
    distances = np.linalg.norm(points[:, None] - corners[None], axis=-1).min(axis=0)
    assert distances.max() <= 1.5, distances
    probability, counts = adapted_probability(_HarrisNet(), image, homographies=5, seed=0)
    assert probability.shape == image.shape and counts.max() == 6 and counts.min() >= 1


def test_adapt_photos_writes_labels_that_read_back(tmp_path):
    image, _ = _square_image()
    cv2.imwrite(str(tmp_path / "a.png"), image)
    (tmp_path / "broken.png").write_bytes(b"nope")
    images, labels, facts = adapt_photos(_HarrisNet(), [tmp_path / "a.png", tmp_path / "broken.png"],
                                         tmp_path / "labels.npz", size=(128, 96), homographies=4, threshold=0.05,
                                         progress=False)
    assert facts["photos"] == 1 and len(facts["skipped"]) == 1
    read_images, read_points = read_labels(tmp_path / "labels.npz")
    assert np.array_equal(read_images, images) and np.allclose(read_points[0], labels[0])
    write_labels(tmp_path / "bad.npz", images, [np.full((2, 2), np.nan)])
    with pytest.raises(ValueError, match="inconsistent"):
        read_labels(tmp_path / "bad.npz")


def test_superpoint_trains_on_photo_pairs_and_finds_correspondences(tmp_path):
    image, corners = _square_image()
    images = np.stack([image[:48, :64], image[48:, 64:], image[24:72, 32:96]])
    labels = [corners - (0, 0), corners - (64, 48), corners - (32, 24)]
    preset = get_superpoint_preset("superpoint_smoke")
    data = PhotoPairs(images, labels, preset, batches=2, seed=0)
    inputs, targets = data[0]
    valid = targets["descriptors"][..., 2] > 0
    assert valid.any()
    # the sampled points of B are the warps of A's (the pair's homography is not stored: check via the image)
    assert inputs["points_a"].shape == (2, 32, 2) and targets["detector_b"].shape == (2, 6, 8, 2)
    result = train_superpoint(preset, run="sp", checkpoint_dir=tmp_path, data=data,
                              validation_data=PhotoPairs(images, labels, preset, 1, seed=1, fixed=True), verbose=0)
    assert all(np.isfinite(row["loss"]) for row in result.history) and len(result.history) == 2
    assert len(result.net.outputs) == 2


def test_detection_scores_and_repeatability_on_known_answers():
    truths = [np.array([[10.0, 10.0], [30.0, 20.0]])]

    def perfect(image):
        return truths[0] + 0.5, np.array([0.9, 0.8])

    scores = ke.detection_scores(perfect, np.zeros((1, 48, 64), np.uint8), truths)
    assert scores.mAP == pytest.approx(1.0) and scores.localisation_error == pytest.approx(math.sqrt(0.5))
    image, _ = _square_image()
    h = np.array([[1.0, 0.05, 5.0], [0.02, 1.0, 3.0], [0.0, 0.0, 1.0]])
    pairs = [(image, warp_image(image, h), h)]
    mean, per_pair = ke.repeatability(ke.harris, pairs, top_k=4)
    assert mean == 1.0 and per_pair.shape == (1,)
    shifted = np.array([[1.0, 0, 6.0], [0, 1, 0], [0, 0, 1]])  # told the wrong homography: nothing repeats
    assert ke.repeatability(ke.harris, [(image, warp_image(image, h), shifted @ h)], top_k=4)[0] == 0.0


SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "superpoint"


def test_shipped_checkpoints_load_offline_and_round_trip_in_safe_mode(tmp_path):
    image = cv2.resize(cv2.imread(str(SHIPPED / "learning_curve.png"), cv2.IMREAD_GRAYSCALE), (160, 120))
    total = 0
    for name, outputs in (("magicpoint", 1), ("superpoint", 2)):
        path = SHIPPED / f"{name}.weights.h5"
        total += path.stat().st_size
        net = load_superpoint(path)
        assert len(net.outputs) == outputs
        save_superpoint(net, tmp_path / f"{name}.keras")
        again = load_superpoint(tmp_path / f"{name}.keras")  # keras.saving.load_model(safe_mode=True)
        assert np.array_equal(probability_maps(net, image), probability_maps(again, image))
    assert total <= 16 * 2**20
