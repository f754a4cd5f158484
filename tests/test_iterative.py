"""The iterative correlation model: its geometry (DLT, warping, correlation) against
OpenCV and brute force, its loss, saving, and learning."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from hnet_keras.geometry import warp_points
from hnet_keras.nets.iterative import (
    apply_homography,
    build_iterative,
    four_point_to_homography,
    local_correlation,
    sample_bilinear,
)
from hnet_keras.nets.losses import MACE, sequence_l1
from hnet_keras.nets.targets import outputs_to_offsets

REPO = Path(__file__).resolve().parents[1]
SQUARE = np.float32([[0, 0], [1, 0], [1, 1], [0, 1]])


def test_dlt_maps_the_four_points_and_agrees_with_opencv_elsewhere():
    rng = np.random.default_rng(0)
    source = (SQUARE + rng.uniform(-0.25, 0.25, (5, 4, 2))).astype(np.float32)
    h = np.asarray(four_point_to_homography(source, SQUARE), np.float64)
    assert h.shape == (5, 3, 3)
    probes = rng.uniform(0, 1, (20, 2))
    for i in range(5):
        np.testing.assert_allclose(warp_points(h[i], source[i]), SQUARE, atol=2e-5)
        reference = cv2.getPerspectiveTransform(source[i], SQUARE)
        np.testing.assert_allclose(warp_points(h[i], probes), warp_points(reference, probes), atol=5e-5)


def test_apply_homography_matches_numpy_for_shared_and_batched_points():
    rng = np.random.default_rng(1)
    h = np.stack([cv2.getPerspectiveTransform((SQUARE + rng.uniform(-0.2, 0.2, (4, 2))).astype(np.float32), SQUARE)
                  for _ in range(3)]).astype(np.float32)
    points = rng.uniform(0, 1, (7, 2)).astype(np.float32)
    shared = np.asarray(apply_homography(h, points))
    batched = np.asarray(apply_homography(h, np.broadcast_to(points, (3, 7, 2))))
    for i in range(3):
        np.testing.assert_allclose(shared[i], warp_points(h[i], points), atol=1e-5)
    np.testing.assert_allclose(batched, shared, atol=1e-6)


def test_bilinear_sampling_is_exact_on_a_linear_ramp_and_zero_outside():
    height, width = 6, 7
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    features = np.stack([x + 10 * y, 3 * x - y], axis=-1)[None]  # (1, H, W, 2), linear in x and y
    points = np.float32([[[2.25, 3.5], [0, 0], [5.9, 4.1], [50, 2]]])
    got = np.asarray(sample_bilinear(features, points))[0]
    for (px, py), value in zip(points[0][:3], got[:3]):
        np.testing.assert_allclose(value, [px + 10 * py, 3 * px - py], atol=1e-4)
    np.testing.assert_array_equal(got[3], [0, 0])


def test_local_correlation_equals_the_brute_force_window():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 2, 5, 6, 8)).astype(np.float32)
    radius = 2
    got = np.asarray(local_correlation(a, b, radius))
    assert got.shape == (2, 5, 6, 25)
    expected = np.zeros_like(got)
    for y in range(5):
        for x in range(6):
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    if 0 <= y + dy < 5 and 0 <= x + dx < 6:
                        value = (a[:, y, x] * b[:, y + dy, x + dx]).sum(-1)
                        expected[:, y, x, (dy + radius) * 5 + dx + radius] = value
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_warping_by_the_true_homography_aligns_b_with_a():
    """Sampling B at H_ab of A's grid gives A back: the warp direction of the model."""
    h_ab = cv2.getPerspectiveTransform(np.float32([[1, 2], [14, 0], [15, 13], [0, 15]]),
                                       np.float32([[0, 0], [16, 0], [16, 16], [0, 16]]))
    y, x = np.mgrid[0:16, 0:16].astype(np.float64)
    grid = np.stack([x.ravel(), y.ravel()], -1)
    ramp = lambda p: np.stack([p[..., 0] + 2 * p[..., 1], p[..., 1] - p[..., 0]], -1)  # linear features
    features_a = ramp(grid).reshape(1, 16, 16, 2).astype(np.float32)
    # B(H_ab x) = A(x), so B(p) = A(inv(H_ab) p)
    features_b = ramp(warp_points(np.linalg.inv(h_ab), grid)).reshape(1, 16, 16, 2).astype(np.float32)
    mapped = np.asarray(apply_homography(h_ab[None].astype(np.float32), grid.astype(np.float32)))
    warped = np.asarray(sample_bilinear(features_b, mapped))[0]
    inside = np.all((mapped[0] >= 0) & (mapped[0] <= 15), axis=-1)
    assert inside.sum() > 150
    np.testing.assert_allclose(warped[inside], features_a.reshape(-1, 2)[inside], atol=1e-2)


