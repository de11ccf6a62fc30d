"""The long fuzz campaign: at least 10,000 mutated inputs across veil's nine
formats (tests/fuzzing.py makes the seeds, the mutations and the verdicts),
each batch anonymized by `veil anonymize` in a fresh process with
verification on. Prints the outcomes per format, every finding, and keeps
the inputs behind each finding under OUT/findings to reproduce them.

    python benchmarks/fuzz.py OUT [--count 10000] [--seed 1] [--batch 100]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import FORMATS, campaign


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="an empty or new folder for the campaign's files")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100, help="inputs per veil process")
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    work = args.out / "work"
    started = time.monotonic()
    result = campaign(work, args.count, args.seed, args.batch, tuple(args.formats.split(",")))
    seconds = time.monotonic() - started
    kept = args.out / "findings"
    for finding in result.findings:  # the inputs named in findings, to replay
        for name in re.findall(r"\b\d{5}\.[a-z0-9]+\b", finding):
            for found in work.glob(f"batch-*/in/{name}"):
                kept.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, kept / name)
    shutil.rmtree(work)
    summary = {
        "inputs": result.inputs,
        "seconds": round(seconds, 1),
        "seed": args.seed,
        "outcomes": {fmt: dict(counts) for fmt, counts in sorted(result.outcomes.items())},
        "findings": result.findings,
    }
    (args.out / "fuzz.json").write_text(json.dumps(summary, indent=2))
    print(f"{result.inputs} inputs in {seconds:.0f} s ({result.inputs / seconds:.1f}/s), seed {args.seed}")
    print(result.table())
    print(f"findings: {len(result.findings)}")
    for finding in result.findings:
        print(" -", finding[:400])


if __name__ == "__main__":
    main()
