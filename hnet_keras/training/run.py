"""Training: recipes as data, ``train()`` with atomic checkpoints and exact resume, and
the ``train`` CLI command.

A run lives in ``<checkpoint_dir>/<run>/``:

* ``last.keras`` (model + optimizer state) and ``last.weights.h5``, rewritten every epoch;
* ``best.keras`` and ``best.weights.h5``, the epoch with the lowest validation MACE;
* ``history.json`` and ``history.csv``, one row per epoch;
* ``state.json``: epochs done, optimizer iterations, best validation MACE, the recipe, the seed,
  the data source and the dropout random states.

A run folder belongs to one process at a time (a lock, :func:`hnet_keras.fileio.folder_lock`):
a second ``train`` on it is refused, naming the first's pid.

Every ``.keras`` file carries its description (architecture and rho, see
:mod:`hnet_keras.nets.checkpoint`), so it can be used out of its folder. Every file is written
under a temporary name, then moved into place with ``os.replace``, so a run killed at any
moment leaves complete files; the state is written last. Resuming loads ``last.keras``
(whose optimizer holds the iteration count, so the learning-rate schedule and the momentum
carry on), restores the dropout random states and continues with ``initial_epoch``. A run
resumes only with the recipe, seed and data it was started with (``iterations`` aside, which
may grow); every number read back is checked first (:func:`check_state`, :func:`check_history`).

Only ``keras`` and ``keras.ops`` are used, so training runs under the TensorFlow and
JAX backends alike. ``devices`` trains data-parallel on the engines' own strategies
(:mod:`hnet_keras.training.distribute`): several GPUs, or several machines named by
``TF_CONFIG``; the batch size is then the global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm
from tqdm.keras import TqdmCallback

from ..data.motion import MOTIONS
from ..data.images import (
    embedded_photo_paths,
    list_images,
    require_split_parts,
    split_images,
)
from ..data.loaders import ArchiveDataset, OnTheFlyDataset
from ..fileio import (
    atomic_save_model,
    atomic_write_text,
    check_name,
    folder_lock,
    read_json,
    remove_stale_temporaries,
)
from ..nets.checkpoint import (
    check_history,
    check_keras_file,
    check_state,
    load_checkpoint,
    read_description,
    save_model,
)
from ..nets.losses import MACE, euclidean_l2, sequence_l1
from ..nets.models import build_model
from ..nets.targets import offsets_to_bins
from .distribute import plan_distribution
from .history import history_csv
from .presets import AUGMENTATIONS, Preset, get_preset

__all__ = [
    "on_the_fly",
    "make_optimizer",
    "compile_model",
    "train",
    "TrainResult",
    "RunCheckpoint",
]


def on_the_fly(preset, images, batches, seed, fixed=False, prepared=None):
    """An :class:`~hnet_keras.data.loaders.OnTheFlyDataset` of the recipe's pairs (augmented unless ``fixed``)."""
    return OnTheFlyDataset(images, preset.batch_size, batches_per_epoch=batches, config=preset.synthesis, seed=seed,
                           fixed=fixed, prepared=prepared, input_size=preset.input_size,
                           augmentation=AUGMENTATIONS[preset.photometrics] if preset.augment and not fixed else None,
                           motion=None if preset.motion is None else MOTIONS[preset.motion])


def make_optimizer(preset):
    """The preset's optimizer; its schedule is keyed on ``optimizer.iterations``, which is
    saved with the model, so a resumed run continues at the same point of the schedule."""
    learning_rate = preset.learning_rate
    if preset.optimizer == "adamw":
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, preset.iterations - preset.warmup_steps), alpha=0.01,
            warmup_target=preset.learning_rate, warmup_steps=preset.warmup_steps)
        return keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=1.0)
    if preset.lr_drop_every:
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            preset.learning_rate, preset.lr_drop_every, preset.lr_drop_factor, staircase=True
        )
    if preset.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=preset.momentum)
    return keras.optimizers.Adam(learning_rate)


def compile_model(model, preset):
    """Compile with the preset's optimizer, the model's loss (the paper's, or the iterative
    model's sequence loss) and the MACE metric."""
    binned = preset.kind == "classification"
    losses = {"classification": "categorical_crossentropy", "iterative": sequence_l1}
    model.compile(
        optimizer=make_optimizer(preset),
        loss=losses.get(preset.kind, euclidean_l2),
        metrics=[MACE(preset.rho, from_bins=binned)],
    )
    return model


