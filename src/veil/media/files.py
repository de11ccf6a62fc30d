"""Atomic outputs: a temporary file beside the target, then a link into place.

A link fails if the target exists, so veil never overwrites a file, and a
half-written output never appears under its final name: if anything fails
before the link, the temporary file is removed.

Symbolic links. veil never writes through one. The folder a run writes
under (`output_root`: the `-o` folder, or the input folder for outputs
written beside their inputs) is taken as the user named it, and may itself
be a link: pointing `-o` at a linked folder is a choice the user made. The
threat is a link planted inside that tree, before the run or during it, to
send an output somewhere else. So below the root every folder is opened
from the one above it with O_NOFOLLOW (made there when missing), the
temporary file is created with O_EXCL|O_NOFOLLOW in the folder veil holds
open, and it is linked (or, for reports, renamed) into place by names
relative to that open folder: nothing resolves through a link once the
folder is open, and a linked folder is refused with "refusing to write
through a symbolic link: PATH". Outside an `output_root` (a `--report FILE`,
a library call), the output's own folder is the root.

Temporary files are named `.veil-<16 hex digits>.part<suffix>` and are held
under an exclusive flock while they are written. A writer killed outright
(SIGKILL, power loss) leaves its temporary file behind; the first time a
veil process writes into a folder it removes the files there of exactly
that name that are regular files and that no process holds locked. Nothing
else is ever deleted, and a temporary file of a run still writing is left
alone. POSIX only (dir_fd, O_NOFOLLOW, flock).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from veil.errors import (
    EmptyInputError,
    ImageTooLargeError,
    OutputError,
    OutputExistsError,
    UnreadableInputError,
)

TEMPORARY_NAME = re.compile(r"\.veil-[0-9a-f]{16}\.part(\.[A-Za-z0-9]+)?")

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_root: contextvars.ContextVar[Path | None] = contextvars.ContextVar("veil_output_root", default=None)
_swept: set[tuple[int, int]] = set()  # folders (st_dev, st_ino) this process cleaned already


@contextlib.contextmanager
def output_root(folder: Path | None) -> Iterator[None]:
    """Outputs written inside this block below `folder` reach their folders
    from `folder` without following any link (None: no change)."""
    if folder is None:
        yield
        return
    token = _root.set(folder)
    try:
        yield
    finally:
        _root.reset(token)


@contextlib.contextmanager
def atomic_output(path: Path, replace: bool = False) -> Iterator[BinaryIO]:
    """Yield a new, empty file to write; on success it becomes `path`.

    Without `replace` an existing `path` is never touched (OutputExistsError);
    with it (reports, never media) the old file, or a link of that name, is
    swapped out atomically. Libraries that write to a path get this file
    object instead (PyAV writes to it), so no name is resolved again.
    """
    try:
        folder = _open_folder(path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        _sweep(folder)
        if not replace and _exists(path.name, folder):
            raise OutputExistsError(f"output exists, not overwriting: {path}")
        temporary, handle = _create_temporary(folder, path)
    except OSError as e:
        os.close(folder)
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:
        os.close(folder)
        raise
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        _land(folder, handle.fileno(), temporary, path, replace)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            if _same_file(handle.fileno(), temporary, folder):  # a name put in its place is not veil's
                os.unlink(temporary, dir_fd=folder)
        with contextlib.suppress(OSError):
            handle.close()  # after the unlink: the lock says "in use" until the name is gone
        os.close(folder)


def publish_bytes(path: Path, data: bytes, replace: bool = False) -> None:
    """Atomically create (or with `replace`, swap in) `path` holding `data`."""
    with atomic_output(path, replace=replace) as handle:
        handle.write(data)


def remove_output(path: Path) -> None:
    """Remove an output veil just landed (its plan could not be written),
    reaching it as atomic_output did; a missing file is no error."""
    try:
        folder = _open_folder(path, create=False)
    except FileNotFoundError:
        return
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.name, dir_fd=folder)
    finally:
        os.close(folder)


def _open_folder(path: Path, create: bool = True) -> int:
    """An open descriptor of `path`'s folder, reached from the output root
    (or the folder itself, outside one) with no link followed below it."""
    root = _root.get()
    below = _below(path.parent, root) if root is not None else None
    if root is None or below is None:
        root, below = path.parent, ()
    if create:
        os.makedirs(root, exist_ok=True)
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    reached = root
    try:
        for name in below:
            reached = reached / name
            inner = _enter(folder, name, reached, create)
            os.close(folder)
            folder = inner
    except BaseException:
        os.close(folder)
        raise
    return folder


def _below(folder: Path, root: Path) -> tuple[str, ...] | None:
    """The names leading from `root` down to `folder`, or None when `folder`
    does not lie under `root` (compared as written, links unresolved)."""
    for inner, outer in ((folder, root), (Path(os.path.abspath(folder)), Path(os.path.abspath(root)))):
        with contextlib.suppress(ValueError):
            names = inner.relative_to(outer).parts
            return None if ".." in names else names
    return None


def _enter(folder: int, name: str, shown: Path, create: bool) -> int:
    """Open the folder `name` inside `folder`, never through a link."""
    try:
        return os.open(name, _FOLDER_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as e:
        raise _refusal(folder, name, shown, e) from e
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=folder)
    try:
        return os.open(name, _FOLDER_FLAGS, dir_fd=folder)
    except OSError as e:  # swapped for a link between mkdir and open
        raise _refusal(folder, name, shown, e) from e


def _refusal(folder: int, name: str, shown: Path, error: OSError) -> OSError | OutputError:
    try:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    except OSError:
        return error
    if stat.S_ISLNK(mode):
        return OutputError(f"refusing to write through a symbolic link: {shown}")
    if error.errno in (errno.ENOTDIR, errno.ELOOP):
        return OutputError(f"not a folder: {shown}")
    return error


def _exists(name: str, folder: int) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _create_temporary(folder: int, path: Path) -> tuple[str, BinaryIO]:
    """A new file of veil's temporary name in `folder`, created exclusively
    (never through a link) and locked while it is written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    suffix = path.suffix if re.fullmatch(r"\.[A-Za-z0-9]+", path.suffix) else ""
    for _ in range(100):
        name = f".veil-{secrets.token_hex(8)}.part{suffix}"
        try:
            fd = os.open(name, flags, 0o600, dir_fd=folder)
        except FileExistsError:
            continue
        with contextlib.suppress(OSError):  # no locks here: a sweep then leaves it alone too
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A sweep may have removed the name before the lock was taken.
        if _same_file(fd, name, folder):
            return name, os.fdopen(fd, "wb")
        os.close(fd)
    raise OSError(errno.EEXIST, "no free temporary name")


