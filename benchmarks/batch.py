"""What resumable batches cost and give, on this machine:

- throughput of `veil anonymize` (verification on) with --jobs 1 and 2 ...
  on the first N photos of widerface-dev (full size), one run each, same run;
  with `--ray`, the same on a local Ray with as many actors, and Ray's
  start-up: a run on one small photo with `--ray --jobs 2` against one
  with `--jobs 2` (both start two workers that load their models);
- the journal's cost per file (start and finish of a job, each a committed
  SQLite transaction with synchronous=FULL);
- resuming a batch of 10,000 small photos of which 9,000 are done: the time
  from the start of the run to the decision of what is left to do.

    python benchmarks/batch.py [--data ../shared/data] [--photos 24] [--jobs 1,2] [--ray]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from veil.batch.journal import JOURNAL_NAME, Journal, options_key
from veil.jobs import Job, find_jobs
from veil.report import FileReport, FileStatus

REPO = Path(__file__).resolve().parent.parent


def throughput(data: Path, photos: int, jobs: list[int], work: Path, ray: bool) -> dict[str, float]:
    folder = work / "photos"
    folder.mkdir()
    images = sorted((data / "widerface-dev" / "images").rglob("*.jpg"))[:photos]
    if len(images) < photos:
        sys.exit(f"widerface-dev not found under {data}")
    for image in images:
        shutil.copy2(image, folder / image.name)
    rates = {}
    for engine in [[], ["--ray"]] if ray else [[]]:
        for count in jobs:
            name = " ".join([*engine, "--jobs", str(count)])
            seconds = _anonymize(folder, work / f"out-{len(rates)}", *engine, "--jobs", str(count))
            rates[name] = photos / seconds
            print(f"{name}: {rates[name]:.3f} photos/s ({photos} photos)", flush=True)
    return rates


def ray_start_up(work: Path) -> float:
    """Seconds a run on one small photo takes longer with a local Ray."""
    folder = work / "one"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "a.png")
    local = _anonymize(folder, work / "one-local", "--jobs", "2", "--no-verify")
    on_ray = _anonymize(folder, work / "one-ray", "--ray", "--jobs", "2", "--no-verify")
    return on_ray - local


def _anonymize(folder: Path, out: Path, *extra: str) -> float:
    started = time.monotonic()
    command = [sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q", *extra]
    subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def journal_cost(work: Path, files: int = 2000) -> float:
    with Journal(work / "cost" / JOURNAL_NAME) as journal:
        jobs = [Job(work / f"{i}.jpg", work / "cost" / f"{i}.jpg") for i in range(files)]
        journal.plan(jobs)
        report = FileReport(input="x", status=FileStatus.FAILED, error="e")
        started = time.monotonic()
        for job in jobs:
            journal.start(job)
            journal.finish(job, report, "key", None)
        return (time.monotonic() - started) / files


def resume_time(work: Path, files: int = 10_000, done: int = 9_000) -> float:
    archive, out = work / "archive", work / "resume-out"
    archive.mkdir()
    out.mkdir()
    pixels = np.zeros((16, 16, 3), np.uint8)
    for index in range(files):
        Image.fromarray(pixels).save(archive / f"{index:05d}.png")
    jobs = [entry for entry in find_jobs([archive], out) if isinstance(entry, Job)]
    key = options_key({}, "bench")
    from veil.batch.journal import fingerprint

    with Journal(out / JOURNAL_NAME) as journal:
        journal.plan(jobs)
        for job in jobs[:done]:
            job.target.write_bytes(b"")
            Path(f"{job.target}.plan.json").write_bytes(b"{}")
            report = FileReport(input=str(job.source), status=FileStatus.ANONYMIZED, output=str(job.target))
            journal.start(job)
            journal.finish(job, report, key, fingerprint(job.source))
    started = time.monotonic()
    with Journal(out / JOURNAL_NAME) as journal:
        planned = [entry for entry in find_jobs([archive], out) if isinstance(entry, Job)]
        journal.recover()
        journal.gone(planned)
        journal.plan(planned)
        left = [job for job in planned if journal.finished(job, key) is None]
    seconds = time.monotonic() - started
    assert len(left) == files - done, len(left)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--ray", action="store_true", help="also on a local Ray (veil[ray])")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        per_file = journal_cost(work)
        print(f"journal: {per_file * 1000:.2f} ms per file (start and finish, two commits)", flush=True)
        resume = resume_time(work)
        print(f"resume of 10,000 photos with 9,000 done: {resume:.2f} s to know the 1,000 left", flush=True)
        start_up = None
        if args.ray:
            start_up = ray_start_up(work)
            print(f"Ray's start-up: {start_up:.2f} s more than --jobs 2 on one photo", flush=True)
        rates = throughput(args.data, args.photos, [int(j) for j in args.jobs.split(",")], work, args.ray)
    if args.json:
        summary = {
            "journal_ms_per_file": per_file * 1000,
            "resume_seconds": resume,
            "photos_per_s": rates,
            "ray_start_up_s": start_up,
        }
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
