"""The web export's runtime download and page description (no browser).

The browser itself is tested in test_web_page.py.
"""

import hashlib
import io
import os
import tarfile

import pytest

from tf_enet import data, web
from tf_enet.data import download
from tf_enet.web import runtime, site

from browser import StaticServer

FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.wasm")


def _tarball(path, files):
    """An npm-style tarball: each file under package/dist/ holding its name."""
    with tarfile.open(path, "w:gz") as archive:
        for name in files:
            contents = f"contents of {name}".encode()
            member = tarfile.TarInfo(f"package/dist/{name}")
            member.size = len(contents)
            archive.addfile(member, io.BytesIO(contents))
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def served_tarball(tmp_path):
    served = tmp_path / "registry"
    served.mkdir()
    sha256 = _tarball(served / "onnxruntime-web-0.0.1.tgz", FILES)
    with StaticServer(str(served)) as server:
        yield server, f"{server.url}/onnxruntime-web-0.0.1.tgz", sha256


def test_runtime_is_downloaded_once_and_cached(served_tarball, tmp_path):
    server, url, sha256 = served_tarball
    cache = tmp_path / "cache"
    files = runtime.read_runtime(cache_dir=str(cache), url=url, sha256=sha256, files=FILES)
    assert files == {name: f"contents of {name}".encode() for name in FILES}
    assert os.listdir(cache / "web") == ["onnxruntime-web-0.0.1.tgz"]
    again = runtime.read_runtime(cache_dir=str(cache), url=url, sha256=sha256, files=FILES)
    assert again == files
    assert server.requests == 1


def test_runtime_with_another_digest_is_refused_and_not_cached(served_tarball, tmp_path):
    _, url, _ = served_tarball
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(web.WebRuntimeError, match=f"expected {wrong}"):
        runtime.read_runtime(cache_dir=str(cache), url=url, sha256=wrong, files=FILES)
    assert os.listdir(cache / "web") == []


def test_a_cached_tarball_that_changed_is_downloaded_again(served_tarball, tmp_path):
    server, url, sha256 = served_tarball
    cache = tmp_path / "cache"
    (cache / "web").mkdir(parents=True)
    (cache / "web" / "onnxruntime-web-0.0.1.tgz").write_bytes(b"truncated")
    files = runtime.read_runtime(cache_dir=str(cache), url=url, sha256=sha256, files=FILES)
    assert sorted(files) == sorted(FILES)
    assert server.requests == 1


def test_a_failed_download_names_the_url_and_the_offline_option(served_tarball, tmp_path):
    server, _, sha256 = served_tarball
    missing = f"{server.url}/missing.tgz"
    with pytest.raises(web.WebRuntimeError, match="HTTP 404.*--web_runtime"):
        runtime.read_runtime(cache_dir=str(tmp_path), url=missing, sha256=sha256, files=FILES)
    # The runtime error is a download error, which the commands report in one line.
    assert issubclass(web.WebRuntimeError, download.DownloadError)


def test_runtime_from_a_local_tarball_or_package_folder(tmp_path):
    tarball = tmp_path / "onnxruntime-web.tgz"
    _tarball(tarball, FILES)
    expected = {name: f"contents of {name}".encode() for name in FILES}
    assert runtime.read_runtime(str(tarball), files=FILES) == expected
    package = tmp_path / "node_modules" / "onnxruntime-web"
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    os.makedirs(package.parent)
    os.rename(tmp_path / "unpacked" / "package", package)
    assert runtime.read_runtime(str(package), files=FILES) == expected
    assert runtime.read_runtime(str(package / "dist"), files=FILES) == expected


def test_a_local_copy_without_a_needed_file_is_named(tmp_path):
    tarball = tmp_path / "old.tgz"
    _tarball(tarball, FILES[:1])
    with pytest.raises(web.WebRuntimeError, match=f"old.tgz lacks {FILES[1]}"):
        runtime.read_runtime(str(tarball), files=FILES)
    not_a_tarball = tmp_path / "page.html"
    not_a_tarball.write_text("<html>")
    with pytest.raises(web.WebRuntimeError, match="Cannot read .*page.html"):
        runtime.read_runtime(str(not_a_tarball), files=FILES)
    with pytest.raises(web.WebRuntimeError, match="does not exist"):
        runtime.read_runtime(str(tmp_path / "nowhere"), files=FILES)


def test_model_info_records_the_geometry_and_classes():
    info = data.DatasetInfo(
        name="toy",
        class_names=("road", "car"),
        palette=((128, 64, 128), (0, 0, 142)),
        ignore_index=255,
    )
    described = site.model_info({"train": {"height": 8, "width": 16}}, info, (8, 16))
    assert described["format"] == web.MODEL_INFO_FORMAT
    assert described["model"] == "model.onnx"
    assert described["class_names"] == ["road", "car"]
    assert described["palette"] == [[128, 64, 128], [0, 0, 142]]
    assert described["ignore_index"] == 255
    assert (described["input"]["height"], described["input"]["width"]) == (8, 16)
    assert described["input"]["fit"] == "letterbox" and described["input"]["pad_value"] == 0
    assert described["input"]["resize"] == "bilinear" and described["input"]["antialias"]
    assert described["logits"] == {"resize": "bilinear", "half_pixel_centers": True}
    assert site.model_info(None, info, None)["input"]["height"] is None
