"""Notebook 03's experiment as a longer CPU run (the regression HomographyNet): `python experiments/03_train_regression.py
--images ../shared/photos` writes experiments/results/03_train_regression.json and .png (options: `python -m hnet_keras experiment --help`)."""
import sys
from hnet_keras.cli import main
main(["experiment", "regression", "--output", "experiments/results/03_train_regression", *sys.argv[1:]])
