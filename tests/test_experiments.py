"""Experiments: the notebooks' runs at every budget, the held-out score on the 128 px scale,
the result file and figure, and the ``experiment`` command."""

import json
import re
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from hnet_keras import experiments
from hnet_keras.cli import main
from hnet_keras.scoring.evaluation import evaluate
from hnet_keras.experiments import (
    BASELINE_METHODS,
    BUDGETS,
    EXPERIMENTS,
    PAPER_BUDGET,
    ExperimentResult,
    experiment_runs,
    run_experiment,
)
from hnet_keras.nets.checkpoint import load_pretrained
from hnet_keras.geometry import mean_corner_error
from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.nets.targets import unreachable_bins
from hnet_keras.plots import plot_budget, plot_experiment
from hnet_keras.scoring.evaluation import held_out_error
from hnet_keras.data.synthesis import load_prepared_images, synthesize_pairs
from hnet_keras.training.presets import get_preset


def zero_model(size):
    """Predicts zero offsets: the identity."""
    model = keras.Sequential([keras.Input((size, size, 2)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8)])
    model.layers[-1].set_weights([np.zeros((2, 8), np.float32), np.zeros(8, np.float32)])
    return model


def test_held_out_error_is_reported_at_128_px():
    preset = get_preset("tiny")  # 32 px patches
    error = held_out_error(zero_model(32), preset, count=40, seed=3)
    _, offsets = synthesize_pairs(40, embedded_photo_paths("test"), preset.synthesis, seed=3)
    at_32 = mean_corner_error(offsets, np.zeros_like(offsets))
    assert error.identity == pytest.approx(4 * at_32) and error.network == pytest.approx(error.identity)
    assert error.ratio == pytest.approx(1.0)
    assert (error.pairs, error.photos, error.patch_size, error.input_size) == (40, 4, 32, 32)
    assert "in px of a 128 px patch; model input 32 px, 40 pairs from 4 photos" in str(error)


def test_every_experiment_builds_at_every_budget():
    for experiment in EXPERIMENTS:
        for budget in BUDGETS:
            runs = experiment_runs(experiment, budget)
            assert runs and len({run.name for run in runs}) == len(runs)
            for run in runs:
                if run.preset.kind == "classification":
                    scale = run.preset.input_size / (run.preset.patch_size or run.preset.input_size)
                    assert unreachable_bins(run.preset.rho, run.preset.bins, scale) == []
    with pytest.raises(ValueError, match="experiment must be one of"):
        experiment_runs("dropout")
    with pytest.raises(ValueError, match="budget must be one of"):
        experiment_runs("regression", "tpu")


def test_gpu_settings_are_the_papers_sizes_with_adamw():
    for experiment in EXPERIMENTS:
        for run in experiment_runs(experiment, "gpu"):
            preset = run.preset
            assert preset.iterations == 6000
            if experiment == "iterative":
                assert (preset.input_size, preset.patch_size, preset.rho) == (64, 128, 16)
                continue
            assert (preset.input_size, preset.batch_size, preset.optimizer) == (128, 64, "adamw")
            assert preset.width == 1.0 and preset.synthesis.patch_size == 128
    rhos = [run.preset.rho for run in experiment_runs("rho", "gpu")]
    assert rhos == [20, 32, 40]
    ablation = {(run.preset.dropout, run.preset.batchnorm) for run in experiment_runs("ablation", "gpu")}
    assert len(ablation) == 4


def test_paper_settings_are_the_papers_recipe():
    for experiment in ("regression", "classification", "ablation", "transfer"):
        for run in experiment_runs(experiment, "paper"):
            preset = run.preset
            assert (preset.input_size, preset.batch_size, preset.iterations) == (128, 64, 90_000)
            assert (preset.optimizer, preset.learning_rate, preset.momentum) == ("sgd", 0.005, 0.9)
            assert (preset.lr_drop_every, preset.lr_drop_factor, preset.image_size) == (30_000, 0.1, (320, 240))
    assert experiment_runs("regression", "paper")[0].preset.rho == 32
    assert experiment_runs("classification", "paper")[0].preset.bins == 21
    assert [run.preset.rho for run in experiment_runs("rho", "paper")] == [20, 32, 40]
    ablation = {run.name: (run.preset.dropout, run.preset.batchnorm) for run in experiment_runs("ablation", "paper")}
    assert sorted(ablation.values()) == [(False, False), (False, True), (True, False), (True, True)]
    assert experiment_runs("transfer", "paper")[0].preset.weights == "imagenet"
    # The live runs are a quarter of the paper's scale: rho 20/32/40 at 128 px is 5/8/10 at 32.
    assert [run.preset.rho for run in experiment_runs("rho", "live")] == [5, 8, 10]


