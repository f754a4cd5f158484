"""Commands for using a trained network: ``demo``, ``estimate`` and ``export-checkpoint``
(:func:`hnet_keras.checkpoint.export_checkpoint`).

``demo`` is the quickstart: offline, on the embedded photos, with the shipped checkpoint
(or, where there is none, a smoke-trained model, and it says so), it prints the table
against the OpenCV baselines and saves figures.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

from .arguments import image_file_to_write, output_file, output_folder, positive_int
from .checkpoint import export_checkpoint, load_checkpoint, load_pretrained, shipped_checkpoint
from .evaluation import evaluate, load_test_set
from .images import read_grayscale
from .methods import DEFAULT_BASELINES, NETWORK_METHODS
from .plots import plot_mace_bars, plot_pair, save_figure

__all__ = ["run_demo", "register_commands"]


def _model_for_demo(checkpoint, out, seed):
    """``(model, rho, note)`` from a checkpoint, the shipped one, or a smoke training run."""
    path = Path(checkpoint) if checkpoint else shipped_checkpoint()
    if path.exists():
        model, rho = load_checkpoint(path)
        return model, rho, f"network: {path}"
    from .training import train  # Keras, only when a model must be trained

    result = train("smoke", run="demo_smoke", checkpoint_dir=Path(out) / "checkpoints", seed=seed,
                   resume=False, verbose=0)
    note = (f"no checkpoint at {path}: trained the smoke preset first "
            f"({result.history[-1]['iterations']} iterations, a wiring check, not a useful model)")
    return result.model, result.preset.rho, note


def run_demo(out="demo_output", pairs=200, seed=0, checkpoint=None, progress=True, refine=True):
    """The quickstart: network (and, with ``refine``, network + ECC) vs OpenCV baselines
    on held-out embedded photos.

    Returns:
        the :class:`hnet_keras.evaluation.Evaluation`; figures and a JSON go to ``out``.
    """
    if checkpoint and not Path(checkpoint).exists():  # a mistyped path must not fall back to a throwaway model
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    import keras  # for its seed

    out = Path(out)
    model, rho, note = _model_for_demo(checkpoint, out, seed)
    print(note)
    test_set = load_test_set(protocol="train", seed=seed, count=pairs)
    keras.utils.set_random_seed(seed)
    networks = list(NETWORK_METHODS if refine else NETWORK_METHODS[:1])
    result = evaluate(test_set, list(DEFAULT_BASELINES) + networks, model=model, network_rho=rho, progress=progress)
    print(f"{len(test_set.pairs)} pairs from {test_set.source}, seed {seed}")
    print(result.table())
    out.mkdir(parents=True, exist_ok=True)
    result.write_json(out / "demo.json")
    save_figure(plot_mace_bars(result), out / "mace_bars.png")
    shown = networks[-1]
    predicted = result.predictions[shown]
    save_figure(
        plot_pair(test_set.pairs[0, :, :, 0], test_set.pairs[0, :, :, 1], test_set.offsets[0], predicted[0],
                  title=shown),
        out / "example_pair.png",
    )
    print(f"wrote {out / 'demo.json'}, {out / 'mace_bars.png'} and {out / 'example_pair.png'}")
    return result


def register_commands(subparsers):
    """``demo``, ``estimate`` and ``export-checkpoint``."""
    demo = subparsers.add_parser("demo", help="quickstart: the network against OpenCV on held-out photos, offline")
    demo.add_argument("--out", default="demo_output", type=output_folder, help="folder for the figures and the JSON")
    demo.add_argument("--pairs", type=positive_int, default=200, help="test pairs")
    demo.add_argument("--seed", type=int, default=0, help="seed of the test pairs")
    demo.add_argument("--checkpoint", default=None, help="checkpoint to use (default: the shipped one)")
    demo.add_argument("--no-refine", action="store_true", help="leave out network+ecc (the network refined by ECC)")
    demo.set_defaults(func=lambda args: run_demo(args.out, args.pairs, args.seed, args.checkpoint,
                                                 refine=not args.no_refine) and 0)

    estimate = subparsers.add_parser("estimate", help="the homography from image A to image B, by the network")
    estimate.add_argument("image_a", help="first image")
    estimate.add_argument("image_b", help="second image (same size)")
    estimate.add_argument("--checkpoint", default=None, help="checkpoint to use (default: the shipped one)")
    estimate.add_argument("--overlay", default=None, type=image_file_to_write, help="write A with B warped onto it here (PNG)")
    estimate.add_argument("--no-refine", action="store_true", help="the network's estimate alone, without ECC")
    estimate.set_defaults(func=_run_estimate)

    export = subparsers.add_parser("export-checkpoint", help="a run's model as a compact .weights.h5 + .json")
    export.add_argument("run", help="the training run folder")
    export.add_argument("--out", required=True, type=output_file, help="the .weights.h5 to write")
    export.add_argument("--which", choices=("best", "last"), default="best", help="which model of the run")
    export.set_defaults(func=lambda args: print(f"wrote {export_checkpoint(args.run, args.out, args.which)}") or 0)


def _run_estimate(args):
    from .predict import LowTextureWarning, estimate_homography  # Keras, only for this command

    images = []
    for path in (args.image_a, args.image_b):
        image, reason = read_grayscale(path, warn=False)
        if image is None:
            raise ValueError(f"{path}: {reason}")
        images.append(image)
    model, rho = load_pretrained(args.checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowTextureWarning)
        h_ab, info = estimate_homography(model, images[0], images[1], rho=rho, refine=not args.no_refine, details=True)
    for warning in caught:
        print(f"hnet_keras estimate: warning: {warning.message}", file=sys.stderr)
    print(json.dumps({"H_ab": np.round(h_ab, 8).tolist(), "direction": "maps points of image A to image B",
                      "chosen": info["chosen"], "refinement_fallback": info["fallback"],
                      "texture": [round(t, 3) for t in info["texture"]]}))
    if args.overlay:
        height, width = images[0].shape
        b_on_a = cv2.warpPerspective(images[1], np.linalg.inv(h_ab), (width, height))
        if not cv2.imwrite(args.overlay, np.dstack([images[0], b_on_a, images[0]])):
            raise ValueError(f"could not write {args.overlay}")
        print(f"wrote {args.overlay}")
    return 0
