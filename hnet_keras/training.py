"""Training: recipes as data, ``train()`` with atomic checkpoints and exact resume, and
the ``train`` CLI command.

A run lives in ``<checkpoint_dir>/<run>/``:

* ``last.keras`` (model + optimizer state) and ``last.weights.h5``, rewritten every epoch;
* ``best.keras`` and ``best.weights.h5``, the epoch with the lowest validation MACE;
* ``history.json`` and ``history.csv``, one row per epoch;
* ``state.json``: epochs done, optimizer iterations, best validation MACE, the recipe, the seed
  and the dropout random states.

Every ``.keras`` file carries its description (architecture and rho, see
:mod:`hnet_keras.checkpoint`), so it can be used out of its folder. Every file is written
under a temporary name, then moved into place with ``os.replace``, so a run killed at any
moment leaves complete files; the state is written last. Resuming loads ``last.keras``
(whose optimizer holds the iteration count, so the learning-rate schedule and the momentum
carry on), restores the dropout random states and continues with ``initial_epoch``. A run
resumes only with the recipe it was started with (``iterations`` aside, which may grow).

Only ``keras`` and ``keras.ops`` are used, so training runs under the TensorFlow and
JAX backends alike; TensorFlow is imported only to mirror over several GPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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

from .arguments import positive_float, positive_int
from .augment import DEFAULT_AUGMENTATION
from .checkpoint import describe_model, save_model
from .fileio import atomic_save_model, atomic_write_text
from .history import history_csv
from .images import embedded_photo_paths, list_images, require_split_parts, split_images
from .loaders import ArchiveDataset, OnTheFlyDataset
from .losses import MACE, euclidean_l2, sequence_l1
from .models import MODEL_KINDS, build_model, model_options, offsets_to_bins, unreachable_bins
from .synthesis import SynthesisConfig

__all__ = [
    "Preset",
    "PRESETS",
    "get_preset",
    "make_optimizer",
    "compile_model",
    "train",
    "TrainResult",
    "RunCheckpoint",
    "register_commands",
]


@dataclass(frozen=True)
class Preset:
    """A training recipe, as data.

    Attributes:
        name: the preset's name (the default run name).
        kind: the model, see :func:`hnet_keras.models.build_model`.
        image_size: ``(width, height)`` images are prepared to for on-the-fly pairs.
        input_size: patch side, the model's input.
        rho: largest corner perturbation; the targets are ``offsets / rho``.
        width: filter/unit multiplier of the model.
        dropout, batchnorm: the ablation switches of the model.
        bins: classification bins per coordinate.
        batch_size: pairs per step.
        iterations: optimizer steps of the whole run.
        steps_per_epoch: steps between checkpoints with on-the-fly data (with
            archives an epoch is one pass over them).
        optimizer: ``"sgd"`` (with ``momentum``), ``"adam"``, or ``"adamw"`` (weight decay
            1e-4, gradient clipping at 1, ``warmup_steps`` of linear warm-up to
            ``learning_rate`` then cosine decay to 1% of it at ``iterations``: the
            recipe of the iterative model).
        learning_rate: initial (``adamw``: peak) learning rate.
        momentum: SGD momentum.
        lr_drop_every: the learning rate is multiplied by ``lr_drop_factor`` every
            this many iterations (staircase); ``None`` keeps it constant.
        lr_drop_factor: see ``lr_drop_every``.
        validation_batches: batches of the held-out set evaluated each epoch.
        patch_size: side of the synthesized patches, resized to ``input_size`` for the
            model (``None``: ``input_size``). Synthesis then uses ``rho * patch_size /
            input_size``, so the targets are the same numbers.
        refinements: steps of the iterative model.
        augment: change each patch photometrically (:data:`hnet_keras.augment.DEFAULT_AUGMENTATION`).
        warmup_steps: ``adamw``'s warm-up.
        weights: the MobileNetV2 trunk's initial weights (``"imagenet"`` downloads them).
        standardize: the paper model standardizes each patch first (see :func:`~hnet_keras.models.build_model`).
    """

    name: str
    kind: str = "regression"
    image_size: tuple = (320, 240)
    input_size: int = 128
    rho: int = 32
    width: float = 1.0
    dropout: bool = True
    batchnorm: bool = True
    bins: int = 21
    batch_size: int = 64
    iterations: int = 90_000
    steps_per_epoch: int = 1000
    optimizer: str = "sgd"
    learning_rate: float = 0.005
    momentum: float = 0.9
    lr_drop_every: int | None = 30_000
    lr_drop_factor: float = 0.1
    validation_batches: int = 50
    patch_size: int | None = None
    refinements: int = 6
    augment: bool = False
    warmup_steps: int = 0
    weights: str | None = None
    standardize: bool = False

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        for name in ("batch_size", "iterations", "steps_per_epoch", "validation_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "image_size", tuple(self.image_size))
        _ = self.synthesis  # validates the sizes early, naming them
        if self.kind == "classification":
            never = unreachable_bins(self.rho, self.bins, self.input_size / (self.patch_size or self.input_size))
            if never:
                raise ValueError(
                    f"bins={self.bins} with rho={self.rho}: {len(never)} bins are narrower than a pixel "
                    f"and never a target; use at most {2 * self.synthesis.rho + 1} bins"
                )

    @property
    def synthesis(self):
        """The :class:`SynthesisConfig` of on-the-fly pairs (before any resize to ``input_size``)."""
        patch = self.patch_size or self.input_size
        return SynthesisConfig(self.image_size, patch, self.rho * patch // self.input_size)

    def on_the_fly(self, images, batches, seed, fixed=False, prepared=None):
        """An :class:`~hnet_keras.loaders.OnTheFlyDataset` of the recipe's pairs (augmented unless ``fixed``)."""
        return OnTheFlyDataset(images, self.batch_size, batches_per_epoch=batches, config=self.synthesis, seed=seed,
                               fixed=fixed, prepared=prepared, input_size=self.input_size,
                               augmentation=DEFAULT_AUGMENTATION if self.augment and not fixed else None)

    def model_options(self):
        """The :func:`~hnet_keras.models.build_model` options of the recipe."""
        return model_options(**dataclasses.asdict(self))

    def description(self):
        """The checkpoint description of the recipe's model (see :mod:`hnet_keras.checkpoint`).

        Initial weights are left out: a checkpoint holds its own."""
        options = {key: value for key, value in self.model_options().items() if key != "weights"}
        return describe_model(self.kind, options, self.rho)