def _same_file(fd: int, name: str, folder: int) -> bool:
    try:
        named = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _land(folder: int, fd: int, temporary: str, path: Path, replace: bool) -> None:
    """Give the file held as `fd` the name `path.name`, by names relative to
    `folder`; refuse when the temporary name no longer is that file."""
    name = path.name
    if not _same_file(fd, temporary, folder):
        raise OutputError(f"cannot write {path}: its temporary file was replaced while it was written")
    if replace:
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    else:
        try:
            os.link(temporary, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        except FileExistsError as e:
            raise OutputExistsError(f"output exists, not overwriting: {path}") from e
        except OSError:
            # Filesystems without hard links: the existence check has to do.
            if _exists(name, folder):
                raise OutputExistsError(f"output exists, not overwriting: {path}") from None
            os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    if not _same_file(fd, name, folder):
        raise OutputError(f"cannot write {path}: it was replaced as it was written")
    with contextlib.suppress(OSError):  # the new name survives a crash; not every filesystem can
        os.fsync(folder)


def sweep_beside(path: Path) -> None:
    """Remove the temporary files beside the output `path` that no running
    writer holds, though this process swept that folder before: a worker
    that died writing `path` left its own there (`--ray` restarts only that
    worker, and the others have swept that folder already)."""
    try:
        folder = _open_folder(path, create=False)
    except (OSError, OutputError):  # no such folder, or a link: nothing of veil's to remove
        return
    try:
        _sweep(folder, again=True)
    finally:
        os.close(folder)


def _sweep(folder: int, again: bool = False) -> None:
    """Once per folder and process (or `again`): remove veil's temporary
    files that no running writer holds (left by a killed run). Never fails
    a write."""
    try:
        held = os.fstat(folder)
        key = (held.st_dev, held.st_ino)
        if key in _swept and not again:
            return
        _swept.add(key)
        with os.scandir(folder) as entries:
            stale = [
                e.name
                for e in entries
                if TEMPORARY_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return
    for name in stale:
        with contextlib.suppress(OSError):
            _remove_if_unlocked(folder, name)


def _remove_if_unlocked(folder: int, name: str) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a writer holds it
        if _same_file(fd, name, folder):
            os.unlink(name, dir_fd=folder)
    finally:
        os.close(fd)


def check_input_file(path: Path, max_bytes: int) -> None:
    """Refuse, with a reason, anything that is not a readable, non-empty regular file."""
    try:
        info = path.stat()
    except FileNotFoundError as e:
        raise UnreadableInputError("no such file") from e
    except OSError as e:
        raise UnreadableInputError(f"cannot read file: {e.strerror or e}") from e
    if not path.is_file():
        raise UnreadableInputError("not a regular file")
    if not os.access(path, os.R_OK):
        raise UnreadableInputError("permission denied")
    if info.st_size == 0:
        raise EmptyInputError("empty file (0 bytes)")
    if info.st_size > max_bytes:
        raise ImageTooLargeError(f"file is larger than {max_bytes} bytes")
