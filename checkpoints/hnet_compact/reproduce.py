"""Reproduce the shipped checkpoint: python checkpoints/hnet_compact/reproduce.py PHOTOS [--phase 1|2|export]

Phase 1: the `compact` preset on pairs synthesized at half scale (160x120 images, 64 px
patches, rho 16) from the training part of PHOTOS, validated on its validation part
(the same as `python -m hnet_keras train --preset compact --images PHOTOS --checkpoints runs`).
Phase 2: 4,000 more iterations (the schedule goes on at lr 1e-4) on pairs synthesized at
the training protocol (320x240, 128 px, rho 32) and resized to 64 px, which is what the
network sees at inference on 128 px pairs. Export: the model after the last iteration (28,000),
which is what ships (`export-checkpoint --which last`), as
checkpoints/hnet_compact/hnet_compact.weights.h5 and its description.
"""

import argparse
import sys
from pathlib import Path

import hnet_keras
from hnet_keras.nets.checkpoint import export_checkpoint
from hnet_keras.data.images import list_images, split_images
from hnet_keras.data.loaders import OnTheFlyDataset
from hnet_keras.data.synthesis import TRAIN_PROTOCOL

RUNS, RUN = Path("runs"), "compact"
PHASE_2_ITERATIONS = 28_000


def phase_1(photos):
    return hnet_keras.train("compact", run=RUN, checkpoint_dir=RUNS, images=photos, verbose=0)


def phase_2(photos):
    preset = hnet_keras.get_preset("compact", iterations=PHASE_2_ITERATIONS)
    parts = split_images(list_images(photos))
    data = OnTheFlyDataset(parts["train"], preset.batch_size, preset.steps_per_epoch, TRAIN_PROTOCOL,
                           seed=1, input_size=preset.input_size)
    validation = OnTheFlyDataset(parts["validation"], preset.batch_size, preset.validation_batches,
                                 TRAIN_PROTOCOL, seed=1, fixed=True, input_size=preset.input_size)
    # The targets are offsets / 32 at 128 px, the same numbers as offsets / 16 at 64 px.
    return hnet_keras.train(preset, run=RUN, checkpoint_dir=RUNS, data=data, validation_data=validation,
                            seed=1, verbose=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (../shared/photos for the shipped checkpoint)")
    parser.add_argument("--phase", choices=("1", "2", "export", "all"), default="all")
    args = parser.parse_args()
    if args.phase in ("1", "all"):
        phase_1(args.photos)
    if args.phase in ("2", "all"):
        phase_2(args.photos)
    if args.phase in ("export", "all"):
        print(export_checkpoint(RUNS / RUN, Path(__file__).with_name("hnet_compact.weights.h5"), which="last"))
    sys.exit(0)