PRESETS = {
    # DeTone et al. 2016, section 4: SGD, momentum 0.9, lr 0.005 divided by 10 every
    # 30,000 iterations, 90,000 iterations of batch 64, 128x128 patches, rho 32.
    "paper": Preset(name="paper"),
    # A CPU-sized version: 64x64 patches of images scaled to 192x144 (on 2 cores, patches
    # a third of the image wide learned fastest), rho 16, a quarter of the filters and
    # FC units, no dropout (the small model underfits) and Adam, which leaves the
    # initial plateau much sooner than SGD at this size.
    "cpu": Preset(name="cpu", image_size=(192, 144), input_size=64, rho=16, width=0.25, dropout=False,
                  iterations=6000, steps_per_epoch=250, optimizer="adam", learning_rate=0.002,
                  lr_drop_every=2500, validation_batches=8),
    # Phase 1 of the earlier checkpoint kept in checkpoints/hnet_compact: the cpu preset's
    # model on half-scale pairs (160x120 images). Its reproduce.py then goes on to
    # 28,000 iterations on 128 px pairs resized to 64 px, which is that checkpoint.
    "compact": Preset(name="compact", image_size=(160, 120), input_size=64, rho=16, width=0.25, dropout=False,
                      batch_size=32, iterations=24_000, steps_per_epoch=500, optimizer="adam",
                      learning_rate=0.001, lr_drop_every=18_000, validation_batches=8),
    # Quarter-scale pairs (32 px, rho 8) for a quick CPU run; the notebooks' live runs
    # (hnet_keras.experiments) start from it.
    "tiny": Preset(name="tiny", image_size=(96, 72), input_size=32, rho=8, width=0.25, dropout=False,
                   iterations=1000, steps_per_epoch=250, optimizer="adam", learning_rate=0.002,
                   lr_drop_every=None, validation_batches=4, bins=17),
    # The iterative correlation model (hnet_keras.iterative) on 128 px pairs resized to
    # 64, augmented, with the recipe of its family (AdamW, warm-up, cosine, batch 32).
    # checkpoints/hnet_iterative/reproduce.py is this recipe with its run's own loop.
    "iterative": Preset(name="iterative", kind="iterative", input_size=64, patch_size=128, rho=16, batch_size=32,
                        iterations=10_000, steps_per_epoch=250, optimizer="adamw", learning_rate=8e-4,
                        lr_drop_every=None, warmup_steps=500, augment=True, validation_batches=16),
    # A wiring check: trains a tiny model end to end in a few seconds.
    "smoke": Preset(name="smoke", image_size=(64, 48), input_size=32, rho=8, width=0.125, batch_size=16,
                    iterations=40, steps_per_epoch=10, optimizer="adam", learning_rate=0.002,
                    lr_drop_every=20, validation_batches=2, bins=17),
}


