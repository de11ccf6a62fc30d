"""A short, fixed-seed fuzz campaign (tests/fuzzing.py): mutated JPEG, PNG,
WebP, TIFF, HEIC, MP4, MOV, MKV and WebM files through `veil anonymize`,
each ending verified, kept-and-failed, or refused with one line; no
traceback, hang, crash, partial file or changed input. The long campaign is
benchmarks/fuzz.py."""

from __future__ import annotations

from pathlib import Path

from fuzzing import FORMATS, campaign

PER_FORMAT = 30


def test_mutated_files_end_in_an_output_or_one_line(tmp_path: Path) -> None:
    result = campaign(tmp_path, PER_FORMAT * len(FORMATS), seed=20261203)
    assert result.findings == []
    assert result.inputs == PER_FORMAT * len(FORMATS)
    assert set(result.outcomes) == set(FORMATS)
    totals = {kind: sum(c[kind] for c in result.outcomes.values()) for kind in ("verified", "refused")}
    assert totals["verified"] > 0 and totals["refused"] > 0  # the campaign reached both ends
