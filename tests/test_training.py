"""Training: presets, learning on real photos, checkpoints, kill-and-resume, the CLI."""

import json

import keras
import numpy as np
import pytest

from hnet_keras.cli import build_parser, main
from hnet_keras.data.generate import generate_dataset
from hnet_keras.geometry import mean_corner_error
from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.data.synthesis import synthesize_pairs
from hnet_keras.nets.models import build_model
from hnet_keras.estimators.predict import predict_offsets
from hnet_keras.training.presets import PRESETS, get_preset
from hnet_keras.training.run import make_optimizer, on_the_fly, train

RUN_FILES = {"last.keras", "last.weights.h5", "best.keras", "best.weights.h5", "history.csv", "history.json", "state.json"}


def learning_rate_at(optimizer, iterations):
    optimizer.iterations.assign(iterations)
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def test_paper_preset_is_the_papers_recipe():
    paper = PRESETS["paper"]
    assert (paper.kind, paper.input_size, paper.rho, paper.batch_size, paper.iterations) == (
        "regression", 128, 32, 64, 90_000)
    optimizer = make_optimizer(paper)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.9)
    optimizer.build([keras.Variable(np.zeros(1, np.float32))])
    for iterations, expected in [(0, 0.005), (29_999, 0.005), (30_000, 0.0005), (59_999, 0.0005), (60_000, 0.00005)]:
        assert learning_rate_at(optimizer, iterations) == pytest.approx(expected, rel=1e-5)


def test_presets_are_data_and_overridable():
    assert set(PRESETS) >= {"paper", "cpu", "smoke"}
    assert PRESETS["cpu"].input_size < PRESETS["paper"].input_size
    assert PRESETS["cpu"].width < 1 and PRESETS["cpu"].iterations < PRESETS["paper"].iterations
    assert get_preset("smoke", iterations=7).iterations == 7
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="unknown preset field"):
        get_preset("smoke", epochs=3)
    with pytest.raises(ValueError, match="too small"):
        get_preset("smoke", input_size=64)


@pytest.mark.slow
def test_training_beats_the_identity_on_held_out_photos(tmp_path):
    """A small network trained ~1 minute on pairs from the embedded training photos
    predicts the corners of pairs from the held-out photos clearly better than the
    identity (all offsets 0). 32x32 patches of photos scaled to 96x72 learn the
    fastest on a CPU (finer scales have less texture per patch, coarser ones too
    few distinct patches); over seeds 0-2 the ratio was 0.58-0.64."""
    preset = get_preset(
        "smoke", image_size=(96, 72), input_size=32, rho=8, width=0.25, dropout=False,
        batch_size=64, iterations=1250, steps_per_epoch=125, optimizer="adam",
        learning_rate=0.002, lr_drop_every=1000,
    )
    result = train(preset, checkpoint_dir=tmp_path, validation_data=False, verbose=0, seed=0)
    assert result.history[-1]["iterations"] == 1250

    pairs, offsets = synthesize_pairs(512, embedded_photo_paths("test"), config=preset.synthesis, seed=7)
    identity = mean_corner_error(offsets, np.zeros_like(offsets))
    assert 6.0 < identity < 6.6  # E||(x, y)|| for x, y uniform integers in [-8, 8] is 6.2
    predicted = mean_corner_error(offsets, predict_offsets(result.model, pairs, rho=preset.rho))
    assert predicted < 0.8 * identity, f"held-out MACE {predicted:.2f} px, identity {identity:.2f} px"


