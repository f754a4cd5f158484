"""Reproduce the shipped iterative checkpoint:

    python checkpoints/hnet_iterative/reproduce.py PHOTOS [--phase train|export|all]

Train: ``build_model("iterative")`` (64 px input, stride-4 features, 9x9 correlation,
6 tied steps) on pairs synthesized on the fly at the training protocol (320x240
images, 128 px patches, rho 32) from the training part of PHOTOS
(:func:`hnet_keras.data.images.split_images`), each patch changed photometrically on its own
(:data:`hnet_keras.data.augment.DEFAULT_AUGMENTATION`), then resized to 64 px, which is what
the network sees at inference. AdamW, 500 warm-up steps to 8e-4 then cosine decay,
weight decay 1e-4, gradient clipping at 1, batch 32, 10,000 steps, the sequence L1
loss (gamma 0.85). Validation: 512 fixed pairs of the validation part, no augmentation.
Checkpoints every 250 steps in runs/hnet_iterative/; a killed run resumes where it
stopped (run the same command again), drawing the same pairs.

Export: the last weights as checkpoints/hnet_iterative/hnet_iterative.weights.h5 with
the description beside it (architecture, rho, training facts).

Evaluate: the model card's tables, written beside it: every method on 1,000 pairs of
the test part of PHOTOS (evaluation_photos_test.json/.csv) and on 300 pairs of the
embedded test photos (evaluation_embedded.json), and the robustness sweep on 300 test
pairs (robustness_photos_test.json).
"""

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import keras

from hnet_keras.data.augment import DEFAULT_AUGMENTATION
from hnet_keras.nets.checkpoint import describe_model, save_model
from hnet_keras.data.images import list_images, split_images
from hnet_keras.data.loaders import OnTheFlyDataset
from hnet_keras.nets.losses import MACE, sequence_l1
from hnet_keras.nets.models import build_model
from hnet_keras.data.synthesis import TRAIN_PROTOCOL, load_prepared_images

RUN = Path("runs/hnet_iterative")
OUT = Path(__file__).with_name("hnet_iterative.weights.h5")
OPTIONS = {"input_size": 64, "rho": 16, "iterations": 6}  # rho at the model's scale: 32 px at 128
BATCH, STEPS, STEPS_PER_EPOCH, WARMUP = 32, 10_000, 250, 500
LEARNING_RATE, SEED, VALIDATION_PAIRS = 8e-4, 0, 512


class EpochSync(keras.callbacks.Callback):
    """Keeps the data's epoch equal to Keras's, also after a resume."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        self.data.set_epoch(epoch)


class Clock(keras.callbacks.Callback):
    """Adds the training seconds (summed over resumed sessions) and pairs seen to the logs."""

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
        for key in ("mace", "val_mace"):  # the metric is in pixels of the 64 px input
            if key in logs:
                logs[key + "_128"] = 2 * logs[key]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"seconds": self.spent}))
        temporary.replace(self.path)
        print(json.dumps({"epoch": epoch + 1, **{k: round(float(v), 4) for k, v in logs.items()}}), flush=True)


def train(photos, steps=STEPS):
    RUN.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    parts = split_images(list_images(photos))
    train_images, _ = load_prepared_images(parts["train"], TRAIN_PROTOCOL)
    validation_images, _ = load_prepared_images(parts["validation"], TRAIN_PROTOCOL)
    data = OnTheFlyDataset(batch_size=BATCH, batches_per_epoch=STEPS_PER_EPOCH, config=TRAIN_PROTOCOL, seed=SEED,
                           prepared=train_images, input_size=OPTIONS["input_size"],
                           augmentation=DEFAULT_AUGMENTATION)
    validation = OnTheFlyDataset(batch_size=BATCH, batches_per_epoch=VALIDATION_PAIRS // BATCH, config=TRAIN_PROTOCOL,
                                 seed=SEED + 1, fixed=True, prepared=validation_images,
                                 input_size=OPTIONS["input_size"])
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - WARMUP, alpha=0.01, warmup_target=LEARNING_RATE, warmup_steps=WARMUP)
    model = build_model("iterative", **OPTIONS)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=1.0),
                  loss=sequence_l1, metrics=[MACE(OPTIONS["rho"])])
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


def export():
    """The last weights of the run, described, as the shipped checkpoint."""
    model = build_model("iterative", **OPTIONS)
    model.load_weights(RUN / "last.weights.h5")
    with open(RUN / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    last = history[-1]
    facts = {
        "recipe": "checkpoints/hnet_iterative/reproduce.py",
        "steps": (int(last["epoch"]) + 1) * STEPS_PER_EPOCH,  # CSVLogger counts epochs from 0
        "batch_size": BATCH,
        "pairs_seen": int(float(last["pairs"])),
        "seconds": round(float(last["seconds"])),
        "hardware": "2 CPU cores (no GPU)",
        "val_mace_128": round(float(last["val_mace_128"]), 3),
        "augmentation": dataclasses.asdict(DEFAULT_AUGMENTATION),
        "seed": SEED,
    }
    description = describe_model("iterative", OPTIONS, OPTIONS["rho"])
    description["training"] = facts
    return save_model(model, OUT, description)


def evaluate(photos):
    """The card's held-out tables, from the exported checkpoint."""
    from hnet_keras.nets.checkpoint import load_checkpoint
    from hnet_keras.scoring.evaluation import evaluate as run, load_test_set
    from hnet_keras.fileio import atomic_write_json
    from hnet_keras.scoring.robustness import format_robustness, robustness_sweep

    model, rho = load_checkpoint(OUT)
    folder = OUT.parent
    test = load_test_set(images=photos, split="test", count=1000, seed=0)
    # every baseline this OpenCV has, the network and network+ecc (evaluate's default)
    result = run(test, model=model, network_rho=rho, progress=False)
    print(result.table())
    result.write_json(folder / "evaluation_photos_test.json")
    result.write_csv(folder / "evaluation_photos_test.csv")
    embedded = run(load_test_set(count=300, seed=0), model=model, network_rho=rho, progress=False)
    print(embedded.table())
    embedded.write_json(folder / "evaluation_embedded.json")
    levels = {"noise": (0, 10), "brightness": (-40, 0, 40), "gamma": (0.7, 1.0, 1.4), "blur": (0, 1, 2)}
    report = robustness_sweep(test.pairs[:300], test.offsets[:300], ["identity", "sift_ransac", "network",
                              "network+ecc"], levels, seed=0, model=model, network_rho=rho, progress=False)
    print(format_robustness(report))
    atomic_write_json(folder / "robustness_photos_test.json", report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (../shared/photos for the shipped checkpoint)")
    parser.add_argument("--phase", choices=("train", "export", "evaluate", "all"), default="all")
    parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps of the whole run")
    args = parser.parse_args()
    if args.phase in ("train", "all"):
        train(args.photos, args.steps)
    if args.phase in ("export", "all"):
        print(f"wrote {export()}")
    if args.phase in ("evaluate", "all"):
        evaluate(args.photos)
