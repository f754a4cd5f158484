"""Evaluate HomographyNet and the OpenCV baselines on the same test pairs.

Two test protocols (:data:`PROTOCOLS`):

* ``train`` (the default): the training recipe, 320x240 images, 128 px patches, rho 32.
* ``paper``: DeTone et al.'s test protocol, 640x480 images, 256 px patches, rho 64.
  The network sees each pair downsampled to its 128 px input and its offsets are
  doubled (:func:`hnet_keras.predict.predict_offsets` does the resizing and scaling);
  its outputs are de-normalized with its *training* rho (:data:`NETWORK_RHO`, 32),
  not with the protocol's 64. The baselines run on the full 256 px patches.

DeTone et al. report the mean average corner error (MACE, pixels) on this protocol
(:data:`PAPER_TABLE`): HomographyNet regression 9.2, ORB + RANSAC 11.7,
HomographyNet classification 24.1, identity 49.1.

For every method the evaluation keeps the per-pair corner errors
(:func:`hnet_keras.geometry.corner_errors`) and summarizes them as: ``mace`` (mean of
all corner errors), ``median`` and ``p90`` (of the per-pair mean corner error),
``failure_rate`` (pairs where the method fell back to the identity; their identity
error is included in the figures above, as in the paper) and ``ms_per_pair``.

``python -m hnet_keras evaluate`` runs it from the command line and
``python -m hnet_keras evaluate-pairs`` scores full-image homographies on real pairs
(see :mod:`hnet_keras.real_pairs`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .baselines import BASELINES, DEFAULT_BASELINES, Method, get_method
from .fileio import atomic_write_text, replacing
from .geometry import corner_errors
from .synthesis import PAPER_TEST_PROTOCOL, TRAIN_PROTOCOL

__all__ = [
    "PROTOCOLS",
    "NETWORK_RHO",
    "PAPER_TABLE",
    "DEFAULT_PAIRS",
    "TestSet",
    "Evaluation",
    "load_test_set",
    "evaluate",
    "summarize_errors",
    "atomic_write_text",
    "save_figure",
    "register_commands",
]

PROTOCOLS = {"train": TRAIN_PROTOCOL, "paper": PAPER_TEST_PROTOCOL}
"""Named test protocols: ``train`` (320x240, 128 px, rho 32) and ``paper`` (640x480, 256 px, rho 64)."""

NETWORK_RHO = 32
"""The rho the network was trained with; it de-normalizes the network's outputs under every protocol."""

PAPER_TABLE = {
    "HomographyNet (regression)": 9.2,
    "ORB + RANSAC": 11.7,
    "HomographyNet (classification)": 24.1,
    "identity": 49.1,
}
"""MACE in pixels reported by DeTone et al. (2016) on the ``paper`` protocol."""

DEFAULT_PAIRS = 500
"""Pairs synthesized (or read from archives) when no count is given."""

METHOD_CHOICES = tuple(BASELINES) + ("network",)


