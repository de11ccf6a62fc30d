"""Text in a picture: where it is, and which of it is hidden.

A licence plate names a car's owner, a name badge or an ID card names its
wearer, a house number locates a home. veil finds text with PaddleOCR's
PP-OCRv4 detector (DB, shipped inside veil: `veil/weights/README.md`),
which marks where text is and reads none of it. Each line of text it marks
becomes one box.

What is hidden (`read_text`) follows from how the two kinds of text look:

- **Small text is masked**, as a box: plates, badges, name tags, screens,
  house numbers. Their letters are small beside a face at the same
  distance (a plate's are about a third of a face's height, a badge's a
  twentieth), and they come alone, or in lines of different sizes (a
  plate's registration under the name of its state).
- **Signs are left readable** (placards, banners, shop signs) in pictures
  of people: what a protest photo documents. A sign is written to be read
  from afar, in lines of large letters stacked one above another. A sign
  is listed in the plan with the decision `drop`, so a reviewer sees it
  and can mask it with one key.

A line of text is a sign when the picture shows people (`SIGN_FACES` sure
faces at least: one sure face can be a false one on a car), its letters
are at least `SIGN_LETTERS` of the height of the picture's typical sure
face, and another such line of letters of about the same height
(`SAME_HEIGHT`) sits right above or below it; smaller print on the board
of a sign is part of the sign. Letters taller than `LARGEST` of the
picture's shorter side are never masked: no plate on plates-dev came
closer than 14%, while one-line banners and the headline of a placard do,
and so does texture the detector takes for text (a flower's heart). Any
other text is masked: a picture without people holds nobody's placard, and
a single line is masked however large (a person can unmask a one-line
banner in the review). Text over a face that is masked is not listed: the
detector marks eyes and mouths now and then, and the face's mask hides
them anyway.

People wear what names them. Below the largest sure faces (`CHESTS` of
them, at least `CHEST_FACE` pixels tall: a badge's letters are a twentieth
of a face's height, unreadable below that) the chest is searched again,
closer (`find_lines`): those letters are near the detector's floor when a
picture is searched whole. Large text silences small text (beside a
placard the detector no longer marks the astronaut's name badge: its map
there falls from 1.0 to 0.0), so the chests are searched with every line
already found blanked out. A second search of the whole picture, blanked
so, added 6 lines to 129 on the crowd photos with signs of
`benchmarks/signs.json`, all of them texture, for half again the time: it
is not made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from veil.detection.models import TEXT_DETECTOR, ModelSpec

if TYPE_CHECKING:
    from veil.detection.engine import Net

RGBImage = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]

# DB's post-processing, as PaddleOCR sets it for this model, but for the
# growth: a box grown by 2.0 (not 1.6) takes in whole plates, frame and
# all (24 of 24 plates on plates-dev at least half covered, against 23).
_PIXEL_THRESHOLD = 0.3  # a pixel is text when the map says so with this probability
_LINE_THRESHOLD = 0.5  # a line is kept when its pixels average this much
_GROWTH = 2.0  # DB marks a shrunk kernel of each line; grown back by area * this / perimeter
_MIN_KERNEL = 3  # pixels of the map: thinner marks are noise
# A mark thicker than this share of the map's shorter side is no line of
# text: a whole smoky or dark picture now and then lights up at once.
_MAX_KERNEL = 0.12
_MEAN = _STD = 0.5  # the model's input: (pixel / 255 - 0.5) / 0.5, in BGR order

CHESTS = 2
CHEST_FACE = 80
_CLOSER_SIDE = 640  # a chest (or a masked box, by verification) is searched enlarged to this
_CHEST_WIDTH = 3.0  # face widths across, centred on the face
_CHEST_HEIGHT = 3.0  # face heights down, from the chin

SIGN_FACES = 2
SIGN_LETTERS = 0.25
SAME_HEIGHT = 2.0
LARGEST = 0.15
_PAD_ACROSS = 0.25  # a masked line is grown by this many letter heights at each end
_PAD_DOWN = 0.15  # and by this many above and below


class TextLabel(StrEnum):
    TEXT = "text"  # small text: masked
    SIGN = "sign"  # large text: left readable


class TextWhy(StrEnum):
    """Why a line of text is masked or left readable, in the plan's words."""

    SMALL = "small text: may name or locate someone (a plate, a badge, a screen)"
    SIGN = "a sign: lines of large letters, left readable"
    LARGE = "letters too large for a plate or a badge, left readable"
    ON_SIGN = "on a sign: smaller print on the board of a sign, left readable"


@dataclass(frozen=True)
class TextLine:
    """One line of text: its box (x1, y1, x2, y2, grown around the letters),
    the height of its letters and the detector's score, in image pixels."""

    box: Box
    letters: float
    score: float


@dataclass(frozen=True)
class FoundText:
    """A line of text and what veil decided for it."""

    line: TextLine
    label: TextLabel
    why: TextWhy

    @property
    def masked(self) -> bool:
        return self.label is TextLabel.TEXT


