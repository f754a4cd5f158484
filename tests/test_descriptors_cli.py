"""``evaluate-descriptors`` and ``train-descriptors``, and the ``dense_descriptors`` homography method."""

import argparse
import json

import cv2
import numpy as np
import pytest
import skimage.data

from hnet_keras.cli import descriptors as cli
from hnet_keras.estimators.contract import EstimationFailed
from hnet_keras.estimators.descriptor_method import DenseDescriptorMethod
from hnet_keras.features import descriptors as dd
from hnet_keras.scoring.real_pairs import write_hpatches_sequence


def run(argv):
    parser = argparse.ArgumentParser()
    cli.register_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    net = dd.build_descriptor_net(dim=8, widths=(4, 4, 8, 8))
    return dd.save_descriptor_net(net, tmp_path_factory.mktemp("net") / "tiny.keras")


def test_evaluate_descriptors_writes_pck_for_every_method(tmp_path, tiny_net, capsys):
    image = cv2.resize(skimage.data.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    write_hpatches_sequence(tmp_path / "pairs" / "v_camera", image, count=3, max_shift=0.05, seed=1)
    out = tmp_path / "pck.json"
    assert run(["evaluate-descriptors", str(tmp_path / "pairs"), "--json", str(out), "--checkpoint", str(tiny_net),
                "--points", "80", "--long-side", "160", "--protocols", "seed", "dense", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["pairs"] == 2 and report["checkpoint"] == str(tiny_net)
    assert set(report["table"]) == {"daisy", "sift", "learned", "learned_space"}
    for method, splits in report["table"].items():
        assert set(splits) == {"all", "viewpoint"}
        for protocol in ("seed", "dense"):
            values = [splits["all"][protocol][t] for t in ("1", "3", "5")]
            assert 0 <= values[0] <= values[1] <= values[2] <= 1
        assert "homography" not in splits["all"]
    assert report["table"]["daisy"]["all"]["seed"]["5"] > 0.5
    assert sum(report["space_scale_pairs_of_correct_matches"].values()) > 0
    assert "learned_space" in capsys.readouterr().out


def test_evaluate_descriptors_runs_the_space_over_rotations(tmp_path, tiny_net):
    image = cv2.resize(skimage.data.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    write_hpatches_sequence(tmp_path / "pairs" / "v_camera", image, count=2, max_shift=0.05, seed=1)
    out = tmp_path / "pck.json"
    assert run(["evaluate-descriptors", str(tmp_path / "pairs"), "--json", str(out), "--checkpoint", str(tiny_net),
                "--points", "60", "--long-side", "160", "--protocols", "seed", "--methods", "learned_space",
                "--scales", "1", "--angles", "-30", "0", "30", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["space_scales"] == [1.0] and report["space_angles"] == [-30.0, 0.0, 30.0]
    used = report["space_scale_pairs_of_correct_matches"]
    assert sum(used.values()) > 0 and all(key.count("@") == 2 for key in used)  # "1@-30->1@0": scale@angle pairs


def test_the_dense_descriptors_method_fails_cleanly_on_blank_images(tiny_net):
    method = DenseDescriptorMethod(tiny_net)
    blank = np.zeros((64, 64), np.uint8)
    with pytest.raises(EstimationFailed, match="keypoints"):
        method.homography(blank, blank)
    estimate = method(blank, blank)
    assert estimate.failed and np.all(estimate.offsets == 0)


@pytest.mark.slow
def test_train_descriptors_runs_and_exports(tmp_path, capsys):
    export = tmp_path / "shipped" / "net.keras"
    assert run(["train-descriptors", "--preset", "descriptors_smoke", "--checkpoints", str(tmp_path / "runs"),
                "--iterations", "3", "--export", str(export), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["iterations"] == 3
    description = json.loads(export.with_suffix(".json").read_text())
    assert description["training"]["iterations"] == 3 and description["options"]["dim"] == 16
    assert dd.load_descriptor_net(export).output_shape[-1] == 16
