"""Read photos into upright sRGB pixels, and write new files built from pixels.

Reading applies the EXIF orientation (phones store pixels sideways), converts
colour to sRGB and refuses anything veil cannot decode completely. Writing
builds a fresh file from the array alone, so no metadata can survive, and
lands it atomically (see files.py).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pillow_heif
import simplejpeg
from PIL import Image, ImageCms, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError

from veil.errors import (
    CorruptInputError,
    ImageTooLargeError,
    OutputError,
    UnreadableInputError,
    UnsupportedFormatError,
)
from veil.media.files import check_input_file, publish_bytes
from veil.media.isolate import Beat, isolated
from veil.media.metadata import metadata_names
from veil.options import InputLimits

pillow_heif.register_heif_opener()
pillow_heif.options.DISABLE_SECURITY_LIMITS = False  # libheif's own caps on sizes and counts stay on
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow format name -> the formats veil reads and writes.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF")
PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".hif"}
)

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_SRGB = ImageCms.createProfile("sRGB")

# IJG's standard luminance quantisation table (JPEG spec, Annex K), for
# estimating the quality an input was saved at.
_IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)  # fmt: skip


@dataclass(frozen=True)
class Encoding:
    """How to write an output so it stays close to its input."""

    format: str
    quality: int = 92
    lossless: bool = False
    subsampling: int = -1
    tiff_compression: str = "tiff_adobe_deflate"
    grayscale: bool = False


@dataclass(frozen=True)
class DecodedImage:
    """An input photo, upright, as 8-bit sRGB pixels."""

    pixels: npt.NDArray[np.uint8]  # HxWx3 RGB
    alpha: npt.NDArray[np.uint8] | None  # HxW, or None when opaque
    encoding: Encoding
    metadata: list[str]
    orientation: int  # the EXIF orientation that was applied (1 = none)


def read_image(path: Path, limits: InputLimits | None = None) -> DecodedImage:
    """Decode a photo completely, or raise an InputError saying why not.
    With `limits.isolate` (the default) it is decoded in a child process
    under the limits' time and memory ceilings (`veil.media.isolate`)."""
    limits = limits or InputLimits()
    check_input_file(path, limits.max_file_bytes)
    if limits.isolate:
        return isolated(_read_in_child, path, limits, limits=limits)
    return _read(path, limits)


def _read_in_child(path: Path, limits: InputLimits, beat: Beat) -> DecodedImage:
    return _read(path, limits)


def _read(path: Path, limits: InputLimits) -> DecodedImage:
    try:
        data = path.read_bytes()
        with warnings.catch_warnings():
            # Pillow's warnings about damaged data are not for the terminal: a
            # file decodes completely or is refused with one line. It warns of
            # bombs from 89 MP and refuses from twice that; the warning is
            # veil's limit too, unless a caller raised it.
            warnings.simplefilter("ignore")
            if limits.max_pixels <= (Image.MAX_IMAGE_PIXELS or 0):
                warnings.simplefilter("error", Image.DecompressionBombWarning)
            else:
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
                decoded = _decode(image, limits)
        if decoded.encoding.format == "JPEG":
            _check_jpeg_stream(data)
        return decoded
    except UnidentifiedImageError as e:
        raise UnsupportedFormatError("not a photo veil can read (JPEG, PNG, WebP, TIFF, HEIC/HEIF)") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(
            f"image too large: it declares more than {limits.max_pixels} pixels "
            "(a possible decompression bomb)"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
            raise UnreadableInputError(f"cannot read file: {e.strerror or e}") from e
        raise CorruptInputError(f"damaged or truncated image data: {e}") from e
    except MemoryError as e:
        raise ImageTooLargeError("not enough memory to decode this image") from e
    except (AssertionError, TypeError, IndexError, KeyError, struct.error) as e:
        # Pillow's plugins fail so on some damaged files (found by benchmarks/fuzz.py:
        # a PNG whose text chunks are cut, a TIFF whose second page has no size).
        raise CorruptInputError(f"damaged image data ({type(e).__name__}: {e})".replace(": )", ")")) from e


def _check_jpeg_stream(data: bytes) -> None:
    """libjpeg repairs damaged scans silently (grey blocks, smeared rows);
    Pillow does not say so. Decode once more, strictly, to refuse them."""
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True, min_factor=8)
    except ValueError as e:
        if "colorspace" in str(e).lower() or "color space" in str(e).lower():
            return  # CMYK/YCCK scans cannot be read as grey; Pillow decoded them
        raise CorruptInputError(f"damaged JPEG data: {e}") from e


