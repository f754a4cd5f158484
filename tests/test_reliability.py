"""Interrupts, stale and concurrent outputs: real ``make-dataset`` processes, real signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hnet_keras.data.archive import ArchiveError, list_archives, read_archive, write_archive
from hnet_keras.fileio import atomic_write_text, replacing
from hnet_keras.data.generate import generate_dataset
from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.data.loaders import ArchiveDataset, data_loader
from hnet_keras.data.synthesis import SynthesisConfig

ROOT = Path(__file__).resolve().parents[1]
SMALL = SynthesisConfig((160, 120), 32, 8)


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("HNET_KERAS_TRACEBACK", None)
    return env


def start_make_dataset(images, out, workers, pairs_per_image=20, archive_size=50):
    """A real ``python -m hnet_keras make-dataset`` in its own process group (as a shell job is)."""
    command = [sys.executable, "-m", "hnet_keras", "make-dataset", "--images", str(images), "--out", str(out),
               "--pairs-per-image", str(pairs_per_image), "--archive-size", str(archive_size),
               "--workers", str(workers), "--patch", "64", "--image-size", "160", "120", "--rho", "16"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=cli_env(), cwd=ROOT)


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    """340 images (links to the embedded photos): a run of several seconds, archives from the first."""
    folder = tmp_path_factory.mktemp("many")
    for copy in range(20):
        for path in embedded_photo_paths():
            os.symlink(path, folder / f"{copy:02d}_{path.name}")
    return folder


def listed(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest, sorted(Path(name).name for name in manifest["summary"]["archives"])


@pytest.mark.parametrize("workers, to_group", [(2, True), (2, False), (1, True), (0, True)])
def test_ctrl_c_stops_make_dataset_within_2_s_and_keeps_what_was_written(many_images, tmp_path, workers, to_group):
    out = tmp_path / "out"
    process = start_make_dataset(many_images, out, workers)
    try:
        wait_for(lambda: any(out.glob("pairs_*.npz")))
        time.sleep(0.1)
        if to_group:  # Ctrl-C in a terminal: the whole foreground group, workers included
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = process.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert elapsed < 2, f"took {elapsed:.1f} s to stop"
    assert process.returncode == 130
    assert "Traceback" not in stderr
    messages = [line for line in stderr.replace("\r", "\n").splitlines() if "hnet_keras make-dataset" in line]
    assert len(messages) == 1 and "interrupted" in messages[0] and str(out) in messages[0], stderr[-2000:]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no .partial, no lock left
    manifest, names = listed(out)
    on_disk = sorted(p.name for p in out.glob("*.npz"))
    assert manifest["status"] == "interrupted" and names == on_disk and len(on_disk) >= 1
    assert manifest["summary"]["pairs_written"] == sum(len(read_archive(out / n)[1]) for n in names)
    assert list_archives(out) == [out / n for n in names]


def test_a_second_run_on_the_same_folder_is_refused_and_a_dead_ones_lock_does_not_block(many_images, tmp_path):
    out = tmp_path / "out"
    first = start_make_dataset(many_images, out, 1)
    try:
        wait_for(lambda: any(out.glob("pairs_*.npz")))
        second = subprocess.run(
            [sys.executable, "-m", "hnet_keras", "make-dataset", "--out", str(out), "--seed", "1"],
            capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=60,
        )
        assert second.returncode != 0 and "Traceback" not in second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(out) in lines[0] and f"pid {first.pid}" in lines[0], second.stderr
        assert first.poll() is None  # the first run goes on undisturbed
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # dies holding the lock
        first.communicate()
    summary = generate_dataset(out, embedded_photo_paths()[:2], pairs_per_image=3, archive_size=4, config=SMALL,
                               progress=False)
    assert [Path(a).name for a in summary.archives] == ["pairs_00000.npz", "pairs_00001.npz"]
    assert sorted(p.name for p in out.glob("*.npz")) == ["pairs_00000.npz", "pairs_00001.npz"]
    assert not list(out.glob(".*"))


def test_temporary_names_are_unique_per_process(tmp_path):
    with replacing(tmp_path / "a.npz") as temporary:
        assert str(os.getpid()) in temporary.name and temporary.name.startswith(".")
        temporary.write_bytes(b"x")
    assert (tmp_path / "a.npz").read_bytes() == b"x"


def test_a_smaller_rerun_leaves_no_stale_archive_for_the_loaders(tmp_path):
    photos = embedded_photo_paths()[:3]
    first = generate_dataset(tmp_path, photos, pairs_per_image=4, archive_size=5, config=SMALL, progress=False)
    assert len(first.archives) == 3
    second = generate_dataset(tmp_path, photos[:1], pairs_per_image=4, archive_size=5, config=SMALL, seed=1,
                              progress=False)
    assert [Path(a).name for a in second.archives] == ["pairs_00000.npz"]
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["pairs_00000.npz"]
    assert list_archives(tmp_path) == [tmp_path / "pairs_00000.npz"]
    assert ArchiveDataset(tmp_path, batch_size=2, shuffle=False).size == 4
    x, y = next(data_loader(tmp_path, batch_size=10))
    assert len(x) == 4
    # a rerun with another prefix replaces the earlier run's archives too
    third = generate_dataset(tmp_path, photos[:1], pairs_per_image=2, archive_size=5, config=SMALL, prefix="val",
                             progress=False)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["val_00000.npz"] == [Path(third.archives[0]).name]


def test_loaders_read_only_what_the_manifest_lists(tmp_path):
    generate_dataset(tmp_path, embedded_photo_paths()[:1], pairs_per_image=3, archive_size=5, config=SMALL,
                     progress=False)
    images, offsets = read_archive(tmp_path / "pairs_00000.npz")
    write_archive(tmp_path / "copied_in_later.npz", images, offsets)
    assert list_archives(tmp_path) == [tmp_path / "pairs_00000.npz"]
    assert ArchiveDataset(tmp_path, batch_size=2).size == 3
    (tmp_path / "pairs_00000.npz").unlink()
    with pytest.raises(ArchiveError, match="pairs_00000.npz"):
        list_archives(tmp_path)
    atomic_write_text(tmp_path / "manifest.json", "{not json")
    with pytest.raises(ArchiveError, match="manifest.json"):
        list_archives(tmp_path)


def test_a_folder_with_archives_no_run_listed_is_refused_not_mixed(tmp_path):
    images = np.zeros((2, 32, 32, 2), np.uint8)
    write_archive(tmp_path / "published_00000.npz", images, np.zeros((2, 8), np.int64))
    with pytest.raises(ValueError, match="published_00000.npz"):
        generate_dataset(tmp_path, embedded_photo_paths()[:1], config=SMALL, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published_00000.npz"]
