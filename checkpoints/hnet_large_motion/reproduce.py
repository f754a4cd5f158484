"""Reproduce the large-motion checkpoint (issue 18): the shipped iterative model fine-tuned on
pairs that move as real photographs do.

    python checkpoints/hnet_large_motion/reproduce.py PHOTOS [--phase train|export|all] [--steps N]

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
"""

import argparse
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


def export():
    """The last model of the run, described (architecture, rho, training facts), as the checkpoint."""
    return export_checkpoint(RUNS / RUN, OUT, which="last")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (../shared/photos for the checkpoint)")
    parser.add_argument("--phase", choices=("train", "export", "all"), default="all")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps of the whole run (default: the preset's 12,000)")
    args = parser.parse_args()
    if args.phase in ("train", "all"):
        train(args.photos, args.steps)
    if args.phase in ("export", "all"):
        print(f"wrote {export()}")
