import csv
import json

import cv2
import numpy as np
import pytest

from hnet_keras.data.archive import write_archive
from hnet_keras.cli import main
from hnet_keras.scoring.evaluation import PAPER_TABLE, PROTOCOLS, evaluate, format_table, load_test_set
from hnet_keras.fileio import atomic_write_text
from hnet_keras.geometry import corner_errors
from hnet_keras.estimators.methods import get_method


@pytest.fixture(scope="module")
def test_set():
    return load_test_set(protocol="train", seed=7, count=24)


def _run_cli(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def test_load_test_set_is_seeded_and_follows_the_protocol():
    a = load_test_set(protocol="train", seed=1, count=6)
    b = load_test_set(protocol="train", seed=1, count=6)
    c = load_test_set(protocol="train", seed=2, count=6)
    assert a.pairs.shape == (6, 128, 128, 2) and a.pairs.dtype == np.uint8
    assert np.array_equal(a.pairs, b.pairs) and np.array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.offsets, c.offsets)
    assert a.source == "embedded photos (test hold-out)" and a.protocol == "train" and a.seed == 1
    with pytest.warns(UserWarning, match="too small"):  # two hold-out photos are under 384 px
        paper = load_test_set(protocol="paper", seed=0, count=4)
    assert paper.pairs.shape == (4, 256, 256, 2)
    assert np.abs(paper.offsets).max() <= 64
    assert PROTOCOLS["paper"].image_size == (640, 480) and PROTOCOLS["paper"].rho == 64
    with pytest.raises(ValueError, match="unknown protocol"):
        load_test_set(protocol="imagenet")


def test_evaluate_summarizes_per_pair_errors(test_set):
    result = evaluate(test_set, methods=["identity", "sift_ransac"], progress=False)
    assert result.methods == ["identity", "sift_ransac"]
    summary = result.summary()
    norms = np.linalg.norm(test_set.offsets.reshape(-1, 4, 2), axis=2)
    assert summary["identity"]["mace"] == pytest.approx(norms.mean())
    assert summary["identity"]["median"] == pytest.approx(np.median(norms.mean(axis=1)))
    assert summary["identity"]["p90"] == pytest.approx(np.percentile(norms.mean(axis=1), 90))
    assert summary["identity"]["failure_rate"] == 0.0
    sift = summary["sift_ransac"]
    assert sift["mace"] < summary["identity"]["mace"]
    assert sift["failures"] == int(result.failed["sift_ransac"].sum())
    assert sift["failures"] == sum(sift["failure_reasons"].values())
    # a failed pair counts with the identity's error
    failed = result.failed["sift_ransac"]
    assert np.allclose(result.errors["sift_ransac"][failed], result.errors["identity"][failed])
    assert all(s["ms_per_pair"] >= 0 for s in summary.values())


def test_failures_are_counted_not_raised():
    blank = np.full((5, 128, 128, 2), 90, np.uint8)
    offsets = np.tile(np.array([4, -3, 2, 5, -6, 1, 0, 2]), (5, 1))
    result = evaluate(blank, offsets, methods=["orb_ransac", "sift_ransac", "ecc"], progress=False)
    for name, figures in result.summary().items():
        assert figures["failures"] == 5 and figures["failure_rate"] == 1.0, name
        assert figures["mace"] == pytest.approx(corner_errors(offsets, np.zeros(8)).mean())


def test_json_and_csv_are_written_atomically_and_read_back(tmp_path, test_set):
    result = evaluate(test_set, methods=["identity", "orb_ransac"], progress=False)
    json_path = result.write_json(tmp_path / "out" / "report.json")
    csv_path = result.write_csv(tmp_path / "out" / "report.csv")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.csv", "report.json"]
    report = json.loads(json_path.read_text())
    assert report["pairs"] == 24 and report["seed"] == 7 and report["protocol"] == "train"
    assert set(report["methods"]) == {"identity", "orb_ransac"}
    for name, figures in result.summary().items():
        for key in ("mace", "median", "p90", "failure_rate", "ms_per_pair"):
            assert report["methods"][name][key] == pytest.approx(figures[key])
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 24
    orb = [r for r in rows if r["method"] == "orb_ransac"]
    assert np.mean([float(r["mace"]) for r in orb]) == pytest.approx(report["methods"]["orb_ransac"]["mace"], abs=1e-4)
    assert [int(r["true_0"]) for r in orb] == list(test_set.offsets[:, 0])
    # a failed write leaves the old file and no temporary behind
    with pytest.raises(TypeError):
        atomic_write_text(json_path, None)
    assert json.loads(json_path.read_text()) == report
    assert not list((tmp_path / "out").glob(".*partial"))


