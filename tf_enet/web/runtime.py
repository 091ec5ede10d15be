"""The JavaScript runtime a web export ships: onnxruntime-web, pinned.

The runtime is tens of megabytes of WebAssembly, so it is not part of
tf_enet: an export takes it from the npm package's tarball, downloaded once
from the npm registry (checked against its SHA-256) and cached under
`$TF_ENET_CACHE/web/`, or from a local copy for machines without internet:
the tarball (`npm pack onnxruntime-web@VERSION`) or an unpacked package
(`node_modules/onnxruntime-web`).

onnxruntime-web rather than LiteRT.js: it is the more used of the two, it
runs every model `tf_enet.exporting.export_onnx` writes on WebAssembly in
every current browser and on WebGPU where there is one, whereas LiteRT.js
cannot take the int8 export and needs WebGPU on some browsers.
"""

import hashlib
import io
import os
import tarfile

from tf_enet import artifacts
from tf_enet.data import download
from tf_enet.data.scan import default_cache_dir

VERSION = "1.31.1"
TARBALL = f"onnxruntime-web-{VERSION}.tgz"
URL = f"https://registry.npmjs.org/onnxruntime-web/-/{TARBALL}"
SHA256 = "bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c"
# The package's files the page loads, from its dist/ folder: the bundle with
# the WebGPU and WebAssembly execution providers, and the WebAssembly build
# that both run on (its module and binary; WebGPU needs the asyncify build).
FILES = (
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
)
# Where downloaded tarballs are cached, under `default_cache_dir()`.
CACHE_SUBDIR = "web"


class WebRuntimeError(download.DownloadError):
    """The runtime could not be found, downloaded or read."""


def read_runtime(source=None, *, cache_dir=None, url=URL, sha256=SHA256, files=FILES):
    """The runtime's files, from a local copy or the (cached) npm tarball.

    Args:
        source: str or None. A tarball of the npm package (`.tgz`), or a
            directory holding the unpacked package (with `dist/`) or its
            `dist/` folder itself. None: the pinned tarball, downloaded
            from `url` on first use and cached.
        cache_dir: str or None. Defaults to `$TF_ENET_CACHE`, else
            `~/.cache/tf_enet`; the tarball goes to `<cache_dir>/web/`.
        url: str. Where the pinned tarball is downloaded from.
        sha256: str. The tarball's expected SHA-256 (hex), checked on
            download and on every use of the cached copy.
        files: sequence of str. The file names wanted from `dist/`.

    Returns:
        dict str -> bytes: each of `files` and its contents.

    Raises:
        WebRuntimeError: naming the file or URL, if the download fails, the
            tarball's digest differs, or a wanted file is missing.
    """
    if source is None:
        return _read_tarball(cached_tarball(cache_dir=cache_dir, url=url, sha256=sha256), files)
    source = os.fspath(source)
    if os.path.isdir(source):
        return _read_directory(source, files)
    if os.path.isfile(source):
        return _read_tarball(source, files)
    raise WebRuntimeError(
        f"--web_runtime {source} does not exist; expected the onnxruntime-web npm "
        f"tarball (npm pack onnxruntime-web@{VERSION}) or its unpacked folder."
    )


def cached_tarball(*, cache_dir=None, url=URL, sha256=SHA256):
    """The path of the pinned tarball in the cache, downloaded if missing.

    Args:
        cache_dir, url, sha256: as in `read_runtime`.

    Returns:
        str. The cached tarball, whose SHA-256 is `sha256`.

    Raises:
        WebRuntimeError: the download failed or gave other bytes than
            expected; nothing is left in the cache then.
    """
    path = os.path.join(cache_dir or default_cache_dir(), CACHE_SUBDIR, os.path.basename(url))
    if os.path.isfile(path) and _file_sha256(path) == sha256:
        return path

    def write(tmp_path):
        try:
            download.fetch(url, tmp_path)
        except download.DownloadError as err:
            raise WebRuntimeError(
                f"{err} To export without internet, pass --web_runtime with a copy "
                f"made elsewhere: npm pack onnxruntime-web@{VERSION}."
            ) from None
        digest = _file_sha256(tmp_path)
        if digest != sha256:
            raise WebRuntimeError(
                f"The download of {url} has SHA-256 {digest}; expected {sha256}. "
                f"Nothing was cached; try again, or pass --web_runtime."
            )

    artifacts.write_atomically(path, write)
    return path


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_tarball(path, files):
    try:
        with tarfile.open(path, "r:gz") as archive:
            # npm tarballs hold the package under "package/".
            members = {os.path.basename(m.name): m for m in archive.getmembers() if m.isfile()}
            missing = [name for name in files if name not in members]
            if missing:
                raise WebRuntimeError(
                    f"{path} lacks {', '.join(missing)}; expected the npm tarball of "
                    f"onnxruntime-web {VERSION}."
                )
            return {name: archive.extractfile(members[name]).read() for name in files}
    except (tarfile.TarError, EOFError, OSError, io.UnsupportedOperation) as err:
        raise WebRuntimeError(
            f"Cannot read {path}: {err}; expected the npm tarball of onnxruntime-web {VERSION}."
        ) from None


def _read_directory(path, files):
    dist = os.path.join(path, "dist")
    if not os.path.isdir(dist):
        dist = path
    missing = [name for name in files if not os.path.isfile(os.path.join(dist, name))]
    if missing:
        raise WebRuntimeError(
            f"{dist} lacks {', '.join(missing)}; expected the onnxruntime-web {VERSION} "
            f"package folder (with dist/) or its dist/ folder."
        )
    contents = {}
    for name in files:
        with open(os.path.join(dist, name), "rb") as f:
            contents[name] = f.read()
    return contents