def get_preset(preset="smoke", **overrides):
    """A :class:`Preset` by name (or as given), with fields replaced by ``overrides``."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Preset)}
    if unknown:
        raise ValueError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(preset, **overrides) if overrides else preset


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
        return ArchiveDataset(data, preset.batch_size, rho=preset.rho, shuffle=True, seed=seed), str(data)
    source = images if images is not None else embedded_photo_paths("train")
    return preset.on_the_fly(source, preset.steps_per_epoch, seed), "on-the-fly pairs"


def _validation_data(preset, data, seed):
    if data is False:
        return None, None
    if isinstance(data, keras.utils.PyDataset):
        return data, "the given validation dataset"
    if data is not None:
        limit = preset.validation_batches * preset.batch_size
        return ArchiveDataset(data, preset.batch_size, rho=preset.rho, shuffle=False, limit=limit), str(data)
    dataset = preset.on_the_fly(embedded_photo_paths("test"), preset.validation_batches, seed, fixed=True)
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
    """

    model: keras.Model
    history: list
    directory: Path
    preset: Preset
    resumed_from: int = 0
    best_val_mace: float | None = None


def _distribution_scope():
    """``MirroredStrategy`` over the GPUs when there are several (TensorFlow backend only)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if len(tf.config.list_logical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


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


def _read_resume_point(folder, preset):
    """``(state, history)`` of a run folder, or ``None`` when it holds no checkpoint.

    Raises:
        ValueError: an unreadable state, or a recipe other than ``preset`` (``iterations``
            aside), naming the file and the options that differ.
    """
    state_path, model_path = folder / "state.json", folder / "last.keras"
    if not (state_path.is_file() and model_path.is_file()):
        return None
    try:
        state = json.loads(state_path.read_text())
        history_path = folder / "history.json"
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
    except json.JSONDecodeError as error:
        raise ValueError(f"{folder}: unreadable checkpoint state ({error})") from error
    if not isinstance(state, dict) or not {"epoch", "iterations", "preset"} <= set(state):
        raise ValueError(f"{state_path}: not a training state (it needs epoch, iterations and preset); "
                         "start over with --no-resume")
    wanted = json.loads(json.dumps(dataclasses.asdict(preset)))
    changed = [f"{key} {state['preset'].get(key)!r} -> {value!r}" for key, value in wanted.items()
               if key != "iterations" and state["preset"].get(key) != value]
    if changed:
        raise ValueError(f"{folder}: this run was trained with other options ({'; '.join(changed)}); resume it "
                         "with its own options, or start a new run (--no-resume, or another --run)")
    return state, history


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
    **overrides,
):
    """Train a HomographyNet, checkpointing every epoch; resume a killed run.

    Args:
        preset: a name in :data:`PRESETS` or a :class:`Preset`.
        run: the run's name, its folder under ``checkpoint_dir`` (default: the preset's name).
        checkpoint_dir: where run folders live.
        data: a folder of archives (read with :class:`~hnet_keras.loaders.ArchiveDataset`),
            a ``keras.utils.PyDataset`` yielding normalized ``(x, y)``, or ``None`` to
            synthesize pairs on the fly from ``images``.
        validation_data: a folder of archives, a PyDataset, ``None`` (fixed pairs from the
            held-out embedded photos) or ``False`` (no validation, so no ``best.keras``).
        images: images for on-the-fly pairs (a folder or paths); default the embedded
            photos of the ``"train"`` split.
        seed: seeds Keras, the data order and the synthesized pairs.
        resume: continue the run from its ``last.keras`` if there is one; ``False``
            starts over (overwriting the run's files).
        mixed_precision: ``True`` for ``"mixed_float16"``, or a Keras dtype policy name.
        callbacks: more Keras callbacks, run before the checkpoint's, so the values they
            add to an epoch's logs are saved in the history.
        verbose: passed to ``model.fit``.
        progress: show a tqdm bar of the steps and the running loss and MACE (use it
            with ``verbose=0``; notebooks do).
        **overrides: :class:`Preset` fields to replace (``iterations=...``, ``width=...``).

    Returns:
        A :class:`TrainResult`.
    """
    preset = get_preset(preset, **overrides)
    folder = Path(checkpoint_dir) / (run or preset.name)
    keras.utils.set_random_seed(seed)
    if isinstance(images, (str, os.PathLike)) and Path(images).is_dir():
        # A folder is split by file name: train on its training part, validate on its
        # validation part; the test part is never seen (see images.split_images).
        parts = split_images(list_images(images))
        require_split_parts(images, parts, ("train",) if validation_data is not None else ("train", "validation"))
        images = parts["train"]
        if validation_data is None:
            validation_data = preset.on_the_fly(parts["validation"], preset.validation_batches, seed, fixed=True)

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

    resume_point = _read_resume_point(folder, preset) if resume else None
    with _dtype_policy(mixed_precision), _distribution_scope():
        if resume_point is None:
            model = compile_model(build_model(preset.kind, **preset.model_options()), preset)
        else:
            model = keras.saving.load_model(folder / "last.keras", safe_mode=True)
    initial_epoch, history = 0, []
    if resume_point is not None:
        state, history = resume_point
        iterations, _ = _optimizer_position(model)
        initial_epoch = int(state["epoch"])
        if iterations != state["iterations"]:
            # Killed between saving the model and the state: the model is the truth.
            warnings.warn(
                f"{folder}: state.json says {state['iterations']} iterations but last.keras has "
                f"{iterations}; resuming from the model",
                stacklevel=2,
            )
            initial_epoch = iterations // steps_per_epoch
        else:
            # So dropout draws the masks it would have drawn in an uninterrupted run.
            saved = state.get("seed_generators", [])
            variables = _seed_generator_states(model)
            if len(saved) == len(variables):
                for variable, value in zip(variables, saved):
                    variable.assign(np.asarray(value, dtype=variable.dtype))
        history = [row for row in history if row["epoch"] <= initial_epoch]
        # The data order of epoch e depends on e: replay the epoch ends already done.
        for _ in range(initial_epoch):
            train_data.on_epoch_end()

    checkpoint = RunCheckpoint(folder, preset, history, extra_state={"seed": seed})
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


# The command line.


# Preset fields the command line can override: flag, type, help.
_OVERRIDES = (
    ("--kind", str, "model"),
    ("--iterations", int, "optimizer steps of the whole run"),
    ("--batch-size", int, "pairs per step"),
    ("--learning-rate", float, "initial learning rate"),
    ("--width", float, "filter multiplier of the model"),
    ("--input-size", int, "patch side, the model's input"),
    ("--rho", int, "largest corner perturbation; the targets are offsets / rho"),
    ("--steps-per-epoch", int, "steps between checkpoints, with on-the-fly data"),
)


def register_commands(subparsers):
    """``train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a HomographyNet (resumes the run if it has a checkpoint)",
        description="Train with a named recipe (preset); the recipe's fields can be overridden.",
    )
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="the recipe")
    parser.add_argument("--checkpoints", default="checkpoints", help="folder of the run folders")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over even if the run has a checkpoint (a run resumes only with its own options)")
    parser.add_argument("--mixed-precision", action="store_true", help="train with the mixed_float16 policy")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # Options whose default lives elsewhere (the preset, the embedded photos) are
    # left out of the namespace when not given, so the help shows no "None".
    unset = argparse.SUPPRESS
    parser.add_argument("--run", default=unset, help="run name, its folder under --checkpoints (default: the preset's name)")
    parser.add_argument("--data", default=unset, help="folder of .npz archives (default: pairs synthesized on the fly)")
    parser.add_argument("--val-data", default=unset,
                        help="folder of validation archives (default: pairs of the held-out embedded photos)")
    parser.add_argument("--images", default=unset,
                        help="folder of images for on-the-fly pairs, split by file name into train / "
                        "validation / test parts: trains on the first, validates on the second "
                        "(default: the embedded training photos)")
    for flag, kind, text in _OVERRIDES:
        kind = {int: positive_int, float: positive_float}.get(kind, kind)  # every number override is > 0
        parser.add_argument(flag, type=kind, default=unset, help=f"{text} (default: the preset's)",
                            **({"choices": MODEL_KINDS} if flag == "--kind" else {}))
    parser.set_defaults(func=_run_train)


def _run_train(args):
    options = vars(args)
    names = [flag[2:].replace("-", "_") for flag, _, _ in _OVERRIDES]
    overrides = {name: options[name] for name in names if name in options}
    result = train(
        args.preset,
        run=options.get("run"),
        checkpoint_dir=args.checkpoints,
        data=options.get("data"),
        validation_data=options.get("val_data"),
        images=options.get("images"),
        seed=args.seed,
        resume=not args.no_resume,
        mixed_precision=args.mixed_precision,
        verbose=0 if args.quiet else "auto",
        **overrides,
    )
    last = result.history[-1] if result.history else {}
    print(json.dumps({"run": str(result.directory), "epochs": len(result.history),
                      "iterations": last.get("iterations"), "val_mace": last.get("val_mace"),
                      "best_val_mace": result.best_val_mace}))
    return 0