# --- test sets ----------------------------------------------------------------------------
@dataclass
class TestSet:
    """Pairs to evaluate on.

    Attributes:
        pairs: (N, P, P, 2) uint8.
        offsets: (N, 8) true offsets in pixels.
        protocol: the protocol's name, or ``None`` for archives read from disk.
        seed: the synthesis seed (``None`` for archives).
        source: where the pairs come from, for the report.
    """

    __test__ = False  # not a pytest class

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
    """The pairs an evaluation runs on.

    Args:
        data: a folder of ``.npz`` archives (or one archive) in the archive format,
            from :mod:`hnet_keras.generate` or any tool writing the same format; the
            first ``count`` pairs in file order are used (``count`` ``None`` or 0: all).
        images: a folder (or list) of images to synthesize a seeded test set from,
            with the protocol's :class:`~hnet_keras.synthesis.SynthesisConfig`.
        protocol: ``"train"``, ``"paper"`` or a ``SynthesisConfig``.
        seed: seed of the synthesis.
        count: number of pairs.
        split: with a folder of ``images``, only its ``"train"``, ``"validation"`` or
            ``"test"`` part (:func:`hnet_keras.images.split_images`), so a model trained on
            the folder is tested on photos it never saw.

    Without ``data`` or ``images`` the pairs are synthesized from the hold-out of
    the embedded photos (:func:`hnet_keras.images.embedded_photo_paths` ``("test")``).
    """
    if data is not None and images is not None:
        raise ValueError("give either data (archives) or images, not both")
    if data is not None:
        from .archive import ArchiveError, list_archives, read_archive

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
        return TestSet(
            np.concatenate(parts_images), np.concatenate(parts_offsets), None, None, f"archives {data}"
        )
    name, config = _protocol(protocol)
    count = DEFAULT_PAIRS if not count else int(count)
    from .images import embedded_photo_paths
    from .loaders import synthesize_pairs

    source = images if images is not None else embedded_photo_paths("test")
    label = f"images {images}" if images is not None else "embedded photos (test hold-out)"
    if split is not None:
        from .images import list_images, require_split_parts, split_images

        if images is None:
            raise ValueError("split selects a part of a folder of images: give images too")
        parts = split_images(list_images(images))
        if split not in parts:
            raise ValueError(f"split must be one of {', '.join(parts)}, got {split!r}")
        require_split_parts(images, parts, (split,))
        source = parts[split]
        label = f"images {images} ({split} split, {len(source)} files)"
    pairs, offsets = synthesize_pairs(count, source, config=config, seed=seed)
    return TestSet(pairs, offsets, name, seed, label)


# --- results --------------------------------------------------------------------------------
def summarize_errors(errors, failed=None, ms=None):
    """Summary figures of (N, 4) corner errors: mace, median, p90, failures, failure_rate, ms_per_pair."""
    errors = np.asarray(errors, np.float64)
    per_pair = errors.mean(axis=-1)
    count = len(per_pair)
    failed = np.zeros(count, bool) if failed is None else np.asarray(failed, bool)
    summary = {
        "mace": float(errors.mean()) if count else float("nan"),
        "median": float(np.median(per_pair)) if count else float("nan"),
        "p90": float(np.percentile(per_pair, 90)) if count else float("nan"),
        "failures": int(failed.sum()),
        "failure_rate": float(failed.mean()) if count else 0.0,
    }
    if ms is not None:
        summary["ms_per_pair"] = float(np.mean(ms)) if count else float("nan")
    return summary


