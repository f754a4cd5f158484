"""``train-superpoint``, ``homographic-adaptation`` and ``evaluate-keypoints``: SuperPoint's pipeline.

1. ``train-superpoint --preset magicpoint_cpu``: MagicPoint on synthetic shapes;
2. ``homographic-adaptation PHOTOS --checkpoint RUN --out labels.npz``: pseudo ground truth;
3. ``train-superpoint --preset superpoint_cpu --labels labels.npz --init RUN``: SuperPoint on
   warped pairs of the labelled photos, starting from MagicPoint's encoder and detector;
4. ``evaluate-keypoints --network NAME=CHECKPOINT ... --pairs DIR``: detection on held-out shapes
   and repeatability on HPatches/Oxford-layout pairs beside Harris, Shi-Tomasi, FAST and SIFT.

The homography scores of ``superpoint`` beside SIFT and ORB come from ``evaluate-pairs``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..fileio import atomic_write_json
from .arguments import add_run_arguments, non_negative_int, output_file, positive_int

SUPERPOINT_PRESET_NAMES = ("magicpoint", "magicpoint_cpu", "superpoint", "superpoint_cpu", "magicpoint_smoke",
                           "superpoint_smoke")
CLASSICAL = ("harris", "shi_tomasi", "fast", "sift", "orb")


def register_commands(subparsers):
    """``train-superpoint``, ``homographic-adaptation``, ``evaluate-keypoints``."""
    train = subparsers.add_parser("train-superpoint", help="train MagicPoint on synthetic shapes, or SuperPoint on "
                                  "labelled photos (resumes the run)",
                                  description="MagicPoint presets train on synthetic shapes drawn on the fly; "
                                  "SuperPoint presets need --labels (from homographic-adaptation).")
    add_run_arguments(train, SUPERPOINT_PRESET_NAMES, "magicpoint_cpu", "runs/superpoint",
                      "also write the best network as a compact .weights.h5 (+ .json)")
    train.add_argument("--labels", default=None, help="labelled photos (.npz of homographic-adaptation)")
    train.add_argument("--init", default=None, help="a MagicPoint/SuperPoint checkpoint whose matching layers start the run")
    train.set_defaults(func=_run_train)

    adapt = subparsers.add_parser("homographic-adaptation", help="pseudo ground-truth keypoints for photos",
                                  description="Average a detector over random warps of each photo, then keep the "
                                  "maxima: labels for training SuperPoint on photos.")
    adapt.add_argument("photos", metavar="DIR", help="folder of photos (its train split is used, see --part)")
    adapt.add_argument("--checkpoint", required=True, help="the detector: a run folder, .keras or .weights.h5")
    adapt.add_argument("--out", required=True, type=output_file, help="the labels .npz (a .json of facts beside it)")
    adapt.add_argument("--limit", type=positive_int, default=250, help="photos to label at most")
    adapt.add_argument("--part", default="train", choices=("train", "validation", "test"), help="split part")
    adapt.add_argument("--homographies", type=positive_int, default=64, help="warped views per photo")
    adapt.add_argument("--size", type=positive_int, nargs=2, default=(160, 120), metavar=("W", "H"),
                       help="photos are scaled and centre-cropped to this size (multiples of 8)")
    adapt.add_argument("--threshold", type=float, default=0.015, help="smallest averaged probability of a label")
    adapt.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    adapt.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    adapt.set_defaults(func=_run_adapt)

    evaluate = subparsers.add_parser("evaluate-keypoints", help="detection and repeatability of keypoint detectors",
                                     description="Held-out synthetic shapes (precision-recall, mAP at 4 px, "
                                     "localisation error) and repeatability on HPatches/Oxford-layout pairs "
                                     "(300 points, NMS 4, 3 px), networks beside classical detectors.")
    evaluate.add_argument("--network", action="append", default=[], metavar="NAME=CHECKPOINT",
                          help="a network to score (repeatable)")
    evaluate.add_argument("--adapted", action="append", default=[], metavar="NAME=CHECKPOINT",
                          help="a network scored through homographic adaptation at test time (repeatable)")
    evaluate.add_argument("--classical", nargs="*", default=["harris", "shi_tomasi", "fast", "sift"],
                          choices=CLASSICAL, help="classical detectors beside the networks")
    evaluate.add_argument("--shapes", type=non_negative_int, default=500, help="held-out synthetic images (0: none)")
    evaluate.add_argument("--pairs", default=None, help="an HPatches/Oxford-layout folder for repeatability")
    evaluate.add_argument("--max-side", type=positive_int, default=480, help="pairs are downsized to this longer side")
    evaluate.add_argument("--top-k", type=positive_int, default=300, help="points per image for repeatability")
    evaluate.add_argument("--json", required=True, type=output_file, help="where to write the scores")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    evaluate.set_defaults(func=_run_evaluate)


def _run_train(args):
    from ..features.superpoint import save_superpoint, train_on_labels, train_superpoint

    options = {"run": args.run, "checkpoint_dir": args.checkpoints, "seed": args.seed, "resume": not args.no_resume,
               "initial_weights": args.init, "verbose": 0 if args.quiet else 2}
    if args.iterations:
        options["iterations"] = args.iterations
    if args.preset.startswith("superpoint"):
        if not args.labels:
            raise ValueError(f"preset {args.preset} trains on labelled photos: give --labels (homographic-adaptation)")
        result = train_on_labels(args.preset, args.labels, **options)
    else:
        if args.labels:
            raise ValueError(f"preset {args.preset} trains on synthetic shapes; --labels is for superpoint presets")
        result = train_superpoint(args.preset, **options)
    last = result.history[-1] if result.history else {}
    if args.export:
        save_superpoint(result.net, args.export, {"preset": args.preset, "iterations": last.get("iterations")})
    print(json.dumps({"run": str(result.directory), "epochs": len(result.history),
                      "iterations": last.get("iterations"), "val_loss": last.get("val_loss")}))
    return 0


def _run_adapt(args):
    from ..features.adaptation import adapt_photos, select_photos
    from ..features.superpoint import load_superpoint

    if any(side % 8 for side in args.size):
        raise ValueError(f"--size must be multiples of 8, got {args.size[0]} {args.size[1]}")
    paths = select_photos(args.photos, args.limit, args.part, args.seed)
    model = load_superpoint(args.checkpoint)
    _, labels, facts = adapt_photos(model, paths, args.out, tuple(args.size), args.homographies, args.seed,
                                    threshold=args.threshold, progress=not args.no_progress)
    print(json.dumps({"labels": args.out, "photos": facts["photos"], "skipped": len(facts["skipped"]),
                      "mean_points": round(facts["mean_points"], 1)}))
    return 0


def _named(values, flag):
    named = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} takes NAME=CHECKPOINT, got {value!r}")
        if not Path(path).exists():
            raise FileNotFoundError(f"{flag} {name}: checkpoint not found: {path}")
        named[name] = path
    return named


def _run_evaluate(args):
    from ..features.adaptation import adapted_probability
    from ..features.keypoint_eval import downsize_pair, evaluate_keypoints, network_detector
    from ..features.superpoint import load_superpoint, nms
    from ..scoring.real_pairs import load_real_pairs

    networks = {name: network_detector(load_superpoint(path)) for name, path in
                _named(args.network, "--network").items()}
    for name, path in _named(args.adapted, "--adapted").items():
        model = load_superpoint(path)

        def adapted(image, top_k=None, model=model):
            return nms(adapted_probability(model, image, homographies=32, seed=0)[0], 4, 1e-3, top_k)

        networks[name] = adapted
    pairs = []
    if args.pairs:
        for pair in load_real_pairs(args.pairs):
            image_a, image_b = pair.images()
            pairs.append(downsize_pair(image_a, image_b, pair.homography, args.max_side))
    report = evaluate_keypoints(networks, args.classical, args.shapes, pairs, args.top_k,
                                progress=not args.no_progress)
    report["pairs_folder"] = args.pairs
    atomic_write_json(args.json, report)
    print(json.dumps(report, indent=1))
    return 0