@pytest.mark.slow
def test_run_experiment_records_a_curve_resumes_and_saves(tmp_path, monkeypatch):
    reads = []
    def counted(*args, **kwargs):
        reads.append(args)
        return load_prepared_images(*args, **kwargs)

    monkeypatch.setattr(experiments, "load_prepared_images", counted)
    result = run_experiment("regression", "live", folder=tmp_path / "runs", steps=16, pairs=8, progress=False)
    run = result.runs["regression"]
    assert run["steps"] == [2, 4, 6, 8, 10, 12, 14, 16] and len(run["mace"]) == 8
    assert len(reads) == 1  # the held-out photos are read once, not at each of the 8 evaluations
    assert run["identity"] > 0 and run["final"] == pytest.approx(run["mace"][-1], abs=1e-3)
    assert run["ratio"] == pytest.approx(run["final"] / run["identity"], abs=1e-3)
    assert run["seconds"] > 0 and run["input_size"] == 32
    assert (result.pairs, result.photos) == (8, 4)
    assert result.describe().startswith("8 held-out pairs from 4 photos (embedded photos)")
    assert "CPU" in result.timing() and result.timing().startswith("1 run(s), ")
    assert result.summary().startswith("regression: held-out MACE ")
    # The classical methods, scored on the same held-out pairs, in px at 128.
    pairs, offsets = synthesize_pairs(8, embedded_photo_paths("test"), get_preset("tiny").synthesis, seed=1)
    expected = evaluate(pairs, offsets, list(BASELINE_METHODS), progress=False).summary()
    assert list(run["baselines"]) == list(BASELINE_METHODS)
    for name, scores in run["baselines"].items():
        assert scores["mace"] == pytest.approx(4 * expected[name]["mace"], abs=1e-3)
        assert scores["failure_rate"] == pytest.approx(expected[name]["failure_rate"], abs=1e-3)
        assert scores["standard_error"] == pytest.approx(4 * expected[name]["standard_error"], abs=1e-3)
        assert np.mean(scores["errors"]) == pytest.approx(scores["mace"], abs=1e-2) and len(scores["errors"]) == 8
    ecc = run["baselines"]["ecc"]
    assert f"{ecc['label']} {ecc['mace']:.1f} ± {ecc['standard_error']:.1f} px" in result.compare()
    assert result.compare().startswith("classical methods on the same pairs (a failure counts as the identity): ")
    # The run against the best classical method, pair by pair, with the standard error of the difference.
    assert np.mean(run["errors"]) == pytest.approx(run["final"], abs=1e-2)
    assert run["standard_error"] == pytest.approx(np.std(run["errors"], ddof=1) / np.sqrt(8), abs=1e-3)
    best = min(run["baselines"].values(), key=lambda b: b["mace"])
    difference = np.subtract(run["errors"], best["errors"])
    standard = np.std(difference, ddof=1) / np.sqrt(8)
    verdict = "a tie" if abs(difference.mean()) <= 2 * standard else ("regression ahead" if difference.mean() < 0
                                                                      else f"{best['label']} ahead")
    line = result.compare().splitlines()[-1]
    assert line.startswith(f"regression - {best['label']} = {difference.mean():+.1f} ± {standard:.1f} px") and verdict in line
    # The shipped model on the same pairs, alone and refined by ECC.
    model, rho = load_pretrained()
    shipped = evaluate(pairs, offsets, ["network", "network+ecc"], model=model, network_rho=rho, progress=False).summary()
    for name in ("network", "network+ecc"):
        assert run["shipped"]["methods"][name]["mace"] == pytest.approx(4 * shipped[name]["mace"], abs=1e-3)
    assert run["shipped"]["steps"] == 10_000 and run["shipped"]["batch_size"] == 32
    assert f"alone {run['shipped']['methods']['network']['mace']:.1f}" in result.shipped()
    points = result.budget_points()
    assert points["runs"]["regression"] == (16 * 64, run["ratio"])
    assert points["shipped"]["network"] == (320_000, pytest.approx(run["shipped"]["methods"]["network"]["mace"]
                                                                  / run["identity"]))
    budget = plot_budget({"live": result}, PAPER_BUDGET)
    assert budget.axes[0].get_xscale() == "log"
    assert [line.get_label() for line in budget.axes[0].lines if line.get_marker() == "D"] == list(PAPER_BUDGET)

    assert result.subset(["regression"]) == result and result.subset([]).runs == {}

    path = result.save(tmp_path / "result.json")
    assert ExperimentResult.load(path) == result
    # Running it again finds the finished run: no training, the same curve.
    again = run_experiment("regression", "live", folder=tmp_path / "runs", steps=16, pairs=8, progress=False)
    assert again.runs["regression"]["mace"] == run["mace"]

    figure = plot_experiment(result, path)
    assert len(figure.axes) == 2 and figure.axes[0].get_ylabel() == "held-out MACE (px at 128 px)"
    dashed = [line for line in figure.axes[0].lines if line.get_linestyle() == "--" and len(line.get_ydata())]
    assert list(dashed[0].get_ydata()) == [run["identity"]] * 2  # the identity's error, across the axes
    dotted = [line for line in figure.axes[0].lines if line.get_linestyle() == ":"]
    assert list(dotted[0].get_ydata()) == [best["mace"]] * 2  # the best classical method's, across the axes


