"""SuperPoint's commands end to end on tiny data, and the ``superpoint`` homography method."""

import argparse
import json

import cv2
import numpy as np
import pytest

from hnet_keras.cli import superpoint as commands
from hnet_keras.estimators.baselines import EstimationFailed
from hnet_keras.estimators.superpoint_method import SuperPointMethod
from hnet_keras.features.homographies import warp_image
from hnet_keras.features.superpoint import build_superpoint, save_superpoint
from hnet_keras.scoring.real_pairs import write_hpatches_sequence


def _run(argv):
    parser = argparse.ArgumentParser()
    commands.register_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def _textured(seed, size=(160, 120)):
    rng = np.random.default_rng(seed)
    image = cv2.resize((rng.random((size[1] // 8, size[0] // 8)) * 255).astype(np.uint8), size,
                       interpolation=cv2.INTER_NEAREST)
    for _ in range(12):
        x, y = rng.integers(0, size[0] - 20), rng.integers(0, size[1] - 20)
        cv2.rectangle(image, (int(x), int(y)), (int(x + 15), int(y + 12)), int(rng.integers(0, 256)), -1)
    return image


@pytest.mark.slow
def test_pipeline_commands_on_tiny_data(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert _run(["train-superpoint", "--preset", "magicpoint_smoke", "--checkpoints", runs, "--quiet"]) == 0
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(30):
        cv2.imwrite(str(photos / f"p{k:02d}.png"), _textured(k))
    labels = tmp_path / "labels.npz"
    assert _run(["homographic-adaptation", photos, "--checkpoint", runs / "magicpoint_smoke", "--out", labels,
                 "--homographies", 2, "--size", 64, 48, "--threshold", 0.0, "--no-progress"]) == 0
    facts = json.loads(labels.with_suffix(".json").read_text())
    assert facts["photos"] >= 20 and facts["mean_points"] > 0
    export = tmp_path / "sp.weights.h5"
    assert _run(["train-superpoint", "--preset", "superpoint_smoke", "--labels", labels, "--init",
                 runs / "magicpoint_smoke", "--checkpoints", runs, "--export", export, "--quiet"]) == 0
    pairs = write_hpatches_sequence(tmp_path / "seq", _textured(99, (128, 96)), count=3, max_shift=0.05)
    out = tmp_path / "keypoints.json"
    assert _run(["evaluate-keypoints", "--network", f"sp={export}", "--adapted", f"sp_adapted={export}",
                 "--classical", "harris", "--shapes", 5, "--pairs", pairs, "--json", out, "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert set(report["detection"]) == {"harris", "sp", "sp_adapted"} and 0 <= report["repeatability"]["harris"] <= 1
    with pytest.raises(ValueError, match="--labels"):
        _run(["train-superpoint", "--preset", "superpoint_smoke", "--checkpoints", runs])
    with pytest.raises(ValueError, match="NAME=CHECKPOINT"):
        _run(["evaluate-keypoints", "--network", "nope", "--shapes", 0, "--json", out])


def test_superpoint_method_recovers_a_shift_with_a_matching_network(tmp_path):
    # An untrained network still gives descriptors that match a pure shift of a textured image.
    net = build_superpoint(widths=(8,) * 8, head=16, descriptor_dim=16)
    save_superpoint(net, tmp_path / "sp.weights.h5")
    method = SuperPointMethod(tmp_path / "sp.weights.h5", threshold=0.0)
    image = _textured(3, (128, 128))
    shift = np.array([[1.0, 0, 8.0], [0, 1, 16.0], [0, 0, 1]])
    estimate = method(image, warp_image(image, shift))
    assert method.net is not None and estimate.ms > 0
    if not estimate.failed:  # a random network may fail; when it does not, the fit is the shift
        assert np.abs(estimate.offsets - np.tile([-8.0, -16.0], 4)).max() < 2.0  # offsets = perturbed - original
    with pytest.raises(EstimationFailed):
        method.homography(np.zeros((8, 8), np.uint8), image)
    magic = tmp_path / "mp.weights.h5"
    save_superpoint(build_superpoint(widths=(8,) * 8, head=16), magic)
    with pytest.raises(ValueError, match="no descriptors"):
        SuperPointMethod(magic).net
