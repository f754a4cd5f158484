"""Notebook 07's experiment as a longer CPU run (dropout and BatchNorm on and off): `python experiments/07_ablation_dropout_batchnorm.py
--images ../shared/photos` writes experiments/results/07_ablation_dropout_batchnorm.json and .png (options: `python -m hnet_keras experiment --help`)."""
import sys
from hnet_keras.cli import main
main(["experiment", "ablation", "--output", "experiments/results/07_ablation_dropout_batchnorm", *sys.argv[1:]])
