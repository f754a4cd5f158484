"""Loaders that feed Keras: from archives on disk, or synthesized on the fly from images.

All of them yield ``(x, y)`` normalized as the network expects:
``x = (images - 127.5) / 127.5`` (float32, (B, P, P, 2)) and ``y = offsets / rho``
(float32, (B, 8)). They use numpy and ``keras.utils.PyDataset`` only, so they feed
Keras under the TensorFlow, JAX or PyTorch backend alike.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np

from .archive import (
    MANIFEST_NAME,
    ArchiveError,
    archive_length,
    list_archives,
    read_archive,
    read_manifest,
    require_pairs,
)
from .augment import augment_pairs
from .motion import sample_moved_pairs
from .synthesis import (
    TRAIN_PROTOCOL,
    load_prepared_images,
    normalize_images,
    normalize_offsets,
    resize_pairs,
    sample_pairs,
)

__all__ = [
    "SeededBatches", "archives_rho", "data_loader", "ArchiveDataset", "OnTheFlyDataset"]


def _manifest_parameters(path):
    """``(manifest path, its "parameters")`` for archives at ``path`` (a folder or one archive);
    the parameters are empty when no manifest is there."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    manifest = folder / MANIFEST_NAME
    return manifest, (read_manifest(manifest).get("parameters", {}) if manifest.is_file() else {})


def archives_rho(path, rho=None):
    """``rho`` when given, else the one ``manifest.json`` records for the archives at ``path``.

    Raises:
        ValueError: no rho given and none recorded, naming the path.
    """
    if rho is not None:
        return rho
    manifest, parameters = _manifest_parameters(path)
    recorded = parameters.get("rho")
    if recorded is None:
        raise ValueError(f"{path}: give the archives' rho (no {MANIFEST_NAME} beside them records it)")
    if not recorded > 0:
        raise ValueError(f"{manifest}: 'parameters.rho' is {recorded}: offsets cannot be normalized by it; "
                         "give the rho to normalize by")
    return recorded


