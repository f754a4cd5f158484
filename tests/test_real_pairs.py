import csv
import json

import cv2
import numpy as np
import pytest

from hnet_keras.scoring import real_pairs
from hnet_keras.estimators.methods import get_method
from hnet_keras.cli import main
from hnet_keras.scoring.evaluation import Evaluation
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.scoring.real_pairs import (
    corner_distance,
    estimate_full_homography,
    evaluate_real_pairs,
    load_hpatches_sequence,
    load_oxford_sequence,
    load_real_pairs,
    read_homography,
)

# image 1 -> image k: a mild perspective change, a rotation with scale, a shift with shear
TRUE_HOMOGRAPHIES = {
    2: np.array([[1.05, 0.04, -12.0], [-0.03, 0.98, 8.0], [4e-5, -3e-5, 1.0]]),
    3: np.array([[0.93, -0.12, 30.0], [0.11, 0.94, -14.0], [-2e-5, 5e-5, 1.0]]),
}


@pytest.fixture(scope="module")
def reference():
    (path,) = [p for p in embedded_photo_paths("all") if p.name == "motorcycle_left.png"]
    return read_grayscale(path)[0]


def _colour(gray):
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _warped(reference, h):
    return cv2.warpPerspective(reference, h, (reference.shape[1], reference.shape[0]), flags=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def sequences(tmp_path_factory, reference):
    root = tmp_path_factory.mktemp("real")
    hpatches = root / "v_motorcycle"
    hpatches.mkdir()
    # HPatches images are colour PPMs
    assert cv2.imwrite(str(hpatches / "1.ppm"), _colour(reference))
    for k, h in TRUE_HOMOGRAPHIES.items():
        assert cv2.imwrite(str(hpatches / f"{k}.ppm"), _colour(_warped(reference, h)))
        np.savetxt(hpatches / f"H_1_{k}", h)
    oxford = root / "graf_like"
    oxford.mkdir()
    cv2.imwrite(str(oxford / "img1.png"), reference)
    for k, h in TRUE_HOMOGRAPHIES.items():
        cv2.imwrite(str(oxford / f"img{k}.png"), _warped(reference, h))
        storage = cv2.FileStorage(str(oxford / f"H1to{k}p.xml"), cv2.FILE_STORAGE_WRITE)
        storage.write(f"H1{k}", h)
        storage.release()
    return root


def test_read_homography_text_xml_yaml(tmp_path):
    h = TRUE_HOMOGRAPHIES[3]
    np.savetxt(tmp_path / "H1to3p", h)
    for suffix in (".xml", ".yml"):
        storage = cv2.FileStorage(str(tmp_path / f"H{suffix}"), cv2.FILE_STORAGE_WRITE)
        storage.write("homography", h)
        storage.release()
        assert np.allclose(read_homography(tmp_path / f"H{suffix}"), h)
    assert np.allclose(read_homography(tmp_path / "H1to3p"), h)
    (tmp_path / "bad").write_text("1 2 3\n4 5 6\n")
    with pytest.raises(ValueError, match="bad"):
        read_homography(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="absent"):
        read_homography(tmp_path / "absent")


def test_loaders_read_both_layouts(sequences, reference):
    hpatches = load_hpatches_sequence(sequences / "v_motorcycle")
    oxford = load_oxford_sequence(sequences / "graf_like")
    for pairs in (hpatches, oxford):
        assert len(pairs) == 2
        for pair, k in zip(pairs, (2, 3)):
            assert np.allclose(pair.homography, TRUE_HOMOGRAPHIES[k])
            image_a, image_b = pair.images()
            # grey -> BGR -> grey is lossless up to rounding
            assert np.abs(image_a.astype(int) - reference).max() <= 1 and image_b.shape == reference.shape
    assert [p.name for p in hpatches] == ["v_motorcycle/1-2", "v_motorcycle/1-3"]
    everything = load_real_pairs(sequences)
    assert len(everything) == 4
    assert len(load_real_pairs(sequences / "graf_like")) == 2


def test_missing_pieces_are_named(tmp_path, reference):
    with pytest.raises(FileNotFoundError):
        load_real_pairs(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no HPatches"):
        load_real_pairs(tmp_path)
    folder = tmp_path / "seq"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "1.ppm"), _colour(reference))
    assert cv2.imwrite(str(folder / "2.ppm"), _colour(reference))
    np.savetxt(folder / "H_1_3", np.eye(3))
    with pytest.raises(ValueError, match="H_1_2"):
        load_hpatches_sequence(folder)


