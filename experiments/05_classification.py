"""Notebook 05's experiment as a longer CPU run (the classification HomographyNet (17 bins)): `python experiments/05_classification.py
--images ../shared/photos` writes experiments/results/05_classification.json and .png (options: `python -m hnet_keras experiment --help`)."""
import sys
from hnet_keras.cli import main
main(["experiment", "classification", "--output", "experiments/results/05_classification", *sys.argv[1:]])
