import csv
import json

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from hnet_keras import plots
from hnet_keras.scoring.evaluation import PAPER_TABLE, evaluate, load_test_set
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.data.synthesis import TRAIN_PROTOCOL, prepare_image, sample_pair


@pytest.fixture(scope="module")
def image_and_pair():
    image = prepare_image(read_grayscale(embedded_photo_paths("test")[0])[0], TRAIN_PROTOCOL)
    return image, sample_pair(image, np.random.default_rng(0), TRAIN_PROTOCOL)


@pytest.fixture(scope="module")
def evaluation():
    return evaluate(load_test_set(seed=0, count=10), methods=["identity", "orb_ransac"], progress=False)


def _saved(figure, tmp_path, name="figure.png"):
    assert isinstance(figure, Figure)
    path = tmp_path / name
    figure.savefig(path)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 50 and image.shape[1] > 50
    return image


def test_plot_pair_on_patches(image_and_pair, tmp_path):
    _, pair = image_and_pair
    predicted = pair.offsets + 2.0
    figure = plots.plot_pair(pair.patch_a, pair.patch_b, pair.offsets, predicted, title="test")
    left, right = figure.axes
    assert len(left.lines) == 1 and len(right.lines) == 2
    # the ground-truth quadrilateral is A's square mapped into B by H_ab
    from hnet_keras.geometry import offsets_to_homography, patch_corners, warp_points

    expected = warp_points(offsets_to_homography(pair.offsets, 128), patch_corners(128))
    drawn = np.column_stack(right.lines[0].get_data())[:4]
    assert np.allclose(drawn, expected)
    assert "corner error 2.83 px" in figure.get_suptitle()
    _saved(figure, tmp_path)
    assert len(plots.plot_pair(pair.patch_a, pair.patch_b, pair.offsets).axes[1].lines) == 1


def test_plot_pair_on_the_image(image_and_pair, tmp_path):
    image, pair = image_and_pair
    figure = plots.plot_pair(pair.patch_a, pair.patch_b, pair.offsets, pair.offsets, image=image, origin=pair.origin)
    left, right = figure.axes
    assert len(left.lines) == 1 and len(right.lines) == 2
    original, perturbed = pair.corners()
    assert np.allclose(np.column_stack(right.lines[0].get_data())[:4], perturbed)
    assert np.allclose(np.column_stack(left.lines[0].get_data())[:4], original)
    _saved(figure, tmp_path)
    with pytest.raises(ValueError, match="origin"):
        plots.plot_pair(pair.patch_a, pair.patch_b, pair.offsets, image=image)


def test_plot_synthesis_steps(image_and_pair, tmp_path):
    image, pair = image_and_pair
    figure = plots.plot_synthesis_steps(image, pair)
    assert len(figure.axes) == 4
    assert [len(ax.lines) for ax in figure.axes] == [2, 1, 0, 0]
    # the warped image, cropped at the square, is patch B
    warped = figure.axes[1].images[0].get_array()
    x, y = pair.origin
    difference = np.asarray(warped)[y : y + 128, x : x + 128].astype(int) - pair.patch_b
    assert np.abs(difference).max() <= 2 and np.abs(difference).mean() < 0.1  # interpolation rounding
    _saved(figure, tmp_path)


def test_error_cdf_and_mace_bars(evaluation, tmp_path):
    figure = plots.plot_error_cdf(evaluation)
    (ax,) = figure.axes
    assert len(ax.lines) == 2
    xs, ys = ax.lines[0].get_data()
    assert ys[-1] == pytest.approx(1.0) and np.all(np.diff(xs) >= 0)
    _saved(figure, tmp_path, "cdf.png")
    per_pair = plots.plot_error_cdf({"a": np.arange(12.0).reshape(3, 4)}, per="pair")
    assert list(per_pair.axes[0].lines[0].get_data()[0]) == [1.5, 5.5, 9.5]

    bars = plots.plot_mace_bars(evaluation, reference=PAPER_TABLE)
    (ax,) = bars.axes
    assert len(ax.patches) == 2 + len(PAPER_TABLE)
    assert ax.patches[0].get_height() == pytest.approx(evaluation.summary()["identity"]["mace"])
    _saved(bars, tmp_path, "bars.png")
    assert len(plots.plot_mace_bars({"x": 1.0, "y": {"mace": 2.0}}).axes[0].patches) == 2


