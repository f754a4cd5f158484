"""Checkpoints: a model with the description it takes to use it (its architecture and rho).

A network's outputs are ``offsets / rho``, so using a checkpoint needs its training
``rho`` as well as its weights; nothing here ever assumes one. The description is a
JSON object ``{"kind", "options", "rho", ...}`` (``kind`` and ``options`` rebuild the
architecture with :func:`hnet_keras.nets.models.build_model`). Two forms carry it:

* a ``.keras`` model (what :func:`hnet_keras.train` writes): the description is the
  ``hnet_keras.json`` member of the file itself, so a ``best.keras`` copied out of its
  run folder keeps its rho. Older run files without it fall back to the ``state.json``
  beside them;
* a compact ``.weights.h5`` with a ``.json`` of the same name beside it. This is the form
  the project ships in ``checkpoints/``: no optimizer state, and it loads without pickles
  or network access.

Every file is written atomically (temporary name, then rename; the description last).
:func:`load_pretrained` loads the shipped checkpoint (or ``$HNET_KERAS_CHECKPOINT``) offline.
"""

from __future__ import annotations

import json
import numbers
import os
import zipfile
from pathlib import Path

from ..fileio import atomic_save_model, atomic_write_text, replacing
from .targets import model_options

__all__ = [
    "SHIPPED_CHECKPOINT",
    "CHECKPOINT_ENV",
    "check_rho",
    "describe_model",
    "save_model",
    "load_checkpoint",
    "load_pretrained",
    "shipped_checkpoint",
    "export_checkpoint",
]

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "hnet_iterative" / "hnet_iterative.weights.h5"
CHECKPOINT_ENV = "HNET_KERAS_CHECKPOINT"
DESCRIPTION_MEMBER = "hnet_keras.json"


def check_rho(rho, where):
    """``rho`` as a positive number, or a ValueError naming ``where`` (a file or an option)."""
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not rho > 0:
        raise ValueError(f"{where}: rho must be a positive number, got {rho!r}")
    return int(rho) if float(rho).is_integer() else float(rho)


def describe_model(kind, options, rho):
    """The description of a model built by ``build_model(kind, **options)`` and trained with ``rho``."""
    return {"kind": kind, "options": dict(options), "rho": check_rho(rho, "rho")}


def _sidecar(weights_path):
    """``name.json`` beside ``name.weights.h5``."""
    return weights_path.with_name(weights_path.name[: -len(".weights.h5")] + ".json")


def save_model(model, path, description):
    """Write ``model`` with its ``description``, atomically.

    A ``.keras`` path gets the whole model (optimizer included) with the description
    inside; a ``.weights.h5`` path gets the weights and the description beside them
    (written last, so a reader never sees weights without the description that matches).
    """
    path = Path(path)
    text = json.dumps(description, indent=2) + "\n"
    if path.name.endswith(".weights.h5"):
        atomic_save_model(model, path, weights_only=True)
        atomic_write_text(_sidecar(path), text)
    elif path.suffix == ".keras":
        with replacing(path, f".tmp-{path.name}") as temporary:
            model.save(temporary)
            with zipfile.ZipFile(temporary, "a") as bundle:
                bundle.writestr(DESCRIPTION_MEMBER, text)
    else:
        raise ValueError(f"{path}: a checkpoint ends in .keras or .weights.h5")
    return path


def _read_json(path, what="checkpoint description"):
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable {what} ({error})") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path}: the {what} is not a JSON object")
    return value


def _description(path):
    """The description of a checkpoint file, or ``None`` when it records none."""
    if path.name.endswith(".weights.h5"):
        sidecar = _sidecar(path)
        if not sidecar.is_file():
            raise FileNotFoundError(f"{path}: a .weights.h5 checkpoint needs its description {sidecar.name} beside it")
        return _read_json(sidecar)
    try:
        with zipfile.ZipFile(path) as bundle:
            if DESCRIPTION_MEMBER in bundle.namelist():
                return json.loads(bundle.read(DESCRIPTION_MEMBER))
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable checkpoint ({error})") from error
    state_path = path.with_name("state.json")
    if state_path.is_file():  # a run file written before the description was stored inside
        preset = _read_json(state_path, "training state").get("preset")
        if isinstance(preset, dict) and "kind" in preset:
            return {"kind": preset["kind"], "options": model_options(**preset), "rho": preset.get("rho")}
    return None


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


