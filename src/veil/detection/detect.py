"""Face detectors: arrays in, Detections out.

The default detector is CenterFace (MIT, its weights shipped in veil/weights),
run by onnxruntime (`veil.detection.engine`) at several scales so that both faces filling
the frame and 10-pixel faces at the back of a crowd are found. In video the
costliest passes are spread over frames (`frame_passes`); tracking carries
faces between them. `veil.detection.gpu` runs the same model on an NVIDIA GPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from veil.detection.engine import Net, fitted_graph
from veil.detection.models import CENTERFACE, ModelSpec
from veil.detections import Detections
from veil.errors import ModelError
from veil.options import DetectionOptions

if TYPE_CHECKING:
    import onnx

RGBImage = npt.NDArray[np.uint8]

_STRIDE = 4  # CenterFace's output maps are a quarter of the input size
_ALIGN = 32  # its input sides must be multiples of 32
CENTERFACE_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, log-size, offset, landmarks


class Detector(Protocol):
    """Anything that finds faces in upright RGB images."""

    model: ModelSpec
    batch: int  # how many video frames `detect_frames` takes at once to best effect

    def detect(self, image: RGBImage) -> Detections: ...

    def expect_clip(self, frames: int) -> None:
        """A hint: the next images are the `frames` frames of one clip (0: not
        a clip). A GPU detector chooses its kernels by it."""
        ...

    def detect_frames(self, images: Sequence[RGBImage], indices: Sequence[int]) -> list[Detections]:
        """Faces in consecutive video frames of one clip, numbered `indices`."""
        ...


class ClipAware(Protocol):
    def expect_clip(self, frames: int) -> None: ...


@contextmanager
def clip(frames: int, *detectors: ClipAware) -> Iterator[None]:
    """Inside it, each of `detectors` knows that the next images are the
    `frames` frames of one clip (`Detector.expect_clip`); after it, that
    they are not, however it was left."""
    for detector in detectors:
        detector.expect_clip(frames)
    try:
        yield
    finally:
        for detector in detectors:
            detector.expect_clip(0)


@dataclass(frozen=True)
class Pass:
    """One search of the image: at `scale`, mirrored or not. The finest pass
    of several (`finest`) enlarges the image for the smallest faces."""

    scale: float
    mirrored: bool = False
    finest: bool = False
    second_finest: bool = False  # at half the finest pass's scale

    @property
    def label(self) -> str:
        """How a plan names it: "centerface x2", "centerface x0.5 mirrored"."""
        return f"centerface x{self.scale:.3g}" + (" mirrored" if self.mirrored else "")


def detection_passes(width: int, height: int, options: DetectionOptions) -> list[Pass]:
    """Every pass a photo gets: each scale, and each but the finest mirrored."""
    scales = detection_scales(width, height, options)
    passes = []
    for index, scale in enumerate(scales):
        passes.append(Pass(scale, finest=index == 0 and len(scales) > 1, second_finest=index == 1))
        if options.mirror and index > 0:
            passes.append(Pass(scale, mirrored=True, second_finest=index == 1))
    return passes


def frame_passes(passes: list[Pass], index: int, options: DetectionOptions) -> list[Pass]:
    """The passes video frame `index` gets when searched on its own (as
    verification attacks an output): every pass on the frames halfway
    between two of the anonymizer's key frames (`veil.detection.schedule`),
    where its own search was thinnest; on the others, the passes coarser
    than the finest two (or the coarsest), over the whole frame."""
    every = options.video_key_every
    return passes if index % every == every // 2 else cheap_passes(passes)


def cheap_passes(passes: list[Pass]) -> list[Pass]:
    """The plain passes coarser than the finest two; when there are none,
    the coarsest plain pass."""
    plain = [p for p in passes if not p.mirrored]
    cheap = [p for p in plain if not p.finest and not p.second_finest]
    return cheap or [min(plain, key=lambda p: p.scale)]


def detection_scales(width: int, height: int, options: DetectionOptions) -> list[float]:
    """Scales to search, finest first, each at most twice the next.

    The finest enlarges small images (crowds of tiny faces) up to
    `max_upscale` within `max_pixels`; the coarsest fits the whole image in
    `coarse_side` so that faces filling the frame are seen whole.
    """
    coarse = min(1.0, options.coarse_side / max(width, height))
    fine = min(options.max_upscale, math.sqrt(options.max_pixels / (width * height)))
    scales = [max(fine, coarse)]
    while scales[-1] / 2 > coarse:
        scales.append(scales[-1] / 2)
    if scales[-1] > coarse * 1.001:
        scales.append(coarse)
    return scales


def iter_tiles(width: int, height: int, side: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """(x, y, w, h) windows of at most `side` that cover the image, overlapping
    by at least `overlap` so that a face near a seam lies whole in one tile."""
    for y in _tile_starts(height, side, overlap):
        for x in _tile_starts(width, side, overlap):
            yield x, y, min(side, width - x), min(side, height - y)


def _tile_starts(length: int, side: int, overlap: int) -> list[int]:
    if length <= side:
        return [0]
    count = math.ceil((length - overlap) / (side - overlap))
    step = (length - side) / (count - 1)
    return [round(i * step) for i in range(count)]


class CenterFaceDetector:
    """CenterFace on the CPU. One instance per thread."""

    model = CENTERFACE
    batch = 1

    def __init__(self, options: DetectionOptions | None = None) -> None:
        self.options = options or DetectionOptions()
        self._net = Net(fitted_graph(self.model), CENTERFACE_OUTPUTS)
        wanted = self.options.int8_finest or self.options.int8_next
        self._int8_net = Net(_int8_centerface(), CENTERFACE_OUTPUTS) if wanted else None

    def expect_clip(self, frames: int) -> None:
        pass

    def detect(self, image: RGBImage) -> Detections:
        check_image(image)
        height, width = image.shape[:2]
        return self.search(image, detection_passes(width, height, self.options))

    def detect_frames(self, images: Sequence[RGBImage], indices: Sequence[int]) -> list[Detections]:
        found = []
        for image, index in zip(images, indices, strict=True):
            check_image(image)
            passes = detection_passes(image.shape[1], image.shape[0], self.options)
            found.append(self.search(image, frame_passes(passes, index, self.options)))
        return found

    def iter_pass_finds(self, image: RGBImage, passes: list[Pass]) -> Iterator[tuple[Pass, Detections]]:
        """What each pass finds on its own, in the image's pixels (not yet
        merged). The finest pass comes last: it searches only the windows
        where the plain pass at the next scale saw signs of faces
        (`focus_windows`), or the whole image when no such pass ran."""
        width = image.shape[1]
        mirrored = np.ascontiguousarray(image[:, ::-1]) if any(p.mirrored for p in passes) else None
        evidence: Evidence | None = None
        focused = self.options.focus_threshold > 0 and any(p.finest for p in passes)
        for search in sorted(passes, key=lambda p: p.finest):
            int8 = self._int8(search)
            if search.mirrored and mirrored is not None:
                yield search, self._detect_at_scale(mirrored, search.scale, int8).mirrored(width)
            elif search.finest:
                yield search, self._detect_finest(image, search.scale, evidence)
            else:
                heat = Evidence.empty(image, search.scale) if focused and evidence is None else None
                yield search, self._detect_at_scale(image, search.scale, int8, heat)
                evidence = heat or evidence

    def _int8(self, search: Pass) -> bool:
        """Whether `search` runs in int8: the finest pass with `int8_finest`,
        the passes at half its scale with `int8_next`."""
        if search.finest:
            return self.options.int8_finest
        return self.options.int8_next and search.second_finest

    def search(self, image: RGBImage, passes: list[Pass]) -> Detections:
        """Every pass's finds, merged; each face keeps the pass of its best box."""
        height, width = image.shape[:2]
        found = [finds.labelled(search.label) for search, finds in self.iter_pass_finds(image, passes)]
        return Detections.concatenate(found).clipped(width, height).merged()

    def pass_finds(self, image: RGBImage, search: Pass, heat: Evidence | None = None) -> Detections:
        """What one plain pass finds over the whole image, labelled; with
        `heat`, its face-centre map is kept there too."""
        return self._detect_at_scale(image, search.scale, self._int8(search), heat).labelled(search.label)

    def _detect_finest(
        self, image: RGBImage, scale: float, evidence: Evidence | None, threshold: float | None = None
    ) -> Detections:
        """The finest pass, in the windows `evidence` points to at `threshold`
        (default: the options'), or over the whole image without evidence."""
        if evidence is None:
            return self.detect_in_windows(image, scale, [(0, 0, image.shape[1], image.shape[0])])
        windows = focus_windows(evidence, self.options.focus_threshold if threshold is None else threshold)
        cell = _FOCUS_CELL * _STRIDE / evidence.scale  # in the image's pixels
        return self.detect_in_windows(image, scale, windows, cell / 2, 2 * cell)

    def detect_in_windows(
        self,
        image: RGBImage,
        scale: float,
        windows: list[Window],
        margin: float = 0.0,
        tallest: float = math.inf,
    ) -> Detections:
        """The finest pass's finds in (x, y, w, h) windows of the image,
        without those `within` drops at `margin` and `tallest`. A face the
        window is for lies at least a cell from its edges (`focus_windows`)
        and is small; a larger one the next pass sees whole."""
        found = []
        for window in windows:
            x, y, w, h = window
            finds = self._detect_at_scale(image[y : y + h, x : x + w], scale, self.options.int8_finest)
            found.append(within(finds, window, image, margin, tallest))
        return Detections.concatenate(found)

    def search_windows(self, image: RGBImage, windows: list[Window], passes: list[Pass]) -> Detections:
        """What `passes` find inside each (x, y, w, h) window, each window
        searched as a picture of its own (the finest pass focused within
        it), in the image's pixels, labelled, not yet merged. A find within
        an eighth of the window's shorter side of an edge inside the image,
        or taller than half that side, is dropped: the faces a window is
        for lie well inside it (`veil.detection.schedule`)."""
        found = []
        for window in windows:
            x, y, w, h = window
            crop = np.ascontiguousarray(image[y : y + h, x : x + w])
            finds = Detections.concatenate(
                [f.labelled(search.label) for search, f in self.iter_pass_finds(crop, passes)]
            )
            found.append(within(finds, window, image, min(w, h) / 8, min(w, h) / 2))
        return Detections.concatenate(found)

    def _detect_at_scale(
        self, image: RGBImage, scale: float, int8: bool = False, heat: Evidence | None = None
    ) -> Detections:
        """One pass's finds; with `heat`, its face-centre map is kept there too."""
        net = self._int8_net if int8 and self._int8_net is not None else self._net
        found = []
        for x, y, tile in scaled_tiles(image, scale, self.options):
            heatmap, log_size, offset, _landmarks = net(padded_blob(tile))
            tile_found = decode_centerface(heatmap[0, 0], log_size[0], offset[0], self.options.threshold)
            found.append(tile_found.shifted(x, y))
            if heat is not None:
                heat.add(x, y, heatmap[0, 0], tile.shape[:2])
        return Detections.concatenate(found).scaled(1.0 / scale)


