"""Training throughput against loader throughput, measured in one run.

    python benchmarks/bench_train.py [--quick]

Measures training samples/s of the paper model (batch 64, 128x128) and of the ``cpu``
preset's model, then the samples/s of the two loaders at the paper's protocol:
``ArchiveDataset`` over archives written to a temporary folder by
``generate_dataset``, and ``OnTheFlyDataset`` (one process, the way ``train`` uses
it). The loader must outpace the paper model's training by at least 20 times, so that
training never waits for data. Human-readable lines go to stderr; the last line of
stdout is one JSON object.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hnet_keras.data.generate import generate_dataset  # noqa: E402
from hnet_keras.data.images import embedded_photo_paths  # noqa: E402
from hnet_keras.data.loaders import ArchiveDataset, OnTheFlyDataset  # noqa: E402
from hnet_keras.data.synthesis import load_prepared_images  # noqa: E402
from hnet_keras.nets.models import build_model  # noqa: E402
from hnet_keras.data.synthesis import TRAIN_PROTOCOL  # noqa: E402
from hnet_keras.training.presets import PRESETS  # noqa: E402
from hnet_keras.training.run import compile_model  # noqa: E402

REQUIRED_RATIO = 20


def log(message):
    print(message, file=sys.stderr, flush=True)


def training_rate(preset, batch_size, warmup, steps):
    """Samples/s of ``train_on_batch`` on random normalized pairs, after ``warmup`` steps."""
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(preset.kind, **preset.model_options()), preset)
    rng = np.random.default_rng(0)
    size = preset.input_size
    x = rng.uniform(-1, 1, (batch_size, size, size, 2)).astype(np.float32)
    y = rng.uniform(-1, 1, (batch_size, 8)).astype(np.float32)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return batch_size * steps / (time.perf_counter() - started)


def loader_rate(dataset, batches):
    """Samples/s of reading ``batches`` batches (at most one epoch)."""
    batches = min(batches, len(dataset))
    started = time.perf_counter()
    samples = sum(len(dataset[i][0]) for i in range(batches))
    return samples / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and pairs, for a smoke run")
    args = parser.parse_args()
    paper_steps, cpu_steps = (1, 5) if args.quick else (5, 20)
    archive_pairs = 256 if args.quick else 1024

    paper, cpu = PRESETS["paper"], PRESETS["cpu"]
    paper_rate = training_rate(paper, 64, warmup=1, steps=paper_steps)
    log(f"paper model training: {paper_rate:.1f} samples/s (batch 64, {paper_steps} steps)")
    cpu_rate = training_rate(cpu, cpu.batch_size, warmup=2, steps=cpu_steps)
    log(f"cpu preset training: {cpu_rate:.1f} samples/s (batch {cpu.batch_size}, {cpu_steps} steps)")

    with tempfile.TemporaryDirectory() as scratch:
        photos = embedded_photo_paths("all")
        per_image = math.ceil(archive_pairs / len(photos))
        generate_dataset(scratch, photos, pairs_per_image=per_image, archive_size=256, config=TRAIN_PROTOCOL,
                         seed=0, progress=False)
        archives = ArchiveDataset(scratch, batch_size=64, rho=TRAIN_PROTOCOL.rho, shuffle=True, seed=0)
        archive_rate = loader_rate(archives, len(archives))
    log(f"ArchiveDataset: {archive_rate:.0f} samples/s ({len(archives)} batches of 64)")

    prepared, _ = load_prepared_images(embedded_photo_paths("train"), TRAIN_PROTOCOL)
    on_the_fly = OnTheFlyDataset(batch_size=64, batches_per_epoch=8, config=TRAIN_PROTOCOL, prepared=prepared)
    fly_rate = loader_rate(on_the_fly, 8)
    log(f"OnTheFlyDataset: {fly_rate:.0f} samples/s (128x128 pairs, one process)")
    prepared_cpu, _ = load_prepared_images(embedded_photo_paths("train"), cpu.synthesis)
    fly_cpu = loader_rate(OnTheFlyDataset(batch_size=64, batches_per_epoch=8, config=cpu.synthesis,
                                          prepared=prepared_cpu), 8)
    log(f"OnTheFlyDataset at the cpu preset's size: {fly_cpu:.0f} samples/s")

    ratio = min(archive_rate, fly_rate) / paper_rate
    log(f"slowest loader / paper training: x{ratio:.0f} (required: x{REQUIRED_RATIO})")
    results = {
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "paper_train_samples_per_s": round(paper_rate, 2),
        "cpu_preset_train_samples_per_s": round(cpu_rate, 1),
        "archive_loader_samples_per_s": round(archive_rate, 1),
        "on_the_fly_loader_samples_per_s": round(fly_rate, 1),
        "on_the_fly_cpu_preset_samples_per_s": round(fly_cpu, 1),
        "loader_over_paper_training": round(ratio, 1),
        "on_the_fly_over_cpu_preset_training": round(fly_cpu / cpu_rate, 2),
        "required_ratio": REQUIRED_RATIO,
        "ok": ratio >= REQUIRED_RATIO,
    }
    print(json.dumps(results))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