def load_checkpoint(path, rho=None):
    """Load a checkpoint for inference; returns ``(model, rho)``.

    Args:
        path: a ``.keras`` model, a described ``.weights.h5``, or a run folder
            (its ``best.keras``, else ``last.keras``).
        rho: overrides the checkpoint's rho; needed for a ``.keras`` that records none.

    Raises:
        FileNotFoundError / ValueError naming the file, among them a checkpoint whose
        rho is missing, null or not positive.
    """
    import keras

    from . import losses  # noqa: F401  registers the serializable losses and metrics
    from .models import build_model

    path = _resolve(path)
    description = _description(path)
    try:
        if path.name.endswith(".weights.h5"):
            model = build_model(description["kind"], **description.get("options", {}))
            model.load_weights(path)
        else:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise ValueError(f"cannot load the checkpoint {path}: {error}") from error
    if rho is not None:
        return model, check_rho(rho, "rho")
    if description is None:
        raise ValueError(f"{path}: the checkpoint records no rho (no description inside, no state.json beside it); "
                         "give the rho the network was trained with (--network-rho)")
    return model, check_rho(description.get("rho"), f"{path} (its description)")


def shipped_checkpoint():
    """The path :func:`load_pretrained` uses: ``$HNET_KERAS_CHECKPOINT`` or the shipped weights."""
    return Path(os.environ.get(CHECKPOINT_ENV) or SHIPPED_CHECKPOINT)


def load_pretrained(path=None, rho=None):
    """The pre-trained HomographyNet, offline; returns ``(model, rho)``.

    Args:
        path: another checkpoint (see :func:`load_checkpoint`); default :func:`shipped_checkpoint`.
        rho: see :func:`load_checkpoint`.
    """
    path = Path(path) if path is not None else shipped_checkpoint()
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}. The project ships one in checkpoints/hnet_iterative/; "
            "train your own with `python -m hnet_keras train` and pass its run folder"
        )
    return load_checkpoint(path, rho)


def export_checkpoint(run, out, which="best"):
    """Write a run's model as a compact, described ``.weights.h5``.

    The description is the one stored with the model, checked against its weights, so
    the export always loads back into the same network.
    """
    from .models import build_model  # Keras, only when a checkpoint is written

    run, out = Path(run), Path(out)
    if not out.name.endswith(".weights.h5"):
        raise ValueError(f"{out}: a weights checkpoint must end in .weights.h5")
    state_path = run / "state.json"
    if not state_path.is_file():
        raise FileNotFoundError(f"{run}: not a training run folder (no state.json)")
    state = _read_json(state_path, "training state")
    if not {"epoch", "iterations", "preset"} <= set(state):
        raise ValueError(f"{state_path}: not a training state (it needs epoch, iterations and preset)")
    path = run / f"{which}.keras"
    model, rho = load_checkpoint(path)
    recorded = _description(path)
    description = describe_model(recorded["kind"], recorded.get("options", {}), rho)
    try:
        build_model(description["kind"], **description["options"]).set_weights(model.get_weights())
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: its recorded recipe does not match its weights ({error})") from error
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
    best_epoch = state.get("best_epoch")
    facts = {
        "preset": state["preset"],
        "epoch": best_epoch if which == "best" else state["epoch"],
        "iterations": next((row["iterations"] for row in history if row.get("epoch") == best_epoch),
                           state["iterations"]) if which == "best" else state["iterations"],
        "best_val_mace": state.get("best_val_mace"),
        "seed": state.get("seed"),
    }
    return save_model(model, out, {**description, "training": facts})
