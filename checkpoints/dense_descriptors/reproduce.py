"""Reproduce the shipped dense-descriptor checkpoint:

    python checkpoints/dense_descriptors/reproduce.py PHOTOS [--phase train|export|evaluate|all] [--runs DIR]

Train: the ``descriptors_cpu`` preset of :mod:`hnet_keras.features.descriptors` (a stride-8 CNN,
64-d unit descriptors; 128 px views of the training part of PHOTOS, B warped by SuperPoint's
homography sampler, each view changed photometrically on its own; InfoNCE over 256
correspondences per pair with hard-negative partners; Adam 1e-3, a tenth of it for the last
20 %; batch 8, 2,400 steps), checkpointed every 200 steps in ``DIR/descriptors_cpu`` and
resumable (run the same command again). Validation: 8 fixed batches of the validation part.

Export: the best epoch's network (lowest validation loss) as ``dense_descriptors.keras`` with its
description (``.json`` beside it), the run's history and learning-curve plot.

Evaluate: ``experiments/13_descriptors.py`` on sequences made from the test part of PHOTOS
(viewpoint, illumination, zoom), written to ``experiments/results/13_descriptors.json``.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from hnet_keras.features.descriptors import load_descriptor_net, save_descriptor_net, train_descriptors  # noqa: E402
from hnet_keras.plots import plot_training_curves, save_figure  # noqa: E402

OUT = HERE / "dense_descriptors.keras"


def train(photos, runs):
    """The ``descriptors_cpu`` preset, resumable, on the training part of ``photos``."""
    return train_descriptors("descriptors_cpu", checkpoint_dir=runs, images=photos, seed=0, verbose=2)


def export(runs):
    """The best network of the run, described, with the run's history and learning curve."""
    run = Path(runs) / "descriptors_cpu"
    state = json.loads((run / "state.json").read_text())
    history = json.loads((run / "history.json").read_text())
    best = next(row for row in history if row["epoch"] == state["best_epoch"])
    facts = {"training": {"preset": state["preset"], "seed": state.get("seed"), "epoch": best["epoch"],
                          "iterations": best["iterations"], "val_loss": best["val_loss"],
                          "run_iterations": state["iterations"]}}
    save_descriptor_net(load_descriptor_net(run / "best.keras"), OUT, facts)
    shutil.copyfile(run / "history.csv", HERE / "history.csv")
    save_figure(plot_training_curves(run), HERE / "learning_curve.png")
    return OUT


def evaluate(photos):
    """The card's PCK table (experiments/13_descriptors.py with the exported checkpoint)."""
    subprocess.run([sys.executable, str(ROOT / "experiments" / "13_descriptors.py"), "--photos", str(photos),
                    "--checkpoint", str(OUT), "--out", str(ROOT / "experiments" / "results" / "13_descriptors.json")],
                   check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (split by file name; the test part is only scored)")
    parser.add_argument("--phase", default="all", choices=("train", "export", "evaluate", "all"))
    parser.add_argument("--runs", default="runs/descriptors", help="folder of the run folders")
    args = parser.parse_args()
    if args.phase in ("train", "all"):
        train(args.photos, args.runs)
    if args.phase in ("export", "all"):
        print(export(args.runs))
    if args.phase in ("evaluate", "all"):
        evaluate(args.photos)


if __name__ == "__main__":
    main()