Window = tuple[int, int, int, int]  # x, y, w, h in an image's pixels


def within(
    finds: Detections, window: Window, image: RGBImage, margin: float, tallest: float = math.inf
) -> Detections:
    """`finds` in a window cut out of `image` (in the window's pixels),
    shifted into the image's, without those that come within `margin` px
    of an edge of the window inside the image or are taller than
    `tallest`: in a cut-out window CenterFace sees large false faces (a
    103 px one 21 px from the edge on scikit-image's motorcycle, a 350 px
    one in a people-free HEIC), and halves of faces the edge cuts."""
    x, y, w, h = window
    height, width = image.shape[:2]
    boxes = finds.boxes
    inside = boxes[:, 3] - boxes[:, 1] <= tallest
    if x > 0:
        inside &= boxes[:, 0] >= margin
    if y > 0:
        inside &= boxes[:, 1] >= margin
    if x + w < width:
        inside &= boxes[:, 2] <= w - margin
    if y + h < height:
        inside &= boxes[:, 3] <= h - margin
    return finds.select(np.flatnonzero(inside)).shifted(x, y)


@dataclass
class Evidence:
    """A pass's face-centre heatmap over the whole image, one cell per
    `_STRIDE` pixels of the image at `scale`: where the finest pass looks."""

    scale: float
    heat: npt.NDArray[np.float32]
    width: int  # the image's own size
    height: int

    @classmethod
    def empty(cls, image: RGBImage, scale: float) -> Evidence:
        height, width = image.shape[:2]
        rows, cols = (math.ceil(max(1, round(side * scale)) / _STRIDE) for side in (height, width))
        return cls(scale, np.zeros((rows, cols), np.float32), width, height)

    def add(self, x: int, y: int, heatmap: npt.NDArray[np.float32], size: tuple[int, int]) -> None:
        """A tile's heatmap, its corner at (x, y) of the scaled image."""
        top, left = y // _STRIDE, x // _STRIDE
        rows = min(math.ceil(size[0] / _STRIDE), self.heat.shape[0] - top)
        cols = min(math.ceil(size[1] / _STRIDE), self.heat.shape[1] - left)
        region = self.heat[top : top + rows, left : left + cols]
        np.maximum(region, heatmap[:rows, :cols], out=region)


