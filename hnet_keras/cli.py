"""``python -m hnet_keras``: one argparse CLI, each command registered by the module that owns it.

A module in :data:`COMMAND_MODULES` defines ``register_commands(subparsers)``, adding
its sub-parsers with ``func`` set to a callable taking the parsed arguments. Only the
module of the command being run is imported (see :data:`COMMANDS`), so commands that
need no Keras, such as ``make-dataset``, start without loading TensorFlow.

Expected failures (bad input: :class:`ValueError`, files: :class:`OSError`, memory, Ctrl-C)
end the command with one line, ``hnet_keras COMMAND: error: ...``, and a non-zero exit;
any other exception is a bug and keeps its traceback. ``HNET_KERAS_TRACEBACK=1`` shows
the traceback of the expected ones too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

COMMANDS = {
    "make-dataset": "hnet_keras.generate",
    "download-coco": "hnet_keras.coco",
    "train": "hnet_keras.training",
    "evaluate": "hnet_keras.evaluation",
    "evaluate-pairs": "hnet_keras.evaluation",
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


def positive_int(text):
    """argparse ``type``: an integer >= 1."""
    return _checked_number(text, int, 1, "a positive integer")


def non_negative_int(text):
    """argparse ``type``: an integer >= 0."""
    return _checked_number(text, int, 0, "an integer >= 0")


def positive_float(text):
    """argparse ``type``: a finite number > 0."""
    value = _checked_number(text, float, None, "a positive number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _checked_number(text, kind, minimum, what):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def _writable_ancestor(path, text):
    """The nearest existing folder above ``path``, refusing a file there or a read-only folder."""
    ancestor = Path(os.path.abspath(path)).parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: cannot write in {ancestor}")
    return ancestor


def output_folder(text):
    """argparse ``type``: a folder to write into, refused up front when a file is in the way."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"cannot write in {text}")
    else:
        _writable_ancestor(path, text)
    return text


def output_file(text):
    """argparse ``type``: a file to write, checked before any work so no result is lost on it."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file path")
    _writable_ancestor(path, text)
    return text


def image_file_to_write(text):
    """argparse ``type``: :func:`output_file` with an extension OpenCV can write."""
    import cv2

    output_file(text)
    if not cv2.haveImageWriter(text):
        raise argparse.ArgumentTypeError(
            f"{text}: OpenCV cannot write images with the extension {Path(text).suffix or '(none)'!r}; use .png or .jpg"
        )
    return text


TRACEBACK_ENV = "HNET_KERAS_TRACEBACK"
INTERRUPTED_EXIT = 130


def build_parser(argv=None):
    """The parser; with ``argv``, only the module owning its command is imported."""
    command = next((arg for arg in argv or () if not arg.startswith("-")), None)
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    parser = argparse.ArgumentParser(
        prog="python -m hnet_keras",
        description="HomographyNet toolkit: datasets, training, evaluation against OpenCV.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register_commands(subparsers)
    return parser


def _one_line(error):
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, MemoryError):
        return f"out of memory ({text})"
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        return f"{error.filename}: {text}"
    return text


def _ignore_further_interrupts():
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv=None):
    """Run one command; expected errors end it with one line on stderr (see the module's doc)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    prog = f"hnet_keras {command}" if command in COMMANDS else "hnet_keras"
    try:
        args = build_parser(argv).parse_args(argv)
        result = args.func(args)
    except KeyboardInterrupt as error:
        if os.environ.get(TRACEBACK_ENV):
            raise
        _ignore_further_interrupts()  # a second Ctrl-C must not turn the clean exit into a traceback
        print(f"{prog}: {_one_line(error) if str(error) else 'interrupted'}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    except (ValueError, OSError, MemoryError) as error:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        sys.exit(2)
    if isinstance(result, int):
        sys.exit(result)
