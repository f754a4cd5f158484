"""Real image pairs with known homographies: HPatches and Oxford-affine folders.

Layouts read (the reference image is image 1; each other image k makes a pair (1, k)):

* HPatches sequence: ``1.ppm`` .. ``6.ppm`` and ``H_1_2`` .. ``H_1_6``, 3x3 text
  matrices mapping points of image 1 to image k.
* Oxford affine (Mikolajczyk et al.): ``img1`` .. ``img6`` with any image extension
  (``.ppm``, ``.pgm``, ``.png``, ``.jpg``...) and ``H1to2p`` .. ``H1to6p`` as 3x3 text,
  or as OpenCV XML/YAML (``H1to2p.xml``, ``.yml``, ``.yaml``; the first 3x3 matrix in
  the file, read with ``cv2.FileStorage``).

A folder of such folders (the HPatches release, say) is read sequence by sequence.

Every method gives a full-image homography ``H_ab`` (image 1 -> image k):

* the network through :func:`hnet_keras.estimators.predict.estimate_homography`, which resizes the
  images to its input and maps the result back (image k is first resized to image 1's
  size when they differ, and the homography composed with that scaling);
* the baselines (:mod:`hnet_keras.estimators.baselines`) on the images downsized so their longer
  side is at most ``max_side`` (:data:`REAL_PAIRS_MAX_SIDE` by default, ``None`` for
  full size), the estimate then scaled back: ``H = S_b^-1 H_small S_a`` with
  ``S = diag(s_x, s_y, 1)`` each image's scale. Downsizing keeps ECC and the feature
  detectors fast on multi-megapixel images; SIFT and ORB lose little at 640 px.

The score is HPatches' homography estimation accuracy (as in SuperPoint's evaluation):
the 4 corners of image 1, ``(0, 0), (w, 0), (w, h), (0, h)``, are warped by the
estimated and by the true ``H``; a pair is correct at ``eps`` px when the mean distance
between the two warps (its mean corner error) is at most ``eps``. :data:`SCORE_THRESHOLDS`
are 1, 3 and 5 px. A method that fails on a pair falls back to the identity for it, and
the failure is counted. Results are an :class:`hnet_keras.scoring.evaluation.Evaluation`, as for
synthetic pairs; ``python -m hnet_keras evaluate-pairs`` runs it from the command line.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..data.augment import augment_patch
from ..data.images import IMAGE_EXTENSIONS, read_grayscale
from ..data.synthesis import resize_with_scale
from ..estimators.contract import EstimationFailed, check_homography
from ..estimators.methods import NetworkMethod, resolve_methods
from ..estimators.refine import MIN_TEXTURE, image_texture
from ..geometry import patch_corners, warp_points
from .evaluation import Evaluation

__all__ = [
    "REAL_PAIRS_MAX_SIDE",
    "REAL_MAX_OFFSET_FRACTION",
    "SCORE_THRESHOLDS",
    "RealPair",
    "read_homography",
    "load_hpatches_sequence",
    "load_oxford_sequence",
    "load_real_pairs",
    "random_corner_homography",
    "write_hpatches_sequence",
    "write_ppm",
    "estimate_full_homography",
    "corner_distance",
    "evaluate_real_pairs",
]

REAL_PAIRS_MAX_SIDE = 640
"""Baselines run on images downsized to this longer side (pixels) and scale H back."""
REAL_MAX_OFFSET_FRACTION = 4.0
"""On real pairs, an estimate moving an image corner more than this many image sizes is degenerate."""
SCORE_THRESHOLDS = (1, 3, 5)
"""HPatches' correctness thresholds in pixels."""

REAL_IMAGE_EXTENSIONS = IMAGE_EXTENSIONS + (".ppm", ".pgm", ".pnm")
_OPENCV_SUFFIXES = (".xml", ".yml", ".yaml", ".json")


@dataclass
class RealPair:
    """One real pair: image 1 (A) and image k (B) of a sequence and the true ``H_ab``."""

    name: str
    path_a: Path
    path_b: Path
    homography: np.ndarray

    def images(self):
        """``(image_a, image_b)`` as grayscale uint8."""
        return _read(str(self.path_a)), _read(str(self.path_b))


