"""``estimate_homography`` on whole images: honest (a score, ``trusted``, one-line warnings; never worse
than the identity), bounded (a working resolution), and the same answers batched or alone."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.estimators.contract import EstimationFailed
from hnet_keras.estimators.predict import (
    MAX_ASPECT,
    MIN_SIDE,
    WORK_PIXELS,
    EstimateWarning,
    LowTextureWarning,
    MismatchWarning,
    ShapeWarning,
    estimate_homographies,
    estimate_homography,
    predict_offsets,
)
from hnet_keras.estimators.refine import MIN_ALIGNMENT_SCORE
from hnet_keras.geometry import patch_corners
from hnet_keras.scoring.real_pairs import corner_distance

REPO = Path(__file__).resolve().parents[1]


def _constant_model(input_size=64, value=0.0):
    """A 'network' that always answers the same offsets (zero: the identity; else a wild guess)."""
    return keras.Sequential([
        keras.Input((input_size, input_size, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(8, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value)),
    ])


def _photo(index, size):
    gray = read_grayscale(embedded_photo_paths("test")[index])[0]
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if size[0] < gray.shape[1] else cv2.INTER_LINEAR)


def _moved(image, fraction, seed):
    """``(B, H_ab)``: the image warped by a homography moving its corners by up to ``fraction`` of its size."""
    height, width = image.shape
    corners = patch_corners((width, height)).astype(np.float32)
    moves = np.random.default_rng(seed).uniform(-fraction, fraction, (4, 2)) * (width, height)
    h_ab = cv2.getPerspectiveTransform(corners, (corners + moves).astype(np.float32))
    return cv2.warpPerspective(image, h_ab, (width, height), borderMode=cv2.BORDER_REFLECT), h_ab


def test_unrelated_photos_are_flagged_and_a_true_pair_is_trusted():
    model = _constant_model()
    image_a, other = _photo(0, (320, 240)), _photo(1, (320, 240))
    with pytest.warns(MismatchWarning, match="do not seem to show the same scene"):
        _, info = estimate_homography(model, image_a, other, rho=16, details=True)
    assert not info["trusted"] and info["score"] < MIN_ALIGNMENT_SCORE and len(info["warnings"]) == 1
    assert info["score"] == info["scores"][info["chosen"]] == max(info["scores"].values())
    image_b, h_true = _moved(image_a, 0.03, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EstimateWarning)
        h_ab, info = estimate_homography(model, image_a, image_b, rho=16, details=True)
    assert info["trusted"] and info["warnings"] == [] and info["score"] > 0.8 and info["chosen"] == "refined"
    assert corner_distance(h_ab, h_true, (320, 240)) < 0.5


def test_a_tiny_pair_is_never_worse_aligned_than_the_identity():
    wild = _constant_model(value=0.8)  # a network answering 13 px of corner moves, whatever it sees
    image_a = _photo(2, (16, 12))
    image_b, h_true = _moved(image_a, 0.05, seed=1)
    with pytest.warns(ShapeWarning, match="too small"):
        h_ab, info = estimate_homography(wild, image_a, image_b, rho=16, details=True)
    assert corner_distance(h_ab, h_true, (16, 12)) <= corner_distance(np.eye(3), h_true, (16, 12))
    assert info["chosen"] == "identity" and not info["trusted"]
    # from MIN_SIDE up the estimate runs, and the wild guess still loses to doing nothing or better
    size = (MIN_SIDE * 4 // 3, MIN_SIDE)
    image_a = _photo(2, size)
    for seed in range(3):
        image_b, h_true = _moved(image_a, 0.05, seed=seed)
        h_ab = estimate_homography(wild, image_a, image_b, rho=16)
        assert corner_distance(h_ab, h_true, size) <= corner_distance(np.eye(3), h_true, size)


def test_a_large_rotation_and_zoom_is_found_by_the_hypotheses():
    from hnet_keras.estimators.predict import _similarity

    image_a = _photo(0, (320, 240))
    h_true = _similarity(320, 240, 91, 1.4)  # far beyond what this network (the identity) corrects
    image_b = cv2.warpPerspective(image_a, h_true, (320, 240))
    with pytest.warns(MismatchWarning):  # without the hypotheses: not found, and said so
        _, alone = estimate_homography(_constant_model(), image_a, image_b, rho=16, details=True, hypotheses=False)
    assert alone["chosen"] != "hypothesis"
    h_ab, info = estimate_homography(_constant_model(), image_a, image_b, rho=16, details=True,  # on by default
                                     keypoints=False)  # the keypoint start is another test's subject
    assert info["chosen"] == "hypothesis" and info["hypothesis"] == {"angle": 90, "scale": 1.41}
    assert info["trusted"] and corner_distance(h_ab, h_true, (320, 240)) < 1.0


@pytest.mark.slow
def test_the_shipped_network_with_hypotheses_aligns_a_large_rotation_and_zoom():
    from hnet_keras.estimators.predict import _similarity
    from hnet_keras.nets.checkpoint import load_pretrained

    model, rho = load_pretrained()
    image_a = _photo(1, (640, 480))
    h_true = _similarity(640, 480, -55, 0.75)
    image_b = cv2.warpPerspective(image_a, h_true, (640, 480))
    with pytest.warns(MismatchWarning):
        _, alone = estimate_homography(model, image_a, image_b, rho=rho, details=True, hypotheses=False)
    h_ab, info = estimate_homography(model, image_a, image_b, rho=rho, details=True)
    assert not alone["trusted"] and info["trusted"] and info["chosen"] == "hypothesis"
    assert corner_distance(h_ab, h_true, (640, 480)) < 1.0


@pytest.mark.parametrize("size", [(5000, 50), (50, 5000)])
def test_images_too_elongated_to_estimate_are_flagged(size):
    strip = _photo(3, size)
    with pytest.warns(ShapeWarning, match=f"too elongated .* over {MAX_ASPECT:g}:1"):
        h_ab, info = estimate_homography(_constant_model(), strip, strip, rho=16, details=True)
    assert not info["trusted"] and np.all(np.isfinite(h_ab))


def test_large_images_are_aligned_at_the_working_resolution_and_scaled_back():
    image_a = _photo(0, (2400, 1800))  # 4.3 MP: worked on at 2 MP
    image_b, h_true = _moved(image_a, 0.02, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowTextureWarning)  # an upscaled photo is textured at the working size
        h_ab, info = estimate_homography(_constant_model(), image_a, image_b, rho=16, details=True)
    width, height = info["working_size"]
    assert width * height <= WORK_PIXELS and width / height == pytest.approx(4 / 3, rel=1e-3)
    assert info["trusted"] and info["chosen"] == "refined"
    assert corner_distance(h_ab, h_true, (2400, 1800)) < 2.0  # a pixel at the working size


class _Matches:
    """A keypoint method stand-in: answers ``h_ab`` (or fails, as too few matches do) and counts its calls."""

    def __init__(self, h_ab=None):
        self.h_ab, self.calls = h_ab, 0

    def homography(self, image_a, image_b):
        self.calls += 1
        if self.h_ab is None:
            raise EstimationFailed("too few keypoints")
        return self.h_ab


def test_the_keypoint_start_is_tried_on_poor_alignments_only_and_kept_when_it_aligns_better():
    from hnet_keras.estimators.predict import _try_keypoints

    image_a = _photo(0, (320, 240))
    image_b, h_true = _moved(image_a, 0.03, seed=0)
    matches = _Matches(h_true)
    estimate_homography(_constant_model(), image_a, image_b, rho=16, keypoints=matches)
    assert matches.calls == 0  # the network's start aligns it: no retry, no keypoints
    corners = patch_corners((320, 240)).astype(np.float32)
    off = cv2.getPerspectiveTransform(corners, (corners + np.float32([[3, -2], [-2, 3], [2, 2], [-3, -1]])))
    poor = {"chosen": "hypothesis", "hypothesis": {"angle": 30, "scale": 1.0}, "scores": {"hypothesis": 0.1}}
    found = _try_keypoints(_Matches(h_true @ off), image_a, image_b, None, np.eye(3), poor)
    assert poor["chosen"] == "keypoints" and poor["scores"]["keypoints"] > 0.8 and "hypothesis" not in poor
    assert corner_distance(found, h_true, (320, 240)) < 0.5  # refined from a start about 3 px off
    previous = np.diag([1.1, 0.9, 1.0])
    for method, info in ((_Matches(), {"chosen": "start", "scores": {"start": 0.1}}),  # no keypoint answer
                         (_Matches(h_true @ off), {"chosen": "start", "scores": {"start": 1.5}})):  # outscored
        np.testing.assert_array_equal(_try_keypoints(method, image_a, image_b, None, previous, info), previous)
        assert "keypoints" not in info["scores"] and info["chosen"] == "start"
    unrelated, matches = _photo(1, (320, 240)), _Matches()
    with pytest.warns(MismatchWarning):  # a poor alignment: the keypoint start is tried (and finds nothing)
        estimate_homography(_constant_model(), image_a, unrelated, rho=16, keypoints=matches)
    assert matches.calls == 1
    with pytest.warns(MismatchWarning):  # not without the retry
        estimate_homography(_constant_model(), image_a, unrelated, rho=16, keypoints=matches, hypotheses=False)
    assert matches.calls == 1


@pytest.mark.slow
def test_a_keypoint_start_finds_a_photo_its_exposure_crushes_to_black():
    """Shading and a strong gamma leave little of B but highlights: the shipped network's start and every
    hypothesis are lost; SuperPoint's matches are a start ECC refines to sub-pixel."""
    from hnet_keras.nets.checkpoint import load_pretrained
    from hnet_keras.scoring.difficulty import class_pair

    model, rho = load_pretrained()
    image_a = _photo(3, (640, 480))
    image_b, h_true = class_pair(image_a, "illumination", 3, np.random.default_rng(3))
    with pytest.warns(MismatchWarning):  # without the keypoint start: lost, and said so
        without = estimate_homography(model, image_a, image_b, rho=rho, keypoints=False)
    h_ab, info = estimate_homography(model, image_a, image_b, rho=rho, details=True)
    assert corner_distance(without, h_true, (640, 480)) > 10
    assert info["chosen"] == "keypoints" and info["trusted"] and corner_distance(h_ab, h_true, (640, 480)) < 1.0


