"""Evaluate HomographyNet and the OpenCV baselines on the same test pairs.

Two test protocols (:data:`PROTOCOLS`):

* ``train`` (the default): the training recipe, 320x240 images, 128 px patches, rho 32.
* ``paper``: DeTone et al.'s test protocol, 640x480 images, 256 px patches, rho 64.
  The network sees each pair downsampled to its input and its offsets are scaled back
  (:func:`hnet_keras.estimators.predict.predict_offsets`); its outputs are de-normalized with its
  *training* rho (the checkpoint's), not with the protocol's 64. The baselines run on
  the full 256 px patches.

DeTone et al. report the mean average corner error (MACE, pixels) on this protocol
(:data:`PAPER_TABLE`): HomographyNet regression 9.2, ORB + RANSAC 11.7,
HomographyNet classification 24.1, identity 49.1.

:class:`Evaluation` is the one result type of every evaluation (:func:`evaluate`,
:func:`hnet_keras.scoring.real_pairs.evaluate_real_pairs`, each level of
:func:`hnet_keras.scoring.robustness.robustness_sweep`): per method, the per-pair errors,
failure flags and times, summarized as ``mace`` (mean corner error), ``median`` and
``p90`` (of the per-pair mean corner error), ``failure_rate`` (pairs where the method
fell back to the identity; their identity error is included above, as in the paper),
``ms_per_pair`` and, with thresholds, ``score_<t>px`` (fraction of pairs within ``t`` px).
:func:`format_table` is the one text-table writer.

``python -m hnet_keras evaluate`` runs it from the command line.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..data.archive import ArchiveError, list_archives, read_archive
from ..data.images import (
    embedded_photo_paths,
    list_images,
    require_split_parts,
    split_images,
)
from ..data.synthesis import PAPER_TEST_PROTOCOL, REPORT_PATCH, TRAIN_PROTOCOL, load_prepared_images, synthesize_pairs
from ..estimators.methods import NetworkMethod, resolve_methods
from ..fileio import atomic_write_json, atomic_write_text
from ..geometry import corner_errors

__all__ = [
    "PROTOCOLS",
    "PAPER_TABLE",
    "DEFAULT_PAIRS",
    "PairSet",
    "Evaluation",
    "load_test_set",
    "evaluate",
    "format_table",
    "HeldOutError",
    "held_out_error",
    "standard_error",
]

PROTOCOLS = {"train": TRAIN_PROTOCOL, "paper": PAPER_TEST_PROTOCOL}
"""Named test protocols: ``train`` (320x240, 128 px, rho 32) and ``paper`` (640x480, 256 px, rho 64)."""

PAPER_TABLE = {
    "HomographyNet (regression)": 9.2,
    "ORB + RANSAC": 11.7,
    "HomographyNet (classification)": 24.1,
    "identity": 49.1,
}
"""MACE in pixels reported by DeTone et al. (2016) on the ``paper`` protocol."""

DEFAULT_PAIRS = 500
"""Pairs synthesized (or read from archives) when no count is given."""


# --- test sets ----------------------------------------------------------------------------
@dataclass
class PairSet:
    """Pairs to evaluate on.

    Attributes:
        pairs: (N, P, P, 2) uint8.
        offsets: (N, 8) true offsets in pixels.
        protocol: the protocol's name, or ``None`` for archives read from disk.
        seed: the synthesis seed (``None`` for archives).
        source: where the pairs come from, for the report.
    """

    pairs: np.ndarray
    offsets: np.ndarray
    protocol: str | None = None
    seed: int | None = None
    source: str = ""


def _protocol(protocol):
    if protocol is None:
        return None, None
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose from {sorted(PROTOCOLS)}")
        return protocol, PROTOCOLS[protocol]
    for name, config in PROTOCOLS.items():
        if config == protocol:
            return name, config
    return "custom", protocol


def load_test_set(data=None, images=None, protocol="train", seed=0, count=DEFAULT_PAIRS, split=None):
    """The pairs an evaluation runs on, as a :class:`PairSet`.

    Args:
        data: a folder of ``.npz`` archives (or one archive) in the archive format,
            from :mod:`hnet_keras.data.generate` or any tool writing the same format; the
            first ``count`` pairs in file order are used (``count`` ``None`` or 0: all).
        images: a folder (or list) of images to synthesize a seeded test set from,
            with the protocol's :class:`~hnet_keras.data.synthesis.SynthesisConfig`.
        protocol: ``"train"``, ``"paper"`` or a ``SynthesisConfig``.
        seed: seed of the synthesis.
        count: number of pairs.
        split: with a folder of ``images``, only its ``"train"``, ``"validation"`` or
            ``"test"`` part (:func:`hnet_keras.data.images.split_images`), so a model trained on
            the folder is tested on photos it never saw.

    Without ``data`` or ``images`` the pairs are synthesized from the hold-out of
    the embedded photos (:func:`hnet_keras.data.images.embedded_photo_paths` ``("test")``).
    """
    if data is not None and images is not None:
        raise ValueError("give either data (archives) or images, not both")
    if data is not None:
        wanted = None if not count else int(count)
        parts_images, parts_offsets, total = [], [], 0
        for path in list_archives(data):
            archive_images, archive_offsets = read_archive(path)
            if parts_images and archive_images.shape[1:] != parts_images[0].shape[1:]:
                raise ValueError(
                    f"{path}: patches of shape {archive_images.shape[1:]} differ from the earlier "
                    f"archives' {parts_images[0].shape[1:]}"
                )
            take = len(archive_images) if wanted is None else min(len(archive_images), wanted - total)
            parts_images.append(archive_images[:take])
            parts_offsets.append(archive_offsets[:take])
            total += take
            if wanted is not None and total >= wanted:
                break
        if not total:
            raise ArchiveError(f"{data}: the archives hold no pairs to evaluate on")
        return PairSet(np.concatenate(parts_images), np.concatenate(parts_offsets), None, None, f"archives {data}")
    name, config = _protocol(protocol)
    count = DEFAULT_PAIRS if not count else int(count)
    source = images if images is not None else embedded_photo_paths("test")
    label = f"images {images}" if images is not None else "embedded photos (test hold-out)"
    if split is not None:
        if images is None:
            raise ValueError("split selects a part of a folder of images: give images too")
        parts = split_images(list_images(images))
        if split not in parts:
            raise ValueError(f"split must be one of {', '.join(parts)}, got {split!r}")
        require_split_parts(images, parts, (split,))
        source = parts[split]
        label = f"images {images} ({split} split, {len(source)} files)"
    pairs, offsets = synthesize_pairs(count, source, config=config, seed=seed)
    return PairSet(pairs, offsets, name, seed, label)


# --- results --------------------------------------------------------------------------------
def format_table(header, columns, rows, title=None, label_width=26, cell_width=9):
    """A text table: an optional title, a header, a rule, then one row per ``(label, cells)``.

    Labels are never truncated: the first column is as wide as the longest label (at
    least ``label_width``); cells are strings right-aligned in ``cell_width`` characters.
    """
    width = max([label_width, len(header)] + [len(label) for label, _ in rows])
    head = f"{header:<{width}}" + "".join(f"{column:>{cell_width}}" for column in columns)
    lines = ([title] if title else []) + [head, "-" * len(head)]
    lines += [f"{label:<{width}}" + "".join(f"{cell:>{cell_width}}" for cell in cells) for label, cells in rows]
    return "\n".join(lines)


@dataclass
class Evaluation:
    """Per-pair results of every method on one set of pairs.

    Attributes:
        errors: per method name, (N, 4) corner errors or (N,) mean corner errors, in pixels.
        failed, ms: per method name, (N,) failure flags and milliseconds.
        labels: per method name, a readable label.
        failure_reasons: per method name, a dict reason -> count.
        predictions: per method name, (N, 8) estimated offsets (synthetic pairs).
        offsets: (N, 8) true offsets (synthetic pairs), else ``None``.
        names: the pairs' names (real pairs), else ``None``.
        thresholds: pixel thresholds of the ``score_<t>px`` figures.
        context: where the pairs came from (protocol, seed, source, network_rho...),
            reported in the JSON.
        title: the table's first line.
        pairs: the (N, P, P, 2) pairs, kept for the example figures.
        choices: per method name that reports one (the whole-image pipelines), the candidate it
            kept on each pair.
    """

    errors: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    ms: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    failure_reasons: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    offsets: np.ndarray | None = None
    names: list | None = None
    thresholds: tuple = ()
    context: dict = field(default_factory=dict)
    title: str = ""
    pairs: np.ndarray | None = field(default=None, repr=False)
    choices: dict = field(default_factory=dict)

    @property
    def methods(self):
        return list(self.errors)

    def add(self, method, errors, failed, ms, reasons=(), predictions=None, choices=None):
        """Record one method's per-pair results; ``reasons`` are its per-pair failure reasons
        (``None`` where it did not fail); ``choices``, the candidate a pipeline kept on each pair
        (written in the CSV's ``chosen`` column)."""
        if choices is not None:
            self.choices[method.name] = list(choices)
        self.errors[method.name] = np.asarray(errors, np.float64)
        self.failed[method.name] = np.asarray(failed, bool)
        self.ms[method.name] = np.asarray(ms, np.float64)
        self.labels[method.name] = method.description
        self.failure_reasons[method.name] = dict(Counter(reason for reason in reasons if reason is not None))
        if predictions is not None:
            self.predictions[method.name] = np.asarray(predictions, np.float64)

    def pair_errors(self, name):
        """(N,) each pair's mean corner error of method ``name``, px (the mean of its 4 corners on
        synthetic pairs; real pairs store it as such)."""
        errors = self.errors[name]
        return errors.mean(axis=-1) if errors.ndim > 1 else errors

    def summary(self):
        """Per method: label, mace, standard_error (of the mean, over pairs), median, p90, score_<t>px,
        failures, failure_rate, ms_per_pair, failure_reasons."""
        result = {}
        for name in self.errors:
            per_pair = self.pair_errors(name)
            count = len(per_pair)
            nan = float("nan")
            figures = {
                "label": self.labels.get(name, name),
                "mace": float(per_pair.mean()) if count else nan,
                "standard_error": standard_error(per_pair),
                "median": float(np.median(per_pair)) if count else nan,
                "p90": float(np.percentile(per_pair, 90)) if count else nan,
            }
            figures.update({f"score_{t:g}px": float(np.mean(per_pair <= t)) if count else nan for t in self.thresholds})
            figures.update({
                "failures": int(self.failed[name].sum()),
                "failure_rate": float(self.failed[name].mean()) if count else 0.0,
                "ms_per_pair": float(np.mean(self.ms[name])) if count else nan,
                "failure_reasons": dict(self.failure_reasons.get(name, {})),
            })
            result[name] = figures
        return result

    def to_dict(self):
        """The JSON report: the context, ``pairs``, ``thresholds`` and ``methods`` (name -> summary)."""
        report = {**self.context, "pairs": len(next(iter(self.errors.values()), ()))}
        if self.thresholds:
            report["thresholds"] = list(self.thresholds)
        report["methods"] = self.summary()
        return report

    def table(self):
        """A readable text table of the summary, one method per row (``± SE``: the standard error
        of its MACE over the pairs)."""
        scores = [f"score_{t:g}px" for t in self.thresholds]
        rows = [
            (s["label"], [f"{s['mace']:.2f}", f"{s['standard_error']:.2f}", f"{s['median']:.2f}", f"{s['p90']:.2f}"]
             + [f"{s[k]:.3f}" for k in scores] + [f"{100 * s['failure_rate']:.1f}", f"{s['ms_per_pair']:.2f}"])
            for s in self.summary().values()
        ]
        columns = ["MACE", "± SE", "median", "p90"] + [f"@{t:g}px" for t in self.thresholds] + ["fail %", "ms/pair"]
        text = format_table("method", columns, rows, title=self.title)
        if self.context.get("protocol") == "paper":
            text += "\nDeTone et al. (2016), MACE on this protocol: " + ", ".join(
                f"{k} {v}" for k, v in PAPER_TABLE.items())
        return text

    def csv_text(self):
        """One row per pair and method: errors, flags, times, true and estimated offsets."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        corners = next(iter(self.errors.values())).ndim > 1 if self.errors else False
        writer.writerow(
            ["method", "index", "failed", "ms", "mace"]
            + (["err_tl", "err_tr", "err_br", "err_bl"] if corners else [])
            + ([f"true_{i}" for i in range(8)] if self.offsets is not None else [])
            + ([f"pred_{i}" for i in range(8)] if self.predictions else [])
            + (["chosen"] if self.choices else [])
        )
        for name, errors in self.errors.items():
            choices = self.choices.get(name) or [""] * len(errors)
            for i, error in enumerate(errors):
                writer.writerow(
                    [name, self.names[i] if self.names else i, int(self.failed[name][i]), f"{self.ms[name][i]:.4f}",
                     f"{np.mean(error):.6f}"]
                    + ([f"{e:.6f}" for e in error] if corners else [])
                    + ([f"{v:g}" for v in self.offsets[i]] if self.offsets is not None else [])
                    + ([f"{v:.6f}" for v in self.predictions[name][i]] if name in self.predictions else [])
                    + ([choices[i] or ""] if self.choices else [])
                )
        return buffer.getvalue()

    def write_json(self, path):
        """Write :meth:`to_dict` as JSON, atomically."""
        return atomic_write_json(path, self.to_dict())

    def write_csv(self, path):
        """Write :meth:`csv_text`, atomically."""
        return atomic_write_text(path, self.csv_text())


# --- the evaluation -------------------------------------------------------------------------
def evaluate(
    pairs=None,
    offsets=None,
    methods=None,
    *,
    model=None,
    data=None,
    images=None,
    protocol="train",
    seed=0,
    count=DEFAULT_PAIRS,
    network_rho=None,
    batch_size=64,
    progress=True,
):
    """Run every method on the same pairs and keep the per-pair results.

    Args:
        pairs: (N, P, P, 2) uint8 pairs, or a :class:`PairSet`; ``None`` loads one
            with :func:`load_test_set` (``data``, ``images``, ``protocol``, ``seed``, ``count``).
        offsets: (N, 8) true offsets (with an array of ``pairs``).
        methods: names from :data:`hnet_keras.estimators.methods.METHOD_CHOICES` or
            :class:`~hnet_keras.estimators.baselines.Method` objects. Default: every available
            baseline, plus ``network`` when ``model`` is given.
        model: a Keras model or checkpoint path, needed by ``network``.
        network_rho: the network's training rho (de-normalizes its outputs); needed with
            a model object, taken from a checkpoint path when ``None``.
        batch_size: the network's batch size.
        progress: show a tqdm bar per method.

    Returns:
        an :class:`Evaluation`; ``.summary()``, ``.table()``, ``.write_json()``, ``.write_csv()``.
    """
    if isinstance(pairs, PairSet) and offsets is not None:
        raise ValueError("evaluate: a PairSet carries its own offsets; give methods as methods=[...], "
                         "not as the second argument")
    if isinstance(offsets, (str, list, tuple)) and all(isinstance(o, str) for o in np.ravel(offsets)):
        raise ValueError(f"evaluate: {offsets!r} looks like method names, given where the offsets go; "
                         "pass them as methods=[...]")
    if pairs is None:
        test_set = load_test_set(data=data, images=images, protocol=protocol, seed=seed, count=count)
    elif isinstance(pairs, PairSet):
        test_set = pairs
    else:
        if offsets is None:
            raise ValueError("evaluate needs the true offsets of the pairs")
        test_set = PairSet(np.asarray(pairs), np.asarray(offsets), _protocol(protocol)[0], seed, "pairs given in memory")
    pairs, offsets = test_set.pairs, np.asarray(test_set.offsets, np.float64)
    if pairs.ndim != 4 or pairs.shape[-1] != 2 or pairs.shape[1] != pairs.shape[2] or pairs.dtype != np.uint8:
        raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
    if offsets.shape != (len(pairs), 8):
        raise ValueError(f"offsets must be ({len(pairs)}, 8), got {offsets.shape}")
    resolved = resolve_methods(methods, model, network_rho, batch_size)
    context = {"protocol": test_set.protocol, "seed": test_set.seed, "patch_size": int(pairs.shape[1]),
               "source": test_set.source}
    network = next((m for m in resolved if isinstance(m, NetworkMethod)), None)
    context["network_rho"] = network.rho if network is not None else None
    if test_set.protocol in PROTOCOLS:
        config = PROTOCOLS[test_set.protocol]
        context["protocol_config"] = {"image_size": list(config.image_size), "patch_size": config.patch_size,
                                      "rho": config.rho}
    if test_set.protocol == "paper":
        context["paper_table"] = dict(PAPER_TABLE)
    title = (f"{len(pairs)} pairs, protocol {test_set.protocol or 'archive'}, seed {test_set.seed}, "
             f"source: {test_set.source}")
    result = Evaluation(offsets=offsets, context=context, title=title, pairs=pairs)
    for method in resolved:
        with tqdm(total=len(pairs), desc=method.name, unit="pair", disable=not progress, leave=False) as bar:
            predicted, failed, ms, reasons = method.estimate_batch(pairs, progress=bar.update)
        result.add(method, corner_errors(offsets, predicted), failed, ms, reasons, predicted)
    return result


# --- held-out scoring during training ---------------------------------------------------
def standard_error(values):
    """The standard error of the mean of ``values``: ``std(values, ddof=1) / sqrt(n)`` (NaN under 2 values).

    For two methods scored on the same pairs, use it on the per-pair differences (a paired
    comparison): their errors move together from pair to pair, so the difference is much
    surer than either mean."""
    values = np.asarray(values, np.float64).ravel()
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


@dataclass(frozen=True)
class HeldOutError:
    """A model's MACE and the identity's (zero offsets) on the same held-out pairs.

    Both are in pixels of a :data:`REPORT_PATCH` (128 px) patch, whatever the
    patches the model was trained and run on, so that results of models of any input
    size compare: an error of 1 px on 32 px patches is reported as 4 px.
    """

    network: float
    identity: float
    pairs: int
    photos: int
    patch_size: int
    input_size: int
    errors: tuple = ()
    """The model's mean corner error of each pair, px at 128 (for standard errors and paired comparisons)."""

    @property
    def ratio(self):
        """``network / identity``: 1 is a model that learnt nothing, lower is better."""
        return self.network / self.identity

    def __str__(self):
        return (
            f"held-out MACE {self.network:.1f} px, identity {self.identity:.1f} px "
            f"(x{self.ratio:.2f}), in px of a {REPORT_PATCH} px patch; model input {self.input_size} px, "
            f"{self.pairs} pairs from {self.photos} photos"
        )


def held_out_error(model, preset, images=None, count=256, seed=1, decode="expectation", prepared=None):
    """Score a trained model against the identity on pairs from photos it never saw (through
    :func:`evaluate`, like every other score).

    Args:
        model: the trained model.
        preset: its :class:`~hnet_keras.training.run.Preset` (or anything with ``synthesis``,
            ``rho`` and ``input_size``): the pairs are synthesized as its training pairs.
        images: held-out images (paths or a folder); default the embedded photos'
            ``"test"`` split, which training never reads.
        count: pairs; ``seed``: their seed.
        decode: a classification model's decoding (:func:`~hnet_keras.estimators.predict.predict_offsets`).
        prepared: the held-out images already read and prepared for ``preset.synthesis``
            (:func:`~hnet_keras.data.synthesis.load_prepared_images`), instead of ``images``: for
            scoring many times on the same pairs without reading the photos each time.

    Returns:
        A :class:`HeldOutError`, in pixels of a 128 px patch.
    """
    config = preset.synthesis
    if prepared is None:
        prepared, _ = load_prepared_images(embedded_photo_paths("test") if images is None else images, config)
    pairs, offsets = synthesize_pairs(count, config=config, seed=seed, prepared=prepared)
    network = NetworkMethod(model, preset.rho, decode=decode)
    evaluation = evaluate(pairs, offsets, methods=["identity", network], progress=False)
    scores = evaluation.summary()
    scale = REPORT_PATCH / config.patch_size
    return HeldOutError(
        network=scores["network"]["mace"] * scale,
        identity=scores["identity"]["mace"] * scale,
        pairs=int(count),
        photos=len(prepared),
        patch_size=config.patch_size,
        input_size=int(preset.input_size),
        errors=tuple(float(e) * scale for e in evaluation.errors["network"].mean(axis=-1)),
    )