@lru_cache(maxsize=8)
def _read(path):
    image, reason = read_grayscale(path, warn=False)
    if image is None:
        raise ValueError(f"{path}: {reason}")
    image.setflags(write=False)
    return image


def read_homography(path):
    """A 3x3 homography from a text file (9 numbers) or an OpenCV XML/YAML file.

    Raises:
        FileNotFoundError / ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"homography file not found: {path}")
    matrix = None
    if path.suffix.lower() not in _OPENCV_SUFFIXES:
        try:
            values = np.array(path.read_text(encoding="utf-8", errors="strict").split(), dtype=np.float64)
            if values.size == 9:
                matrix = values.reshape(3, 3)
        except (ValueError, UnicodeDecodeError):
            matrix = None
    if matrix is None:
        matrix = _read_opencv_matrix(path)
    if matrix is None:
        raise ValueError(f"{path}: not a 3x3 homography (9 numbers as text, or an OpenCV XML/YAML matrix)")
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-12:
        raise ValueError(f"{path}: the homography is singular or not finite")
    return matrix / matrix[2, 2] if abs(matrix[2, 2]) > 1e-12 else matrix


def _read_opencv_matrix(path):
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # a parse error surfaces as SystemError from the constructor
        return None
    try:
        if not storage.isOpened():
            return None
        root = storage.root()
        for key in root.keys():
            node = root.getNode(key)
            matrix = node.mat()
            if matrix is not None and matrix.size == 9:
                return np.asarray(matrix, np.float64).reshape(3, 3)
        return None
    finally:
        storage.release()


def _find_image(folder, stem):
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.stem == stem and path.suffix.lower() in REAL_IMAGE_EXTENSIONS:
            return path
    return None


def _find_homography(folder, stem):
    for suffix in ("",) + _OPENCV_SUFFIXES + (".txt",):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _sequence(folder, image_stem, homography_stem, layout):
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence folder not found: {folder}")
    reference = _find_image(folder, image_stem(1))
    if reference is None:
        raise ValueError(f"{folder}: no reference image {image_stem(1)}.* for the {layout} layout")
    pairs = []
    numbers = sorted(
        int(m.group(1))
        for p in folder.iterdir()
        if (m := re.fullmatch(image_stem(r"(\d+)"), p.stem)) and p.suffix.lower() in REAL_IMAGE_EXTENSIONS
    )
    for k in numbers:
        if k == 1:
            continue
        image = _find_image(folder, image_stem(k))
        homography = _find_homography(folder, homography_stem(k))
        if homography is None:
            raise ValueError(f"{folder}: image {image.name} has no homography file {homography_stem(k)}")
        pairs.append(RealPair(f"{folder.name}/1-{k}", reference, image, read_homography(homography)))
    if not pairs:
        raise ValueError(f"{folder}: no image besides the reference in the {layout} layout")
    return pairs


def load_hpatches_sequence(folder):
    """Pairs (1, k) of an HPatches sequence folder (``1.ppm``, ``k.ppm``, ``H_1_k``)."""
    return _sequence(folder, lambda k: f"{k}", lambda k: f"H_1_{k}", "HPatches")


def load_oxford_sequence(folder):
    """Pairs (1, k) of an Oxford-affine folder (``img1.*``, ``imgk.*``, ``H1tokp`` text or XML/YAML)."""
    return _sequence(folder, lambda k: f"img{k}", lambda k: f"H1to{k}p", "Oxford affine")


def _layout(folder):
    if _find_image(folder, "1") is not None and any(folder.glob("H_1_*")):
        return load_hpatches_sequence
    if _find_image(folder, "img1") is not None and any(folder.glob("H1to*p*")):
        return load_oxford_sequence
    return None


def load_real_pairs(path):
    """Every pair of a sequence folder, or of each sequence folder inside ``path`` (sorted).

    Raises:
        FileNotFoundError: no such folder. ValueError: no sequence found, naming the path.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"real-pairs folder not found: {path}")
    loader = _layout(path)
    if loader is not None:
        return loader(path)
    pairs = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        loader = _layout(folder)
        if loader is not None:
            pairs.extend(loader(folder))
    if not pairs:
        raise ValueError(
            f"{path}: no HPatches (1.ppm + H_1_k) or Oxford-affine (img1.* + H1tokp) sequence found"
        )
    return pairs


