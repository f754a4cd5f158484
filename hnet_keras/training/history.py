"""Training histories: the per-epoch rows a run writes, and reading any history back.

:func:`hnet_keras.train` writes ``history.json`` and ``history.csv`` (one row per epoch,
:func:`history_csv`); :func:`read_history` reads those, Keras ``History`` objects and
``CSVLogger`` files alike, for :func:`hnet_keras.plots.plot_training_curves`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

__all__ = ["history_csv", "read_history"]


def history_csv(rows):
    """Per-epoch dicts as CSV text, one column per key seen in any row."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _columns(rows, where):
    """Rows (dicts) to columns of floats; missing or non-numeric cells are NaN, text columns dropped."""
    keys = []
    for row in rows:
        keys += [key for key in row if key not in keys]
    columns = {}
    for key in keys:
        values = []
        for row in rows:
            value = row.get(key)
            try:
                values.append(float(value) if value not in (None, "") else float("nan"))
            except (TypeError, ValueError):
                values = None
                break
        if values is not None:
            columns[key] = values
    if not columns:
        raise ValueError(f"{where}: no numeric column in the history")
    return columns


def read_history(history):
    """A training history as a dict of lists.

    Accepts a dict of lists, a list of per-epoch dicts (:class:`hnet_keras.training.run.TrainResult`
    ``.history``), an object with a ``history`` attribute (a Keras ``History``, a
    ``TrainResult``), a CSV path (``keras.callbacks.CSVLogger``'s or a run's
    ``history.csv``), a ``history.json`` path, or a run folder holding ``history.csv``.
    """
    if hasattr(history, "history") and isinstance(history.history, (dict, list)):
        history = history.history
    if isinstance(history, (str, Path)):
        path = Path(history)
        if path.is_dir():
            path = path / "history.csv"
        if not path.is_file():
            raise FileNotFoundError(f"history file not found: {path}")
        if path.suffix.lower() == ".json":
            history = json.loads(path.read_text(encoding="utf-8"))
        else:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            if not rows:
                raise ValueError(f"{path}: the history CSV has no rows")
            history = _columns(rows, path)
    if isinstance(history, list):
        if not history or not all(isinstance(row, dict) for row in history):
            raise ValueError("a history list must hold one dict per epoch")
        history = _columns(history, "history")
    if not isinstance(history, dict) or not history:
        raise ValueError("expected a non-empty history: a dict of lists, a list of epoch dicts, "
                         "a keras History or a CSV/JSON path")
    return {key: [float(v) for v in values] for key, values in history.items()}
