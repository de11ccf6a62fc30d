"""Private working folders in the temporary folder (a local Ray's home and
logs, a long clip's parts), each locked while its run lives, so that a run
killed with `kill -9` leaves nothing for long: the next run of veil that
makes a folder of the same kind removes those no run holds.

A folder is made under a hidden name and given its own name only once its
lock is held, so no other run's sweep can take it for a stale one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

_LOCK = "in-use"  # flock-ed while the folder's run lives


class PrivateFolder:
    """A new folder `PREFIX<random>` in the temporary folder, this run's until `remove`."""

    def __init__(self, prefix: str) -> None:
        sweep(prefix)
        making = Path(tempfile.mkdtemp(prefix="." + prefix))
        self._lock: int | None = os.open(making / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.path = making.with_name(making.name[1:])
        making.rename(self.path)

    def remove(self) -> None:
        """Remove the folder (again while processes that are ending still
        write in it), then let its lock go."""
        for _ in range(20):
            shutil.rmtree(self.path, ignore_errors=True)
            if not os.path.lexists(self.path):
                break
            time.sleep(0.25)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def sweep(prefix: str) -> None:
    """Remove this user's `PREFIX*` folders whose run is gone."""
    for folder in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            lock = os.open(folder / _LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a run of veil's holds it
        finally:
            os.close(lock)
        shutil.rmtree(folder, ignore_errors=True)
