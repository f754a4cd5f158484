"""Reproduce the large-motion checkpoint (issue 18): the shipped iterative model fine-tuned on
pairs that move as real photographs do.

    python checkpoints/hnet_large_motion/reproduce.py PHOTOS [--phase train|export|evaluate|all] [--steps N]

Train: the ``large_motion`` preset (:data:`hnet_keras.training.presets.PRESETS`) through the
toolkit's one training loop, :func:`hnet_keras.train`, starting from
checkpoints/hnet_iterative (``start_from``). Pairs are synthesized on the fly from the training
part of PHOTOS (:func:`hnet_keras.data.images.split_images`), prepared at 480x360: patch B is
moved by up to +-45 degrees of rotation, a zoom of 0.5-2, 50 degrees of viewpoint change and
half a patch of shift (:data:`hnet_keras.data.motion.LARGE_MOTION`), and each patch is changed
on its own by :data:`hnet_keras.data.augment.REAL_PAIR_AUGMENTATION` (brightness, contrast,
gamma, blur, noise, illumination gradients, vignetting, JPEG), then resized to 64 px. AdamW,
250 warm-up steps to 4e-4 then cosine decay, batch 32, 12,000 steps, the sequence L1 loss.
Validation: 512 fixed moved pairs of the validation part, no augmentation. Checkpoints every
250 steps in runs/hnet_large_motion/; a killed run resumes where it stopped (run the same
command again), drawing the same pairs.

Export: the last model as checkpoints/hnet_large_motion/hnet_large_motion.weights.h5 with its
description beside it, by ``export_checkpoint``.

Evaluate: on the test part of PHOTOS (never trained on), two sets, every method on the same pairs:

* ``--pairs`` (default 300) 128 px pairs moved like the training pairs (seed 0, no photometric
  change): identity, ORB, SIFT, ECC, the shipped iterative network and this one, each alone and
  refined by ECC;
* the whole-image benchmark's zoom + rotation, viewpoint and illumination classes
  (:mod:`hnet_keras.scoring.difficulty`, ``--class-pairs`` each, default 100, the same pairs as
  ``benchmarks/bench_whole_images.py``): the estimate pipeline (``network+ecc+hypotheses``) and
  the network alone with either checkpoint, beside SIFT.

It writes evaluation.json here (per-pair errors included) and prints the tables.
"""

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import hnet_keras
from hnet_keras.nets.checkpoint import export_checkpoint

RUNS, RUN = Path("runs"), "hnet_large_motion"
HERE = Path(__file__).resolve().parent
START = HERE.parent / "hnet_iterative" / "hnet_iterative.weights.h5"
OUT = HERE / "hnet_large_motion.weights.h5"


def train(photos, steps=None):
    """The ``large_motion`` preset from the shipped iterative weights, resumable, in runs/hnet_large_motion/."""
    overrides = {} if steps is None else {"iterations": steps}
    return hnet_keras.train("large_motion", run=RUN, checkpoint_dir=RUNS, images=photos, seed=0, verbose=0,
                            progress=True, start_from=START, **overrides)


def evaluate(photos, count=300, class_pairs=100):
    """The two test sets of the module's docstring; returns the JSON written to evaluation.json."""
    import numpy as np

    from hnet_keras.data.images import list_images, split_images
    from hnet_keras.data.motion import LARGE_MOTION, sample_moved_pairs
    from hnet_keras.data.synthesis import load_prepared_images
    from hnet_keras.estimators.methods import NetworkMethod, RefinedNetworkMethod
    from hnet_keras.estimators.predict import EstimateWarning
    from hnet_keras.fileio import atomic_write_text
    from hnet_keras.nets.checkpoint import load_checkpoint
    from hnet_keras.scoring.difficulty import class_images, write_class_pairs
    from hnet_keras.scoring.evaluation import evaluate as evaluate_pairs
    from hnet_keras.scoring.real_pairs import evaluate_real_pairs, load_real_pairs
    from hnet_keras.training.presets import PRESETS

    test = split_images(list_images(photos))["test"]
    networks = {name: load_checkpoint(path) for name, path in (("iterative", START), ("large_motion", OUT))}
    prepared, _ = load_prepared_images(test, PRESETS["large_motion"].synthesis)
    rng = np.random.default_rng(0)
    pairs, offsets = sample_moved_pairs(prepared, np.arange(count) % len(prepared), rng, motion=LARGE_MOTION)
    methods = ["identity", "orb_ransac", "sift_ransac", "ecc"]
    for name, (model, rho) in networks.items():
        methods += [NetworkMethod(model, rho, name=name, description=f"network ({name})"),
                    RefinedNetworkMethod(model, rho, name=f"{name}+ecc", description=f"network + ECC ({name})")]
    moved = evaluate_pairs(pairs, offsets, methods=methods)
    print(moved.table())
    report = {"moved_pairs": {"pairs": count, "photos": len(prepared), "seed": 0,
                              "summary": moved.summary(),
                              "errors": {name: np.round(moved.pair_errors(name), 4).tolist() for name in moved.methods}}}
    _, images = class_images(test, class_pairs)
    report["classes"] = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("zoom_rotation", "viewpoint", "illumination"):
            write_class_pairs(Path(folder) / kind, images, kind, class_pairs, seed=0)
            methods = ["sift_ransac"]
            for name, (model, rho) in networks.items():
                methods += [NetworkMethod(model, rho, name=name, description=f"network ({name})"),
                            RefinedNetworkMethod(model, rho, name=f"{name}+ecc+hypotheses", hypotheses=True,
                                                 description=f"network + ECC + hypotheses ({name})")]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EstimateWarning)  # untrusted answers are scored like any other
                result = evaluate_real_pairs(load_real_pairs(Path(folder) / kind), methods=methods, max_side=None)
            print(f"{kind} ({class_pairs} pairs):\n{result.table()}")
            report["classes"][kind] = {"summary": result.summary(),
                                       "errors": {name: np.round(result.pair_errors(name), 4).tolist()
                                                  for name in result.methods}}
    report["command"] = f"python checkpoints/hnet_large_motion/reproduce.py {photos} --phase evaluate"
    atomic_write_text(HERE / "evaluation.json", json.dumps(report, indent=1, default=float))
    return report


def export():
    """The last model of the run, described (architecture, rho, training facts), as the checkpoint."""
    return export_checkpoint(RUNS / RUN, OUT, which="last")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (../shared/photos for the checkpoint)")
    parser.add_argument("--phase", choices=("train", "export", "evaluate", "all"), default="all")
    parser.add_argument("--pairs", type=int, default=300, help="moved 128 px test pairs (evaluate)")
    parser.add_argument("--class-pairs", type=int, default=100, help="whole-image pairs per class (evaluate)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps of the whole run (default: the preset's 12,000)")
    args = parser.parse_args()
    if args.phase in ("train", "all"):
        train(args.photos, args.steps)
    if args.phase in ("export", "all"):
        print(f"wrote {export()}")
    if args.phase in ("evaluate", "all"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        evaluate(args.photos, args.pairs, args.class_pairs)
        print(f"wrote {HERE / 'evaluation.json'}")
