"""Checkpoints that carry their rho, the compact export, and the demo / estimate commands."""

import json
import shutil

import cv2
import numpy as np
import pytest

from hnet_keras.cli import main
from hnet_keras.nets.checkpoint import CHECKPOINT_ENV, export_checkpoint, load_checkpoint, load_pretrained
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.data.synthesis import synthesize_pairs
from hnet_keras.estimators.predict import predict_offsets
from hnet_keras.training.run import train


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return train("smoke", run="smoke", checkpoint_dir=folder, seed=0, verbose=0)


def test_run_checkpoint_loads_with_its_rho(smoke_run):
    model, rho = load_checkpoint(smoke_run.directory)  # the folder: its best.keras
    assert rho == smoke_run.preset.rho == 8
    assert model.input_shape == (None, 32, 32, 2)


def test_exported_weights_reproduce_the_run_model(smoke_run, tmp_path):
    path = export_checkpoint(smoke_run.directory, tmp_path / "compact.weights.h5")
    description = json.loads((tmp_path / "compact.json").read_text())
    assert description["kind"] == "regression" and description["rho"] == 8
    assert description["training"]["steps"] > 0
    exported, rho = load_checkpoint(path)
    original, _ = load_checkpoint(smoke_run.directory / "best.keras")
    pairs, _ = synthesize_pairs(8, embedded_photo_paths("test"), smoke_run.preset.synthesis, seed=1)
    np.testing.assert_array_equal(predict_offsets(exported, pairs, rho), predict_offsets(original, pairs, rho))
    assert not list(tmp_path.glob(".*tmp-*"))


def test_missing_or_undescribed_checkpoints_are_named(tmp_path, smoke_run):
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        load_pretrained(tmp_path / "nowhere.weights.h5")
    smoke_run.model.save_weights(tmp_path / "bare.weights.h5")
    with pytest.raises(FileNotFoundError, match="bare.json"):
        load_checkpoint(tmp_path / "bare.weights.h5")
    with pytest.raises(FileNotFoundError, match="no best.keras"):
        load_checkpoint(tmp_path)


def test_demo_prints_the_table_and_saves_figures(smoke_run, tmp_path, capsys):
    export_checkpoint(smoke_run.directory, tmp_path / "c.weights.h5")
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--out", str(tmp_path / "out"), "--pairs", "12", "--checkpoint", str(tmp_path / "c.weights.h5")])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert "HomographyNet" in printed and "SIFT + RANSAC" in printed and "identity" in printed
    report = json.loads((tmp_path / "out" / "demo.json").read_text())
    assert set(report["methods"]) >= {"identity", "orb_ransac", "sift_ransac", "network"}
    for name in ("mace_bars.png", "example_pair.png"):
        assert cv2.imread(str(tmp_path / "out" / name)) is not None


@pytest.mark.slow
def test_demo_without_a_checkpoint_trains_smoke_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path / "absent.weights.h5"))
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path / "out"), "--pairs", "8"])
    assert "trained the smoke preset first" in capsys.readouterr().out


def test_estimate_command_prints_a_homography_and_an_overlay(smoke_run, tmp_path, capsys):
    export_checkpoint(smoke_run.directory, tmp_path / "c.weights.h5")
    image = read_grayscale(embedded_photo_paths("test")[0])[0]
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "b.png"), np.roll(image, 3, axis=1))
    with pytest.raises(SystemExit) as exited:
        main(["estimate", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--checkpoint",
              str(tmp_path / "c.weights.h5"), "--overlay", str(tmp_path / "overlay.png")])
    assert exited.value.code == 0
    h_ab = np.array(json.loads(capsys.readouterr().out.splitlines()[0])["H_ab"])
    assert h_ab.shape == (3, 3) and np.isfinite(h_ab).all()
    assert cv2.imread(str(tmp_path / "overlay.png")).shape == image.shape + (3,)


def test_a_keras_file_copied_out_of_its_run_keeps_its_rho(smoke_run, tmp_path):
    copy = tmp_path / "copied.keras"
    shutil.copyfile(smoke_run.directory / "best.keras", copy)
    model, rho = load_checkpoint(copy)  # no state.json beside it
    assert rho == 8 and model.input_shape == (None, 32, 32, 2)
    pairs, _ = synthesize_pairs(4, embedded_photo_paths("test"), smoke_run.preset.synthesis, seed=2)
    original, _ = load_checkpoint(smoke_run.directory)
    np.testing.assert_array_equal(predict_offsets(model, pairs, rho), predict_offsets(original, pairs, 8))
    plain = tmp_path / "plain.keras"
    model.save(plain)  # Keras's own file, without a description
    with pytest.raises(ValueError, match="plain.keras: the checkpoint records no rho"):
        load_checkpoint(plain)
    assert load_checkpoint(plain, rho=8)[1] == 8


def test_a_description_without_a_valid_rho_is_refused(smoke_run, tmp_path, capsys):
    path = export_checkpoint(smoke_run.directory, tmp_path / "c.weights.h5")
    description = json.loads((tmp_path / "c.json").read_text())
    for bad in (None, 0, -3, "16"):
        (tmp_path / "c.json").write_text(json.dumps({**description, "rho": bad}))
        with pytest.raises(ValueError, match=r"c\.(weights\.h5|json) .*rho must be a finite number"):
            load_checkpoint(path)
    del description["rho"]
    (tmp_path / "c.json").write_text(json.dumps(description))
    image = read_grayscale(embedded_photo_paths("test")[0])[0]
    cv2.imwrite(str(tmp_path / "a.png"), image)
    with pytest.raises(SystemExit) as exited:
        main(["estimate", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--checkpoint", str(path)])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "rho must be a finite number in (0, 1e+06], got None" in error


def test_export_never_describes_other_weights(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run.directory, run)
    state = json.loads((run / "state.json").read_text())
    state["preset"]["width"] = 0.5  # a state that lies about the model
    (run / "state.json").write_text(json.dumps(state))
    path = export_checkpoint(run, tmp_path / "e.weights.h5", which="last")
    assert json.loads((tmp_path / "e.json").read_text())["options"]["width"] == 0.125  # the weights' own
    assert load_checkpoint(path)[0].count_params() == smoke_run.model.count_params()
    model, _ = load_checkpoint(run / "last.keras")
    model.save(run / "last.keras")  # a run file from before descriptions were stored inside
    with pytest.raises(ValueError, match="does not match its weights"):
        export_checkpoint(run, tmp_path / "f.weights.h5", which="last")
    assert not (tmp_path / "f.weights.h5").exists() and not (tmp_path / "f.json").exists()
    (run / "state.json").write_text("{}")
    with pytest.raises(ValueError, match="state.json: not a training state"):
        export_checkpoint(run, tmp_path / "f.weights.h5")