class _BinnedTargets(keras.utils.PyDataset):
    """Turns a loader's ``offsets / rho`` targets into one-hot bins for classification."""

    def __init__(self, dataset, rho, bins):
        super().__init__()
        self.dataset, self.rho, self.bins = dataset, rho, bins

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x, y = self.dataset[index]
        return x, offsets_to_bins(np.asarray(y, np.float64) * self.rho, self.rho, self.bins)

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _training_data(preset, data, images, seed):
    if isinstance(data, keras.utils.PyDataset):
        return data, "the given dataset"
    if data is not None:
        return ArchiveDataset(data, preset.batch_size, rho=preset.rho, shuffle=True, seed=seed,
                              input_size=preset.input_size), str(data)
    source = images if images is not None else embedded_photo_paths("train")
    return on_the_fly(preset, source, preset.steps_per_epoch, seed), "on-the-fly pairs"


def _validation_data(preset, data, seed):
    if data is False:
        return None, None
    if isinstance(data, keras.utils.PyDataset):
        return data, "the given validation dataset"
    if data is not None:
        limit = preset.validation_batches * preset.batch_size
        return ArchiveDataset(data, preset.batch_size, rho=preset.rho, shuffle=False, limit=limit,
                              input_size=preset.input_size), str(data)
    dataset = on_the_fly(preset, embedded_photo_paths("test"), preset.validation_batches, seed, fixed=True)
    return dataset, "held-out on-the-fly pairs"


def _check_input(dataset, where, input_size):
    x, _ = dataset[0]
    if x.shape[1:] != (input_size, input_size, 2):
        raise ValueError(
            f"{where}: pairs of shape {tuple(x.shape[1:])} do not fit the model's input "
            f"({input_size}, {input_size}, 2); set --input-size (and --rho) to match the data"
        )


def _optimizer_position(model):
    """``(iterations, current learning rate)`` of the model's optimizer."""
    optimizer = model.optimizer
    iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
    learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return iterations, learning_rate


def _seed_generator_states(model):
    """The model's random-number states (dropout masks), which ``.keras`` files do not keep."""
    return [v for v in model.variables if "seed_generator" in v.path]


