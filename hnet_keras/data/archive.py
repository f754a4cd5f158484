"""The npz archive format: writing (atomic, byte-deterministic) and validated reading.

An archive is an uncompressed ``.npz`` holding ``images`` uint8 (N, P, P, 2) and
``offsets`` int64 (N, 8). Files are written the way the archives published with
the Keras HomographyNet notebook were (16-byte aligned ``.npy`` headers, stored
zip members without zip64 fields, fixed timestamps), so a full default archive of
9216 pairs is exactly 302,580,104 bytes and the same pairs always give the same
bytes.
"""

from __future__ import annotations

import json
import math
import numbers
import zipfile
from pathlib import Path

import numpy as np

from ..fileio import replacing

__all__ = [
    "ARCHIVE_SIZE",
    "ArchiveError",
    "write_archive",
    "read_archive",
    "archive_length",
    "list_archives",
    "MANIFEST_NAME",
    "read_manifest",
    "manifest_archives",
    "require_pairs",
]

ARCHIVE_SIZE = 9216
MANIFEST_NAME = "manifest.json"
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_NPY_ALIGN = 16


class ArchiveError(ValueError):
    """An archive that is missing, truncated or not in the expected format."""


def _npy_header(array):
    """numpy's format 1.0 ``.npy`` header for ``array``, padded to 16 bytes as older numpy did.

    numpy's own writer now pads to 64 bytes and leaves room for the shape to grow, which makes
    a default archive 80 bytes larger than the published ones; only the padding differs, so the
    header is numpy's text (``header_data_from_array_1_0``) with numpy's padding rule at 16.
    """
    fields = np.lib.format.header_data_from_array_1_0(array)
    text = "{" + "".join(f"'{key}': {value!r}, " for key, value in sorted(fields.items())) + "}"
    text += " " * (_NPY_ALIGN - (np.lib.format.MAGIC_LEN + 2 + len(text) + 1) % _NPY_ALIGN) + "\n"
    return np.lib.format.magic(1, 0) + len(text).to_bytes(2, "little") + text.encode("latin1")


def _check_arrays(images, offsets, where):
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 2 or images.shape[1] != images.shape[2]:
        raise ArchiveError(f"{where}: 'images' must be uint8 (N, P, P, 2), got {images.dtype} {images.shape}")
    if offsets.dtype != np.int64 or offsets.shape != (images.shape[0], 8):
        raise ArchiveError(
            f"{where}: 'offsets' must be int64 ({images.shape[0]}, 8), got {offsets.dtype} {offsets.shape}"
        )


def write_archive(path, images, offsets):
    """Write one archive atomically: a hidden temporary file in the same folder, then a rename.

    A run killed mid-write leaves at most a ``.<name>.partial`` file, which no
    loader picks up (they read ``*.npz`` only).
    """
    path = Path(path)
    images = np.ascontiguousarray(images)
    offsets = np.ascontiguousarray(offsets)
    _check_arrays(images, offsets, path)
    with replacing(path) as temporary:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in (("images", images), ("offsets", offsets)):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o600 << 16
                header = _npy_header(array)
                info.file_size = len(header) + array.nbytes
                with archive.open(info, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as member:
                    member.write(header)
                    member.write(memoryview(array.reshape(-1)).cast("B"))
    return path


def read_archive(path, mmap=False):
    """Load and validate one archive; returns ``(images, offsets)``.

    Never unpickles (``allow_pickle=False``). Every problem raises
    :class:`ArchiveError` naming the file: missing, truncated or not a zip, missing
    keys, wrong dtype or shape.
    """
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: archive not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "offsets"} - set(archive.files)
            if missing:
                raise ArchiveError(
                    f"{path}: missing key(s) {sorted(missing)}; an archive holds 'images' and 'offsets', "
                    f"found {sorted(archive.files)}"
                )
            images, offsets = archive["images"], archive["offsets"]
    except ArchiveError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ArchiveError(f"{path}: unreadable or truncated archive ({type(error).__name__}: {error})") from error
    _check_arrays(images, offsets, path)
    return images, offsets


