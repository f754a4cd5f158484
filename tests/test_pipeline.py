"""The default pipeline: network + ECC on pairs (the ``network+ecc`` method) and on whole
images of any size (``estimate_homography``), with its guards and fallbacks."""

import warnings

import cv2
import keras
import numpy as np
import pytest

from hnet_keras.geometry import patch_corners
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.estimators.methods import RefinedNetworkMethod, get_method, resolve_methods
from hnet_keras.estimators.predict import LowTextureWarning, estimate_homography
from hnet_keras.scoring.real_pairs import corner_distance
from hnet_keras.data.synthesis import SynthesisConfig, synthesize_pairs


def _constant_model(input_size, value=0.0):
    """A 'network' that always answers the same offsets (zero: the identity)."""
    return keras.Sequential([
        keras.Input((input_size, input_size, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(8, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value)),
    ])


def _photo(index=0, size=(480, 360)):
    gray = read_grayscale(embedded_photo_paths("test")[index])[0]
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def test_network_plus_ecc_refines_the_network_and_counts_its_fallbacks():
    pairs, offsets = synthesize_pairs(6, embedded_photo_paths("test"), SynthesisConfig((160, 120), 64, 3), seed=0)
    method = get_method("network+ecc", model=_constant_model(64), rho=3)
    assert isinstance(method, RefinedNetworkMethod) and method.name == "network+ecc"
    predicted, failed, ms, _ = method.estimate_batch(pairs)
    errors = np.abs(predicted - offsets).reshape(-1, 4, 2)
    identity = np.abs(offsets).reshape(-1, 4, 2)
    assert not failed.any() and np.all(ms > 0)
    assert np.median(np.linalg.norm(errors, axis=-1)) < 0.3 < np.median(np.linalg.norm(identity, axis=-1))
    # a blank pair has nothing to align: the network's answer stays, the fallback is counted
    blank = np.full((1, 64, 64, 2), 128, np.uint8)
    stuck = get_method("network+ecc", model=_constant_model(64, 0.5), rho=3)
    predicted, failed, _, reasons = stuck.estimate_batch(blank)
    assert failed.all() and len(reasons) == 1 and reasons[0]
    np.testing.assert_allclose(predicted[0], np.full(8, 1.5))  # 0.5 * rho: the network's estimate, not zeros


def test_evaluations_run_both_network_methods_by_default_when_given_a_model():
    names = [m.name for m in resolve_methods(model=_constant_model(64), network_rho=16)]
    assert names[-2:] == ["network", "network+ecc"] and "sift_ransac" in names


def _moved(image, fraction, rng):
    height, width = image.shape
    corners = patch_corners((width, height)).astype(np.float32)
    moves = rng.uniform(-fraction, fraction, (4, 2)) * (width, height)
    h_ab = cv2.getPerspectiveTransform(corners, (corners + moves).astype(np.float32))
    return cv2.warpPerspective(image, h_ab, (width, height)), h_ab


def test_whole_images_of_any_size_are_aligned_to_a_pixel_from_a_rough_start():
    """A network that knows nothing (the identity) still ends within 1 px: ECC does the rest."""
    rng = np.random.default_rng(0)
    model = _constant_model(64)
    for index, size in ((0, (480, 360)), (1, (300, 420))):
        image_a = _photo(index, size)
        image_b, h_true = _moved(image_a, 0.03, rng)
        gain = np.clip(image_b.astype(np.float64) * 0.8 + 20, 0, 255).astype(np.uint8)  # exposure change too
        h_ab, info = estimate_homography(model, image_a, gain, rho=16, details=True)
        assert info["chosen"] == "refined"
        assert corner_distance(h_ab, h_true, size) < 1.0
        unrefined = estimate_homography(model, image_a, gain, rho=16, refine=False)
        np.testing.assert_allclose(unrefined, np.eye(3), atol=1e-6)


def test_never_worse_than_the_identity_on_a_pure_illumination_change():
    image_a = _photo(2)
    darker = np.clip(image_a.astype(np.float64) * 0.5, 0, 255).astype(np.uint8)
    h_ab, info = estimate_homography(_constant_model(64, 0.8), image_a, darker, rho=16, details=True)
    assert info["scores"][info["chosen"]] >= info["scores"]["identity"]
    assert corner_distance(h_ab, np.eye(3), image_a.shape[::-1]) < 1.0  # a wild network guess is not kept


def test_image_b_of_another_size_and_textureless_images_are_handled():
    image_a = _photo(0)
    half_b = cv2.resize(image_a, (240, 180), interpolation=cv2.INTER_AREA)  # the same view, half size
    h_ab = estimate_homography(_constant_model(64), image_a, half_b, rho=16)
    assert corner_distance(h_ab, np.diag([0.5, 0.5, 1.0]), (480, 360)) < 1.0
    blank = np.full((120, 160), 90, np.uint8)
    with pytest.warns(LowTextureWarning, match="too little texture"):
        estimate_homography(_constant_model(64), blank, blank, rho=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowTextureWarning)
        estimate_homography(_constant_model(64), image_a, image_a, rho=16)  # textured: no warning


def test_evaluate_pairs_names_the_pairs_too_flat_to_trust(tmp_path):
    from hnet_keras.scoring.real_pairs import evaluate_real_pairs, write_hpatches_sequence

    flat = np.full((120, 160), 100, np.uint8)
    flat[60:, :] = 101  # one faint edge: next to no texture
    sequence = write_hpatches_sequence(tmp_path / "v_flat", flat, count=3, seed=0)
    with pytest.warns(UserWarning, match="too little texture"):
        result = evaluate_real_pairs(sequence, methods=["identity"], progress=False)
    assert result.context["low_texture"] == ["v_flat/1-2", "v_flat/1-3"]


@pytest.mark.slow
def test_estimate_command_warns_in_one_line_on_blank_images(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((96, 128), 77, np.uint8))
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, "-m", "hnet_keras", "estimate", str(blank), str(blank)],
                               capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    warnings_lines = [line for line in completed.stderr.splitlines() if "too little texture" in line]
    assert len(warnings_lines) == 1 and warnings_lines[0].startswith("hnet_keras estimate: warning:")
    assert "Traceback" not in completed.stderr
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(answer["H_ab"], np.eye(3), atol=1e-6)  # nothing to align: the identity is kept