def data_loader(path, batch_size=64, rho=None, shuffle=False, seed=None):
    """Infinite generator of normalized ``(x, y)`` batches, looping over the archives.

    The loader of the published Keras notebook, made robust: it holds one archive in
    memory at a time, validates every file (errors name it) and can shuffle the
    archive order and the samples of each archive with a seed.

    Args:
        path: a folder of ``.npz`` archives or one archive.
        batch_size: samples per batch; the last batch of an archive may be smaller.
        rho: the offsets' normalization; default: the ``rho`` of the folder's ``manifest.json``.
        shuffle: shuffle archives and samples each pass.
        seed: seed of the shuffling.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    archives = list_archives(path)
    rho = archives_rho(path, rho)
    require_pairs(path, archives, [archive_length(a) for a in archives])  # or it would loop forever
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(archives)) if shuffle else range(len(archives))
        for a in order:
            images, offsets = read_archive(archives[a])
            samples = rng.permutation(len(images)) if shuffle else np.arange(len(images))
            for start in range(0, len(samples), batch_size):
                chosen = samples[start : start + batch_size]
                if shuffle:
                    chosen = np.sort(chosen)
                yield normalize_images(images[chosen]), normalize_offsets(offsets[chosen], rho)
            del images, offsets


class ArchiveDataset(keras.utils.PyDataset):
    """A shuffled, finite-per-epoch view of a folder of archives for ``model.fit``.

    Each epoch, the archives are put in a seeded random order and taken in groups of
    ``mix`` archives; the samples of a group are shuffled together. So batches mix
    pairs of different archives while about ``mix`` archives are in memory (one more
    while a batch straddles two groups).

    Args:
        path: a folder of archives or one archive.
        batch_size: samples per batch (the last batch of an epoch may be smaller).
        rho: the offsets' normalization; default: the ``rho`` of the folder's ``manifest.json``.
        shuffle: shuffle as above; ``False`` reads in file order.
        seed: seed of the shuffling; epoch ``e`` uses ``(seed, e)``.
        mix: archives shuffled together.
        limit: use only the first ``limit`` samples of the dataset (for quick runs).
        input_size: feed larger pairs shrunk to this side (area averaging, as
            :class:`OnTheFlyDataset` and prediction do), e.g. 128 px archives to a 64 px model; the
            offsets are scaled with them, so ``rho`` is then in pixels of the shrunk pairs. When the
            folder's manifest records its patch size and rho, a ``rho`` that does not match them
            at that size is refused (archives made for another rho).
    """

    def __init__(self, path, batch_size=64, rho=None, shuffle=True, seed=0, mix=2, limit=None, input_size=None,
                 **kwargs):
        super().__init__(**kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.archives = list_archives(path)
        rho = archives_rho(path, rho)
        self.lengths = np.array([archive_length(a) for a in self.archives])
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.size = int(self.starts[-1]) if limit is None else min(int(limit), int(self.starts[-1]))
        require_pairs(path, self.archives, self.lengths)
        if self.size < 1:
            raise ArchiveError(f"{path}: limit {limit} leaves no pairs to read")
        self.batch_size, self.rho, self.shuffle, self.seed, self.mix = batch_size, rho, shuffle, seed, max(1, mix)
        if input_size is not None and not (isinstance(input_size, int) and input_size >= 2):
            raise ValueError(f"input_size must be an integer >= 2, got {input_size!r}")
        self.input_size = input_size
        self._check_rho(path)
        self._cache = OrderedDict()
        self._epoch = 0
        self._order = self._plan(0)

    def __len__(self):
        return -(-self.size // self.batch_size)

    def _check_rho(self, path):
        """Refuse a ``rho`` other than the manifest's at the size the pairs are fed at."""
        manifest, parameters = _manifest_parameters(path)
        recorded, patch = parameters.get("rho"), parameters.get("patch_size")
        if not recorded or not patch:
            return
        fed = min(self.input_size or patch, patch)
        expected = recorded * fed / patch
        if abs(expected - self.rho) > 1e-6 * expected:
            raise ValueError(f"{manifest}: these archives hold rho {recorded:g} at {patch} px, so rho {expected:g} "
                             f"at the {fed} px fed to the model, not the {self.rho:g} asked for; use archives made "
                             f"with the recipe's rho, or that rho")

    def _plan(self, epoch):
        """The sample order of one epoch, as global indices."""
        if not self.shuffle:
            return np.arange(self.size)
        rng = np.random.default_rng([int(self.seed), int(epoch)])
        archive_order = rng.permutation(len(self.archives))
        parts = []
        for g in range(0, len(archive_order), self.mix):
            group = archive_order[g : g + self.mix]
            indices = np.concatenate([np.arange(self.starts[a], self.starts[a + 1]) for a in group])
            parts.append(rng.permutation(indices))
        order = np.concatenate(parts)
        return order[order < self.size]

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._plan(self._epoch)

    def _archive(self, a):
        """Archive ``a`` from a least-recently-used cache of ``mix`` archives."""
        if a in self._cache:
            self._cache.move_to_end(a)
            return self._cache[a]
        while len(self._cache) >= self.mix:  # evict before reading: memory stays bounded
            self._cache.popitem(last=False)
        self._cache[a] = read_archive(self.archives[a])
        return self._cache[a]

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        owners = np.searchsorted(self.starts, chosen, side="right") - 1
        images = np.empty((len(chosen),) + self._archive(int(owners[0]))[0].shape[1:], np.uint8)
        offsets = np.empty((len(chosen), 8), np.int64)
        # In order of first appearance, so the archives of the next group are read
        # last and stay cached for the batches that follow.
        for a in dict.fromkeys(owners.tolist()):
            rows = owners == a
            archive_images, archive_offsets = self._archive(a)
            local = chosen[rows] - self.starts[a]
            images[rows], offsets[rows] = archive_images[local], archive_offsets[local]
            del archive_images, archive_offsets
        if self.input_size and self.input_size < images.shape[1]:
            scale = self.input_size / images.shape[1]
            return normalize_images(resize_pairs(images, self.input_size)), normalize_offsets(offsets * scale, self.rho)
        return normalize_images(images), normalize_offsets(offsets, self.rho)


