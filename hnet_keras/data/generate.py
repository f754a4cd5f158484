"""The archive generator: images in, numbered ``.npz`` archives of pairs out.

Every image ``i`` gets its own random stream, seeded by ``(seed, i)``, and results
are written in image order, so the same seed and inputs give byte-identical
archives whatever the number of workers.

An output folder belongs to one run at a time (a lock file that dies with its
process), and its ``manifest.json`` always lists exactly the archives written so
far: it is rewritten after every archive, at the end and on Ctrl-C, and the
loaders read what it lists. A new run into the same folder removes the archives of
the previous one first, so old and new archives never mix.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import json
import multiprocessing
import os
import re
import signal
import threading
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import resource_tracker
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..fileio import FolderBusy, atomic_write_text, check_name, folder_lock
from .archive import (
    ARCHIVE_SIZE,
    MANIFEST_NAME,
    ArchiveError,
    manifest_archives,
    write_archive,
)
from .images import read_grayscale, resolve_image_source
from .synthesis import TRAIN_PROTOCOL, SynthesisConfig, pairs_from_image

__all__ = ["DatasetSummary", "DatasetInterrupted", "OutputFolderBusy", "generate_dataset", "image_rng"]

OutputFolderBusy = FolderBusy
"""Another run holds the output folder's lock (:class:`hnet_keras.fileio.FolderBusy`)."""


class DatasetInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; the message says what was kept."""


@dataclass
class DatasetSummary:
    """What a :func:`generate_dataset` run did."""

    images_used: int = 0
    images_skipped: dict = field(default_factory=dict)
    skipped_files: list = field(default_factory=list)
    pairs_written: int = 0
    archives: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pairs_per_second(self):
        return self.pairs_written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self):
        skipped = sum(self.images_skipped.values())
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.images_skipped.items()))
        return (
            f"images used: {self.images_used}, skipped: {skipped}" + (f" ({reasons})" if reasons else "")
            + f"; pairs written: {self.pairs_written} in {len(self.archives)} archive(s)"
            + f"; {self.pairs_per_second:.0f} pairs/s"
        )


def image_rng(seed, index):
    """The random stream of image ``index`` under ``seed``."""
    return np.random.default_rng([int(seed), int(index)])


def _synthesize(task):
    """Worker: all pairs of one image, or the reason it was skipped."""
    index, path, count, seed, config = task
    gray, reason = read_grayscale(path, warn=False)
    if gray is None:
        return index, None, None, reason
    try:
        images, offsets = pairs_from_image(gray, count, image_rng(seed, index), config)
    except ValueError:
        return index, None, None, "too small"
    return index, images, offsets, None


def _init_worker(booted=None):
    # Only the main process handles Ctrl-C: a worker interrupted mid-queue-I/O would
    # leave the queues' locks held and make the shut-down wait forever. The worker
    # was started with SIGINT blocked (see _start_pool): once SIGINT is ignored, a Ctrl-C
    # pending since then is discarded and unblocking is safe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    cv2.setNumThreads(1)
    if booted is not None:  # last: from here on the worker may hold the executor's queues
        with booted.get_lock():
            booted[list(booted).index(0)] = os.getpid()


class _DeferredInterrupt:
    """A SIGINT handler that only records Ctrl-C; :meth:`check` raises it at a safe point.

    A KeyboardInterrupt raised at an arbitrary point can land inside a library's lock
    (tqdm's two-lock write lock, a pool's result condition) and leave it held. Raised only
    between images and while polling the workers, it never does.
    """

    def __init__(self):
        self.received = False

    def __call__(self, signum, frame):
        self.received = True

    def check(self):
        """Raise the recorded Ctrl-C (once)."""
        if self.received:
            self.received = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_deferred():
    """Inside, Ctrl-C is recorded by the yielded :class:`_DeferredInterrupt` (main thread, and
    only where SIGINT is handled at all: a run started with it ignored keeps ignoring it)."""
    deferred = _DeferredInterrupt()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield deferred
        return
    previous = signal.signal(signal.SIGINT, deferred)
    try:
        yield deferred
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    deferred.check()  # a Ctrl-C during the clean-up still ends the command as interrupted


def _polled(executor, tasks, deferred, window, interval=0.1):
    """The results of ``tasks`` run on ``executor``, in order, with at most ``window`` images in
    flight, checking for Ctrl-C every ``interval`` seconds while waiting."""
    tasks = iter(tasks)
    pending = collections.deque()

    def refill():
        for task in itertools.islice(tasks, window - len(pending)):
            pending.append(executor.submit(_synthesize, task))

    refill()
    while pending:
        deferred.check()
        try:
            result = pending[0].result(timeout=interval)
        except concurrent.futures.TimeoutError:
            continue
        pending.popleft()
        refill()
        yield result


@contextlib.contextmanager
def _sigint_ignored():
    """Ctrl-C ignored inside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _start_pool(workers, pools):
    """Start ``workers`` worker processes into ``pools``; a Ctrl-C meanwhile is raised once it is recorded.

    A ``ProcessPoolExecutor``, not a ``multiprocessing.Pool``: on Ctrl-C the workers finish
    the image at hand and exit (``shutdown``), while ``Pool.terminate`` kills them, and one
    killed in the middle of sending its pairs back leaves the result pipe and its lock
    broken, so ``terminate`` then waited forever (the 1-in-100 hang, seen in
    ``benchmarks/bench_interrupts.py``: joining the pool's result or task thread).

    Meanwhile SIGINT is blocked, and only recorded if it comes through another thread:
    the workers and the executor's thread inherit the blocked signal, so a Ctrl-C never
    interrupts a worker while it starts up (no traceback, no worker half-started).
    """
    spawn = multiprocessing.get_context("spawn")

    def start():
        booted = spawn.Array("i", workers)  # pids of the workers past their start-up
        executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker,
                                                          initargs=(booted,))
        executor.booted = booted
        pools.append(executor)
        for _ in range(workers):  # with spawn, each submit starts one more worker until all are busy
            executor.submit(int)
        return executor

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return start()
    resource_tracker.ensure_running()  # first: starting it unblocks SIGINT again
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if received:
        raise KeyboardInterrupt
    return pools[-1]


