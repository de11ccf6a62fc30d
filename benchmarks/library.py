"""veil as a library: many photos through one `veil.Anonymizer` against a
plain `veil.anonymize_file` call per photo.

    python benchmarks/library.py [--data ../shared/data] [--photos 20] [--before LABEL=PYTHON ...]

Each way runs in a fresh Python process on the same photos (the first
`--photos` of widerface-dev, sorted by name), verification on, and reports
the wall time of the loop (models included) and of its first file. Another
veil (`--before before=/tmp/old/.venv/bin/python`: the Python of an
environment it is installed in) runs the plain calls only: an Anonymizer
may not exist there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

_LOOP = """
import json, sys, tempfile, time
from pathlib import Path
started = time.perf_counter()
import veil
photos = [Path(p) for p in json.loads(sys.argv[2])]
times = []
with tempfile.TemporaryDirectory() as out:
    if sys.argv[1] == "anonymizer":
        anonymizer = veil.Anonymizer()
        run = lambda p, t: anonymizer.anonymize(p, t)
    else:
        run = lambda p, t: veil.anonymize_file(p, t)
    for photo in photos:
        report = run(photo, Path(out) / photo.name)
        assert report.error is None, report.error
        times.append(time.perf_counter() - started - sum(times))
print(json.dumps({"total_s": time.perf_counter() - started, "first_s": times[0], "files": len(times)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--before", action="append", default=[], help="LABEL=PYTHON: another veil's Python")
    args = parser.parse_args()
    folder = args.data / "widerface-dev" / "images"
    photos = sorted(str(p) for p in folder.rglob("*.jpg"))[: args.photos]
    if not photos:
        print(f"benchmark skipped: no photos at {folder}")
        return 0
    here = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    runs = [
        ("now: anonymize_file per photo", sys.executable, here, "calls"),
        ("now: one Anonymizer", sys.executable, here, "anonymizer"),
    ]
    runs += [
        (f"{label}: anonymize_file per photo", python, None, "calls") for label, python in _pairs(args.before)
    ]
    results = {}
    for label, python, env, way in runs:
        done = subprocess.run(
            [python, "-c", _LOOP, way, json.dumps(photos)], env=env, capture_output=True, text=True, cwd="/"
        )
        if done.returncode != 0:
            print(f"{label}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results[label] = result
        print(
            f"{label}: {result['files']} photos in {result['total_s']:.1f} s "
            f"({result['total_s'] / result['files']:.2f} s each; the first {result['first_s']:.1f} s)"
        )
    return 0


def _pairs(specs: list[str]) -> list[tuple[str, str]]:
    return [tuple(spec.split("=", 1)) for spec in specs]  # type: ignore[misc]


if __name__ == "__main__":
    sys.exit(main())
