"""``evaluate`` and ``evaluate-pairs``: every method on the same synthetic pairs, or on real
image pairs with known homographies."""

from __future__ import annotations

from pathlib import Path

from ..estimators.methods import DEFAULT_BASELINES, HYPOTHESES_METHOD, LEARNED_FEATURES, METHOD_CHOICES, NETWORK_METHODS
from ..nets.checkpoint import check_rho, load_checkpoint, shipped_checkpoint
from ..scoring.evaluation import DEFAULT_PAIRS, PROTOCOLS, evaluate, load_test_set
from ..scoring.real_pairs import (
    REAL_PAIRS_MAX_SIDE,
    evaluate_real_pairs,
    load_real_pairs,
)
from .arguments import non_negative_int, output_file, output_folder, positive_int


def add_method_arguments(parser):
    """``--methods``, ``--checkpoint`` and ``--network-rho``, shared by ``evaluate`` and ``evaluate-pairs``."""
    parser.add_argument("--methods", nargs="+", choices=METHOD_CHOICES, default=None, metavar="METHOD",
                        help=f"methods to run, from {', '.join(METHOD_CHOICES)} (default: every available "
                        "baseline, plus network and network+ecc when a checkpoint is at hand, and in evaluate-pairs "
                        f"{HYPOTHESES_METHOD}, the estimate command's pipeline)")
    parser.add_argument("--no-refine", action="store_true",
                        help="leave the refined network methods (network+ecc, network+ecc+hypotheses) out of the "
                        "default methods")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint for the network methods: a .keras model, a run folder or a "
                        "described .weights.h5 (default: the shipped checkpoint)")
    parser.add_argument("--network-rho", type=float, default=None,
                        help="the rho the network was trained with (default: the checkpoint's own)")


def _checkpoint_and_methods(args):
    checkpoint = args.checkpoint
    if checkpoint is None and shipped_checkpoint().exists():
        checkpoint = shipped_checkpoint()
    methods = args.methods
    if methods is None:
        networks = NETWORK_METHODS[:1] if args.no_refine else NETWORK_METHODS
        if getattr(args, "whole_images", False) and not args.no_refine:
            networks += (HYPOTHESES_METHOD,)
        methods = list(DEFAULT_BASELINES) + (list(networks) if checkpoint else [])
    return checkpoint, methods


def network_wanted(args):
    """Whether the methods of ``evaluate`` or ``evaluate-pairs`` include a network (so Keras loads)."""
    return bool(set(NETWORK_METHODS + (HYPOTHESES_METHOD,) + tuple(LEARNED_FEATURES))
                & set(_checkpoint_and_methods(args)[1]))


def methods_from_args(args):
    """The methods to run and, when the network is among them, ``(model, rho)``.

    Without ``--methods``, the network and (unless ``--no-refine``) the network refined
    by ECC join the baselines whenever a checkpoint is at hand: ``--checkpoint`` or the
    shipped one; on whole images (``evaluate-pairs``) so does the ``estimate`` command's
    pipeline, :data:`~hnet_keras.estimators.methods.HYPOTHESES_METHOD`.
    """
    if args.network_rho is not None:
        check_rho(args.network_rho, "--network-rho")
    checkpoint, methods = _checkpoint_and_methods(args)
    if not set(NETWORK_METHODS + (HYPOTHESES_METHOD,)) & set(methods):
        return methods, None, None
    if checkpoint is None:
        raise ValueError("the network methods need --checkpoint PATH (no shipped checkpoint found)")
    model, rho = load_checkpoint(checkpoint, args.network_rho)
    return methods, model, rho


