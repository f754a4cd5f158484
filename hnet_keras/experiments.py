"""Experiments: named sets of training runs, each scored against the identity on held-out pairs.

One definition serves three budgets (:data:`BUDGETS`):

* ``"live"``: what a notebook trains while a student watches, about two minutes on a
  laptop CPU, on the photos embedded in scikit-image;
* ``"full"``: the same runs, longer, on a folder of photos; ``experiments/*.py`` run it and
  commit its JSON and figure, which the notebooks plot beside their live run;
* ``"paper"``: the paper's recipe (SGD, 90,000 iterations of 64 pairs, 128 px patches,
  rho 32) on MS-COCO archives (``download-coco`` then ``make-dataset``), checkpointed every
  epoch and resumed when run again; then scored on the paper's test protocol. A GPU's work.

Every run's held-out MACE is measured during training (a callback, saved in the run's
history, so a resumed run keeps its curve) on pairs synthesized from photos training
never reads, and reported in pixels of a 128 px patch (:class:`hnet_keras.scoring.evaluation.HeldOutError`),
beside the classical methods (:data:`BASELINE_METHODS`) on the same pairs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras

from .data.images import (
    embedded_photo_paths,
    list_images,
    require_split_parts,
    split_images,
)
from .data.synthesis import REPORT_PATCH, load_prepared_images, synthesize_pairs
from .fileio import atomic_write_json, folder_lock
from .nets.models import WeightsUnavailable
from .scoring.evaluation import evaluate, held_out_error, load_test_set
from .training.presets import BUDGETS, EXPERIMENTS, Run, experiment_runs
from .training.run import train

__all__ = [
    "BUDGETS",
    "EXPERIMENTS",
    "BASELINE_METHODS",
    "Run",
    "ExperimentResult",
    "experiment_runs",
    "run_experiment",
    "hardware",
]

BASELINE_METHODS = ("sift_ransac", "orb_ransac", "ecc")
"""The classical methods every run is compared with, on its own held-out pairs."""


def hardware():
    """What a run ran on, in words: the processor, its cores, the Keras backend and any GPU."""
    backend = keras.config.backend()
    gpus = []
    if backend == "tensorflow":
        import tensorflow as tf  # the backend Keras already loaded

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif backend == "jax":
        import jax  # the backend Keras already loaded

        gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
    processor = platform.processor() or platform.machine()
    where = f"{', '.join(gpus)} GPU" if gpus else "CPU only"
    return f"{processor}, {os.cpu_count()} cores, {where}, Keras {keras.__version__} on {backend}"


class HeldOutCurve(keras.callbacks.Callback):
    """Adds the held-out MACE (px at 128) and the epoch's seconds to the logs of every epoch.

    It runs before the run's checkpoint callback, so both land in the run's saved history.
    The held-out photos are read once: every evaluation scores the same pairs.
    """

    def __init__(self, preset, images, pairs, seed):
        super().__init__()
        self.preset, self.pairs, self.seed = preset, pairs, seed
        self.prepared, _ = load_prepared_images(images, preset.synthesis)
        self.last = None  # the last epoch's HeldOutError: the run's final score

    def score(self, model):
        """``model``'s :class:`~hnet_keras.scoring.evaluation.HeldOutError` on the run's held-out pairs."""
        return held_out_error(model, self.preset, count=self.pairs, seed=self.seed, prepared=self.prepared)

    def score_baselines(self, methods=BASELINE_METHODS):
        """Per classical method, its ``mace`` (px at 128) and ``failure_rate`` on the same pairs.

        A failure counts as the identity's error, as in :func:`hnet_keras.scoring.evaluation.evaluate`.
        """
        config = self.preset.synthesis
        pairs, offsets = synthesize_pairs(self.pairs, config=config, seed=self.seed, prepared=self.prepared)
        scale = REPORT_PATCH / config.patch_size
        scores = evaluate(pairs, offsets, list(methods), progress=False).summary()
        return {name: {"label": s["label"], "mace": round(s["mace"] * scale, 3),
                       "failure_rate": round(s["failure_rate"], 3)} for name, s in scores.items()}

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds = time.perf_counter() - self.started
        error = self.last = self.score(self.model)
        logs.update(held_out_mace=error.network, identity_mace=error.identity, seconds=seconds)


@dataclass
class ExperimentResult:
    """Per run: its held-out curve and final error, and how long it took, on what.

    ``runs`` maps a run's name to a dict with ``steps``, ``mace`` (held-out MACE, px at
    128, after each evaluation), ``identity``, ``final``, ``ratio`` (final / identity),
    ``seconds`` (training time), ``input_size`` and ``baselines`` (the classical methods of
    :data:`BASELINE_METHODS` on the same pairs: ``label``, ``mace``, ``failure_rate``).
    ``skipped`` maps a run that could not start (pre-trained weights that could not be
    downloaded) to the reason. Saved and read as JSON.
    """

    experiment: str
    budget: str
    runs: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    pairs: int = 0
    photos: int = 0
    hardware: str = ""
    source: str = ""
    models: dict = field(default_factory=dict, repr=False, compare=False)
    """The trained models by run name (not saved; empty for a loaded result)."""

    def summary(self):
        """One line a run: its final held-out MACE against the identity's (the same on any machine)."""
        lines = []
        for name, run in self.runs.items():
            lines.append(
                f"{name}: held-out MACE {run['final']:.1f} px, identity {run['identity']:.1f} px "
                f"(x{run['ratio']:.2f}) after {run['steps'][-1]:,} steps"
            )
        lines.extend(f"{name}: not run: {reason.split(';')[0]}" for name, reason in self.skipped.items())
        return "\n".join(lines)

    def compare(self):
        """The classical methods on the same held-out pairs, one line per set of pairs."""
        groups = {}
        for name, run in self.runs.items():
            key = json.dumps(run["baselines"], sort_keys=True)
            groups.setdefault(key, (run["baselines"], []))[1].append(name)
        lines = []
        for baselines, names in groups.values():
            scores = ", ".join(f"{b['label']} {b['mace']:.1f} px ({100 * b['failure_rate']:.0f}% failed)"
                               for b in baselines.values())
            where = "the same pairs" if len(groups) == 1 else f"the pairs of {', '.join(names)}"
            lines.append(f"classical methods on {where} (a failure counts as the identity): {scores}")
        return "\n".join(lines)

    def describe(self):
        """Where the numbers come from: pairs, photos and scale."""
        sizes = sorted({run["input_size"] for run in self.runs.values()})
        return (
            f"{self.pairs} held-out pairs from {self.photos} photos ({self.source}); MACE in px of a "
            f"{REPORT_PATCH} px patch, models run at {', '.join(map(str, sizes))} px"
        )

    def timing(self):
        """How long the runs took, on what."""
        minutes = sum(run["seconds"] for run in self.runs.values()) / 60
        return f"{len(self.runs)} run(s), {minutes:.1f} min of training in all, on {self.hardware}"

    def save(self, path):
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "models"}
        return atomic_write_json(path, fields)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as file:
            return cls(**json.load(file))