def _shut_down(executor):
    """Stop the workers: those still starting up are killed (they hold nothing yet, and
    starting up takes seconds on a busy machine), the others end the image at hand and exit.

    Killing a worker that may be sending its pairs back would leave the result pipe half
    written, and the executor would wait on it forever; so only workers that have not
    finished :func:`_init_worker` are killed, while holding the lock they need to finish it.
    """
    with executor.booted.get_lock():
        running = set(executor.booted[:])
        # The executor has no public list of its processes.
        for process in list(getattr(executor, "_processes", {}).values()):
            if process.pid not in running and process.exitcode is None:
                process.kill()
    executor.shutdown(wait=True, cancel_futures=True)


def _format_bytes(count):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.2f} {unit}"
        count /= 1024


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def check_archive_size(archive_size, patch_size, name="archive_size"):
    """Refuse an archive size below 1 or whose in-memory buffer exceeds half the machine's memory.

    The generator fills one archive in memory before writing it: ``archive_size`` pairs of
    ``patch_size`` x ``patch_size`` x 2 bytes plus 64 bytes of offsets each.
    """
    if archive_size < 1:
        raise ValueError(f"{name} must be >= 1, got {archive_size}")
    per_pair = patch_size * patch_size * 2 + 8 * 8
    memory = _physical_memory() or 64 * 2**30
    if archive_size * per_pair > memory // 2:
        raise ValueError(
            f"{name} {archive_size}: one archive of {archive_size} pairs of {patch_size}x{patch_size} is filled "
            f"in memory, {_format_bytes(archive_size * per_pair)}, more than half of this machine's "
            f"{_format_bytes(memory)}; use at most {memory // 2 // per_pair} (default {ARCHIVE_SIZE})"
        )


def _clear_previous_run(out, prefix):
    """Remove the archives and temporaries an earlier run left in ``out``.

    Removed: the archives an earlier manifest lists, files named like this run's
    archives (``PREFIX_00000.npz``) and leftover temporaries. Any other ``.npz`` would
    mix with the new archives, so the run is refused, naming it, before anything is removed.
    """
    manifest = out / MANIFEST_NAME
    listed = set()
    if manifest.is_file():
        with contextlib.suppress(ArchiveError):
            listed = set(manifest_archives(manifest))
    ours = re.compile(re.escape(prefix) + r"_\d{5}\.npz")
    present = [path for path in out.glob("*.npz") if not path.name.startswith(".")]
    foreign = sorted(path.name for path in present if path.name not in listed and not ours.fullmatch(path.name))
    if foreign:
        raise ValueError(
            f"{out} holds {len(foreign)} .npz file(s) no earlier make-dataset run there listed "
            f"(first: {foreign[0]}); they would mix with the new archives: choose another output "
            "folder or remove them"
        )
    return present + [path for path in out.glob(".*.partial") if ".npz" in path.name or MANIFEST_NAME in path.name]


