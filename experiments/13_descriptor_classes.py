"""Dense descriptors on the whole-image benchmark's class pairs: DAISY, SIFT, learned, descriptor space.

    python experiments/13_descriptor_classes.py [--photos ../shared/photos] [--pairs 40] [--points 1000]
        [--checkpoint PATH] [--seed 0] [--out experiments/results/13_descriptor_classes.json]
        [--methods daisy sift learned learned_space learned_space_rotations] [--angles -30 0 30]

The project has no folder of photographed pairs; its real-pair test folder is the one the
whole-image benchmark writes (``benchmarks/bench_whole_images.py``, its ``_classes``): photos of
the **test split** of ``--photos`` (never trained on; the embedded scikit-image test photos when
the folder is missing, as the benchmark does without ``--images``), prepared as the benchmark
prepares them (:func:`hnet_keras.scoring.difficulty.class_images`: grayscale, 640x480), and
:func:`hnet_keras.scoring.difficulty.write_class_pairs` with the same seed: pair ``i`` of a
class is test photo ``i`` at level ``i % 4``, so ``--pairs 40`` gives the first 40 of the
benchmark's 100 pairs of each class. Three classes are scored: ``zoom_rotation`` (up to 60
degrees, 0.5-2x), ``viewpoint`` (camera turned up to 50 degrees) and ``illumination`` (gradient,
gamma, brightness, with corners moved by up to 10 %).

Methods: DAISY, SIFT, the learned network (``--checkpoint``, default the shipped
checkpoints/dense_descriptors) and its descriptor space (scales 1, 0.71, 0.5); ``--methods`` picks
among them and a fifth, ``learned_space_rotations``: the space over scales and rotations (each
image also rotated by ``--angles``, default
:data:`~hnet_keras.features.descriptor_space.ROTATION_ANGLES`, -30 / 0 / 30 degrees). Protocols
(:mod:`hnet_keras.features.pck`): ``seed`` (nearest neighbour among the warped points only) and
``dense`` (over B's whole dense map, refined to 1 px), PCK at 1, 3 and 5 px, per class. The pairs
are 640x480, so the protocols' resizing to a long side of 640 leaves them as they are (checked:
``rescaled`` in the JSON is false). Besides the means of :func:`~hnet_keras.features.pck.pck_table`,
each pair's PCK is kept, giving a standard error over pairs and paired differences
(learned - DAISY, learned - SIFT, space - learned, and with rotations: rotation space - learned,
rotation space - space: mean, standard error, pairs won / lost / tied), and per level of the
class (``by_level``: each method's mean PCK and the paired differences over the pairs of a level).

The JSON goes to ``--out`` (atomically); a table goes to stderr; the last line of stdout is
the JSON's summary (everything but the per-pair lists).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from hnet_keras.data.images import embedded_photo_paths, list_images, split_images  # noqa: E402
from hnet_keras.features import pck  # noqa: E402
from hnet_keras.features.descriptor_space import (  # noqa: E402
    ROTATION_ANGLES,
    DescriptorSpace,
    scale_pairs_used,
)
from hnet_keras.features.descriptors import load_descriptor_net  # noqa: E402
from hnet_keras.fileio import atomic_write_json  # noqa: E402
from hnet_keras.scoring.difficulty import CLASS_IMAGE_SIZE, LEVELS, class_images, write_class_pairs  # noqa: E402
from hnet_keras.scoring.real_pairs import load_real_pairs  # noqa: E402

SIZE = CLASS_IMAGE_SIZE
CLASSES = ("zoom_rotation", "viewpoint", "illumination")
PROTOCOLS = ("seed", "dense")
METHODS = ("daisy", "sift", "learned", "learned_space")
"""The default methods."""
ALL_METHODS = (*METHODS, "learned_space_rotations")
COMPARISONS = (("learned", "daisy"), ("learned", "sift"), ("learned_space", "learned"),
               ("learned_space_rotations", "learned"), ("learned_space_rotations", "learned_space"))
"""Paired differences ``a - b`` of per-pair PCK reported per class."""
THRESHOLDS = tuple(str(t) for t in pck.PCK_THRESHOLDS)


def photo_paths(folder):
    """``(paths, source)``: the test split of ``folder``, or the embedded test photos when it is missing."""
    if folder and Path(folder).is_dir():
        return split_images(list_images(folder))["test"], str(folder)
    print(f"{folder}: no such folder; using the embedded test photos", file=sys.stderr)
    return embedded_photo_paths("test"), "embedded test photos"


def class_pairs(folder, images, kind, count, seed=0):
    """The benchmark's ``count`` pairs of class ``kind`` (written under ``folder/kind``) as :class:`DescriptorPair`."""
    write_class_pairs(Path(folder) / kind, images, kind, count, seed=seed, size=SIZE)
    return [pck.DescriptorPair(p.name, *p.images(), p.homography, kind) for p in load_real_pairs(Path(folder) / kind)]


