"""The `veil` command: what each subcommand runs, the reports it writes,
and exit status (its arguments are `veil.arguments`).

Exit status: 0 when every file was anonymized and passed verification (or
for `veil verify`, every pair passed), 1 when any failed, 2 for a usage
error. Only this module and `veil.terminal` (progress, verdicts, summary)
print, and only this module exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from veil import netns
from veil.arguments import LOCAL_RAY, RENDER_REPORT_NAME, REPORT_NAME, VERIFY_REPORT_NAME, build_parser
from veil.batch.journal import JOURNAL_NAME, Journal, read_standing
from veil.batch.run import Ray, run_batch
from veil.batch.workers import default_jobs
from veil.detection import devices
from veil.errors import JournalError, VeilError, quiet_library_logs
from veil.jobs import Job, find_jobs, find_pairs, is_video
from veil.media.files import publish_bytes
from veil.options import (
    AnonymizeOptions,
    AudioMode,
    ChoiceOptions,
    DetectionOptions,
    Device,
    MaskMethod,
    MaskOptions,
    Precision,
    TextOptions,
    TrackingOptions,
    VideoOptions,
)
from veil.pipeline.output import model_info, veil_version
from veil.pipeline.render import RenderJob, find_renders, plan_beside, render_jobs
from veil.report import FileReport, PairReport, RunReport, VerifyRunReport
from veil.terminal import file_error, print_verdict, say_error, status_lines, summary_line, with_progress
from veil.verify import Verifier

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # argparse exits 2 on usage errors

REVERSIBLE_WARNING = (
    "warning: --method {method} is reversible: face-recognition models trained on "
    "{method}ed faces re-identify people far above chance. Use the default solid "
    "mask for anything that protects people."
)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_library_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "anonymize" and args.ray == LOCAL_RAY:
        try:
            _private_network(sys.argv[1:] if argv is None else list(argv))
        except VeilError as e:
            say_error(f"--ray: {e}")
            return EXIT_FAILED
    if args.command == "verify":
        try:
            return run_verify(args)
        except KeyboardInterrupt:
            say_error("interrupted")
            return EXIT_INTERRUPTED
    if args.command == "review":
        return run_review(args)
    if args.command == "status":
        return run_status(args)
    if args.command == "render":
        options = AnonymizeOptions(
            video=VideoOptions(audio=AudioMode(args.audio)),
            verify=not args.no_verify,
            device=Device(args.device),
        )
        try:
            return run_render(args, options)
        except KeyboardInterrupt:
            say_error("interrupted; files already written are complete")
            return EXIT_INTERRUPTED
    try:
        options = AnonymizeOptions(
            detection=DetectionOptions(threshold=args.threshold),
            choice=ChoiceOptions(precision=Precision(args.precision)),
            mask=MaskOptions(method=MaskMethod(args.method), head_scale=args.head_scale),
            text=TextOptions(hide=not args.no_text),
            video=VideoOptions(
                audio=AudioMode(args.audio),
                tracking=TrackingOptions(max_gap=args.max_gap, extend=args.extend),
            ),
            verify=not args.no_verify,
            device=Device(args.device),
        )
    except ValueError as e:
        parser.error(str(e))
    try:
        return run_anonymize(args, options)
    except KeyboardInterrupt:
        say_error("interrupted; files already written are complete, the rest were not anonymized")
        return EXIT_INTERRUPTED


def _private_network(argv: list[str]) -> None:
    """Run this command again in a network namespace of its own, unless it
    is that run already: then bring its loopback up."""
    if netns.inside():
        netns.loopback_up()
    else:
        netns.run_again_inside(argv)


def run_anonymize(args: argparse.Namespace, options: AnonymizeOptions) -> int:
    out = Console(stderr=True, quiet=args.quiet)
    errors = Console(stderr=True)
    warnings = []
    if options.mask.method.reversible:
        warnings.append(REVERSIBLE_WARNING.format(method=options.mask.method.value.removesuffix("e")))
    if options.mask.head_scale < MaskOptions().head_scale:
        warnings.append("warning: --head-scale below the default leaves hair, ears or jaw visible")
    default_tracking = TrackingOptions()
    if (
        options.video.tracking.max_gap < default_tracking.max_gap
        or options.video.tracking.extend < default_tracking.extend
    ):
        warnings.append(
            "warning: --max-gap or --extend below the default can leave faces visible in some frames"
        )
    if options.detection.threshold > DetectionOptions().threshold:
        warnings.append("warning: a --threshold above the default misses more faces")
    if options.choice.precision is Precision.HIGH:
        warnings.append(
            "warning: --precision high leaves weak face candidates unmasked among people: "
            "it draws fewer false masks and misses some real faces"
        )
    if not options.text.hide:
        warnings.append("warning: --no-text: plates, name badges and screens are left readable")
    if not options.verify:
        warnings.append("warning: --no-verify: outputs are not checked for faces left visible")
    for warning in warnings:
        errors.print(warning, style="yellow", highlight=False)

    report_path = args.report or (args.output or Path.cwd()) / REPORT_NAME
    ray = None if args.ray is None else Ray(None if args.ray == LOCAL_RAY else args.ray)
    # On a cluster, by default as many workers as it holds (and files there are).
    jobs = args.jobs or (sys.maxsize if ray is not None and ray.address else default_jobs())
    try:
        detector = devices.face_detector(options) if jobs == 1 and ray is None else None  # workers: their own
    except VeilError as e:
        say_error(str(e))
        return EXIT_FAILED
    journal: Journal | None = None
    try:
        journal = Journal((args.output or report_path.parent) / JOURNAL_NAME)
        if args.restart:
            journal.restart()
    except JournalError as e:
        if journal is not None:
            journal.close()
            journal = None
        warnings.append(f"warning: {e}; this batch cannot be resumed")
        errors.print(warnings[-1], style="yellow", highlight=False)
    planned = find_jobs(list(args.paths), args.output)
    has_video = any(isinstance(entry, Job) and is_video(entry.source) for entry in planned)

    def work(progress: Callable[[FileReport], None], on_frame: Callable[[int, int], None]) -> RunReport:
        return run_batch(planned, options, journal, jobs, progress, on_frame, detector, ray)

    try:
        report = with_progress(out, errors, planned, has_video, work)
    except VeilError as e:  # the batch could not run at all (Ray did not start)
        say_error(str(e))
        return EXIT_FAILED
    finally:
        if journal is not None:
            journal.close()
    for warning in report.warnings:
        errors.print(warning, style="yellow", highlight=False)
    report.warnings.extend(warnings)
    report_error = _write_report(report, report_path, [Path(p) for p in args.paths])
    if report_error:
        say_error(f"report not written: {report_error}")
    out.print(
        summary_line(report, None if report_error else report_path),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK if report.ok and not report_error else EXIT_FAILED


def run_status(args: argparse.Namespace) -> int:
    out = Console()
    try:
        standing = read_standing(args.outdir / JOURNAL_NAME)
    except VeilError as e:
        say_error(str(e))
        return EXIT_FAILED
    out.print(status_lines(args.outdir, standing), highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


def run_review(args: argparse.Namespace) -> int:
    from veil.review.run import ReviewedRun
    from veil.review.server import serve

    errors = Console(stderr=True)
    try:
        batch = ReviewedRun(args.outdir, Device(args.device))
    except VeilError as e:
        say_error(str(e))
        return EXIT_FAILED

    def ready(url: str) -> None:
        errors.print(
            f"veil review: {len(batch.items)} files, served on this machine only at\n  {url}\n"
            "Anyone with this address can see the originals. Ctrl-C ends the review.",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        if not args.no_browser:
            import webbrowser

            webbrowser.open(url)

    with contextlib.suppress(KeyboardInterrupt):
        serve(batch, ready)
    errors.print("veil review: ended; every change is saved", highlight=False, markup=False)
    return EXIT_OK


def run_render(args: argparse.Namespace, options: AnonymizeOptions) -> int:
    out = Console(stderr=True, quiet=args.quiet)
    errors = Console(stderr=True)
    if not options.verify:
        errors.print(
            "warning: --no-verify: outputs are not checked for faces left visible",
            style="yellow",
            highlight=False,
        )
    for path in (args.original, args.plan):
        if not path.exists():
            say_error(f"no such file or folder: {path}")
            return EXIT_FAILED
    if args.original.is_dir() != args.plan.is_dir():
        say_error("ORIGINAL and PLAN must both be files or both be folders")
        return EXIT_FAILED
    planned = find_renders(args.original, args.plan, args.output)
    has_video = any(isinstance(entry, RenderJob) and is_video(entry.source) for entry in planned)

    def work(progress: Callable[[FileReport], None], on_frame: Callable[[int, int], None]) -> RunReport:
        return render_jobs(planned, options, progress=progress, on_frame=on_frame)

    report = with_progress(out, errors, planned, has_video, work)
    folder = args.output if args.original.is_dir() else Path.cwd()
    report_path = args.report or folder / RENDER_REPORT_NAME
    report_error = _write_report(report, report_path, [args.original, args.plan])
    if report_error:
        say_error(f"report not written: {report_error}")
    line = summary_line(report, None if report_error else report_path, "rendered", "masks drawn")
    out.print(line, highlight=False, markup=False, soft_wrap=True)
    for file in report.files:
        if file.decisions is not None and file.decisions.kept:
            kept = "; ".join(f"{k.id}: {k.reason}" for k in file.decisions.kept)
            out.print(f"  {file.output}: kept visible by choice: {kept}", highlight=False, markup=False)
    return EXIT_OK if report.ok and report.files and not report_error else EXIT_FAILED


def _write_report(report: RunReport | VerifyRunReport, path: Path, inputs: list[Path]) -> str | None:
    """Write (or atomically replace) the report, and for a run with videos its
    boxes sidecar; refuse to land on an input."""
    if any(path.resolve() == p.resolve() for p in inputs):
        return f"{path} is one of the inputs"
    try:
        if isinstance(report, RunReport) and (boxes := report.boxes_sidecar()):
            sidecar = RunReport.boxes_path(path)
            publish_bytes(sidecar, json.dumps(boxes).encode("utf-8"), replace=True)
            report.boxes_file = str(sidecar)
        publish_bytes(path, report.to_json().encode("utf-8"), replace=True)
    except (OSError, VeilError) as e:
        return str(e)
    return None


def run_verify(args: argparse.Namespace) -> int:
    out = Console(stderr=True, quiet=args.quiet)
    errors = Console(stderr=True)  # failures are printed even with -q, as anonymize does
    if not args.original.exists():
        say_error(f"no such file or folder: {args.original}")
        return EXIT_FAILED
    try:
        verifier = Verifier(device=Device(args.device))
    except VeilError as e:
        say_error(str(e))
        return EXIT_FAILED
    if verifier.recognition_missing:
        out.print(f"note: {verifier.recognition_missing}", style="yellow", highlight=False, markup=False)
    audio = AudioMode(args.audio)
    report = VerifyRunReport(
        veil_version=veil_version(),
        verifier_models=[model_info(m) for m in verifier.models],
        options={"audio": audio.value},
    )
    for original, output in find_pairs(args.original, args.anonymized):
        pair = _verify_pair(verifier, original, output, audio)
        report.files.append(pair)
        if pair.error is not None:
            file_error(errors, str(original), pair.error)
        elif pair.verification is not None:
            print_verdict(out if pair.passed else errors, str(output), pair.verification)
    report_path = args.report or Path.cwd() / VERIFY_REPORT_NAME
    report_error = _write_report(report, report_path, [args.original, args.anonymized])
    if report_error:
        say_error(f"report not written: {report_error}")
        return EXIT_FAILED
    passed = sum(1 for f in report.files if f.passed)
    failed = len(report.files) - passed
    line = f"veil verify: {passed} passed, {failed} failed; report: {report_path}"
    out.print(("FAILED " if failed else "") + line, highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK if report.ok and report.files else EXIT_FAILED


def _verify_pair(verifier: Verifier, original: Path, output: Path, audio: AudioMode) -> PairReport:
    try:
        plan = plan_beside(original, output)
        return PairReport(str(original), str(output), verifier.verify(original, output, audio, plan))
    except VeilError as e:
        return PairReport(str(original), str(output), error=f"original: {e}")
    except Exception as e:  # fail closed: an unforeseen error is a failure, never a pass
        return PairReport(str(original), str(output), error=f"internal error: {e}".splitlines()[0])


def entry_point() -> None:
    sys.exit(main())
