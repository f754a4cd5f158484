"""Matplotlib figures for the notebooks and the evaluation reports.

Every function builds a :class:`matplotlib.figure.Figure` with the object API (no
``pyplot`` state, so nothing leaks in loops and any backend, Agg included, works) and
returns it. Save one atomically with :func:`save_figure`; in a notebook, ``display(figure)``.

Colours: patch A's square in blue, the ground-truth quadrilateral in green, the
predicted one in red (dashed).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .fileio import replacing
from .geometry import corner_errors, mean_corner_error, offsets_to_homography, patch_corners, warp_points
from .training.history import read_history

__all__ = [
    "plot_pair",
    "plot_synthesis_steps",
    "plot_error_cdf",
    "plot_mace_bars",
    "plot_training_curves",
    "plot_corner_confidences",
    "plot_robustness",
    "plot_experiment",
    "plot_budget",
    "plot_refinements",
    "plot_accuracy_by_class",
    "plot_mosaic",
    "save_figure",
    "save_evaluation_figures",
]

SQUARE_COLOR = "tab:blue"
TRUE_COLOR = "tab:green"
PREDICTED_COLOR = "tab:red"
CORNER_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")


def save_figure(figure, path, dpi=100):
    """Save a matplotlib figure as PNG atomically; returns the path."""
    with replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return Path(path)


def _quad(ax, corners, color, label, style="-"):
    closed = np.vstack([corners, corners[:1]])
    (line,) = ax.plot(closed[:, 0], closed[:, 1], style, color=color, linewidth=2, label=label)
    return line


def _show_gray(ax, image, title=None):
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    if title:
        ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def _fit_view(ax, image_shape, *quads, margin=4):
    height, width = image_shape[:2]
    points = np.vstack([np.array([[0, 0], [width, height]], float)] + [np.asarray(q, float) for q in quads])
    ax.set_xlim(points[:, 0].min() - margin, points[:, 0].max() + margin)
    ax.set_ylim(points[:, 1].max() + margin, points[:, 1].min() - margin)


def plot_pair(patch_a, patch_b, offsets_true, offsets_pred=None, image=None, origin=None, title=None, figsize=None):
    """A pair with its ground-truth and predicted quadrilaterals, as in DeTone et al.'s figures.

    With ``image`` (the prepared image the pair was cut from) and ``origin`` (patch
    A's top-left corner in it): on the left the image with patch A's square, on the
    right the image with the ground-truth perturbed quadrilateral (the content of
    patch B) and the predicted one, ``square + offsets``.

    Without ``image``: on the left patch A with its square; on the right patch B
    with patch A's square as seen in B, mapped by the true ``H_ab`` (green) and by the
    predicted one (red); the view widens to show the parts that fall outside B.

    Args:
        patch_a, patch_b: (P, P) uint8.
        offsets_true, offsets_pred: (8,) offsets in pixels (``offsets_pred`` optional).

    Returns:
        a Figure with 2 axes: the left has 1 line, the right 1 or 2.
    """
    patch_a, patch_b = np.asarray(patch_a), np.asarray(patch_b)
    size = patch_a.shape[0]
    figure = Figure(figsize=figsize or (8, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    offsets_true = np.asarray(offsets_true, np.float64).reshape(4, 2)
    predicted = None if offsets_pred is None else np.asarray(offsets_pred, np.float64).reshape(4, 2)
    if image is not None:
        if origin is None:
            raise ValueError("plot_pair: give origin (patch A's top-left corner) with image")
        square = patch_corners(size, origin)
        _show_gray(left, image, "image and patch A")
        _quad(left, square, SQUARE_COLOR, "patch A")
        _show_gray(right, image, "where patch B comes from" + (": true, predicted" if predicted is not None else ""))
        quads = [square + offsets_true]
        _quad(right, square + offsets_true, TRUE_COLOR, "ground truth")
        if predicted is not None:
            quads.append(square + predicted)
            _quad(right, square + predicted, PREDICTED_COLOR, "predicted", "--")
        _fit_view(right, image.shape, *quads)
    else:
        square = patch_corners(size)
        _show_gray(left, patch_a, "patch A")
        _quad(left, square, SQUARE_COLOR, "patch A")
        _fit_view(left, patch_a.shape, square, margin=2)
        _show_gray(right, patch_b, "patch B: where A's square lands" + (", true and predicted" if predicted is not None else ""))
        true_quad = warp_points(offsets_to_homography(offsets_true.reshape(8), size), square)
        _quad(right, true_quad, TRUE_COLOR, "ground truth")
        quads = [true_quad]
        if predicted is not None:
            predicted_quad = warp_points(offsets_to_homography(predicted.reshape(8), size), square)
            quads.append(predicted_quad)
            _quad(right, predicted_quad, PREDICTED_COLOR, "predicted", "--")
        _fit_view(right, patch_b.shape, *quads)
    right.legend(loc="lower right", fontsize="small")
    if predicted is not None:
        error = mean_corner_error(offsets_true.reshape(8), predicted.reshape(8))
        figure.suptitle(f"{title + ': ' if title else ''}corner error {error:.2f} px")
    elif title:
        figure.suptitle(title)
    return figure


def plot_refinements(patch_a, patch_b, offsets_true, steps, figsize=None):
    """The iterative model's estimate after each refinement step, drawn on patch B.

    Args:
        patch_a, patch_b: (P, P) uint8, the pair at the size the offsets are in.
        offsets_true: (8,) true offsets, pixels.
        steps: (K, 8) offsets after each of the K steps (the model's ``(B, K, 8)`` output for one
            pair, times ``rho``, in pixels of the same patches).

    Returns:
        a Figure with 2 axes: patch A with its square; patch B with A's square mapped by the true
        ``H_ab`` (green) and by each step's estimate (dashed, light to dark), the titles giving each
        step's mean corner error.
    """
    patch_a, patch_b = np.asarray(patch_a), np.asarray(patch_b)
    steps = np.asarray(steps, np.float64).reshape(-1, 8)
    size = patch_a.shape[0]
    square = patch_corners(size)
    figure = Figure(figsize=figsize or (9, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    _show_gray(left, patch_a, "patch A")
    _quad(left, square, SQUARE_COLOR, "patch A")
    _show_gray(right, patch_b, "patch B: each step's estimate")
    true_quad = warp_points(offsets_to_homography(np.asarray(offsets_true, np.float64).reshape(8), size), square)
    quads = [true_quad]
    colors = matplotlib.colormaps["autumn_r"](np.linspace(0.25, 1.0, len(steps)))
    errors = corner_errors(np.asarray(offsets_true, np.float64).reshape(8), steps).mean(axis=1)
    for index, (offsets, color, error) in enumerate(zip(steps, colors, errors)):
        quad = warp_points(offsets_to_homography(offsets, size), square)
        quads.append(quad)
        _quad(right, quad, color, f"step {index + 1}: {error:.2f} px", "--")
    _quad(right, true_quad, TRUE_COLOR, "ground truth")
    _fit_view(right, patch_b.shape, *quads)
    right.legend(loc="lower right", fontsize="x-small")
    figure.suptitle(f"corner error by step: {' > '.join(f'{e:.1f}' for e in errors)} px")
    return figure


def plot_mosaic(image_a, image_b, h_ab, figsize=None):
    """A mosaic of two images by a homography: B drawn into A's frame on one canvas.

    ``h_ab`` maps a point of A to the point of B showing the same content (the toolkit's
    convention), so B is warped by ``inv(h_ab)``. The canvas holds all of A and all of warped B;
    where both cover it, the mean of the two is shown, so a wrong homography shows as doubled edges.

    Args:
        image_a, image_b: (H, W) uint8 grayscale images (sizes may differ).
        h_ab: (3, 3) homography.

    Returns:
        a Figure with 1 axes.
    """
    image_a, image_b = np.asarray(image_a), np.asarray(image_b)
    to_a = np.linalg.inv(np.asarray(h_ab, np.float64))
    height_b, width_b = image_b.shape[:2]
    height_a, width_a = image_a.shape[:2]
    corners = np.vstack([patch_corners((width_a, height_a)), warp_points(to_a, patch_corners((width_b, height_b)))])
    low = np.floor(corners.min(axis=0))
    high = np.ceil(corners.max(axis=0))
    size = high - low
    if not np.all(np.isfinite(size)) or size.prod() > 64e6:
        raise ValueError(f"plot_mosaic: the homography sends B {size.tolist()} px wide: not a mosaic to draw")
    shift = np.array([[1.0, 0.0, -low[0]], [0.0, 1.0, -low[1]], [0.0, 0.0, 1.0]])
    canvas = (int(size[0]), int(size[1]))
    warped_a = cv2.warpPerspective(image_a.astype(np.float32), shift, canvas)
    mask_a = cv2.warpPerspective(np.ones_like(image_a, np.float32), shift, canvas)
    warped_b = cv2.warpPerspective(image_b.astype(np.float32), shift @ to_a, canvas)
    mask_b = cv2.warpPerspective(np.ones_like(image_b, np.float32), shift @ to_a, canvas)
    weight = mask_a + mask_b
    mosaic = np.where(weight > 0, (warped_a * mask_a + warped_b * mask_b) / np.maximum(weight, 1e-6), 0)
    figure = Figure(figsize=figsize or (7, 7 * canvas[1] / max(canvas[0], 1) + 0.6), layout="constrained")
    ax = figure.subplots()
    _show_gray(ax, mosaic.astype(np.uint8), "mosaic: B drawn into A's frame")
    _quad(ax, patch_corners((width_a, height_a)) - low, SQUARE_COLOR, "image A")
    _quad(ax, warp_points(shift @ to_a, patch_corners((width_b, height_b))), TRUE_COLOR, "image B")
    ax.legend(loc="lower right", fontsize="small")
    return figure


def plot_synthesis_steps(image, pair, figsize=None):
    """The four steps of the recipe on one pair (notebook 01).

    Args:
        image: the prepared (H, W) uint8 image (:func:`hnet_keras.data.synthesis.prepare_image`).
        pair: the :class:`hnet_keras.data.synthesis.Pair` sampled from it.

    Returns:
        a Figure with 4 axes: the image with the square and the perturbed quadrilateral,
        the image warped by ``H_ab`` with the square (where patch B is cropped), patch A, patch B.
    """
    image = np.asarray(image)
    size = pair.patch_a.shape[0]
    original, perturbed = pair.corners(size)
    h_ab = cv2.getPerspectiveTransform(perturbed.astype(np.float32), original.astype(np.float32))
    warped = cv2.warpPerspective(image, h_ab, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR)
    figure = Figure(figsize=figsize or (12, 3.4), layout="constrained")
    axes = figure.subplots(1, 4)
    _show_gray(axes[0], image, "1-3. square and perturbed corners")
    _quad(axes[0], original, SQUARE_COLOR, "square")
    _quad(axes[0], perturbed, TRUE_COLOR, "perturbed")
    axes[0].legend(loc="lower right", fontsize="small")
    _show_gray(axes[1], warped, "4. image warped by H_ab")
    _quad(axes[1], original, SQUARE_COLOR, "square")
    _show_gray(axes[2], pair.patch_a, "patch A")
    _show_gray(axes[3], pair.patch_b, "patch B")
    return figure


def _errors_by_method(source):
    """Per method name, per-corner (or per-pair) errors and a label, from several inputs."""
    if hasattr(source, "errors") and hasattr(source, "labels"):
        return source.errors, dict(source.labels)
    if isinstance(source, dict):
        return {name: np.asarray(errors, np.float64) for name, errors in source.items()}, {}
    raise TypeError("expected an Evaluation or a dict of method name -> errors")


def plot_error_cdf(source, per="corner", max_error=None, figsize=None):
    """Cumulative distribution of the corner error, one line per method.

    Args:
        source: an :class:`hnet_keras.scoring.evaluation.Evaluation`, or a dict
            name -> (N, 4) corner errors (or any array of errors).
        per: ``"corner"`` (every corner error) or ``"pair"`` (each pair's mean corner error).
        max_error: right end of the x axis (default: the largest 99th percentile).

    Returns:
        a Figure with 1 axes and one line per method.
    """
    if per not in ("corner", "pair"):
        raise ValueError(f"per must be 'corner' or 'pair', got {per!r}")
    errors, labels = _errors_by_method(source)
    figure = Figure(figsize=figsize or (6, 4), layout="constrained")
    ax = figure.subplots()
    tops = []
    for name, values in errors.items():
        values = np.asarray(values, np.float64)
        values = values.mean(axis=-1) if per == "pair" and values.ndim > 1 else values
        values = np.sort(values.reshape(-1))
        fraction = np.arange(1, len(values) + 1) / len(values)
        ax.step(values, fraction, where="post", label=labels.get(name, name))
        tops.append(np.percentile(values, 99) if len(values) else 0)
    ax.set_xlim(0, max_error or max(max(tops, default=1.0), 1.0))
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("corner error (px)" if per == "corner" else "mean corner error per pair (px)")
    ax.set_ylabel("fraction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("cumulative distribution of the corner error")
    return figure


def plot_mace_bars(source, reference=None, figsize=None):
    """Bar chart of the mean average corner error per method.

    Args:
        source: an Evaluation, a dict name -> summary dict (with ``"mace"``), or a
            dict name -> MACE.
        reference: optional dict label -> MACE drawn as hatched grey bars (e.g.
            :data:`hnet_keras.scoring.evaluation.PAPER_TABLE`).

    Returns:
        a Figure with 1 axes, one bar per method (plus one per reference value).
    """
    labels = {}
    if hasattr(source, "summary") and callable(source.summary):
        summary = source.summary()
        values = {name: s["mace"] for name, s in summary.items()}
        labels = {name: s.get("label", name) for name, s in summary.items()}
    elif isinstance(source, dict):
        values = {name: (v["mace"] if isinstance(v, dict) else float(v)) for name, v in source.items()}
        labels = {name: v.get("label", name) for name, v in source.items() if isinstance(v, dict)}
    else:
        raise TypeError("expected an Evaluation or a dict of method name -> MACE")
    names = [labels.get(n, n) for n in values]
    heights = list(values.values())
    colors = [f"C{i % 10}" for i in range(len(heights))]
    hatches = [""] * len(heights)
    for label, value in (reference or {}).items():
        names.append(f"{label} (paper)")
        heights.append(float(value))
        colors.append("lightgrey")
        hatches.append("//")
    figure = Figure(figsize=figsize or (max(5, 1.1 * len(names)), 4), layout="constrained")
    ax = figure.subplots()
    bars = ax.bar(range(len(names)), heights, color=colors)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.bar_label(bars, fmt="%.2f", fontsize="small")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("MACE (px)")
    ax.set_title("mean average corner error")
    ax.grid(axis="y", alpha=0.3)
    return figure


def plot_training_curves(history, figsize=None):
    """Training curves: one axes per metric (loss, mace, ...), training and validation together.

    The learning rate (``lr`` or ``learning_rate``) gets its own log-scale axes, last.

    Args:
        history: anything :func:`hnet_keras.training.history.read_history` reads (a dict of lists, a Keras
            ``History``, a run's history, a CSV or JSON path, a run folder).

    Returns:
        a Figure with one axes per metric and one line per series.
    """
    history = read_history(history)
    groups = {}
    for key in history:
        if key in ("epoch", "iterations"):
            continue
        base = key[4:] if key.startswith("val_") else key
        base = "learning rate" if base in ("lr", "learning_rate") else base
        groups.setdefault(base, []).append(key)
    order = sorted(groups, key=lambda b: (b == "learning rate", b != "loss", list(groups).index(b)))
    figure = Figure(figsize=figsize or (4.2 * len(order), 3.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(order)))
    for ax, base in zip(axes, order):
        for key in groups[base]:
            values = history[key]
            epochs = history.get("epoch", list(range(len(values))))
            if epochs and min(epochs) == 0:  # CSVLogger counts from 0, hnet_keras runs from 1
                epochs = [e + 1 for e in epochs]
            epochs = epochs[: len(values)]
            ax.plot(epochs, values, marker="o" if len(values) < 30 else None, markersize=3, label=key)
        if base == "learning rate":
            ax.set_yscale("log")
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return figure


def _experiment(source):
    """``runs`` and ``budget`` of an :class:`~hnet_keras.experiments.ExperimentResult` or of its JSON file."""
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8") as file:
            return json.load(file)
    return {"runs": source.runs, "budget": source.budget}


def plot_experiment(*sources, figsize=None):
    """Held-out MACE against training steps, one line a run, one axes an experiment result.

    Each run's identity error (zero offsets, on the same pairs) is a dashed line of its
    colour: a run below it has learnt something. The best classical method on the same pairs
    (ECC on these small patches) is a dotted black line: a run below it beats the classical
    methods. Errors are in px of a 128 px patch.

    Args:
        sources: :class:`~hnet_keras.experiments.ExperimentResult` objects or their JSON
            files (e.g. a notebook's live run and the committed longer run).
    """
    experiments = [_experiment(source) for source in sources]
    figure = Figure(figsize=figsize or (5.2 * len(experiments), 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(experiments)))
    for ax, experiment in zip(axes, experiments):
        for index, (name, run) in enumerate(experiment["runs"].items()):
            color = f"C{index % 10}"
            ax.plot(run["steps"], run["mace"], marker="o", markersize=3, color=color, label=name)
            ax.axhline(run["identity"], color=color, linestyle="--", linewidth=1, alpha=0.7)
        ax.plot([], [], "k--", linewidth=1, label="identity (zero offsets)")
        drawn = set()
        for run in experiment["runs"].values():
            best = min(run["baselines"].values(), key=lambda b: b["mace"])
            if best["mace"] not in drawn:
                ax.axhline(best["mace"], color="black", linestyle=":", linewidth=1.5,
                           label=f"{best['label']} (best classical)" if not drawn else None)
                drawn.add(best["mace"])
        minutes = max(run["seconds"] for run in experiment["runs"].values()) / 60
        title = {"live": "live run", "full": "longer CPU run", "gpu": "GPU run", "paper": "paper's recipe"}.get(experiment["budget"],
                                                                                            experiment["budget"])
        ax.set_title(f"{title}: {minutes:.1f} min a run", fontsize="medium")
        ax.set_xlabel("training steps")
        ax.set_ylabel("held-out MACE (px at 128 px)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return figure


def plot_budget(sources, reference=None, figsize=None):
    """Error against training budget: every run, the shipped model and the paper, on one scale.

    The scale is the share of the identity's error left (MACE / identity MACE, on each run's
    own pairs), so runs scored on different pairs, and the paper on its own test protocol,
    compare. The x axis is the pairs seen in training (steps x batch), logarithmic. The best
    classical method on each source's pairs is a dotted line of the source's colour.

    Args:
        sources: ``{label: result}``, each an :class:`~hnet_keras.experiments.ExperimentResult` (its
            :meth:`~hnet_keras.experiments.ExperimentResult.budget_points`), e.g. ``{"live": result,
            "longer CPU run": ExperimentResult.load(path)}``.
        reference: more points, ``{label: (pairs seen, MACE / identity)}``, drawn as black diamonds,
            e.g. :data:`hnet_keras.experiments.PAPER_BUDGET` (the paper's model).
    """
    figure = Figure(figsize=figsize or (6.4, 4.2), layout="constrained")
    ax = figure.subplots()
    markers = {"network": "*", "network+ecc": "P"}
    for index, (label, result) in enumerate(sources.items()):
        color = f"C{index % 10}"
        points = result.budget_points()
        for name, (seen, ratio) in points["runs"].items():
            ax.plot(seen, ratio, "o", color=color, markersize=7)
            ax.annotate(name, (seen, ratio), textcoords="offset points", xytext=(5, 4), fontsize="x-small")
        ax.plot([], [], "o", color=color, label=f"{label}: trained here")
        for method, (seen, ratio) in points["shipped"].items():
            ax.plot(seen, ratio, markers.get(method, "s"), color=color, markersize=11,
                    label=f"{label}: shipped model{' + ECC' if method == 'network+ecc' else ''}")
        for name, ratio in points["classical"].items():
            ax.axhline(ratio, color=color, linestyle=":", linewidth=1.5, label=f"{label}: {name}")
    for label, (seen, ratio) in (reference or {}).items():
        ax.plot(seen, ratio, "D", color="black", label=label)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="identity (zero offsets)")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("pairs seen in training (steps x batch)")
    ax.set_ylabel("MACE / identity's MACE (lower is better)")
    ax.set_title("error against training budget")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small", loc="upper right")
    return figure


def plot_accuracy_by_class(scores, key="score_3px", figsize=None):
    """Grouped bars: one group per class of pairs, one bar per method (e.g. acc@3 px).

    Args:
        scores: ``{class: {method: {key: value, ...}}}`` (e.g. the ``classes`` of
            ``benchmarks/bench_whole_images.py``'s JSON, or per class an Evaluation's summary).
        key: the figure drawn, a share in [0, 1].

    Returns:
        a Figure with 1 axes.
    """
    classes = list(scores)
    methods = list(dict.fromkeys(method for per_class in scores.values() for method in per_class))
    figure = Figure(figsize=figsize or (max(7, 0.22 * len(classes) * max(1, len(methods)) + 2), 4.6),
                    layout="constrained")
    ax = figure.subplots()
    width = 0.8 / max(1, len(methods))
    for index, method in enumerate(methods):
        values = [scores[c].get(method, {}).get(key, np.nan) for c in classes]
        ax.bar(np.arange(len(classes)) + (index - (len(methods) - 1) / 2) * width, values, width, label=method,
               color=f"C{index % 10}")
    ax.set_xticks(range(len(classes)), [c.replace("_", " ") for c in classes])
    ax.set_ylim(0, 1.05)
    threshold = key.replace("score_", "").replace("px", " px")
    ax.set_ylabel(f"share of pairs within {threshold}")
    ax.set_title(f"accuracy at {threshold}, by class of pairs")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="x-small", ncols=min(len(methods), 4), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return figure


def plot_corner_confidences(probabilities, offsets_true=None, *, rho, kind="bars", figsize=None):
    """Classification HomographyNet's confidences for each corner coordinate.

    Args:
        probabilities: (8, B) per-coordinate probabilities over B bins (21 in the
            paper), in the offsets order ``x_tl, y_tl, ..., x_bl, y_bl``; also
            accepted as (4, 2, B) or flattened (8 * B,).
        offsets_true: optional (8,) true offsets in pixels, marked on the plot.
        rho: the bins span ``[-rho, rho]``; their centres are ``linspace(-rho, rho, B)``.
        kind: ``"bars"`` (8 bar charts, 2 rows x 4 corners) or ``"matrix"`` (the 8 x B
            matrix as an image, with a colour bar).

    Returns:
        a Figure: 8 axes for ``bars`` (one vertical line each when ``offsets_true`` is
        given), 2 for ``matrix`` (the image and its colour bar).
    """
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.size % 8:
        raise ValueError(f"probabilities must hold 8 x bins values, got shape {probabilities.shape}")
    probabilities = probabilities.reshape(8, -1)
    bins = probabilities.shape[1]
    centres = np.linspace(-rho, rho, bins)
    names = [f"{c} {axis}" for c in ("TL", "TR", "BR", "BL") for axis in ("x", "y")]
    if kind == "bars":
        figure = Figure(figsize=figsize or (12, 5), layout="constrained")
        axes = figure.subplots(2, 4, sharey=True)
        width = 2 * rho / max(bins - 1, 1) * 0.9
        for k in range(8):
            corner, axis = divmod(k, 2)
            ax = axes[axis, corner]
            ax.bar(centres, probabilities[k], width=width, color="C0")
            if offsets_true is not None:
                ax.axvline(float(np.asarray(offsets_true).reshape(8)[k]), color=TRUE_COLOR, linewidth=2)
            ax.set_title(names[k], fontsize="small")
            ax.set_xlim(-rho - width, rho + width)
        for ax in axes[1]:
            ax.set_xlabel("offset (px)")
        for ax in axes[:, 0]:
            ax.set_ylabel("probability")
        return figure
    if kind == "matrix":
        figure = Figure(figsize=figsize or (8, 3.6), layout="constrained")
        ax = figure.subplots()
        step = 2 * rho / max(bins - 1, 1)
        shown = ax.imshow(
            probabilities,
            aspect="auto",
            cmap="viridis",
            vmin=0,
            extent=(-rho - step / 2, rho + step / 2, 7.5, -0.5),
            interpolation="nearest",
        )
        if offsets_true is not None:
            ax.scatter(np.asarray(offsets_true, float).reshape(8), np.arange(8), marker="x", color="red",
                       label="ground truth")
            ax.legend(fontsize="small", loc="upper right")
        ax.set_yticks(range(8), names)
        ax.set_xlabel("offset (px)")
        ax.set_title("confidence per corner coordinate")
        figure.colorbar(shown, ax=ax, label="probability")
        return figure
    raise ValueError(f"kind must be 'bars' or 'matrix', got {kind!r}")


def plot_robustness(report, metric="mace", figsize=None):
    """MACE (or failure rate) against the perturbation level, one axes per perturbation.

    Args:
        report: the dict from :func:`hnet_keras.scoring.robustness.robustness_sweep`.
        metric: ``"mace"`` or ``"failure_rate"``.

    Returns:
        a Figure with one axes per perturbation and one line per method in each.
    """
    perturbations = report["perturbations"]
    labels = report.get("labels", {})
    columns = min(3, len(perturbations))
    rows = -(-len(perturbations) // columns)
    figure = Figure(figsize=figsize or (3.8 * columns + 2.2, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (kind, entry) in zip(axes, perturbations.items()):
        levels = entry["levels"]
        for name, values in entry[metric].items():
            # The identity is the reference every method must beat: a dashed black line.
            style = {"color": "k", "linestyle": "--", "linewidth": 1} if name == "identity" else {"marker": "o"}
            ax.plot(levels, values, label=labels.get(name, name), **style)
        ax.set_title(kind)
        ax.set_xlabel(entry.get("unit", "level"))
        ax.set_ylabel("MACE (px)" if metric == "mace" else metric.replace("_", " "))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in axes[len(perturbations):]:
        ax.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="outside right upper", fontsize="small")
    return figure


def save_evaluation_figures(result, folder, examples=4):
    """Save an evaluation's error CDF, MACE bars and a few example pairs as PNGs; returns their paths.

    Args:
        result: an :class:`hnet_keras.scoring.evaluation.Evaluation`; the examples need its pairs
            and predictions (synthetic pairs) and show the network, else the best method.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        save_figure(plot_error_cdf(result), folder / "error_cdf.png"),
        save_figure(plot_mace_bars(result), folder / "mace_bars.png"),
    ]
    if result.pairs is not None and result.predictions:
        summary = result.summary()
        shown = "network" if "network" in result.predictions else min(result.predictions, key=lambda n: summary[n]["mace"])
        for i in range(min(examples, len(result.pairs))):
            figure = plot_pair(result.pairs[i, :, :, 0], result.pairs[i, :, :, 1], result.offsets[i],
                               result.predictions[shown][i], title=f"pair {i}: {result.labels.get(shown, shown)}")
            paths.append(save_figure(figure, folder / f"example_{i}.png"))
    return paths