@pytest.mark.slow
def test_experiment_command_writes_json_and_figure(tmp_path, capsys):
    output = tmp_path / "out" / "regression"
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as exit_code:
        main(["experiment", "regression", "--budget", "live", "--steps", "8", "--pairs", "4",
              "--checkpoints", str(tmp_path / "runs"), "--output", str(output)])
    assert exit_code.value.code == 0
    saved = json.loads(output.with_suffix(".json").read_text())
    assert saved["experiment"] == "regression" and saved["runs"]["regression"]["steps"][-1] == 8
    figure = cv2.imread(str(output.with_suffix(".png")))
    assert figure is not None and figure.shape[0] > 100
    assert "regression: held-out MACE" in capsys.readouterr().out


def test_every_experiment_notebook_has_its_script_and_committed_result():
    root = Path(__file__).resolve().parents[1]
    every = sorted((root / "experiments").glob("*.py"))
    assert all(list((root / "notebooks").glob(f"{script.stem[:2]}_*.ipynb")) for script in every)  # a notebook each
    # the homography experiments run the experiment command; the features' scripts (12, 13) have their own tests
    scripts = [script for script in every if 'main(["experiment"' in script.read_text()]
    assert [script.stem[:2] for script in scripts] == ["03", "05", "06", "07", "08", "11"]
    for script in scripts:
        name = re.search(r'main\(\["experiment", "(\w+)", "--output", "experiments/results/(\w+)"', script.read_text())
        assert name and name.group(1) in EXPERIMENTS and name.group(2) == script.stem, script
        assert (root / "notebooks" / f"{script.stem}.ipynb").is_file()
        # The notebook plots the committed longer CPU run of the same experiment.
        assert f'FULL_RUN = "experiments/results/{script.stem}.json"' in (root / "notebooks" / f"{script.stem}.ipynb").read_text().replace('\\"', '"')
        result = ExperimentResult.load(root / "experiments" / "results" / f"{script.stem}.json")
        assert result.experiment == name.group(1) and result.budget == "full"
        assert {run.name for run in experiment_runs(result.experiment, "full")} == set(result.runs) | set(result.skipped)
        assert cv2.imread(str(root / "experiments" / "results" / f"{script.stem}.png")) is not None


@pytest.mark.slow
def test_runs_of_each_rho_train_on_archives_made_for_it(tmp_path):
    from hnet_keras.data.generate import generate_dataset

    runs = experiment_runs("rho", "live", steps=2)
    for run in runs:
        generate_dataset(tmp_path / f"pairs_rho{run.preset.rho}", embedded_photo_paths("train")[:4], pairs_per_image=8,
                         config=run.preset.synthesis, progress=False)
    result = run_experiment("rho", "live", folder=tmp_path / "runs", data=str(tmp_path / "pairs_rho{rho}"), steps=2,
                            pairs=4, progress=False, shipped=False)
    assert list(result.runs) == [run.name for run in runs] and all(r["steps"] == [1, 2] for r in result.runs.values())
    assert "shipped" not in result.runs["rho 20"]
    # One folder for every rho: the first run whose rho it was not made for is refused, naming the manifest.
    with pytest.raises(ValueError, match=r"pairs_rho8.manifest.json: these archives hold rho 8"):
        run_experiment("rho", "live", folder=tmp_path / "runs2", data=str(tmp_path / "pairs_rho8"), steps=2, pairs=4,
                       progress=False, shipped=False)
