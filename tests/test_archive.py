import io
import zipfile

import numpy as np
import pytest

import hnet_keras.data.archive as archive_module
from hnet_keras.data.archive import ArchiveError, archive_length, list_archives, read_archive, write_archive


def _pairs(n, seed=0, size=128):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 2), dtype=np.uint8), rng.integers(-32, 33, (n, 8)).astype(np.int64)


def _stored_zip_size(count, side=128):
    """Bytes of an archive of ``count`` pairs by the zip arithmetic: per member a local header
    (30 bytes + name), the npy header and the data, and a central-directory entry (46 + name);
    then the 22-byte end record. No array is allocated (``broadcast_to`` views)."""
    members = {"images.npy": np.broadcast_to(np.uint8(0), (count, side, side, 2)),
               "offsets.npy": np.broadcast_to(np.int64(0), (count, 8))}
    total = 22
    for name, array in members.items():
        total += 30 + len(name) + len(archive_module._npy_header(array)) + array.nbytes + 46 + len(name)
    return total


@pytest.mark.parametrize("count, side", [(7, 128), (100, 64), (1, 32)])
def test_small_archives_have_the_size_the_zip_arithmetic_gives(tmp_path, count, side):
    images, offsets = _pairs(count, size=side)
    path = write_archive(tmp_path / "a.npz", images, offsets)
    assert path.stat().st_size == _stored_zip_size(count, side)
    with zipfile.ZipFile(path) as zipped:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zipped.infolist())


def test_full_default_archive_has_the_published_byte_size():
    # the arithmetic the small archives above are checked against, at the published 9216 pairs
    assert _stored_zip_size(9216) == 302_580_104


@pytest.mark.parametrize("shape", [(9216, 128, 128, 2), (9216, 8), (7, 128, 128, 2), (0, 32, 32, 2), (100, 64, 64, 2)])
def test_npy_headers_are_numpys_own_at_the_old_16_byte_alignment(shape, monkeypatch):
    # numpy's writer, set back to the 16-byte alignment and no growth room of older releases,
    # is the reference (two of these shapes fill 16 bytes exactly, where numpy pads a full 16)
    numpy_format = np.lib.format.write_array_header_1_0.__globals__  # the module that defines it
    monkeypatch.setitem(numpy_format, "ARRAY_ALIGN", 16)
    monkeypatch.setitem(numpy_format, "GROWTH_AXIS_MAX_DIGITS", 0)
    array = np.zeros(shape, np.uint8 if len(shape) == 4 else np.int64)
    expected = io.BytesIO()
    np.lib.format.write_array_header_1_0(expected, np.lib.format.header_data_from_array_1_0(array))
    assert archive_module._npy_header(array) == expected.getvalue()


def test_round_trip_and_numpy_compatibility(tmp_path):
    images, offsets = _pairs(7)
    path = write_archive(tmp_path / "a.npz", images, offsets)
    loaded_images, loaded_offsets = read_archive(path)
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_offsets, offsets)
    with np.load(path, allow_pickle=False) as plain:  # any numpy reads it
        np.testing.assert_array_equal(plain["offsets"], offsets)
    assert archive_length(path) == 7


def test_same_pairs_give_the_same_bytes(tmp_path):
    images, offsets = _pairs(5)
    first = write_archive(tmp_path / "one.npz", images, offsets).read_bytes()
    second = write_archive(tmp_path / "two.npz", images, offsets).read_bytes()
    assert first == second


def test_archives_from_other_tools_load(tmp_path):
    images, offsets = _pairs(7680 // 64)
    np.savez(tmp_path / "other.npz", images=images, offsets=offsets)  # numpy's own writer, zip64 and all
    loaded_images, loaded_offsets = read_archive(tmp_path / "other.npz")
    np.testing.assert_array_equal(loaded_images, images)
    assert archive_length(tmp_path / "other.npz") == len(offsets)


def test_truncated_archive_error_names_the_file(tmp_path):
    images, offsets = _pairs(4)
    path = write_archive(tmp_path / "cut.npz", images, offsets)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="cut.npz"):
        read_archive(path)
    with pytest.raises(ArchiveError, match="cut.npz"):
        archive_length(path)


@pytest.mark.parametrize(
    "arrays,message",
    [
        (dict(pictures=np.zeros((2, 128, 128, 2), np.uint8), offsets=np.zeros((2, 8), np.int64)), "missing key"),
        (dict(images=np.zeros((2, 128, 128, 2), np.float32), offsets=np.zeros((2, 8), np.int64)), "uint8"),
        (dict(images=np.zeros((2, 128, 128, 3), np.uint8), offsets=np.zeros((2, 8), np.int64)), "uint8"),
        (dict(images=np.zeros((2, 128, 128, 2), np.uint8), offsets=np.zeros((2, 8), np.float64)), "int64"),
        (dict(images=np.zeros((2, 128, 128, 2), np.uint8), offsets=np.zeros((3, 8), np.int64)), "int64"),
        (dict(images=np.array([None, 1], dtype=object), offsets=np.zeros((2, 8), np.int64)), "bad.npz"),
    ],
)
def test_wrong_keys_dtypes_shapes_and_pickles_are_refused(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ArchiveError, match=message) as raised:
        read_archive(tmp_path / "bad.npz")
    assert "bad.npz" in str(raised.value)


def test_interrupted_write_leaves_nothing_a_loader_would_pick_up(tmp_path, monkeypatch):
    images, offsets = _pairs(3)

    def explode(array):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(archive_module, "_npy_header", explode)
    with pytest.raises(KeyboardInterrupt):
        write_archive(tmp_path / "killed.npz", images, offsets)
    assert list(tmp_path.iterdir()) == []


def test_list_archives_errors(tmp_path):
    with pytest.raises(ArchiveError, match="no .npz"):
        list_archives(tmp_path)
    with pytest.raises(ArchiveError, match="nowhere"):
        list_archives(tmp_path / "nowhere")
    (tmp_path / ".pairs_00000.npz.partial").write_bytes(b"half")
    write_archive(tmp_path / "b.npz", *_pairs(1))
    write_archive(tmp_path / "a.npz", *_pairs(1))
    assert [p.name for p in list_archives(tmp_path)] == ["a.npz", "b.npz"]