def test_many_pairs_at_once_give_the_answers_of_one_at_a_time():
    model = _constant_model(value=0.1)
    pairs = [(_photo(i, size), _moved(_photo(i, size), 0.03, seed=i)[0])
             for i, size in enumerate([(320, 240), (200, 300), (256, 256)])]
    batched = estimate_homographies(model, pairs, rho=16)
    for (image_a, image_b), (h_batched, info) in zip(pairs, batched):
        h_alone, alone = estimate_homography(model, image_a, image_b, rho=16, details=True)
        np.testing.assert_allclose(h_batched, h_alone, atol=1e-6)
        assert info["chosen"] == alone["chosen"] and info["trusted"] == alone["trusted"]


def test_predict_offsets_in_batches_matches_keras_predict():
    model = keras.Sequential([keras.Input((32, 32, 2)), keras.layers.Conv2D(4, 3, strides=4), keras.layers.Flatten(),
                              keras.layers.Dense(8)])
    pairs = np.random.default_rng(0).integers(0, 256, (11, 32, 32, 2)).astype(np.uint8)
    expected = model.predict((pairs.astype(np.float32) - 127.5) / 127.5, verbose=0) * 8
    np.testing.assert_allclose(predict_offsets(model, pairs, rho=8, batch_size=4), expected, rtol=1e-5, atol=1e-5)
    assert predict_offsets(model, pairs[:0], rho=8).shape == (0, 8)


