"""Rendering from plans: an original and its plan in, an output out, no
detector (`veil render`, the review page's Apply). The output is verified
as `veil anonymize` verifies its own, through the same envelope
(`veil.pipeline.output`), and the report says what a person decided.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from veil.background import Worker, prefetched
from veil.errors import PlanError, VeilError
from veil.jobs import failure_report, find_jobs, is_video
from veil.masks import draw
from veil.media.files import atomic_output, check_input_file, output_root
from veil.media.image import read_image
from veil.media.video import MAX_VIDEO_BYTES, VIDEO_FORMATS, VideoFrameIn, VideoSource
from veil.options import AnonymizeOptions, InputLimits, VideoOptions
from veil.pipeline.clip import output_sink
from veil.pipeline.output import (
    FrameProgress,
    Progress,
    model_info,
    region_reports,
    text_reports,
    veil_version,
    write_checked,
)
from veil.pipeline.photo import write_drawn
from veil.plan.files import check_plan_source, load_plan, plan_path
from veil.plan.model import Decision, Plan
from veil.report import (
    Decisions,
    FileReport,
    FileStatus,
    KeptRegion,
    RunReport,
    VideoReport,
)
from veil.verify import Verifier


def render_file(
    original: Path | str,
    plan: Plan | Path | str,
    target: Path | str,
    options: AnonymizeOptions | None = None,
    verifier: Verifier | None = None,
    on_frame: FrameProgress | None = None,
    on_verify: FrameProgress | None = None,
) -> FileReport:
    """Render `target` from `original` and a plan (a Plan or a plan file), with
    no detection, then verify it as `anonymize_file` does, honouring and
    checking the plan's decisions. The mask's look comes from the plan;
    `options` gives the sound, the video quality and the verification;
    `on_frame` hears the frames rendered, `on_verify` the frames verified."""
    original, target = Path(original), Path(target)
    options = options or AnonymizeOptions()
    plan_file = Path(plan) if isinstance(plan, str | Path) else None

    def make() -> tuple[FileReport, Plan]:
        loaded = plan if isinstance(plan, Plan) else load_plan(plan)
        if target.suffix.lower() != original.suffix.lower():
            raise VeilError(f"the output should be a {original.suffix} file like the original")
        check_input_file(original, MAX_VIDEO_BYTES)
        check_plan_source(loaded, original)
        if is_video(original):
            rendered = render_video(original, loaded, target, options.video, on_frame)
        else:
            rendered = render_photo(original, loaded, target, options.limits)
        return _rendered_report(original, target, loaded, rendered), loaded

    return write_checked(
        original, target, options, make, verifier, rendered_from=plan_file, on_verify=on_verify
    )


def plan_decisions(plan: Plan) -> Decisions:
    """What a person changed in `plan`, against what veil had decided."""
    faces = [r for r in plan.regions if r.found is not None]
    return Decisions(
        dropped=[
            r.id
            for r in faces
            if r.found and r.found.decision is Decision.MASK and r.decision is Decision.DROP
        ],
        masked=[
            r.id
            for r in faces
            if r.found and r.found.decision is Decision.DROP and r.decision is Decision.MASK
        ],
        added=[r.id for r in plan.regions if r.found is None and r.decision is Decision.MASK],
        kept=[KeptRegion(r.id, r.reason or "") for r in plan.regions if r.decision is Decision.KEEP],
    )


def _rendered_report(original: Path, target: Path, plan: Plan, rendered: Rendered) -> FileReport:
    video = None
    faces = []
    if rendered.frames is not None:
        per_frame = [plan.masks_at(i) for i in range(rendered.frames)]
        video = VideoReport(
            frames=rendered.frames,
            duration_s=rendered.duration_s or 0.0,
            time_base=rendered.time_base or "",
            audio=rendered.audio or "none",
            rotation_baked=rendered.rotation_baked or 0,
            tracks=sum(1 for r in plan.regions if r.decision is Decision.MASK),
            frames_filled_by_tracking=0,
            faces_per_frame=[len(masks) for masks in per_frame],
            boxes_per_frame=[
                [(round(x1), round(y1), round(x2), round(y2)) for x1, y1, x2, y2 in (m.box for m in masks)]
                for masks in per_frame
            ],
        )
    else:
        faces = region_reports(plan, Decision.MASK)
    return FileReport(
        input=str(original),
        status=FileStatus.ANONYMIZED,
        output=str(target),
        format=rendered.format,
        width=rendered.width,
        height=rendered.height,
        orientation_applied=rendered.orientation_applied,
        faces=faces,
        text=text_reports(plan),
        metadata_removed=rendered.metadata_removed,
        video=video,
        decisions=plan_decisions(plan),
    )


@dataclass(frozen=True)
class Rendered:
    """What rendering wrote."""

    format: str
    width: int
    height: int
    metadata_removed: list[str]
    orientation_applied: int | None = None
    frames: int | None = None
    duration_s: float | None = None
    time_base: str | None = None
    audio: str | None = None
    rotation_baked: int | None = None


def check_size(plan: Plan, width: int, height: int) -> None:
    if (plan.source.width, plan.source.height) != (width, height):
        raise PlanError(
            f"plan: made for a {plan.source.width}x{plan.source.height} picture, "
            f"the original is {width}x{height} upright"
        )


def render_photo(original: Path, plan: Plan, target: Path, limits: InputLimits | None = None) -> Rendered:
    if plan.is_video:
        raise PlanError("plan: made for a video, the original is a photo")
    decoded = read_image(original, limits)
    height, width = decoded.pixels.shape[:2]
    check_size(plan, width, height)
    write_drawn(decoded, plan, target)
    return Rendered(
        decoded.encoding.format, width, height, decoded.metadata, orientation_applied=decoded.orientation
    )


def render_video(
    original: Path,
    plan: Plan,
    target: Path,
    options: VideoOptions | None = None,
    on_frame: FrameProgress | None = None,
) -> Rendered:
    """Decode `original`, hide each frame's masks, encode; nothing is detected."""
    options = options or VideoOptions()
    if not plan.is_video:
        raise PlanError("plan: made for a photo, the original is a video")
    check_input_file(original, MAX_VIDEO_BYTES)
    container_format = VIDEO_FORMATS[target.suffix.lower()]
    with VideoSource(original) as video:
        probe = video.probe
        check_size(plan, probe.width, probe.height)
        with atomic_output(target) as temporary:
            sink = output_sink(temporary, container_format, video, options)
            encoder = Worker()

            def encode(frame: VideoFrameIn) -> None:
                sink.write_frame(draw(frame.pixels, plan.masks_at(frame.index), plan.mask), frame.pts)
                if on_frame is not None:
                    on_frame(sink.frames, probe.frames)

            try:
                with closing(prefetched(video.iter_media())) as media:
                    for item in media:
                        if isinstance(item, VideoFrameIn):
                            if item.index >= (plan.source.frames or 0):
                                raise PlanError(
                                    f"plan: made for {plan.source.frames} frames, the original has more"
                                )
                            encoder.submit(partial(encode, item))
                        else:
                            encoder.submit(partial(sink.write_audio, item))
                encoder.finish()
                if sink.frames != plan.source.frames:
                    raise PlanError(
                        f"plan: made for {plan.source.frames} frames, the original has {sink.frames}"
                    )
                sink.close()
            except BaseException:
                encoder.abandon()
                sink.abort()
                raise
    return Rendered(
        container_format,
        probe.width,
        probe.height,
        probe.metadata,
        frames=sink.frames,
        duration_s=round(float(sink.duration), 6),
        time_base=str(probe.time_base),
        audio=sink.audio_outcome,
        rotation_baked=probe.rotation,
    )