@dataclass
class Evaluation:
    """Per-pair results of every method on one test set.

    Attributes:
        offsets: (N, 8) true offsets.
        predictions, failed, ms: per method name, (N, 8) estimated offsets, (N,)
            failure flags and (N,) milliseconds.
        labels: per method name, a readable label.
        failure_reasons: per method name, a dict reason -> count.
        protocol, seed, source: where the pairs came from.
        network_rho: the rho that de-normalized the network's outputs.
        patch_size: the side of the patches.
        pairs: the (N, P, P, 2) pairs, kept for the example figures.
    """

    offsets: np.ndarray
    predictions: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    ms: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    failure_reasons: dict = field(default_factory=dict)
    protocol: str | None = None
    seed: int | None = None
    source: str = ""
    network_rho: int = NETWORK_RHO
    patch_size: int | None = None
    pairs: np.ndarray | None = field(default=None, repr=False)

    @property
    def methods(self):
        return list(self.predictions)

    @property
    def errors(self):
        """Per method, (N, 4) corner errors in pixels."""
        return {name: corner_errors(self.offsets, pred) for name, pred in self.predictions.items()}

    def summary(self):
        """Per method: mace, median, p90, failures, failure_rate, ms_per_pair, failure_reasons."""
        result = {}
        for name, errors in self.errors.items():
            figures = summarize_errors(errors, self.failed[name], self.ms[name])
            figures["label"] = self.labels.get(name, name)
            figures["failure_reasons"] = dict(self.failure_reasons.get(name, {}))
            result[name] = figures
        return result

    def to_dict(self):
        """The JSON report: ``methods`` (name -> summary) plus protocol, seed, pairs, source."""
        report = {
            "protocol": self.protocol,
            "seed": self.seed,
            "pairs": int(len(self.offsets)),
            "patch_size": self.patch_size,
            "source": self.source,
            "network_rho": self.network_rho,
            "methods": self.summary(),
        }
        if self.protocol in PROTOCOLS:
            config = PROTOCOLS[self.protocol]
            report["protocol_config"] = {
                "image_size": list(config.image_size),
                "patch_size": config.patch_size,
                "rho": config.rho,
            }
        if self.protocol == "paper":
            report["paper_table"] = dict(PAPER_TABLE)
        return report

    def table(self):
        """A readable text table of the summary, one method per row."""
        header = f"{'method':<26} {'MACE':>8} {'median':>8} {'p90':>8} {'fail %':>7} {'ms/pair':>8}"
        lines = [
            f"{len(self.offsets)} pairs, protocol {self.protocol or 'archive'}, seed {self.seed}, "
            f"source: {self.source}",
            header,
            "-" * len(header),
        ]
        for name, s in self.summary().items():
            lines.append(
                f"{s['label'][:26]:<26} {s['mace']:8.2f} {s['median']:8.2f} {s['p90']:8.2f} "
                f"{100 * s['failure_rate']:7.1f} {s['ms_per_pair']:8.2f}"
            )
        if self.protocol == "paper":
            lines.append("DeTone et al. (2016), MACE on this protocol: " + ", ".join(
                f"{k} {v}" for k, v in PAPER_TABLE.items()
            ))
        return "\n".join(lines)

    def csv_text(self):
        """One row per pair and method: errors, flags, times, true and estimated offsets."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["method", "index", "failed", "ms", "mace", "err_tl", "err_tr", "err_br", "err_bl"]
            + [f"true_{i}" for i in range(8)]
            + [f"pred_{i}" for i in range(8)]
        )
        for name, errors in self.errors.items():
            for i in range(len(self.offsets)):
                writer.writerow(
                    [name, i, int(self.failed[name][i]), f"{self.ms[name][i]:.4f}", f"{errors[i].mean():.6f}"]
                    + [f"{e:.6f}" for e in errors[i]]
                    + [f"{v:g}" for v in self.offsets[i]]
                    + [f"{v:.6f}" for v in self.predictions[name][i]]
                )
        return buffer.getvalue()

    def write_json(self, path):
        """Write :meth:`to_dict` as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def write_csv(self, path):
        """Write :meth:`csv_text`, atomically."""
        return atomic_write_text(path, self.csv_text())

    def write_figures(self, folder, examples=4):
        """Save the error CDF, the MACE bars and a few example pairs as PNGs; returns their paths."""
        from . import plots

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [
            save_figure(plots.plot_error_cdf(self), folder / "error_cdf.png"),
            save_figure(plots.plot_mace_bars(self), folder / "mace_bars.png"),
        ]
        if self.pairs is not None:
            summary = self.summary()
            shown = "network" if "network" in self.predictions else min(summary, key=lambda n: summary[n]["mace"])
            for i in range(min(examples, len(self.offsets))):
                figure = plots.plot_pair(
                    self.pairs[i, :, :, 0],
                    self.pairs[i, :, :, 1],
                    self.offsets[i],
                    self.predictions[shown][i],
                    title=f"pair {i}: {self.labels.get(shown, shown)}",
                )
                paths.append(save_figure(figure, folder / f"example_{i}.png"))
        return paths


def save_figure(figure, path, dpi=100):
    """Save a matplotlib figure as PNG atomically; returns the path."""
    with replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return Path(path)