class RunCheckpoint(keras.callbacks.Callback):
    """Writes the run's checkpoint files at the end of every epoch (see the module doc).

    Files are written history first and state last, so after a kill the model in
    ``last.keras`` is never older than the history that resume keeps.

    Args:
        directory: the run folder.
        preset: the recipe, recorded in ``state.json``.
        history: rows of the epochs already done (resume), extended in place.
        monitor: the validation metric that picks ``best.keras``.
        extra_state: more entries for ``state.json`` (e.g. the seed).
    """

    def __init__(self, directory, preset, history=None, monitor="val_mace", extra_state=None):
        super().__init__()
        self.directory = Path(directory)
        self.preset = preset
        self.history = history if history is not None else []
        self.monitor = monitor
        self.extra_state = dict(extra_state or {})
        values = [row[monitor] for row in self.history if row.get(monitor) is not None]
        self.best = min(values) if values else math.inf
        self.best_epoch = next((row["epoch"] for row in self.history if row.get(monitor) == self.best), None)

    def on_epoch_end(self, epoch, logs=None):
        iterations, learning_rate = _optimizer_position(self.model)
        row = {"epoch": epoch + 1, "iterations": iterations, "learning_rate": learning_rate}
        row.update({key: float(value) for key, value in (logs or {}).items() if key != "learning_rate"})
        self.history.append(row)
        folder = self.directory
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "history.json", json.dumps(self.history, indent=1))
        atomic_write_text(folder / "history.csv", history_csv(self.history))
        names = ["last"]
        value = row.get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            names.append("best")
        for name in names:
            save_model(self.model, folder / f"{name}.keras", self.preset.description())
            atomic_save_model(self.model, folder / f"{name}.weights.h5", weights_only=True)
        state = {
            "epoch": epoch + 1,
            "iterations": iterations,
            "learning_rate": learning_rate,
            f"best_{self.monitor}": None if math.isinf(self.best) else self.best,
            "best_epoch": self.best_epoch,
            "preset": dataclasses.asdict(self.preset),
            "seed_generators": [
                keras.ops.convert_to_numpy(v).tolist() for v in _seed_generator_states(self.model)
            ],
            **self.extra_state,
        }
        atomic_write_text(folder / "state.json", json.dumps(state, indent=1))


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the model after the last epoch.
        history: one dict per epoch since the run began (resumed runs included):
            ``epoch`` (1-based), ``iterations``, ``learning_rate``, ``loss``,
            ``mace``, ``val_loss``, ``val_mace``.
        directory: the run folder.
        preset: the recipe.
        resumed_from: epochs already done when this call started (0 for a new run).
        best_val_mace: the lowest validation MACE of the run (``None`` without validation).
        distribution: the devices it trained on, in words.
    """

    model: keras.Model
    history: list
    directory: Path
    preset: Preset
    resumed_from: int = 0
    best_val_mace: float | None = None
    distribution: str | None = None


@contextlib.contextmanager
def _dtype_policy(mixed_precision):
    """Sets the global dtype policy while the model is built; restores it afterwards."""
    previous = keras.config.dtype_policy()
    if mixed_precision:
        policy = mixed_precision if isinstance(mixed_precision, str) else "mixed_float16"
        keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _read_resume_point(folder, preset, identity=None):
    """``(state, history)`` of a run folder, or ``None`` when it holds no checkpoint.

    A folder holding only part of a checkpoint (a run killed before its first epoch was
    saved, or files removed by hand) starts over, saying so in one line.

    Args:
        identity: entries of ``state.json`` that must not change on resume (the seed, the
            photo source), ``{key: value}``; a state without a key (an older run) is not checked.

    Raises:
        ValueError: an unreadable or edited state or history, or a recipe (``iterations``
            aside) or an ``identity`` entry other than this run's, naming the file and the key.
    """
    state_path, model_path = folder / "state.json", folder / "last.keras"
    present = [path.name for path in (state_path, model_path) if path.is_file()]
    if len(present) < 2:
        if present:
            warnings.warn(f"{folder}: {present[0]} without {({'state.json', 'last.keras'} - set(present)).pop()} "
                          "(a run stopped before its first checkpoint was complete): starting the run over",
                          stacklevel=3)
        return None
    state = check_state(read_json(state_path, "training state"), state_path)
    history_path = folder / "history.json"
    history = []
    if history_path.is_file():
        history = check_history(read_json(history_path, "training history"), history_path)
    wanted = json.loads(json.dumps(dataclasses.asdict(preset)))
    # A field newer than the run's state held its default then.
    saved = {**json.loads(json.dumps(dataclasses.asdict(Preset(name=preset.name)))), **state["preset"]}
    changed = [f"{key} {saved.get(key)!r} -> {value!r}" for key, value in wanted.items()
               if key != "iterations" and saved.get(key) != value]
    changed += [f"{key} {state[key]!r} -> {value!r}" for key, value in (identity or {}).items()
                if key in state and state[key] != value]
    if changed:
        raise ValueError(f"{folder}: this run was trained with other options ({'; '.join(changed)}); resume it "
                         "with its own options, or start it over (--no-resume) or in another run folder")
    return state, history


def load_last_model(folder):
    """A run's ``last.keras`` (safe mode), or a one-line ValueError naming it when it cannot be read."""
    path = Path(folder) / "last.keras"
    try:
        check_keras_file(path)
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many kinds (KeyError, ValueError...) on a damaged file
        reason = " ".join(str(error).split())[:200]
        raise ValueError(f"{path}: cannot resume from this model file ({reason}); start the run over with "
                         "--no-resume") from error


def _load_start(model, path, preset):
    """Copy the weights of the checkpoint ``path`` into ``model``, which must be the same network."""
    description = None if Path(path).is_dir() else read_description(path)
    start, _ = load_checkpoint(path)
    other_kind = description is not None and description.get("kind") != preset.kind
    other_shapes = [tuple(w.shape) for w in start.weights] != [tuple(w.shape) for w in model.weights]
    if other_kind or other_shapes:
        raise ValueError(f"start_from {path}: not a {preset.kind} model with the preset's options; "
                         "start from a checkpoint of the same network")
    model.set_weights(start.get_weights())


