"""Learning curves: held-out MACE against wall-clock seconds and pairs seen, for each
candidate model trained for the same budget on this machine, in one run.

    python benchmarks/bench_learning.py [--budget SECONDS] [--images FOLDER] [--plot PNG] [--quick]

Every candidate trains on the same stream of pairs (the training protocol: 128 px
patches, rho 32, synthesized on the fly from the training part of FOLDER, or from the
embedded photos), resized to its 64 px input, batch 32, from the same seed; it is
evaluated on the same fixed held-out pairs (the validation part, or the embedded
test photos) every ``--eval-every`` seconds of training. Evaluation time is not
counted in the budget. MACE is in pixels of the 128 px patch.

Candidates:

* ``regression``: the paper's network at a quarter width (the ``compact`` recipe:
  Adam 1e-3, no dropout);
* ``mobilenet``: a twin MobileNetV2 (alpha 0.35) regressor, from scratch, Adam 1e-3;
* ``iterative``: the iterative correlation model (:mod:`hnet_keras.nets.iterative`),
  AdamW with a short warm-up, sequence loss.

Human-readable lines go to stderr; the last line of stdout is one JSON object.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import hnet_keras  # noqa: E402
from hnet_keras.geometry import corner_errors  # noqa: E402
from hnet_keras.data.images import embedded_photo_paths, list_images, split_images  # noqa: E402
from hnet_keras.nets.losses import euclidean_l2, sequence_l1  # noqa: E402
from hnet_keras.nets.targets import outputs_to_offsets  # noqa: E402
from hnet_keras.data.synthesis import TRAIN_PROTOCOL, normalize_images, resize_pairs  # noqa: E402

INPUT_SIZE, BATCH, SEED = 64, 32, 0
RHO = TRAIN_PROTOCOL.rho * INPUT_SIZE / TRAIN_PROTOCOL.patch_size  # 16: rho at the model's scale


def log(message):
    print(message, file=sys.stderr, flush=True)


def candidates():
    """name -> (model factory, optimizer factory, loss)."""
    return {
        "regression": (
            lambda: hnet_keras.build_model("regression", input_size=INPUT_SIZE, width=0.25, dropout=False),
            lambda: keras.optimizers.Adam(1e-3),
            euclidean_l2,
        ),
        "mobilenet": (
            lambda: hnet_keras.build_model("mobilenet", input_size=INPUT_SIZE, width=0.35, dropout=False,
                                           dense_units=256),
            lambda: keras.optimizers.Adam(1e-3),
            euclidean_l2,
        ),
        "iterative": (
            lambda: hnet_keras.build_model("iterative", input_size=INPUT_SIZE, rho=RHO),
            lambda: keras.optimizers.AdamW(
                keras.optimizers.schedules.CosineDecay(0.0, 10**6, warmup_target=8e-4, warmup_steps=200),
                weight_decay=1e-4, clipnorm=1.0),
            sequence_l1,
        ),
    }


def held_out_mace(model, x, offsets):
    """MACE in pixels of the 128 px patch of the model's final estimate."""
    output = outputs_to_offsets(model.predict(x, batch_size=64, verbose=0), TRAIN_PROTOCOL.rho)
    return float(corner_errors(offsets, output).mean())


def learning_curve(name, budget, eval_every, train_images, x_val, offsets_val):
    build, optimizer, loss = candidates()[name]
    keras.utils.set_random_seed(SEED)
    model = build()
    model.compile(optimizer=optimizer(), loss=loss)
    data = hnet_keras.OnTheFlyDataset(None, BATCH, batches_per_epoch=10**6, config=TRAIN_PROTOCOL, seed=SEED,
                                      prepared=train_images, input_size=INPUT_SIZE)
    curve = [{"seconds": 0.0, "pairs": 0, "mace": held_out_mace(model, x_val, offsets_val)}]
    spent, steps, next_eval = 0.0, 0, eval_every
    model.train_on_batch(*data[0])  # trace/compile, not timed
    steps = 1
    while spent < budget:
        x, y = data[steps]
        began = time.perf_counter()
        model.train_on_batch(x, y)
        spent += time.perf_counter() - began
        steps += 1
        if spent >= next_eval or spent >= budget:
            curve.append({"seconds": round(spent, 1), "pairs": steps * BATCH,
                          "mace": held_out_mace(model, x_val, offsets_val)})
            log(f"{name:>10}: {spent:7.1f} s, {steps * BATCH:7d} pairs, held-out MACE {curve[-1]['mace']:.2f} px")
            next_eval += eval_every
    return {"parameters": int(model.count_params()), "curve": curve,
            "pairs_per_s": round(steps * BATCH / spent, 1), "final_mace": curve[-1]["mace"]}


def plot(results, identity, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hnet_keras.plots import save_figure

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for name, result in results.items():
        seconds = [p["seconds"] for p in result["curve"]]
        pairs = [p["pairs"] / 1000 for p in result["curve"]]
        mace = [p["mace"] for p in result["curve"]]
        axes[0].plot(seconds, mace, marker=".", label=f"{name} ({result['parameters']:,} parameters)")
        axes[1].plot(pairs, mace, marker=".", label=name)
    for ax, label in zip(axes, ("training time on this CPU (s)", "pairs seen (thousands)")):
        ax.axhline(identity, color="gray", linestyle="--", label="identity (no motion)")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out MACE (px of the 128 px patch)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("error against wall-clock time")
    axes[1].set_title("error against pairs seen")
    figure.tight_layout()
    save_figure(figure, path)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per candidate")
    parser.add_argument("--eval-every", type=float, default=30.0, help="training seconds between evaluations")
    parser.add_argument("--images", default=None, help="folder of photos (default: the embedded photos)")
    parser.add_argument("--pairs", type=int, default=256, help="held-out pairs")
    parser.add_argument("--candidates", nargs="+", default=list(candidates()), choices=list(candidates()))
    parser.add_argument("--plot", default=None, help="write the curves to this PNG")
    parser.add_argument("--quick", action="store_true", help="a few seconds per candidate and 32 pairs, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.budget, args.eval_every, args.pairs = 3.0, 1.5, 32
    if args.images:
        parts = split_images(list_images(args.images))
        train_source, val_source = parts["train"], parts["validation"]
    else:
        train_source, val_source = embedded_photo_paths("train"), embedded_photo_paths("test")
    train_images, _ = hnet_keras.load_prepared_images(train_source, TRAIN_PROTOCOL)
    pairs, offsets = hnet_keras.synthesize_pairs(args.pairs, val_source, TRAIN_PROTOCOL, seed=SEED + 1)
    x_val = normalize_images(resize_pairs(pairs, INPUT_SIZE))
    identity = float(corner_errors(offsets, np.zeros_like(offsets)).mean())
    results = {name: learning_curve(name, args.budget, args.eval_every, train_images, x_val, offsets)
               for name in args.candidates}
    if args.plot:
        plot(results, identity, args.plot)
    best = min(results, key=lambda name: results[name]["final_mace"])
    summary = {
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "budget_s": args.budget,
        "held_out_pairs": args.pairs,
        "identity_mace": round(identity, 2),
        **{f"{name}_final_mace": round(r["final_mace"], 2) for name, r in results.items()},
        **{f"{name}_pairs_per_s": r["pairs_per_s"] for name, r in results.items()},
        **{f"{name}_parameters": r["parameters"] for name, r in results.items()},
        "best": best,
        "curves": {name: r["curve"] for name, r in results.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
