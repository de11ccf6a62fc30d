"""veil's exceptions: one tree, so callers can catch exactly what they mean.

VeilError
├── InputError              a file veil cannot or will not read
│   ├── UnreadableInputError    missing, a directory, no permission
│   ├── EmptyInputError         zero bytes
│   ├── UnsupportedFormatError  not a photo format veil handles
│   ├── CorruptInputError       truncated or damaged data
│   ├── ImageTooLargeError      more pixels than allowed (decompression bombs)
│   ├── DecodeLimitError        decoding ran past its time or memory limit, or crashed
│   └── SeekError               a video that cannot be read in pieces from its key frames
├── OutputError             veil refuses to write or could not write
│   └── OutputExistsError       the output path exists already
├── ModelError              the bundled detection model is missing or altered
└── PlanError               a mask plan that is malformed, of another schema or for another file
"""

from __future__ import annotations

import logging


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


class SeekError(InputError):
    """A video whose frames, read from a key frame on, are not those its
    packets' timestamps promise: it is anonymized in one piece instead."""


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


def quiet_library_logs() -> None:
    """For veil's own processes (the CLI, its workers, the decoding server):
    what a library logs about a damaged file (Pillow's TIFF reader logs an
    error, then raises) reaches no terminal. Python prints the records of a
    program that set up no logging on stderr, beside the one line veil
    gives each file."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
