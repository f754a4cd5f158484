"""A run folder belongs to one training run: the lock, half-written folders, resume identity,
run names that stay in their folder."""

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hnet_keras.cli import main
from hnet_keras.fileio import FolderBusy, folder_lock, replacing
from hnet_keras.training.run import train

ROOT = Path(__file__).resolve().parents[1]


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("HNET_KERAS_TRACEBACK", None)
    return env


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("hnet_keras ")]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished smoke run (2 epochs of 10 steps)."""
    folder = tmp_path_factory.mktemp("runs")
    result = train("smoke", checkpoint_dir=folder, run="base", iterations=20, verbose=0, validation_data=False)
    return result


def copy_run(run, tmp_path, name="copy"):
    target = tmp_path / name
    target.mkdir()
    for path in run.directory.iterdir():
        if path.is_file() and not path.name.startswith("."):
            (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.slow
def test_two_train_runs_on_one_folder_one_trains_the_other_is_refused_then_it_resumes(tmp_path):
    command = [sys.executable, "-m", "hnet_keras", "train", "--preset", "smoke", "--checkpoints", str(tmp_path),
               "--run", "shared", "--iterations", "120", "--quiet"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                             cwd=ROOT) for _ in range(2)]
    outcomes = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], [(code, err[-500:]) for code, _, err in outcomes]
    refused = next(err for code, _, err in outcomes if code == 2)
    assert "Traceback" not in refused
    [line] = error_lines(refused)
    assert "another train run (pid " in line and str(tmp_path / "shared") in line
    folder = tmp_path / "shared"
    state = json.loads((folder / "state.json").read_text())
    assert (state["epoch"], state["iterations"]) == (12, 120)
    assert len(json.loads((folder / "history.json").read_text())) == 12
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    # The folder then resumes cleanly, from epoch 12.
    resumed = train("smoke", checkpoint_dir=tmp_path, run="shared", iterations=140, verbose=0)
    assert resumed.resumed_from == 12 and [row["iterations"] for row in resumed.history][-2:] == [130, 140]


def test_a_locked_run_folder_is_refused_in_one_line_naming_the_pid(tmp_path):
    folder = tmp_path / "smoke"
    folder.mkdir()
    started = time.perf_counter()
    with folder_lock(folder, "train"):
        with pytest.raises(FolderBusy, match=rf"another train run \(pid {os.getpid()}\)"):
            train("smoke", checkpoint_dir=tmp_path, verbose=0)
    assert time.perf_counter() - started < 5
    assert not list(folder.iterdir())  # the lock file went with its holder; nothing was written


@pytest.mark.slow
def test_temporaries_hold_the_pid_and_stale_ones_are_removed(finished_run, tmp_path):
    with replacing(tmp_path / "last.keras", keep_suffix=True) as temporary:
        assert temporary.name == f".{os.getpid()}.tmp-last.keras"
        temporary.write_bytes(b"x")
    folder = copy_run(finished_run, tmp_path)
    stale = [folder / ".4242.tmp-last.keras", folder / ".history.json.4242.partial"]
    for path in stale:
        path.write_bytes(b"half")
    train("smoke", checkpoint_dir=tmp_path, run=folder.name, iterations=20, verbose=0, validation_data=False)
    assert not [p for p in stale if p.exists()]


@pytest.mark.slow
def test_a_half_written_folder_restarts_or_is_refused_in_one_line(finished_run, tmp_path):
    # Killed before the first state.json: the run starts over, saying so.
    folder = copy_run(finished_run, tmp_path, "no_state")
    (folder / "state.json").unlink()
    with pytest.warns(UserWarning, match="last.keras without state.json.*starting the run over"):
        result = train("smoke", checkpoint_dir=tmp_path, run="no_state", iterations=20, verbose=0,
                       validation_data=False)
    assert result.resumed_from == 0 and len(result.history) == 2
    # A damaged last.keras (what two writers once made): one line naming it, no traceback.
    folder = copy_run(finished_run, tmp_path, "damaged")
    data = (folder / "last.keras").read_bytes()
    (folder / "last.keras").write_bytes(data[: len(data) // 3])
    code, err = run_cli(["train", "--preset", "smoke", "--checkpoints", str(tmp_path), "--run", "damaged",
                         "--iterations", "20"])
    assert code == 2 and "last.keras: cannot resume from this model file" in err and "--no-resume" in err


def run_cli(argv):
    """``(exit code, the one error line)`` of a command run in this process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(argv)
    lines = [line for line in err.getvalue().splitlines() if line.startswith("hnet_keras ")]
    assert len(lines) == 1 and "Traceback" not in err.getvalue(), err.getvalue()
    return exit_info.value.code, lines[0]


def test_resume_refuses_another_seed_or_photo_source(finished_run, tmp_path):
    folder = copy_run(finished_run, tmp_path, "identity")
    with pytest.raises(ValueError, match=r"other options \(seed 0 -> 3\)"):
        train("smoke", checkpoint_dir=tmp_path, run=folder.name, iterations=20, seed=3, verbose=0,
              validation_data=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    from hnet_keras.data.images import embedded_photo_paths

    for path in embedded_photo_paths():
        os.symlink(path, photos / path.name)
    with pytest.raises(ValueError, match=r"source 'embedded photos' -> 'images .*photos'"):
        train("smoke", checkpoint_dir=tmp_path, run=folder.name, iterations=20, images=photos, verbose=0,
              validation_data=False)
    assert json.loads((folder / "state.json").read_text())["seed"] == 0


@pytest.mark.parametrize("run", ["../x", "a/b", "..", "/tmp/x"])
def test_run_names_cannot_leave_the_checkpoint_folder(tmp_path, run):
    with pytest.raises(ValueError, match="must be a plain name"):
        train("smoke", checkpoint_dir=tmp_path / "runs", run=run, verbose=0)
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()
