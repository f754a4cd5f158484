"""Experiments: named sets of training runs, each scored against the identity on held-out pairs.

One definition serves four budgets (:data:`BUDGETS`):

* ``"live"``: what a notebook trains while a student watches, about two minutes on a
  laptop CPU, on the photos embedded in scikit-image;
* ``"full"``: the same runs, longer, on a folder of photos; ``experiments/*.py`` run it and
  commit its JSON and figure, which the notebooks plot beside their live run;
* ``"gpu"``: the paper's sizes and models with AdamW for 6,000 steps of 64 pairs, on pairs made
  on the fly from a folder of photos: 10-20 minutes on one GPU (an estimate);
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
from .nets.checkpoint import load_pretrained, read_description, shipped_checkpoint
from .nets.models import WeightsUnavailable
from .scoring.evaluation import PAPER_TABLE, evaluate, held_out_error, load_test_set, standard_error
from .training.presets import BUDGETS, EXPERIMENTS, Run, experiment_runs
from .training.run import train

__all__ = [
    "BUDGETS",
    "EXPERIMENTS",
    "BASELINE_METHODS",
    "PAPER_BUDGET",
    "Run",
    "ExperimentResult",
    "experiment_runs",
    "run_experiment",
    "hardware",
]

PAPER_BUDGET = {"DeTone et al. 2016, on its own test pairs": (
    90_000 * 64, PAPER_TABLE["HomographyNet (regression)"] / PAPER_TABLE["identity"])}
"""The paper's regression model for :func:`hnet_keras.plots.plot_budget`: 90,000 steps of 64 pairs, 9.2 px
against the identity's 49.1 px."""

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

    def held_out_pairs(self):
        """``(pairs, offsets)``: the run's held-out pairs, the same every call."""
        return synthesize_pairs(self.pairs, config=self.preset.synthesis, seed=self.seed, prepared=self.prepared)

    def score_baselines(self, methods=BASELINE_METHODS):
        """Per classical method, its ``mace`` (px at 128), ``standard_error``, ``failure_rate`` and
        per-pair ``errors`` on the same pairs.

        A failure counts as the identity's error, as in :func:`hnet_keras.scoring.evaluation.evaluate`.
        """
        return _scores(evaluate(*self.held_out_pairs(), list(methods), progress=False), self.preset.synthesis)

    def score_shipped(self, model, rho):
        """The shipped model (``model``, ``rho``: :func:`~hnet_keras.nets.checkpoint.load_pretrained`'s),
        alone and refined by ECC, on the same pairs: ``label``, ``steps``, ``batch_size``, ``seconds``
        of its training and ``methods`` (``network``, ``network+ecc``: as :meth:`score_baselines`)."""
        training = (read_description(shipped_checkpoint()) or {}).get("training", {})
        evaluation = evaluate(*self.held_out_pairs(), ["network", "network+ecc"], model=model, network_rho=rho,
                              progress=False)
        steps, batch, seconds = training.get("steps"), training.get("batch_size"), training.get("seconds")
        trained = (f", {steps:,} steps of {batch} pairs in {seconds / 60:.0f} min on {training.get('hardware')}"
                   if steps and batch and seconds else "")
        return {"label": f"the shipped model ({shipped_checkpoint().name}{trained})", "steps": steps,
                "batch_size": batch, "seconds": seconds, "methods": _scores(evaluation, self.preset.synthesis)}

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds = time.perf_counter() - self.started
        error = self.last = self.score(self.model)
        logs.update(held_out_mace=error.network, identity_mace=error.identity, seconds=seconds)


def _scores(evaluation, config):
    """Per method of an evaluation: ``label``, ``mace``, ``standard_error``, ``failure_rate`` and the
    per-pair ``errors``, in px of a 128 px patch."""
    scale = REPORT_PATCH / config.patch_size
    summary = evaluation.summary()
    return {name: {"label": s["label"], "mace": round(s["mace"] * scale, 3),
                   "standard_error": round(s["standard_error"] * scale, 3),
                   "failure_rate": round(s["failure_rate"], 3),
                   "errors": [round(float(e) * scale, 3) for e in evaluation.pair_errors(name)]}
            for name, s in summary.items()}


def _paired(errors_a, errors_b):
    """``(mean of a - b, its standard error)`` over the pairs both were scored on, or ``None``."""
    if not errors_a or not errors_b or len(errors_a) != len(errors_b):
        return None
    difference = [a - b for a, b in zip(errors_a, errors_b)]
    return sum(difference) / len(difference), standard_error(difference)


