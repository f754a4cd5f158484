"""Notebook 06's experiment as a longer CPU run (rho 20, 32 and 40): `python experiments/06_rho_experiment.py
--images ../shared/photos` writes experiments/results/06_rho_experiment.json and .png (options: `python -m hnet_keras experiment --help`)."""
import sys
from hnet_keras.cli import main
main(["experiment", "rho", "--output", "experiments/results/06_rho_experiment", *sys.argv[1:]])
