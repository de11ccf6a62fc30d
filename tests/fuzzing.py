"""A fuzz campaign over veil's inputs: seed files made in code, mutated, run
through `veil anonymize` as one batch, and every outcome classified.

Each input must end in exactly one of these ways: a complete output that
passed verification, a complete output that failed it (kept, marked FAIL in
the report, for a person to review), or one line of error and no output.
Anything else is a finding: a traceback, an internal error, a hang (the
batch ran past its clock), a crash of the process, a partial or temporary
file left, or an input changed. tests/test_fuzz.py runs a short campaign
with a fixed seed; benchmarks/fuzz.py a long one.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import piexif
import skimage.data
from PIL import Image

PHOTO_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "tif": "TIFF", "heic": "HEIF"}
VIDEO_CODECS = {
    "mp4": ("libx264", "aac"),
    "mov": ("libx264", "aac"),
    "mkv": ("libx264", "aac"),
    "webm": ("libvpx-vp9", "libopus"),
}
FORMATS = tuple(PHOTO_FORMATS) + tuple(VIDEO_CODECS)
SIDE = 128  # pixels: small seeds keep a campaign fast
FRAMES = 6


def _picture() -> npt.NDArray[np.uint8]:
    image = Image.fromarray(np.asarray(skimage.data.astronaut(), dtype=np.uint8))
    return np.asarray(image.resize((SIDE, SIDE)), dtype=np.uint8)


def _exif() -> bytes:
    thumbnail = io.BytesIO()
    Image.fromarray(_picture()).resize((32, 32)).save(thumbnail, "JPEG")
    return bytes(
        piexif.dump(
            {
                "0th": {piexif.ImageIFD.Make: b"PhoneCo", piexif.ImageIFD.Orientation: 1},
                "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN-1"},
                "GPS": {
                    piexif.GPSIFD.GPSLatitudeRef: b"N",
                    piexif.GPSIFD.GPSLatitude: ((52, 1), (31, 1), (12, 1)),
                },
                "1st": {piexif.ImageIFD.Compression: 6},
                "thumbnail": thumbnail.getvalue(),
            }
        )
    )


def seeds(folder: Path) -> dict[str, bytes]:
    """One small, valid file per format, as bytes (written under `folder`
    on the way, since the encoders want paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = _picture()
    made: dict[str, bytes] = {}
    for suffix, fmt in PHOTO_FORMATS.items():
        buffer = io.BytesIO()
        extra: dict[str, object] = {"exif": _exif()} if fmt == "JPEG" else {}
        Image.fromarray(picture).save(buffer, fmt, **extra)
        made[suffix] = buffer.getvalue()
    for suffix, (codec, sound) in VIDEO_CODECS.items():
        path = folder / f"seed.{suffix}"
        _write_clip(path, picture, codec, sound)
        made[suffix] = path.read_bytes()
    return made


def _write_clip(path: Path, picture: npt.NDArray[np.uint8], codec: str, sound: str) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=10)
        video.width, video.height = SIDE, SIDE
        video.pix_fmt = "yuv420p"
        audio = out.add_stream(sound, rate=48000)
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(np.roll(picture, 4 * index, axis=1), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, 10)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = np.zeros((1, 48000 * FRAMES // 10), np.float32)
        chunk = audio.codec_context.frame_size or 1024
        for start in range(0, samples.shape[1] - chunk + 1, chunk):
            piece = av.AudioFrame.from_ndarray(
                samples[:, start : start + chunk], format="fltp", layout="mono"
            )
            piece.sample_rate = 48000
            piece.pts = start
            out.mux(audio.encode(piece))
        out.mux(audio.encode(None))


# Markers after which a size or count is stored, per container: writing a
# huge number there is how a crafted file lies about its dimensions.
_SIZE_MARKERS = (
    b"IHDR", b"\xff\xc0", b"\xff\xc2", b"VP8X", b"VP8 ", b"VP8L", b"ispe", b"tkhd", b"stsz", b"stco",
    b"mvhd", b"mdhd", b"stts", b"hvcC", b"avcC", b"\xb0\x81", b"\xba\x81", b"\x1aE\xdf\xa3", b"\x18S\x80g",
    b"\x01\x00",
)  # fmt: skip
_HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 0xFFFF, 0x8000, 0, 1)


def _flip_bits(data: bytearray, rng: random.Random) -> str:
    count = rng.choice((1, 2, 4, 8, 32))
    for _ in range(count):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"{count} bit flips"


def _truncate(data: bytearray, rng: random.Random) -> str:
    keep = rng.randrange(1, len(data))
    del data[keep:]
    return f"truncated to {keep}"


def _duplicate_run(data: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(data))
    run = data[start : start + rng.randrange(1, 4096)]
    at = rng.randrange(len(data))
    data[at:at] = run
    return f"{len(run)} bytes duplicated at {at}"


def _zero_run(data: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randrange(1, 2048))
    data[start:end] = bytes(end - start)
    return f"zeroed {start}:{end}"


def _huge_size(data: bytearray, rng: random.Random) -> str:
    found = [(m, i) for m in _SIZE_MARKERS for i in _all(bytes(data), m)]
    if not found:
        return _flip_bits(data, rng)
    marker, at = rng.choice(found)
    offset = at + len(marker) + rng.choice((0, 0, 1, 2, 3, 4, 8, 12, 16, 20, 76, 80))
    value = rng.choice(_HUGE)
    width = rng.choice((2, 4))
    packed = struct.pack(">I", value)[-width:] if width == 4 or value <= 0xFFFF else b"\xff\xff"
    data[offset : offset + len(packed)] = packed
    return f"{value:#x} written {offset - at - len(marker)} bytes after {marker!r}"


def _splice_garbage(data: bytearray, rng: random.Random) -> str:
    at = rng.randrange(len(data))
    garbage = rng.randbytes(rng.randrange(1, 512))
    if rng.random() < 0.5:
        data[at : at + len(garbage)] = garbage
        return f"{len(garbage)} random bytes over {at}"
    data[at:at] = garbage
    return f"{len(garbage)} random bytes inserted at {at}"


def _all(data: bytes, marker: bytes) -> list[int]:
    found, at = [], data.find(marker)
    while at >= 0 and len(found) < 64:
        found.append(at)
        at = data.find(marker, at + 1)
    return found


MUTATIONS: dict[str, Callable[[bytearray, random.Random], str]] = {
    "bit flips": _flip_bits,
    "truncation": _truncate,
    "duplicated run": _duplicate_run,
    "zeroed run": _zero_run,
    "huge size": _huge_size,
    "spliced garbage": _splice_garbage,
}


def mutated(seed: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The seed with one to three mutations, and what they were."""
    data = bytearray(seed)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name = rng.choice(tuple(MUTATIONS))
        done.append(MUTATIONS[name](data, rng))
    return bytes(data), "; ".join(done)


@dataclass
class Campaign:
    """What a campaign found: outcomes per format, and every finding."""

    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    inputs: int = 0

    def count(self, fmt: str, outcome: str) -> None:
        self.outcomes.setdefault(fmt, Counter())[outcome] += 1

    def table(self) -> str:
        kinds = sorted({k for c in self.outcomes.values() for k in c})
        rows = ["| format | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
        for fmt, counts in sorted(self.outcomes.items()):
            rows.append(f"| {fmt} | " + " | ".join(str(counts[k]) for k in kinds) + " |")
        return "\n".join(rows)


def run_batch(root: Path, inputs: dict[str, tuple[bytes, str]], campaign: Campaign, timeout: float) -> None:
    """Write `inputs` (name -> (bytes, how made)) under root/in, anonymize
    them as one batch in a fresh process, and classify each outcome."""
    folder, out = root / "in", root / "out"
    folder.mkdir(parents=True)
    for name, (data, _) in inputs.items():
        (folder / name).write_bytes(data)
    before = {name: hashlib.sha256(data).hexdigest() for name, (data, _) in inputs.items()}
    report_file = root / "report.json"
    command = [sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q"]
    command += ["--report", str(report_file)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        campaign.findings.append(f"{root.name}: the batch hung past {timeout:.0f} s")
        return
    campaign.inputs += len(inputs)
    if done.returncode < 0 or done.returncode not in (0, 1):
        campaign.findings.append(
            f"{root.name}: veil ended with status {done.returncode}: {done.stderr[-500:]}"
        )
    if "Traceback" in done.stderr:
        campaign.findings.append(f"{root.name}: a traceback: {done.stderr[-2000:]}")
    try:
        report = json.loads(report_file.read_text())
    except (OSError, ValueError) as e:
        campaign.findings.append(f"{root.name}: no report ({e}): {done.stderr[-500:]}")
        return
    files = {Path(entry["input"]).name: entry for entry in report["files"]}
    stray = _stray_lines(done.stderr, report["files"])
    campaign.findings.extend(f"{root.name}: {problem}" for problem in stray)
    for name, (_, how) in inputs.items():
        fmt = name.rsplit(".", 1)[1]
        entry = files.get(name)
        if entry is None:
            campaign.findings.append(f"{name} ({how}): not in the report")
            continue
        outcome, problem = _classify(entry, out / name)
        campaign.count(fmt, outcome)
        if problem:
            campaign.findings.append(f"{name} ({how}): {problem}")
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != before[name]:
            campaign.findings.append(f"{name} ({how}): the input was changed")
    left = [p.name for p in out.rglob(".veil-*.part*")] if out.exists() else []
    if left:
        campaign.findings.append(f"{root.name}: temporary files left: {left}")


def _classify(entry: dict[str, object], output: Path) -> tuple[str, str]:
    """The outcome of one file, and a finding (empty when the outcome is allowed)."""
    status, error = entry["status"], str(entry.get("error") or "")
    if status == "failed":
        if output.exists() or Path(f"{output}.plan.json").exists():
            return "refused", f"failed ({error}) but left {output.name}"
        if "\n" in error or not error:
            return "refused", f"refused without one clear line: {error!r}"
        if error.startswith("internal error") or "internal error" in error:
            return "internal error", error
        return "refused", ""
    if not output.exists():
        return "no output", f"status {status} but no output file"
    verification = entry.get("verification")
    if not isinstance(verification, dict):
        return "unverified", "an output without verification"
    return ("verified" if verification.get("passed") else "kept, failed verification"), ""


def _stray_lines(said: str, files: list[dict[str, object]]) -> list[str]:
    """What `veil anonymize -q` printed beyond its own lines: one `error:`
    line for each file refused, a `FAIL` line with its indented findings for
    each kept and failed, and veil's warnings. A library's warning, a
    decoder's complaint or a refusal that took two lines is a finding."""
    refused = Counter(f"error: {entry['input']}: " for entry in files if entry["status"] == "failed")
    problems = []
    findings_may_follow = False
    for line in said.splitlines():
        prefix = next((p for p in refused if line.startswith(p)), None)
        if prefix is not None and refused[prefix] > 0:
            refused[prefix] -= 1
            findings_may_follow = False
        elif line.startswith("FAIL ") or line.startswith("warning: "):
            findings_may_follow = line.startswith("FAIL ")
        elif not (findings_may_follow and line.startswith("  ")):
            problems.append(f"a line that is not veil's on stderr: {line[:300]!r}")
    problems.extend(f"refused without its line: {prefix}" for prefix, left in refused.items() if left)
    return problems


def campaign(
    root: Path, count: int, seed: int, batch: int = 60, formats: tuple[str, ...] = FORMATS
) -> Campaign:
    """`count` mutated inputs, spread evenly over `formats`, in batches."""
    rng = random.Random(seed)
    made = seeds(root / "seeds")
    result = Campaign()
    names = [f"{index:05d}.{formats[index % len(formats)]}" for index in range(count)]
    for start in range(0, count, batch):
        inputs = {name: mutated(made[name.rsplit(".", 1)[1]], rng) for name in names[start : start + batch]}
        videos = sum(name.rsplit(".", 1)[1] in VIDEO_CODECS for name in inputs)
        run_batch(root / f"batch-{start:05d}", inputs, result, timeout=120 + 4 * len(inputs) + 10 * videos)
    return result
