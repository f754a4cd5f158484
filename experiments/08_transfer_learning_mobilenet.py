"""Notebook 08's experiment as a longer CPU run (a MobileNetV2 trunk (ImageNet weights, from scratch) against the paper's): `python experiments/08_transfer_learning_mobilenet.py
--images ../shared/photos` writes experiments/results/08_transfer_learning_mobilenet.json and .png (options: `python -m hnet_keras experiment --help`)."""
import sys
from hnet_keras.cli import main
main(["experiment", "transfer", "--output", "experiments/results/08_transfer_learning_mobilenet", *sys.argv[1:]])
