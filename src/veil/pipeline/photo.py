"""A photo in memory: what its search finds, what is done with it, and the
picture drawn from that.

`photo_decisions` is the one place a picture's faces and text are decided
(`veil.detection.choose`, `veil.text`): for an array (`image_result`), for a photo file
(`anonymize_photo`) and, through `frame_text`, for a clip's frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.detection.choose import Choice, ChoosingDetector, Reason
from veil.detections import Detections
from veil.masks import draw, face_masks, head_ellipses, opaque_where_changed
from veil.media.image import DecodedImage, read_image, write_image
from veil.options import AnonymizeOptions
from veil.pipeline.output import region_reports, text_reports, veil_version
from veil.plan.files import file_sha256
from veil.plan.make import photo_plan
from veil.plan.model import Decision, Mask, Plan, Shape, Source, rounded_box
from veil.report import (
    FaceReport,
    FileReport,
    FileStatus,
)
from veil.text import FoundText, centre_in, find_lines, read_text


@dataclass(frozen=True)
class ImageResult:
    """An anonymized array, the faces that were masked in it and, when the
    detector chose among candidates, the whole choice."""

    image: npt.NDArray[np.uint8]
    detections: Detections
    choice: Choice  # every candidate, and what was decided for each
    text: list[FoundText] = field(default_factory=list)  # every line of text, masked or a sign

    @property
    def faces(self) -> list[FaceReport]:
        return _face_reports(self.choice.kept, [r for r in self.choice.reasons if r.masked])

    @property
    def not_masked(self) -> list[FaceReport]:
        return _face_reports(self.choice.dropped, [r for r in self.choice.reasons if not r.masked])


def image_result(
    image: npt.NDArray[np.uint8], options: AnonymizeOptions, detector: ChoosingDetector
) -> ImageResult:
    """An upright HxWx3 uint8 RGB array with every face and small text
    masked, in a new array (`Anonymizer.anonymize_image`)."""
    found, text = photo_decisions(image, options, detector)
    return ImageResult(_drawn(image, found.kept, text, options), found.kept, found, text)


def _drawn(
    image: npt.NDArray[np.uint8], faces: Detections, text: list[FoundText], options: AnonymizeOptions
) -> npt.NDArray[np.uint8]:
    """`image` with `faces` and small `text` hidden as a plan would hide them
    (`veil.masks.draw`)."""
    masks = face_masks(faces)
    masks += [Mask(Shape.BOX, rounded_box(found.line.box)) for found in text if found.masked]
    return draw(image, masks, options.mask)


def photo_decisions(
    image: npt.NDArray[np.uint8], options: AnonymizeOptions, detector: ChoosingDetector
) -> tuple[Choice, list[FoundText]]:
    """What a photo's search found and what is done with it: every face
    candidate and its decision, and every line of text (`veil.text`), the
    weak face candidates on a sign looked at again."""
    found = detector.choice(image)
    if not options.text.hide:
        return found, []
    text = _read_text(image, found, options)
    signs = [found_text.line.box for found_text in text if not found_text.masked]
    if signs:
        found = detector.off_signs(image, found, signs)
    return found, _off_faces(image, text, found, options)


def _read_text(image: npt.NDArray[np.uint8], found: Choice, options: AnonymizeOptions) -> list[FoundText]:
    height, width = image.shape[:2]
    faces = _sure_faces(found, options).boxes.tolist()
    return read_text(find_lines(image, faces, options.text.side), faces, (width, height))


def _off_faces(
    image: npt.NDArray[np.uint8], text: list[FoundText], found: Choice, options: AnonymizeOptions
) -> list[FoundText]:
    """`text` but for small text over a masked head in `image`: the detector
    marks an eye or a mouth as text now and then, and the head's mask hides it."""
    height, width = image.shape[:2]
    heads = [head.bounds(width, height) for head in head_ellipses(found.kept, options.mask.head_scale)]
    return [t for t in text if not (t.masked and any(centre_in(t.line.box, h) for h in heads))]


def frame_text(image: npt.NDArray[np.uint8], found: Choice, options: AnonymizeOptions) -> Detections:
    """The small text of a video frame, to be followed and masked (signs are
    left readable and, in a clip, not listed)."""
    small = [t for t in _off_faces(image, _read_text(image, found, options), found, options) if t.masked]
    return Detections(
        np.array([t.line.box for t in small], np.float32).reshape(-1, 4),
        np.array([t.line.score for t in small], np.float32),
    )


def _sure_faces(found: Choice, options: AnonymizeOptions) -> Detections:
    """The faces veil is sure of: those scored sure or confirmed by a look
    (with every candidate masked, those scored `sure_score`): they give text its scale."""
    sure = [
        i
        for i, reason in enumerate(found.reasons)
        if reason in (Reason.SURE, Reason.CONFIRMED)
        or (reason is Reason.EVERY_CANDIDATE and found.candidates.scores[i] >= options.choice.sure_score)
    ]
    return found.candidates.select(sure)


def _face_reports(detections: Detections, reasons: list[Reason]) -> list[FaceReport]:
    why = [r.value for r in reasons]
    return [
        FaceReport(
            box=(round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)), score=round(score, 3), reason=reason
        )
        for (x1, y1, x2, y2), score, reason in zip(
            detections.boxes.tolist(), detections.scores.tolist(), why, strict=True
        )
    ]


def anonymize_photo(
    source: Path, target: Path, options: AnonymizeOptions, detector: ChoosingDetector
) -> tuple[FileReport, Plan]:
    """Detect, make the plan, render the output from it."""
    decoded = read_image(source, options.limits)
    height, width = decoded.pixels.shape[:2]
    found, text = photo_decisions(decoded.pixels, options, detector)
    origin = Source(source.name, file_sha256(source), width, height)
    plan = photo_plan(origin, found, options.mask, veil_version(), text)
    write_drawn(decoded, plan, target)
    report = FileReport(
        input=str(source),
        status=FileStatus.ANONYMIZED,
        output=str(target),
        format=decoded.encoding.format,
        width=width,
        height=height,
        orientation_applied=decoded.orientation,
        faces=region_reports(plan, Decision.MASK),
        not_masked=region_reports(plan, Decision.DROP),
        text=text_reports(plan),
        metadata_removed=decoded.metadata,
    )
    return report, plan


def write_drawn(decoded: DecodedImage, plan: Plan, target: Path) -> None:
    """Write `target` from `decoded` with the masks of `plan` drawn, made
    opaque where the picture was transparent: masks must be seen. Shared
    by anonymizing and rendering, so both give the same file from one plan."""
    image = draw(decoded.pixels, plan.masks_at(None), plan.mask)
    alpha = decoded.alpha
    if alpha is not None:
        alpha = opaque_where_changed(alpha, decoded.pixels, image)
    write_image(target, image, alpha, decoded.encoding)
