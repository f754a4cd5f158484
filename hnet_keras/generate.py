"""The archive generator: images in, numbered ``.npz`` archives of pairs out.

Every image ``i`` gets its own random stream, seeded by ``(seed, i)``, and results
are written in image order, so the same seed and inputs give byte-identical
archives whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from .fileio import atomic_write_text
from .archive import ARCHIVE_SIZE, write_archive
from .images import read_grayscale, resolve_image_source
from .synthesis import TRAIN_PROTOCOL, SynthesisConfig, pairs_from_image

__all__ = ["DatasetSummary", "generate_dataset", "image_rng"]


@dataclass
class DatasetSummary:
    """What a :func:`generate_dataset` run did."""

    images_used: int = 0
    images_skipped: dict = field(default_factory=dict)
    skipped_files: list = field(default_factory=list)
    pairs_written: int = 0
    archives: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pairs_per_second(self):
        return self.pairs_written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self):
        skipped = sum(self.images_skipped.values())
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.images_skipped.items()))
        return (
            f"images used: {self.images_used}, skipped: {skipped}" + (f" ({reasons})" if reasons else "")
            + f"; pairs written: {self.pairs_written} in {len(self.archives)} archive(s)"
            + f"; {self.pairs_per_second:.0f} pairs/s"
        )


def image_rng(seed, index):
    """The random stream of image ``index`` under ``seed``."""
    return np.random.default_rng([int(seed), int(index)])


def _synthesize(task):
    """Worker: all pairs of one image, or the reason it was skipped."""
    index, path, count, seed, config = task
    gray, reason = read_grayscale(path, warn=False)
    if gray is None:
        return index, None, None, "unreadable"
    try:
        images, offsets = pairs_from_image(gray, count, image_rng(seed, index), config)
    except ValueError:
        return index, None, None, "too small"
    return index, images, offsets, None


def _init_worker():
    cv2.setNumThreads(1)


def generate_dataset(
    out,
    images=None,
    pairs_per_image=1,
    archive_size=ARCHIVE_SIZE,
    config: SynthesisConfig = TRAIN_PROTOCOL,
    seed=0,
    workers=1,
    prefix="pairs",
    progress=True,
):
    """Synthesize pairs from images and write them as archives.

    Args:
        out: output folder (created).
        images: a folder of images, a list of paths, or ``None`` for the embedded photos.
        pairs_per_image: pairs drawn from each image.
        archive_size: pairs per archive; the last archive holds the remainder.
        config: the recipe's image size, patch size and rho.
        seed: the seed of every random choice.
        workers: processes synthesizing in parallel (``0`` means all cores).
        prefix: archive names are ``{prefix}_{k:05d}.npz``.
        progress: show a tqdm bar and print the summary.

    Returns:
        A :class:`DatasetSummary`; ``manifest.json`` in ``out`` records it with the
        parameters.
    """
    if pairs_per_image < 1:
        raise ValueError(f"pairs_per_image must be >= 1, got {pairs_per_image}")
    if archive_size < 1:
        raise ValueError(f"archive_size must be >= 1, got {archive_size}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    paths = resolve_image_source(images)
    workers = workers or os.cpu_count() or 1
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = config.patch_size
    buffer_images = np.empty((archive_size, size, size, 2), np.uint8)
    buffer_offsets = np.empty((archive_size, 8), np.int64)
    filled = 0
    summary = DatasetSummary()
    skipped = Counter()
    started = time.perf_counter()

    def flush(count):
        name = out / f"{prefix}_{len(summary.archives):05d}.npz"
        write_archive(name, buffer_images[:count], buffer_offsets[:count])
        summary.archives.append(str(name))

    tasks = ((i, str(p), pairs_per_image, seed, config) for i, p in enumerate(paths))
    pool = None
    if workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
        results = pool.imap(_synthesize, tasks, chunksize=4)
    else:
        results = map(_synthesize, tasks)
    bar = tqdm(total=len(paths), unit="img", desc="synthesizing", disable=not progress)
    try:
        for index, images_i, offsets_i, reason in results:
            bar.update(1)
            if reason is not None:
                skipped[reason] += 1
                summary.skipped_files.append(str(paths[index]))
                warnings.warn(f"skipping {paths[index]}: {reason}", stacklevel=2)
                continue
            summary.images_used += 1
            start = 0
            while start < len(images_i):
                take = min(archive_size - filled, len(images_i) - start)
                buffer_images[filled : filled + take] = images_i[start : start + take]
                buffer_offsets[filled : filled + take] = offsets_i[start : start + take]
                filled += take
                start += take
                summary.pairs_written += take
                if filled == archive_size:
                    flush(filled)
                    filled = 0
            bar.set_postfix(pairs=summary.pairs_written)
        if filled:
            flush(filled)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    summary.images_skipped = dict(skipped)
    summary.seconds = time.perf_counter() - started
    manifest = {
        "parameters": {
            "images": None if images is None else str(images) if isinstance(images, (str, os.PathLike)) else "list",
            "pairs_per_image": pairs_per_image,
            "archive_size": archive_size,
            "image_size": list(config.image_size),
            "patch_size": config.patch_size,
            "rho": config.rho,
            "seed": seed,
        },
        "summary": {**asdict(summary), "pairs_per_second": summary.pairs_per_second},
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2))
    if progress:
        print(summary)
    return summary


def register_commands(subparsers):
    """``make-dataset``."""
    parser = subparsers.add_parser("make-dataset", help="synthesize pairs from images into .npz archives")
    parser.add_argument("--images", default=None, help="folder of images (default: the embedded photos)")
    parser.add_argument("--out", required=True, help="output folder for the archives")
    parser.add_argument("--pairs-per-image", type=int, default=1, help="pairs drawn from each image")
    parser.add_argument("--archive-size", type=int, default=ARCHIVE_SIZE, help="pairs per archive")
    parser.add_argument("--image-size", type=int, nargs=2, default=list(TRAIN_PROTOCOL.image_size),
                        metavar=("WIDTH", "HEIGHT"), help="size images are scaled and cropped to")
    parser.add_argument("--patch", type=int, default=TRAIN_PROTOCOL.patch_size, help="patch side in pixels")
    parser.add_argument("--rho", type=int, default=TRAIN_PROTOCOL.rho, help="largest corner perturbation")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--workers", type=int, default=1, help="processes; 0 = all cores")
    parser.add_argument("--prefix", default="pairs", help="archive names are PREFIX_00000.npz, ...")
    parser.set_defaults(func=_run_make_dataset)


def _run_make_dataset(args):
    config = SynthesisConfig(tuple(args.image_size), args.patch, args.rho)
    generate_dataset(
        args.out,
        images=args.images,
        pairs_per_image=args.pairs_per_image,
        archive_size=args.archive_size,
        config=config,
        seed=args.seed,
        workers=args.workers,
        prefix=args.prefix,
    )
    return 0