def rescaled(pair):
    """Whether the protocols' resizing to a long side of 640 changes the pair (images or homography)."""
    image_a, image_b, homography = pck.resize_pair(pair)
    truth = pair.homography / pair.homography[2, 2]
    return not (image_a.shape == pair.image_a.shape and image_b.shape == pair.image_b.shape
                and np.array_equal(image_a, pair.image_a) and np.array_equal(image_b, pair.image_b)
                and np.allclose(homography, truth, rtol=0, atol=1e-12))


def per_pair_pck(rows, protocol):
    """``{threshold: [PCK of each pair, None where it had no point]}`` of one method's results."""
    out = {t: [] for t in THRESHOLDS}
    for row in rows:
        errors = row.seed_errors if protocol == "seed" else row.dense_errors
        for t in THRESHOLDS:
            out[t].append(round(float(np.mean(errors <= float(t))), 4) if len(errors) else None)
    return out


def mean_se(values):
    """``{"mean", "se", "n"}`` over the values that are not None (``se`` None below 2 values)."""
    values = np.asarray([v for v in values if v is not None], np.float64)
    if len(values) == 0:
        return {"mean": None, "se": None, "n": 0}
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None
    return {"mean": round(float(values.mean()), 4), "se": None if se is None else round(se, 4), "n": len(values)}


def paired(first, second):
    """Paired difference ``first - second`` over the pairs where both have a value: mean, SE, wins, losses, ties."""
    both = [(a, b) for a, b in zip(first, second) if a is not None and b is not None]
    differences = [a - b for a, b in both]
    out = mean_se(differences)
    out.update(wins=sum(d > 0 for d in differences), losses=sum(d < 0 for d in differences),
               ties=sum(d == 0 for d in differences))
    return out


def by_level(per_pair, differences, count):
    """Per level (pair ``i`` is at level ``i % LEVELS``): each method's mean PCK and the paired differences, mean +- SE."""
    out = {}
    for level in range(LEVELS):
        chosen = [i for i in range(count) if i % LEVELS == level]
        if not chosen:
            continue

        def pick(values, chosen=chosen):
            return [values[i] for i in chosen]

        out[str(level)] = {
            "pairs": len(chosen),
            "mean": {name: {protocol: {t: mean_se(pick(rows[t]))["mean"] for t in THRESHOLDS} for protocol, rows in
                            protocols.items()} for name, protocols in per_pair.items()},
            "paired": {comparison: {protocol: {t: paired(pick(per_pair[comparison.split("-")[0]][protocol][t]),
                                                         pick(per_pair[comparison.split("-")[1]][protocol][t]))
                                               for t in THRESHOLDS} for protocol in PROTOCOLS}
                       for comparison in differences},
        }
    return out


