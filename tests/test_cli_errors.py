"""Bad input through the real command line: one line naming the argument or file, no traceback.

Each case runs ``python -m hnet_keras ...`` in a subprocess, as a user would.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from hnet_keras.data.archive import ArchiveError, write_archive
from hnet_keras.data.generate import generate_dataset
from hnet_keras.data.images import embedded_photo_paths, list_images, read_grayscale, split_images
from hnet_keras.data.loaders import ArchiveDataset, data_loader
from hnet_keras.scoring.real_pairs import evaluate_real_pairs, write_hpatches_sequence
from hnet_keras.data.synthesis import SynthesisConfig

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("HNET_KERAS_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "hnet_keras", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=300)


def assert_one_line_error(result, *names):
    """Non-zero exit, no traceback, exactly one error line on stderr, naming each of ``names``."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr[-2000:]
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


@pytest.fixture
def empty_archive(tmp_path):
    return write_archive(tmp_path / "empty.npz", np.zeros((0, 32, 32, 2), np.uint8), np.zeros((0, 8), np.int64))


def test_out_or_dest_that_is_a_file(a_file):
    assert_one_line_error(run_cli("make-dataset", "--out", a_file), "--out", a_file)
    assert_one_line_error(run_cli("download-coco", "--dest", a_file, "--base-url", "http://127.0.0.1:9/"),
                          "--dest", a_file)
    assert_one_line_error(run_cli("make-dataset", "--out", a_file / "sub"), "--out", a_file)
    assert_one_line_error(run_cli("export-checkpoint", "run", "--out", a_file.parent), "--out")


def test_json_or_csv_that_cannot_be_written_is_refused_before_the_work(tmp_path, a_file):
    line = assert_one_line_error(run_cli("evaluate", "--methods", "identity", "--json", tmp_path), "--json", tmp_path)
    assert "folder" in line
    assert_one_line_error(run_cli("evaluate", "--methods", "identity", "--json", tmp_path / "r.json",
                                  "--csv", a_file / "r.csv"), "--csv", a_file)
    assert_one_line_error(run_cli("evaluate-pairs", tmp_path, "--methods", "identity", "--json", tmp_path),
                          "--json", tmp_path)
    assert not list(tmp_path.glob("*.json"))


def test_sizes_that_cannot_fit_in_memory_or_are_not_positive(tmp_path):
    line = assert_one_line_error(run_cli("make-dataset", "--out", tmp_path / "o", "--archive-size", "100000000"),
                                 "--archive-size", "100000000")
    assert "TiB" in line and "at most" in line
    assert not (tmp_path / "o").exists()
    for args in (("make-dataset", "--out", tmp_path / "o", "--archive-size", "0"),
                 ("make-dataset", "--out", tmp_path / "o", "--pairs-per-image", "-1"),
                 ("evaluate", "--methods", "identity", "--batch-size", "0", "--json", tmp_path / "r.json"),
                 ("train", "--preset", "smoke", "--batch-size", "0", "--checkpoints", tmp_path),
                 ("train", "--preset", "smoke", "--learning-rate", "-1", "--checkpoints", tmp_path),
                 ("demo", "--pairs", "0", "--out", tmp_path / "demo")):
        flag = next(arg for arg in args if str(arg).startswith("--") and arg not in ("--out", "--methods", "--json",
                                                                                 "--preset", "--checkpoints"))
        assert_one_line_error(run_cli(*args), flag)
    assert not list(tmp_path.iterdir())


def test_overlay_with_an_extension_opencv_cannot_write(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((64, 64), np.uint8))
    assert_one_line_error(run_cli("estimate", image, image, "--overlay", tmp_path / "x.xyz"), "--overlay", "x.xyz")


def test_evaluate_on_archives_without_pairs_writes_no_nan(tmp_path, empty_archive):
    out = tmp_path / "r.json"
    assert_one_line_error(run_cli("evaluate", "--data", empty_archive, "--pairs", "0", "--methods", "identity",
                                  "--json", out), empty_archive)
    assert not out.exists()
    assert_one_line_error(run_cli("evaluate", "--pairs", "0", "--methods", "identity", "--json", out), "--pairs")
    assert not out.exists()


@pytest.mark.slow
def test_train_on_an_archive_without_pairs_names_it(tmp_path, empty_archive):
    assert_one_line_error(run_cli("train", "--preset", "smoke", "--data", empty_archive, "--checkpoints",
                                  tmp_path / "runs", "--quiet"), empty_archive)


