"""Attack an output before it is published: find what veil missed.

Four checks, each independent of how the output was made:
1. detection: RetinaFace (a second model) and CenterFace (a second,
   single-scale look) search the output; a face over pixels that are the
   same as the original's, and a face in the original too, was left visible;
2. recognition: each face that was masked is compared, by dlib's
   face-recognition model, with the same region of the output and with a
   solid-filled control (`veil.recognition`);
3. metadata: the output's bytes are walked for every surviving tag
   (`veil.media.tags`);
4. integrity: the output opens, is upright at the original's size, and for
   a video has the same frames, length and sound, every frame checked;
5. text (with the plan): a region masked as a box (text, or drawn by a
   person) whose inside did not all change is searched for text
   (`veil.text`), in a photo and in every frame of a clip; text readable
   there fails the file. When a person changed a photo's plan, the whole
   output is searched too: text over unchanged pixels
   that no region lists (a sign left readable is listed), or small text a
   person unmasked, goes to the review list.

Nothing here changes a file. A verification that cannot finish (an output
that does not open) is a failure, not an error: fail closed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil import integrity
from veil.background import prefetched
from veil.changes import Changes, int_box
from veil.detection import devices
from veil.detection.detect import Detector, clip
from veil.detection.models import DLIB_LANDMARKS, DLIB_RECOGNITION, TEXT_DETECTOR, ModelSpec
from veil.detection.second_look import SecondLook
from veil.detections import Detections
from veil.errors import RecognitionUnavailableError, VeilError
from veil.media.image import read_image
from veil.media.tags import file_tags
from veil.media.video import VIDEO_FORMATS, VideoFrameIn, VideoSource
from veil.options import AudioMode, DetectionOptions, Device, InputLimits, VerifyOptions
from veil.plan.model import Decision, Plan, box_iou
from veil.recognition import FaceRecognizer
from veil.report import Check, Finding, Verification
from veil.verify_text import lists_text, text_findings, text_under_masks

RGB = npt.NDArray[np.uint8]
_SEARCH_SIDE = 1280  # the verifiers search images enlarged or reduced towards this long side


@dataclass
class _Tally:
    failures: list[Finding] = field(default_factory=list)
    review: list[Finding] = field(default_factory=list)
    kept: list[Finding] = field(default_factory=list)
    frames: int = 0
    faces_compared: int = 0
    plan: Plan | None = None

    def add(self, findings: tuple[list[Finding], list[Finding]]) -> None:
        self.failures.extend(findings[0])
        self.review.extend(findings[1])


@dataclass(frozen=True)
class Attacked:
    """What attacking some frames of a clip's output found (a part's, by the
    worker that made it, `veil.segments`), to be judged with the rest."""

    failures: list[Finding]
    review: list[Finding]
    kept: list[Finding]
    frames: int
    faces_compared: int


class Verifier:
    """The models that attack outputs, loaded once for a run."""

    def __init__(self, options: VerifyOptions | None = None, device: Device = Device.AUTO) -> None:
        self.options = options or VerifyOptions()
        self._retinaface = devices.retinaface(self.options.review_score, device)
        # One pass, at most about 1280x720 and never enlarged, no mirror: the
        # independent RetinaFace enlarges small images; this is a second look.
        self._centerface: Detector = devices.centerface(
            DetectionOptions(
                threshold=self.options.centerface_review_score,
                max_upscale=1.0,
                max_pixels=_SEARCH_SIDE * 720,
                coarse_side=_SEARCH_SIDE,
                mirror=False,
            ),
            device,
        )
        self._second_look = SecondLook()
        self.recognizer: FaceRecognizer | None = None
        self.recognition_missing: str | None = None
        if self.options.recognition:
            try:
                self.recognizer = FaceRecognizer()
            except RecognitionUnavailableError as e:
                self.recognition_missing = f"recognition: not run, {e}"
        else:
            self.recognition_missing = "recognition: not run, turned off"

    @property
    def models(self) -> list[ModelSpec]:
        recognition = [DLIB_LANDMARKS, DLIB_RECOGNITION] if self.recognizer is not None else []
        text = [TEXT_DETECTOR] if self.options.text else []
        return [self._retinaface.model, self._centerface.model, *recognition, *text]

    def verify(
        self,
        original: Path,
        output: Path,
        audio: AudioMode | None = None,
        plan: Plan | None = None,
        attacked: Sequence[Attacked] | None = None,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> Verification:
        """Attack `output`, made from `original`. Raises VeilError only when
        the original itself cannot be read; anything wrong with the output
        is a failure in the result.

        With the `plan` it was rendered from, its decisions are honoured and
        checked: a face seen where a region is kept visible is listed as
        kept, with its reason, and does not fail; one seen where a region
        was dropped fails the file, as a face left visible by mistake.

        With `attacked`, a clip's frames were attacked already, part by part
        (`attack_part`, covering every frame once): what they found is
        judged here, with this file's metadata, sound, size, frame count and
        timing, read from its packets.

        `on_frame(done, total)` hears how many of a clip's frames were attacked."""
        audio = audio or self.options.audio
        tally = _Tally(plan=plan)
        tags: list[str] = []
        if not output.is_file():
            tally.failures.append(Finding(Check.INTEGRITY, "no output file"))
            return self._result(tally, tags)
        try:
            found = file_tags(output)
        except OSError as e:
            found = []
            tally.failures.append(Finding(Check.INTEGRITY, f"cannot read the output: {e.strerror or e}"))
        tags = [tag.name + (" (identifying)" if tag.identifying else "") for tag in found]
        for tag in found:
            if tag.identifying:
                tally.failures.append(Finding(Check.METADATA, f"identifying metadata left: {tag.name}"))
        if original.suffix.lower() in VIDEO_FORMATS:
            self._verify_video(original, output, audio, tally, attacked, on_frame)
        else:
            self._verify_photo(original, output, tally)
        return self._result(tally, tags)

    def _result(self, tally: _Tally, tags: list[str]) -> Verification:
        return Verification(
            failures=tally.failures,
            review=tally.review,
            kept=_merge(tally.kept),
            tags=tags,
            frames_checked=tally.frames,
            faces_compared=tally.faces_compared,
            not_run=[self.recognition_missing] if self.recognition_missing else [],
        )

    def _verify_photo(self, original: Path, output: Path, tally: _Tally) -> None:
        before = read_image(original).pixels
        try:
            decoded = read_image(output)
        except VeilError as e:
            tally.failures.append(Finding(Check.INTEGRITY, f"the output does not open: {e}"))
            return
        if decoded.orientation != 1:
            tally.failures.append(Finding(Check.INTEGRITY, "the output is stored turned (EXIF orientation)"))
        after = decoded.pixels
        wrong_size = integrity.size((after.shape[1], after.shape[0]), (before.shape[1], before.shape[0]))
        if wrong_size:  # both decoded to RGB: only the size can differ
            tally.failures.extend(wrong_size)
            return
        tally.frames = 1
        tally.add(self._attack_frames_at_once([before], [after], [None], [True], tally)[0])
        if tally.plan is not None and self.options.text and lists_text(tally.plan):
            tally.add(
                text_findings(Changes(before, after, self.options.changed_level), tally.plan, self.options)
            )

    def attack_part(self, original: Path, part: Path, keep: range) -> Attacked:
        """Attack the frames of `part`, a file holding frames `keep` of the
        output made from `original` (which begins on a key frame there)."""
        tally = _Tally()
        limits = replace(InputLimits(), isolate=False)  # both were decoded whole under the limits
        with VideoSource(original, limits) as source, VideoSource(part, limits) as result:
            every = max(1, round(float(source.probe.rate) * self.options.recognition_every_s))
            with clip(len(keep), self._retinaface, self._centerface):
                originals = source.frames_between(keep.start, keep.stop)
                # A part's container counts its duration from 0, not from its first frame:
                # read by its packets, without the check for a clip cut short.
                outputs = (
                    replace(frame, index=frame.index + keep.start)
                    for frame in result.frames_between(0, len(keep))
                )
                with closing(prefetched(originals)) as befores, closing(prefetched(outputs)) as afters:
                    self._attack_frames(befores, afters, every, tally)
        return Attacked(tally.failures, tally.review, tally.kept, tally.frames, tally.faces_compared)

    def _verify_video(
        self,
        original: Path,
        output: Path,
        audio: AudioMode,
        tally: _Tally,
        attacked: Sequence[Attacked] | None,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> None:
        # Parts attacked: the clip and its parts were decoded whole under the
        # limits already; here only packets are read.
        limits = replace(InputLimits(), isolate=False) if attacked is not None else None
        with VideoSource(original, limits) as source:
            expected = source.probe
            has_sound = source.audio_stream is not None
            try:
                result = VideoSource(output, limits)
            except VeilError as e:
                tally.failures.append(Finding(Check.INTEGRITY, f"the output does not open: {e}"))
                return
            with result:
                made = result.probe
                wrong_size = integrity.size((made.width, made.height), (expected.width, expected.height))
                if wrong_size:
                    tally.failures.extend(wrong_size)
                    return
                tally.failures.extend(integrity.sound(has_sound, result.audio_stream is not None, audio))
                if attacked is not None:
                    for part in attacked:  # what the parts' attacks found
                        tally.failures.extend(part.failures)
                        tally.review.extend(part.review)
                        tally.kept.extend(part.kept)
                        tally.frames += part.frames
                        tally.faces_compared += part.faces_compared
                    tally.failures.extend(integrity.packets(source, result, tally.frames))
                    return
                every = max(1, round(float(expected.rate) * self.options.recognition_every_s))
                try:
                    with (
                        clip(expected.frames, self._retinaface, self._centerface),
                        closing(prefetched(integrity.frames(source))) as originals,
                        closing(prefetched(integrity.frames(result))) as outputs,
                    ):
                        spans = self._attack_frames(
                            originals, outputs, every, tally, on_frame, expected.frames
                        )
                except VeilError as e:
                    tally.failures.append(Finding(Check.INTEGRITY, f"the output does not decode: {e}"))
                    return
                before_s, after_s = spans[0] * expected.time_base, spans[1] * made.time_base
                tally.failures.extend(integrity.span(before_s, after_s, made.time_base))

    def _seen_again(self, before: RGB, box: list[float]) -> bool:
        """Whether a second look at the face found in the original confirms it, by the
        rule that decides what veil masks (`veil.detection.second_look`). Round things
        that RetinaFace takes for faces at the size of the whole picture (a
        clock, a copper vase, a cell) are not confirmed."""
        return self._second_look.look(before, np.array(box, np.float32)).confirmed

    def _find_in_original(
        self, search: Callable[[RGB], Detections], before: RGB, box: list[float]
    ) -> list[float] | None:
        """The face `search`, run on the original around `box`, finds there
        (None: none). A mask with something round below it (a collar, a
        helmet) can itself look like a face; such a find has no face under
        it in the original."""
        height, width = before.shape[:2]
        x1, y1, x2, y2 = box
        grow_x, grow_y = x2 - x1, y2 - y1
        left, top = max(0, math.floor(x1 - grow_x)), max(0, math.floor(y1 - grow_y))
        right, bottom = min(width, math.ceil(x2 + grow_x)), min(height, math.ceil(y2 + grow_y))
        found = search(np.ascontiguousarray(before[top:bottom, left:right])).shifted(left, top)
        target = int_box(box)
        overlaps = [box_iou(int_box(other), target) for other in found.boxes.tolist()]
        if not overlaps or max(overlaps) < 0.3:
            return None
        best: list[float] = found.boxes[int(np.argmax(overlaps))].tolist()
        return best

    def _attack_frames(
        self,
        originals: Iterator[VideoFrameIn],
        outputs: Iterator[VideoFrameIn],
        every: int,
        tally: _Tally,
        on_frame: Callable[[int, int], None] | None = None,
        total: int = 0,
    ) -> tuple[int, int]:
        """Attack every frame, a batch of frames at a time; returns the PTS span
        (last - first) of the original's frames and of the output's, each in
        its own time base."""
        first: tuple[int, int] | None = None
        last = (0, 0)
        batch: list[tuple[VideoFrameIn, VideoFrameIn]] = []
        for index, (before, after) in enumerate(integrity.paired(originals, outputs)):
            if after is None:
                tally.failures.append(Finding(Check.INTEGRITY, f"the output stops at frame {index}"))
                break
            if before is None:
                tally.failures.append(Finding(Check.INTEGRITY, f"the output has extra frames from {index}"))
                break
            tally.frames += 1
            first = first or (before.pts, after.pts)
            last = (before.pts, after.pts)
            batch.append((before, after))
            if len(batch) >= self._retinaface.batch:
                self._attack_batch(batch, every, tally)
                batch = []
                if on_frame is not None:
                    on_frame(tally.frames, total)
        self._attack_batch(batch, every, tally)
        if first is None:
            return 0, 0
        return last[0] - first[0], last[1] - first[1]

    def _attack_batch(
        self, batch: list[tuple[VideoFrameIn, VideoFrameIn]], every: int, tally: _Tally
    ) -> None:
        if not batch:
            return
        indices = [after.index for _, after in batch]
        plan = tally.plan
        if plan is not None and self.options.text and lists_text(plan):
            for before, after in batch:
                changes = Changes(before.pixels, after.pixels, self.options.changed_level)
                tally.failures.extend(text_under_masks(changes, plan, after.index))
        for findings in self._attack_frames_at_once(
            [before.pixels for before, _ in batch],
            [after.pixels for _, after in batch],
            indices,
            [index % every == 0 for index in indices],
            tally,
        ):
            tally.add(findings)

    def _attack_frames_at_once(
        self,
        befores: Sequence[RGB],
        afters: Sequence[RGB],
        frames: Sequence[int | None],
        compare_faces: Sequence[bool],
        tally: _Tally,
    ) -> list[tuple[list[Finding], list[Finding]]]:
        """Both detectors search every output frame (in one batch on a GPU),
        then each frame's finds are judged."""
        scale = _search_scale(afters[0])
        retinaface = self._retinaface.detect_many(afters, scale)
        centerface = self._centerface.detect_frames(afters, [f or 0 for f in frames])
        return [
            self._judge(before, after, frame, (found_r, found_c), scale, compare, tally)
            for before, after, frame, found_r, found_c, compare in zip(
                befores, afters, frames, retinaface, centerface, compare_faces, strict=True
            )
        ]

    def _judge(
        self,
        before: RGB,
        after: RGB,
        frame: int | None,
        found: tuple[Detections, Detections],
        scale: float,
        compare_faces: bool,
        tally: _Tally,
    ) -> tuple[list[Finding], list[Finding]]:
        """Judge one frame's finds (RetinaFace's at `scale`, CenterFace's)."""
        changes = Changes(before, after, self.options.changed_level)
        failures: list[Finding] = []
        review: list[Finding] = []

        def retinaface(crop: RGB) -> Detections:
            return self._retinaface.detect(crop, scale)

        searches: tuple[tuple[str, Detections, float, Callable[[RGB], Detections]], ...] = (
            ("RetinaFace", found[0], self.options.fail_score, retinaface),
            ("CenterFace", found[1], self.options.centerface_fail_score, self._centerface.detect),
        )
        for name, finds, fail_score, search in searches:
            for box, score in zip(finds.boxes.tolist(), finds.scores.tolist(), strict=True):
                if changes.masked(box, self.options.masked_fraction):
                    continue
                # Only a find that would fail the file is confirmed on the original:
                # a crowd gives hundreds of weak finds, and review is advisory.
                failing = score >= fail_score
                in_original = self._find_in_original(search, before, box) if failing else None
                if failing and in_original is None:
                    continue
                kept = tally.plan.region_under(frame, box, Decision.KEEP) if tally.plan else None
                if kept is not None:
                    reason = f"visible by choice ({kept.id}): {kept.reason}"
                    tally.kept.append(Finding(Check.DETECTION, reason, frame, int_box(box), round(score, 3)))
                    continue
                message = f"{name} finds a face outside every mask"
                dropped = tally.plan.region_under(frame, box, Decision.DROP) if tally.plan else None
                if dropped is not None:
                    message = (
                        f"{name} finds a face where the mask of {dropped.id} was dropped: "
                        "mark it keep with a reason, or mask it"
                    )
                if in_original is not None and not self._seen_again(before, in_original):
                    failing = False  # a vase, a clock face: a person should look, nothing more
                    message += ", not confirmed by a second look at the original"
                finding = Finding(Check.DETECTION, message, frame, int_box(box), round(score, 3))
                (failures if failing else review).append(finding)
        if compare_faces and self.recognizer is not None:
            faces = self._retinaface.detect(before, scale)
            masked = [i for i, box in enumerate(faces.boxes.tolist()) if changes.masked(box, 0.5)]
            if not masked:
                return _merge(failures), _merge(review)
            for match in self.recognizer.compare(before, after, changes.full, faces.select(masked)):
                tally.faces_compared += 1
                if match.recognizable:
                    assert match.distance is not None and match.control_distance is not None
                    failures.append(
                        Finding(
                            Check.RECOGNITION,
                            f"the mask lets the face through to a recognition model (distance "
                            f"{match.distance:.2f} to the original, {match.control_distance:.2f} "
                            "for a solid fill)",
                            frame,
                            int_box(match.box),
                            round(match.distance, 3),
                        )
                    )
        return _merge(failures), _merge(review)


def _search_scale(image: RGB) -> float:
    """Small images are enlarged (up to 2x) so that small faces are seen;
    large ones are searched at their own size."""
    return float(min(2.0, max(1.0, _SEARCH_SIDE / max(image.shape[0], image.shape[1]))))


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per place: both detectors often find the same face."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: -(f.score or 0)):
        if finding.box is not None and any(
            k.box is not None and k.check is finding.check and box_iou(k.box, finding.box) > 0.3 for k in kept
        ):
            continue
        kept.append(finding)
    return kept
