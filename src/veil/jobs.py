"""Which files a run works on, and where each output goes: inputs walked in
a stable order, outputs at the same relative path under OUTDIR (or beside
each input as NAME.veil.EXT), skips and clashes as reports, and the
(original, output) pairs `veil verify` compares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from veil.errors import VeilError
from veil.media.image import PHOTO_SUFFIXES
from veil.media.video import VIDEO_FORMATS
from veil.report import FileReport, FileStatus

OUTPUT_INFIX = ".veil"


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    source: Path
    target: Path
    root: Path | None = None  # the folder named for outputs: below it no link is followed


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_FORMATS


def find_jobs(paths: list[Path], out_dir: Path | None) -> list[Job | FileReport]:
    """Jobs for every photo under `paths`, in a stable order; files found in
    folders that are not photos come back as skipped or failed reports."""
    planned: list[Job | FileReport] = []
    targets: set[Path] = set()
    for path in paths:
        for source, relative in _walk(path, skip=out_dir):
            entry = _plan_one(source, relative, path, out_dir)
            if isinstance(entry, Job):
                key = entry.target.resolve()
                if key in targets:
                    clash = VeilError(f"two inputs would write the same output {entry.target}")
                    entry = failure_report(source, clash)
                targets.add(key)
            planned.append(entry)
    return planned


def _walk(path: Path, skip: Path | None) -> Iterator[tuple[Path, Path]]:
    """Files under `path` (itself, if a file) with their paths relative to it,
    sorted, without following links to folders or entering `skip` (an output
    folder inside an input folder: earlier results are not inputs)."""
    if not path.is_dir():
        yield path, Path(path.name)
        return
    skipped = skip.resolve() if skip is not None else None
    found: list[Path] = []
    for folder, subfolders, files in os.walk(path):
        if folder != str(path) and Path(folder).resolve() == skipped:
            subfolders.clear()
            continue
        found.extend(Path(folder) / name for name in files)
    for source in sorted(found):
        yield source, source.relative_to(path)


def _plan_one(source: Path, relative: Path, given: Path, out_dir: Path | None) -> Job | FileReport:
    suffix = source.suffix.lower()
    from_folder = given.is_dir()
    if from_folder:
        if any(part.startswith(".") for part in relative.parts):
            return FileReport(input=str(source), status=FileStatus.SKIPPED, error="hidden file")
        if out_dir is None and is_veil_output(source):
            return FileReport(input=str(source), status=FileStatus.SKIPPED, error="a veil output")
        if suffix not in PHOTO_SUFFIXES and suffix not in VIDEO_FORMATS:
            return FileReport(input=str(source), status=FileStatus.SKIPPED, error="not a photo")
    if out_dir is not None:
        return Job(source, out_dir / relative, out_dir)
    return Job(source, default_target(source), given if from_folder else source.parent)


def default_target(source: Path) -> Path:
    return source.with_name(f"{source.stem}{OUTPUT_INFIX}{source.suffix}")


def is_veil_output(path: Path) -> bool:
    return path.stem.endswith(OUTPUT_INFIX)


def failure_report(source: Path, error: Exception, prefix: str = "") -> FileReport:
    message = str(error) or type(error).__name__
    return FileReport(
        input=str(source),
        status=FileStatus.FAILED,
        error=prefix + message.splitlines()[0],
        error_type=type(error).__name__,
    )


def find_pairs(original: Path, anonymized: Path) -> list[tuple[Path, Path]]:
    """(original, output) pairs for `veil verify`: two files, or every photo
    and video under a folder with its output at the same relative path in the
    other folder (a file and a folder: the output of that name inside it)."""
    if not original.is_dir():
        target = anonymized / original.name if anonymized.is_dir() else anonymized
        return [(original, target)]
    return [
        (entry.source, entry.target)
        for entry in find_jobs([original], anonymized)
        if isinstance(entry, Job) and not is_veil_output(entry.source)
    ]
