"""Pair synthesis and loader throughput, measured in one run.

    python benchmarks/bench_generate.py [--quick]

Prints human-readable lines, then one JSON object on the last line:
window vs whole-image warp (pairs/s on one core, and their ratio), the generator's
pairs/s with 1 and 2 workers, and the archive loader's samples/s and peak memory
over a dataset of 6 archives.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from hnet_keras.data.generate import generate_dataset  # noqa: E402
from hnet_keras.data.images import embedded_photo_paths, read_grayscale  # noqa: E402
from hnet_keras.data.synthesis import TRAIN_PROTOCOL, prepare_image, sample_pair  # noqa: E402


def warp_rate(prepared, warp, pairs):
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(pairs):
        sample_pair(prepared[i % len(prepared)], rng, TRAIN_PROTOCOL, warp=warp)
    return pairs / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer pairs, for a smoke run")
    args = parser.parse_args()
    scale = 0.05 if args.quick else 1.0
    cv2.setNumThreads(1)
    prepared = [prepare_image(read_grayscale(p)[0]) for p in embedded_photo_paths()]
    warp_pairs = int(4000 * scale)
    warp_rate(prepared, "window", 200)  # warm-up
    full = max(warp_rate(prepared, "full", warp_pairs) for _ in range(3))
    window = max(warp_rate(prepared, "window", warp_pairs) for _ in range(3))
    print(f"window warp {window:.0f} pairs/s/core, whole-image warp {full:.0f} pairs/s/core, x{window / full:.2f}")

    results = {
        "window_warp_pairs_per_s_per_core": round(window, 1),
        "full_warp_pairs_per_s_per_core": round(full, 1),
        "window_over_full": round(window / full, 2),
    }
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        pairs_per_image = max(4, int(240 * scale))
        for workers in (1, 2):
            summary = generate_dataset(scratch / f"w{workers}", pairs_per_image=pairs_per_image, archive_size=1024,
                                       workers=workers, progress=False)
            results[f"generate_pairs_per_s_{workers}_worker{'s' if workers > 1 else ''}"] = round(
                summary.pairs_per_second, 1)
            print(f"generator, {workers} worker(s): {summary.pairs_per_second:.0f} pairs/s "
                  f"({summary.pairs_written} pairs)")

        from hnet_keras.data.loaders import ArchiveDataset

        archive_pairs = max(64, int(1024 * scale))
        dataset_dir = scratch / "loader"
        # at least 6 full archives, however many photos the installed scikit-image embeds; the
        # loader reads exactly the first 6 (limit), and the dataset stays as its manifest lists it
        photos = len(embedded_photo_paths())
        generate_dataset(dataset_dir, pairs_per_image=-(-6 * archive_pairs // photos), archive_size=archive_pairs,
                         progress=False)
        archives = sorted(dataset_dir.glob("*.npz"))[:6]
        dataset = ArchiveDataset(dataset_dir, batch_size=64, seed=0, limit=6 * archive_pairs)
        tracemalloc.start()
        started = time.perf_counter()
        samples = 0
        for index in range(len(dataset)):
            x, _ = dataset[index]
            samples += len(x)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        archive_mb = archives[0].stat().st_size / 2**20
        dataset_mb = sum(p.stat().st_size for p in archives) / 2**20
        results.update(
            loader_samples_per_s=round(samples / seconds, 1),
            loader_archives=len(archives),
            loader_archive_mb=round(archive_mb, 1),
            loader_dataset_mb=round(dataset_mb, 1),
            loader_peak_mb=round(peak / 2**20, 1),
            loader_peak_in_archives=round(peak / 2**20 / archive_mb, 2),
        )
        print(f"ArchiveDataset: {samples / seconds:.0f} samples/s over {len(archives)} archives "
              f"({dataset_mb:.0f} MB); peak traced memory {peak / 2**20:.0f} MB = "
              f"{peak / 2**20 / archive_mb:.2f} archives")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
