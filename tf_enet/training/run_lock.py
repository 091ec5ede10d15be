"""One training run per checkpoint directory at a time.

Two runs in one directory would write the same backup, best model and
history. The first run holds an exclusive `flock` on `<dir>/train.lock`,
which records its PID, host and start time; a second run is refused with
those. The kernel releases the lock when its process ends, however it
ends, so the file a killed run leaves behind names a process that is gone:
the next run takes the lock over and says so. Where the file system has no
`flock` (some network file systems), a lock whose process is not running
on this host is taken over the same way.
"""

import datetime
import errno
import fcntl
import json
import os
import socket

from absl import logging

from tf_enet.training.errors import TrainingError

LOCK_FILE = "train.lock"


def _holder():
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _describe(holder):
    if not holder:
        return "a process that left no record"
    return f"PID {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode("utf-8") or "null")
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


def _is_running(holder):
    """Whether the holder's process still runs (unknowable on another host)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid")), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True  # runs as another user, or an unreadable record
    return True


class RunLock:
    """Holds `<directory>/train.lock` while a run trains there.

    Use as a context manager around the run; the lock file is removed when
    the run ends.

    Args:
        directory: str. The run's checkpoint directory (it must exist).
    """

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd = None

    def acquire(self):
        """Takes the lock, or refuses while another run holds it.

        Raises:
            TrainingError: another process holds the lock: the message names
                the directory and the process (PID, host, start time).
        """
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = _read_holder(fd)
                no_flock = error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
                if not (no_flock and (holder is None or not _is_running(holder))):
                    os.close(fd)
                    raise TrainingError(
                        f"--checkpoint_dir {self.directory} is in use by another "
                        f"training run ({_describe(holder)}; {self.path}). Wait for it "
                        "to finish or choose another --checkpoint_dir."
                    ) from None
            # The previous holder removes the file as it releases the lock: a
            # lock taken on a removed file guards nothing, so open it again.
            try:
                same_file = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)
        previous = _read_holder(fd)
        if previous is not None:
            logging.warning(
                "Took over the lock %s left by %s, which is no longer running "
                "(it ended without releasing it, e.g. killed or crashed).",
                self.path,
                _describe(previous),
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(_holder()).encode("utf-8"))
        self._fd = fd

    def release(self):
        """Removes the lock file and releases the lock."""
        if self._fd is None:
            return
        try:
            os.remove(self.path)
        except OSError:
            pass  # a full or read-only disk must not hide the run's own error
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
