import json

import numpy as np
import pytest

from hnet_keras.fileio import atomic_write_json
from hnet_keras.data.images import embedded_photo_paths, read_grayscale
from hnet_keras.plots import plot_robustness
from hnet_keras.scoring.robustness import (
    PERTURBATIONS,
    format_robustness,
    perturb,
    perturb_pairs,
    robustness_sweep,
)
from hnet_keras.data.synthesis import TRAIN_PROTOCOL, prepare_image, sample_pair

NEUTRAL = {"noise": 0, "brightness": 0, "contrast": 1.0, "gamma": 1.0, "blur": 0}


@pytest.fixture(scope="module")
def pairs():
    (path,) = [p for p in embedded_photo_paths("all") if p.name == "gravel.png"]
    image = prepare_image(read_grayscale(path)[0], TRAIN_PROTOCOL)
    rng = np.random.default_rng(0)
    drawn = [sample_pair(image, rng, TRAIN_PROTOCOL) for _ in range(6)]
    return np.stack([p.stacked for p in drawn]), np.stack([p.offsets for p in drawn])


def test_every_kind_has_its_neutral_level_which_changes_nothing(pairs):
    patch = pairs[0][0, ..., 1]
    assert set(PERTURBATIONS) == set(NEUTRAL)
    for kind, level in NEUTRAL.items():
        assert level in PERTURBATIONS[kind]
        assert np.array_equal(perturb(patch, kind, level, np.random.default_rng(0)), patch)


def test_each_change_does_what_it_says(pairs):
    patch = pairs[0][0, ..., 1]
    x = patch.astype(float)
    brighter = perturb(patch, "brightness", 30)
    assert np.array_equal(brighter, np.clip(x + 30, 0, 255).astype(np.uint8))
    low = perturb(patch, "contrast", 0.5)
    assert low.std() == pytest.approx(0.5 * x.std(), rel=0.02)
    assert np.array_equal(perturb(patch, "gamma", 2.0), np.rint(255 * (x / 255) ** 2).astype(np.uint8))
    blurred = perturb(patch, "blur", 2)
    assert blurred.dtype == np.uint8 and blurred.std() < 0.8 * patch.std()
    noisy = perturb(patch, "noise", 20, np.random.default_rng(1))
    assert noisy.dtype == np.uint8 and 15 < (noisy.astype(float) - x).std() < 22
    assert np.array_equal(noisy, perturb(patch, "noise", 20, np.random.default_rng(1)))
    assert not np.array_equal(noisy, perturb(patch, "noise", 20, np.random.default_rng(2)))
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(patch, "fog", 1)
    with pytest.raises(ValueError, match="rng"):
        perturb(patch, "noise", 5)
    with pytest.raises(ValueError, match="uint8"):
        perturb(x, "blur", 1)


def test_perturb_pairs_changes_patch_b_only_and_is_seeded(pairs):
    images, _ = pairs
    changed = perturb_pairs(images, "noise", 10, seed=3, index=1)
    assert np.array_equal(changed[..., 0], images[..., 0])
    assert not np.array_equal(changed[..., 1], images[..., 1])
    assert np.array_equal(changed, perturb_pairs(images, "noise", 10, seed=3, index=1))
    blurred = perturb_pairs(images, "blur", 1)
    assert np.array_equal(blurred[2, ..., 1], perturb(images[2, ..., 1], "blur", 1))


def test_sweep_reports_mace_per_method_per_level(pairs, tmp_path):
    images, offsets = pairs
    levels = {"noise": (0, 60), "blur": (0, 4)}
    report = robustness_sweep(images, offsets, methods=["identity", "sift_ransac"], perturbations=levels,
                              seed=0, progress=False)
    assert report["methods"] == ["identity", "sift_ransac"] and report["pairs"] == 6
    identity_mace = np.linalg.norm(offsets.reshape(-1, 4, 2), axis=2).mean()
    for kind in levels:
        entry = report["perturbations"][kind]
        assert entry["levels"] == [float(v) for v in levels[kind]]
        # the identity ignores the pixels: the same error at every level
        assert entry["mace"]["identity"] == pytest.approx([identity_mace] * 2)
        sift = entry["mace"]["sift_ransac"]
        assert sift[0] < 2.0 and sift[1] > sift[0]
    again = robustness_sweep(images, offsets, methods=["identity", "sift_ransac"], perturbations=levels,
                             seed=0, progress=False)
    assert again["perturbations"] == report["perturbations"]  # seeded: the same noise, the same numbers
    text = format_robustness(report)
    assert "noise" in text and "SIFT + RANSAC" in text
    path = atomic_write_json(tmp_path / "robustness.json", report)
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    figure = plot_robustness(report)
    assert len(figure.axes) == 2 and all(len(ax.lines) == 2 for ax in figure.axes)


def test_sweep_rejects_unknown_kinds(pairs):
    with pytest.raises(ValueError, match="unknown perturbation"):
        robustness_sweep(*pairs, methods=["identity"], perturbations={"fog": (1,)}, progress=False)