@pytest.mark.slow
def test_train_on_a_folder_too_small_to_split_names_the_empty_split(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for path in embedded_photo_paths()[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    parts = split_images(list_images(folder))
    empty = [name for name in ("train", "validation") if not parts[name]]
    assert empty  # two files cannot fill a train and a validation part
    line = assert_one_line_error(run_cli("train", "--preset", "smoke", "--images", folder, "--checkpoints",
                                         tmp_path / "runs", "--quiet"), folder, *empty)
    assert "2 image" in line and f"train {len(parts['train'])}" in line


@pytest.mark.slow
def test_demo_with_a_mistyped_checkpoint_fails_instead_of_training(tmp_path):
    result = run_cli("demo", "--checkpoint", tmp_path / "typo.keras", "--out", tmp_path / "demo", "--pairs", "4")
    assert_one_line_error(result, "typo.keras")
    assert "smoke" not in result.stdout and not (tmp_path / "demo").exists()


def test_make_dataset_into_a_folder_of_foreign_archives(tmp_path):
    write_archive(tmp_path / "published.npz", np.zeros((1, 32, 32, 2), np.uint8), np.zeros((1, 8), np.int64))
    assert_one_line_error(run_cli("make-dataset", "--out", tmp_path, "--archive-size", "4"), "published.npz")
    assert_one_line_error(run_cli("make-dataset", "--out", tmp_path / "o", "--images", tmp_path / "nope"), "nope")
    line = assert_one_line_error(run_cli("make-dataset", "--out", tmp_path / "o", "--images",
                                         tmp_path / "published.npz"), "published.npz")
    assert "not a folder" in line


def test_the_traceback_stays_available_for_debugging(a_file):
    env_result = subprocess.run(
        [sys.executable, "-m", "hnet_keras", "make-dataset", "--out", str(a_file.parent / "o"), "--images",
         str(a_file.parent / "nope")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HNET_KERAS_TRACEBACK": "1"},
    )
    assert env_result.returncode != 0 and "Traceback" in env_result.stderr and "nope" in env_result.stderr


# --- library behind the commands ------------------------------------------------------------------
def first_batch_or_error(loader_factory):
    """What the first batch gives within 20 s: ``("batch", x)`` or ``("error", e)``; fails on a hang."""
    outcome = []

    def run():
        try:
            outcome.append(("batch", next(iter(loader_factory()))))
        except Exception as error:  # noqa: BLE001 - reported to the test
            outcome.append(("error", error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert outcome, "the loader hangs"
    return outcome[0]


def test_loaders_refuse_archives_without_pairs_naming_them(empty_archive, tmp_path):
    kind, error = first_batch_or_error(lambda: data_loader(empty_archive, batch_size=4, rho=32))
    assert kind == "error" and isinstance(error, ArchiveError) and "empty.npz" in str(error)
    with pytest.raises(ArchiveError, match="empty.npz"):
        ArchiveDataset(empty_archive, batch_size=4, rho=32)


def test_broken_links_and_folders_named_like_images_are_skipped_counted_and_named(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in embedded_photo_paths()[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    os.symlink(tmp_path / "gone.png", folder / "dangling.png")
    (folder / "album.jpg").mkdir()
    assert read_grayscale(folder / "dangling.png", warn=False) == (None, "unreadable (a broken symbolic link)")
    with pytest.warns(UserWarning) as caught:
        summary = generate_dataset(tmp_path / "out", folder, pairs_per_image=2, archive_size=8,
                                   config=SynthesisConfig((160, 120), 32, 8), progress=False)
    assert summary.images_used == 2 and summary.images_skipped == {"unreadable": 2}
    assert sorted(Path(p).name for p in summary.skipped_files) == ["album.jpg", "dangling.png"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken symbolic link" in messages and "a folder" in messages


def test_an_unreadable_image_skips_its_pair_and_keeps_the_others(tmp_path):
    image = read_grayscale(embedded_photo_paths("test")[0])[0]
    sequence = write_hpatches_sequence(tmp_path / "v_seq", image, count=4, seed=1)
    victim = next(p for p in sorted(sequence.iterdir()) if p.stem == "3")
    victim.write_bytes(b"\x89PNG broken")
    with pytest.warns(UserWarning, match=victim.name):
        report = evaluate_real_pairs(sequence, methods=["identity"], progress=False)
    assert report.names == ["v_seq/1-2", "v_seq/1-4"] and len(report.errors["identity"]) == 2
    assert [entry["pair"] for entry in report.context["skipped"]] == ["v_seq/1-3"]
    assert victim.name in report.context["skipped"][0]["reason"]
    assert "1 skipped" in report.table()
    json.dumps(report.to_dict())


@pytest.mark.parametrize("command", [
    ["make-dataset", "--out", "{tmp}/out", "--prefix", "sub/x"],
    ["make-dataset", "--out", "{tmp}/out", "--prefix", "../x"],
    ["make-dataset", "--out", "{tmp}/out", "--prefix", "/tmp/x"],
    ["train", "--checkpoints", "{tmp}/runs", "--run", "../x"],
])
def test_output_names_cannot_leave_their_folder(tmp_path, command):
    result = run_cli(*[part.format(tmp=tmp_path) for part in command])
    assert result.returncode == 2
    assert_one_line_error(result, "plain name")
    assert not list(tmp_path.iterdir())  # nothing written, inside or outside
