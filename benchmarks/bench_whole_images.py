"""Whole-image pairs: the any-size pipeline (network + ECC) against the baselines, in one run.

    python benchmarks/bench_whole_images.py [--images FOLDER] [--pairs N] [--checkpoint PATH] [--quick]

Each pair is a photo scaled to 640x480 and the same photo warped by a random homography
that moves every image corner by up to 20% of the image's width and height (parts from
outside are black), with an independent photometric change of the second image
(:data:`hnet_keras.data.augment.DEFAULT_AUGMENTATION`, every change applied). Photos come from
the test part of FOLDER (never seen in training) or from the embedded test photos.
Methods see the whole images (:func:`hnet_keras.scoring.real_pairs.evaluate_real_pairs`); the
score is the HPatches homography accuracy (share of pairs whose 4 image corners land
within 1, 3, 5 px).

Speed on full-resolution 900x600 pairs (the same recipe at 900x600), measured in one run,
pair by pair alternating the two methods after one untimed warm-up (the network's tracing):
``estimate_over_sift_time`` is the time of :func:`hnet_keras.estimators.predict.estimate_homography`
(network + ECC) over SIFT + RANSAC's at full resolution on the same pairs; the estimate's
time is split into the network's passes and the refinement (ECC and the alignment scores), and
``batched_estimate_ms_per_pair`` is the time per pair of all of them at once
(:func:`~hnet_keras.estimators.predict.estimate_homographies`).

Classes of real difficulty (:mod:`hnet_keras.scoring.difficulty`: zoom + rotation up to 60 degrees
and 0.5-2x, viewpoint up to 50 degrees, blur, illumination, JPEG, no motion; each at 4 levels),
``--class-pairs`` pairs each (default 100) from the same test photos at 640x480: acc@1/3/5 px and
ms/pair per class for identity, ORB, SIFT, ECC, the network, ``network+ecc`` and the default with
large-motion hypotheses (``network+ecc+hypotheses``), in the JSON's ``classes``; ``--figure PATH``
draws acc@3 per class. ``--quick`` runs a few pairs of each part (seconds; CI runs it).
Human-readable lines go to stderr; the last line of stdout is one JSON object.
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from hnet_keras.data.augment import DEFAULT_AUGMENTATION  # noqa: E402
from hnet_keras.nets.checkpoint import load_pretrained  # noqa: E402
from hnet_keras.data.images import embedded_photo_paths, list_images, split_images  # noqa: E402
from hnet_keras.estimators.contract import EstimationFailed  # noqa: E402
from hnet_keras.estimators.methods import get_method  # noqa: E402
from hnet_keras.estimators.predict import (  # noqa: E402
    EstimateWarning,
    coarse_homographies,
    estimate_homographies,
    estimate_homography,
)
from hnet_keras.estimators.refine import align_images  # noqa: E402
from hnet_keras.scoring.difficulty import CLASSES, class_images, read_photo, write_class_pairs  # noqa: E402
from hnet_keras.scoring.real_pairs import evaluate_real_pairs, load_real_pairs, write_hpatches_sequence  # noqa: E402

SIZE, MAX_SHIFT = (640, 480), 0.2
CLASS_METHODS = ["identity", "orb_ransac", "sift_ransac", "ecc", "network", "network+ecc", "network+ecc+hypotheses"]
TIMING_SIZE = (900, 600)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=None, help="folder of photos (its test part is used)")
    parser.add_argument("--pairs", type=int, default=None, help="pairs (one per photo, photos reused if fewer; "
                                                                 "default 100, --quick 3)")
    parser.add_argument("--timing-pairs", type=int, default=None, help="900x600 pairs timed (default 20, --quick 3)")
    parser.add_argument("--checkpoint", default=None, help="network checkpoint (default: the shipped one)")
    parser.add_argument("--methods", nargs="+", default=["identity", "orb_ransac", "sift_ransac", "network",
                                                          "network+ecc", "network+ecc+hypotheses"])
    parser.add_argument("--class-pairs", type=int, default=None, help="pairs per class of difficulty "
                                                                       "(default 100, --quick 1; 0 skips them)")
    parser.add_argument("--class-methods", nargs="+", default=CLASS_METHODS)
    parser.add_argument("--figure", default=None, help="write the acc@3-by-class figure here (.png)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few pairs of each part, for a smoke run (seconds)")
    args = parser.parse_args()
    pairs = args.pairs or (3 if args.quick else 100)
    timing_pairs = args.timing_pairs or (3 if args.quick else 20)
    class_pairs = args.class_pairs if args.class_pairs is not None else (1 if args.quick else 100)
    if pairs < 1 or timing_pairs < 1:
        parser.error("--pairs and --timing-pairs must be at least 1")
    photos = split_images(list_images(args.images))["test"] if args.images else embedded_photo_paths("test")
    augmentation = dataclasses.replace(DEFAULT_AUGMENTATION, probability=1.0, blur=1.0)
    model, rho = load_pretrained(args.checkpoint)
    with tempfile.TemporaryDirectory() as folder:
        written = 0
        for index in range(pairs):
            image = _photo(photos, index, SIZE)
            if image is None:
                continue
            write_hpatches_sequence(Path(folder) / f"s{index:04d}", image, count=2, max_shift=MAX_SHIFT,
                                    seed=args.seed + index, augmentation=augmentation)
            written += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimateWarning)  # untrusted answers are scored like any other
            result = evaluate_real_pairs(load_real_pairs(folder), methods=args.methods, model=model, network_rho=rho,
                                         max_side=None, progress=False)
        timing = _time_full_resolution(model, rho, photos, timing_pairs, args.seed, augmentation, folder)
        classes = _classes(model, rho, photos, class_pairs, args.class_methods, args.seed, Path(folder) / "classes")
    print(result.table(), file=sys.stderr)
    print(f"{TIMING_SIZE[0]}x{TIMING_SIZE[1]}: estimate {timing['estimate_ms_per_pair']:.0f} ms/pair (network "
          f"{timing['estimate_network_ms']:.0f}, refinement {timing['estimate_refine_ms']:.0f}), SIFT + RANSAC "
          f"{timing['sift_ms_per_pair']:.0f} ms/pair: {timing['estimate_over_sift_time']:.2f}x", file=sys.stderr)
    summary = result.summary()
    print(json.dumps({"pairs": written, "image_size": list(SIZE), "max_shift": MAX_SHIFT,
                      **{f"{name}_{key}": round(float(value), 4) for name, figures in summary.items()
                         for key, value in figures.items() if key in ("score_1px", "score_3px", "score_5px",
                                                                      "mace", "median", "ms_per_pair")},
                      "timing_image_size": list(TIMING_SIZE), **timing, "class_pairs": class_pairs,
                      "classes": classes}))
    if args.figure and classes:
        from hnet_keras.plots import plot_accuracy_by_class, save_figure

        save_figure(plot_accuracy_by_class(classes), args.figure)


def _classes(model, rho, photos, count, methods, seed, folder):
    """Per class of difficulty, per method: acc@1/3/5 px, mean corner distance and ms/pair."""
    if count < 1:
        return {}
    _, images = class_images(photos, count, SIZE)
    scores = {}
    for kind in CLASSES:
        write_class_pairs(folder / kind, images, kind, count, seed=seed, size=SIZE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimateWarning)  # untrusted answers are scored like any other
            result = evaluate_real_pairs(load_real_pairs(folder / kind), methods=methods, model=model,
                                         network_rho=rho, max_side=None, progress=False)
        print(f"{kind} ({count} pairs):\n{result.table()}", file=sys.stderr)
        scores[kind] = {name: {key: round(float(value), 4) for key, value in figures.items()
                               if key in ("score_1px", "score_3px", "score_5px", "mace", "ms_per_pair")}
                        for name, figures in result.summary().items()}
    return scores


def _photo(photos, index, size):
    return read_photo(photos[index % len(photos)], size)


def _time_full_resolution(model, rho, photos, count, seed, augmentation, folder):
    """The estimate's and SIFT + RANSAC's time on ``count`` full-resolution 900x600 pairs, alternating."""
    pairs = []
    for index in range(count):
        image = _photo(photos, index, TIMING_SIZE)
        if image is not None:
            sequence = write_hpatches_sequence(Path(folder) / f"t{index:04d}", image, count=2, max_shift=MAX_SHIFT,
                                               seed=seed + 10_000 + index, augmentation=augmentation)
            pairs.append(load_real_pairs(sequence)[0].images())
    sift = get_method("sift_ransac")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrusted estimate is timed like any other
        estimate_homographies(model, pairs, rho)  # the network's tracing, for one pair and for many, untimed
        estimate_homography(model, *pairs[0], rho=rho)
        estimate, network, refine, features = [], [], [], []
        for image_a, image_b in pairs:
            began = time.perf_counter()
            estimate_homography(model, image_a, image_b, rho=rho)
            estimate.append(time.perf_counter() - began)
            began = time.perf_counter()
            try:
                sift.homography(image_a, image_b)
            except EstimationFailed:  # a failed estimate has spent its time too
                pass
            features.append(time.perf_counter() - began)
            began = time.perf_counter()
            start = coarse_homographies(model, [(image_a, image_b)], rho)[0]
            network.append(time.perf_counter() - began)
            began = time.perf_counter()
            align_images(image_a, image_b, start)
            refine.append(time.perf_counter() - began)
        began = time.perf_counter()
        estimate_homographies(model, pairs, rho)
        batched = (time.perf_counter() - began) / len(pairs)
    ms = lambda seconds: round(1000.0 * float(np.mean(seconds)), 1)  # noqa: E731
    return {"timing_pairs": len(pairs), "estimate_over_sift_time": round(sum(estimate) / sum(features), 3),
            "estimate_ms_per_pair": ms(estimate), "sift_ms_per_pair": ms(features), "estimate_network_ms": ms(network),
            "estimate_refine_ms": ms(refine), "batched_estimate_ms_per_pair": ms(batched)}


if __name__ == "__main__":
    main()
