"""List the metadata a finished file carries, by walking its bytes.

This is the verifier's parser, written apart from the code that writes
outputs (Pillow, pillow-heif, FFmpeg) so that both cannot share a blind spot:
it reads the container structure itself (JPEG segments, PNG chunks, RIFF
chunks, TIFF directories, ISO-BMFF boxes, Matroska elements) and also
searches the whole file for the signatures of EXIF, XMP and IPTC blocks,
wherever they hide.

Each block found is a `Tag`. Only blocks that describe the encoding (sizes,
colour, codec set-up, the muxer's name) are neutral; anything else, including
blocks this parser does not know, counts as identifying: fail closed.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tag:
    name: str
    identifying: bool


_SIGNATURES = {
    b"Exif\x00\x00": "EXIF block",
    b"<x:xmpmeta": "XMP packet",
    b"http://ns.adobe.com/xap/1.0/": "XMP packet",
    b"Photoshop 3.0\x00": "Photoshop/IPTC block",
    b"com.apple.quicktime.location": "QuickTime location",
    b"\xa9xyz": "QuickTime location",
}


def file_tags(path: Path) -> list[Tag]:
    """Every metadata block in the file at `path`, structural and scanned."""
    data = path.read_bytes() if path.stat().st_size < (64 << 20) else None
    if data is None:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return _dedupe([*_structure(memoryview(mapped)), *_scan(mapped)])
    return _dedupe([*_structure(memoryview(data)), *_scan(data)])


def _dedupe(tags: list[Tag]) -> list[Tag]:
    seen: dict[str, Tag] = {}
    for tag in tags:
        if tag.name not in seen or tag.identifying:
            seen[tag.name] = tag
    return sorted(seen.values(), key=lambda t: t.name)


def _scan(data: bytes | mmap.mmap) -> Iterator[Tag]:
    for signature, name in _SIGNATURES.items():
        if data.find(signature) >= 0:
            yield Tag(f"{name} (found in the bytes)", True)


def _structure(data: memoryview) -> list[Tag]:
    head = bytes(data[:16])
    try:
        if head.startswith(b"\xff\xd8"):
            return list(_jpeg(data))
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return list(_png(data))
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return list(_riff(data))
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return list(_tiff(data))
        if head[4:8] == b"ftyp":
            return list(_boxes(data, 0, len(data), ""))
        if head.startswith(b"\x1a\x45\xdf\xa3"):
            return list(_ebml(data, 0, len(data), ""))
    except (struct.error, ValueError, IndexError):
        return [Tag("structure (unparseable)", True)]
    return [Tag("structure (unknown format)", True)]


# JPEG: segments up to the first scan, then anything after the end marker.
_JPEG_NEUTRAL_APP = {(0xE0, b"JFIF\x00"), (0xE0, b"JFXX\x00"), (0xEE, b"Adobe"), (0xE2, b"ICC_PROFILE\x00")}


def _jpeg(data: memoryview) -> Iterator[Tag]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            yield Tag("JPEG segment (malformed)", True)
            return
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        body = bytes(data[pos + 4 : pos + 2 + length])
        if 0xE0 <= marker <= 0xEF:
            ident = next((i for m, i in _JPEG_NEUTRAL_APP if m == marker and body.startswith(i)), None)
            label = body[:12].split(b"\x00")[0].decode("latin-1", "replace") or "?"
            yield Tag(f"JPEG APP{marker - 0xE0} {label}", ident is None)
        elif marker == 0xFE:
            yield Tag("JPEG comment", True)
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the end marker
            end = bytes(data).rfind(b"\xff\xd9")
            if end >= 0 and len(data) - (end + 2) > 0 and any(bytes(data[end + 2 :])):
                yield Tag("data after the end of the JPEG image", True)
            return
        pos += 2 + length


_PNG_NEUTRAL = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs",
    b"iCCP",
}  # fmt: skip


def _png(data: memoryview) -> Iterator[Tag]:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind not in _PNG_NEUTRAL:
            name = kind.decode("latin-1")
            if kind in (b"tEXt", b"zTXt", b"iTXt"):
                key = bytes(data[pos + 8 : pos + 8 + min(length, 79)]).split(b"\x00")[0]
                name += " " + key.decode("latin-1")
            yield Tag(f"PNG {name}", True)
        pos += 12 + length


_RIFF_NEUTRAL = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def _riff(data: memoryview) -> Iterator[Tag]:
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        if kind not in _RIFF_NEUTRAL:
            yield Tag(f"WebP {kind.decode('latin-1').strip()}", True)
        pos += 8 + length + (length & 1)


# TIFF tags that lay out the pixels rather than describe the picture.
_TIFF_NEUTRAL = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 282, 283,
    284, 296, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341, 530, 531, 532,
}  # fmt: skip


def _tiff(data: memoryview) -> Iterator[Tag]:
    order = "<" if bytes(data[:2]) == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    for page in range(64):
        if offset == 0 or offset + 2 > len(data):
            return
        count = struct.unpack(order + "H", data[offset : offset + 2])[0]
        for i in range(count):
            entry = offset + 2 + 12 * i
            tag = struct.unpack(order + "H", data[entry : entry + 2])[0]
            if tag not in _TIFF_NEUTRAL:
                yield Tag(f"TIFF tag {tag}", True)
        if page > 0:
            yield Tag("TIFF extra image (page or thumbnail)", True)
        offset = struct.unpack(order + "I", data[offset + 2 + 12 * count : offset + 6 + 12 * count])[0]


# ISO-BMFF (MP4, MOV, HEIF): boxes to open, and boxes that are plainly structure.
_BOX_CONTAINERS = {"moov", "trak", "mdia", "minf", "stbl", "dinf", "edts", "iprp", "ipco", "udta", "meta"}
_BOX_NEUTRAL = {
    "ftyp", "mdat", "free", "skip", "wide", "mvhd", "tkhd", "mdhd", "hdlr", "vmhd", "smhd", "dref", "stsd",
    "stts", "stss", "ctts", "stsc", "stsz", "stz2", "stco", "co64", "sgpd", "sbgp", "elst", "sdtp", "pitm",
    "iloc", "iref", "idat", "ispe", "pixi", "hvcC", "av1C", "colr", "irot", "imir", "ipma", "clap", "pasp",
    "btrt", "iods", "cslg", "gmhd", "stps", "tref", "load", "tapt", "nmhd", "sthd", "lhvC",
}  # fmt: skip
_TIME_BOXES = {"mvhd", "tkhd", "mdhd"}
_HEIF_NEUTRAL_ITEMS = {b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"hvt1", b"jpeg"}


def _boxes(data: memoryview, start: int, end: int, parent: str) -> Iterator[Tag]:
    pos = start
    while pos + 8 <= end:
        size, kind_raw = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            yield Tag(f"box {kind_raw!r} (malformed)", True)
            return
        kind = kind_raw.decode("latin-1")
        body = pos + header
        if kind == "meta":
            yield from _boxes(data, body + 4, pos + size, "meta")  # a full box: skip version and flags
        elif kind == "udta" or parent == "udta":
            yield from _user_data(data, body, pos + size, kind)
        elif kind == "iinf":
            yield from _heif_items(data, body, pos + size)
        elif kind in _BOX_CONTAINERS:
            yield from _boxes(data, body, pos + size, kind)
        elif kind in _TIME_BOXES and _creation_time(data, body):
            yield Tag(f"{kind} creation time", True)
        elif kind not in _BOX_NEUTRAL:
            yield Tag(f"box {kind}" + (f" in {parent}" if parent else ""), True)
        pos += size


def _user_data(data: memoryview, start: int, end: int, kind: str) -> Iterator[Tag]:
    """udta describes the recording: only the encoder's name is neutral. FFmpeg
    writes it as udta/meta/ilst/\xa9too (MP4) or udta/\xa9too (MOV)."""
    if kind != "udta":
        yield Tag(f"user data {kind}", True)
        return
    for child, child_start, child_end in _children(data, start, end):
        if child == "meta":
            for item, item_start, item_end in _children(data, child_start + 4, child_end):
                if item == "ilst":
                    for entry, _, _ in _children(data, item_start, item_end):
                        yield Tag(f"user data {entry}", entry != "\xa9too")
                elif item != "hdlr":
                    yield Tag(f"user data meta {item}", True)
        else:
            yield Tag(f"user data {child}", child not in ("\xa9too", "\xa9swr", "free"))


def _children(data: memoryview, start: int, end: int) -> Iterator[tuple[str, int, int]]:
    """(kind, body start, end) of each box between start and end."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > end:
            yield "(malformed)", pos, end
            return
        yield kind.decode("latin-1"), pos + 8, pos + size
        pos += size