def _decode(image: Image.Image, limits: InputLimits) -> DecodedImage:
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels, more than the limit of {limits.max_pixels}"
        )
    if getattr(image, "n_frames", 1) > 1:
        raise UnsupportedFormatError(
            f"{image.format} with {getattr(image, 'n_frames', 1)} frames or pages; "
            "veil anonymizes single images only"
        )
    encoding = _encoding_of(image)
    metadata = metadata_names(image)
    orientation = _orientation(image)
    image.load()
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    pixels, alpha = _to_srgb(upright)
    return DecodedImage(pixels, alpha, encoding, metadata, orientation)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_srgb(image: Image.Image) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8] | None]:
    """8-bit RGB pixels in sRGB, and the alpha channel if there is one."""
    if image.mode.startswith("I;16") or image.mode == "I":
        wide = np.asarray(image, dtype=np.uint32)
        shift = 8 if image.mode.startswith("I;16") else 24
        gray = (wide >> shift).astype(np.uint8) if shift == 8 else np.clip(wide, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    has_alpha = image.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    alpha = np.asarray(image.convert("RGBA"))[:, :, 3].copy() if has_alpha else None
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        base = image.convert("RGB") if image.mode == "RGBA" else image
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(base, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            rgb = None  # an unusable profile: plain conversion below
        if rgb is not None:
            return np.asarray(rgb, dtype=np.uint8).copy(), alpha
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), alpha


def _encoding_of(image: Image.Image) -> Encoding:
    fmt = image.format or "PNG"
    grayscale = image.mode in _GRAY_MODES
    if fmt == "JPEG" and isinstance(image, JpegImagePlugin.JpegImageFile):
        return Encoding(
            fmt,
            quality=_jpeg_quality(image),
            subsampling=JpegImagePlugin.get_sampling(image),
            grayscale=grayscale,
        )
    if fmt == "WEBP":
        return Encoding(fmt, quality=90, lossless=_webp_is_lossless(image), grayscale=grayscale)
    if fmt == "TIFF":
        jpeg = image.info.get("compression") == "jpeg"
        return Encoding(fmt, tiff_compression="jpeg" if jpeg else "tiff_adobe_deflate", grayscale=grayscale)
    if fmt == "HEIF":
        # libheif quality 60 with x265's ultrafast preset: on phone HEICs, about
        # the input's size at 43-46 dB PSNR, in a tenth of the time of quality 90.
        return Encoding(fmt, quality=60, grayscale=grayscale)
    return Encoding(fmt, lossless=True, grayscale=grayscale)


def _jpeg_quality(image: JpegImagePlugin.JpegImageFile) -> int:
    """The IJG quality whose luminance table is closest to the input's, kept
    within 70..95. The input's own tables are not reused: they can name the
    camera that made the file."""
    tables = getattr(image, "quantization", None) or {}
    if 0 not in tables:
        return 92
    mean = float(np.mean(np.asarray(tables[0], dtype=np.float64)))
    scale = 100.0 * mean / float(np.mean(_IJG_LUMINANCE))
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 70, 95))


def _webp_is_lossless(image: Image.Image) -> bool:
    fp = getattr(image, "fp", None)
    if fp is None:
        return False
    position = fp.tell()
    try:
        fp.seek(0)
        header = fp.read(1 << 16)
    finally:
        fp.seek(position)
    return b"VP8L" in header and b"VP8 " not in header


def write_image(
    path: Path,
    pixels: npt.NDArray[np.uint8],
    alpha: npt.NDArray[np.uint8] | None,
    encoding: Encoding,
) -> None:
    """Write a new file from pixels alone; never replaces an existing file."""
    image = _image_from_pixels(pixels, alpha, encoding)
    data = _encode(image, encoding)
    publish_bytes(path, data)


def _image_from_pixels(
    pixels: npt.NDArray[np.uint8], alpha: npt.NDArray[np.uint8] | None, encoding: Encoding
) -> Image.Image:
    image = Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")
    if encoding.grayscale:
        image = image.convert("L")
    if alpha is not None and encoding.format != "JPEG":
        image = image.convert("LA" if encoding.grayscale else "RGBA")
        image.putalpha(Image.fromarray(np.ascontiguousarray(alpha), mode="L"))
    return image


def _encode(image: Image.Image, encoding: Encoding) -> bytes:
    buffer = io.BytesIO()
    fmt = encoding.format
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=encoding.quality, subsampling=encoding.subsampling, optimize=True)
    elif fmt == "PNG":
        image.save(buffer, "PNG", compress_level=6)
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", quality=encoding.quality, lossless=encoding.lossless, method=4)
    elif fmt == "TIFF":
        if encoding.tiff_compression == "jpeg" and image.mode not in ("RGB", "L"):
            image.save(buffer, "TIFF", compression="tiff_adobe_deflate")
        else:
            image.save(buffer, "TIFF", compression=encoding.tiff_compression)
    elif fmt == "HEIF":
        image.save(buffer, "HEIF", quality=encoding.quality, enc_params={"preset": "ultrafast"})
    else:
        raise OutputError(f"cannot write format {fmt}")
    return buffer.getvalue()
