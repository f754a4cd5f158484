"""argparse ``type`` functions shared by the commands: numbers in range and paths that can
be written, checked before any work starts so a late failure never loses results.

Each raises ``argparse.ArgumentTypeError``, which argparse reports in one line naming
the option.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2

from ..fileio import check_name

__all__ = ["positive_int", "non_negative_int", "positive_float", "output_folder", "output_file",
           "image_file_to_write", "plain_name"]


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


def plain_name(text):
    """argparse ``type``: a name for a file or folder inside an output folder (no '/', '..' or
    absolute path), so what is written stays in that folder."""
    try:
        return check_name(text, "got")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
    output_file(text)
    if not cv2.haveImageWriter(text):
        raise argparse.ArgumentTypeError(
            f"{text}: OpenCV cannot write images with the extension {Path(text).suffix or '(none)'!r}; use .png or .jpg"
        )
    return text


def add_run_arguments(parser, presets, default, checkpoints, export_help):
    """The options every resumable training command shares: ``--preset`` (from ``presets``),
    ``--checkpoints`` (folder of the run folders), ``--run``, ``--iterations``, ``--seed``,
    ``--no-resume``, ``--export`` and ``--quiet``."""
    parser.add_argument("--preset", default=default, choices=presets, help="the recipe")
    parser.add_argument("--checkpoints", default=checkpoints, help="folder of the run folders")
    parser.add_argument("--run", default=None, help="run name (default: the preset's)")
    parser.add_argument("--iterations", type=positive_int, default=None, help="optimizer steps (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--no-resume", action="store_true", help="start over")
    parser.add_argument("--export", type=output_file, default=None, help=export_help)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