def generate_dataset(
    out,
    images=None,
    pairs_per_image=1,
    archive_size=ARCHIVE_SIZE,
    config: SynthesisConfig = TRAIN_PROTOCOL,
    seed=0,
    workers=1,
    prefix="pairs",
    progress=True,
):
    """Synthesize pairs from images and write them as archives.

    Args:
        out: output folder (created).
        images: a folder of images, a list of paths, or ``None`` for the embedded photos.
        pairs_per_image: pairs drawn from each image.
        archive_size: pairs per archive; the last archive holds the remainder.
        config: the recipe's image size, patch size and rho.
        seed: the seed of every random choice.
        workers: processes synthesizing in parallel (``0`` means all cores).
        prefix: archive names are ``{prefix}_{k:05d}.npz``.
        progress: show a tqdm bar and print the summary.

    Returns:
        A :class:`DatasetSummary`; ``manifest.json`` in ``out`` records it with the
        parameters and the run's ``status``. The archives of an earlier run in ``out``
        are removed first.

    Raises:
        OutputFolderBusy: another run is writing to ``out``.
        ValueError: a bad argument, or ``out`` holds ``.npz`` files no earlier run listed.
        DatasetInterrupted: Ctrl-C; the archives written so far are kept and listed in
            the manifest (``"status": "interrupted"``), nothing half-written is left.
    """
    if pairs_per_image < 1:
        raise ValueError(f"pairs_per_image must be >= 1, got {pairs_per_image}")
    check_archive_size(archive_size, config.patch_size)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    check_name(prefix, "prefix")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; the archives need an output folder")
    paths = resolve_image_source(images)
    workers = workers or os.cpu_count() or 1
    out.mkdir(parents=True, exist_ok=True)
    with _interrupts_deferred() as deferred, folder_lock(out):
        summary, status = _generate_into(out, images, paths, pairs_per_image, archive_size, config, seed, workers,
                                         prefix, progress, deferred)
    if status == "interrupted":
        raise DatasetInterrupted(
            f"interrupted: kept {len(summary.archives)} complete archive(s) ({summary.pairs_written} pairs) in {out}, "
            f"listed in its {MANIFEST_NAME}; run the same command again to redo the dataset"
        )
    if progress:
        print(summary)
    return summary


def _generate_into(out, images, paths, pairs_per_image, archive_size, config, seed, workers, prefix, progress,
                   deferred):
    """The body of :func:`generate_dataset`, with ``out`` locked; returns ``(summary, status)``.

    Ctrl-C is raised only where ``deferred`` (a :class:`_DeferredInterrupt`) is checked."""
    leftovers = _clear_previous_run(out, prefix)
    size = config.patch_size
    buffer_images = np.empty((archive_size, size, size, 2), np.uint8)
    buffer_offsets = np.empty((archive_size, 8), np.int64)
    filled = buffered = 0
    summary = DatasetSummary()
    skipped = Counter()
    started = time.perf_counter()
    written, in_flight = [], []  # (name, pairs) of each archive on disk; of the one being written

    def write_manifest(status):
        summary.archives = [name for name, _ in written]
        summary.pairs_written = sum(count for _, count in written)
        summary.images_skipped = dict(skipped)
        summary.seconds = time.perf_counter() - started
        manifest = {
            "parameters": {
                "images": None if images is None else str(images) if isinstance(images, (str, os.PathLike)) else "list",
                "pairs_per_image": pairs_per_image,
                "archive_size": archive_size,
                "image_size": list(config.image_size),
                "patch_size": config.patch_size,
                "rho": config.rho,
                "seed": seed,
            },
            "status": status,
            "summary": {**asdict(summary), "pairs_per_second": summary.pairs_per_second},
        }
        atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2))

    def flush(count):
        name = out / f"{prefix}_{len(written):05d}.npz"
        in_flight[:] = [(str(name), count)]
        write_archive(name, buffer_images[:count], buffer_offsets[:count])
        written.append(in_flight[0])
        in_flight.clear()
        write_manifest("running")

    tasks = ((i, str(p), pairs_per_image, seed, config) for i, p in enumerate(paths))
    pools = []
    status = "failed"
    bar = None
    try:
        # The new manifest (listing nothing yet) replaces the old one before the old archives go.
        write_manifest("running")
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                path.unlink()
        deferred.check()
        if workers > 1:
            results = _polled(_start_pool(workers, pools), tasks, deferred, window=2 * workers + 2)
        else:
            results = map(_synthesize, tasks)
        # After the pool: tqdm's monitor thread would take a Ctrl-C meant for the pool's start.
        bar = tqdm(total=len(paths), unit="img", desc="synthesizing", disable=not progress)
        for index, images_i, offsets_i, reason in results:
            deferred.check()
            bar.update(1)
            if reason is not None:
                skipped[reason.split(" (")[0]] += 1
                summary.skipped_files.append(str(paths[index]))
                warnings.warn(f"skipping {paths[index]}: {reason}", stacklevel=3)
                continue
            summary.images_used += 1
            start = 0
            while start < len(images_i):
                take = min(archive_size - filled, len(images_i) - start)
                buffer_images[filled : filled + take] = images_i[start : start + take]
                buffer_offsets[filled : filled + take] = offsets_i[start : start + take]
                filled += take
                start += take
                buffered += take
                if filled == archive_size:
                    flush(filled)
                    filled = 0
            bar.set_postfix(pairs=buffered)
        if filled:
            flush(filled)
        deferred.check()
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        with _sigint_ignored():  # a second Ctrl-C must not cut the clean-up short
            if bar is not None:
                bar.close()
            for pool in pools:
                _shut_down(pool)
            if in_flight and in_flight[0] not in written and Path(in_flight[0][0]).is_file():
                written.append(in_flight[0])  # interrupted between the rename and the bookkeeping
            for temporary in out.glob(f".*.{os.getpid()}.partial"):
                temporary.unlink(missing_ok=True)
            if status == "failed":  # the error under way says more than a failed manifest write would
                with contextlib.suppress(OSError):
                    write_manifest(status)
            else:
                write_manifest(status)
    return summary, status
