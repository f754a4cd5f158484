"""``python -m hnet_keras``: one argparse CLI, each command registered by the module that owns it.

A module in :data:`COMMAND_MODULES` defines ``register_commands(subparsers)``, adding
its sub-parsers with ``func`` set to a callable taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMAND_MODULES = (
    "hnet_keras.generate",
    "hnet_keras.coco",
    "hnet_keras.training",
    "hnet_keras.evaluation",
    "hnet_keras.demo",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default in ``--help``, except the uninformative ``None`` and ``False``
    (those options say in their help what leaving them out means)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m hnet_keras",
        description="HomographyNet toolkit: datasets, training, evaluation against OpenCV.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register_commands(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if isinstance(result, int):
        sys.exit(result)
