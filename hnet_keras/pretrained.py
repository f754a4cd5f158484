"""Checkpoints with what it takes to use them: the model and the rho it was trained with.

A network's outputs are ``offsets / rho``, so using a checkpoint needs its training
``rho`` as well as its weights. Two kinds of checkpoint carry it:

* a training run's ``.keras`` file (``best.keras``, ``last.keras``): ``rho`` comes from
  the run's ``state.json`` beside it (:func:`hnet_keras.train` writes it);
* a shipped ``.weights.h5`` with a ``.json`` of the same name beside it, which holds
  the architecture (``kind`` and ``options`` for :func:`hnet_keras.build_model`) and
  ``rho``. This is the compact form the project ships in ``checkpoints/``: no
  optimizer state, and it loads without pickles or network access.

:func:`load_pretrained` loads the checkpoint that ships with the project (or the one
named by ``$HNET_KERAS_CHECKPOINT``), fully offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .fileio import atomic_save_model, atomic_write_text

__all__ = [
    "SHIPPED_CHECKPOINT",
    "CHECKPOINT_ENV",
    "DEFAULT_RHO",
    "load_checkpoint",
    "load_pretrained",
    "save_weights_checkpoint",
    "shipped_checkpoint",
]

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "hnet_compact" / "hnet_compact.weights.h5"
CHECKPOINT_ENV = "HNET_KERAS_CHECKPOINT"
DEFAULT_RHO = 32


def _sidecar(weights_path):
    """``name.json`` beside ``name.weights.h5``."""
    return weights_path.with_name(weights_path.name[: -len(".weights.h5")] + ".json")


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable checkpoint description ({error})") from error


def _resolve(path):
    """A model file from a path that may be a run folder."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.keras", "last.keras"):
            if (path / name).is_file():
                return path / name
        shipped = sorted(path.glob("*.weights.h5"))
        if len(shipped) == 1 and _sidecar(shipped[0]).is_file():
            return shipped[0]
        raise FileNotFoundError(f"{path}: no best.keras, last.keras or described .weights.h5 in this folder")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path):
    """Load a checkpoint for inference; returns ``(model, rho)``.

    Args:
        path: a ``.keras`` model, a described ``.weights.h5``, or a run folder
            (its ``best.keras``, else ``last.keras``).

    Raises:
        FileNotFoundError / ValueError naming the file.
    """
    import keras

    from . import losses  # noqa: F401  registers the serializable losses and metrics
    from .models import build_model

    path = _resolve(path)
    if path.name.endswith(".weights.h5"):
        description_path = _sidecar(path)
        if not description_path.is_file():
            raise FileNotFoundError(
                f"{path}: a .weights.h5 checkpoint needs its description {description_path.name} beside it"
            )
        description = _read_json(description_path)
        try:
            model = build_model(description["kind"], **description.get("options", {}))
            model.load_weights(path)
        except (KeyError, TypeError, ValueError, OSError) as error:
            raise ValueError(f"cannot load the checkpoint {path}: {error}") from error
        return model, int(description.get("rho", DEFAULT_RHO))
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"cannot load the checkpoint {path}: {error}") from error
    rho = DEFAULT_RHO
    state_path = path.with_name("state.json")
    if state_path.is_file():
        rho = int(_read_json(state_path).get("preset", {}).get("rho", DEFAULT_RHO))
    return model, rho


def shipped_checkpoint():
    """The path :func:`load_pretrained` uses: ``$HNET_KERAS_CHECKPOINT`` or the shipped weights."""
    return Path(os.environ.get(CHECKPOINT_ENV) or SHIPPED_CHECKPOINT)


def load_pretrained(path=None):
    """The pre-trained HomographyNet, offline; returns ``(model, rho)``.

    Args:
        path: another checkpoint (see :func:`load_checkpoint`); default
            :func:`shipped_checkpoint`.
    """
    path = Path(path) if path is not None else shipped_checkpoint()
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}. The project ships one in checkpoints/hnet_compact/; "
            "train your own with `python -m hnet_keras train` and pass its run folder"
        )
    return load_checkpoint(path)


def save_weights_checkpoint(model, path, kind, options, rho, extra=None):
    """Write a compact checkpoint: ``name.weights.h5`` and its ``name.json`` description.

    Both files are written under temporary names, then renamed, the description last,
    so a reader never sees weights without the description that matches them.

    Args:
        model: the model, built by ``build_model(kind, **options)``.
        path: the ``.weights.h5`` path.
        kind, options: how to rebuild the architecture.
        rho: the training rho.
        extra: more JSON-able entries for the description (training facts).
    """
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"{path}: a weights checkpoint must end in .weights.h5")
    atomic_save_model(model, path, weights_only=True)
    description = {"kind": kind, "options": dict(options), "rho": int(rho), **dict(extra or {})}
    atomic_write_text(_sidecar(path), json.dumps(description, indent=2) + "\n")
    return path