def _register_evaluate(subparsers):
    """``evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="compare HomographyNet with the OpenCV baselines on synthetic test pairs",
        description="Mean corner error (MACE), median, p90, failure rate and speed of every method "
        "on the same pairs. The paper's protocol (DeTone et al. 2016: regression 9.2, "
        "ORB+RANSAC 11.7, classification 24.1, identity 49.1 px) is --protocol paper.",
    )
    add_method_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", default=None,
                        help="folder of .npz archives (or one archive) to evaluate on")
    source.add_argument("--images", default=None,
                        help="folder of images to synthesize a seeded test set from "
                        "(without --data or --images: the embedded photos' test hold-out)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="train",
                        help="synthesis protocol: train (320x240, 128 px, rho 32) or "
                        "paper (640x480, 256 px, rho 64; the network sees pairs at its input size)")
    parser.add_argument("--split", choices=("train", "validation", "test"), default=None,
                        help="with --images: use only this part of the folder's fixed split by file name "
                        "(default: every image)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthesized test set")
    parser.add_argument("--pairs", type=non_negative_int, default=DEFAULT_PAIRS,
                        help="pairs to synthesize, or the first N pairs of --data (0: all of --data)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="the network's batch size")
    parser.add_argument("--json", required=True, type=output_file, help="where to write the JSON summary")
    parser.add_argument("--csv", default=None, type=output_file,
                        help="where to write the per-pair CSV (default: the JSON path with .csv)")
    parser.add_argument("--figures", default=None, type=output_folder, help="folder for the PNG figures (CDF, MACE bars, examples)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=_run_evaluate)


def _run_evaluate(args):
    if args.pairs < 0 or (args.pairs == 0 and args.data is None):
        raise ValueError(f"--pairs must be positive (0 only with --data), got {args.pairs}")
    methods, model, network_rho = methods_from_args(args)
    test_set = load_test_set(
        data=args.data, images=args.images, protocol=args.protocol, seed=args.seed, count=args.pairs,
        split=args.split,
    )
    result = evaluate(test_set, methods=methods, model=model, network_rho=network_rho, batch_size=args.batch_size,
                      progress=not args.no_progress)
    print(result.table())
    json_path = result.write_json(args.json)
    csv_path = result.write_csv(args.csv or Path(args.json).with_suffix(".csv"))
    print(f"wrote {json_path} and {csv_path}")
    if args.figures:
        from ..plots import save_evaluation_figures

        paths = save_evaluation_figures(result, args.figures)
        print(f"wrote {len(paths)} figures to {args.figures}")
    return 0


def _register_evaluate_pairs(subparsers):
    """``evaluate-pairs``."""
    parser = subparsers.add_parser(
        "evaluate-pairs",
        help="score full-image homographies on real pairs (HPatches or Oxford-affine folders)",
        description="HPatches homography score: the fraction of pairs whose 4 image corners, warped by "
        "the estimated and the true homography, are on average within 1, 3 and 5 px.",
    )
    parser.add_argument("folder", metavar="DIR", help="an HPatches sequence or Oxford-affine folder, or a folder of them")
    add_method_arguments(parser)
    parser.add_argument("--max-side", type=non_negative_int, default=REAL_PAIRS_MAX_SIDE,
                        help="downsize images so their longer side is at most this before the "
                        "baselines run, and scale the homography back (0 = full size)")
    parser.add_argument("--json", required=True, type=output_file, help="where to write the JSON scores")
    parser.add_argument("--csv", default=None, type=output_file, help="where to write the per-pair CSV (default: the JSON path with .csv)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=_run_evaluate_pairs, whole_images=True)


def _run_evaluate_pairs(args):
    methods, model, network_rho = methods_from_args(args)
    result = evaluate_real_pairs(load_real_pairs(args.folder), methods=methods, model=model,
                                 max_side=args.max_side or None, network_rho=network_rho,
                                 progress=not args.no_progress)
    print(result.table())
    json_path = result.write_json(args.json)
    csv_path = result.write_csv(args.csv or Path(args.json).with_suffix(".csv"))
    print(f"wrote {json_path} and {csv_path}")
    return 0


def register_commands(subparsers):
    """``evaluate`` and ``evaluate-pairs``."""
    _register_evaluate(subparsers)
    _register_evaluate_pairs(subparsers)
