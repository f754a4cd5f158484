"""``python -m hnet_keras``: one argparse CLI, each command registered by the module that owns it.

A module in :data:`COMMAND_MODULES` defines ``register_commands(subparsers)``, adding
its sub-parsers with ``func`` set to a callable taking the parsed arguments; the
sub-parsers get the :class:`HelpFormatter` from here (``add_subparsers(parser_class=...)``),
so no command module imports this one. Only the module of the command being run is
imported (see :data:`COMMANDS`), so commands that need no Keras, such as ``make-dataset``
or ``evaluate`` on the classical methods, start without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "make-dataset": "hnet_keras.generate",
    "download-coco": "hnet_keras.coco",
    "train": "hnet_keras.training",
    "evaluate": "hnet_keras.evaluation",
    "evaluate-pairs": "hnet_keras.real_pairs",
    "demo": "hnet_keras.demo",
    "estimate": "hnet_keras.demo",
    "export-checkpoint": "hnet_keras.demo",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default in ``--help``, except the uninformative ``None`` and ``False``
    (those options say in their help what leaving them out means)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """A sub-command's parser, with :class:`HelpFormatter` unless told otherwise."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def build_parser(argv=None):
    """The parser; with ``argv``, only the module owning its command is imported."""
    command = next((arg for arg in argv or () if not arg.startswith("-")), None)
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    parser = argparse.ArgumentParser(
        prog="python -m hnet_keras",
        description="HomographyNet toolkit: datasets, training, evaluation against OpenCV.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in modules:
        importlib.import_module(name).register_commands(subparsers)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        result = args.func(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if isinstance(result, int):
        sys.exit(result)
