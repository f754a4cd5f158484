"""Notebook 12's pipeline as the longer CPU run, stage by stage (each resumable; run them in order):

    python experiments/12_superpoint.py magicpoint                        # slim MagicPoint on synthetic shapes
    python experiments/12_superpoint.py adapt --photos ../shared/photos   # pseudo labels on 250 training photos
    python experiments/12_superpoint.py superpoint --photos ../shared/photos  # SuperPoint on warped labelled pairs
    python experiments/12_superpoint.py pairs --photos ../shared/photos   # HPatches-layout sequences of test photos
    python experiments/12_superpoint.py evaluate                          # keypoints and homographies, JSON

Runs live under --runs (default runs/superpoint); results go to experiments/results/12_superpoint_*.json.
The same stages are commands too: train-superpoint, homographic-adaptation, evaluate-keypoints,
evaluate-pairs --methods orb_ransac sift_ransac superpoint.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hnet_keras.data.augment import Augmentation
from hnet_keras.data.images import read_grayscale
from hnet_keras.estimators.methods import get_method
from hnet_keras.estimators.superpoint_method import SuperPointMethod
from hnet_keras.features.adaptation import adapt_photos, adapted_probability, select_photos
from hnet_keras.features.keypoint_eval import downsize_pair, evaluate_keypoints, network_detector
from hnet_keras.features.superpoint import load_superpoint, nms, prepare_photo, save_superpoint, train_on_labels, \
    train_superpoint
from hnet_keras.fileio import atomic_write_json
from hnet_keras.scoring.real_pairs import evaluate_real_pairs, load_real_pairs, write_hpatches_sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
PAIR_CHANGES = Augmentation(probability=0.7, brightness=30.0, contrast=1.4, gamma=1.3, noise=5.0, blur=1.0)


def magicpoint(args):
    overrides = {"iterations": args.iterations} if args.iterations else {}
    result = train_superpoint("magicpoint_cpu", run="magicpoint_cpu", checkpoint_dir=args.runs, seed=args.seed,
                              verbose=2, **overrides)
    print(result.history[-1])


def adapt(args):
    paths = select_photos(args.photos, args.limit, "train", args.seed)
    model = load_superpoint(Path(args.runs) / "magicpoint_cpu")
    start = time.time()
    _, _, facts = adapt_photos(model, paths, Path(args.runs) / "labels_round1.npz", (160, 120), args.homographies,
                               args.seed, threshold=args.threshold, top_k=150)
    print(json.dumps({key: facts[key] for key in ("photos", "mean_points")}), f"{time.time() - start:.0f} s")


def superpoint(args):
    overrides = {"iterations": args.iterations} if args.iterations else {}
    result = train_on_labels("superpoint_cpu", Path(args.runs) / "labels_round1.npz", run="superpoint_cpu",
                             checkpoint_dir=args.runs, seed=args.seed, verbose=2, **overrides,
                             initial_weights=Path(args.runs) / "magicpoint_cpu" / "best.keras")
    print(result.history[-1])


def pairs(args):
    """HPatches-layout sequences (reference + 5 warped views with photometric changes) of test-split photos."""
    folder = Path(args.runs) / "pairs"
    for k, path in enumerate(select_photos(args.photos, args.sequences, "test", args.seed)):
        image, _ = read_grayscale(path, warn=False)
        if image is not None:
            write_hpatches_sequence(folder / f"seq{k:03d}", prepare_photo(image, (320, 240)), count=6,
                                    max_shift=0.15, seed=k, augmentation=PAIR_CHANGES)
    print(f"wrote {len(list(folder.iterdir()))} sequences to {folder}")


def evaluate(args):
    """Keypoint scores of every detector (those already in the results file are kept: the stage can run
    before SuperPoint has finished and again after), then the homography scores of SIFT, ORB and SuperPoint."""
    runs = Path(args.runs)
    magic = load_superpoint(runs / "magicpoint_cpu")
    real = load_real_pairs(runs / "pairs")
    triples = [downsize_pair(*pair.images(), pair.homography, 320) for pair in real]

    def adapted(image, top_k=None):
        return nms(adapted_probability(magic, image, homographies=32, seed=0)[0], 4, 1e-3, top_k)

    path = RESULTS / "12_superpoint_keypoints.json"
    keypoints = json.loads(path.read_text()) if path.is_file() else {"detection": {}, "repeatability": {}, "seconds": {}}
    networks = {"magicpoint": network_detector(magic), "magicpoint+HA": adapted}
    sp_path = Path(args.checkpoint) if args.checkpoint else runs / "superpoint_cpu"
    if sp_path.exists():
        sp = load_superpoint(sp_path)
        networks["superpoint"] = network_detector(sp)
    classical = [name for name in ("harris", "shi_tomasi", "fast", "sift") if name not in keypoints["detection"]]
    for name, detector in networks.items():
        if name in keypoints["detection"] and not (name == "superpoint" and args.redo_superpoint):
            continue
        start = time.time()
        report = evaluate_keypoints({name: detector}, classical, shapes=args.shapes, pairs=triples)
        classical = []
        for key in ("detection", "repeatability"):
            keypoints[key].update(report[key])
        keypoints["seconds"][name] = round(time.time() - start)
        keypoints.update({k: report[k] for k in report if k not in ("detection", "repeatability")})
        atomic_write_json(path, keypoints)
    print(json.dumps(keypoints, indent=1))
    if "superpoint" in networks:
        methods = [get_method("orb_ransac"), get_method("sift_ransac"), SuperPointMethod(sp)]
        result = evaluate_real_pairs(real, methods=methods, progress=False)
        print(result.table())
        result.write_json(RESULTS / "12_superpoint_pairs.json")


def card(args):
    """Export both runs' best networks to checkpoints/superpoint/ with their facts, and draw the learning curves."""
    import matplotlib.pyplot as plt

    from hnet_keras.plots import save_figure

    runs, out = Path(args.runs), ROOT / "checkpoints" / "superpoint"
    out.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, (name, file) in zip(axes, (("magicpoint_cpu", "magicpoint"), ("superpoint_cpu", "superpoint"))):
        folder = runs / name
        history = json.loads((folder / "history.json").read_text())
        state = json.loads((folder / "state.json").read_text())
        best = min(history, key=lambda row: row["val_loss"])
        facts = {"preset": name, "epoch": best["epoch"], "iterations": best["iterations"],
                 "images_seen": best["iterations"] * state["preset"]["batch_size"] * (2 if "super" in name else 1),
                 "val_loss": round(best["val_loss"], 4), "seed": state.get("seed")}
        save_superpoint(load_superpoint(folder / "best.keras"), out / f"{file}.weights.h5", {"training": facts})
        seen = [row["iterations"] * state["preset"]["batch_size"] for row in history]
        ax.plot(seen, [row["loss"] for row in history], label="training loss")
        ax.plot(seen, [row["val_loss"] for row in history], label="validation loss")
        ax.set_xlabel("images" if "magic" in name else "pairs")
        ax.set_title(f"{file} ({name})")
        ax.legend()
        print(file, facts)
    figure.tight_layout()
    save_figure(figure, out / "learning_curve.png")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["magicpoint", "adapt", "superpoint", "pairs", "evaluate", "card"])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "superpoint"))
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"))
    parser.add_argument("--limit", type=int, default=250, help="photos labelled by homographic adaptation")
    parser.add_argument("--homographies", type=int, default=48, help="warped views per photo")
    parser.add_argument("--threshold", type=float, default=0.004, help="adapted probability of a pseudo label")
    parser.add_argument("--sequences", type=int, default=30, help="test photos made into HPatches-layout sequences")
    parser.add_argument("--shapes", type=int, default=500, help="held-out synthetic shapes")
    parser.add_argument("--checkpoint", default=None, help="the SuperPoint to evaluate (default: the run's)")
    parser.add_argument("--iterations", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--redo-superpoint", action="store_true", help="score SuperPoint's detector again")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    {"magicpoint": magicpoint, "adapt": adapt, "superpoint": superpoint, "pairs": pairs, "evaluate": evaluate,
     "card": card}[args.stage](args)


if __name__ == "__main__":
    main(sys.argv[1:])