def _images(images):
    """Training and held-out images: a folder's train and test splits, or the embedded photos'."""
    if images is None:
        return None, embedded_photo_paths("test"), "embedded photos"
    parts = split_images(list_images(images))
    require_split_parts(images, parts, ("train", "test"))
    return parts["train"], parts["test"], f"{images}, test split"


def run_experiment(experiment, budget="live", *, folder, images=None, data=None, steps=None, pairs=256, seed=0,
                   progress=True, resume=True, protocol_pairs=5000):
    """Train every run of an experiment and score each on held-out pairs as it learns.

    Args:
        experiment: one of :data:`EXPERIMENTS`; ``budget``: one of :data:`BUDGETS`.
        folder: where the runs' checkpoints go (a run folder each).
        images: a folder of photos: training uses its ``train`` split, scoring its
            ``test`` split (:func:`hnet_keras.data.images.split_images`); default the embedded photos.
        data: a folder of archives to train on instead of on-the-fly pairs (the paper budget).
        steps: training steps of every run instead of the budget's.
        pairs: held-out pairs per evaluation; ``seed``: seeds training and those pairs.
        protocol_pairs: with the ``paper`` budget, pairs of the paper's test protocol
            (640x480 images of the held-out photos, 256 px patches, rho 64) each model is
            finally scored on, with ``mace`` and ``identity`` of that protocol saved as
            ``paper_protocol``.
        progress: a progress bar per run.
        resume: continue runs already in ``folder`` (``False`` starts them over).

    Returns:
        An :class:`ExperimentResult`.

    Raises:
        hnet_keras.fileio.FolderBusy: the same experiment is running in ``folder`` (each run's
            folder is locked by :func:`~hnet_keras.training.run.train` too).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder, f"experiment {experiment}", "wait for it to finish or use another --checkpoints folder",
                     name=f".hnet_keras.{experiment}.lock"):
        return _run_experiment(experiment, budget, folder, images, data, steps, pairs, seed, progress, resume,
                               protocol_pairs)


def _run_experiment(experiment, budget, folder, images, data, steps, pairs, seed, progress, resume, protocol_pairs):
    """The body of :func:`run_experiment`, with ``folder`` locked for ``experiment``."""
    train_images, test_images, source = _images(images)
    result = ExperimentResult(experiment, budget, pairs=pairs, hardware=hardware(), source=source)
    baselines = {}  # by the runs' pair recipe: runs on the same pairs share their classical scores
    for index, run in enumerate(experiment_runs(experiment, budget, steps)):
        curve = HeldOutCurve(run.preset, test_images, pairs, seed + 1)
        try:
            trained = train(
                run.preset, run=f"{experiment}_{index}", checkpoint_dir=folder, data=data, images=train_images,
                validation_data=False, seed=seed, resume=resume, callbacks=[curve], verbose=0, progress=progress,
            )
        except WeightsUnavailable as error:
            # Offline: say so, and go on with the runs that need no download.
            warnings.warn(f"{run.name}: not run: {error}", stacklevel=2)
            result.skipped[run.name] = str(error)
            continue
        rows = [row for row in trained.history if "held_out_mace" in row]
        # A run found finished (resumed) trained no epoch here: score it once.
        final = curve.last or curve.score(trained.model)
        result.photos = final.photos
        if run.preset.synthesis not in baselines:
            baselines[run.preset.synthesis] = curve.score_baselines()
        result.models[run.name] = trained.model
        result.runs[run.name] = {
            "steps": [int(row["iterations"]) for row in rows],
            "mace": [round(float(row["held_out_mace"]), 3) for row in rows],
            "identity": round(final.identity, 3),
            "final": round(final.network, 3),
            "ratio": round(final.ratio, 3),
            "seconds": round(float(sum(row["seconds"] for row in rows)), 1),
            "input_size": final.input_size,
            "baselines": baselines[run.preset.synthesis],
        }
        if budget == "paper":
            test_set = load_test_set(images=test_images, protocol="paper", seed=seed + 2, count=protocol_pairs)
            scores = evaluate(test_set, methods=["identity", "network"], model=trained.model, network_rho=run.preset.rho,
                              progress=progress).summary()
            result.runs[run.name]["paper_protocol"] = {name: round(s["mace"], 3) for name, s in scores.items()}
    return result
