import json

import numpy as np
import pytest

from hnet_keras.data.archive import ArchiveError, write_archive
from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.data.loaders import ArchiveDataset, OnTheFlyDataset, data_loader
from hnet_keras.data.synthesis import synthesize_pairs
from hnet_keras.data.synthesis import SynthesisConfig

SMALL = SynthesisConfig((160, 120), 64, 16)


@pytest.fixture
def archives(tmp_path):
    """Three archives whose offsets encode (archive, row), so every sample is traceable."""
    for a, n in enumerate((10, 7, 12)):
        images = np.full((n, 16, 16, 2), 255, np.uint8)
        images[:, 0, 0, 0] = 0
        offsets = np.stack([np.full(n, a), np.arange(n)] + [np.zeros(n)] * 6, axis=1).astype(np.int64)
        write_archive(tmp_path / f"pairs_{a:05d}.npz", images, offsets)
    return tmp_path


def _ids(y, rho=32):
    return [tuple(row) for row in np.round(y[:, :2] * rho).astype(int)]


def test_data_loader_normalizes_and_loops_forever(archives):
    with pytest.raises(ValueError, match="give the archives' rho"):  # never a guessed rho
        next(data_loader(archives, batch_size=4))
    loader = data_loader(archives, batch_size=4, rho=32)
    x, y = next(loader)
    assert x.dtype == np.float32 and x.shape == (4, 16, 16, 2)
    assert x.max() == 1.0 and x[0, 0, 0, 0] == -1.0
    np.testing.assert_allclose(y[1], np.array([0, 1, 0, 0, 0, 0, 0, 0]) / 32)
    seen = _ids(y) + [i for _ in range(20) for i in _ids(next(loader)[1])]
    assert len(set(seen)) == 29  # every sample, and it kept going past the end


def test_data_loader_is_exported_at_top_level(archives):
    import hnet_keras

    manifest = {"parameters": {"rho": 32}, "summary": {"archives": ["pairs_00000.npz"]}}  # as generate_dataset writes it
    (archives / "manifest.json").write_text(json.dumps(manifest))
    x, y = next(hnet_keras.data_loader(str(archives), batch_size=64))
    assert x.shape == (10, 16, 16, 2) and y.shape == (10, 8)


def test_archive_dataset_shuffles_across_archives_and_covers_each_sample_once(archives):
    dataset = ArchiveDataset(archives, batch_size=5, rho=32, seed=1, mix=2)
    assert len(dataset) == 6
    epochs = []
    for _ in range(2):
        ids = [i for b in range(len(dataset)) for i in _ids(dataset[b][1])]
        assert sorted(ids) == sorted((a, r) for a, n in enumerate((10, 7, 12)) for r in range(n))
        epochs.append(ids)
        dataset.on_epoch_end()
    assert epochs[0] != epochs[1]
    assert any(len({a for a, _ in _ids(dataset[b][1])}) > 1 for b in range(len(dataset)))  # mixed batches
    assert len(dataset._cache) <= 2
    again = ArchiveDataset(archives, batch_size=5, rho=32, seed=1, mix=2)
    assert [i for b in range(len(again)) for i in _ids(again[b][1])] == epochs[0]


def test_archive_dataset_bad_archive_is_named(archives):
    (archives / "pairs_00001.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArchiveError, match="pairs_00001.npz"):
        ArchiveDataset(archives, rho=32)


def test_on_the_fly_dataset_is_seeded_and_fresh_each_epoch():
    photos = embedded_photo_paths("train")[:3]
    dataset = OnTheFlyDataset(photos, batch_size=4, batches_per_epoch=2, config=SMALL, seed=7)
    x, y = dataset[0]
    assert x.shape == (4, 64, 64, 2) and y.shape == (4, 8) and np.abs(y).max() <= 1.0
    twin = OnTheFlyDataset(photos, batch_size=4, batches_per_epoch=2, config=SMALL, seed=7)
    np.testing.assert_array_equal(twin[0][0], x)
    dataset.on_epoch_end()
    assert not np.array_equal(dataset[0][1], y)


def test_synthesize_pairs_is_deterministic():
    first = synthesize_pairs(6, embedded_photo_paths("test"), SMALL, seed=3)
    second = synthesize_pairs(6, embedded_photo_paths("test"), SMALL, seed=3)
    assert first[0].shape == (6, 64, 64, 2) and first[1].dtype == np.int64
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_a_limit_that_leaves_no_pairs_is_refused_naming_it(archives):
    with pytest.raises(ArchiveError, match="limit 0 leaves no pairs"):
        ArchiveDataset(archives, batch_size=4, rho=32, limit=0)
