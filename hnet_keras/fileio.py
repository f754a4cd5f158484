"""Atomic writes: a hidden temporary file in the same folder, then a rename.

A reader (or a resumed run) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_save_model"]


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def atomic_save_model(model, path, weights_only=False):
    """``model.save`` (or ``save_weights``) atomically.

    The temporary name keeps the real suffix (``.tmp-last.keras``), which Keras needs to
    pick the format.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}")
    try:
        if weights_only:
            model.save_weights(temporary)
        else:
            model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
