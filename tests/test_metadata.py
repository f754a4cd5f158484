"""Metadata is checked before use: absurd numbers in descriptions, states, histories and
manifests are refused in one line naming the file and the key, quickly."""

import json
import time

import numpy as np
import pytest

from hnet_keras.data.archive import ArchiveError, read_manifest, write_archive
from hnet_keras.data.loaders import archives_rho
from hnet_keras.nets.checkpoint import check_description, export_checkpoint, load_checkpoint, read_description
from hnet_keras.nets.models import build_model
from hnet_keras.training.run import train
from test_run_folder import copy_run, run_cli


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return train("smoke", checkpoint_dir=folder, run="base", iterations=20, verbose=0)


def described_weights(tmp_path, description):
    """A ``.weights.h5`` (not read before its description is checked) with ``description`` beside it."""
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"weights")
    (tmp_path / "model.json").write_text(json.dumps(description))
    return path


ITERATIVE = {"kind": "iterative", "options": {"input_size": 32, "rho": 8, "refinements": 2}, "rho": 8}


@pytest.mark.parametrize("change, key", [
    ({"options": {"input_size": 32, "rho": 8, "iterations": 1_000_000_000}}, "options.refinements"),
    ({"options": {"input_size": 1_000_000, "rho": 8, "refinements": 2}}, "options.input_size"),
    ({"rho": float("inf")}, "'rho'"),
    ({"rho": 32}, "'rho' 32 and 'options.rho' 8 disagree"),
    ({"options": {"input_size": 32, "rho": -1, "refinements": 2}}, "options.rho"),
    ({"kind": "regression", "options": {"input_size": 64, "width": 1e9}}, "options.width"),
    ({"kind": "classification", "options": {"input_size": 64, "bins": 10**8}}, "options.bins"),
    ({"options": "big"}, "'options' must be a JSON object"),
])
def test_absurd_descriptions_are_refused_in_one_line_naming_the_key(tmp_path, change, key):
    path = described_weights(tmp_path, {**ITERATIVE, **change})
    started = time.perf_counter()
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    assert time.perf_counter() - started < 5
    message = str(error.value)
    assert "\n" not in message and "model.json" in message and key in message


def test_the_old_key_of_refinement_steps_still_loads_and_reads_as_refinements(tmp_path):
    model = build_model("iterative", input_size=32, rho=8, refinements=2, channels=16, context=8, head=16)
    path = tmp_path / "old.weights.h5"
    model.save_weights(path)
    old = {"kind": "iterative", "rho": 8, "training": {"iterations": 300},
           "options": {"input_size": 32, "rho": 8, "iterations": 2, "channels": 16, "context": 8, "head": 16}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    description = read_description(path)
    assert description["options"]["refinements"] == 2 and "iterations" not in description["options"]
    assert description["training"] == {"steps": 300}  # optimizer steps are "steps"
    loaded, rho = load_checkpoint(path)
    assert rho == 8 and loaded.output_shape == (None, 2, 8)


def test_shipped_checkpoints_read_their_training_steps_under_one_key():
    from hnet_keras.nets.checkpoint import SHIPPED_CHECKPOINT

    compact = SHIPPED_CHECKPOINT.parents[1] / "hnet_compact" / "hnet_compact.weights.h5"
    steps = [read_description(path)["training"]["steps"] for path in (compact, SHIPPED_CHECKPOINT)]
    assert steps == [28_000, 10_000]
    assert read_description(SHIPPED_CHECKPOINT)["options"]["refinements"] == 6


def test_an_imagenet_description_loads_its_own_weights_without_downloading(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: offline")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    model = build_model("mobilenet", input_size=32, width=0.35)
    model.save_weights(tmp_path / "m.weights.h5")
    description = {"kind": "mobilenet", "options": {"input_size": 32, "width": 0.35, "weights": "imagenet"}, "rho": 8}
    (tmp_path / "m.json").write_text(json.dumps(description))
    loaded, rho = load_checkpoint(tmp_path / "m.weights.h5")
    assert rho == 8
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_network_rho_must_be_finite():
    code, line = run_cli(["evaluate", "--methods", "identity", "--network-rho", "inf", "--pairs", "2",
                          "--json", "unused.json"])
    assert code == 2 and "--network-rho" in line and "finite" in line
    with pytest.raises(ValueError, match="finite"):
        check_description({**ITERATIVE, "rho": float("nan")}, "x.json")


@pytest.mark.parametrize("file, content, key", [
    ("state.json", lambda s: {**s, "epoch": 10**12}, "'epoch'"),
    ("state.json", lambda s: {**s, "iterations": 10**12, "epoch": 10**12}, "'iterations'"),
    ("state.json", lambda s: {**s, "preset": 5}, "'preset'"),
    ("state.json", lambda s: [1, 2], "not a training state"),
    ("history.json", lambda h: [1, 2], "row 0"),
    ("history.json", lambda h: {"epoch": 1}, "not a training history"),
])
@pytest.mark.slow
def test_edited_run_files_are_refused_by_resume_and_export_in_one_line(smoke_run, tmp_path, file, content, key):
    folder = copy_run(smoke_run, tmp_path, "edited")
    (folder / file).write_text(json.dumps(content(json.loads((folder / file).read_text()))))
    for command in (["train", "--preset", "smoke", "--checkpoints", str(tmp_path), "--run", "edited",
                      "--iterations", "20", "--quiet"],
                     ["export-checkpoint", str(folder), "--out", str(tmp_path / "e.weights.h5")]):
        started = time.perf_counter()
        code, line = run_cli(command)
        assert time.perf_counter() - started < 5
        assert code == 2 and file in line and key in line


def test_a_truncated_model_file_is_named_as_truncated_not_missing(smoke_run, tmp_path):
    folder = copy_run(smoke_run, tmp_path, "truncated")
    data = (folder / "best.keras").read_bytes()
    (folder / "best.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"best.keras: not a complete .keras file .*truncated") as error:
        load_checkpoint(folder / "best.keras")
    assert "not found" not in str(error.value)


def write_manifest(folder, **parameters):
    write_archive(folder / "pairs_00000.npz", np.zeros((2, 32, 32, 2), np.uint8), np.zeros((2, 8), np.int64))
    manifest = {"parameters": {"rho": 8, "patch_size": 32, "archive_size": 2, "pairs_per_image": 2,
                               "image_size": [64, 48], "seed": 0, **parameters},
                "status": "complete", "summary": {"archives": ["pairs_00000.npz"]}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


@pytest.mark.parametrize("parameters, key", [
    ({"rho": float("inf")}, "parameters.rho"),
    ({"rho": "8"}, "parameters.rho"),
    ({"patch_size": 10**7}, "parameters.patch_size"),
    ({"archive_size": -1}, "parameters.archive_size"),
])
def test_absurd_manifests_are_refused_naming_the_key(tmp_path, parameters, key):
    manifest = write_manifest(tmp_path, **parameters)
    with pytest.raises(ArchiveError, match=key) as error:
        read_manifest(manifest)
    assert "manifest.json" in str(error.value)
    with pytest.raises(ValueError, match=key):
        archives_rho(tmp_path)


def test_a_sound_manifest_gives_its_rho_and_archives(tmp_path):
    manifest = write_manifest(tmp_path)
    assert read_manifest(manifest)["summary"]["archives"] == ["pairs_00000.npz"]
    assert archives_rho(tmp_path) == 8
