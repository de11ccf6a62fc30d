"""`Anonymizer`: veil's models loaded once, then any number of photos and
clips anonymized, rendered from plans and verified with them.

A library user looping over files holds one Anonymizer; batch workers and
Ray actors hold one each. `anonymize_file` and `anonymize_image` are thin
conveniences over a default Anonymizer kept per thread for the options last
asked for, so a loop of plain calls loads the models once too.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.detection import devices
from veil.detection.choose import choosing
from veil.detection.detect import Detector
from veil.jobs import default_target, is_video
from veil.options import AnonymizeOptions
from veil.pipeline.clip import anonymize_video
from veil.pipeline.output import FrameProgress, new_run_report, write_checked
from veil.pipeline.photo import ImageResult, anonymize_photo, image_result
from veil.pipeline.render import render_file
from veil.plan.model import Plan
from veil.report import FileReport, RunReport
from veil.verify import Verifier


class Anonymizer:
    """The face search (and its second look) and, when `options.verify` is on,
    the verifier, loaded once for every file this object is given.

    One Anonymizer serves one thread at a time: its models keep per-clip
    state. `detector` and `verifier` may be given to share ones already
    loaded (they must have been made for the same `options`); a detector
    that does not choose among its candidates masks every one of them
    (`veil.detection.choose.choosing`)."""

    def __init__(
        self,
        options: AnonymizeOptions | None = None,
        detector: Detector | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.options = options or AnonymizeOptions()
        self.detector = choosing(detector or devices.face_detector(self.options))
        self._verifier = verifier

    @property
    def verifier(self) -> Verifier | None:
        """The verifier, loaded at first use (None: verification is off)."""
        if self._verifier is None and self.options.verify:
            self._verifier = Verifier(self.options.verification, self.options.device)
        return self._verifier

    def anonymize(
        self, source: Path | str, target: Path | str | None = None, on_frame: FrameProgress | None = None
    ) -> FileReport:
        """Anonymize one photo or clip into `target` (default NAME.veil.EXT
        beside it) with its plan beside it, then, unless verification is
        off, attack the output (`veil.verify`). A failed verification keeps
        the output and says so in the report; a file that cannot be done
        leaves nothing and says why (`FileReport.error`)."""
        source = Path(source)
        target = Path(target) if target is not None else default_target(source)

        def make() -> tuple[FileReport, Plan]:
            if is_video(source):
                return anonymize_video(source, target, self.options, self.detector, on_frame)
            return anonymize_photo(source, target, self.options, self.detector)

        return write_checked(source, target, self.options, make, self.verifier)

    def anonymize_image(self, image: npt.NDArray[np.uint8]) -> ImageResult:
        """Mask every face (and small text) in an upright HxWx3 uint8 RGB
        array; returns a new array. Nothing is written or verified."""
        return image_result(image, self.options, self.detector)

    def render(
        self,
        original: Path | str,
        plan: Plan | Path | str,
        target: Path | str,
        on_frame: FrameProgress | None = None,
        on_verify: FrameProgress | None = None,
    ) -> FileReport:
        """Render `target` from `original` and a plan (`veil.pipeline.render`),
        verified as `anonymize` verifies. No detector runs."""
        return render_file(original, plan, target, self.options, self.verifier, on_frame, on_verify)

    def run_report(self) -> RunReport:
        """A run's report with no files yet: veil's version, the models, the options."""
        return new_run_report(self.options, self.detector, self.verifier)


_defaults = threading.local()


def default_anonymizer(options: AnonymizeOptions | None = None) -> Anonymizer:
    """This thread's Anonymizer for `options`, loaded again only when the
    options change."""
    options = options or AnonymizeOptions()
    held: Anonymizer | None = getattr(_defaults, "anonymizer", None)
    if held is None or held.options != options:
        held = _defaults.anonymizer = Anonymizer(options)
    return held


def anonymize_file(
    source: Path | str,
    target: Path | str | None = None,
    options: AnonymizeOptions | None = None,
    detector: Detector | None = None,
    on_frame: FrameProgress | None = None,
    verifier: Verifier | None = None,
) -> FileReport:
    """Anonymize one photo or video (`Anonymizer.anonymize`), with this
    thread's default Anonymizer unless a `detector` or `verifier` is given."""
    if detector is None and verifier is None:
        return default_anonymizer(options).anonymize(source, target, on_frame)
    return Anonymizer(options, detector, verifier).anonymize(source, target, on_frame)


def anonymize_image(
    image: npt.NDArray[np.uint8], options: AnonymizeOptions | None = None, detector: Detector | None = None
) -> ImageResult:
    """Mask every face in an upright HxWx3 uint8 RGB array (`Anonymizer.anonymize_image`)."""
    if detector is None:
        return default_anonymizer(options).anonymize_image(image)
    return Anonymizer(options, detector).anonymize_image(image)
