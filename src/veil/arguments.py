"""The `veil` command's arguments: every subcommand, its options and their
help. Defaults are read from `veil.options`, where each is written once."""

from __future__ import annotations

import argparse
from pathlib import Path

from veil.batch.workers import default_jobs
from veil.options import (
    AudioMode,
    ChoiceOptions,
    DetectionOptions,
    Device,
    MaskMethod,
    MaskOptions,
    Precision,
    VideoOptions,
)
from veil.pipeline.output import veil_version

REPORT_NAME = "veil-report.json"
VERIFY_REPORT_NAME = "veil-verify.json"
RENDER_REPORT_NAME = "veil-render.json"
LOCAL_RAY = "local"  # --ray without an address


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
        "--no-text", action="store_true",
        help="leave all text as it is: plates, name badges and screens stay readable (warned); "
        "by default small text is masked and signs are left readable",
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
        "--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS", type=_ray_address,
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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _ray_address(text: str) -> str:
    """A Ray address, never one of the paths to anonymize: `--ray photos/ -o
    out` would otherwise take the folder for the cluster."""
    if text and Path(text).exists():
        raise argparse.ArgumentTypeError(
            f"{text} is a file or folder here, not a Ray address: give the paths first "
            f"(veil anonymize {text} -o OUTDIR --ray) or an address such as HOST:6379"
        )
    return text