def score_class(pairs, methods, points, seed, scales=None):
    """One class: the means (``pck_table``), per-pair PCK, mean +- SE, the paired differences, by level."""
    start = time.perf_counter()
    spaces = {m.name: m for m in methods if isinstance(m, DescriptorSpace)}
    results = pck.evaluate_pck(pairs, methods, points=points, seed=seed, protocols=PROTOCOLS)
    table = pck.pck_table(results)
    per_pair = {name: {protocol: per_pair_pck(rows, protocol) for protocol in PROTOCOLS}
                for name, rows in results.items()}
    summary = {}
    for name in results:
        entry = table[name]["all"]
        summary[name] = {"seconds_per_pair": entry["seconds_per_pair"]}
        for protocol in PROTOCOLS:
            summary[name][protocol] = {t: {**mean_se(per_pair[name][protocol][t]), "pck_table": entry.get(protocol, {}).get(t)}
                                       for t in THRESHOLDS}
    differences = {f"{a}-{b}": {protocol: {t: paired(per_pair[a][protocol][t], per_pair[b][protocol][t])
                                           for t in THRESHOLDS} for protocol in PROTOCOLS}
                   for a, b in COMPARISONS if a in results and b in results}
    return {
        "pairs": len(pairs),
        "seconds": round(time.perf_counter() - start, 1),
        "rescaled": any(rescaled(pair) for pair in pairs),
        "pair_list": [{"name": pair.name, "level": index % LEVELS, "homography": pair.homography.tolist(),
                       "sha1": hashlib.sha1(np.ascontiguousarray(pair.image_a).tobytes()
                                            + np.ascontiguousarray(pair.image_b).tobytes()).hexdigest()}
                      for index, pair in enumerate(pairs)],
        "table": summary,
        "paired": differences,
        "space_scale_pairs": scale_pairs_used(results["learned_space"], scales or spaces["learned_space"].scales)
        if "learned_space" in results else {},
        "rotation_space_map_pairs": scale_pairs_used(results["learned_space_rotations"], spaces["learned_space_rotations"])
        if "learned_space_rotations" in results else {},
        "by_level": by_level(per_pair, differences, len(pairs)),
        "per_pair": per_pair,
    }


def verdicts(classes):
    """Issue 20's two checks on these pairs, seed protocol PCK@3 (and the dense protocol's, for reference)."""
    out = {"a_learned_over_daisy": {}, "b_space_over_learned_on_zoom_rotation": {}}
    for kind, entry in classes.items():
        if "learned-daisy" not in entry["paired"]:
            continue
        difference = entry["paired"]["learned-daisy"]["seed"]["3"]
        out["a_learned_over_daisy"][kind] = {
            "learned": entry["table"]["learned"]["seed"]["3"]["mean"], "daisy": entry["table"]["daisy"]["seed"]["3"]["mean"],
            "difference": difference["mean"], "se": difference["se"], "met": bool((difference["mean"] or 0) > 0)}
    if "zoom_rotation" in classes and "learned_space-learned" in classes["zoom_rotation"]["paired"]:
        entry = classes["zoom_rotation"]
        for protocol in PROTOCOLS:
            difference = entry["paired"]["learned_space-learned"][protocol]["3"]
            out["b_space_over_learned_on_zoom_rotation"][protocol] = {
                "learned_space": entry["table"]["learned_space"][protocol]["3"]["mean"],
                "learned": entry["table"]["learned"][protocol]["3"]["mean"],
                "difference": difference["mean"], "se": difference["se"], "met": bool((difference["mean"] or 0) > 0)}
    if "zoom_rotation" in classes and "learned_space_rotations-learned" in classes["zoom_rotation"]["paired"]:
        entry = classes["zoom_rotation"]
        out["c_rotation_space_over_learned_on_zoom_rotation"] = {}
        for protocol in PROTOCOLS:
            difference = entry["paired"]["learned_space_rotations-learned"][protocol]["3"]
            out["c_rotation_space_over_learned_on_zoom_rotation"][protocol] = {
                "learned_space_rotations": entry["table"]["learned_space_rotations"][protocol]["3"]["mean"],
                "learned": entry["table"]["learned"][protocol]["3"]["mean"],
                "difference": difference["mean"], "se": difference["se"],
                "met": bool((difference["mean"] or 0) > 0 and difference["se"] is not None
                            and difference["mean"] > 2 * difference["se"])}
    return out