def _photo_source(images, data):
    """What the run trains on, as recorded in ``state.json`` (a changed source refuses resume)."""
    if isinstance(data, keras.utils.PyDataset):
        return None
    if data is not None:
        return f"archives {os.path.abspath(data)}"
    if images is None:
        return "embedded photos"
    if isinstance(images, (str, os.PathLike)):
        return f"images {os.path.abspath(images)}"
    paths = [os.path.abspath(path) for path in images]
    digest = hashlib.sha1("\n".join(paths).encode("utf-8")).hexdigest()[:12]
    return f"{len(paths)} images (sha1 {digest})"


def _progress_bar():
    """tqdm's Keras callback: one bar over the epochs, one over each epoch's steps (widgets in
    a notebook, text in a terminal)."""
    return TqdmCallback(verbose=1, tqdm_class=tqdm, mininterval=1.0)


def train(
    preset="smoke",
    *,
    run=None,
    checkpoint_dir="checkpoints",
    data=None,
    validation_data=None,
    images=None,
    seed=0,
    resume=True,
    mixed_precision=False,
    callbacks=(),
    verbose="auto",
    progress=False,
    devices=None,
    start_from=None,
    **overrides,
):
    """Train a HomographyNet, checkpointing every epoch; resume a killed run.

    Args:
        preset: a name in :data:`PRESETS` or a :class:`Preset`.
        run: the run's name, its folder under ``checkpoint_dir`` (default: the preset's name).
        checkpoint_dir: where run folders live.
        data: a folder of archives (read with :class:`~hnet_keras.data.loaders.ArchiveDataset`),
            a ``keras.utils.PyDataset`` yielding normalized ``(x, y)``, or ``None`` to
            synthesize pairs on the fly from ``images``.
        validation_data: a folder of archives, a PyDataset, ``None`` (fixed pairs from the
            held-out embedded photos) or ``False`` (no validation, so no ``best.keras``).
        images: images for on-the-fly pairs (a folder or paths); default the embedded
            photos of the ``"train"`` split.
        seed: seeds Keras, the data order and the synthesized pairs.
        resume: continue the run from its ``last.keras`` if there is one (only with the
            same recipe, seed and data source, which ``state.json`` records); ``False``
            starts over (overwriting the run's files).
        mixed_precision: ``True`` for ``"mixed_float16"``, or a Keras dtype policy name.
        callbacks: more Keras callbacks, run before the checkpoint's, so the values they
            add to an epoch's logs are saved in the history.
        verbose: passed to ``model.fit``.
        progress: show a tqdm bar of the steps and the running loss and MACE (use it
            with ``verbose=0``; notebooks do).
        devices: how many of this machine's devices train, data-parallel, each on a slice of
            every batch (see :func:`~hnet_keras.training.distribute.plan_distribution`);
            ``None``: all visible GPUs, and under ``TF_CONFIG`` every worker's.
        start_from: a checkpoint (see :func:`~hnet_keras.nets.checkpoint.load_checkpoint`) of the
            same model whose weights a new run starts from (fine-tuning); a resumed run keeps its own.
        **overrides: :class:`Preset` fields to replace (``iterations=...``, ``width=...``).

    Returns:
        A :class:`TrainResult`.

    Raises:
        hnet_keras.fileio.FolderBusy: another process is training in the run folder.
        ValueError: a bad argument, or a run folder that cannot resume (one line naming the file).
    """
    preset = get_preset(preset, **overrides)
    # First, before TensorFlow runs anything: a multi-worker strategy is made only then.
    distribution = plan_distribution(devices)
    distribution.check_batch_size(preset.batch_size)
    folder = Path(checkpoint_dir) / check_name(run or preset.name, "run")
    if not distribution.is_chief:  # TF_CONFIG's other workers keep their own copy of the run
        folder = folder / f"worker-{distribution.worker}"
    folder.mkdir(parents=True, exist_ok=True)
    # One run per folder: a second is refused (naming the first's pid) before it writes anything.
    with folder_lock(folder, "train", "wait for it to finish, or train into another run folder (--run)"):
        remove_stale_temporaries(folder)  # left by a killed run; ours alone while we hold the lock
        # The model is built and fitted in the scope (JAX's data layout is set while it is open).
        with distribution.scope():
            result = _train_locked(preset, folder, data, validation_data, images, seed, resume, mixed_precision,
                                   callbacks, verbose, progress, start_from)
    result.distribution = distribution.describe()
    return result


