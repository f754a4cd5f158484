"""``make-dataset`` and ``download-coco``: pairs into archives, and MS-COCO's photos."""

from __future__ import annotations

from ..data.archive import ARCHIVE_SIZE
from ..data.coco import DEFAULT_BASE_URL, KNOWN_ZIPS, SPLITS, download_coco
from ..data.generate import check_archive_size, generate_dataset
from ..data.synthesis import TRAIN_PROTOCOL, SynthesisConfig
from .arguments import non_negative_int, output_folder, plain_name, positive_int


def _register_make_dataset(subparsers):
    """``make-dataset``."""
    parser = subparsers.add_parser("make-dataset", help="synthesize pairs from images into .npz archives")
    parser.add_argument("--images", default=None, help="folder of images (default: the embedded photos)")
    parser.add_argument("--out", required=True, type=output_folder, help="output folder for the archives")
    parser.add_argument("--pairs-per-image", type=positive_int, default=1, help="pairs drawn from each image")
    parser.add_argument("--archive-size", type=positive_int, default=ARCHIVE_SIZE, help="pairs per archive")
    parser.add_argument("--image-size", type=positive_int, nargs=2, default=list(TRAIN_PROTOCOL.image_size),
                        metavar=("WIDTH", "HEIGHT"), help="size images are scaled and cropped to")
    parser.add_argument("--patch", type=positive_int, default=TRAIN_PROTOCOL.patch_size, help="patch side in pixels")
    parser.add_argument("--rho", type=non_negative_int, default=TRAIN_PROTOCOL.rho, help="largest corner perturbation")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--workers", type=non_negative_int, default=1, help="processes; 0 = all cores")
    parser.add_argument("--prefix", default="pairs", type=plain_name, help="archive names are PREFIX_00000.npz, ...")
    parser.set_defaults(func=_run_make_dataset)


def _run_make_dataset(args):
    config = SynthesisConfig(tuple(args.image_size), args.patch, args.rho)
    check_archive_size(args.archive_size, args.patch, name="--archive-size")
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


def _register_download_coco(subparsers):
    """``download-coco``."""
    sizes = ", ".join(f"{name} {entry['size'] / 1e9:.1f} GB" for name, entry in KNOWN_ZIPS.items())
    parser = subparsers.add_parser(
        "download-coco",
        help="download, verify (MD5) and unzip MS-COCO 2017 images; resumable",
        description="Download an MS-COCO 2017 image zip (resuming a partial download), check its size "
        "and MD5, and unzip it into DEST/SPLIT. Running it again skips finished work.",
    )
    parser.add_argument("--split", choices=SPLITS, default="val2017", help=f"which image zip ({sizes})")
    parser.add_argument("--dest", required=True, type=output_folder,
                        help="folder for SPLIT.zip and the extracted SPLIT/ images")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help="where SPLIT.zip is fetched from: the official server, a mirror URL or a local folder")
    parser.add_argument("--no-unzip", action="store_true", help="stop after the verified zip, do not extract it")
    parser.set_defaults(func=_run_download_coco)


def _run_download_coco(args):
    print(download_coco(args.split, args.dest, base_url=args.base_url, unzip=not args.no_unzip))
    return 0


def register_commands(subparsers):
    """``make-dataset`` and ``download-coco``."""
    _register_make_dataset(subparsers)
    _register_download_coco(subparsers)
