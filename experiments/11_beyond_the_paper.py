"""Notebook 11's experiment as a longer CPU run (the iterative correlation model): `python experiments/11_beyond_the_paper.py
--images ../shared/photos` writes experiments/results/11_beyond_the_paper.json and .png (options: `python -m hnet_keras experiment --help`)."""
import sys
from hnet_keras.cli import main
main(["experiment", "iterative", "--output", "experiments/results/11_beyond_the_paper", *sys.argv[1:]])