def test_score_definition():
    h_true = TRUE_HOMOGRAPHIES[2]
    shifted = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]]) @ h_true
    assert corner_distance(h_true, h_true, (640, 480)) == pytest.approx(0.0)
    assert corner_distance(shifted, h_true, (640, 480)) == pytest.approx(2.0)
    scored = Evaluation(thresholds=(1, 3, 5))
    scored.add(get_method("identity"), [0.5, 2.0, 4.0, 10.0], [False] * 4, [1.0] * 4)
    summary = scored.summary()["identity"]
    assert (summary["score_1px"], summary["score_3px"], summary["score_5px"]) == (0.25, 0.5, 0.75)
    assert summary["mace"] == pytest.approx(4.125)


def test_sift_scores_high_and_identity_low(sequences):
    pairs = load_real_pairs(sequences)
    result = evaluate_real_pairs(pairs, methods=["identity", "sift_ransac", "orb_ransac"], progress=False)
    report = result.summary()
    sift, identity = report["sift_ransac"], report["identity"]
    assert sift["score_3px"] == 1.0 and sift["failures"] == 0
    assert sift["mace"] < 2.0
    assert identity["score_5px"] == 0.0
    assert report["orb_ransac"]["score_5px"] >= 0.75
    assert len(result.errors["sift_ransac"]) == 4 and result.names[0] == pairs[0].name
    assert "SIFT + RANSAC" in result.table() and pairs[0].name in result.csv_text()


def test_full_size_and_downsized_estimates_agree(sequences, reference):
    pair = load_hpatches_sequence(sequences / "v_motorcycle")[0]
    image_a, image_b = pair.images()
    sift = get_method("sift_ransac")
    size = (image_a.shape[1], image_a.shape[0])
    for max_side in (None, 400):
        h, failed, ms = estimate_full_homography(sift, image_a, image_b, max_side)
        assert not failed and ms > 0
        assert corner_distance(h, pair.homography, size) < 3.0, max_side


def test_a_failure_on_a_real_pair_is_the_identity(sequences):
    blank = np.zeros((300, 400), np.uint8)
    sift = get_method("sift_ransac")
    h, reason, _ = estimate_full_homography(sift, blank, blank)
    assert reason == "too few keypoints" and np.array_equal(h, np.eye(3))


def test_cli_evaluate_pairs(sequences, tmp_path, capsys):
    out = tmp_path / "scores.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate-pairs", str(sequences), "--methods", "identity", "sift_ransac", "--json", str(out),
              "--no-progress"])
    assert exit_info.value.code == 0
    report = json.loads(out.read_text())
    assert report["pairs"] == 4 and report["methods"]["sift_ransac"]["score_3px"] == 1.0
    assert "@3px" in capsys.readouterr().out


def test_cli_evaluate_pairs_with_a_checkpoint(sequences, tmp_path):
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 2)), keras.layers.Flatten(), keras.layers.Dense(8, kernel_initializer="zeros")]
    )
    model.save(tmp_path / "zero.keras")
    out = tmp_path / "scores.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate-pairs", str(sequences / "v_motorcycle"), "--checkpoint", str(tmp_path / "zero.keras"),
              "--network-rho", "8", "--methods", "identity", "network", "--json", str(out), "--no-progress"])
    assert exit_info.value.code == 0
    report = json.loads(out.read_text())
    # zero offsets are the identity homography
    assert report["methods"]["network"]["mace"] == pytest.approx(report["methods"]["identity"]["mace"], rel=1e-6)


