"""The pictures the review page shows, made by veil and sent as JPEG:
the original (upright, as veil sees it: HEIC and TIFF included), the
preview (the original drawn from the current draft, as Apply would render
it) and the output file as it is. A video's frames are decoded by index,
never by a browser's clock. Small caches keep stepping through frames quick.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Generic, TypeVar

import cv2
import numpy as np
import numpy.typing as npt
import simplejpeg

from veil.errors import ReviewError
from veil.masks import draw
from veil.media.image import read_image
from veil.media.video import FrameReader
from veil.options import InputLimits
from veil.plan.model import Box
from veil.review.people import crop_around, surest_frame
from veil.review.run import Item, ReviewedRun

Image = npt.NDArray[np.uint8]
_K = TypeVar("_K")
_V = TypeVar("_V")
THUMB_SIDE = 320
PERSON_SIDE = 160  # a track's picture in the gallery
JPEG_QUALITY = 90
PERSON_QUALITY = 85


class View(StrEnum):
    ORIGINAL = "original"
    PREVIEW = "preview"
    OUTPUT = "output"


class _Cache(Generic[_K, _V]):
    """A small least-recently-used cache, safe across threads."""

    def __init__(self, size: int, on_evict: Callable[[_V], None] | None = None) -> None:
        self._size, self._on_evict = size, on_evict
        self._entries: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K, make: Callable[[], _V]) -> _V:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = make()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._size:
                _, evicted = self._entries.popitem(last=False)
                if self._on_evict is not None:
                    self._on_evict(evicted)
        return value


class Pictures:
    def __init__(self, batch: ReviewedRun, limits: InputLimits | None = None) -> None:
        self.batch = batch
        self.limits = limits or InputLimits()
        self._pixels: _Cache[tuple[str, str, int | None], Image] = _Cache(6)
        self._jpegs: _Cache[tuple[str, str, int | None, int], bytes] = _Cache(64)
        self._thumbs: _Cache[tuple[str, int], bytes] = _Cache(2000)
        self._people: _Cache[tuple[str, str, int, Box], bytes] = _Cache(2000)
        self._readers: _Cache[tuple[str, str], tuple[FrameReader, threading.Lock]] = _Cache(
            4, on_evict=lambda entry: entry[0].__exit__()
        )

    def jpeg(self, item: Item, view: View, frame: int | None) -> bytes:
        """One view of a photo (`frame` None) or of a video frame, as JPEG."""
        if item.output is None:
            raise ReviewError(f"{item.name}: anonymize wrote no output to review")
        if item.video != (frame is not None):
            raise ReviewError("a frame number is needed for a video, and only for a video")
        version = self.batch.draft(item).version if view is View.PREVIEW else 0
        return self._jpegs.get(
            (item.id, view.value, frame, version), lambda: _encode(self.pixels(item, view, frame))
        )

    def pixels(self, item: Item, view: View, frame: int | None) -> Image:
        if view is View.PREVIEW:
            plan = self.batch.draft(item).plan
            return draw(self.pixels(item, View.ORIGINAL, frame), plan.masks_at(frame), plan.mask)
        path = item.original if view is View.ORIGINAL else item.output
        if path is None:
            raise ReviewError(f"{item.name}: its {view.value} is not there")
        source = f"{view.value}:{self._output_version(item) if view is View.OUTPUT else 0}"
        if frame is None:
            return self._pixels.get((item.id, source, None), lambda: read_image(path, self.limits).pixels)
        return self._pixels.get((item.id, source, frame), lambda: self._frame(item.id, source, path, frame))

    def _frame(self, item_id: str, source: str, path: Path, frame: int) -> Image:
        reader, lock = self._readers.get((item_id, source), lambda: (FrameReader(path), threading.Lock()))
        with lock:
            try:
                return reader.frame(frame)
            except IndexError as e:
                raise ReviewError(str(e)) from None

    def thumbnail(self, item: Item) -> bytes:
        """A small picture of the output (a video's first frame)."""
        version = self._output_version(item)
        return self._thumbs.get(
            (item.id, version),
            lambda: _encode(_shrunk(self.pixels(item, View.OUTPUT, 0 if item.video else None), THUMB_SIDE)),
        )

    def person(self, item: Item, region_id: str) -> bytes:
        """A video region at its surest frame: the original around its box,
        small (`veil.review.people`). KeyError for a region not in the draft."""
        if not item.video:
            raise ReviewError("a region's picture is for a video's tracks; a photo shows them all at once")
        plan = self.batch.draft(item).plan
        region = plan.region(region_id)
        frame = surest_frame(region)
        box = region.box_at(frame)
        if frame is None or box is None:
            raise ReviewError(f"region {region_id!r} has no frame to show")

        def make() -> bytes:
            x1, y1, x2, y2 = crop_around(box, plan.source.width, plan.source.height)
            crop = self.pixels(item, View.ORIGINAL, frame)[y1:y2, x1:x2]
            return _encode(_shrunk(crop, PERSON_SIDE), PERSON_QUALITY)

        return self._people.get((item.id, region_id, frame, box), make)

    def seconds(self, item: Item) -> list[float]:
        """When each frame of a clip is shown, in seconds from its first."""
        original = item.original
        if not item.video or original is None:
            raise ReviewError("only a clip has frame times")
        # the reader that decodes the original's frames; its timestamps need no decoding, nor its lock
        reader, _ = self._readers.get(
            (item.id, f"{View.ORIGINAL.value}:0"), lambda: (FrameReader(original), threading.Lock())
        )
        return [float(s) for s in reader.seconds()]

    def _output_version(self, item: Item) -> int:
        review = self.batch.file(item).review
        return review.renders if review is not None else 0


def _shrunk(image: Image, side: int) -> Image:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _encode(image: Image, quality: int = JPEG_QUALITY) -> bytes:
    return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=quality, colorspace="RGB"))
