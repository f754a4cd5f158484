"""Photometric augmentation: seeded, switchable, independent per patch, geometry untouched."""

import numpy as np
import pytest

from hnet_keras.data.augment import Augmentation, augment_pairs, augment_patch


def _pairs(count=6, size=32):
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 215, size)
    base = (ramp[None, :] + ramp[:, None]) / 2
    pairs = np.repeat((base + rng.normal(0, 5, (count, size, size)))[..., None], 2, axis=-1)
    return np.clip(pairs, 0, 255).astype(np.uint8)


def test_same_seed_same_pairs_and_a_new_array():
    pairs = _pairs()
    first = augment_pairs(pairs, np.random.default_rng(7))
    again = augment_pairs(pairs, np.random.default_rng(7))
    other = augment_pairs(pairs, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.uint8 and first.shape == pairs.shape and first is not pairs


def test_patches_a_and_b_are_changed_independently():
    pairs = _pairs(count=20)
    out = augment_pairs(pairs, np.random.default_rng(1), Augmentation(probability=1.0))
    differences = np.abs(out[..., 0].astype(int) - out[..., 1].astype(int)).mean(axis=(1, 2))
    assert np.all(differences > 1.0)  # A and B started equal


def test_probability_zero_or_every_change_off_leaves_patches_unchanged():
    pairs = _pairs()
    np.testing.assert_array_equal(augment_pairs(pairs, np.random.default_rng(2), Augmentation(probability=0.0)), pairs)
    off = Augmentation(probability=1.0, brightness=0, contrast=1, gamma=1, noise=0, blur=0)
    np.testing.assert_array_equal(augment_pairs(pairs, np.random.default_rng(2), off), pairs)


@pytest.mark.parametrize(
    "only, check",
    [
        ("brightness", lambda before, after: abs(after.mean() - before.mean()) > 0.5),
        ("noise", lambda before, after: np.std(after.astype(int) - before.astype(int)) > 0.3),
        ("blur", lambda before, after: np.abs(np.diff(after.astype(float), axis=1)).mean()
         < np.abs(np.diff(before.astype(float), axis=1)).mean()),
        ("contrast", lambda before, after: abs(after.std() - before.std()) > 0.5),
        ("gamma", lambda before, after: abs(after.mean() - before.mean()) > 0.5),
    ],
)
def test_each_change_alone_does_what_it_says(only, check):
    neutral = dict(brightness=0, contrast=1, gamma=1, noise=0, blur=0)
    full = dict(brightness=50, contrast=1.6, gamma=1.6, noise=12, blur=1.5)
    augmentation = Augmentation(probability=1.0, **{**neutral, only: full[only]})
    patch = _pairs(count=1)[0, :, :, 0]
    changed = [augment_patch(patch, np.random.default_rng(seed), augmentation) for seed in range(4)]
    assert any(check(patch, after) for after in changed)
    assert len({after.tobytes() for after in changed}) > 1  # each seed draws its own amount


def test_bad_ranges_and_inputs_are_refused():
    with pytest.raises(ValueError, match="probability"):
        Augmentation(probability=1.5)
    with pytest.raises(ValueError, match="gamma"):
        Augmentation(gamma=0.5)
    with pytest.raises(ValueError, match="uint8"):
        augment_pairs(np.zeros((1, 8, 8, 2), np.float32), np.random.default_rng(0))
