"""Atomic writes (a hidden temporary file in the same folder, then a rename) and folder locks.

A reader (or a resumed run) sees the old file or the new one, never half of one.
Temporary names carry the writer's process id, so two processes never share one, and a
folder lock (:func:`folder_lock`) keeps a second run out of a folder a run is writing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: folders are not locked there
    fcntl = None

__all__ = ["replacing", "atomic_write_text", "atomic_write_json", "atomic_save_model", "FolderBusy",
           "folder_lock", "LOCK_NAME", "remove_stale_temporaries", "check_name", "read_json"]

LOCK_NAME = ".hnet_keras.lock"


def read_json(path, what="file"):
    """The JSON value in ``path``, or a one-line ValueError naming it (unreadable, not UTF-8, not JSON)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable {what} ({error})") from error


def check_name(text, what="name"):
    """``text`` as a name of a file or folder inside an output folder, or a one-line ValueError:
    no separator, no ``..``, not absolute, not hidden (hidden names are temporaries), so what
    is written under it stays in its folder and is seen by the readers."""
    text = str(text)
    if not text or text.startswith(".") or "/" in text or "\\" in text or os.path.isabs(text):
        raise ValueError(f"{what} {text!r}: must be a plain name (no '/', '..', leading '.' or absolute path); "
                         "outputs stay in their folder")
    return text


class FolderBusy(OSError):
    """Another process holds the folder's lock (see :func:`folder_lock`)."""


@contextlib.contextmanager
def folder_lock(folder, command="make-dataset", advice="wait for it to finish or choose another output folder",
                name=LOCK_NAME):
    """Hold ``folder``'s lock while inside, refusing a second writer with :class:`FolderBusy`.

    An ``flock`` on ``folder/.hnet_keras.lock`` (or ``name``; the file records the owner's pid): the kernel
    releases it when the process ends, however it ends, so a killed run never blocks the next.

    Args:
        folder: an existing folder.
        command: the kind of run, named in the refusal ("another COMMAND run (pid N) ...").
        advice: what the refused user can do, ending the refusal.
        name: the lock file's name (runs of different kinds in one folder lock different names).
    """
    folder = Path(folder)
    path = folder / name
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            owner = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            owner = f" (pid {owner})" if owner.isdigit() else ""
            raise FolderBusy(f"{folder}: another {command} run{owner} is writing to this folder; {advice}") from None
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)  # the previous owner removed the file between our open and our lock
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _temporary(path, temporary_name=None, keep_suffix=False):
    """The temporary beside ``path``, unique to this process (see :func:`replacing`)."""
    pid = os.getpid()
    if temporary_name is not None:
        return path.with_name(f".{pid}{temporary_name}" if temporary_name.startswith(".") else
                              f".{pid}.{temporary_name}")
    if keep_suffix:
        return path.with_name(f".{pid}.tmp-{path.name}")
    return path.with_name(f".{path.name}.{pid}.partial")


def remove_stale_temporaries(folder):
    """Remove the temporaries :func:`replacing` left in ``folder`` (from killed writers).

    Call it only while holding the folder's lock: then no other writer is using them.
    Returns the names removed.
    """
    removed = []
    for temporary in Path(folder).glob(".*"):
        name = temporary.name
        if temporary.is_file() and (name.endswith(".partial") or ".tmp-" in name):
            temporary.unlink(missing_ok=True)
            removed.append(name)
    return removed


@contextlib.contextmanager
def replacing(path, temporary_name=None, keep_suffix=False):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any failure (an interrupt included) the temporary file is removed and the
    error goes on, so nothing half-written is left for a loader to pick up. The
    temporary's name always holds the process id, so two processes writing the same
    file never share a temporary.

    Args:
        path: the final file.
        temporary_name: a name for the temporary, to which the pid is prefixed
            (``.tmp-x.keras`` becomes ``.<pid>.tmp-x.keras``).
        keep_suffix: a temporary ending in the real suffix (``.<pid>.tmp-<name>``), for
            writers that pick their format from it (Keras); the default is
            ``.<name>.<pid>.partial``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path, temporary_name, keep_suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return Path(path)


def atomic_save_model(model, path, weights_only=False):
    """``model.save`` (or ``save_weights``) atomically.

    The temporary name keeps the real suffix (``.<pid>.tmp-last.keras``), which Keras needs
    to pick the format.
    """
    with replacing(path, keep_suffix=True) as temporary:
        if weights_only:
            model.save_weights(temporary)
        else:
            model.save(temporary)
    return Path(path)


def atomic_write_json(path, value):
    """Write ``value`` as indented JSON atomically; returns the path."""
    return atomic_write_text(path, json.dumps(value, indent=2) + "\n")
