"""Whole-image pairs: the any-size pipeline (network + ECC) against the baselines, in one run.

    python benchmarks/bench_whole_images.py [--images FOLDER] [--pairs N] [--checkpoint PATH]

Each pair is a photo scaled to 640x480 and the same photo warped by a random homography
that moves every image corner by up to 20% of the image's width and height (parts from
outside are black), with an independent photometric change of the second image
(:data:`hnet_keras.data.augment.DEFAULT_AUGMENTATION`, every change applied). Photos come from
the test part of FOLDER (never seen in training) or from the embedded test photos.
Methods see the whole images (:func:`hnet_keras.scoring.real_pairs.evaluate_real_pairs`); the
score is the HPatches homography accuracy (share of pairs whose 4 image corners land
within 1, 3, 5 px). Human-readable lines go to stderr; the last line of stdout is one
JSON object.
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402

from hnet_keras.data.augment import DEFAULT_AUGMENTATION  # noqa: E402
from hnet_keras.nets.checkpoint import load_pretrained  # noqa: E402
from hnet_keras.data.images import embedded_photo_paths, list_images, read_grayscale, split_images  # noqa: E402
from hnet_keras.scoring.real_pairs import evaluate_real_pairs, load_real_pairs, write_hpatches_sequence  # noqa: E402

SIZE, MAX_SHIFT = (640, 480), 0.2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=None, help="folder of photos (its test part is used)")
    parser.add_argument("--pairs", type=int, default=100, help="pairs (one per photo, photos reused if fewer)")
    parser.add_argument("--checkpoint", default=None, help="network checkpoint (default: the shipped one)")
    parser.add_argument("--methods", nargs="+", default=["identity", "orb_ransac", "sift_ransac", "network",
                                                          "network+ecc"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    photos = split_images(list_images(args.images))["test"] if args.images else embedded_photo_paths("test")
    augmentation = dataclasses.replace(DEFAULT_AUGMENTATION, probability=1.0, blur=1.0)
    model, rho = load_pretrained(args.checkpoint)
    with tempfile.TemporaryDirectory() as folder:
        written = 0
        for index in range(args.pairs):
            gray, _ = read_grayscale(photos[index % len(photos)], warn=False)
            if gray is None:
                continue
            image = cv2.resize(gray, SIZE, interpolation=cv2.INTER_AREA if gray.shape[1] > SIZE[0] else cv2.INTER_LINEAR)
            write_hpatches_sequence(Path(folder) / f"s{index:04d}", image, count=2, max_shift=MAX_SHIFT,
                                    seed=args.seed + index, augmentation=augmentation)
            written += 1
        result = evaluate_real_pairs(load_real_pairs(folder), methods=args.methods, model=model, network_rho=rho,
                                     max_side=None, progress=False)
    print(result.table(), file=sys.stderr)
    summary = result.summary()
    print(json.dumps({"pairs": written, "image_size": list(SIZE), "max_shift": MAX_SHIFT,
                      **{f"{name}_{key}": round(float(value), 4) for name, figures in summary.items()
                         for key, value in figures.items() if key in ("score_1px", "score_3px", "score_5px",
                                                                      "mace", "median", "ms_per_pair")}}))


if __name__ == "__main__":
    main()