def archive_length(path):
    """Number of pairs in an archive, read from its ``offsets`` header without loading the images."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive, archive.open("offsets.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, _ = read_header(member)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ArchiveError(f"{path}: unreadable or truncated archive ({type(error).__name__}: {error})") from error
    if len(shape) != 2 or shape[1] != 8:
        raise ArchiveError(f"{path}: 'offsets' must have shape (N, 8), got {shape}")
    return int(shape[0])


# Sanity bounds of a manifest's integer parameters: (low, high).
_MANIFEST_COUNTS = {"pairs_per_image": (1, 10**6), "archive_size": (1, 10**8), "patch_size": (1, 4096),
                    "seed": (-(2**63), 2**64)}


def _manifest_error(manifest, text):
    return ArchiveError(f"{manifest}: {text}; remove it to read every .npz of the folder, or run make-dataset again")


def read_manifest(manifest):
    """A generator's ``manifest.json``, read and checked: the one place a manifest is read.

    Checked before use: ``summary.archives`` is a list of names (kept as plain file names,
    so a listed name never leaves its folder), and every parameter present has its type
    and a sane range (``rho`` finite and >= 0, sizes positive integers).

    Raises:
        ArchiveError: one line naming the manifest and the key.
    """
    manifest = Path(manifest)
    try:
        value = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise _manifest_error(manifest, f"unreadable manifest ({type(error).__name__}: {error})") from error
    summary = value.get("summary") if isinstance(value, dict) else None
    if not isinstance(summary, dict) or not isinstance(summary.get("archives"), list):
        raise _manifest_error(manifest, "not a make-dataset manifest ('summary.archives' must be a list)")
    if not all(isinstance(entry, str) and entry for entry in summary["archives"]):
        raise _manifest_error(manifest, "'summary.archives' must list file names")
    parameters = value.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _manifest_error(manifest, "'parameters' must be a JSON object")
    for key, (low, high) in _MANIFEST_COUNTS.items():
        number = parameters.get(key)
        if key in parameters and (isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high):
            raise _manifest_error(manifest, f"'parameters.{key}' must be an integer in [{low}, {high}], got {number!r}")
    rho = parameters.get("rho")
    if "rho" in parameters and (isinstance(rho, bool) or not isinstance(rho, numbers.Real)
                                or not (math.isfinite(rho) and 0 <= rho <= 10**6)):
        raise _manifest_error(manifest, f"'parameters.rho' must be a finite number in [0, 1e6], got {rho!r}")
    size = parameters.get("image_size")
    if "image_size" in parameters and (not isinstance(size, list) or len(size) != 2 or not all(
            isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= 10**5 for side in size)):
        raise _manifest_error(manifest, f"'parameters.image_size' must be [width, height] in pixels, got {size!r}")
    value["summary"] = {**summary, "archives": [Path(entry).name for entry in summary["archives"]]}
    return value


def manifest_archives(manifest):
    """The archive file names a generator's ``manifest.json`` lists, in order (see :func:`read_manifest`).

    Raises:
        ArchiveError: the manifest is unreadable or not a generator's manifest, naming it.
    """
    return read_manifest(manifest)["summary"]["archives"]


def require_pairs(path, archives, lengths):
    """Refuse a dataset whose archives hold no pair at all, naming them.

    Raises:
        ArchiveError: every archive of ``path`` holds 0 pairs.
    """
    if not sum(int(n) for n in lengths):
        names = ", ".join(str(a) for a in archives[:3]) + (", ..." if len(archives) > 3 else "")
        raise ArchiveError(f"{path}: no pairs to read ({len(archives)} archive(s) holding 0 pairs: {names})")


def list_archives(path):
    """The archives of a folder, or ``[path]`` for a single file.

    A folder with a ``manifest.json`` (written by :func:`hnet_keras.generate_dataset`)
    gives exactly the archives its manifest lists, so archives left over from an
    earlier run are never mixed in; a folder without one gives its ``.npz`` files, sorted.

    Raises:
        ArchiveError: nothing there, or a listed archive missing, naming the path.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ArchiveError(f"{path}: no such archive or folder")
    manifest = path / MANIFEST_NAME
    if manifest.is_file():
        archives = [path / name for name in manifest_archives(manifest)]
        missing = [archive.name for archive in archives if not archive.is_file()]
        if missing:
            raise ArchiveError(
                f"{path}: {len(missing)} archive(s) listed in {MANIFEST_NAME} are missing "
                f"(first: {missing[0]}); run make-dataset again"
            )
        if not archives:
            raise ArchiveError(f"{path}: its {MANIFEST_NAME} lists no archive (the run wrote no pairs)")
        return archives
    archives = sorted(p for p in path.glob("*.npz") if not p.name.startswith("."))
    if not archives:
        raise ArchiveError(f"{path}: folder holds no .npz archive")
    return archives
