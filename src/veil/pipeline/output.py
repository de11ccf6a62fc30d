"""The envelope every output lands through: names checked free, the file
and its plan written, the output verified, and any failure one report with
no file left behind (fail closed). Also what every run's report says of
veil and its models.

Every function returns a finished report; nothing here prints or exits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from veil.detection.detect import Detector
from veil.detection.models import TEXT_DETECTOR, ModelSpec
from veil.errors import OutputExistsError, VeilError
from veil.jobs import failure_report
from veil.media.files import remove_output
from veil.options import AnonymizeOptions
from veil.plan.files import plan_path, save_plan
from veil.plan.model import Decision, Kind, Plan
from veil.report import (
    FaceReport,
    FileReport,
    ModelInfo,
    RunReport,
    TextReport,
)
from veil.verify import Attacked, Verifier

log = logging.getLogger(__name__)


Progress = Callable[[FileReport], None]


FrameProgress = Callable[[int, int], None]  # frames done, frames expected (0: unknown)


def veil_version() -> str:
    try:
        return version("veil")
    except PackageNotFoundError:
        return "0+unknown"


def write_checked(
    source: Path,
    target: Path,
    options: AnonymizeOptions,
    make: Callable[[], tuple[FileReport, Plan]],
    verifier: Verifier | None,
    attacked: Callable[[], Sequence[Attacked]] | None = None,
    rendered_from: Path | None = None,
    on_verify: FrameProgress | None = None,
) -> FileReport:
    """Write `target` from `source` with `make` (which lands the output and
    returns its report and plan) when the names are free, then its plan,
    then verify it; fail closed, as one report, on any error.

    `rendered_from`: the plan file the output is rendered from (`veil
    render`); when that is the plan beside `target`, it stays as it is.
    `on_verify` hears the frames of a clip verified."""
    try:
        if target.resolve() == source.resolve():
            raise VeilError("output path is the input itself")
        if target.exists() or target.is_symlink():
            raise OutputExistsError(f"output exists, not overwriting: {target}")
        plan_file = plan_path(target)  # every output keeps the plan it was made from beside it
        kept = (
            rendered_from is not None
            and plan_file.exists()
            and plan_file.resolve() == rendered_from.resolve()
        )
        if not kept and (plan_file.exists() or plan_file.is_symlink()):
            raise OutputExistsError(f"plan exists, not overwriting: {plan_file}")
        report, plan = make()
        if not kept:
            save_beside(plan, plan_file, target)
        try:
            return verified_report(
                replace(report, plan=str(plan_file)),
                source,
                target,
                plan,
                options,
                verifier,
                attacked() if attacked is not None else None,
                on_verify,
            )
        except BaseException:  # an output that could not be checked is not left behind
            if not kept:
                remove_output(plan_file)
            remove_output(target)
            raise
    except VeilError as e:
        return failure_report(source, e)
    except Exception as e:  # fail closed on anything unforeseen, keep the batch going
        log.debug("unexpected error on %s", source, exc_info=True)
        return failure_report(source, e, prefix="internal error: ")


def save_beside(plan: Plan, path: Path, output: Path) -> None:
    try:
        save_plan(plan, path)
    except BaseException:
        with contextlib.suppress(OSError, VeilError):
            remove_output(output)  # no output without its plan
        raise


def verified_report(
    report: FileReport,
    original: Path,
    output: Path,
    plan: Plan,
    options: AnonymizeOptions,
    verifier: Verifier | None,
    attacked: Sequence[Attacked] | None = None,
    on_frame: FrameProgress | None = None,
) -> FileReport:
    """`report` with the verification of `output`, unless `options.verify` is
    off (`attacked`: its frames were attacked already, part by part;
    `on_frame`: hears the frames attacked)."""
    if not options.verify:
        return report
    verifier = verifier or Verifier(options.verification, options.device)
    verdict = verifier.verify(original, output, options.video.audio, plan, attacked, on_frame)
    return replace(report, verification=verdict)


def region_reports(plan: Plan, decision: Decision) -> list[FaceReport]:
    """A photo's regions with `decision`, as the report lists faces (found
    text is listed apart, `text_reports`)."""
    return [
        FaceReport(
            box,
            region.found.score if region.found else 0.0,
            region.found.why if region.found else region.label or region.kind.value,
            region.id,
        )
        for region, box in plan.regions_at(None, decision)
        if region.kind is not Kind.TEXT
    ]


def text_reports(plan: Plan) -> list[TextReport]:
    """The lines of text veil found, as the report lists them (in a clip,
    each with its box in the first frame it is masked in)."""
    return [
        TextReport(
            region.box if region.box is not None else region.track[0].box,
            region.label or "text",
            region.decision.value,
            region.reason or (region.found.why if region.found else None),
            region.id,
        )
        for region in plan.regions
        if region.kind is Kind.TEXT and (region.box is not None or region.track)
    ]


def new_run_report(options: AnonymizeOptions, detector: Detector, verifier: Verifier | None) -> RunReport:
    return RunReport(
        veil_version=veil_version(),
        model=model_info(detector.model),
        options=asdict(options),
        text_model=model_info(TEXT_DETECTOR) if options.text.hide else None,
        verifier_models=[model_info(m) for m in verifier.models] if verifier else [],
    )


def model_info(model: ModelSpec) -> ModelInfo:
    return ModelInfo(model.name, model.sha256, model.package, model.licence)
