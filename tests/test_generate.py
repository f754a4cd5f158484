import json
import shutil

import cv2
import numpy as np
import pytest

from hnet_keras.data.archive import read_archive
from hnet_keras.cli import main
from hnet_keras.data.generate import generate_dataset
from hnet_keras.geometry import offsets_to_homography
from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.data.synthesis import SynthesisConfig


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Real photos plus every kind of awkward file the generator must survive."""
    folder = tmp_path_factory.mktemp("images")
    for path in embedded_photo_paths()[:4]:
        shutil.copy(path, folder / path.name)
    photo = cv2.imread(str(embedded_photo_paths()[0]), cv2.IMREAD_COLOR)
    cv2.imwrite(str(folder / "alpha.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "deep.tif"), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "tiny.png"), photo[:100, :100])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


def test_bad_files_are_skipped_counted_and_named(tmp_path, mixed_folder):
    with pytest.warns(UserWarning) as caught:
        summary = generate_dataset(tmp_path, mixed_folder, pairs_per_image=3, archive_size=8, progress=False)
    assert summary.images_used == 6  # 4 photos + RGBA + 16-bit, converted
    assert summary.images_skipped == {"unreadable": 1, "too small": 1}
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.jpg" in messages and "tiny.png" in messages
    assert summary.pairs_written == 18
    lengths = [len(read_archive(p)[1]) for p in summary.archives]
    assert lengths == [8, 8, 2]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["summary"]["pairs_written"] == 18 and manifest["parameters"]["rho"] == 32


def test_same_seed_gives_byte_identical_archives_on_any_number_of_workers(tmp_path, mixed_folder):
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        with pytest.warns(UserWarning):
            summary = generate_dataset(out, mixed_folder, pairs_per_image=5, archive_size=7, seed=11,
                                       workers=workers, progress=False)
        runs[workers] = [open(p, "rb").read() for p in summary.archives]
    assert len(runs[1]) == 5 and runs[1] == runs[2]
    with pytest.warns(UserWarning):
        other = generate_dataset(tmp_path / "other", mixed_folder, pairs_per_image=5, archive_size=7, seed=12,
                                 progress=False)
    assert open(other.archives[0], "rb").read() != runs[1][0]


def test_generated_pairs_are_consistent_with_their_offsets(tmp_path):
    config = SynthesisConfig((160, 120), 64, 16)
    summary = generate_dataset(tmp_path, embedded_photo_paths()[:3], pairs_per_image=4, config=config,
                               progress=False)
    images, offsets = read_archive(summary.archives[0])
    assert images.shape == (12, 64, 64, 2) and np.abs(offsets).max() <= 16
    for pair, offset in zip(images, offsets):
        h_ab = offsets_to_homography(offset, size=64)
        reproduced = cv2.warpPerspective(pair[..., 0], h_ab, (64, 64))
        centre = slice(24, 40)
        assert np.abs(reproduced[centre, centre].astype(int) - pair[centre, centre, 1].astype(int)).mean() < 2


def test_cli_make_dataset_writes_archives(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["make-dataset", "--out", str(tmp_path), "--pairs-per-image", "2", "--archive-size", "10",
              "--seed", "3"])
    assert exited.value.code == 0
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [f"pairs_{k:05d}.npz" for k in range(4)]
    assert "pairs written: 34" in capsys.readouterr().out


def test_cli_reports_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["make-dataset", "--out", str(tmp_path), "--rho", "80"])
    assert exited.value.code == 2
    assert "rho 80" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["make-dataset", "--out", str(tmp_path), "--images", str(tmp_path / "nope")])
    assert "nope" in capsys.readouterr().err
