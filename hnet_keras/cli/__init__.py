"""``python -m hnet_keras``: the command line, apart from the library.

Every parser, argument type and command function lives in this package: one module per
command group (:data:`COMMANDS`), each defining ``register_commands(subparsers)``, which adds
its sub-parsers with ``func`` set to a callable taking the parsed arguments. The library
takes plain Python arguments and raises exceptions; it never imports this package.
Only the module of the command being run is imported, and it loads Keras only when the
command runs, so ``--help``, argument errors and the commands that need no network
(``make-dataset``, ``evaluate`` on the classical methods) never load TensorFlow.

Expected failures (bad input: :class:`ValueError`, files: :class:`OSError`, memory, Ctrl-C)
end the command with one line, ``hnet_keras COMMAND: error: ...``, and a non-zero exit;
any other exception is a bug and keeps its traceback. ``HNET_KERAS_TRACEBACK=1`` shows
the traceback of the expected ones too. A bad argument is one line too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

COMMANDS = {
    "make-dataset": "hnet_keras.cli.data",
    "download-coco": "hnet_keras.cli.data",
    "train": "hnet_keras.cli.training",
    "experiment": "hnet_keras.cli.training",
    "export-checkpoint": "hnet_keras.cli.training",
    "evaluate": "hnet_keras.cli.scoring",
    "evaluate-pairs": "hnet_keras.cli.scoring",
    "demo": "hnet_keras.cli.demo",
    "estimate": "hnet_keras.cli.demo",
    "train-superpoint": "hnet_keras.cli.superpoint",
    "homographic-adaptation": "hnet_keras.cli.superpoint",
    "evaluate-keypoints": "hnet_keras.cli.superpoint",
    "train-descriptors": "hnet_keras.cli.descriptors",
    "evaluate-descriptors": "hnet_keras.cli.descriptors",
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
    """A sub-command's parser, with :class:`HelpFormatter` unless told otherwise, whose
    errors are one line (argparse would print the usage block first)."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


TRACEBACK_ENV = "HNET_KERAS_TRACEBACK"
VERBOSE_ENV = "HNET_KERAS_VERBOSE"
INTERRUPTED_EXIT = 130
KERAS_COMMANDS = {"train", "experiment", "export-checkpoint", "demo", "estimate", "train-superpoint",
                  "homographic-adaptation", "evaluate-keypoints", "train-descriptors", "evaluate-descriptors"}
"""Commands that always load Keras (``evaluate`` and ``evaluate-pairs`` do when a network runs)."""


def _needs_keras(args):
    if args.command in ("evaluate", "evaluate-pairs"):
        from .scoring import network_wanted

        return network_wanted(args)
    return args.command in KERAS_COMMANDS


def load_keras_quietly():
    """Import Keras and start its backend with the backend's start-up log silenced.

    TensorFlow writes its absl, oneDNN and CUDA lines straight to file descriptor 2, before
    any log level applies, so a command would print them ahead of its own output: they go
    to the null device while Keras loads and the backend finds its devices.
    """
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            keras.ops.convert_to_tensor(0.0)  # the backend looks for its devices now, quietly
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def build_parser(argv=None):
    """The parser; with ``argv``, only the module owning its command is imported."""
    command = next((arg for arg in argv or () if not arg.startswith("-")), None)
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    parser = _Parser(
        prog="python -m hnet_keras",
        description="HomographyNet toolkit: datasets, training, evaluation against OpenCV.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--verbose", action="store_true",
                        help=f"let the backend (TensorFlow) print its start-up log (or set {VERBOSE_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in modules:
        importlib.import_module(name).register_commands(subparsers)
    parser.commands = subparsers.choices
    return parser


def _one_line(error):
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, MemoryError):
        return f"out of memory ({text})"
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        return f"{error.filename}: {text}"
    return text


def _ignore_further_interrupts():
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv=None):
    """Run one command; expected errors end it with one line on stderr (see the module's doc)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    prog = f"hnet_keras {command}" if command in COMMANDS else "hnet_keras"
    try:
        parser = build_parser(argv)
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the command's own parser, in one line
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
        if not (args.verbose or os.environ.get(VERBOSE_ENV)) and _needs_keras(args):
            load_keras_quietly()
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
