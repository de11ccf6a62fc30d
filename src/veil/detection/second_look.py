"""A second look at a face candidate: its crop searched again, at the sizes
where each detector sees faces best.

The multi-scale search (`veil.detection.detect`) keeps everything CenterFace scores
from 0.1, so that small and blurred faces are not lost; on photos with no
person in them most of what it keeps is texture (petals, leaves, a vase). A
look crops the candidate with its surroundings, resizes the crop so that the
candidate has a size the detectors know well, and asks again: CenterFace and
RetinaFace, a model trained apart from it. A candidate is *confirmed* when a
look finds a face over it again.

- Candidates under `SMALL_FACE` px (the back of a crowd) are enlarged 2, 3
  and 4 times, and each crop is also searched mirrored; confirmed when two
  of those six looks score 0.2 or more.
- Larger ones are brought to 24, 48 and 96 px for CenterFace and to 32, 64
  and 128 px for RetinaFace. Confirmed when CenterFace scores 0.3 or
  RetinaFace 0.5 in any look; *firmly* confirmed when two looks of the same
  detector agree (CenterFace 0.25, RetinaFace 0.5): on the people-free photos
  of ../shared/data and scikit-image that happened for 0.7% of candidates
  scored below 0.5, against 20% of true faces.

A look costs a few small crops, never a pass over the whole picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from veil.detection.detect import CENTERFACE_OUTPUTS, RGBImage, decode_centerface, padded_blob
from veil.detection.engine import Net, fitted_graph
from veil.detection.models import CENTERFACE, RETINAFACE
from veil.detection.retinaface import decode_retinaface_native
from veil.detections import Detections, FloatArray, ious

SMALL_FACE = 16.0  # px: below this a candidate gets the enlarging looks

_FLOOR = 0.02  # detections kept in a look; what counts is the best over the candidate
_OVER = 0.3  # a look's box is over the candidate from this IoU

_SMALL_CONTEXT = 5.0  # crop side, in candidate heights
_SMALL_ENLARGE = (2.0, 3.0, 4.0)
_SMALL_SCORE, _SMALL_AGREE = 0.2, 2

_CONTEXT = 3.0
_CENTERFACE_SIZES = (24.0, 48.0, 96.0)
_RETINAFACE_SIZES = (32.0, 64.0, 128.0)
_CENTERFACE_SCORE, _RETINAFACE_SCORE = 0.3, 0.5
_CENTERFACE_AGREE = 0.25  # two CenterFace looks this sure confirm firmly (RetinaFace: its own score)


@dataclass(frozen=True)
class Look:
    """What the second look saw at one candidate: the best score over it in
    each look (CenterFace's, then RetinaFace's; a small candidate has only
    CenterFace's, plain and mirrored)."""

    small: bool
    centerface: tuple[float, ...]
    retinaface: tuple[float, ...] = ()
    complete: bool = True  # False: stopped at the first look that confirmed it

    @property
    def confirmed(self) -> bool:
        if self.small:
            return sum(score >= _SMALL_SCORE for score in self.centerface) >= _SMALL_AGREE
        return (
            max(self.centerface, default=0.0) >= _CENTERFACE_SCORE
            or max(self.retinaface, default=0.0) >= _RETINAFACE_SCORE
        )

    @property
    def firmly_confirmed(self) -> bool:
        """Two looks of one detector agree: taken as proof that the picture shows a person."""
        if self.small:
            return False
        return (
            sum(score >= _CENTERFACE_AGREE for score in self.centerface) >= 2
            or sum(score >= _RETINAFACE_SCORE for score in self.retinaface) >= 2
        )


class SecondLook:
    """CenterFace and RetinaFace on candidate crops, on the CPU. One instance per thread."""

    def __init__(self) -> None:
        # One thread each: the crops are small, and an idle pool beside the
        # search's slowed it by 8-10% (200 frames of 608x1080 verified).
        self._centerface = Net(fitted_graph(CENTERFACE), CENTERFACE_OUTPUTS, threads=1)
        self._retinaface = Net(fitted_graph(RETINAFACE), ["loc", "conf", "landmarks"], threads=1)

    def look(self, image: RGBImage, box: FloatArray, until_confirmed: bool = False) -> Look:
        """Look again at the candidate `box` (x1, y1, x2, y2) of `image`. With
        `until_confirmed`, the looks stop at the first that confirms it (the
        smallest crops come first), and the Look holds only those made."""
        height = float(box[3] - box[1])
        small = height < SMALL_FACE
        centerface: list[float] = []
        retinaface: list[float] = []
        planned = _small_looks() if small else _looks()
        for detector, scale in planned:
            if until_confirmed and Look(small, tuple(centerface), tuple(retinaface)).confirmed:
                break
            if small:
                crop, local = _crop(image, box, _SMALL_CONTEXT, scale * max(height, 1.0))
            else:
                crop, local = _crop(image, box, _CONTEXT, scale)
            if detector == "mirrored":
                crop = np.ascontiguousarray(crop[:, ::-1])
                local = np.array([crop.shape[1] - local[2], local[1], crop.shape[1] - local[0], local[3]])
            if detector == "retinaface":
                retinaface.append(_best(self._retinaface_finds(crop), local))
            else:
                centerface.append(_best(self._centerface_finds(crop), local))
        made = len(centerface) + len(retinaface)
        return Look(small, tuple(centerface), tuple(retinaface), complete=made == len(planned))

    def _centerface_finds(self, crop: RGBImage) -> Detections:
        heatmap, log_size, offset, _ = self._centerface(padded_blob(crop))
        return decode_centerface(heatmap[0, 0], log_size[0], offset[0], _FLOOR)

    def _retinaface_finds(self, crop: RGBImage) -> Detections:
        if min(crop.shape[:2]) < 16:  # smaller than RetinaFace's coarsest grid
            return Detections.empty()
        return decode_retinaface_native(self._retinaface, crop, _FLOOR)


def _looks() -> list[tuple[str, float]]:
    """A larger candidate's looks, (detector, face height in px), smallest crops first."""
    pairs = zip(_CENTERFACE_SIZES, _RETINAFACE_SIZES, strict=True)
    return [look for sizes in pairs for look in zip(("centerface", "retinaface"), sizes, strict=True)]


def _small_looks() -> list[tuple[str, float]]:
    """A small candidate's looks, (CenterFace plain or mirrored, enlargement)."""
    return [(detector, enlarge) for enlarge in _SMALL_ENLARGE for detector in ("centerface", "mirrored")]


def _crop(
    image: RGBImage, box: FloatArray, context: float, face_height: float
) -> tuple[RGBImage, npt.NDArray[np.float32]]:
    """A square of `context` times the box's larger side around its centre
    (clipped to the image), resized so that the box is `face_height` px
    tall; and the box in the crop's pixels."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = context * max(x2 - x1, y2 - y1, 1.0)
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = max(0, int(np.floor(centre_x - side / 2))), max(0, int(np.floor(centre_y - side / 2)))
    right = min(width, int(np.ceil(centre_x + side / 2)))
    bottom = min(height, int(np.ceil(centre_y + side / 2)))
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    factor = face_height / max(y2 - y1, 1e-3)
    size = (max(1, round((right - left) * factor)), max(1, round((bottom - top) * factor)))
    interpolation = cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA
    crop = cv2.resize(image[top:bottom, left:right], size, interpolation=interpolation)
    local = np.array([x1 - left, y1 - top, x2 - left, y2 - top], np.float32) * np.float32(factor)
    return np.ascontiguousarray(crop, dtype=np.uint8), local


def _best(found: Detections, box: npt.NDArray[np.float32]) -> float:
    """The best score among `found` over `box`."""
    if len(found) == 0:
        return 0.0
    over = ious(found.boxes, box) >= _OVER
    return float(found.scores[over].max()) if over.any() else 0.0
