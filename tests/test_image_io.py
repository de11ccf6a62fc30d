"""Reading and writing each photo format: same format out, upright, sRGB, no metadata."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pillow_heif
import pytest
from PIL import Image, ImageCms

from veil import OutputExistsError, UnsupportedFormatError, anonymize_file
from veil.media.files import publish_bytes
from veil.media.image import Encoding, read_image, write_image
from veil.media.metadata import metadata_names

from conftest import XMP, identifying_exif

pillow_heif.register_heif_opener()


@pytest.mark.parametrize(
    ("name", "fmt", "save"),
    [
        ("a.jpg", "JPEG", {"quality": 85}),
        ("a.png", "PNG", {}),
        ("a.webp", "WEBP", {"quality": 80}),
        ("a.tiff", "TIFF", {"compression": "tiff_lzw", "tiffinfo": {271: "PhoneCo", 315: "Jane Witness"}}),
        ("a.heic", "HEIF", {"quality": 80}),
    ],
)
def test_each_format_round_trips_masked_and_clean(
    name: str, fmt: str, save: dict[str, object], make_photo: Callable[..., Path], tmp_path: Path
) -> None:
    tags = {} if fmt == "TIFF" else {"exif": identifying_exif(), "xmp": XMP}
    source = make_photo(name, fmt, **tags, **save)
    found = metadata_names(Image.open(source))
    assert "GPS:GPSLatitude" in found or "TIFF:Make" in found, found
    target = tmp_path / "out" / name
    report = anonymize_file(source, target)
    assert report.status.value == "anonymized", report.error
    assert len(report.faces) == 1
    with Image.open(target) as image:
        assert image.format == fmt
        assert image.size == (512, 512)
        assert metadata_names(image) == []
        assert not image.info.get("exif") and not image.info.get("xmp")


def test_png_alpha_is_kept_and_masks_are_opaque(astronaut: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 40, np.uint8)])
    source = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(source)
    target = tmp_path / "out.png"
    assert anonymize_file(source, target).status.value == "anonymized"
    with Image.open(target) as image:
        assert image.mode == "RGBA"
        alpha = np.asarray(image)[:, :, 3]
    assert alpha[110, 225] == 255  # inside the face mask
    assert alpha[500, 10] == 40  # untouched background


def test_grayscale_stays_grayscale(astronaut: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    source = tmp_path / "gray.jpg"
    Image.fromarray(astronaut).convert("L").save(source, quality=90)
    target = tmp_path / "out.jpg"
    assert anonymize_file(source, target).status.value == "anonymized"
    with Image.open(target) as image:
        assert image.mode == "L"


def test_colour_profile_is_converted_to_srgb_not_carried(
    astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "icc.jpg"
    Image.fromarray(astronaut).save(source, quality=95, icc_profile=profile)
    decoded = read_image(source)
    assert "ICC profile" in decoded.metadata
    target = tmp_path / "out.jpg"
    write_image(target, decoded.pixels, decoded.alpha, decoded.encoding)
    with Image.open(target) as image:
        assert "icc_profile" not in image.info


def test_jpeg_quality_is_estimated_from_the_input(astronaut: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    for quality in (75, 90):
        path = tmp_path / f"q{quality}.jpg"
        Image.fromarray(astronaut).save(path, quality=quality)
        assert abs(read_image(path).encoding.quality - quality) <= 2


def test_multi_page_tiff_is_refused(astronaut: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    path = tmp_path / "pages.tiff"
    first = Image.fromarray(astronaut)
    first.save(path, save_all=True, append_images=[first.copy()])
    with pytest.raises(UnsupportedFormatError, match="frames or pages"):
        read_image(path)


def test_publish_refuses_existing_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    publish_bytes(target, b"one")
    with pytest.raises(OutputExistsError):
        publish_bytes(target, b"two")
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_written_image_comes_from_pixels_only(tmp_path: Path) -> None:
    pixels = np.zeros((8, 8, 3), np.uint8)
    target = tmp_path / "x.jpg"
    write_image(target, pixels, None, Encoding("JPEG", quality=90))
    with Image.open(io.BytesIO(target.read_bytes())) as image:
        assert metadata_names(image) == []
