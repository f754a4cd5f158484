"""Image sources: folder trees, the embedded scikit-image photos, and robust grayscale reading.

Reading never raises on a bad file: :func:`read_grayscale` returns ``None`` with a
reason, so a dataset run can skip the file, count it and go on.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import skimage.data

__all__ = [
    "IMAGE_EXTENSIONS",
    "EMBEDDED_PHOTOS",
    "list_images",
    "embedded_photo_paths",
    "read_grayscale",
    "split_images",
    "require_split_parts",
    "resolve_image_source",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

# Real photographs shipped inside the scikit-image wheel (synthetic drawings such as
# the chessboard, logo, text and phantom are left out). They are read from the
# installed package, never downloaded.
EMBEDDED_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)

# A fixed hold-out of the embedded photos, so tests and notebooks never evaluate on
# photos they trained on. The stereo pair stays together on one side.
EMBEDDED_TEST_PHOTOS = ("coffee.png", "rocket.jpg", "chelsea.png", "coins.png")


def list_images(folder):
    """All image files below ``folder`` (jpg/jpeg/png/bmp/tif/tiff, any case), sorted.

    Every entry with an image extension is listed, broken symbolic links and folders
    named like images included: reading them fails, so a dataset run skips, counts and
    names them instead of leaving them silently out.

    Raises:
        FileNotFoundError: the folder does not exist, naming it.
        ValueError: the folder holds no image file, naming it.
    """
    folder = Path(folder)
    if folder.is_file():
        raise NotADirectoryError(f"{folder}: a file, not a folder of images")
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    paths = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    return paths



def embedded_photo_paths(split="all"):
    """Paths of the real photos inside the installed scikit-image wheel.

    Args:
        split: ``"all"``, ``"train"`` or ``"test"`` (the fixed hold-out
            :data:`EMBEDDED_TEST_PHOTOS`).
    """
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    folder = Path(skimage.data.__file__).parent
    names = [name for name in EMBEDDED_PHOTOS if (folder / name).is_file()]
    if split == "train":
        names = [name for name in names if name not in EMBEDDED_TEST_PHOTOS]
    elif split == "test":
        names = [name for name in names if name in EMBEDDED_TEST_PHOTOS]
    if not names:
        raise FileNotFoundError(f"no embedded photos found in {folder}")
    return [folder / name for name in names]


def resolve_image_source(images=None):
    """A list of image paths from a folder, a list of paths, or ``None`` (embedded photos)."""
    if images is None:
        return embedded_photo_paths("all")
    if isinstance(images, (str, os.PathLike)):
        return list_images(images)
    return [Path(p) for p in images]


def split_images(paths, validation=0.1, test=0.1):
    """A fixed train/validation/test split of image files, by a hash of each file name.

    The split of a file never depends on which other files are present or on their
    order, so adding photos never moves a held-out photo into training.

    Returns:
        dict ``{"train": [...], "validation": [...], "test": [...]}`` of sorted paths.
    """
    if not (0 <= validation and 0 <= test and validation + test < 1):
        raise ValueError(f"validation ({validation}) and test ({test}) must be >= 0 and sum to less than 1")
    split = {"train": [], "validation": [], "test": []}
    for path in sorted(Path(p) for p in paths):
        fraction = int.from_bytes(hashlib.sha256(path.name.encode()).digest()[:8], "big") / 2**64
        name = "test" if fraction < test else "validation" if fraction < test + validation else "train"
        split[name].append(path)
    return split


def require_split_parts(folder, parts, names=("train", "validation")):
    """Refuse a :func:`split_images` split where one of ``names`` came out empty.

    Raises:
        ValueError: naming the folder, the empty part and every part's count.
    """
    empty = [name for name in names if not parts[name]]
    if empty:
        total = sum(len(files) for files in parts.values())
        counts = ", ".join(f"{name} {len(files)}" for name, files in parts.items())
        raise ValueError(
            f"{folder}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty: its {total} "
            f"image file(s) split by file name into {counts} (about 10 % go to validation and 10 % to test); "
            "add images to the folder" + (" or give validation data (--val-data)" if "validation" in empty else "")
        )


def read_grayscale(path, warn=True):
    """Read any image as 8-bit grayscale.

    Colour (BGR or BGRA) is converted with OpenCV's luma weights, 16-bit and float
    images are rescaled to 0..255, grayscale passes through.

    Returns:
        ``(image, None)`` with a (H, W) uint8 array, or ``(None, reason)`` when the
        file cannot be decoded. A warning naming the file is issued in that case.
    """
    path = Path(path)
    if path.is_dir():
        return _skip(path, "unreadable (a folder, not an image file)", warn)
    if path.is_symlink() and not path.exists():
        return _skip(path, "unreadable (a broken symbolic link)", warn)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        return _skip(path, f"unreadable ({error.strerror or error})", warn)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return _skip(path, "unreadable (not a decodable image)", warn)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype == np.uint16:
        image = (image.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = image.astype(np.float64)
        low, high = float(image.min()), float(image.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        image = ((image - low) * scale).round().astype(np.uint8)
    return image, None


def _skip(path, reason, warn):
    if warn:
        warnings.warn(f"skipping {path}: {reason}", stacklevel=3)
    return None, reason
