"""Notebook 12's pipeline at full length, stage by stage (each resumable; run them in order):

    python experiments/12_superpoint.py magicpoint            # slim MagicPoint on synthetic shapes
    python experiments/12_superpoint.py adapt --photos ../shared/photos
    python experiments/12_superpoint.py superpoint --photos ../shared/photos
    python experiments/12_superpoint.py evaluate --photos ../shared/photos

Runs live under --runs (default /work/runs/superpoint style: runs/superpoint); results go to
experiments/results/12_superpoint*.json.
"""
import argparse
import sys
from pathlib import Path

from hnet_keras.features.superpoint import train_superpoint

ROOT = Path(__file__).resolve().parents[1]


def magicpoint(args):
    result = train_superpoint("magicpoint_cpu", run="magicpoint_cpu", checkpoint_dir=args.runs, seed=args.seed,
                              verbose=2)
    print(result.history[-1])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["magicpoint"])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "superpoint"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    {"magicpoint": magicpoint}[args.stage](args)


if __name__ == "__main__":
    main(sys.argv[1:])
