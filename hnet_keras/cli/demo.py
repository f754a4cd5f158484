"""``demo`` and ``estimate``: the quickstart against the OpenCV baselines, and the homography
between two images of your own."""

from __future__ import annotations

import json
import sys
import warnings

import cv2
import numpy as np

from ..data.images import read_grayscale
from ..nets.checkpoint import load_pretrained
from .arguments import image_file_to_write, output_folder, positive_int


def register_commands(subparsers):
    """``demo`` and ``estimate``."""
    demo = subparsers.add_parser("demo", help="quickstart: the network against OpenCV on held-out photos, offline")
    demo.add_argument("--out", default="demo_output", type=output_folder, help="folder for the figures and the JSON")
    demo.add_argument("--pairs", type=positive_int, default=200, help="test pairs")
    demo.add_argument("--seed", type=int, default=0, help="seed of the test pairs")
    demo.add_argument("--checkpoint", default=None, help="checkpoint to use (default: the shipped one)")
    demo.add_argument("--no-refine", action="store_true", help="leave out network+ecc (the network refined by ECC)")
    demo.set_defaults(func=_run_demo)

    estimate = subparsers.add_parser(
        "estimate", help="the homography from image A to image B, its alignment score and whether to trust it")
    estimate.add_argument("image_a", help="first image")
    estimate.add_argument("image_b", help="second image (another size is scaled to A's)")
    estimate.add_argument("--checkpoint", default=None, help="checkpoint to use (default: the shipped one)")
    estimate.add_argument("--overlay", default=None, type=image_file_to_write, help="write A with B warped onto it here (PNG)")
    estimate.add_argument("--no-refine", action="store_true", help="the network's estimate alone, without ECC")
    estimate.add_argument("--no-hypotheses", action="store_true",
                          help="on a poor alignment, do not try large rotations and zooms (which take 1-3 s more), "
                               "nor the keypoint start")
    estimate.add_argument("--no-keypoints", action="store_true",
                          help="on a poor alignment, do not try a start from SuperPoint keypoints")
    estimate.set_defaults(func=_run_estimate)



def _run_demo(args):
    from ..scoring.demo import run_demo

    run_demo(args.out, args.pairs, args.seed, args.checkpoint, refine=not args.no_refine)
    return 0


def _run_estimate(args):
    from ..estimators.predict import (  # Keras, only for this command
        EstimateWarning,
        estimate_homography,
    )

    images = []
    for path in (args.image_a, args.image_b):
        image, reason = read_grayscale(path, warn=False)
        if image is None:
            raise ValueError(f"{path}: {reason}")
        images.append(image)
    model, rho = load_pretrained(args.checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EstimateWarning)
        h_ab, info = estimate_homography(model, images[0], images[1], rho=rho, refine=not args.no_refine, details=True,
                                         hypotheses=not args.no_hypotheses, keypoints=not args.no_keypoints)
    for warning in caught:
        if issubclass(warning.category, EstimateWarning):
            print(f"hnet_keras estimate: warning: {warning.message}", file=sys.stderr)
    print(json.dumps({"H_ab": np.round(h_ab, 8).tolist(), "direction": "maps points of image A to image B",
                      "chosen": info["chosen"], "hypothesis": info.get("hypothesis"),
                      "score": round(info["score"], 4), "trusted": info["trusted"],
                      "scores": {name: round(value, 4) for name, value in info["scores"].items()},
                      "warnings": info["warnings"], "refinement_fallback": info["fallback"],
                      "texture": [round(t, 3) for t in info["texture"]], "working_size": list(info["working_size"])}))
    if args.overlay:
        height, width = images[0].shape
        b_on_a = cv2.warpPerspective(images[1], np.linalg.inv(h_ab), (width, height))
        if not cv2.imwrite(args.overlay, np.dstack([images[0], b_on_a, images[0]])):
            raise ValueError(f"could not write {args.overlay}")
        print(f"wrote {args.overlay}")
    return 0
