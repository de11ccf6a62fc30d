"""Atomic outputs: a temporary file beside the target, then a link into place.

A link fails if the target exists, so veil never overwrites a file, and a
half-written output never appears under its final name: if anything fails
before the link, the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from veil.errors import (
    EmptyInputError,
    ImageTooLargeError,
    OutputError,
    OutputExistsError,
    UnreadableInputError,
)


@contextlib.contextmanager
def atomic_output(path: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes `path`.

    Without `replace` an existing `path` is never touched (OutputExistsError);
    with it (reports, never media) the old file is swapped out atomically.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not replace and (path.exists() or path.is_symlink()):
        raise OutputExistsError(f"output exists, not overwriting: {path}")
    fd, name = tempfile.mkstemp(prefix=".veil-", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        _land(temporary, path, replace)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def publish_bytes(path: Path, data: bytes, replace: bool = False) -> None:
    """Atomically create (or with `replace`, swap in) `path` holding `data`."""
    with atomic_output(path, replace=replace) as temporary, temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _land(temporary: Path, path: Path, replace: bool) -> None:
    if replace:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError as e:
        raise OutputExistsError(f"output exists, not overwriting: {path}") from e
    except OSError:
        # Filesystems without hard links: the existence check above has to do.
        if path.exists():
            raise OutputExistsError(f"output exists, not overwriting: {path}") from None
        os.replace(temporary, path)


def check_input_file(path: Path, max_bytes: int) -> None:
    """Refuse, with a reason, anything that is not a readable, non-empty regular file."""
    try:
        stat = path.stat()
    except FileNotFoundError as e:
        raise UnreadableInputError("no such file") from e
    except OSError as e:
        raise UnreadableInputError(f"cannot read file: {e.strerror or e}") from e
    if not path.is_file():
        raise UnreadableInputError("not a regular file")
    if not os.access(path, os.R_OK):
        raise UnreadableInputError("permission denied")
    if stat.st_size == 0:
        raise EmptyInputError("empty file (0 bytes)")
    if stat.st_size > max_bytes:
        raise ImageTooLargeError(f"file is larger than {max_bytes} bytes")