def _run(*arguments, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO)


@pytest.mark.slow
def test_estimate_command_reports_score_trust_and_one_warning_line_on_unrelated_photos(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for index, path in enumerate(paths):
        cv2.imwrite(str(path), _photo(index, (400, 300)))
    completed = _run("-m", "hnet_keras", "estimate", *map(str, paths))
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [line for line in completed.stderr.splitlines() if line.startswith("hnet_keras estimate: warning:")]
    assert len(lines) == 1 and "do not seem to show the same scene" in lines[0]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["trusted"] is False and answer["score"] < MIN_ALIGNMENT_SCORE
    assert answer["chosen"] in answer["scores"] and answer["warnings"] == [lines[0].split("warning: ", 1)[1]]


@pytest.mark.slow
def test_an_8000x6000_pair_takes_seconds_and_bounded_memory():
    script = """
import resource, time, warnings
import cv2, keras, numpy as np
from hnet_keras.estimators.predict import estimate_homography
from hnet_keras.scoring.real_pairs import corner_distance
from tests.test_estimate import _constant_model, _moved, _photo
model = _constant_model()
estimate_homography(model, _photo(0, (320, 240)), _photo(0, (320, 240)), rho=16)  # tracing, not timed
image_a = _photo(0, (8000, 6000))
image_b, h_true = _moved(image_a, 0.02, seed=3)
began = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    h_ab, info = estimate_homography(model, image_a, image_b, rho=16, details=True)
try:  # this process's own peak: ru_maxrss also counts the parent's peak at the fork (Linux), pytest's
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(time.perf_counter() - began, peak_kb / 2**20, corner_distance(h_ab, h_true, (8000, 6000)), info["trusted"],
      len(caught))
"""
    completed = _run("-c", script)
    assert completed.returncode == 0, completed.stderr[-2000:]
    seconds, gigabytes, error, trusted, caught = completed.stdout.split()[-5:]
    assert float(seconds) < 10 and float(gigabytes) < 1.5, completed.stdout
    assert float(error) < 6 and trusted == "True" and caught == "0", completed.stdout  # 6 px of 8000: 1.2 px at 2 MP