# --- the evaluation -------------------------------------------------------------------------
def _resolve_methods(methods, model, network_rho, batch_size):
    if methods is None:
        methods = list(DEFAULT_BASELINES) + (["network"] if model is not None else [])
    if isinstance(methods, (str, Method)):
        methods = [methods]
    resolved = []
    for method in methods:
        resolved.append(get_method(method, model=model, rho=network_rho, batch_size=batch_size))
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"methods must have distinct names, got {names}")
    return resolved


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
    network_rho=NETWORK_RHO,
    batch_size=64,
    progress=True,
):
    """Run every method on the same pairs and keep the per-pair results.

    Args:
        pairs: (N, P, P, 2) uint8 pairs, or a :class:`TestSet`; ``None`` loads one
            with :func:`load_test_set` (``data``, ``images``, ``protocol``, ``seed``, ``count``).
        offsets: (N, 8) true offsets (with an array of ``pairs``).
        methods: names from :data:`hnet_keras.baselines.BASELINES` and ``"network"``,
            or :class:`~hnet_keras.baselines.Method` objects. Default: every available
            baseline, plus ``network`` when ``model`` is given.
        model: a Keras model or checkpoint path, needed by ``network``.
        network_rho: the network's training rho (de-normalizes its outputs).
        batch_size: the network's batch size.
        progress: show a tqdm bar per method.

    Returns:
        an :class:`Evaluation`; ``.summary()``, ``.table()``, ``.write_json()``, ``.write_csv()``.
    """
    if pairs is None:
        test_set = load_test_set(data=data, images=images, protocol=protocol, seed=seed, count=count)
    elif isinstance(pairs, TestSet):
        test_set = pairs
    else:
        if offsets is None:
            raise ValueError("evaluate needs the true offsets of the pairs")
        name, _ = _protocol(protocol) if protocol is not None else (None, None)
        test_set = TestSet(np.asarray(pairs), np.asarray(offsets), name, seed, "pairs given in memory")
    pairs, offsets = test_set.pairs, np.asarray(test_set.offsets)
    if pairs.ndim != 4 or pairs.shape[-1] != 2 or pairs.shape[1] != pairs.shape[2] or pairs.dtype != np.uint8:
        raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
    if offsets.shape != (len(pairs), 8):
        raise ValueError(f"offsets must be ({len(pairs)}, 8), got {offsets.shape}")
    resolved = _resolve_methods(methods, model, network_rho, batch_size)

    from tqdm.auto import tqdm

    result = Evaluation(
        offsets=offsets.astype(np.float64),
        protocol=test_set.protocol,
        seed=test_set.seed,
        source=test_set.source,
        network_rho=network_rho,
        patch_size=int(pairs.shape[1]),
        pairs=pairs,
    )
    for method in resolved:
        with tqdm(total=len(pairs), desc=method.name, unit="pair", disable=not progress, leave=False) as bar:
            before = dict(method.failures)
            predicted, failed, ms = method.estimate_batch(pairs, progress=bar.update)
        result.predictions[method.name] = np.asarray(predicted, np.float64)
        result.failed[method.name] = np.asarray(failed, bool)
        result.ms[method.name] = np.asarray(ms, np.float64)
        result.labels[method.name] = method.description
        result.failure_reasons[method.name] = {
            reason: count - before.get(reason, 0)
            for reason, count in method.failures.items()
            if count - before.get(reason, 0)
        }
    return result