def _verdict(name, other, paired):
    """One comparison in words: a difference within two standard errors is a tie."""
    if paired is None:
        return f"{name} against {other}: no per-pair errors stored, so no uncertainty"
    difference, error = paired
    if abs(difference) <= 2 * error:
        who = "a tie (within two standard errors)"
    else:
        who = f"{name if difference < 0 else other} ahead"
    return f"{name} - {other} = {difference:+.1f} ± {error:.1f} px (paired, one standard error): {who}"


@dataclass
class ExperimentResult:
    """Per run: its held-out curve and final error, and how long it took, on what.

    ``runs`` maps a run's name to a dict with ``steps``, ``mace`` (held-out MACE, px at
    128, after each evaluation), ``identity``, ``final``, ``ratio`` (final / identity),
    ``standard_error`` and ``errors`` (of the final MACE, over pairs, and per pair),
    ``seconds`` (training time), ``batch_size``, ``input_size``, ``baselines`` (the classical
    methods of :data:`BASELINE_METHODS` on the same pairs: ``label``, ``mace``,
    ``standard_error``, ``failure_rate``, ``errors``) and ``shipped`` (the shipped model on the
    same pairs, see :meth:`HeldOutCurve.score_shipped`; absent when not scored).
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
        """The classical methods on the same held-out pairs, one line per set of pairs, then each run
        against the best of them, paired pair by pair, with its standard error."""
        groups = {}
        for name, run in self.runs.items():
            key = json.dumps({m: b["mace"] for m, b in run["baselines"].items()}, sort_keys=True)
            groups.setdefault(key, (run["baselines"], []))[1].append(name)
        lines = []
        for baselines, names in groups.values():
            scores = ", ".join(f"{b['label']} {b['mace']:.1f}{_plus_minus(b)} px ({100 * b['failure_rate']:.0f}% failed)"
                               for b in baselines.values())
            where = "the same pairs" if len(groups) == 1 else f"the pairs of {', '.join(names)}"
            lines.append(f"classical methods on {where} (a failure counts as the identity): {scores}")
        for name, run in self.runs.items():
            best = min(run["baselines"].values(), key=lambda b: b["mace"])
            lines.append(_verdict(name, best["label"], _paired(run.get("errors"), best.get("errors"))))
        return "\n".join(lines)

    def shipped(self):
        """The shipped model alone and refined by ECC on each run's pairs, against the run."""
        lines = []
        for name, run in self.runs.items():
            shipped = run.get("shipped")
            if not shipped:
                lines.append(f"{name}: the shipped model was not scored on these pairs")
                continue
            alone, refined = shipped["methods"]["network"], shipped["methods"]["network+ecc"]
            lines.append(f"on the pairs of {name}: {shipped['label']}: alone {alone['mace']:.1f}{_plus_minus(alone)} "
                         f"px, refined by ECC {refined['mace']:.1f}{_plus_minus(refined)} px; {name} "
                         f"{run['final']:.1f}{_plus_minus(run)} px")
        return "\n".join(lines)

    def budget_points(self):
        """Where each model stands against its training budget, for :func:`hnet_keras.plots.plot_budget`.

        Returns:
            ``{"runs": {name: (pairs seen, final / identity)}, "shipped": {"network": ..., "network+ecc":
            ...}, "classical": {label: best classical MACE / identity}}``, every error as the share of
            the identity's error left on the run's own pairs (so results on other pairs compare).
            The shipped model and the classical method are taken on the first run's pairs.
        """
        points = {"runs": {}, "shipped": {}, "classical": {}}
        for name, run in self.runs.items():
            if run.get("batch_size"):
                points["runs"][name] = (run["steps"][-1] * run["batch_size"], run["ratio"])
        first = next(iter(self.runs.values()), None)
        if first is not None:
            best = min(first["baselines"].values(), key=lambda b: b["mace"])
            points["classical"][best["label"]] = best["mace"] / first["identity"]
            shipped = first.get("shipped")
            if shipped and shipped.get("steps") and shipped.get("batch_size"):
                seen = shipped["steps"] * shipped["batch_size"]
                points["shipped"] = {method: (seen, score["mace"] / first["identity"])
                                     for method, score in shipped["methods"].items()}
        return points

    def subset(self, names):
        """The same result with only the runs (and skipped runs) named, e.g. to print apart the one
        whose outcome depends on the machine (a download)."""
        names = list(names)
        return dataclasses.replace(self, runs={n: r for n, r in self.runs.items() if n in names},
                                   skipped={n: r for n, r in self.skipped.items() if n in names},
                                   models={n: m for n, m in self.models.items() if n in names})

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