def test_network_on_images_of_different_sizes(reference):
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 2)), keras.layers.Flatten(), keras.layers.Dense(8, kernel_initializer="zeros")]
    )
    network = get_method("network", model=model, rho=8)
    height, width = reference.shape
    smaller = cv2.resize(reference, (width * 3 // 4, height * 3 // 4), interpolation=cv2.INTER_AREA)
    h, failed, _ = estimate_full_homography(network, reference, smaller)
    # zero offsets on the size-matched pair: only the scaling between the two sizes is left
    true = np.diag([smaller.shape[1] / width, smaller.shape[0] / height, 1.0])
    assert not failed and corner_distance(h, true, (width, height)) < 1e-6


def test_written_demo_sequence_loads_with_its_homographies(tmp_path, reference):
    from hnet_keras.scoring.real_pairs import write_hpatches_sequence

    folder = write_hpatches_sequence(tmp_path / "v_demo", reference, count=4, seed=3)
    pairs = load_hpatches_sequence(folder)
    assert [p.name for p in pairs] == ["v_demo/1-2", "v_demo/1-3", "v_demo/1-4"]
    for pair in pairs:
        image_a, image_b = pair.images()
        size = image_a.shape[::-1]
        # the stored H maps image 1 onto image k; its inverse does not
        forward = cv2.warpPerspective(image_a, pair.homography, size).astype(int)
        backward = cv2.warpPerspective(image_a, np.linalg.inv(pair.homography), size).astype(int)
        assert np.abs(forward - image_b).mean() < 0.5 < np.abs(backward - image_b).mean()


@pytest.mark.slow
def test_cli_evaluate_pairs_runs_the_learned_features_offline_beside_the_baselines(sequences, tmp_path):
    out = tmp_path / "scores.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate-pairs", str(sequences / "v_motorcycle"), "--methods", "orb_ransac", "sift_ransac",
              "superpoint", "dense_descriptors", "--json", str(out), "--no-progress"])
    assert exit_info.value.code == 0
    methods = json.loads(out.read_text())["methods"]
    assert set(methods) == {"orb_ransac", "sift_ransac", "superpoint", "dense_descriptors"}
    for name in ("superpoint", "dense_descriptors"):  # shipped checkpoints, each scored on the same pairs
        assert 0.0 <= methods[name]["score_3px"] <= 1.0 and methods[name]["failures"] < 4, (name, methods[name])


@pytest.mark.slow
def test_evaluate_pairs_writes_which_candidate_the_default_kept(tmp_path):
    from hnet_keras.data.images import embedded_photo_paths, read_grayscale
    from hnet_keras.scoring.difficulty import write_class_pairs
    from hnet_keras.scoring.real_pairs import write_ppm

    photo, _ = read_grayscale(embedded_photo_paths("test")[1])
    write_class_pairs(tmp_path / "pairs", [photo], "zoom_rotation", 4, seed=0, size=(320, 240))
    write_class_pairs(tmp_path / "pairs", [photo], "no_motion", 1, seed=0, size=(320, 240))
    # Turned by 150 degrees: beyond what the network's own start can explain.
    image = cv2.resize(photo, (320, 240), interpolation=cv2.INTER_AREA)
    turned = cv2.getRotationMatrix2D((160, 120), 150, 1.0)
    h_ab = np.vstack([turned, [0.0, 0.0, 1.0]])
    (tmp_path / "pairs" / "turned").mkdir()
    write_ppm(tmp_path / "pairs" / "turned" / "1.ppm", image)
    write_ppm(tmp_path / "pairs" / "turned" / "2.ppm", cv2.warpPerspective(image, h_ab, (320, 240)))
    np.savetxt(tmp_path / "pairs" / "turned" / "H_1_2", h_ab)
    csv_path = tmp_path / "scores.csv"
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate-pairs", str(tmp_path / "pairs"), "--methods", "sift_ransac", "network+ecc+hypotheses",
              "--csv", str(csv_path), "--json", str(tmp_path / "scores.json"), "--no-progress", "--max-side", "0"])
    assert exit_info.value.code == 0
    rows = list(csv.DictReader(csv_path.open()))
    chosen = {row["index"].split("/")[0]: row["chosen"] for row in rows if row["method"] == "network+ecc+hypotheses"}
    assert len(chosen) == 6 and all(row["chosen"] == "" for row in rows if row["method"] == "sift_ransac")
    assert {choice.split(" (")[0] for choice in chosen.values()} <= {"refined", "start", "identity", "hypothesis"}
    assert chosen["turned"].startswith("hypothesis (") and chosen["turned"].endswith(" deg, zoom 1)")
    errors = {row["index"].split("/")[0]: float(row["mace"]) for row in rows if row["method"] == "network+ecc+hypotheses"}
    assert errors["turned"] < 3.0


def test_evaluate_pairs_runs_the_estimate_pipeline_by_default_and_evaluate_does_not():
    from hnet_keras.cli import build_parser
    from hnet_keras.cli.scoring import _checkpoint_and_methods

    def defaults(*argv):
        return _checkpoint_and_methods(build_parser(list(argv)).parse_args(list(argv)))[1]

    pairs = defaults("evaluate-pairs", "folder", "--json", "out.json", "--checkpoint", "model.keras")
    assert pairs[-3:] == ["network", "network+ecc", "network+ecc+hypotheses"] and "sift_ransac" in pairs
    assert defaults("evaluate-pairs", "folder", "--json", "out.json", "--checkpoint", "model.keras",
                    "--no-refine")[-1] == "network"
    assert defaults("evaluate", "--json", "out.json", "--checkpoint", "model.keras")[-2:] == ["network", "network+ecc"]