_FOCUS_CELL = 16  # heatmap cells a side (64 px at the evidence's scale)
_FOCUS_FILL = 0.6  # a window less full of cells to search than this is cut in two
_FOCUS_WHOLE = 0.8  # windows covering this share of the image: search it whole


def focus_windows(evidence: Evidence, threshold: float) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) windows of the image, in its own pixels, for the finest
    pass. The image is cut into cells of `_FOCUS_CELL` heatmap cells; a cell
    whose heatmap reaches `threshold` is searched, and so is each cell next
    to it, so that a face whose centre lies in a cell lies whole in the
    window (`_cell_windows`).

    On widerface-dev at full size every face that the finest pass alone finds
    had its centre in such a cell at threshold 0.02 (benchmarks/passes.py)."""
    rows = math.ceil(evidence.heat.shape[0] / _FOCUS_CELL)
    cols = math.ceil(evidence.heat.shape[1] / _FOCUS_CELL)
    padded = np.zeros((rows * _FOCUS_CELL, cols * _FOCUS_CELL), np.float32)
    padded[: evidence.heat.shape[0], : evidence.heat.shape[1]] = evidence.heat
    cells = padded.reshape(rows, _FOCUS_CELL, cols, _FOCUS_CELL).max(axis=(1, 3)) >= threshold
    cells = cv2.dilate(cells.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    side = _FOCUS_CELL * _STRIDE / evidence.scale  # a cell's side in the image's pixels
    windows = []
    for top, bottom, left, right in _cell_windows(cells, 0, rows, 0, cols):
        x1, y1 = max(0, math.floor(left * side)), max(0, math.floor(top * side))
        x2, y2 = min(evidence.width, math.ceil(right * side)), min(evidence.height, math.ceil(bottom * side))
        windows.append((x1, y1, x2 - x1, y2 - y1))
    if sum(w * h for _, _, w, h in windows) >= _FOCUS_WHOLE * evidence.width * evidence.height:
        return [(0, 0, evidence.width, evidence.height)]
    return windows


def _cell_windows(
    cells: npt.NDArray[np.bool_], top: int, bottom: int, left: int, right: int
) -> Iterator[tuple[int, int, int, int]]:
    """(top, bottom, left, right) cell ranges that hold every True cell of
    the given range: its bounding box, cut in two across its longer side
    while less than `_FOCUS_FILL` of it is True. The halves overlap by two
    cells, so a face up to two cells tall that crosses the cut lies whole in
    one of them."""
    region = cells[top:bottom, left:right]
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if not len(rows):
        return
    top, bottom = top + int(rows[0]), top + int(rows[-1]) + 1
    left, right = left + int(cols[0]), left + int(cols[-1]) + 1
    height, width = bottom - top, right - left
    if max(height, width) < 8 or cells[top:bottom, left:right].mean() >= _FOCUS_FILL:
        yield top, bottom, left, right
    elif height >= width:
        middle = top + height // 2
        yield from _cell_windows(cells, top, middle + 1, left, right)
        yield from _cell_windows(cells, middle - 1, bottom, left, right)
    else:
        middle = left + width // 2
        yield from _cell_windows(cells, top, bottom, left, middle + 1)
        yield from _cell_windows(cells, top, bottom, middle - 1, right)


def scaled_tiles(
    image: RGBImage, scale: float, options: DetectionOptions
) -> Iterator[tuple[int, int, RGBImage]]:
    """The image resized by `scale` and cut into the tiles one pass searches:
    (x, y, tile) with the tile's corner in the resized image."""
    scaled = resized(image, scale)
    height, width = scaled.shape[:2]
    for x, y, w, h in iter_tiles(width, height, options.tile_side, options.tile_overlap):
        yield x, y, scaled[y : y + h, x : x + w]


