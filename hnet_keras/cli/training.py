"""``train``, ``experiment`` and ``export-checkpoint``: runs of a recipe, the notebooks'
experiments, and a run's model as a compact checkpoint.

The recipes' names come from :mod:`hnet_keras.training.presets` (no Keras); Keras loads only
when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..nets.targets import MODEL_KINDS
from ..training.presets import BUDGETS, EXPERIMENTS, PRESETS
from .arguments import output_file, plain_name, positive_float, positive_int

# Preset fields the command line can override: flag, type, help.
_OVERRIDES = (
    ("--kind", str, "model"),
    ("--iterations", int, "optimizer steps of the whole run"),
    ("--batch-size", int, "pairs per step"),
    ("--learning-rate", float, "initial learning rate"),
    ("--width", float, "filter multiplier of the model"),
    ("--input-size", int, "patch side, the model's input"),
    ("--rho", int, "largest corner perturbation; the targets are offsets / rho"),
    ("--steps-per-epoch", int, "steps between checkpoints, with on-the-fly data"),
)


def _register_train(subparsers):
    """``train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a HomographyNet (resumes the run if it has a checkpoint)",
        description="Train with a named recipe (preset); the recipe's fields can be overridden.",
    )
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="the recipe")
    parser.add_argument("--checkpoints", default="checkpoints", help="folder of the run folders")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over even if the run has a checkpoint (a run resumes only with its own options)")
    parser.add_argument("--mixed-precision", action="store_true", help="train with the mixed_float16 policy")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--devices", type=positive_int, default=None,
                        help="devices of this machine that train data-parallel, each on a slice of every batch "
                        "(default: all visible GPUs; 1: one device; with TF_CONFIG: every worker's GPUs)")
    # Options whose default lives elsewhere (the preset, the embedded photos) are
    # left out of the namespace when not given, so the help shows no "None".
    unset = argparse.SUPPRESS
    parser.add_argument("--run", default=unset, type=plain_name, help="run name, its folder under --checkpoints (default: the preset's name)")
    parser.add_argument("--data", default=unset, help="folder of .npz archives (default: pairs synthesized on the fly)")
    parser.add_argument("--val-data", default=unset,
                        help="folder of validation archives (default: pairs of the held-out embedded photos)")
    parser.add_argument("--images", default=unset,
                        help="folder of images for on-the-fly pairs, split by file name into train / "
                        "validation / test parts: trains on the first, validates on the second "
                        "(default: the embedded training photos)")
    parser.add_argument("--start-from", default=unset,
                        help="checkpoint of the same model whose weights a new run starts from (fine-tuning)")
    for flag, kind, text in _OVERRIDES:
        kind = {int: positive_int, float: positive_float}.get(kind, kind)  # every number override is > 0
        parser.add_argument(flag, type=kind, default=unset, help=f"{text} (default: the preset's)",
                            **({"choices": MODEL_KINDS} if flag == "--kind" else {}))
    parser.set_defaults(func=_run_train)


def _run_train(args):
    from ..training.run import train  # Keras, only when the command runs

    options = vars(args)
    names = [flag[2:].replace("-", "_") for flag, _, _ in _OVERRIDES]
    overrides = {name: options[name] for name in names if name in options}
    result = train(
        args.preset,
        run=options.get("run"),
        checkpoint_dir=args.checkpoints,
        data=options.get("data"),
        validation_data=options.get("val_data"),
        images=options.get("images"),
        seed=args.seed,
        resume=not args.no_resume,
        mixed_precision=args.mixed_precision,
        verbose=0 if args.quiet else "auto",
        devices=args.devices,
        start_from=options.get("start_from"),
        **overrides,
    )
    last = result.history[-1] if result.history else {}
    print(json.dumps({"run": str(result.directory), "epochs": len(result.history),
                      "iterations": last.get("iterations"), "val_mace": last.get("val_mace"),
                      "best_val_mace": result.best_val_mace, "distribution": result.distribution}))
    return 0


def _register_experiment(subparsers):
    """``experiment``."""
    parser = subparsers.add_parser(
        "experiment",
        help="run a notebook's experiment (live, a longer CPU run, or the paper's recipe) and save its JSON and figure",
        description="Train every run of an experiment, scoring each on held-out pairs as it learns; "
        "writes OUTPUT.json and OUTPUT.png. Runs resume from their checkpoints.",
    )
    parser.add_argument("name", choices=EXPERIMENTS, help="the experiment (notebooks 03, 05, 06, 07, 08, 11)")
    parser.add_argument("--budget", default="full", choices=BUDGETS, help="how long the runs train (full: the longer CPU run whose results the notebooks plot)")
    parser.add_argument("--images", default=None,
                        help="folder of photos: trains on its train split, scores on its test split "
                        "(default: the embedded photos)")
    parser.add_argument("--data", default=None, help="folder of training archives (the paper budget: MS-COCO's)")
    parser.add_argument("--checkpoints", default="runs/experiments", help="folder of the run folders")
    parser.add_argument("--output", type=output_file, required=True, help="OUTPUT.json and OUTPUT.png are written")
    parser.add_argument("--steps", type=positive_int, default=None, help="training steps of every run (default: the budget's)")
    parser.add_argument("--pairs", type=positive_int, default=256, help="held-out pairs per evaluation")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--no-resume", action="store_true", help="start the runs over")
    parser.set_defaults(func=_run_experiment)


def _run_experiment(args):
    from ..experiments import run_experiment  # Keras, only when the command runs
    from ..plots import plot_experiment, save_figure

    result = run_experiment(args.name, args.budget, folder=Path(args.checkpoints) / args.budget, images=args.images,
                            data=args.data, steps=args.steps, pairs=args.pairs, seed=args.seed, resume=not args.no_resume)
    stem = Path(args.output).with_suffix("")
    result.save(stem.with_suffix(".json"))
    save_figure(plot_experiment(result), stem.with_suffix(".png"))
    print(result.describe())
    print(result.timing())
    print(result.summary())
    print(result.compare())
    print(result.shipped())
    return 0


def _register_export(subparsers):
    export = subparsers.add_parser("export-checkpoint", help="a run's model as a compact .weights.h5 + .json")
    export.add_argument("run", help="the training run folder")
    export.add_argument("--out", required=True, type=output_file, help="the .weights.h5 to write")
    export.add_argument("--which", choices=("best", "last"), default="best", help="which model of the run")
    export.set_defaults(func=_run_export)


def _run_export(args):
    from ..nets.checkpoint import export_checkpoint

    print(f"wrote {export_checkpoint(args.run, args.out, args.which)}")
    return 0


def register_commands(subparsers):
    """``train``, ``experiment`` and ``export-checkpoint``."""
    _register_train(subparsers)
    _register_experiment(subparsers)
    _register_export(subparsers)