def _plus_minus(score):
    """`` ± SE`` of a score that has one (older results have none)."""
    error = score.get("standard_error")
    return "" if error is None else f" ± {error:.1f}"


def _images(images):
    """Training and held-out images: a folder's train and test splits, or the embedded photos'."""
    if images is None:
        return None, embedded_photo_paths("test"), "embedded photos"
    parts = split_images(list_images(images))
    require_split_parts(images, parts, ("train", "test"))
    return parts["train"], parts["test"], f"{images}, test split"


def run_experiment(experiment, budget="live", *, folder, images=None, data=None, steps=None, pairs=256, seed=0,
                   progress=True, resume=True, protocol_pairs=5000, shipped=True):
    """Train every run of an experiment and score each on held-out pairs as it learns.

    Args:
        experiment: one of :data:`EXPERIMENTS`; ``budget``: one of :data:`BUDGETS`.
        folder: where the runs' checkpoints go (a run folder each).
        images: a folder of photos: training uses its ``train`` split, scoring its
            ``test`` split (:func:`hnet_keras.data.images.split_images`); default the embedded photos.
        data: a folder of archives to train on instead of on-the-fly pairs (the paper budget); a
            ``{rho}`` in it is replaced by each run's rho, so runs of different rho train on archives
            made for it (``"dataset/coco_pairs_rho{rho}"``).
        steps: training steps of every run instead of the budget's.
        pairs: held-out pairs per evaluation; ``seed``: seeds training and those pairs.
        protocol_pairs: with the ``paper`` budget, pairs of the paper's test protocol
            (640x480 images of the held-out photos, 256 px patches, rho 64) each model is
            finally scored on, with ``mace`` and ``identity`` of that protocol saved as
            ``paper_protocol``.
        progress: a progress bar per run.
        resume: continue runs already in ``folder`` (``False`` starts them over).
        shipped: also score the shipped model (alone and refined by ECC) on each run's pairs.

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
                               protocol_pairs, shipped)


def _run_experiment(experiment, budget, folder, images, data, steps, pairs, seed, progress, resume, protocol_pairs,
                    shipped):
    """The body of :func:`run_experiment`, with ``folder`` locked for ``experiment``."""
    train_images, test_images, source = _images(images)
    result = ExperimentResult(experiment, budget, pairs=pairs, hardware=hardware(), source=source)
    baselines, references = {}, {}  # by the runs' pair recipe: runs on the same pairs share their scores
    shipped_model = load_pretrained() if shipped else None  # read once, scored on each recipe's pairs
    for index, run in enumerate(experiment_runs(experiment, budget, steps)):
        curve = HeldOutCurve(run.preset, test_images, pairs, seed + 1)
        try:
            run_data = data.format(rho=run.preset.rho) if isinstance(data, str) and "{rho}" in data else data
            trained = train(
                run.preset, run=f"{experiment}_{index}", checkpoint_dir=folder, data=run_data, images=train_images,
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
            if shipped:
                references[run.preset.synthesis] = curve.score_shipped(*shipped_model)
        result.models[run.name] = trained.model
        result.runs[run.name] = {
            "steps": [int(row["iterations"]) for row in rows],
            "mace": [round(float(row["held_out_mace"]), 3) for row in rows],
            "identity": round(final.identity, 3),
            "final": round(final.network, 3),
            "ratio": round(final.ratio, 3),
            "standard_error": round(standard_error(final.errors), 3),
            "errors": [round(error, 3) for error in final.errors],
            "seconds": round(float(sum(row["seconds"] for row in rows)), 1),
            "batch_size": run.preset.batch_size,
            "input_size": final.input_size,
            "baselines": baselines[run.preset.synthesis],
            **({"shipped": references[run.preset.synthesis]} if shipped else {}),
        }
        if budget == "paper":
            test_set = load_test_set(images=test_images, protocol="paper", seed=seed + 2, count=protocol_pairs)
            scores = evaluate(test_set, methods=["identity", "network"], model=trained.model, network_rho=run.preset.rho,
                              progress=progress).summary()
            result.runs[run.name]["paper_protocol"] = {name: round(s["mace"], 3) for name, s in scores.items()}
    return result