class KillDuringEpoch(keras.callbacks.Callback):
    """Simulates a kill: raises in the middle of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, batch=4):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt("killed")


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(tmp_path):
    full = train("smoke", checkpoint_dir=tmp_path, run="full", verbose=0)
    assert [row["iterations"] for row in full.history] == [10, 20, 30, 40]

    with pytest.raises(KeyboardInterrupt):
        train("smoke", checkpoint_dir=tmp_path, run="killed", verbose=0, callbacks=[KillDuringEpoch(2)])
    folder = tmp_path / "killed"
    assert RUN_FILES <= {p.name for p in folder.iterdir()}
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name or p.name.endswith(".partial")]
    state = json.loads((folder / "state.json").read_text())
    assert (state["epoch"], state["iterations"]) == (2, 20)
    assert len(json.loads((folder / "history.json").read_text())) == 2

    resumed = train("smoke", checkpoint_dir=tmp_path, run="killed", verbose=0)
    assert resumed.resumed_from == 2
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    # Same iteration count, learning-rate schedule, optimizer state, data and dropout
    # masks as the uninterrupted run: the histories and weights agree.
    for key in ("iterations", "learning_rate"):
        assert [row[key] for row in resumed.history] == [row[key] for row in full.history]
    for key in ("loss", "mace", "val_mace"):
        np.testing.assert_allclose([r[key] for r in resumed.history], [r[key] for r in full.history], rtol=1e-4)
    for a, b in zip(resumed.model.get_weights(), full.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert int(keras.ops.convert_to_numpy(resumed.model.optimizer.iterations)) == 40
    lines = (folder / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,iterations,learning_rate") and len(lines) == 5

    # A finished run returns at once, without training.
    again = train("smoke", checkpoint_dir=tmp_path, run="killed", verbose=0)
    assert again.resumed_from == 4 and len(again.history) == 4


@pytest.mark.slow
def test_checkpoints_reproduce_predictions_exactly(tmp_path):
    result = train("smoke", checkpoint_dir=tmp_path, iterations=20, verbose=0)
    folder = result.directory
    x = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 2)).astype(np.float32)
    expected = result.model.predict(x, verbose=0)

    restored = keras.saving.load_model(folder / "last.keras", safe_mode=True)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), expected)
    assert int(keras.ops.convert_to_numpy(restored.optimizer.iterations)) == 20

    fresh = build_model("regression", **result.preset.model_options())
    fresh.load_weights(folder / "last.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)

    state = json.loads((folder / "state.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    best = min(row["val_mace"] for row in history)
    assert state["best_val_mace"] == best
    best_model = keras.saving.load_model(folder / "best.keras", safe_mode=True)
    best_weights = build_model("regression", **result.preset.model_options())
    best_weights.load_weights(folder / "best.weights.h5")
    np.testing.assert_array_equal(best_weights.predict(x, verbose=0), best_model.predict(x, verbose=0))


@pytest.mark.slow
def test_training_from_archives_and_classification(tmp_path):
    config = get_preset("smoke").synthesis
    generate_dataset(tmp_path / "train", embedded_photo_paths("train"), pairs_per_image=4, config=config,
                     progress=False)
    generate_dataset(tmp_path / "val", embedded_photo_paths("test"), pairs_per_image=4, config=config,
                     progress=False)
    result = train("smoke", kind="classification", checkpoint_dir=tmp_path / "runs", data=tmp_path / "train",
                   validation_data=tmp_path / "val", iterations=8, verbose=0)
    # rho 8: 17 bins, one a whole-pixel offset (21 would leave 4 never a target).
    assert result.model.output_shape == (None, 8, 17)
    # 13 photos x 4 pairs, batch 16: an epoch is one pass over the archives, 4 steps.
    assert [row["iterations"] for row in result.history] == [4, 8]
    assert np.isfinite(result.history[-1]["val_mace"])
    restored = keras.saving.load_model(result.directory / "best.keras", safe_mode=True)
    assert restored.output_shape == (None, 8, 17)

    with pytest.raises(ValueError, match="do not fit the model"):  # pairs are shrunk, never enlarged
        train("cpu", rho=8, checkpoint_dir=tmp_path / "runs", run="bad", data=tmp_path / "train")  # 64 px model
    # Larger archives feed a smaller model, shrunk with their offsets (32 px, rho 8 -> 16 px, rho 4)...
    small = train("smoke", input_size=16, rho=4, checkpoint_dir=tmp_path / "runs", run="small",
                  data=tmp_path / "train", validation_data=tmp_path / "val", iterations=4, verbose=0)
    assert small.model.input_shape == (None, 16, 16, 2) and np.isfinite(small.history[-1]["val_mace"])
    # ...and a rho the archives were not made for is refused, naming the manifest.
    with pytest.raises(ValueError, match=r"manifest.json: these archives hold rho 8 at 32 px, so rho 4 at the 16 px"):
        train("smoke", input_size=16, rho=8, checkpoint_dir=tmp_path / "runs", run="bad2", data=tmp_path / "train")


def test_classification_refuses_bins_no_target_reaches():
    with pytest.raises(ValueError, match="bins=21 with rho=8: 4 bins .* at most 17 bins"):
        get_preset("smoke", kind="classification", bins=21)
    # Targets of 128 px pairs resized to 64 are half-pixels: rho 16 there reaches 33 bins.
    big = {"image_size": (320, 240), "input_size": 64, "patch_size": 128, "rho": 16}
    assert get_preset("smoke", kind="classification", bins=33, **big).bins == 33
    with pytest.raises(ValueError, match="at most 65 bins"):
        get_preset("smoke", kind="classification", bins=66, **big)


@pytest.mark.slow
def test_mixed_precision_is_scoped_to_the_run(tmp_path):
    result = train("smoke", checkpoint_dir=tmp_path, iterations=10, mixed_precision=True,
                   validation_data=False, verbose=0)
    assert result.model.get_layer("conv1").dtype_policy.name == "mixed_float16"
    assert result.model.get_layer("offsets").dtype_policy.name == "float32"
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(result.history[-1]["loss"])


@pytest.mark.slow
def test_progress_bar_counts_the_epochs_and_shows_the_running_metrics(tmp_path, capsys):
    # Outside a notebook tqdm.auto draws text bars on stderr (in a notebook, widgets).
    result = train("smoke", checkpoint_dir=tmp_path, iterations=10, steps_per_epoch=5, validation_data=False,
                   verbose=0, progress=True)
    bars = capsys.readouterr().err
    assert len(result.history) == 2
    assert "2/2" in bars and "epoch" in bars
    assert "mace=" in bars and "loss=" in bars


@pytest.mark.slow
def test_train_command(tmp_path, capsys):
    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    for action in train_parser._actions:
        assert action.help, f"{action.dest} has no help"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--preset", "smoke", "--checkpoints", str(tmp_path), "--run", "cli",
              "--iterations", "10", "--quiet"])
    assert exit_info.value.code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["iterations"] == 10 and summary["epochs"] == 1
    assert (tmp_path / "cli" / "last.keras").is_file()


@pytest.mark.slow
def test_resume_refuses_changed_options_and_an_empty_state(tmp_path, capsys):
    first = train("smoke", checkpoint_dir=tmp_path, run="r", iterations=10, verbose=0)
    with pytest.raises(ValueError, match=r"width 0.125 -> 0.25; learning_rate 0.002 -> 0.01"):
        train("smoke", checkpoint_dir=tmp_path, run="r", iterations=20, width=0.25, learning_rate=0.01, verbose=0)
    state = json.loads((first.directory / "state.json").read_text())
    assert state["preset"]["width"] == 0.125  # the state still describes the weights
    argv = ["train", "--preset", "smoke", "--checkpoints", str(tmp_path), "--run", "r", "--iterations", "20",
            "--batch-size", "8", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "batch_size 16 -> 8" in error and "--no-resume" in error
    (first.directory / "state.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main(argv[:-3] + ["--quiet"])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and error.count("\n") == 0 and "state.json: not a training state" in error
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--no-resume"])
    assert exit_info.value.code == 0
    assert json.loads((first.directory / "state.json").read_text())["preset"]["batch_size"] == 8


def test_the_input_size_error_names_options_train_has(tmp_path, capsys):
    generate_dataset(tmp_path / "data", embedded_photo_paths("test"), config=get_preset("smoke").synthesis,
                     progress=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--preset", "cpu", "--checkpoints", str(tmp_path), "--data", str(tmp_path / "data"),
              "--rho", "8", "--quiet"])  # 32 px archives, a 64 px model
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--input-size" in error


@pytest.mark.slow
def test_the_iterative_preset_trains_resumes_and_carries_its_rho(tmp_path):
    from hnet_keras.nets.checkpoint import load_checkpoint
    from hnet_keras.data.loaders import OnTheFlyDataset

    preset = get_preset("iterative", iterations=4, steps_per_epoch=2, batch_size=4, validation_batches=1)
    assert preset.synthesis.patch_size == 128 and preset.synthesis.rho == 32  # 128 px pairs resized to 64
    data = on_the_fly(preset, None, 1, seed=0)
    assert isinstance(data, OnTheFlyDataset) and data.augmentation is not None
    assert on_the_fly(preset, None, 1, seed=0, fixed=True).augmentation is None  # validation pairs stay clean
    x, y = data[0]
    assert x.shape == (4, 64, 64, 2) and np.abs(y).max() <= 1.0
    result = train(preset, checkpoint_dir=tmp_path, verbose=0)
    assert [row["iterations"] for row in result.history] == [2, 4]
    assert all(np.isfinite(row["loss"]) for row in result.history)
    model, rho = load_checkpoint(result.directory / "last.keras")
    assert rho == 16 and model.output_shape == (None, 6, 8)


@pytest.mark.slow
def test_a_run_can_start_from_a_checkpoint_and_keeps_that_start_on_resume(tmp_path):
    from hnet_keras.nets.checkpoint import load_checkpoint, shipped_checkpoint

    start = shipped_checkpoint()  # the shipped iterative model
    shipped, _ = load_checkpoint(start)
    small = dict(iterations=2, steps_per_epoch=1, batch_size=2, validation_batches=1, learning_rate=0.0,
                 warmup_steps=0)
    result = train("large_motion", checkpoint_dir=tmp_path, run="tuned", start_from=start, verbose=0, **small)
    # learning rate 0: the weights are still the shipped ones after two steps
    assert all(np.array_equal(a, b) for a, b in zip(result.model.get_weights(), shipped.get_weights()))
    with pytest.raises(ValueError, match="start_from"):  # resuming from another start is another run
        train("large_motion", checkpoint_dir=tmp_path, run="tuned", verbose=0, **{**small, "iterations": 3})
    with pytest.raises(ValueError, match=r"start_from .*not a regression model"):
        train("smoke", checkpoint_dir=tmp_path, run="other", start_from=start, verbose=0, iterations=1)