# --- command line ---------------------------------------------------------------------------
def register_commands(subparsers):
    """``evaluate`` and ``evaluate-pairs``."""
    from .cli import HelpFormatter, non_negative_int, output_file, output_folder, positive_int

    parser = subparsers.add_parser(
        "evaluate",
        help="compare HomographyNet with the OpenCV baselines on synthetic test pairs",
        description="Mean corner error (MACE), median, p90, failure rate and speed of every method "
        "on the same pairs. The paper's protocol (DeTone et al. 2016: regression 9.2, "
        "ORB+RANSAC 11.7, classification 24.1, identity 49.1 px) is --protocol paper.",
        formatter_class=HelpFormatter,
    )
    _add_method_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", default=None,
                        help="folder of .npz archives (or one archive) to evaluate on")
    source.add_argument("--images", default=None,
                        help="folder of images to synthesize a seeded test set from "
                        "(without --data or --images: the embedded photos' test hold-out)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="train",
                        help="synthesis protocol: train (320x240, 128 px, rho 32) or "
                        "paper (640x480, 256 px, rho 64; the network sees pairs at 128 px)")
    parser.add_argument("--split", choices=("train", "validation", "test"), default=None,
                        help="with --images: use only this part of the folder's fixed split by file name "
                        "(default: every image)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthesized test set")
    parser.add_argument("--pairs", type=non_negative_int, default=DEFAULT_PAIRS,
                        help="pairs to synthesize, or the first N pairs of --data (0: all of --data)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="the network's batch size")
    parser.add_argument("--json", required=True, type=output_file, help="where to write the JSON summary")
    parser.add_argument("--csv", default=None, type=output_file,
                        help="where to write the per-pair CSV (default: the JSON path with .csv)")
    parser.add_argument("--figures", default=None, type=output_folder, help="folder for the PNG figures (CDF, MACE bars, examples)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=_run_evaluate)

    pairs_parser = subparsers.add_parser(
        "evaluate-pairs",
        help="score full-image homographies on real pairs (HPatches or Oxford-affine folders)",
        description="HPatches homography score: the fraction of pairs whose 4 image corners, warped by "
        "the estimated and the true homography, are on average within 1, 3 and 5 px.",
        formatter_class=HelpFormatter,
    )
    pairs_parser.add_argument("folder", metavar="DIR",
                              help="an HPatches sequence or Oxford-affine folder, or a folder of them")
    _add_method_arguments(pairs_parser)
    pairs_parser.add_argument("--max-side", type=non_negative_int, default=None,
                              help="downsize images so their longer side is at most this before the "
                              "baselines run, and scale the homography back (default: the module's "
                              "REAL_PAIRS_MAX_SIDE; 0 = full size)")
    pairs_parser.add_argument("--json", required=True, type=output_file, help="where to write the JSON scores")
    pairs_parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    pairs_parser.set_defaults(func=_run_evaluate_pairs)


def _add_method_arguments(parser):
    """``--methods``, ``--checkpoint`` and ``--network-rho``, shared by both commands."""
    parser.add_argument("--methods", nargs="+", choices=METHOD_CHOICES, default=None, metavar="METHOD",
                        help=f"methods to run, from {', '.join(METHOD_CHOICES)} (default: every available "
                        "baseline, plus network when a checkpoint is at hand)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint for the 'network' method: a .keras model, a run folder or a "
                        "described .weights.h5 (default: the shipped checkpoint)")
    parser.add_argument("--network-rho", type=int, default=None,
                        help="the rho the network was trained with (default: the checkpoint's own)")


def _methods_for(args):
    """The methods to run and, when the network is among them, ``(model, rho)``.

    Without ``--methods``, the network joins the baselines whenever a checkpoint is
    at hand: ``--checkpoint`` or the shipped one.
    """
    from .pretrained import load_checkpoint, shipped_checkpoint

    checkpoint = args.checkpoint
    if checkpoint is None and shipped_checkpoint().exists():
        checkpoint = shipped_checkpoint()
    methods = args.methods
    if methods is None:
        methods = list(DEFAULT_BASELINES) + (["network"] if checkpoint else [])
    if "network" not in methods:
        return methods, None, None
    if checkpoint is None:
        raise ValueError("the 'network' method needs --checkpoint PATH (no shipped checkpoint found)")
    model, rho = load_checkpoint(checkpoint)
    return methods, model, rho if args.network_rho is None else args.network_rho


def _run_evaluate(args):
    if args.pairs < 0 or (args.pairs == 0 and args.data is None):
        raise ValueError(f"--pairs must be positive (0 only with --data), got {args.pairs}")
    methods, model, network_rho = _methods_for(args)
    test_set = load_test_set(
        data=args.data, images=args.images, protocol=args.protocol, seed=args.seed, count=args.pairs,
        split=args.split,
    )
    result = evaluate(
        test_set,
        methods=methods,
        model=model,
        network_rho=network_rho or NETWORK_RHO,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(result.table())
    json_path = result.write_json(args.json)
    csv_path = result.write_csv(args.csv or Path(args.json).with_suffix(".csv"))
    print(f"wrote {json_path} and {csv_path}")
    if args.figures:
        paths = result.write_figures(args.figures)
        print(f"wrote {len(paths)} figures to {args.figures}")
    return 0


def _run_evaluate_pairs(args):
    from . import real_pairs

    methods, model, network_rho = _methods_for(args)
    pairs = real_pairs.load_real_pairs(args.folder)
    max_side = real_pairs.REAL_PAIRS_MAX_SIDE if args.max_side is None else args.max_side
    report = real_pairs.evaluate_real_pairs(
        pairs,
        methods=methods,
        model=model,
        max_side=max_side or None,
        network_rho=network_rho or NETWORK_RHO,
        progress=not args.no_progress,
    )
    print(real_pairs.format_scores(report))
    atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0
