"""``evaluate-descriptors`` and ``train-descriptors``: dense descriptors and their PCK.

``evaluate-descriptors DIR --json out.json`` scores DAISY, SIFT, the learned descriptors (the
shipped checkpoint, offline) and their descriptor space on an HPatches/Oxford-layout folder at
1/3/5 px under the three protocols of :mod:`hnet_keras.features.pck`. ``train-descriptors``
trains the network (resumable).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..fileio import atomic_write_json
from .arguments import add_run_arguments, non_negative_int, output_file, positive_float, positive_int

DESCRIPTOR_METHODS = ("daisy", "sift", "superpoint", "learned", "learned_space")
DEFAULT_DESCRIPTOR_METHODS = ("daisy", "sift", "learned", "learned_space")
"""SuperPoint's descriptors are scored when asked for (``--methods ... superpoint``): they load a second network."""
DESCRIPTOR_PROTOCOLS = ("seed", "dense", "homography")
DESCRIPTOR_PRESET_NAMES = ("descriptors_cpu", "descriptors", "descriptors_smoke")


def register_commands(subparsers):
    """``evaluate-descriptors``, ``train-descriptors``."""
    evaluate = subparsers.add_parser(
        "evaluate-descriptors", help="PCK of dense descriptors (DAISY, SIFT, learned, descriptor space) on real pairs",
        description="PCK at 1/3/5 px on an HPatches/Oxford-layout folder: the seed study's protocol (Harris "
        "top-10 % points, nearest neighbour among the warped points only), nearest neighbour over the whole "
        "dense map, and mutual-NN + RANSAC homography accuracy; split by v_/i_ sequence names.")
    evaluate.add_argument("pairs", metavar="DIR", help="a sequence folder, or a folder of sequence folders")
    evaluate.add_argument("--json", required=True, type=output_file, help="where to write the scores")
    evaluate.add_argument("--checkpoint", default=None,
                          help="the descriptor network: a .keras file or a train-descriptors run folder "
                          "(default: the shipped checkpoints/dense_descriptors)")
    evaluate.add_argument("--methods", nargs="+", choices=DESCRIPTOR_METHODS, default=list(DEFAULT_DESCRIPTOR_METHODS),
                          metavar="METHOD", help=f"methods, from {', '.join(DESCRIPTOR_METHODS)}")
    evaluate.add_argument("--protocols", nargs="+", choices=DESCRIPTOR_PROTOCOLS, default=list(DESCRIPTOR_PROTOCOLS),
                          metavar="PROTOCOL", help=f"protocols, from {', '.join(DESCRIPTOR_PROTOCOLS)}")
    evaluate.add_argument("--points", type=positive_int, default=1000, help="points per pair")
    evaluate.add_argument("--long-side", type=positive_int, default=640, help="images are resized to this longer side")
    evaluate.add_argument("--scales", type=positive_float, nargs="+", default=None, metavar="SCALE",
                          help="the descriptor space's image scales (default: 1, 0.71, 0.5)")
    evaluate.add_argument("--angles", type=float, nargs="+", default=[0.0], metavar="DEGREES",
                          help="the descriptor space's rotations of each image (default: 0, scales only; "
                          "-30 0 30 covers relative rotations up to about 75 degrees, at 3x the cost)")
    evaluate.add_argument("--max-pairs", type=non_negative_int, default=0, help="score only the first N pairs (0: all)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the points drawn")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(func=_run_evaluate)

    train = subparsers.add_parser(
        "train-descriptors", help="train the dense descriptor network (resumes the run)",
        description="Photos warped by random homographies with real-pair photometrics, InfoNCE over sampled "
        "correspondences; a folder of photos is split by file name and its test part never read.")
    add_run_arguments(train, DESCRIPTOR_PRESET_NAMES, "descriptors_cpu", "runs/descriptors",
                      "also write the best network as a .keras file (+ .json) to ship")
    train.add_argument("--images", default=None,
                       help="folder of photos (default: the embedded scikit-image photos)")
    train.set_defaults(func=_run_train)


