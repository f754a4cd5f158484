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

from ..fileio import atomic_save_model, atomic_write_text, read_json, replacing
from .targets import MODEL_KINDS, model_options

__all__ = [
    "SHIPPED_CHECKPOINT",
    "CHECKPOINT_ENV",
    "check_rho",
    "check_description",
    "read_description",
    "check_state",
    "check_history",
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


MAX_RHO = 1e6
"""The largest rho accepted (pixels): a sanity bound on edited files and arguments."""

# Sanity bounds of the integer options of a description: (low, high). The largest input
# side and refinement count are the iterative model's own bounds (nets.iterative).
_INTEGER_OPTIONS = {"input_size": (8, 1024), "refinements": (1, 64), "bins": (2, 1025), "dense_units": (1, 65536),
                    "stride": (1, 64), "radius": (1, 64), "channels": (1, 4096), "context": (1, 4096),
                    "head": (1, 4096)}
_FLAG_OPTIONS = ("batchnorm", "standardize")


def check_rho(rho, where):
    """``rho`` as a finite positive number, or a ValueError naming ``where`` (a file or an option)."""
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not 0 < rho <= MAX_RHO:
        raise ValueError(f"{where}: rho must be a finite number in (0, {MAX_RHO:g}], got {rho!r}")
    return int(rho) if float(rho).is_integer() else float(rho)


def _renamed(options, kind):
    """``options`` with the older name of an iterative model's refinement steps (``iterations``)
    read as ``refinements``."""
    options = dict(options)
    if kind == "iterative" and "iterations" in options and "refinements" not in options:
        options["refinements"] = options.pop("iterations")
    return options


def check_description(description, where):
    """A checkpoint description, checked before anything is built from it; returns it with the
    older keys renamed (``options.iterations`` -> ``options.refinements`` for the iterative
    model; ``training.iterations`` -> ``training.steps``, the optimizer steps).

    Every number is checked for type and a sane range (input size, refinements, widths, bins,
    rho finite and positive), and an ``options.rho`` must agree with the top-level ``rho``.

    Raises:
        ValueError: one line naming ``where`` and the key.
    """
    if not isinstance(description, dict):
        raise ValueError(f"{where}: the checkpoint description is not a JSON object")
    kind = description.get("kind")
    if kind not in MODEL_KINDS:
        raise ValueError(f"{where}: 'kind' must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
    options = description.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{where}: 'options' must be a JSON object, got {options!r}")
    options = _renamed(options, kind)
    for key, value in options.items():
        if key in _INTEGER_OPTIONS:
            low, high = _INTEGER_OPTIONS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{where}: 'options.{key}' must be an integer in [{low}, {high}], got {value!r}")
        elif key == "width" and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                 or not 0 < value <= 16):
            raise ValueError(f"{where}: 'options.width' must be a number in (0, 16], got {value!r}")
        elif key == "dropout" and not (isinstance(value, bool) or (
                isinstance(value, numbers.Real) and 0 <= value < 1)):
            raise ValueError(f"{where}: 'options.dropout' must be true, false or a rate in [0, 1), got {value!r}")
        elif key in _FLAG_OPTIONS and not isinstance(value, bool):
            raise ValueError(f"{where}: 'options.{key}' must be true or false, got {value!r}")
        elif key == "weights" and value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: 'options.weights' must be null or a name, got {value!r}")
        elif key == "rho":
            check_rho(value, f"{where} ('options.rho')")
    checked = {**description, "options": options}
    if "rho" in description and description["rho"] is not None:
        rho = check_rho(description["rho"], f"{where} ('rho')")
        if "rho" in options and float(options["rho"]) != float(rho):
            raise ValueError(f"{where}: 'rho' {rho} and 'options.rho' {options['rho']} disagree; the model's outputs "
                             "are offsets / rho, so one of them is wrong")
    training = description.get("training")
    if isinstance(training, dict) and "iterations" in training and "steps" not in training:
        training = dict(training)
        training["steps"] = training.pop("iterations")
        checked["training"] = training
    return checked


MAX_STEPS = 10**9
"""The most optimizer steps a state or history may record (a sanity bound on edited files)."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_count(value, where, key, low=0, high=MAX_STEPS):
    """``value`` as an int in ``[low, high]``, or a one-line ValueError naming the file and key."""
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{where}: '{key}' must be an integer in [{low}, {high:,}], got {value!r}; "
                         "the file was edited or damaged: start over with --no-resume")
    return value


def check_state(state, where):
    """A run's ``state.json`` content, checked before use: a dict with ``epoch`` <= ``iterations``
    (integers, at most :data:`MAX_STEPS`), a ``preset`` dict, and lists where lists belong.

    Raises:
        ValueError: one line naming ``where`` and the key.
    """
    if not isinstance(state, dict) or not {"epoch", "iterations", "preset"} <= set(state):
        raise ValueError(f"{where}: not a training state (it needs epoch, iterations and preset); "
                         "start over with --no-resume")
    iterations = _checked_count(state["iterations"], where, "iterations")
    _checked_count(state["epoch"], where, "epoch", 0, iterations)
    if not isinstance(state["preset"], dict):
        raise ValueError(f"{where}: 'preset' must be a JSON object of the recipe's fields, got {state['preset']!r}; "
                         "start over with --no-resume")
    generators = state.get("seed_generators", [])
    if not isinstance(generators, list) or not all(
            isinstance(g, list) and all(_is_int(v) for v in g) for g in generators):
        raise ValueError(f"{where}: 'seed_generators' must be a list of lists of integers; start over with --no-resume")
    return state


def check_history(history, where):
    """A run's ``history.json`` content, checked: a list of per-epoch dicts, each with an integer
    ``epoch`` >= 1 and numbers (or null) as values.

    Raises:
        ValueError: one line naming ``where`` and the row.
    """
    if not isinstance(history, list):
        raise ValueError(f"{where}: not a training history (a list of per-epoch rows); start over with --no-resume")
    for index, row in enumerate(history):
        if not isinstance(row, dict) or not _is_int(row.get("epoch")) or not 1 <= row["epoch"] <= MAX_STEPS or any(
                value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)))
                for value in row.values()):
            raise ValueError(f"{where}: row {index} is not an epoch's row (a JSON object with an integer 'epoch' "
                             f"and numbers), got {json.dumps(row)[:60]}; start over with --no-resume")
    return history


def describe_model(kind, options, rho):
    """The description of a model built by ``build_model(kind, **options)`` and trained with ``rho``."""
    return check_description({"kind": kind, "options": dict(options), "rho": check_rho(rho, "rho")}, "description")


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
        with replacing(path, keep_suffix=True) as temporary:
            model.save(temporary)
            with zipfile.ZipFile(temporary, "a") as bundle:
                bundle.writestr(DESCRIPTION_MEMBER, text)
    else:
        raise ValueError(f"{path}: a checkpoint ends in .keras or .weights.h5")
    return path


def _read_json(path, what="checkpoint description"):
    value = read_json(path, what)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: the {what} is not a JSON object")
    return value


def read_description(path):
    """The checked description of a checkpoint file (see :func:`check_description`), or ``None``
    when it records none (a ``.keras`` file of an older run, without a ``state.json`` beside it)."""
    path = Path(path)
    if path.name.endswith(".weights.h5"):
        sidecar = _sidecar(path)
        if not sidecar.is_file():
            raise FileNotFoundError(f"{path}: a .weights.h5 checkpoint needs its description {sidecar.name} beside it")
        return check_description(_read_json(sidecar), sidecar)
    check_keras_file(path)
    try:
        with zipfile.ZipFile(path) as bundle:
            if DESCRIPTION_MEMBER in bundle.namelist():
                return check_description(json.loads(bundle.read(DESCRIPTION_MEMBER)),
                                         f"{path} (its {DESCRIPTION_MEMBER})")
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: unreadable checkpoint ({error})") from error
    state_path = path.with_name("state.json")
    if state_path.is_file():  # a run file written before the description was stored inside
        preset = _read_json(state_path, "training state").get("preset")
        if isinstance(preset, dict) and preset.get("kind") in MODEL_KINDS:
            try:
                options = model_options(**preset)
            except TypeError as error:
                raise ValueError(f"{state_path}: 'preset' is not a recipe ({error})") from error
            return check_description({"kind": preset["kind"], "options": options, "rho": preset.get("rho")},
                                     f"{state_path} ('preset')")
    return None


def check_keras_file(path):
    """Refuse, naming it, a ``.keras`` file that is not a complete zip holding a model (a truncated
    or half-written file), before Keras reads it (Keras calls that "File not found")."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as bundle:
            names = set(bundle.namelist())
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a complete .keras file ({size:,} bytes, {error}); it was truncated or "
                         "damaged") from None
    missing = {"config.json", "model.weights.h5"} - names
    if missing:
        raise ValueError(f"{path}: not a complete .keras file ({size:,} bytes, no {', '.join(sorted(missing))} "
                         "inside); it was truncated or damaged")


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
    description = read_description(path)
    try:
        if path.name.endswith(".weights.h5"):
            # The file holds every weight: initial weights (ImageNet's) are never downloaded for it.
            options = {key: value for key, value in description.get("options", {}).items() if key != "weights"}
            model = build_model(description["kind"], **options)
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
    return model, check_rho(description.get("rho"), f"{path} (its description's 'rho')")


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
    state = check_state(read_json(state_path, "training state"), state_path)
    path = run / f"{which}.keras"
    model, rho = load_checkpoint(path)
    recorded = read_description(path)
    description = describe_model(recorded["kind"], recorded.get("options", {}), rho)
    try:
        build_model(description["kind"], **description["options"]).set_weights(model.get_weights())
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: its recorded recipe does not match its weights ({error})") from error
    history_path = run / "history.json"
    history = check_history(read_json(history_path), history_path) if history_path.is_file() else []
    best_epoch = state.get("best_epoch")
    facts = {
        "preset": state["preset"],
        "epoch": best_epoch if which == "best" else state["epoch"],
        "steps": next((row.get("iterations") for row in history if row.get("epoch") == best_epoch),
                      state["iterations"]) if which == "best" else state["iterations"],
        "best_val_mace": state.get("best_val_mace"),
        "seed": state.get("seed"),
    }
    return save_model(model, out, {**description, "training": facts})