class SeededBatches(keras.utils.PyDataset):
    """A ``PyDataset`` of ``batches`` batches per epoch, batch ``i`` of epoch ``e`` drawn from ``(seed, e, i)``;
    ``fixed`` draws the same batches every epoch (validation). Subclasses define ``__getitem__``."""

    def __init__(self, batches, seed=0, fixed=False, **kwargs):
        super().__init__(**kwargs)
        if int(batches) < 1:
            raise ValueError(f"batches per epoch must be >= 1, got {batches}")
        self.batches, self.seed, self.fixed = int(batches), int(seed), fixed
        self._epoch = 0

    def __len__(self):
        return self.batches

    def on_epoch_end(self):
        if not self.fixed:
            self._epoch += 1

    def set_epoch(self, epoch):
        """Draw the batches of epoch ``epoch`` from now on (a resumed run starts where it stopped)."""
        if not self.fixed:
            self._epoch = int(epoch)

    def batch_rng(self, index):
        """The generator of batch ``index`` of the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        return np.random.default_rng([self.seed, self._epoch, int(index)])


class OnTheFlyDataset(SeededBatches):
    """Pairs synthesized straight from images, with no archives on disk.

    Batch ``i`` of epoch ``e`` is drawn from ``(seed, e, i)``, so a run is
    reproducible and every epoch sees new pairs.

    Args:
        images: a folder, a list of paths, or ``None`` for the embedded photos.
        batch_size: pairs per batch.
        batches_per_epoch: the epoch length.
        config: the recipe's sizes.
        seed: the seed.
        fixed: draw the same pairs every epoch (for a validation set).
        input_size: feed the pairs resized to this side (area averaging), as
            :func:`hnet_keras.estimators.predict.predict_offsets` does at inference: a model with a 64 px
            input then trains on exactly what it sees when given 128 px pairs. The
            targets stay ``offsets / rho``, which resizing does not change.
        augmentation: an :class:`hnet_keras.data.augment.Augmentation` to change patch A and
            patch B photometrically, each on its own (before the resize), or ``None``.
        motion: a :class:`hnet_keras.data.motion.Motion` to move B by rotation, zoom, viewpoint
            and shift (:func:`~hnet_keras.data.motion.sample_moved_pairs`) instead of DeTone's
            corner perturbation; the targets are still ``offsets / rho`` (then beyond 1).
    """

    def __init__(
        self,
        images=None,
        batch_size=64,
        batches_per_epoch=100,
        config=TRAIN_PROTOCOL,
        seed=0,
        fixed=False,
        prepared=None,
        input_size=None,
        augmentation=None,
        motion=None,
        **kwargs,
    ):
        super().__init__(batches_per_epoch, seed, fixed, **kwargs)
        self.augmentation, self.motion = augmentation, motion
        self.input_size = input_size if input_size and input_size != config.patch_size else None
        self.prepared = prepared if prepared is not None else load_prepared_images(images, config)[0]
        self.batch_size, self.config = batch_size, config

    def __getitem__(self, index):
        rng = self.batch_rng(index)
        sources = rng.integers(0, len(self.prepared), self.batch_size)
        if self.motion is None:
            images, offsets = sample_pairs(self.prepared, sources, rng, self.config)
        else:
            images, offsets = sample_moved_pairs(self.prepared, sources, rng, self.config.patch_size, self.motion)
        if self.augmentation is not None:
            images = augment_pairs(images, rng, self.augmentation)
        if self.input_size:
            images = resize_pairs(images, self.input_size)
        return normalize_images(images), normalize_offsets(offsets, self.config.rho)
