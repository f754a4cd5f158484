"""Notebook 12's pipeline as the longer CPU run, stage by stage (each resumable; run them in order):

    python experiments/12_superpoint.py magicpoint                        # slim MagicPoint on synthetic shapes
    python experiments/12_superpoint.py adapt --photos ../shared/photos   # pseudo labels on 250 training photos
    python experiments/12_superpoint.py superpoint --photos ../shared/photos  # SuperPoint on warped labelled pairs
    python experiments/12_superpoint.py pairs --photos ../shared/photos   # HPatches-layout sequences of test photos
    python experiments/12_superpoint.py evaluate                          # keypoints and homographies, JSON
    python experiments/12_superpoint.py subpixel                          # sub-pixel windows on validation shapes

Runs live under --runs (default runs/superpoint); results go to experiments/results/12_superpoint_*.json.
evaluate and subpixel score the run's best networks, or the shipped ones (checkpoints/superpoint/) when
the run folders are not there (the shipped files are those best epochs, exported by ``card``).
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
from hnet_keras.features.keypoint_eval import CLASSICAL_DETECTORS, detection_scores, downsize_pair, \
    evaluate_keypoints, held_out_shapes, network_detector, with_corner_subpix
from hnet_keras.features.superpoint import SUBPIXEL_WINDOW, load_superpoint, nms, prepare_photo, probability_maps, \
    refine_subpixel, save_superpoint, train_on_labels, train_superpoint
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


SHIPPED = ROOT / "checkpoints" / "superpoint"


def _network(args, run, shipped, given=None):
    """The network to score: ``given``, else the run's best, else the shipped checkpoint (None if none)."""
    for path in ([Path(given)] if given else [Path(args.runs) / run, SHIPPED / shipped]):
        if path.exists():
            print(f"{run}: {path}")
            return load_superpoint(path)
    return None


def evaluate(args):
    """Keypoint scores of every detector (those already in the results file are kept: the stage can run
    before SuperPoint has finished and again after; --redo names those to score again), then the
    homography scores of SIFT, ORB and SuperPoint.

    MagicPoint and SuperPoint detect sub-pixel points (``SUBPIXEL_WINDOW``); ``*_pixel`` rows are the
    same networks with NMS's whole pixels, ``*_subpix`` / ``+cornerSubPix`` rows add OpenCV's
    ``cornerSubPix`` on the image."""
    runs = Path(args.runs)
    magic = _network(args, "magicpoint_cpu", "magicpoint.weights.h5")
    real = load_real_pairs(runs / "pairs")
    triples = [downsize_pair(*pair.images(), pair.homography, 320) for pair in real]

    def adapted(image, top_k=None):
        probability = adapted_probability(magic, image, homographies=32, seed=0)[0]
        points, scores = nms(probability, 4, 1e-3, top_k)
        return refine_subpixel(probability, points, SUBPIXEL_WINDOW), scores

    path = RESULTS / "12_superpoint_keypoints.json"
    keypoints = json.loads(path.read_text()) if path.is_file() else {"detection": {}, "repeatability": {}, "seconds": {}}
    networks = {"magicpoint": network_detector(magic), "magicpoint_pixel": network_detector(magic, subpixel=0),
                "magicpoint+cornerSubPix": with_corner_subpix(network_detector(magic, subpixel=0)),
                "magicpoint+HA": adapted}
    sp = _network(args, "superpoint_cpu", "superpoint.weights.h5", args.checkpoint)
    if sp is not None:
        networks["superpoint"] = network_detector(sp)
        networks["superpoint_pixel"] = network_detector(sp, subpixel=0)
    redo = set(args.redo or ()) | ({"superpoint"} if args.redo_superpoint else set())
    classical = [name for name in ("harris", "shi_tomasi", "harris_subpix", "shi_tomasi_subpix", "fast", "sift")
                 if name not in keypoints["detection"] or name in redo]
    for name, detector in networks.items():
        if name in keypoints["detection"] and name not in redo:
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
    if "superpoint" in networks and not args.skip_pairs:
        methods = [get_method("orb_ransac"), get_method("sift_ransac"), SuperPointMethod(sp)]
        result = evaluate_real_pairs(real, methods=methods, progress=False)
        print(result.table())
        result.write_json(RESULTS / "12_superpoint_pairs.json")


def subpixel(args):
    """The sub-pixel windows measured on validation shapes (seed 20,000, not the test seed 10,000):
    MagicPoint's and SuperPoint's soft-argmax window (``SUBPIXEL_WINDOW``) and cornerSubPix's half window
    for Harris and Shi-Tomasi (``CORNER_SUBPIX_HALF_WINDOW``), localisation error at 4 px."""
    images, truths = held_out_shapes(args.shapes, args.validation_seed)
    report = {"shapes": args.shapes, "seed": args.validation_seed, "detection_distance": 4.0, "networks": {},
              "classical": {}}
    for run, shipped in (("magicpoint_cpu", "magicpoint.weights.h5"), ("superpoint_cpu", "superpoint.weights.h5")):
        net = _network(args, run, shipped)
        if net is None:
            continue
        maps = probability_maps(net, images)
        report["networks"][run] = {}
        for window in (1, 3, 5, 7):
            found = iter(maps)

            def detect(image, top_k=None, window=window):
                probability = next(found)
                points, scores = nms(probability, 4, 1e-3, top_k)
                return refine_subpixel(probability, points, window), scores

            report["networks"][run][f"window {window}"] = detection_scores(detect, images, truths).summary()
            print(run, window, report["networks"][run][f"window {window}"], flush=True)
    for name in ("harris", "shi_tomasi"):
        report["classical"][name] = {}
        for half in range(7):
            detector = with_corner_subpix(CLASSICAL_DETECTORS[name], half)
            report["classical"][name][f"half window {half}"] = detection_scores(detector, images, truths).summary()
            print(name, half, report["classical"][name][f"half window {half}"], flush=True)
    atomic_write_json(RESULTS / "12_superpoint_subpixel.json", report)


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
    parser.add_argument("stage", choices=["magicpoint", "adapt", "superpoint", "pairs", "evaluate", "subpixel", "card"])
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
    parser.add_argument("--redo", nargs="*", default=None, help="detectors of the keypoints file to score again")
    parser.add_argument("--skip-pairs", action="store_true", help="evaluate: keypoints only, no homography table")
    parser.add_argument("--validation-seed", type=int, default=20_000, help="subpixel: seed of the shapes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    {"magicpoint": magicpoint, "adapt": adapt, "superpoint": superpoint, "pairs": pairs, "evaluate": evaluate,
     "subpixel": subpixel, "card": card}[args.stage](args)


if __name__ == "__main__":
    main(sys.argv[1:])
