"""``experiments/13_descriptor_classes.py`` on one pair per class from the embedded test photos, offline:
its JSON has every class, method, protocol and threshold, PCK in [0, 1] and non-decreasing with
the threshold, and its pairs are the whole-image benchmark's (``write_class_pairs``, seed 0)."""

import contextlib
import hashlib
import importlib.util
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.scoring.difficulty import class_images, write_class_pairs

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("descriptor_classes", ROOT / "experiments" / "13_descriptor_classes.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)

PAIRS = 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("descriptor_classes")
    out = folder / "result.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        returned = script.main(["--photos", str(folder / "no_such_folder"), "--pairs", str(PAIRS), "--points", "150",
                                "--out", str(out)])
    return json.loads(out.read_text()), returned, stdout.getvalue()


@pytest.mark.slow
def test_json_has_every_class_method_and_threshold_with_pck_in_range(run):
    report, returned, stdout = run
    assert report == json.loads(json.dumps(returned))  # what was written is what main returned
    assert report["photos"] == "embedded test photos" and report["pairs_per_class"] == PAIRS
    assert set(report["classes"]) == set(script.CLASSES)
    assert report["methods"] == list(script.METHODS)
    thresholds = [str(t) for t in report["thresholds_px"]]
    assert thresholds == ["1", "3", "5"]
    for kind, entry in report["classes"].items():
        assert entry["pairs"] == PAIRS and not entry["rescaled"]  # 640x480 already: the protocols leave them
        assert set(entry["table"]) == set(script.METHODS) == set(entry["per_pair"])
        for method in script.METHODS:
            for protocol in script.PROTOCOLS:
                means = [entry["table"][method][protocol][t]["mean"] for t in thresholds]
                assert all(0.0 <= m <= 1.0 for m in means), (kind, method, protocol, means)
                assert means[0] <= means[1] <= means[2], (kind, method, protocol, means)
                for t, m in zip(thresholds, means):
                    assert m == pytest.approx(entry["table"][method][protocol][t]["pck_table"], abs=1e-4)
                per_pair = entry["per_pair"][method][protocol]
                for values in zip(*(per_pair[t] for t in thresholds)):
                    assert len(values) == 3 and all(0.0 <= v <= 1.0 for v in values) and list(values) == sorted(values)
                assert all(len(per_pair[t]) == PAIRS for t in thresholds)
        for comparison, rows in entry["paired"].items():
            first, second = comparison.split("-")
            for protocol in script.PROTOCOLS:
                for t in thresholds:
                    expected = entry["table"][first][protocol][t]["mean"] - entry["table"][second][protocol][t]["mean"]
                    assert rows[protocol][t]["mean"] == pytest.approx(expected, abs=2e-4)
                    assert rows[protocol][t]["wins"] + rows[protocol][t]["losses"] + rows[protocol][t]["ties"] == PAIRS
    for kind, verdict in report["verdicts"]["a_learned_over_daisy"].items():
        assert verdict["met"] == (verdict["difference"] > 0)
    assert set(report["verdicts"]["b_space_over_learned_on_zoom_rotation"]) == set(script.PROTOCOLS)
    summary = json.loads(stdout.strip().splitlines()[-1])  # the last line: all but the per-pair lists
    assert summary["verdicts"] == report["verdicts"] and "per_pair" not in summary["classes"]["viewpoint"]


@pytest.mark.slow
def test_pairs_are_the_whole_image_benchmarks(run, tmp_path):
    report, _, _ = run
    photos = embedded_photo_paths("test")
    _, images = class_images(photos, PAIRS)  # what benchmarks/bench_whole_images.py's classes draw
    for kind in script.CLASSES:
        folders = write_class_pairs(tmp_path / kind, images, kind, PAIRS, seed=0, size=(640, 480))
        listed = report["classes"][kind]["pair_list"]
        assert len(listed) == len(folders) == PAIRS
        for index, (folder, pair) in enumerate(zip(folders, listed)):
            assert pair["name"].startswith(folder.name) and pair["level"] == index % 4
            np.testing.assert_array_equal(np.asarray(pair["homography"]), np.loadtxt(folder / "H_1_2"))
            a, b = (cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE) for name in ("1.ppm", "2.ppm"))
            assert a.shape == b.shape == (480, 640)
            assert pair["sha1"] == hashlib.sha1(a.tobytes() + b.tobytes()).hexdigest()


@pytest.mark.slow
def test_the_rotation_space_is_scored_with_its_comparisons_and_levels(tmp_path):
    out = tmp_path / "rotations.json"
    with contextlib.redirect_stdout(io.StringIO()):
        report = script.main(["--photos", str(tmp_path / "no_such_folder"), "--pairs", "1", "--points", "100",
                              "--classes", "zoom_rotation", "--methods", "learned", "learned_space_rotations",
                              "--angles", "-30", "0", "30", "--out", str(out)])
    assert report["methods"] == ["learned", "learned_space_rotations"]
    assert report["rotation_space_angles"] == [-30.0, 0.0, 30.0] and len(report["rotation_space_maps"]) == 9
    entry = report["classes"]["zoom_rotation"]
    assert set(entry["paired"]) == {"learned_space_rotations-learned"}
    assert set(entry["by_level"]) == {"0"} and entry["by_level"]["0"]["pairs"] == 1
    assert sum(entry["rotation_space_map_pairs"].values()) > 0 and "@" in next(iter(entry["rotation_space_map_pairs"]))
    verdict = report["verdicts"]["c_rotation_space_over_learned_on_zoom_rotation"]["seed"]
    assert verdict["difference"] == entry["paired"]["learned_space_rotations-learned"]["seed"]["3"]["mean"]
    assert report["verdicts"]["a_learned_over_daisy"] == {}  # no DAISY scored