def test_training_curves_from_a_dict_and_a_csv(tmp_path):
    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.2, 2.5, 2.0], "mace": [20, 15, 12],
               "val_mace": [21, 17, 14], "lr": [1e-3, 1e-3, 1e-4]}
    figure = plots.plot_training_curves(history)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "mace", "learning rate"]
    assert [len(ax.lines) for ax in figure.axes] == [2, 2, 1]
    assert figure.axes[2].get_yscale() == "log"
    _saved(figure, tmp_path)
    path = tmp_path / "history.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "loss", "val_loss", "learning_rate"])
        for epoch in range(4):
            writer.writerow([epoch, 1.0 / (epoch + 1), 1.2 / (epoch + 1), 0.001])
    from_csv = plots.plot_training_curves(path)
    assert [len(ax.lines) for ax in from_csv.axes] == [2, 1]
    assert list(from_csv.axes[0].lines[0].get_data()[0]) == [1, 2, 3, 4]
    with pytest.raises(FileNotFoundError):
        plots.plot_training_curves(tmp_path / "missing.csv")
    # a run's history: one dict per epoch, epochs from 1, an iterations column that is no metric
    rows = [{"epoch": e, "iterations": 10 * e, "learning_rate": 0.005, "loss": 1.0 / e, "mace": 9.0 / e,
             "val_loss": 1.1 / e, "val_mace": 9.5 / e} for e in (1, 2, 3)]
    run = plots.plot_training_curves(rows)
    assert [ax.get_title() for ax in run.axes] == ["loss", "mace", "learning rate"]
    assert list(run.axes[1].lines[1].get_data()[0]) == [1, 2, 3]
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "history.json").write_text(json.dumps(rows))
    assert [len(ax.lines) for ax in plots.plot_training_curves(folder / "history.json").axes] == [2, 2, 1]


def test_corner_confidences(tmp_path):
    rng = np.random.default_rng(0)
    probabilities = rng.random((8, 21))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    offsets = rng.integers(-32, 33, 8)
    bars = plots.plot_corner_confidences(probabilities, offsets, rho=32, kind="bars")
    assert len(bars.axes) == 8
    assert all(len(ax.patches) == 21 and len(ax.lines) == 1 for ax in bars.axes)
    _saved(bars, tmp_path, "bars.png")
    matrix = plots.plot_corner_confidences(probabilities.reshape(-1), offsets, rho=32, kind="matrix")
    assert len(matrix.axes) == 2  # the matrix and its colour bar
    assert np.allclose(np.asarray(matrix.axes[0].images[0].get_array()), probabilities)
    _saved(matrix, tmp_path, "matrix.png")
    with pytest.raises(ValueError):
        plots.plot_corner_confidences(np.ones(10), rho=32)


def test_robustness_plot(tmp_path):
    report = {
        "labels": {"identity": "identity"},
        "perturbations": {
            "noise": {"levels": [0, 10], "unit": "sigma", "mace": {"identity": [25, 25], "sift": [1, 3]}},
            "blur": {"levels": [0, 2, 4], "unit": "px", "mace": {"identity": [25, 25, 25], "sift": [1, 2, 9]}},
        },
    }
    figure = plots.plot_robustness(report)
    assert len(figure.axes) == 2 and [len(ax.lines) for ax in figure.axes] == [2, 2]
    _saved(figure, tmp_path)


def test_refinement_steps_are_drawn_with_their_errors():
    from hnet_keras.plots import plot_refinements

    rng = np.random.default_rng(0)
    patch = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    true = np.array([4.0, -3, 2, 5, -6, 1, 3, 3])
    steps = np.stack([true * f for f in (0.0, 0.5, 0.9)])
    figure = plot_refinements(patch, patch, true, steps)
    right = figure.axes[1]
    labels = [line.get_label() for line in right.lines]
    # errors of each step: the mean corner length of what is left
    left_over = [np.sqrt(((true * (1 - f)).reshape(4, 2) ** 2).sum(axis=1)).mean() for f in (0.0, 0.5, 0.9)]
    assert labels == [f"step {i + 1}: {e:.2f} px" for i, e in enumerate(left_over)] + ["ground truth"]
    assert figure._suptitle.get_text().startswith("corner error by step: ")


def test_a_mosaic_puts_b_back_where_a_shows_it():
    from hnet_keras.plots import plot_mosaic

    rng = np.random.default_rng(1)
    image_a = (cv2.resize(rng.random((12, 16)).astype(np.float32), (160, 120)) * 255).astype(np.uint8)
    h_ab = np.array([[1.0, 0.0, -40.0], [0.0, 1.0, -10.0], [0.0, 0.0, 1.0]])  # B shows A shifted left and up
    image_b = cv2.warpPerspective(image_a, h_ab, (160, 120))
    figure = plot_mosaic(image_a, image_b, h_ab)
    mosaic = figure.axes[0].images[0].get_array()
    # B's frame lands at (40, 10) in A's: the canvas spans both, and where B shows A's content the
    # blend equals A (a pixel of border aside, lost to interpolation).
    assert mosaic.shape == (130, 200)
    assert np.abs(mosaic[12:118, 42:158].astype(int) - image_a[12:118, 42:158].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="not a mosaic"):
        plot_mosaic(image_a, image_b, np.array([[1e-9, 0, 0], [0, 1e-9, 0], [0, 0, 1.0]]))


def test_accuracy_by_class_draws_one_bar_per_method_and_class():
    scores = {"blur": {"sift": {"score_3px": 0.5}, "net": {"score_3px": 1.0}},
              "jpeg": {"sift": {"score_3px": 0.25}, "net": {"score_3px": 0.75}}}
    figure = plots.plot_accuracy_by_class(scores)
    bars = figure.axes[0].patches
    assert sorted(bar.get_height() for bar in bars) == [0.25, 0.5, 0.75, 1.0]
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["blur", "jpeg"]
