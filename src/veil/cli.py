"""The `veil` command: argument parsing, the reports it writes, and exit status.

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

from veil import devices, netns
from veil.batch.journal import JOURNAL_NAME, Journal, JournalError, read_standing
from veil.batch.run import Ray, run_batch
from veil.batch.workers import default_jobs
from veil.errors import VeilError
from veil.jobs import Job, is_video, plan_jobs, plan_pairs
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
    TrackingOptions,
    VideoOptions,
)
from veil.pipeline import model_info, veil_version
from veil.rendering import RenderJob, plan_beside, plan_renders, render_jobs
from veil.report import FileReport, PairReport, RunReport, VerifyRunReport
from veil.terminal import print_verdict, status_lines, summary_line, with_progress
from veil.verify import Verifier

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # argparse exits 2 on usage errors
REPORT_NAME = "veil-report.json"
VERIFY_REPORT_NAME = "veil-verify.json"
RENDER_REPORT_NAME = "veil-render.json"
LOCAL_RAY = "local"  # --ray without an address

REVERSIBLE_WARNING = (
    "warning: --method {method} is reversible: face-recognition models trained on "
    "{method}ed faces re-identify people far above chance. Use the default solid "
    "mask for anything that protects people."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veil",
        description="Hide every face in photos and videos, irreversibly, and strip identifying metadata.",
    )
    parser.add_argument("--version", action="version", version=f"veil {veil_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    anonymize = commands.add_parser(
        "anonymize",
        help="mask faces and strip metadata",
        description="Mask every face and write new files with no identifying metadata. "
        "Originals are never modified.",
    )
    anonymize.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="photos, videos or folders")
    anonymize.add_argument(
        "-o", "--output", type=Path, metavar="OUTDIR",
        help="write results here, keeping relative paths (default: NAME.veil.EXT beside each input)",
    )  # fmt: skip
    anonymize.add_argument(
        "--report", type=Path, metavar="FILE",
        help=f"JSON report path (default: OUTDIR/{REPORT_NAME}, or ./{REPORT_NAME} without -o)",
    )  # fmt: skip
    anonymize.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    mask, detection, video = MaskOptions(), DetectionOptions(), VideoOptions()
    anonymize.add_argument(
        "--method", choices=[m.value for m in MaskMethod], default=mask.method.value,
        help="solid (default, irreversible); blur and pixelate are reversible and warned about",
    )  # fmt: skip
    anonymize.add_argument(
        "--audio", choices=[m.value for m in AudioMode], default=video.audio.value,
        help="video sound: keep (default; copied where the container allows), "
        "mute (a silent track of the same length) or drop",
    )  # fmt: skip
    tracking = video.tracking
    anonymize.add_argument(
        "--max-gap", type=int, default=tracking.max_gap, metavar="FRAMES",
        help=f"video: mask a tracked face through up to this many missed frames (default {tracking.max_gap})",
    )  # fmt: skip
    anonymize.add_argument(
        "--extend", type=int, default=tracking.extend, metavar="FRAMES",
        help=f"video: mask each track this many frames before and after it (default {tracking.extend})",
    )  # fmt: skip
    anonymize.add_argument(
        "--threshold", type=float, default=detection.threshold,
        help=f"detection threshold; lower finds more faces (default {detection.threshold})",
    )  # fmt: skip
    anonymize.add_argument(
        "--precision", choices=[p.value for p in Precision], default=ChoiceOptions().precision.value,
        help="how much proof a face candidate needs to be masked: normal (default: a second look "
        "where the picture shows no person), all (mask every candidate, many on texture), "
        "high (fewer false masks, and some faces lost: warned)",
    )  # fmt: skip
    anonymize.add_argument(
        "--head-scale", type=float, default=mask.head_scale,
        help=f"mask size relative to the face box (default {mask.head_scale})",
    )  # fmt: skip
    anonymize.add_argument(
        "--no-verify", action="store_true",
        help="do not attack each output after writing it (see veil verify)",
    )  # fmt: skip
    anonymize.add_argument(
        "--jobs", type=_positive, default=None, metavar="N",
        help=f"worker processes, each with its own models and share of the cores "
        f"(default here: {default_jobs()}, from cores and memory; with --ray ADDRESS, as many "
        "as the cluster holds)",
    )  # fmt: skip
    anonymize.add_argument(
        "--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS",
        help="work on Ray actors, --jobs of them: on the cluster at ADDRESS (pip install "
        "'veil[ray]'; every node must see the files at the same paths), or without ADDRESS on "
        "a Ray of veil's own, in a private network namespace of this machine",
    )  # fmt: skip
    anonymize.add_argument(
        "--restart", action="store_true",
        help="forget what an earlier, stopped run of this batch did and do every file again "
        "(by default a batch resumes: files done, unchanged, are not redone)",
    )  # fmt: skip
    _add_device_argument(anonymize)
    status = commands.add_parser(
        "status",
        help="where a batch stands",
        description="Show how far a batch written to OUTDIR has come (files done, failed, to do), "
        "from its journal, without changing anything.",
    )
    status.add_argument("outdir", type=Path, metavar="OUTDIR", help="the folder veil anonymize -o writes")
    verify = commands.add_parser(
        "verify",
        help="check anonymized files against their originals",
        description="Attack anonymized outputs: search them for faces left visible with a second "
        "detector, try to match masked faces to the originals with a face-recognition model, list "
        "surviving metadata, and check that each output is whole. Prints PASS or FAIL per file.",
    )
    verify.add_argument("original", type=Path, metavar="ORIGINAL", help="the original file or folder")
    verify.add_argument(
        "anonymized", type=Path, metavar="ANONYMIZED",
        help="the anonymized file, or a folder with outputs at the same relative paths",
    )  # fmt: skip
    verify.add_argument(
        "--report", type=Path, metavar="FILE", help=f"JSON report path (default ./{VERIFY_REPORT_NAME})"
    )
    verify.add_argument(
        "-q", "--quiet", action="store_true", help="print only failures and errors; the exit status says"
    )
    verify.add_argument(
        "--audio", choices=[m.value for m in AudioMode], default=video.audio.value,
        help="the sound the outputs should have, as given to anonymize (default keep)",
    )  # fmt: skip
    _add_device_argument(verify)
    render = commands.add_parser(
        "render",
        help="re-render outputs from their originals and edited mask plans",
        description="Render an output from the original and a mask plan (as veil anonymize wrote "
        "it, NAME.EXT.plan.json, perhaps edited), with no detection, then verify it as anonymize "
        "does: a face seen where the plan dropped a mask fails the file.",
    )
    render.add_argument("original", type=Path, metavar="ORIGINAL", help="the original file or folder")
    render.add_argument(
        "plan", type=Path, metavar="PLAN",
        help="its plan, or a folder with NAME.EXT.plan.json at each original's relative path",
    )  # fmt: skip
    render.add_argument(
        "-o", "--output", type=Path, metavar="OUTPUT", required=True,
        help="the output file, or a folder for outputs at the originals' relative paths",
    )  # fmt: skip
    render.add_argument(
        "--report", type=Path, metavar="FILE",
        help=f"JSON report (default OUTPUT/{RENDER_REPORT_NAME} for folders, else ./{RENDER_REPORT_NAME})",
    )  # fmt: skip
    render.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    render.add_argument(
        "--audio", choices=[m.value for m in AudioMode], default=video.audio.value,
        help="video sound: keep (default), mute or drop",
    )  # fmt: skip
    render.add_argument("--no-verify", action="store_true", help="do not attack each output after writing it")
    _add_device_argument(render)
    review = commands.add_parser(
        "review",
        help="see, correct and approve every mask in the browser, on this machine only",
        description="Serve a review page for a folder veil anonymize -o wrote, on 127.0.0.1 only, "
        "behind a one-time token: see every region, mask, drop or keep it, draw missed ones, "
        "render and verify again, approve. Ctrl-C ends it.",
    )
    review.add_argument("outdir", type=Path, metavar="OUTDIR", help="the folder veil anonymize -o wrote")
    review.add_argument("--no-browser", action="store_true", help="only print the address, open no browser")
    _add_device_argument(review)
    return parser


def _add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", choices=[d.value for d in Device], default=Device.AUTO.value,
        help="where the detectors run: auto (default: an NVIDIA GPU when veil[gpu] is installed "
        "and finds one, else the CPU), cpu, or cuda",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "anonymize" and args.ray == LOCAL_RAY:
        try:
            _private_network(sys.argv[1:] if argv is None else list(argv))
        except VeilError as e:
            Console(stderr=True).print(f"veil: --ray: {e}", highlight=False, markup=False)
            return EXIT_FAILED
    if args.command == "verify":
        try:
            return run_verify(args)
        except KeyboardInterrupt:
            Console(stderr=True).print("veil: interrupted", highlight=False, markup=False)
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
            Console(stderr=True).print(
                "veil: interrupted; files already written are complete", highlight=False, markup=False
            )
            return EXIT_INTERRUPTED
    try:
        options = AnonymizeOptions(
            detection=DetectionOptions(threshold=args.threshold),
            choice=ChoiceOptions(precision=Precision(args.precision)),
            mask=MaskOptions(method=MaskMethod(args.method), head_scale=args.head_scale),
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
        Console(stderr=True).print(
            "veil: interrupted; files already written are complete, the rest were not anonymized",
            highlight=False,
            markup=False,
        )
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
        errors.print(f"veil: {type(e).__name__}: {e}", highlight=False, markup=False)
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
    planned = plan_jobs(list(args.paths), args.output)
    has_video = any(isinstance(entry, Job) and is_video(entry.source) for entry in planned)

    def work(progress: Callable[[FileReport], None], on_frame: Callable[[int, int], None]) -> RunReport:
        return run_batch(planned, options, journal, jobs, progress, on_frame, detector, ray)

    try:
        report = with_progress(out, errors, planned, has_video, work)
    except VeilError as e:  # the batch could not run at all (Ray did not start)
        errors.print(f"veil: {e}", highlight=False, markup=False)
        return EXIT_FAILED
    finally:
        if journal is not None:
            journal.close()
    for warning in report.warnings:
        errors.print(warning, style="yellow", highlight=False)
    report.warnings.extend(warnings)
    report_error = _write_report(report, report_path, [Path(p) for p in args.paths])
    if report_error:
        errors.print(
            f"error: report not written: {report_error}", highlight=False, markup=False, soft_wrap=True
        )
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
        Console(stderr=True).print(f"veil: {e}", highlight=False, markup=False)
        return EXIT_FAILED
    out.print(status_lines(args.outdir, standing), highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


def run_review(args: argparse.Namespace) -> int:
    from veil.review.batch import Batch
    from veil.review.server import serve

    errors = Console(stderr=True)
    try:
        batch = Batch(args.outdir, Device(args.device))
    except VeilError as e:
        errors.print(f"veil: {e}", highlight=False, markup=False, soft_wrap=True)
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
            errors.print(f"veil: no such file or folder: {path}", highlight=False, markup=False)
            return EXIT_FAILED
    if args.original.is_dir() != args.plan.is_dir():
        errors.print("veil: ORIGINAL and PLAN must both be files or both be folders", highlight=False)
        return EXIT_FAILED
    planned = plan_renders(args.original, args.plan, args.output)
    has_video = any(isinstance(entry, RenderJob) and is_video(entry.source) for entry in planned)

    def work(progress: Callable[[FileReport], None], on_frame: Callable[[int, int], None]) -> RunReport:
        return render_jobs(planned, options, progress=progress, on_frame=on_frame)

    report = with_progress(out, errors, planned, has_video, work)
    folder = args.output if args.original.is_dir() else Path.cwd()
    report_path = args.report or folder / RENDER_REPORT_NAME
    report_error = _write_report(report, report_path, [args.original, args.plan])
    if report_error:
        errors.print(
            f"error: report not written: {report_error}", highlight=False, markup=False, soft_wrap=True
        )
    line = summary_line(report, None if report_error else report_path).replace("anonymized", "rendered", 1)
    out.print(line.replace(" faces masked", " masks drawn"), highlight=False, markup=False, soft_wrap=True)
    for file in report.files:
        if file.decisions is not None and file.decisions.kept:
            kept = "; ".join(f"{k.id}: {k.reason}" for k in file.decisions.kept)
            out.print(f"  {file.output}: kept visible by choice: {kept}", highlight=False, markup=False)
    return EXIT_OK if report.ok and report.files and not report_error else EXIT_FAILED


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _write_report(report: RunReport | VerifyRunReport, path: Path, inputs: list[Path]) -> str | None:
    """Write (or atomically replace) the report, and for a run with videos its
    boxes sidecar; refuse to land on an input."""
    if any(path.resolve() == p.resolve() for p in inputs):
        return f"{path} is one of the inputs"
    try:
        if isinstance(report, RunReport) and (boxes := report.boxes_sidecar()):
            sidecar = path.with_name(f"{path.stem}.boxes.json")
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
        errors.print(f"veil: no such file or folder: {args.original}", highlight=False, markup=False)
        return EXIT_FAILED
    try:
        verifier = Verifier(device=Device(args.device))
    except VeilError as e:
        errors.print(f"veil: {type(e).__name__}: {e}", highlight=False, markup=False)
        return EXIT_FAILED
    if verifier.recognition_missing:
        out.print(f"note: {verifier.recognition_missing}", style="yellow", highlight=False, markup=False)
    audio = AudioMode(args.audio)
    report = VerifyRunReport(
        veil_version=veil_version(),
        verifier_models=[model_info(m) for m in verifier.models],
        options={"audio": audio.value},
    )
    for original, output in plan_pairs(args.original, args.anonymized):
        pair = _verify_pair(verifier, original, output, audio)
        report.files.append(pair)
        if pair.error is not None:
            errors.print(f"ERROR {original}: {pair.error}", highlight=False, markup=False, soft_wrap=True)
        elif pair.verification is not None:
            print_verdict(out if pair.passed else errors, str(output), pair.verification)
    report_path = args.report or Path.cwd() / VERIFY_REPORT_NAME
    report_error = _write_report(report, report_path, [args.original, args.anonymized])
    if report_error:
        errors.print(
            f"error: report not written: {report_error}", highlight=False, markup=False, soft_wrap=True
        )
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
