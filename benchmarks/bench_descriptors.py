"""Speed of the dense descriptors: describing a 640x480 image, and training steps.

    python benchmarks/bench_descriptors.py [--repeats 3] [--quick]

Times (median of ``--repeats``) the dense map of one 640x480 photo by the shipped learned
network, by DAISY (skimage, 4 px grid) and by SIFT (OpenCV, 8 px grid), the learned descriptor
space (scales 1, 0.71, 0.5), and one training step of the ``descriptors_cpu`` preset (batch 8
of 128 px pairs, data drawn beforehand). Human-readable lines go to stderr; the last line of
stdout is one JSON object.
"""

import argparse
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

from hnet_keras.data.images import embedded_photo_paths, read_grayscale  # noqa: E402
from hnet_keras.features import pck  # noqa: E402
from hnet_keras.features.descriptor_space import DescriptorSpace  # noqa: E402
from hnet_keras.features.descriptors import (  # noqa: E402
    DescriptorPairs,
    build_descriptor_net,
    build_training_model,
    compile_training_model,
    get_descriptor_preset,
    load_descriptor_net,
    prepare_photos,
)


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat, for a smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    keras.utils.set_random_seed(0)
    photo = cv2.resize(read_grayscale(embedded_photo_paths("test")[0])[0], (640, 480), interpolation=cv2.INTER_AREA)
    learned = pck.LearnedDescriptors(load_descriptor_net())
    methods = [learned, DescriptorSpace(learned), pck.DaisyDescriptors(), pck.SiftDescriptors()]
    result = {}
    for method in methods:
        method.maps(photo)  # warm-up (graph tracing)
        result[f"{method.name}_seconds_640x480"] = round(median_seconds(lambda: method.maps(photo), args.repeats), 4)
        print(f"{method.name:>14}: {result[f'{method.name}_seconds_640x480']:.3f} s per 640x480 image", file=sys.stderr)
    preset = get_descriptor_preset("descriptors_cpu")
    photos = prepare_photos(embedded_photo_paths("train"), preset.photo_side, preset.image_size)
    x, y = DescriptorPairs(photos, preset, batches=1, seed=0)[0]
    model = compile_training_model(build_training_model(build_descriptor_net(**preset.net_options())), preset)
    model.train_on_batch(x, y)  # warm-up
    step = median_seconds(lambda: model.train_on_batch(x, y), args.repeats)
    result["descriptors_cpu_seconds_per_step"] = round(step, 4)
    print(f"descriptors_cpu: {step:.3f} s per training step (batch {preset.batch_size})", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