def _train_locked(preset, folder, data, validation_data, images, seed, resume, mixed_precision, callbacks, verbose,
                  progress, start_from=None):
    """The body of :func:`train`, with the run folder locked."""
    source = _photo_source(images, data)
    identity = {"seed": seed, **({"source": source} if source is not None else {})}
    # A fine-tuned run is another run than one from scratch: resuming must not mix them.
    identity["start_from"] = None if start_from is None else str(Path(start_from).resolve())
    if start_from is not None and not Path(start_from).exists():
        raise FileNotFoundError(f"start_from {start_from}: no such checkpoint")
    # First, so a folder that cannot resume is refused before any data is prepared.
    resume_point = _read_resume_point(folder, preset, identity) if resume else None
    keras.utils.set_random_seed(seed)
    if isinstance(images, (str, os.PathLike)) and Path(images).is_dir():
        # A folder is split by file name: train on its training part, validate on its
        # validation part; the test part is never seen (see images.split_images).
        parts = split_images(list_images(images))
        require_split_parts(images, parts, ("train",) if validation_data is not None else ("train", "validation"))
        images = parts["train"]
        if validation_data is None:
            validation_data = on_the_fly(preset, parts["validation"], preset.validation_batches, seed, fixed=True)

    train_data, train_source = _training_data(preset, data, images, seed)
    val_data, val_source = _validation_data(preset, validation_data, seed)
    _check_input(train_data, train_source, preset.input_size)
    if val_data is not None:
        _check_input(val_data, val_source, preset.input_size)
    if preset.kind == "classification":
        train_data = _BinnedTargets(train_data, preset.rho, preset.bins)
        val_data = None if val_data is None else _BinnedTargets(val_data, preset.rho, preset.bins)
    steps_per_epoch = len(train_data)
    epochs = math.ceil(preset.iterations / steps_per_epoch)

    with _dtype_policy(mixed_precision):
        if resume_point is None:
            model = compile_model(build_model(preset.kind, **preset.model_options()), preset)
            if start_from is not None:
                _load_start(model, start_from, preset)
        else:
            model = load_last_model(folder)
    initial_epoch, history = 0, []
    if resume_point is not None:
        state, history = resume_point
        iterations, _ = _optimizer_position(model)
        initial_epoch = state["epoch"]
        if iterations != state["iterations"] or initial_epoch * steps_per_epoch != iterations:
            # Killed between saving the model and the state: the model is the truth.
            warnings.warn(
                f"{folder}: state.json says epoch {state['epoch']}, {state['iterations']} iterations, but "
                f"last.keras has {iterations} ({steps_per_epoch} per epoch); resuming from the model",
                stacklevel=3,
            )
            initial_epoch = iterations // steps_per_epoch
        else:
            # So dropout draws the masks it would have drawn in an uninterrupted run.
            saved = state.get("seed_generators", [])
            variables = _seed_generator_states(model)
            if len(saved) == len(variables) and all(
                    np.shape(value) == tuple(variable.shape) for variable, value in zip(variables, saved)):
                for variable, value in zip(variables, saved):
                    variable.assign(np.asarray(value, dtype=variable.dtype))
        history = [row for row in history if row["epoch"] <= initial_epoch]
        # The data order of epoch e depends on e: replay the epoch ends already done.
        for _ in range(initial_epoch):
            train_data.on_epoch_end()

    checkpoint = RunCheckpoint(folder, preset, history, extra_state=identity)
    if initial_epoch < epochs:
        model.fit(
            train_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=val_data,
            # The loaders shuffle with their own seeded, per-epoch order; Keras's
            # shuffle of the batch order would draw from Python's global RNG,
            # which a resumed run cannot replay.
            shuffle=False,
            # Callbacks run in order: what the given ones add to the logs is saved.
            callbacks=[*callbacks, checkpoint, *([_progress_bar()] if progress else [])],
            verbose=verbose,
        )
    best = None if math.isinf(checkpoint.best) else checkpoint.best
    return TrainResult(model, checkpoint.history, folder, preset, initial_epoch, best)