def test_cli_writes_table_json_csv_and_figures(tmp_path, capsys):
    json_path, figures = tmp_path / "eval.json", tmp_path / "figures"
    code = _run_cli(
        ["evaluate", "--pairs", "8", "--seed", "3", "--methods", "identity", "sift_ransac",
         "--json", str(json_path), "--figures", str(figures), "--no-progress"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "MACE" in out and "SIFT + RANSAC" in out and "identity (no motion)" in out
    report = json.loads(json_path.read_text())
    assert report["pairs"] == 8 and report["seed"] == 3 and list(report["methods"]) == ["identity", "sift_ransac"]
    assert (tmp_path / "eval.csv").is_file()
    pngs = sorted(p.name for p in figures.glob("*.png"))
    assert "error_cdf.png" in pngs and "mace_bars.png" in pngs and "example_0.png" in pngs
    for png in figures.glob("*.png"):
        assert cv2.imread(str(png)) is not None


def test_cli_evaluates_archives(tmp_path, capsys, test_set):
    write_archive(tmp_path / "data" / "a.npz", test_set.pairs[:10], test_set.offsets[:10])
    write_archive(tmp_path / "data" / "b.npz", test_set.pairs[10:], test_set.offsets[10:])
    code = _run_cli(["evaluate", "--data", str(tmp_path / "data"), "--pairs", "0", "--methods", "identity",
                     "--json", str(tmp_path / "r.json"), "--no-progress"])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pairs"] == 24 and report["protocol"] is None
    norms = np.linalg.norm(test_set.offsets.reshape(-1, 4, 2), axis=2)
    assert report["methods"]["identity"]["mace"] == pytest.approx(norms.mean())
    partial = load_test_set(data=tmp_path / "data", count=13)
    assert len(partial.pairs) == 13 and np.array_equal(partial.offsets, test_set.offsets[:13])


def test_cli_errors_are_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HNET_KERAS_CHECKPOINT", str(tmp_path / "no_shipped.weights.h5"))
    assert _run_cli(["evaluate", "--methods", "network", "--json", str(tmp_path / "r.json")]) == 2
    assert "need --checkpoint" in capsys.readouterr().err
    assert _run_cli(["evaluate", "--checkpoint", str(tmp_path / "missing.keras"), "--json",
                     str(tmp_path / "r.json")]) == 2
    assert "missing.keras" in capsys.readouterr().err
    assert _run_cli(["evaluate", "--data", str(tmp_path / "nothing"), "--methods", "identity",
                     "--json", str(tmp_path / "r.json")]) == 2
    assert "nothing" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(SystemExit):
        main(["evaluate", "--methods", "surf", "--json", "x.json"])
    assert "invalid choice" in capsys.readouterr().err


def test_evaluate_help_lists_every_argument(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for option in ("--checkpoint", "--data", "--images", "--methods", "--protocol", "--seed", "--pairs",
                   "--json", "--figures", "--network-rho"):
        assert option in text
    assert "(default: train)" in text and "9.2" in text


def _constant_model(input_size, value):
    import keras

    return keras.Sequential(
        [
            keras.Input((input_size, input_size, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(8, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value)),
        ]
    )


def test_network_under_the_paper_protocol_uses_its_training_rho():
    with pytest.warns(UserWarning, match="too small"):
        paper = load_test_set(protocol="paper", seed=0, count=3)
    # normalized output 0.5 on a 128 px input: 0.5 * 32 = 16 px at 128, doubled to 32 px at 256
    model = _constant_model(128, 0.5)
    result = evaluate(paper, methods=["identity", "network"], model=model, network_rho=32, progress=False)
    assert np.allclose(result.predictions["network"], 0.5 * 32 * 2)
    assert result.to_dict()["network_rho"] == 32
    zero = evaluate(paper, methods=["identity", "network"], model=_constant_model(128, 0.0), network_rho=32,
                    progress=False)
    summary = zero.summary()
    assert summary["network"]["mace"] == pytest.approx(summary["identity"]["mace"])
    assert "paper_table" in zero.to_dict() and zero.to_dict()["paper_table"] == PAPER_TABLE
    assert "DeTone" in zero.table()


def test_cli_runs_the_network_from_a_checkpoint(tmp_path, capsys):
    checkpoint = tmp_path / "zero.keras"
    _constant_model(32, 0.0).save(checkpoint)  # a plain Keras file: it records no rho
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--pairs", "6", "--methods", "identity", "network",
            "--json", str(tmp_path / "r.json"), "--no-progress"]
    assert _run_cli(argv) == 2
    error = capsys.readouterr().err
    assert "zero.keras" in error and "records no rho" in error and "Traceback" not in error
    for bad in ("0", "-4"):
        assert _run_cli(argv + ["--network-rho", bad]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("hnet_keras evaluate: error: --network-rho: rho must be a finite number")
        assert error.endswith(f"got {float(bad)}") and len(error.splitlines()) == 1
    assert not (tmp_path / "r.json").exists()
    assert _run_cli(argv + ["--network-rho", "8"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["methods"]["network"]["mace"] == pytest.approx(report["methods"]["identity"]["mace"])
    assert report["network_rho"] == 8


def test_in_memory_pairs_need_offsets(test_set):
    with pytest.raises(ValueError, match="offsets"):
        evaluate(test_set.pairs, methods=["identity"], progress=False)
    with pytest.raises(ValueError, match="uint8"):
        evaluate(test_set.pairs.astype(np.float32), test_set.offsets, methods=["identity"], progress=False)
    with pytest.raises(ValueError, match="offsets must be"):
        evaluate(test_set.pairs, test_set.offsets[:-1], methods=["identity"], progress=False)


def test_table_never_truncates_method_names(test_set):
    named = get_method("identity")  # a method whose label is longer than the table's first column
    named.name, named.description = "long", "a method with a very long descriptive label"
    result = evaluate(test_set, methods=["identity", named], progress=False)
    lines = result.table().splitlines()
    assert any(line.startswith("a method with a very long descriptive label ") for line in lines)
    assert len({len(line) for line in lines[1:]}) == 1  # the columns line up
    assert format_table("x", ["a"], [("y" * 40, ["1"])]).splitlines()[2] == "y" * 40 + " " * 8 + "1"


def test_method_names_where_the_offsets_go_are_refused():
    test_set = load_test_set(count=2, seed=0)
    with pytest.raises(ValueError, match="PairSet carries its own offsets"):
        evaluate(test_set, ["identity"])
    with pytest.raises(ValueError, match="method names"):
        evaluate(test_set.pairs, ["identity", "sift_ransac"])
    result = evaluate(test_set, methods=["identity"], progress=False)
    assert result.methods == ["identity"]
