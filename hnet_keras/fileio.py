"""Atomic writes: a hidden temporary file in the same folder, then a rename.

A reader (or a resumed run) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

__all__ = ["replacing", "atomic_write_text", "atomic_write_json", "atomic_save_model"]


@contextlib.contextmanager
def replacing(path, temporary_name=None):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any failure (an interrupt included) the temporary file is removed and the
    error goes on, so nothing half-written is left for a loader to pick up.

    Args:
        path: the final file.
        temporary_name: the temporary's name (default ``.<name>.<pid>.partial``, unique per
            process, so two processes writing the same file never share a temporary); give
            one ending in the real suffix where the writer picks its format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(temporary_name or f".{path.name}.{os.getpid()}.partial")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return Path(path)


def atomic_save_model(model, path, weights_only=False):
    """``model.save`` (or ``save_weights``) atomically.

    The temporary name keeps the real suffix (``.tmp-last.keras``), which Keras needs to
    pick the format.
    """
    with replacing(path, f".tmp-{Path(path).name}") as temporary:
        if weights_only:
            model.save_weights(temporary)
        else:
            model.save(temporary)
    return Path(path)


def atomic_write_json(path, value):
    """Write ``value`` as indented JSON atomically; returns the path."""
    return atomic_write_text(path, json.dumps(value, indent=2) + "\n")