class TextDetector:
    """PP-OCRv4's text detector on CPU. A picture is searched at `side`
    pixels on its longer side at most; a smaller one as it is, or, with
    `enlarge`, enlarged to `side`. (Enlarging photos of 357 to 653 pixels
    found no plate more on plates-dev, and took 1.6 times as long.)"""

    model: ModelSpec = TEXT_DETECTOR

    def __init__(self, side: int = 960, enlarge: bool = False) -> None:
        self.side = side
        self.enlarge = enlarge
        self._net = _net()

    def lines(self, image: RGBImage) -> list[TextLine]:
        """Every line of text in an HxWx3 RGB image."""
        height, width = image.shape[:2]
        scale = self.side / max(height, width)
        if not self.enlarge:
            scale = min(1.0, scale)
        map_height = max(32, round(height * scale / 32) * 32)
        map_width = max(32, round(width * scale / 32) * 32)
        resized = cv2.resize(image[:, :, ::-1], (map_width, map_height), interpolation=cv2.INTER_LINEAR)
        blob = ((resized.astype(np.float32) / 255.0 - _MEAN) / _STD).transpose(2, 0, 1)[None]
        probability = self._net(np.ascontiguousarray(blob))[0][0, 0]
        return _lines(probability, width / map_width, height / map_height)


def find_lines(image: RGBImage, faces: Sequence[Sequence[float]], side: int = 960) -> list[TextLine]:
    """Every line of text in `image` whose sure faces are `faces` (x1, y1,
    x2, y2): the picture searched whole at `side`, then the chests below
    the faces with what was found blanked out (module docstring)."""
    lines = text_detector(side).lines(image)
    if not lines:
        return chest_lines(image, faces)
    more = joined([], chest_lines(blanked(image, lines), faces))
    # a blank's edges against what was around it can look like a letter: what the
    # chests show beside a line found already is not taken
    return lines + [line for line in more if not any(_overlap(line.box, board(seen)) for seen in lines)]