@dataclass(frozen=True)
class RenderJob:
    """One original, the plan to render it from, and where its output goes."""

    source: Path
    plan: Path
    target: Path
    root: Path | None = None  # the folder named for outputs: below it no link is followed


def find_renders(original: Path, plans: Path, out: Path) -> list[RenderJob | FileReport]:
    """Render jobs for `veil render`: a file, its plan and its output (into
    `out` when that is a folder), or every photo and video under a folder
    with its plan at the same relative path under `plans` (as anonymize
    wrote it, NAME.EXT.plan.json) and its output at that path under `out`."""
    if not original.is_dir():
        target = out / original.name if out.is_dir() else out
        return [RenderJob(original, plans, target)]
    jobs: list[RenderJob | FileReport] = []
    for entry in find_jobs([original], out):
        if isinstance(entry, FileReport):
            jobs.append(entry)
            continue
        relative = entry.source.relative_to(original)
        plan = plan_path(plans / relative)
        if not plan.is_file():
            jobs.append(failure_report(entry.source, VeilError(f"no plan for it: {plan} does not exist")))
            continue
        jobs.append(RenderJob(entry.source, plan, entry.target, entry.root))
    return jobs


def render_jobs(
    planned: list[RenderJob | FileReport],
    options: AnonymizeOptions | None = None,
    progress: Progress | None = None,
    on_frame: FrameProgress | None = None,
) -> RunReport:
    """Carry out render jobs in order; planned reports pass straight through."""
    options = options or AnonymizeOptions()
    verifier = Verifier(options.verification, options.device) if options.verify else None
    report = RunReport(
        veil_version=veil_version(),
        model=None,
        options=asdict(options),
        verifier_models=[model_info(m) for m in verifier.models] if verifier else [],
    )
    for entry in planned:
        if isinstance(entry, FileReport):
            file_report = entry
        else:
            with output_root(entry.root):
                file_report = render_file(entry.source, entry.plan, entry.target, options, verifier, on_frame)
        report.files.append(file_report)
        if progress is not None:
            progress(file_report)
    return report


def plan_beside(original: Path, output: Path) -> Plan | None:
    """The plan beside `output` (OUTPUT.plan.json), when there is one made
    for `original`; verification then honours its decisions. Without it
    verification is only stricter: a face kept visible fails."""
    path = plan_path(output)
    if not path.is_file():
        return None
    try:
        plan = load_plan(path)
        check_plan_source(plan, original)
    except (VeilError, OSError):
        return None
    return plan
