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
It is the ``iterative`` preset, trained by :func:`hnet_keras.train` (the toolkit's one
training loop): checkpoints every 250 steps in runs/hnet_iterative/; a killed run resumes
where it stopped (run the same command again), drawing the same pairs.

Export: the last model as checkpoints/hnet_iterative/hnet_iterative.weights.h5 with
the description beside it (architecture, rho, training facts), by ``export_checkpoint``.

Evaluate: the model card's tables, written beside it: every method on 1,000 pairs of
the test part of PHOTOS (evaluation_photos_test.json/.csv) and on 300 pairs of the
embedded test photos (evaluation_embedded.json), and the robustness sweep on 300 test
pairs (robustness_photos_test.json).
"""

import argparse
from pathlib import Path

import hnet_keras
from hnet_keras.nets.checkpoint import export_checkpoint

RUNS, RUN = Path("runs"), "hnet_iterative"
OUT = Path(__file__).with_name("hnet_iterative.weights.h5")


def train(photos, steps=None):
    """The ``iterative`` preset (this recipe) through the toolkit's one training loop,
    :func:`hnet_keras.train`: resumable, checkpointed every 250 steps in runs/hnet_iterative/.

    The shipped file was trained by an earlier loop of this script (Keras' BackupAndRestore),
    with the same recipe and its own draws of pairs: a run of this one reaches the same
    error, not the same bits."""
    overrides = {} if steps is None else {"iterations": steps}
    return hnet_keras.train("iterative", run=RUN, checkpoint_dir=RUNS, images=photos, seed=0, verbose=0, **overrides)


def export():
    """The last model of the run, described (architecture, rho, training facts), as the shipped checkpoint."""
    return export_checkpoint(RUNS / RUN, OUT, which="last")


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
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps of the whole run (default: the preset's 10,000)")
    args = parser.parse_args()
    if args.phase in ("train", "all"):
        train(args.photos, args.steps)
    if args.phase in ("export", "all"):
        print(f"wrote {export()}")
    if args.phase in ("evaluate", "all"):
        evaluate(args.photos)