def _overlap(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def blanked(image: RGBImage, lines: Sequence[TextLine]) -> RGBImage:
    """A copy of `image` with each line's box filled with its mean colour."""
    out = image.copy()
    height, width = image.shape[:2]
    for line in lines:
        x1, y1 = max(0, int(line.box[0])), max(0, int(line.box[1]))
        x2, y2 = min(width, int(np.ceil(line.box[2]))), min(height, int(np.ceil(line.box[3])))
        if x2 > x1 and y2 > y1:
            out[y1:y2, x1:x2] = out[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    return out


def chest_lines(image: RGBImage, faces: Sequence[Sequence[float]]) -> list[TextLine]:
    """Lines of text on the chests below the `CHESTS` largest of `faces`
    (x1, y1, x2, y2) at least `CHEST_FACE` tall, in image pixels."""
    tall = sorted((f for f in faces if f[3] - f[1] >= CHEST_FACE), key=lambda f: f[1] - f[3])[:CHESTS]
    found = []
    for x1, y1, x2, y2 in tall:
        centre, face_width, face_height = (x1 + x2) / 2, x2 - x1, y2 - y1
        half = _CHEST_WIDTH / 2 * face_width
        found += lines_within(image, (centre - half, y2, centre + half, y2 + _CHEST_HEIGHT * face_height))
    return found


def lines_within(image: RGBImage, area: Box) -> list[TextLine]:
    """The lines of text in `area` (x1, y1, x2, y2) of `image`, searched
    closer (enlarged to `_CLOSER_SIDE`), in image pixels; none in an area
    under 8 pixels across."""
    height, width = image.shape[:2]
    left, top = max(0, int(area[0])), max(0, int(area[1]))
    right, bottom = min(width, int(area[2]) + 1), min(height, int(area[3]) + 1)
    if right - left < 8 or bottom - top < 8:
        return []
    return [
        TextLine((x1 + left, y1 + top, x2 + left, y2 + top), line.letters, line.score)
        for line in text_detector(_CLOSER_SIDE, enlarge=True).lines(image[top:bottom, left:right])
        for x1, y1, x2, y2 in [line.box]
    ]


def joined(lines: Sequence[TextLine], more: Sequence[TextLine]) -> list[TextLine]:
    """`lines` and those of `more` that are not one of them again (neither
    box has its centre inside the other)."""
    out = list(lines)
    for line in more:
        if not any(centre_in(line.box, seen.box) or centre_in(seen.box, line.box) for seen in out):
            out.append(line)
    return out


def _lines(probability: npt.NDArray[np.float32], scale_x: float, scale_y: float) -> list[TextLine]:
    """DB's post-processing: each connected mark of the map whose pixels
    average `_LINE_THRESHOLD`, as its rotated rectangle grown back around
    the letters, then as an upright box in image pixels."""
    marks = cv2.dilate((probability > _PIXEL_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(marks, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    map_height, map_width = probability.shape
    thickest = _MAX_KERNEL * min(map_height, map_width)
    lines = []
    for contour in contours:
        (centre_x, centre_y), (long, short), angle = cv2.minAreaRect(contour)
        thickness = min(long, short)
        if thickness < _MIN_KERNEL or thickness > thickest:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        inside = np.zeros((h, w), np.uint8)
        cv2.drawContours(inside, [contour - np.array([x, y])], -1, 1, thickness=-1)
        score = float(probability[y : y + h, x : x + w][inside > 0].mean())
        if score < _LINE_THRESHOLD:
            continue
        grow = long * short * _GROWTH / (2 * (long + short))
        corners = cv2.boxPoints(((centre_x, centre_y), (long + 2 * grow, short + 2 * grow), angle))
        x1, y1 = corners.min(axis=0)
        x2, y2 = corners.max(axis=0)
        box = (
            max(0.0, float(x1) * scale_x),
            max(0.0, float(y1) * scale_y),
            min(map_width * scale_x, float(x2) * scale_x),
            min(map_height * scale_y, float(y2) * scale_y),
        )
        # the letters' height: the grown line's thickness, in image pixels
        letters = (thickness + 2 * grow) * (scale_x + scale_y) / 2
        lines.append(TextLine(box, round(float(letters), 1), round(score, 3)))
    return sorted(lines, key=lambda line: (line.box[1], line.box[0]))


def read_text(
    lines: Sequence[TextLine], faces: Sequence[Sequence[float]], size: tuple[int, int]
) -> list[FoundText]:
    """What to do with each line of text of a picture of `size` (width,
    height) whose masked faces are `faces` (x1, y1, x2, y2): the module
    docstring's rules. Lines over a masked face are left out."""
    face_boxes = [tuple(map(float, f)) for f in faces]
    lines = [line for line in lines if not any(centre_in(line.box, face) for face in face_boxes)]
    people = len(face_boxes) >= SIGN_FACES
    face_height = float(np.median([f[3] - f[1] for f in face_boxes])) if people else None
    stacked = _stacked(lines)
    whys = []
    for line, grouped in zip(lines, stacked, strict=True):
        if face_height is not None and grouped and line.letters >= SIGN_LETTERS * face_height:
            whys.append(TextWhy.SIGN)
        elif line.letters > LARGEST * min(size):
            whys.append(TextWhy.LARGE)
        else:
            whys.append(TextWhy.SMALL)
    boards = [board(line) for line, why in zip(lines, whys, strict=True) if why is not TextWhy.SMALL]
    found = []
    for line, why in zip(lines, whys, strict=True):
        if why is TextWhy.SMALL and any(centre_in(line.box, area) for area in boards):
            why = TextWhy.ON_SIGN
        if why is TextWhy.SMALL:
            found.append(FoundText(_padded(line, size), TextLabel.TEXT, why))
        else:
            found.append(FoundText(line, TextLabel.SIGN, why))
    return found


def board(line: TextLine) -> Box:
    """A sign's line grown by its letters' height all round: the board
    between and around a sign's lines."""
    x1, y1, x2, y2 = line.box
    return x1 - line.letters, y1 - line.letters, x2 + line.letters, y2 + line.letters


def _padded(line: TextLine, size: tuple[int, int]) -> TextLine:
    """A masked line grown by half a letter at each end and a little above
    and below: the detector's box can end inside a line's first or last
    letter, and neighbouring words then touch."""
    x1, y1, x2, y2 = line.box
    across, down = _PAD_ACROSS * line.letters, _PAD_DOWN * line.letters
    box = (max(0.0, x1 - across), max(0.0, y1 - down), min(size[0], x2 + across), min(size[1], y2 + down))
    return TextLine(box, line.letters, line.score)


def _stacked(lines: Sequence[TextLine]) -> list[bool]:
    """For each line, whether another line of about the same letter height
    sits right above or below it (overlapping across, less than a letter
    apart down): two lines of one sign."""
    stacked = [False] * len(lines)
    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            b = lines[j]
            if max(a.letters, b.letters) > SAME_HEIGHT * min(a.letters, b.letters):
                continue
            across = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
            gap = max(a.box[1], b.box[1]) - min(a.box[3], b.box[3])
            narrower = min(a.box[2] - a.box[0], b.box[2] - b.box[0])
            if across >= 0.3 * narrower and gap <= (a.letters + b.letters) / 2:
                stacked[i] = stacked[j] = True
    return stacked


def centre_in(box: Sequence[float], outer: Sequence[float]) -> bool:
    """Whether the centre of `box` lies inside `outer` (both x1, y1, x2, y2)."""
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= centre_x <= outer[2] and outer[1] <= centre_y <= outer[3]


@cache
def _net() -> Net:
    """The detector's one session in this process, shared by every size
    (each session holds about 130 MB)."""
    from veil.detection.engine import Net, fitted_graph  # onnxruntime loads only when text is searched

    return Net(fitted_graph(TEXT_DETECTOR), [])


@cache
def text_detector(side: int = 960, enlarge: bool = False) -> TextDetector:
    """One loaded text detector per process and setting: the graph is loaded
    once for every file a process anonymizes or verifies."""
    return TextDetector(side, enlarge)
