"""Fixtures: photos made in code from scikit-image's public-domain astronaut;
and the suite's network guard: no test may reach beyond this machine."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import socket
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import piexif
import pytest
import skimage.data
from PIL import Image

# Where CenterFace finds the astronaut's face, x1, y1, x2, y2 (checked in test_detect).
ASTRONAUT_FACE = (175, 54, 275, 180)

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Witness</dc:creator>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


class NetworkUse(AssertionError):
    """A test made veil (or a library under it) reach beyond this machine. Not an
    OSError, so that code which treats a dead network as normal cannot swallow it."""


# Socket events whose address says where a packet would go (or where a server
# would listen); AF_UNIX and AF_NETLINK sockets never leave the machine.
_ADDRESSED = frozenset({"socket.bind", "socket.connect", "socket.sendmsg", "socket.sendto"})
_NAMED = frozenset(
    {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}
)
_REACHED: list[str] = []  # attempts not yet held against a test
_allowed: list[str] = []  # reasons, while a test deliberately uses this machine's own outward address


def _on_this_machine(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a name to look up, or "" (every interface)
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _where_beyond(event: str, args: tuple[object, ...]) -> str | None:
    """The host (and port) this event would reach, if that is beyond loopback."""
    port: object = None
    if event in _ADDRESSED:
        sock, address = args
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return None
        if not isinstance(address, tuple):  # None: sendmsg on a connected socket
            return None
        host, port = address[0], address[1]
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        if host is None:  # the wildcard for a server: its bind is checked
            return None
    elif event == "socket.getnameinfo" and isinstance(args[0], tuple):
        host, port = args[0][0], args[0][1]
    else:
        host = args[0]
    if _on_this_machine(host):
        return None
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    name = f"[{name}]" if ":" in name else name or "every interface"
    return name if port is None else f"{name}:{port}"


def _network_guard(event: str, args: tuple[object, ...]) -> None:
    if event not in _ADDRESSED and event not in _NAMED:  # every audited event comes here: stay cheap
        return
    where = _where_beyond(event, args)
    if where is None or _allowed:
        return
    verb = "listen on" if event == "socket.bind" else "reach"
    _REACHED.append(f"{where} ({event})")
    raise NetworkUse(f"veil tried to {verb} {where} ({event}); the tests stay on this machine")


sys.addaudithook(_network_guard)  # for the whole session: an audit hook cannot be removed


@pytest.fixture(autouse=True)
def _stays_on_this_machine() -> Iterator[None]:
    """Fail the test in which an attempt was made, even if its NetworkUse was caught."""
    yield
    if _REACHED:
        attempts = ", ".join(taken_attempts())
        pytest.fail(f"veil tried to reach {attempts}: the tests stay on this machine", pytrace=False)


def taken_attempts() -> list[str]:
    """The attempts recorded so far, which then no longer fail the test (for the guard's own tests)."""
    attempts = list(_REACHED)
    _REACHED.clear()
    return attempts


# Variables that make onnxruntime keep its telemetry to itself: with any of
# them set (CI=true on most CI machines), a check that veil silences it could
# not fail. Tests of what veil writes and sends run without them.
TELEMETRY_SILENCERS = ("ORT_DISABLE_TELEMETRY", "CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "TF_BUILD")


def unsilenced(env: dict[str, str]) -> dict[str, str]:
    """`env` without TELEMETRY_SILENCERS: veil must silence onnxruntime itself."""
    return {key: value for key, value in env.items() if key not in TELEMETRY_SILENCERS}


@contextmanager
def outward_allowed(reason: str) -> Iterator[None]:
    """Let a test use this machine's own outward address (a UDP connect sends
    nothing; a TCP connect to it stays on this machine)."""
    _allowed.append(reason)
    try:
        yield
    finally:
        _allowed.remove(reason)


@pytest.fixture(scope="session")
def astronaut() -> npt.NDArray[np.uint8]:
    return np.asarray(skimage.data.astronaut(), dtype=np.uint8)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jpeg_bytes(pixels: npt.NDArray[np.uint8], quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def identifying_exif(orientation: int = 1, thumbnail: bytes | None = None) -> bytes:
    """EXIF with a camera, a serial number, dates, GPS and (optionally) a thumbnail."""
    exif = {
        "0th": {
            piexif.ImageIFD.Make: b"PhoneCo",
            piexif.ImageIFD.Model: b"Model X",
            piexif.ImageIFD.Orientation: orientation,
            piexif.ImageIFD.DateTime: b"2026:03:01 12:00:00",
            piexif.ImageIFD.Artist: b"Jane Witness",
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: b"2026:03:01 12:00:00",
            piexif.ExifIFD.BodySerialNumber: b"SN-123456789",
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((52, 1), (31, 1), (1234, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((13, 1), (24, 1), (5678, 100)),
        },
        "1st": {piexif.ImageIFD.Compression: 6} if thumbnail else {},
        "thumbnail": thumbnail,
    }
    return bytes(piexif.dump(exif))


def with_iptc(jpeg: bytes) -> bytes:
    """Insert a Photoshop APP13 segment holding an IPTC by-line after SOI."""
    byline = b"Jane Witness"
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(byline)) + byline
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    payload = b"Photoshop 3.0\x00" + resource
    segment = b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


@pytest.fixture
def tagged_jpeg(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> Path:
    """The astronaut as a JPEG carrying GPS, serial, an EXIF thumbnail, XMP, IPTC, a comment."""
    thumb = jpeg_bytes(np.asarray(Image.fromarray(astronaut).resize((96, 96))))
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(
        buffer, "JPEG", quality=90, exif=identifying_exif(thumbnail=thumb), xmp=XMP, comment=b"taken by Jane"
    )
    path = tmp_path / "in" / "protest.jpg"
    path.parent.mkdir()
    path.write_bytes(with_iptc(buffer.getvalue()))
    return path


def stored_sideways(pixels: npt.NDArray[np.uint8], orientation: int) -> npt.NDArray[np.uint8]:
    """The pixels a phone would store for an upright picture with this EXIF orientation."""
    turns = {1: 0, 3: 2, 6: 1, 8: 3}[orientation]  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(pixels, k=turns))


@pytest.fixture
def make_photo(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> Callable[..., Path]:
    """Write the astronaut in a given format under tmp_path/in."""

    def make(name: str, fmt: str | None = None, **save: object) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(astronaut).save(path, fmt, **save)
        return path

    return make


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds almost no data (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