def test_sequence_loss_weights_later_iterations_more():
    y_true = np.zeros((1, 8), np.float32)
    y_pred = np.zeros((1, 3, 8), np.float32)
    y_pred[0, 0] = 1.0  # only the first of 3 iterations is off, by 1 everywhere
    assert float(np.asarray(sequence_l1(y_true, y_pred))[0]) == pytest.approx(0.85**2, rel=1e-6)
    y_pred = np.zeros((1, 3, 8), np.float32)
    y_pred[0, 2] = 1.0  # only the last
    assert float(np.asarray(sequence_l1(y_true, y_pred))[0]) == pytest.approx(1.0, rel=1e-6)
    corners = np.zeros((1, 2, 8), np.float32)
    corners[0, -1, :2] = [3 / 16, 4 / 16]  # last estimate: one corner 5 px off at rho 16
    metric = MACE(16)
    metric.update_state(y_true, corners)
    assert float(metric.result()) == pytest.approx(5 / 4, rel=1e-5)  # the metric scores the last step
    np.testing.assert_allclose(outputs_to_offsets(corners, 16)[0, :2], [3, 4])


def test_model_outputs_every_iteration_and_reloads_in_safe_mode(tmp_path):
    model = build_iterative(input_size=32, rho=8, iterations=3, channels=16, context=8, head=16)
    x = np.random.default_rng(3).uniform(-1, 1, (2, 32, 32, 2)).astype(np.float32)
    y = np.asarray(model.predict(x, verbose=0))
    assert y.shape == (2, 3, 8) and np.all(np.isfinite(y))
    path = tmp_path / "iterative.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(restored.predict(x, verbose=0)), y, atol=1e-6)
    assert restored.get_layer("iterative").rho == 8


def test_model_rejects_sizes_it_cannot_tile():
    with pytest.raises(ValueError, match="multiple of 4 \\* stride"):
        build_iterative(input_size=40)


def _translation_pairs(count, rng, size=32, shift=8):
    """Smooth random textures and the same shifted by a random integer translation."""
    pairs = np.empty((count, size, size, 2), np.uint8)
    offsets = np.empty((count, 8), np.float32)
    for i in range(count):
        texture = cv2.GaussianBlur(rng.uniform(0, 255, (size + 2 * shift, size + 2 * shift)).astype(np.float32),
                                   (0, 0), 1.2)
        texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
        dx, dy = rng.integers(-shift, shift + 1, 2)
        pairs[i, :, :, 0] = texture[shift:shift + size, shift:shift + size]
        # B(x) = A(x + d): A's content at x shows at x - d in B, so every corner moves by -d.
        pairs[i, :, :, 1] = texture[shift + dy:shift + dy + size, shift + dx:shift + dx + size]
        offsets[i] = np.tile([dx, dy], 4)
    return pairs, offsets


@pytest.mark.slow
def test_the_model_learns_translations_in_two_hundred_steps():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    pairs, offsets = _translation_pairs(512, rng)
    x = (pairs.astype(np.float32) - 127.5) / 127.5
    rho = 8.0
    model = build_iterative(input_size=32, rho=rho, iterations=3, channels=16, context=8, head=16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=sequence_l1, metrics=[MACE(rho)])
    before = model.evaluate(x[:128], offsets[:128] / rho, verbose=0, return_dict=True)["mace"]
    model.fit(x[128:], offsets[128:] / rho, batch_size=32, epochs=14, verbose=0)
    after = model.evaluate(x[:128], offsets[:128] / rho, verbose=0, return_dict=True)["mace"]
    identity = float(np.mean(np.hypot(offsets[:128, 0], offsets[:128, 1])))
    assert before > 0.8 * identity
    assert after < 0.7 * identity, (before, after, identity)


JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    from hnet_keras.nets.losses import sequence_l1
    from hnet_keras.nets.models import build_model
    model = build_model("iterative", input_size=32, rho=8, iterations=2, channels=16, context=8, head=16)
    model.compile(optimizer="adam", loss=sequence_l1)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 2)).astype(np.float32)
    y = np.random.default_rng(1).uniform(-1, 1, (8, 8)).astype(np.float32)
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
    model.save(sys.argv[1])
    restored = keras.saving.load_model(sys.argv[1], safe_mode=True)
    same = np.allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    print(json.dumps({"backend": keras.backend.backend(), "losses": history, "same": bool(same)}))
    """
)


@pytest.mark.slow
def test_the_model_trains_saves_and_reloads_under_jax(tmp_path):
    pytest.importorskip("jax", reason="jax is not installed (pip install 'jax[cpu]')")
    import json

    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "m.keras")], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax" and out["same"]
    assert all(np.isfinite(out["losses"]))
