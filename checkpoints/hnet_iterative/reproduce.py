"""Reproduce the shipped iterative checkpoint: python checkpoints/hnet_iterative/reproduce.py PHOTOS

Trains ``build_model("iterative")`` (64 px input, stride-4 features, 9x9 correlation,
6 tied iterations) on pairs synthesized on the fly at the training protocol
(320x240 images, 128 px patches, rho 32) from the training part of PHOTOS, each patch
photometrically augmented on its own (:mod:`hnet_keras.augment`), then resized to 64 px
(what the network sees at inference). AdamW 8e-4 with a warm-up and cosine decay,
gradient clipping at 1, batch 32, the sequence L1 loss (gamma 0.85). Validation: fixed
pairs of the validation part. A killed run resumes where it stopped (run it again).
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

from hnet_keras.augment import DEFAULT_AUGMENTATION, augment_pairs
from hnet_keras.images import list_images, split_images
from hnet_keras.iterative import build_iterative, final_mace, sequence_l1
from hnet_keras.loaders import load_prepared_images, normalize_images, normalize_offsets, resize_pairs
from hnet_keras.synthesis import TRAIN_PROTOCOL, sample_pair

RUN = Path("runs/hnet_iterative")
INPUT_SIZE, RHO = 64, 16  # model scale: 128 px pairs at half size
BATCH, STEPS, STEPS_PER_EPOCH, WARMUP = 32, 10_000, 250, 500
LEARNING_RATE, SEED, VALIDATION_PAIRS = 8e-4, 0, 512


class Pairs(keras.utils.PyDataset):
    """Batch ``i`` of epoch ``e`` drawn from ``(seed, e, i)``: augmented pairs, resized, normalized."""

    def __init__(self, prepared, batches, seed, augment=True, fixed=False):
        super().__init__()
        self.prepared, self.batches, self.seed, self.augment, self.fixed = prepared, batches, seed, augment, fixed
        self.epoch = 0

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index])
        size = TRAIN_PROTOCOL.patch_size
        pairs = np.empty((BATCH, size, size, 2), np.uint8)
        offsets = np.empty((BATCH, 8), np.int64)
        for i, choice in enumerate(rng.integers(0, len(self.prepared), BATCH)):
            pair = sample_pair(self.prepared[choice], rng, TRAIN_PROTOCOL)
            pairs[i], offsets[i] = pair.stacked, pair.offsets
        if self.augment:
            pairs = augment_pairs(pairs, rng, DEFAULT_AUGMENTATION)
        return normalize_images(resize_pairs(pairs, INPUT_SIZE)), normalize_offsets(offsets, TRAIN_PROTOCOL.rho)


class EpochSync(keras.callbacks.Callback):
    """Keeps the data's epoch equal to Keras's, also after a resume."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        self.data.epoch = epoch


class Clock(keras.callbacks.Callback):
    """Adds wall-clock seconds of training (summed over resumed sessions) and pairs seen to the logs."""

    def __init__(self, folder):
        super().__init__()
        self.path = folder / "clock.json"
        self.spent = json.loads(self.path.read_text())["seconds"] if self.path.is_file() else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.spent += time.time() - self.began
        logs["seconds"] = self.spent
        logs["pairs"] = (epoch + 1) * STEPS_PER_EPOCH * BATCH
        # pixels of the 128 px patch: the metric is in pixels of the 64 px input
        for key in ("mace", "val_mace"):
            if key in logs:
                logs[key + "_128"] = 2 * logs[key]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seconds": self.spent}))
        tmp.replace(self.path)
        print(json.dumps({"epoch": epoch + 1, **{k: round(float(v), 4) for k, v in logs.items()}}), flush=True)


def main(photos, steps=STEPS):
    RUN.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    parts = split_images(list_images(photos))
    train_images, _ = load_prepared_images(parts["train"], TRAIN_PROTOCOL)
    validation_images, _ = load_prepared_images(parts["validation"], TRAIN_PROTOCOL)
    data = Pairs(train_images, STEPS_PER_EPOCH, SEED)
    validation = Pairs(validation_images, VALIDATION_PAIRS // BATCH, SEED + 1, augment=False, fixed=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - WARMUP, alpha=0.01, warmup_target=LEARNING_RATE, warmup_steps=WARMUP)
    model = build_iterative(input_size=INPUT_SIZE, rho=RHO)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=1.0),
                  loss=sequence_l1, metrics=[final_mace(RHO)])
    callbacks = [
        EpochSync(data),
        keras.callbacks.BackupAndRestore(str(RUN / "backup"), delete_checkpoint=False),
        Clock(RUN),
        keras.callbacks.CSVLogger(str(RUN / "history.csv"), append=True),
        keras.callbacks.ModelCheckpoint(str(RUN / "last.weights.h5"), save_weights_only=True),
        keras.callbacks.ModelCheckpoint(str(RUN / "best.weights.h5"), save_weights_only=True,
                                        monitor="val_mace", mode="min", save_best_only=True),
    ]
    model.fit(data, epochs=steps // STEPS_PER_EPOCH, validation_data=validation, callbacks=callbacks, verbose=0)
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (../shared/photos for the shipped checkpoint)")
    parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps of the whole run")
    args = parser.parse_args()
    main(args.photos, args.steps)
