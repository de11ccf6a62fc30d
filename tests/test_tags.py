"""The verifier's own metadata parser: it finds what cameras and phones leave,
and nothing identifying in what veil writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, PngImagePlugin

from veil import anonymize_file
from veil.media.tags import file_tags

from videos import make_clip


def identifying(path: Path) -> set[str]:
    return {tag.name for tag in file_tags(path) if tag.identifying}


def test_jpeg_exif_xmp_iptc_and_comment_are_found(tagged_jpeg: Path) -> None:
    found = identifying(tagged_jpeg)
    assert {"JPEG APP1 Exif", "JPEG APP13 Photoshop 3.", "JPEG comment"} <= found
    assert "XMP packet (found in the bytes)" in found


def test_png_text_and_exif_chunks_are_found(tmp_path: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Witness")
    path = tmp_path / "a.png"
    Image.fromarray(astronaut).save(path, pnginfo=info, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00")
    assert {"PNG tEXt Author", "PNG eXIf"} <= identifying(path)


def test_exif_hidden_after_the_end_of_a_jpeg_is_found(tmp_path: Path, tagged_jpeg: Path) -> None:
    clean = tmp_path / "clean.jpg"
    anonymize_file(tagged_jpeg, clean)
    assert identifying(clean) == set()
    clean.write_bytes(clean.read_bytes() + b"Exif\x00\x00MM\x00*")
    assert identifying(clean) == {"data after the end of the JPEG image", "EXIF block (found in the bytes)"}


def test_video_location_title_and_dates_are_found_and_gone_after_veil(
    tmp_path: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    tags = {"location": "+52.5200+013.4050/", "title": "Jane at the march"}
    for suffix in (".mp4", ".mov", ".mkv"):
        clip = make_clip(tmp_path / f"in{suffix}", astronaut, frames=3, tags=tags | {"creation_time": "2026"})
        assert identifying(clip.path), suffix
        output = tmp_path / f"out{suffix}"
        anonymize_file(clip.path, output)
        assert identifying(output) == set(), suffix
