"""What resumable batches cost and give, on this machine:

- throughput of `veil anonymize` (verification on) with --jobs 1 and 2 ...
  on the first N photos of widerface-dev (full size), one run each, same run;
- the journal's cost per file (start and finish of a job, each a committed
  SQLite transaction with synchronous=FULL);
- resuming a batch of 10,000 small photos of which 9,000 are done: the time
  from the start of the run to the decision of what is left to do.

    python benchmarks/batch.py [--data ../shared/data] [--photos 24] [--jobs 1,2]
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
from veil.jobs import Job, plan_jobs
from veil.report import FileReport, FileStatus

REPO = Path(__file__).resolve().parent.parent


def throughput(data: Path, photos: int, jobs: list[int], work: Path) -> dict[int, float]:
    folder = work / "photos"
    folder.mkdir()
    images = sorted((data / "widerface-dev" / "images").rglob("*.jpg"))[:photos]
    if len(images) < photos:
        sys.exit(f"widerface-dev not found under {data}")
    for image in images:
        shutil.copy2(image, folder / image.name)
    rates = {}
    for count in jobs:
        out = work / f"out-{count}"
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "veil",
                "anonymize",
                str(folder),
                "-o",
                str(out),
                "-q",
                "--jobs",
                str(count),
            ],
            check=True,
        )
        rates[count] = photos / (time.monotonic() - started)
        print(f"--jobs {count}: {rates[count]:.3f} photos/s ({photos} photos)", flush=True)
    return rates


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
    jobs = [entry for entry in plan_jobs([archive], out) if isinstance(entry, Job)]
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
        planned = [entry for entry in plan_jobs([archive], out) if isinstance(entry, Job)]
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
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        per_file = journal_cost(work)
        print(f"journal: {per_file * 1000:.2f} ms per file (start and finish, two commits)", flush=True)
        resume = resume_time(work)
        print(f"resume of 10,000 photos with 9,000 done: {resume:.2f} s to know the 1,000 left", flush=True)
        rates = throughput(args.data, args.photos, [int(j) for j in args.jobs.split(",")], work)
    if args.json:
        summary = {"journal_ms_per_file": per_file * 1000, "resume_seconds": resume, "photos_per_s": rates}
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