def _run_evaluate(args):
    from ..features import pck  # Keras, only when the command runs
    from ..features.descriptor_space import DEFAULT_SCALES, DescriptorSpace, scale_pairs_used
    from ..features.descriptors import SHIPPED_DESCRIPTORS, load_descriptor_net
    from ..features.superpoint import load_superpoint
    from ..scoring.real_pairs import load_real_pairs

    real = load_real_pairs(args.pairs)
    if args.max_pairs:
        real = real[: args.max_pairs]
    pairs = [pck.DescriptorPair(p.name, *p.images(), p.homography, pck.sequence_kind(p.name)) for p in real]
    methods, checkpoint = [], None
    if {"learned", "learned_space"} & set(args.methods):
        checkpoint = args.checkpoint or SHIPPED_DESCRIPTORS
        learned = pck.LearnedDescriptors(load_descriptor_net(checkpoint))
    scales = tuple(args.scales or DEFAULT_SCALES)
    available = {"daisy": pck.DaisyDescriptors, "sift": pck.SiftDescriptors, "learned": lambda: learned,
                 "superpoint": lambda: pck.SuperPointDescriptors(load_superpoint()),
                 "learned_space": lambda: DescriptorSpace(learned, scales, angles=tuple(args.angles),
                                                          name="learned_space")}
    methods = [available[name]() for name in dict.fromkeys(args.methods)]
    start = time.perf_counter()
    results = pck.evaluate_pck(pairs, methods, points=args.points, long_side=args.long_side, seed=args.seed,
                               protocols=tuple(args.protocols), progress=not args.no_progress)
    table = pck.pck_table(results)
    report = {
        "folder": str(Path(args.pairs)),
        "pairs": len(pairs),
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "protocols": {
            "seed": f"long side {args.long_side}, up to {args.points} points from the top 10 % Harris response of "
                    "the common region, nearest neighbour among the descriptors at the warped points only",
            "dense": "the same points, nearest neighbour over the whole dense map of B, refined on a 1-px grid",
            "homography": f"up to {args.points} Harris corners per image, mutual NN, RANSAC 3 px; fraction of "
                          "pairs whose mean corner error is within the threshold",
        },
        "thresholds_px": list(pck.PCK_THRESHOLDS),
        "seed": args.seed,
        "seconds": round(time.perf_counter() - start, 1),
        "table": table,
    }
    if "learned_space" in args.methods and "seed" in args.protocols:
        space = next(method for method in methods if method.name == "learned_space")
        report["space_scales"], report["space_angles"] = list(scales), list(args.angles)
        report["space_scale_pairs_of_correct_matches"] = scale_pairs_used(results["learned_space"], space)
    atomic_write_json(args.json, report)
    for name, splits in table.items():
        for split, entry in splits.items():
            cells = "  ".join(f"{protocol} " + "/".join(f"{entry[protocol][str(t)]:.3f}" for t in pck.PCK_THRESHOLDS)
                              for protocol in args.protocols if protocol in entry)
            print(f"{name:14s} {split:12s} {entry['pairs']:4d} pairs  {cells}")
    return 0


def _run_train(args):
    from ..features.descriptors import save_descriptor_net, train_descriptors  # Keras, only when the command runs

    overrides = {} if args.iterations is None else {"iterations": args.iterations}
    result = train_descriptors(args.preset, run=args.run, checkpoint_dir=args.checkpoints, images=args.images,
                               seed=args.seed, resume=not args.no_resume, verbose=0 if args.quiet else 2,
                               **overrides)
    last = result.history[-1] if result.history else {}
    if args.export:
        from ..features.descriptors import load_descriptor_net

        best = load_descriptor_net(result.directory)
        save_descriptor_net(best, args.export, {"training": {"preset": result.preset.name, "seed": args.seed,
                                                             "iterations": last.get("iterations")}})
    print(json.dumps({"run": str(result.directory), "epochs": len(result.history), "iterations": last.get("iterations"),
                      "loss": last.get("loss"), "val_loss": last.get("val_loss")}))
    return 0