def random_corner_homography(size, rng, fraction):
    """The homography moving each corner of a ``size = (width, height)`` image by up to ``fraction`` of
    the width and height (uniform, one draw of 8 numbers from ``rng``); (3, 3) float64."""
    corners = patch_corners(size).astype(np.float32)
    moves = rng.uniform(-fraction, fraction, (4, 2)) * np.asarray(size, np.float64)
    return cv2.getPerspectiveTransform(corners, (corners + moves).astype(np.float32))


def write_hpatches_sequence(folder, image, count=5, max_shift=0.15, seed=0, augmentation=None):
    """Write a synthetic sequence in the HPatches layout, for demos and tests offline.

    Image 1 is ``image``; images 2 .. ``count`` are it warped by random homographies
    that move each image corner by up to ``max_shift`` of the image's size, saved with
    their true ``H_1_k`` (image 1 -> image k). Parts warped in from outside the image
    are black, as in real viewpoint changes.

    Args:
        folder: the sequence folder (created).
        image: (H, W) uint8 grayscale or (H, W, 3) BGR.
        count: images in the sequence, the reference included (2..6 in HPatches).
        max_shift: largest corner move as a fraction of the width/height.
        seed: seed of the homographies (and of the photometric changes).
        augmentation: an :class:`hnet_keras.data.augment.Augmentation` drawn for each of
            images 2 .. ``count`` (exposure, noise, blur between the views), or ``None``.

    Returns:
        the folder, as a ``Path``.
    """
    if count < 2:
        raise ValueError(f"count must be at least 2, got {count}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    height, width = image.shape[:2]
    rng = np.random.default_rng(seed)
    write_ppm(folder / "1.ppm", image)
    for k in range(2, count + 1):
        h_1k = random_corner_homography((width, height), rng, max_shift)
        warped = cv2.warpPerspective(image, h_1k, (width, height))
        if augmentation is not None:
            warped = augment_patch(warped if warped.ndim == 2 else cv2.cvtColor(warped, cv2.COLOR_BGR2GRAY),
                                   rng, augmentation)
        write_ppm(folder / f"{k}.ppm", warped)
        np.savetxt(folder / f"H_1_{k}", h_1k / h_1k[2, 2])
    return folder


def write_ppm(path, image):
    """Write an image as PPM (HPatches' format: colour, so grayscale is repeated)."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _downsize(image, max_side):
    """The image with its longer side at most ``max_side``, and its (x, y) scale as a 3x3 matrix."""
    if not max_side or max(image.shape) <= max_side:
        return image, np.eye(3)
    scale = max_side / max(image.shape)
    # the exact scale of each axis (rounding makes them differ slightly)
    return resize_with_scale(image, max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))


def estimate_full_homography(method, image_a, image_b, max_side=REAL_PAIRS_MAX_SIDE):
    """A method's full-image ``H_ab`` (image A -> image B).

    Returns:
        ``(H, reason, ms)``: the identity and the failure's reason when the method failed
        (``reason`` is ``None`` when it did not).
    """
    start = time.perf_counter()
    height, width = image_a.shape

    def estimate():
        if isinstance(method, NetworkMethod):  # the network's pipeline takes whole images of any sizes
            h = np.asarray(method.homography(image_a, image_b), np.float64)
            if not np.all(np.isfinite(h)):
                raise EstimationFailed("non-finite homography")
        else:
            small_a, scale_a = _downsize(image_a, max_side)
            small_b, scale_b = _downsize(image_b, max_side)
            h_small = method.homography(small_a, small_b)
            h_small = check_homography(h_small, (small_a.shape[1], small_a.shape[0]), REAL_MAX_OFFSET_FRACTION)
            h = np.linalg.inv(scale_b) @ h_small @ scale_a
        return check_homography(h, (width, height), REAL_MAX_OFFSET_FRACTION)

    h, reason = method.attempt(estimate, np.eye(3))
    return h, reason, (time.perf_counter() - start) * 1000.0


def corner_distance(h_estimated, h_true, image_size):
    """Mean distance (px) between image A's 4 corners warped by the estimated and the true H.

    Args:
        image_size: ``(width, height)`` of image A.
    """
    corners = patch_corners(image_size)
    return float(np.mean(np.linalg.norm(warp_points(h_estimated, corners) - warp_points(h_true, corners), axis=1)))


def evaluate_real_pairs(pairs, methods=None, model=None, max_side=REAL_PAIRS_MAX_SIDE, network_rho=None,
                        thresholds=SCORE_THRESHOLDS, progress=True):
    """HPatches homography scores of every method on real pairs.

    Args:
        pairs: a list of :class:`RealPair` (or a folder for :func:`load_real_pairs`).
        methods: names or :class:`~hnet_keras.estimators.baselines.Method` objects (default: every
            available baseline, plus ``network`` when ``model`` is given).
        model: a Keras model or checkpoint path for ``network``.
        max_side: the baselines' working size (see the module docstring); ``None``: full size.
        network_rho: the network's training rho (a checkpoint path brings its own).

    Returns:
        an :class:`~hnet_keras.scoring.evaluation.Evaluation` whose errors are each pair's mean
        corner distance, with ``score_1px``, ``score_3px`` and ``score_5px`` in its summary.
        Pairs with an unreadable image are skipped, warned about and listed in its
        ``context["skipped"]`` (each ``{"pair", "reason"}``). Pairs with an image too flat
        to trust any estimate on (:func:`hnet_keras.estimators.refine.image_texture` under
        :data:`~hnet_keras.estimators.refine.MIN_TEXTURE`) are scored, warned about and listed in
        ``context["low_texture"]``.
    """
    if isinstance(pairs, (str, Path)):
        pairs = load_real_pairs(pairs)
    resolved = resolve_methods(methods, model, network_rho, 1)
    rows = {m.name: [] for m in resolved}
    skipped, names, low_texture = [], [], []
    with tqdm(total=len(pairs) * len(resolved), desc="real pairs", unit="est", disable=not progress) as bar:
        for pair in pairs:
            try:
                image_a, image_b = pair.images()
            except ValueError as error:  # one unreadable image must not lose the other pairs' results
                warnings.warn(f"skipping pair {pair.name}: {error}", stacklevel=2)
                skipped.append({"pair": pair.name, "reason": str(error)})
                bar.update(len(resolved))
                continue
            names.append(pair.name)
            texture = min(image_texture(image_a), image_texture(image_b))
            if texture < MIN_TEXTURE:
                warnings.warn(f"pair {pair.name}: too little texture to trust any estimate (mean gradient "
                              f"{texture:.2f} gray levels/px)", stacklevel=2)
                low_texture.append(pair.name)
            size = (image_a.shape[1], image_a.shape[0])
            for method in resolved:
                h, reason, ms = estimate_full_homography(method, image_a, image_b, max_side)
                rows[method.name].append((corner_distance(h, pair.homography, size), reason, ms,
                                          getattr(method, "last_choice", None)))
                bar.update(1)
    if skipped and len(skipped) == len(pairs):
        raise ValueError(f"none of the {len(pairs)} pairs could be read, e.g. {skipped[0]['reason']}")
    read = len(pairs) - len(skipped)
    title = f"{read} real pairs" + (f" ({len(skipped)} skipped: unreadable)" if skipped else "")
    context = {"max_side": max_side, "skipped": skipped, "low_texture": low_texture}
    result = Evaluation(names=names, thresholds=tuple(thresholds), context=context,
                        title=f"{title}, baselines at max side {max_side}")
    for method in resolved:
        errors, reasons, ms, choices = zip(*rows[method.name]) if rows[method.name] else ((), (), (), ())
        reported = hasattr(method, "last_choice")  # the whole-image pipelines say which candidate they kept
        result.add(method, errors, [reason is not None for reason in reasons], ms, reasons,
                   choices=choices if reported else None)
    return result
