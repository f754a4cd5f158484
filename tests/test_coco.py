"""download-coco against a real HTTP server on 127.0.0.1 serving a small zip of real images."""

import hashlib
import io
import re
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from hnet_keras import cli
from hnet_keras.data import coco


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless ``server.ranges`` is off.

    ``server.cut_after`` lists, per coming request, how many body bytes to send
    before dropping the connection (``None``: the whole body).
    """

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        header = self.headers.get("Range")
        record = {"path": name, "range": header, "status": None, "sent": 0}
        server.requests.append(record)
        data = server.files.get(name)
        if data is None:
            record["status"] = 404
            self.send_error(404)
            return
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", header or "")
        if match and server.ranges:
            start, status = int(match.group(1)), 206
            if start >= len(data):
                record["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        record["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = server.cut_after.pop(0) if server.cut_after else None
        if cut is not None:
            body = body[:cut]
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()
        record["sent"] = len(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def coco_zip():
    """A val2017-shaped zip of real PNG and JPEG images; returns (bytes, {name: image})."""
    rng = np.random.default_rng(0)
    images, buffer = {}, io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("val2017/", b"")
        for i, ext in enumerate([".jpg", ".png", ".jpg", ".png", ".jpg"]):
            image = rng.integers(0, 256, size=(48 + 8 * i, 64, 3), dtype=np.uint8)
            ok, encoded = cv2.imencode(ext, image)
            assert ok
            name = f"val2017/{i + 1:012d}{ext}"
            bundle.writestr(name, encoded.tobytes())
            images[name] = image
    return buffer.getvalue(), images


@pytest.fixture
def server(coco_zip):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.daemon_threads = True
    httpd.files = {"val2017.zip": coco_zip[0]}
    httpd.requests, httpd.cut_after, httpd.ranges = [], [], True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def expected(coco_zip):
    data = coco_zip[0]
    return {"size": len(data), "md5": hashlib.md5(data).hexdigest()}


def download(server, dest, expected, **kwargs):
    kwargs.setdefault("progress", False)
    return coco.download_coco("val2017", dest, base_url=server.base_url, expected=expected,
                              chunk_size=1024, timeout=5, **kwargs)


def assert_images_match(folder, images):
    for name, image in images.items():
        decoded = cv2.imread(str(folder.parent / name), cv2.IMREAD_COLOR)
        assert decoded is not None, name
        assert decoded.shape == image.shape
        if name.endswith(".png"):  # lossless
            np.testing.assert_array_equal(decoded, image)


def test_table_holds_the_official_splits():
    assert set(coco.SPLITS) == {"train2017", "val2017", "test2017"}
    for entry in coco.KNOWN_ZIPS.values():
        assert entry["size"] > 100_000_000
        assert re.fullmatch(r"[0-9a-f]{32}", entry["md5"])
    assert coco.zip_url("val2017") == "http://images.cocodataset.org/zips/val2017.zip"
    assert coco.zip_url("val2017", "http://mirror/x") == "http://mirror/x/val2017.zip"


def test_full_download_and_unzip(server, tmp_path, coco_zip, expected):
    folder = download(server, tmp_path, expected)
    assert folder == tmp_path / "val2017"
    assert sorted(p.name for p in folder.iterdir()) == sorted(n.split("/")[1] for n in coco_zip[1])
    assert_images_match(folder, coco_zip[1])
    assert (tmp_path / "val2017.zip").read_bytes() == coco_zip[0]
    assert not (tmp_path / "val2017.zip.partial").exists()
    assert [r["range"] for r in server.requests] == [None]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".val2017.extracted", ".val2017.zip.verified"]


def test_interrupted_download_resumes_with_range(server, tmp_path, coco_zip, expected):
    data = coco_zip[0]
    cut = len(data) // 2
    server.cut_after = [cut]
    with pytest.raises(coco.DownloadError) as error:
        download(server, tmp_path, expected)
    message = str(error.value)
    assert server.base_url + "val2017.zip" in message and "resume" in message
    partial = tmp_path / "val2017.zip.partial"
    assert partial.stat().st_size == cut
    assert not (tmp_path / "val2017.zip").exists() and not (tmp_path / "val2017").exists()

    folder = download(server, tmp_path, expected)
    first, second = server.requests
    assert first["range"] is None and first["sent"] == cut
    assert second["range"] == f"bytes={cut}-" and second["status"] == 206
    assert second["sent"] == len(data) - cut < len(data)
    assert (tmp_path / "val2017.zip").read_bytes() == data
    assert not partial.exists()
    assert_images_match(folder, coco_zip[1])


def test_server_without_ranges_restarts_from_zero(server, tmp_path, coco_zip, expected):
    server.ranges = False
    junk = b"junk that must not survive"
    (tmp_path / "val2017.zip.partial").write_bytes(junk)
    download(server, tmp_path, expected, unzip=False)
    assert server.requests[0]["range"] == f"bytes={len(junk)}-" and server.requests[0]["status"] == 200
    assert (tmp_path / "val2017.zip").read_bytes() == coco_zip[0]


def test_partial_longer_than_the_servers_file_starts_again(server, tmp_path, coco_zip, expected):
    data = coco_zip[0]
    (tmp_path / "val2017.zip.partial").write_bytes(b"x" * len(data))
    with pytest.raises(coco.ChecksumError, match=f"is {len(data)} bytes, but val2017.zip should be"):
        download(server, tmp_path, dict(expected, size=len(data) + 10))
    assert [(r["range"], r["status"]) for r in server.requests] == [(f"bytes={len(data)}-", 416), (None, 200)]


def test_wrong_checksum_keeps_nothing(server, tmp_path, expected):
    wrong = dict(expected, md5="0" * 32)
    with pytest.raises(coco.ChecksumError, match=r"val2017\.zip") as error:
        download(server, tmp_path, wrong)
    assert "0" * 32 in str(error.value) and expected["md5"] in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_wrong_size_is_refused_before_downloading(server, tmp_path, expected):
    with pytest.raises(coco.ChecksumError, match=r"val2017\.zip"):
        download(server, tmp_path, dict(expected, size=expected["size"] + 1))
    assert not (tmp_path / "val2017.zip").exists()


def test_second_call_downloads_nothing(server, tmp_path, coco_zip, expected):
    folder = download(server, tmp_path, expected)
    assert download(server, tmp_path, expected) == folder
    (tmp_path / "val2017.zip").unlink()  # the marker alone says the split is done
    assert download(server, tmp_path, expected) == folder
    assert len(server.requests) == 1


def test_verified_zip_is_not_downloaded_again(server, tmp_path, coco_zip, expected):
    archive = download(server, tmp_path, expected, unzip=False)
    assert archive == tmp_path / "val2017.zip" and not (tmp_path / "val2017").exists()
    (tmp_path / ".val2017.zip.verified").unlink()  # forces a real MD5 check of the zip
    assert download(server, tmp_path, expected, unzip=False) == archive
    download(server, tmp_path, expected)  # unzips the existing zip
    assert len(server.requests) == 1
    assert_images_match(tmp_path / "val2017", coco_zip[1])


def test_killed_unzip_is_detected_and_redone(server, tmp_path, coco_zip, expected):
    folder = download(server, tmp_path, expected)
    # as if killed mid-unzip: a truncated image, no marker, a leftover work folder
    victim = sorted(folder.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:10])
    (tmp_path / ".val2017.extracted").unlink()
    (tmp_path / ".val2017.unzipping" / "val2017").mkdir(parents=True)
    assert download(server, tmp_path, expected) == folder
    assert_images_match(folder, coco_zip[1])
    assert not (tmp_path / ".val2017.unzipping").exists()
    assert len(server.requests) == 1


def test_existing_bad_zip_is_refused(server, tmp_path, expected):
    (tmp_path / "val2017.zip").write_bytes(b"x" * expected["size"])
    with pytest.raises(coco.ChecksumError, match=r"val2017\.zip"):
        download(server, tmp_path, expected)
    assert server.requests == []


def closed_port():
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_names_the_url(tmp_path, expected):
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(coco.DownloadError, match=re.escape(url + "/val2017.zip")):
        coco.download_coco("val2017", tmp_path, base_url=url, expected=expected, progress=False, timeout=2)


def test_local_folder_mirror(tmp_path, coco_zip, expected):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "val2017.zip").write_bytes(coco_zip[0])
    folder = coco.download_coco("val2017", tmp_path / "data", base_url=mirror, expected=expected, progress=False)
    assert_images_match(folder, coco_zip[1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        coco.download_coco("val2014", "unused")
    with pytest.raises(ValueError, match="md5"):
        coco.download_coco("val2017", "unused", expected={"size": 10, "md5": "nope"})


def test_cli_download_coco(server, tmp_path, coco_zip, expected, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("hnet_keras.data.coco",))  # not the keras-importing modules
    monkeypatch.setitem(coco.KNOWN_ZIPS, "val2017", expected)

    with pytest.raises(SystemExit) as exit_:
        cli.main(["download-coco", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "(default: val2017)" in help_text and coco.DEFAULT_BASE_URL in help_text

    dest = tmp_path / "coco"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["download-coco", "--base-url", server.base_url, "--dest", str(dest)])
    assert exit_.value.code == 0
    assert str(dest / "val2017") in capsys.readouterr().out
    assert_images_match(dest / "val2017", coco_zip[1])

    dead = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["download-coco", "--base-url", dead, "--dest", str(tmp_path / "x"), "--no-unzip"])
    assert exit_.value.code == 2  # like every command: one line, exit 2
    err = capsys.readouterr().err
    assert err.startswith("hnet_keras download-coco: error: cannot download " + dead + "val2017.zip")
    assert len(err.strip().splitlines()) == 1
