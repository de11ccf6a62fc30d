"""veil's exceptions: one tree, so callers can catch exactly what they mean.

VeilError
├── InputError              a file veil cannot or will not read
│   ├── UnreadableInputError    missing, a directory, no permission
│   ├── EmptyInputError         zero bytes
│   ├── UnsupportedFormatError  not a photo format veil handles
│   ├── CorruptInputError       truncated or damaged data
│   ├── ImageTooLargeError      more pixels than allowed (decompression bombs)
│   └── DecodeLimitError        decoding ran past its time or memory limit, or crashed
├── OutputError             veil refuses to write or could not write
│   └── OutputExistsError       the output path exists already
├── ModelError              the bundled detection model is missing or altered
├── PlanError               a mask plan that is malformed, of another schema or for another file
├── SeekError               a clip that cannot be cut into parts: it is done in one piece
├── DeviceUnavailableError  --device cuda without a GPU veil can use
├── RecognitionUnavailableError  dlib or its models are not installed (veil[audit])
├── WorkerDiedError         the worker (a process or a Ray actor) doing a file died, each try
├── DecoderGoneError        the decoding server ended before a child took the request
├── JournalError            a batch journal that cannot be opened, read or written
├── RayStartError           Ray is missing, or would not start or connect
├── PrivateNetworkError     no network namespace of veil's own (for a local Ray)
└── ReviewError             a run or file that cannot be reviewed, or an edit refused
    ├── RejectedError           Apply's render failed verification and was not swapped in
    └── NotFoundError           the review page asked for something that is not there
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from veil.report import FileReport


class VeilError(Exception):
    """Base of every error veil raises on purpose."""


class InputError(VeilError):
    """A file veil cannot or will not read."""


class UnreadableInputError(InputError):
    """The path is missing, is not a regular file, or cannot be opened."""


class EmptyInputError(InputError):
    """The file has no bytes."""


class UnsupportedFormatError(InputError):
    """The file is not in a format veil anonymizes."""


class CorruptInputError(InputError):
    """The file is truncated or its data is damaged."""


class ImageTooLargeError(InputError):
    """The image declares more pixels than veil will decode."""


class DecodeLimitError(InputError):
    """Decoding the file ran past its time or memory limit, or killed its
    decoder (`veil.media.isolate`)."""


class OutputError(VeilError):
    """An output could not be written, or writing it would destroy something."""


class OutputExistsError(OutputError):
    """The output path exists already; veil never overwrites."""


class ModelError(VeilError):
    """The bundled model file is missing or does not match its checksum."""


class PlanError(VeilError, ValueError):
    """A mask plan veil cannot use: malformed, of an unknown schema, or made
    for another file."""


class SeekError(VeilError):
    """A clip whose frames, read from a key frame on, are not those its
    packets' timestamps promise, or whose parts did not come out as one
    piece would: it is anonymized in one piece instead."""


class DeviceUnavailableError(VeilError):
    """The device asked for (`--device cuda`) cannot be used here."""


class RecognitionUnavailableError(VeilError):
    """dlib or its models are not installed (pip install 'veil[audit]')."""


class WorkerDiedError(VeilError):
    """The worker process or Ray actor doing a file died on every try."""

    def __init__(self, worker: str, attempts: int) -> None:
        super().__init__(f"the {worker} processing it died {attempts} times (out of memory, or killed)")


class DecoderGoneError(VeilError):
    """The decoding server ended before a child took the request (it is
    started again, once)."""


class JournalError(VeilError):
    """A batch journal that cannot be opened, read or written."""


class RayStartError(VeilError):
    """Ray is missing, or would not start or connect."""


class PrivateNetworkError(VeilError):
    """This system refuses veil a network namespace of its own."""


class ReviewError(VeilError):
    """The run or one of its files cannot be reviewed, or an edit is refused (one line)."""


class RejectedError(ReviewError):
    """Apply rendered the draft, and the render failed verification: it was
    not swapped in. `report` is the render's report, with the findings."""

    def __init__(self, message: str, report: FileReport) -> None:
        super().__init__(message)
        self.report = report


class NotFoundError(ReviewError):
    """The review page asked for a file, frame or region that is not there."""


def quiet_library_logs() -> None:
    """For veil's own processes (the CLI, its workers, the decoding server):
    what a library logs about a damaged file (Pillow's TIFF reader logs an
    error, then raises) reaches no terminal. Python prints the records of a
    program that set up no logging on stderr, beside the one line veil
    gives each file."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
