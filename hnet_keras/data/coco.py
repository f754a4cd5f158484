"""MS-COCO 2017 images: a resumable, verified download and a crash-safe unzip.

The zips are large (val2017 0.8 GB, train2017 19 GB), so a cut connection must not
cost the bytes already fetched, and a killed run must never leave anything that a
later run would take for good data:

- bytes go to ``{split}.zip.partial``; a later call resumes it with an HTTP
  ``Range`` request, or starts again from zero when the server ignores ranges;
- size and MD5 are checked before the rename to ``{split}.zip``;
- the zip is extracted into a hidden folder that is renamed to ``{split}/`` when
  complete, and the marker ``.{split}.extracted``, written last, records that.

``keras.utils.get_file`` cannot resume, hence the small :func:`_download`. Only the
standard library talks to the server, so any HTTP mirror, a ``file://`` URL or a
plain local folder works as ``base_url`` (the offline path).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from ..fileio import atomic_write_text

__all__ = [
    "DEFAULT_BASE_URL",
    "KNOWN_ZIPS",
    "SPLITS",
    "ChecksumError",
    "DownloadError",
    "download_coco",
    "file_md5",
    "zip_url",
]

DEFAULT_BASE_URL = "http://images.cocodataset.org/zips/"

# Byte size and MD5 of each official zip. The MD5s are those checked by public
# downloaders, e.g. PaddleDetection's ppdet/utils/download.py (train2017, val2017)
# and several COCO download scripts listing all three; the sizes are the
# Content-Length that images.cocodataset.org serves, as recorded in public
# download logs and dataset manifests (val2017 alongside its MD5 and SHA-256).
KNOWN_ZIPS = {
    "train2017": {"size": 19_336_861_798, "md5": "cced6f7f71b7629ddf16f17bbcfab6b2"},
    "val2017": {"size": 815_585_330, "md5": "442b8da7639aecaf257c1dceb8ba8c80"},
    "test2017": {"size": 6_646_970_404, "md5": "77ad2c53ac5d0aea611d422c0938fb35"},
}
SPLITS = tuple(KNOWN_ZIPS)

CHUNK_SIZE = 1 << 20
_BAR = dict(unit="B", unit_scale=True, unit_divisor=1024)


class DownloadError(ConnectionError):
    """The transfer failed; whatever arrived is kept in ``.partial`` for a resume."""


class ChecksumError(ValueError):
    """A zip is not the expected file (size or MD5); it is never kept as ``{split}.zip``."""


def zip_url(split, base_url=DEFAULT_BASE_URL):
    """The URL of ``{split}.zip`` under ``base_url``; a local folder becomes a ``file://`` URL."""
    base = os.fspath(base_url)
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") + f"/{split}.zip"


def file_md5(path, chunk_size=CHUNK_SIZE, progress=False):
    """MD5 hex digest of a file, read in chunks so that 19 GB never sit in memory."""
    path = Path(path)
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file, tqdm(total=path.stat().st_size, desc=f"md5 {path.name}",
                                        disable=not progress, leave=False, **_BAR) as bar:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def download_coco(
    split,
    dest,
    base_url=DEFAULT_BASE_URL,
    unzip=True,
    progress=True,
    expected=None,
    chunk_size=CHUNK_SIZE,
    timeout=60,
):
    """Download, verify and unzip one MS-COCO 2017 image split.

    Calling it again is cheap: a split already extracted, or a zip already
    verified, is not fetched again, and an interrupted download resumes.

    Args:
        split: ``"train2017"``, ``"val2017"`` or ``"test2017"``.
        dest: folder for ``{split}.zip`` and the extracted ``{split}/`` (created).
        base_url: where ``{split}.zip`` lives: the official server, a mirror, a
            ``file://`` URL or a local folder.
        unzip: extract the zip into ``dest``; otherwise stop after the verified zip.
        progress: show tqdm bars.
        expected: ``{"size": int, "md5": str or None}`` overriding :data:`KNOWN_ZIPS`
            (for another mirror's zip, or a test's small one).
        chunk_size: bytes per read from the network and from disk.
        timeout: seconds a connection or a read may stall before it counts as failed.

    Returns:
        The image folder ``dest/{split}``, or the zip ``dest/{split}.zip`` when
        ``unzip`` is false. Once extracted, the zip may be deleted: the marker
        ``dest/.{split}.extracted`` alone makes later calls skip the split.

    Raises:
        DownloadError: the server could not be reached or the transfer broke off;
            the message names the URL, and the partial download is kept for a resume.
        ChecksumError: the download (deleted) or an existing ``{split}.zip`` is not
            the expected file.
        ValueError: a bad argument, or a zip that is not a COCO ``{split}`` zip.
    """
    if split not in KNOWN_ZIPS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    want = _expected(split, expected)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    images, archive = dest / split, dest / f"{split}.zip"
    if unzip and images.is_dir() and (dest / f".{split}.extracted").is_file():
        if progress:
            print(f"{images} is already extracted")
        return images
    if not archive.exists():
        _download(zip_url(split, base_url), archive, want, int(chunk_size), timeout, progress)
    elif _verified(archive, want, int(chunk_size), progress):
        if progress:
            print(f"{archive} is already downloaded and verified")
    else:
        raise ChecksumError(
            f"{archive} exists but is not the expected {split}.zip ({archive.stat().st_size} bytes, "
            f"expected {want['size']}, md5 {want['md5']}); delete it to download it again"
        )
    if not unzip:
        return archive
    _extract(archive, dest, split, progress)
    return images