def _heif_items(data: memoryview, start: int, end: int) -> Iterator[Tag]:
    version = data[start]
    pos = start + 4 + (2 if version == 0 else 4)
    while pos + 8 <= end:
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        if size < 8:
            return
        infe_version = data[pos + 8]
        if infe_version >= 2:
            id_size = 2 if infe_version == 2 else 4
            item_type = bytes(data[pos + 12 + id_size + 2 : pos + 12 + id_size + 6])
            if item_type not in _HEIF_NEUTRAL_ITEMS:
                yield Tag(f"HEIF item {item_type.decode('latin-1')}", True)
        pos += size


def _creation_time(data: memoryview, body: int) -> int:
    version = data[body]
    if version == 1:
        return int(struct.unpack(">Q", data[body + 4 : body + 12])[0])
    return int(struct.unpack(">I", data[body + 4 : body + 8])[0])


# Matroska / WebM (EBML): element IDs veil looks at.
_SEGMENT, _INFO, _TAGS, _TRACKS, _CLUSTER = 0x18538067, 0x1549A966, 0x1254C367, 0x1654AE6B, 0x1F43B675
_EBML_NAMED = {
    0x1941A469: "attachments",
    0x1043A770: "chapters",
    0x7BA9: "title",
    0x4461: "date",
    0x536E: "track name",
}
_EBML_OPEN = {_SEGMENT, _INFO, _TAGS, _TRACKS, 0xAE, 0x7373, 0x67C8}  # also TrackEntry, Tag, SimpleTag
_NEUTRAL_TAG_NAMES = {"ENCODER", "DURATION", "HANDLER_NAME", "VENDOR_ID", "LANGUAGE"}


def _ebml(data: memoryview, start: int, end: int, parent: str) -> Iterator[Tag]:
    pos = start
    while pos < end:
        element, pos = _ebml_number(data, pos, keep_marker=True)
        size, pos = _ebml_number(data, pos, keep_marker=False)
        stop = end if size < 0 else min(end, pos + size)
        if element == _CLUSTER:
            pass
        elif element in _EBML_NAMED:
            yield Tag(f"Matroska {_EBML_NAMED[element]}", True)
        elif element == 0x45A3:  # TagName
            name = bytes(data[pos:stop]).decode("utf-8", "replace").upper()
            yield Tag(f"Matroska tag {name}", name not in _NEUTRAL_TAG_NAMES)
        elif element in _EBML_OPEN:
            yield from _ebml(data, pos, stop, parent)
        pos = stop


def _ebml_number(data: memoryview, pos: int, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad EBML number")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = -1  # unknown size
    return value, pos + length
