"""Dense descriptors against DAISY and SIFT, and the descriptor space against a single scale.

    python experiments/13_descriptors.py --photos ../shared/photos [--checkpoint checkpoints/dense_descriptors]
        [--sequences 6] [--points 1000] [--out experiments/results/13_descriptors.json] [--baselines-from JSON]

Test-split photos only (``split_images``: never trained on), each scaled to 640x480, make three
sets written in the HPatches layout under ``--folder`` (so ``evaluate-descriptors FOLDER/<set>``
scores them again):

* ``viewpoint``: ``v_<photo>`` sequences of 6 images, corners moved by up to 15 % of the size
  (:func:`hnet_keras.scoring.real_pairs.write_hpatches_sequence`), each image changed
  photometrically as in the whole-image benchmark (every change applied, blur up to 1 px);
* ``illumination``: ``i_<photo>`` sequences, the same photometric changes without motion;
* ``zoom``: ``z_<photo>`` sequences, images 2..4 zoomed by 1.5, 2 and 2.5 about a point of the
  middle half, rotated up to 10 degrees (:func:`hnet_keras.features.descriptor_space.zoom_pairs`).

Methods: DAISY, SIFT, the learned network (``--checkpoint``), its descriptor space (scales 1,
0.71, 0.5), the same network untrained (same architecture, seed 0), and with ``--superpoint``
SuperPoint's descriptor head (the shipped checkpoints/superpoint). Protocols and numbers:
:mod:`hnet_keras.features.pck`. The last line of stdout is the JSON written to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from hnet_keras.data.augment import DEFAULT_AUGMENTATION  # noqa: E402
from hnet_keras.data.images import list_images, read_grayscale, split_images  # noqa: E402
from hnet_keras.features import pck  # noqa: E402
from hnet_keras.features.descriptor_space import DescriptorSpace, scale_pairs_used, zoom_pairs  # noqa: E402
from hnet_keras.features.descriptors import build_descriptor_net, load_descriptor_net, net_options  # noqa: E402
from hnet_keras.features.superpoint import load_superpoint  # noqa: E402
from hnet_keras.fileio import atomic_write_json  # noqa: E402
from hnet_keras.scoring.real_pairs import load_real_pairs, write_hpatches_sequence  # noqa: E402

SIZE = (640, 480)
ZOOMS = (1.5, 2.0, 2.5)
AUGMENTATION = dataclasses.replace(DEFAULT_AUGMENTATION, probability=1.0, blur=1.0)


def write_zoom_sequence(folder, image, seed):
    """``1.png`` and its zooms ``2..4.png`` with ``H_1_k`` (HPatches layout, lossless grayscale)."""
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "1.png"), image)
    for k, pair in enumerate(zoom_pairs([image], zooms=ZOOMS, seed=seed), start=2):
        cv2.imwrite(str(folder / f"{k}.png"), pair.image_b)
        np.savetxt(folder / f"H_1_{k}", pair.homography)


def write_sets(photos, folder, count, seed):
    """The three sets of sequences under ``folder`` (see the module doc); returns the set folders."""
    rng = np.random.default_rng(seed)
    chosen = [photos[i] for i in sorted(rng.choice(len(photos), min(count, len(photos)), replace=False))]
    sets = {name: folder / name for name in ("viewpoint", "illumination", "zoom")}
    for index, path in enumerate(chosen):
        gray, _ = read_grayscale(path, warn=False)
        image = cv2.resize(gray, SIZE, interpolation=cv2.INTER_AREA if gray.shape[1] > SIZE[0] else cv2.INTER_LINEAR)
        stem = path.stem[:40]
        write_hpatches_sequence(sets["viewpoint"] / f"v_{stem}", image, count=6, max_shift=0.15,
                                seed=seed + index, augmentation=AUGMENTATION)
        write_hpatches_sequence(sets["illumination"] / f"i_{stem}", image, count=6, max_shift=0.0,
                                seed=seed + 100 + index, augmentation=AUGMENTATION)
        write_zoom_sequence(sets["zoom"] / f"z_{stem}", image, seed + 200 + index)
    return sets


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", required=True, help="folder of photos (its test part is used)")
    parser.add_argument("--checkpoint", default=None, help="descriptor network (default: the shipped one)")
    parser.add_argument("--folder", default="/tmp/hnet_keras_descriptor_sets", help="where the sequences are written")
    parser.add_argument("--sequences", type=int, default=6, help="photos, one sequence of each set per photo")
    parser.add_argument("--points", type=int, default=1000, help="points per pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="experiments/results/13_descriptors.json")
    parser.add_argument("--baselines-from", default=None,
                        help="a result of this script with the same sets: DAISY, SIFT and the untrained network's rows "
                        "are copied from it instead of run again (they do not depend on --checkpoint)")
    parser.add_argument("--superpoint", action="store_true", help="also score SuperPoint's descriptors")
    args = parser.parse_args()
    photos = split_images(list_images(args.photos))["test"]
    sets = write_sets(photos, Path(args.folder), args.sequences, args.seed)
    keras.utils.set_random_seed(0)
    learned = pck.LearnedDescriptors(load_descriptor_net(args.checkpoint))
    untrained = pck.LearnedDescriptors(build_descriptor_net(**net_options(learned.net)),
                                       name="untrained")
    space = DescriptorSpace(learned, name="learned_space")
    methods = [pck.DaisyDescriptors(), pck.SiftDescriptors(), learned, space, untrained]
    report = {"photos": str(args.photos), "sequences": args.sequences, "points": args.points, "seed": args.seed,
              "checkpoint": str(args.checkpoint or "shipped"), "sets": {}}
    earlier = None
    if args.baselines_from:
        earlier = json.loads(Path(args.baselines_from).read_text())
        if [earlier.get(k) for k in ("photos", "sequences", "points", "seed")] != [report[k] for k in (
                "photos", "sequences", "points", "seed")]:
            raise ValueError(f"{args.baselines_from}: made from other photos, sequences, points or seed")
        methods = [learned, space]
    if args.superpoint:
        methods.append(pck.SuperPointDescriptors(load_superpoint()))
    for name, folder in sets.items():
        start = time.perf_counter()
        pairs = [pck.DescriptorPair(p.name, *p.images(), p.homography, pck.sequence_kind(p.name))
                 for p in load_real_pairs(folder)]
        results = pck.evaluate_pck(pairs, methods, points=args.points, seed=args.seed)
        table = {method: splits["all"] for method, splits in pck.pck_table(results).items()}
        if earlier is not None:
            copied = earlier["sets"][name]["table"]
            table = {**{m: copied[m] for m in ("daisy", "sift")}, **table, "untrained": copied["untrained"]}
        report["sets"][name] = {"pairs": len(pairs), "table": table, "seconds": round(time.perf_counter() - start, 1),
                                "space_scale_pairs": scale_pairs_used(results["learned_space"], space.scales)}
        for method, entry in table.items():
            cells = "  ".join(f"{p} " + "/".join(f"{entry[p][t]:.3f}" for t in ("1", "3", "5"))
                              for p in pck.PROTOCOLS if p in entry)
            print(f"{name:12s} {method:14s} {cells}", file=sys.stderr)
    atomic_write_json(args.out, report)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