def resized(image: RGBImage, scale: float) -> RGBImage:
    """The image at `scale` times its size (at least 1 px a side): linear
    when enlarging, area-averaged when reducing."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), dtype=np.uint8)


def padded_blob(image: RGBImage) -> npt.NDArray[np.float32]:
    """CenterFace's input: 1x3xHxW float, sides padded with zeros to multiples of 32."""
    height, width = image.shape[:2]
    blob = np.zeros(
        (1, 3, math.ceil(height / _ALIGN) * _ALIGN, math.ceil(width / _ALIGN) * _ALIGN), np.float32
    )
    blob[0, :, :height, :width] = image.transpose(2, 0, 1)
    return blob


@cache
def _int8_centerface() -> onnx.ModelProto:
    from veil.detection.quantize import Calibration, int8_graph

    calibration = Calibration.bundled("weights/centerface_int8.json")
    if calibration.model_sha256 != CENTERFACE.sha256:
        raise ModelError("centerface_int8.json was measured on other CenterFace weights")
    return int8_graph(fitted_graph(CENTERFACE), calibration.ranges)


def check_image(image: RGBImage) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"detect: expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")


def decode_centerface(
    heatmap: npt.NDArray[np.float32],
    log_size: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    threshold: float,
) -> Detections:
    """Boxes from CenterFace's maps: a peak marks a face centre; its cell holds
    log(height/4), log(width/4) and the sub-cell offset of that centre."""
    rows, cols = np.nonzero(heatmap > threshold)
    return decode_centerface_peaks(
        rows, cols, heatmap[rows, cols], log_size[:, rows, cols], offset[:, rows, cols]
    )


def decode_centerface_peaks(
    rows: npt.NDArray[np.integer],
    cols: npt.NDArray[np.integer],
    scores: npt.NDArray[np.float32],
    log_size: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
) -> Detections:
    """Boxes from the map cells above threshold: (2, N) log sizes and offsets."""
    heights = np.exp(log_size[0]) * _STRIDE
    widths = np.exp(log_size[1]) * _STRIDE
    centre_y = (rows + offset[0] + 0.5) * _STRIDE
    centre_x = (cols + offset[1] + 0.5) * _STRIDE
    boxes = np.column_stack(
        [centre_x - widths / 2, centre_y - heights / 2, centre_x + widths / 2, centre_y + heights / 2]
    )
    return Detections(boxes, scores).merged()