def _expected(split, expected):
    """The size and MD5 to check, from ``expected`` or the table; validated."""
    entry = KNOWN_ZIPS[split] if expected is None else expected
    if not isinstance(entry, dict) or "size" not in entry:
        raise ValueError(f"expected must be a dict with 'size' and 'md5', got {expected!r}")
    size, md5 = entry["size"], entry.get("md5")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"expected['size'] must be a positive int, got {size!r}")
    if md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", str(md5)):
        raise ValueError(f"expected['md5'] must be 32 hex digits or None, got {md5!r}")
    return {"size": size, "md5": None if md5 is None else str(md5).lower()}


def _stamp(archive, md5):
    """Record that ``archive``, as it is now (size, mtime), has this MD5."""
    stat = archive.stat()
    atomic_write_text(archive.with_name(f".{archive.name}.verified"),
                      json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5}))


def _verified(archive, want, chunk_size, progress):
    """Whether an existing zip is the expected file; the stamp of an earlier check, still
    matching its size and mtime, saves hashing gigabytes again."""
    stat = archive.stat()
    try:
        seen = json.loads(archive.with_name(f".{archive.name}.verified").read_text())
        if seen["size"] == stat.st_size == want["size"] and seen["mtime_ns"] == stat.st_mtime_ns:
            return want["md5"] in (None, seen["md5"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if stat.st_size != want["size"]:
        return False
    md5 = file_md5(archive, chunk_size, progress)
    if want["md5"] not in (None, md5):
        return False
    _stamp(archive, md5)
    return True


def _download(url, archive, want, chunk_size, timeout, progress):
    """Fetch ``url`` into ``archive``: resume ``{archive}.partial`` with an HTTP ``Range``
    request, check size and MD5, then rename (a bad file is deleted, never renamed)."""
    partial = archive.with_name(archive.name + ".partial")
    offset = partial.stat().st_size if partial.exists() else 0
    offset = offset if offset <= want["size"] else 0
    while offset < want["size"]:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 416 and offset:  # the partial file is longer than the server's: start again
                offset = 0
                continue
            reason = f"HTTP {error.code} {error.reason}"
            raise DownloadError(f"cannot download {url}: {reason}{_kept(partial, offset)}") from None
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise DownloadError(f"cannot download {url}: {reason}{_kept(partial, offset)}") from error
        with response:
            offset = offset if response.status == 206 else 0  # a 200 (or file://) is the whole file
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and offset + int(length) != want["size"]:
                raise ChecksumError(f"{url} is {offset + int(length)} bytes, but {archive.name} should be "
                                    f"{want['size']}; is the base URL a mirror of the official zips?")
            with open(partial, "ab" if offset else "wb") as file, tqdm(
                total=want["size"], initial=offset, desc=archive.name, disable=not progress, **_BAR
            ) as bar:
                try:
                    while chunk := response.read(chunk_size):
                        bar.update(file.write(chunk))
                except (OSError, http.client.HTTPException) as error:
                    kept = _kept(partial, file.tell())
                    raise DownloadError(f"the download of {url} broke off ({error}){kept}") from error
        offset = partial.stat().st_size
        if offset < want["size"]:
            raise DownloadError(f"the connection to {url} closed after {offset} of {want['size']} bytes"
                                f"{_kept(partial, offset)}")
    md5 = file_md5(partial, chunk_size, progress)
    if offset != want["size"] or want["md5"] not in (None, md5):
        partial.unlink()
        raise ChecksumError(
            f"the download of {url} into {partial} is not the expected {archive.name}: {offset} bytes, md5 {md5} "
            f"(expected {want['size']} bytes, md5 {want['md5']}); it was deleted, so a new call downloads "
            "it afresh (check the base URL if this repeats)"
        )
    with open(partial, "rb+") as file:
        os.fsync(file.fileno())
    os.replace(partial, archive)
    _stamp(archive, md5)


def _kept(partial, offset):
    if offset:
        return f"; the partial download {partial} ({offset} bytes) is kept: run again to resume"
    return "; nothing was kept (check the URL, or pass a mirror or local folder as the base URL)"


def _extract(archive, dest, split, progress):
    """Unzip into a hidden folder, rename it to ``dest/{split}``, then write the marker."""
    images, work = dest / split, dest / f".{split}.unzipping"
    shutil.rmtree(work, ignore_errors=True)  # from a killed run
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            outside = [m.filename for m in members if PurePosixPath(m.filename).parts[:1] != (split,)]
            if not members or outside:
                raise ValueError(
                    f"{archive} is not a COCO {split} zip: "
                    + (f"{outside[0]!r} lies outside the folder {split}/" if outside else "it is empty")
                )
            with tqdm(total=sum(m.file_size for m in members), desc=f"unzipping {split}",
                      disable=not progress, **_BAR) as bar:
                for member in members:
                    bundle.extract(member, work)
                    bar.update(member.file_size)
        if images.exists():  # a folder without the marker: an unzip that did not finish
            shutil.rmtree(images)
        os.replace(work / split, images)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{archive} is not a readable zip: {error}") from error
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sum(1 for m in members if not m.is_dir())
    atomic_write_text(dest / f".{split}.extracted", json.dumps({"split": split, "zip": archive.name, "files": files}))