def print_table(classes, stream=sys.stderr):
    """Mean +- SE per class and method, both protocols, 1 / 3 / 5 px."""
    for kind, entry in classes.items():
        print(f"\n{kind} ({entry['pairs']} pairs, {entry['seconds']:.0f} s)", file=stream)
        for name, rows in entry["table"].items():
            cells = "  ".join(f"{protocol} " + " / ".join(
                f"{rows[protocol][t]['mean']:.3f}" + (f"±{rows[protocol][t]['se']:.3f}" if rows[protocol][t]["se"] is not None
                                                      else "") for t in THRESHOLDS) for protocol in PROTOCOLS)
            print(f"  {name:24s} {cells}", file=stream)
        for comparison, rows in entry["paired"].items():
            row = rows["seed"]["3"]
            se = "" if row["se"] is None else f" ± {row['se']:.3f}"
            print(f"  {comparison:22s} seed PCK@3 {row['mean']:+.3f}{se} (wins {row['wins']}, losses {row['losses']}, "
                  f"ties {row['ties']})", file=stream)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="../shared/photos",
                        help="folder of photos, its test part used (missing: the embedded test photos)")
    parser.add_argument("--pairs", type=int, default=40, help="pairs per class (the first N of the benchmark's)")
    parser.add_argument("--points", type=int, default=pck.POINTS, help="points per pair")
    parser.add_argument("--checkpoint", default=None, help="descriptor network (default: the shipped one)")
    parser.add_argument("--classes", nargs="+", choices=CLASSES, default=list(CLASSES))
    parser.add_argument("--seed", type=int, default=0, help="the benchmark's seed (pairs) and the points' seed")
    parser.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=list(METHODS),
                        help="methods scored (default: the four of the first run)")
    parser.add_argument("--angles", nargs="+", type=float, default=list(ROTATION_ANGLES),
                        help="degrees of learned_space_rotations, applied to both images (default: ROTATION_ANGLES)")
    parser.add_argument("--out", default="experiments/results/13_descriptor_classes.json")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.points < 1:
        parser.error("--pairs and --points must be at least 1")
    photos, source = photo_paths(args.photos)
    used, images = class_images(photos, args.pairs, SIZE)
    learned = pck.LearnedDescriptors(load_descriptor_net(args.checkpoint))
    space = DescriptorSpace(learned, name="learned_space")
    rotations = DescriptorSpace(learned, angles=args.angles, name="learned_space_rotations")
    available = {"daisy": pck.DaisyDescriptors, "sift": pck.SiftDescriptors, "learned": lambda: learned,
                 "learned_space": lambda: space, "learned_space_rotations": lambda: rotations}
    methods = [available[name]() for name in ALL_METHODS if name in args.methods]
    report = {"photos": source, "test_photos_used": [Path(p).name for p in used], "pairs_per_class": args.pairs,
              "points": args.points, "seed": args.seed, "checkpoint": str(args.checkpoint or "shipped"),
              "image_size": list(SIZE), "long_side": pck.LONG_SIDE, "protocols": list(PROTOCOLS),
              "thresholds_px": list(pck.PCK_THRESHOLDS), "methods": [m.name for m in methods],
              "space_scales": list(space.scales), "classes": {}}
    if "learned_space_rotations" in args.methods:
        report["rotation_space_angles"] = list(rotations.angles)
        report["rotation_space_maps"] = rotations.labels
    with tempfile.TemporaryDirectory(prefix="hnet_keras_descriptor_classes_") as folder:
        for kind in args.classes:
            print(f"{kind}: {args.pairs} pairs", file=sys.stderr)
            pairs = class_pairs(folder, images, kind, args.pairs, seed=args.seed)
            report["classes"][kind] = score_class(pairs, methods, args.points, args.seed)
    report["verdicts"] = verdicts(report["classes"])
    atomic_write_json(args.out, report)
    print_table(report["classes"])
    summary = {**report, "classes": {kind: {k: v for k, v in entry.items() if k not in ("per_pair", "pair_list")}
                                     for kind, entry in report["classes"].items()}}
    print(json.dumps(summary))
    return report


if __name__ == "__main__":
    main()
