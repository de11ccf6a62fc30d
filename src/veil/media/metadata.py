"""Name the metadata a photo carries, so the report can say what was removed.

veil never copies metadata: outputs are rebuilt from pixels. This module only
lists what the input had (tag names, never values), for the report.
"""

from __future__ import annotations

from PIL import ExifTags, Image, TiffTags

# TIFF tags that describe the pixel layout rather than the picture's origin.
_TIFF_STRUCTURE = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 282, 283,
    284, 290, 291, 296, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341,
    530, 531, 532,
}  # fmt: skip

# Keys of Image.info that carry identifying or descriptive data, by name.
_INFO_KEYS = {
    "xmp": "XMP",
    "XML:com.adobe.xmp": "XMP",
    "photoshop": "Photoshop/IPTC (APP13)",
    "iptc": "IPTC",
    "comment": "comment",
    "icc_profile": "ICC profile",
    "thumbnails": "HEIF thumbnails",
    "depth_images": "HEIF depth images",
    "aux": "HEIF auxiliary images",
}

_SUB_IFDS = {
    ExifTags.IFD.Exif: "Exif",
    ExifTags.IFD.GPSInfo: "GPS",
    ExifTags.IFD.Interop: "Interop",
}


def metadata_names(image: Image.Image) -> list[str]:
    """Sorted names of the metadata found in an opened (not yet decoded) image."""
    names: set[str] = set()
    names.update(_exif_names(image))
    for key, name in _INFO_KEYS.items():
        if image.info.get(key):
            names.add(name)
    if isinstance(image, Image.Image) and image.format == "PNG":
        names.update(f"PNG text:{key}" for key in getattr(image, "text", {}) or {})
    if image.format == "TIFF":
        names.update(_tiff_names(image))
    return sorted(names)


def _exif_names(image: Image.Image) -> set[str]:
    names: set[str] = set()
    try:
        exif = image.getexif()
    except Exception:  # a damaged EXIF block is still a block that was removed
        return {"EXIF (unparseable)"} if image.info.get("exif") else set()
    if not exif and image.info.get("exif"):
        names.add("EXIF")
    base_is_tiff = image.format == "TIFF"
    for tag in exif:
        if base_is_tiff and tag in _TIFF_STRUCTURE:
            continue
        if tag in (0x8769, 0x8825, 0xA005):  # pointers to the sub-IFDs read below
            continue
        names.add(f"EXIF:{ExifTags.TAGS.get(tag, hex(tag))}")
    for ifd, prefix in _SUB_IFDS.items():
        try:
            entries = exif.get_ifd(ifd)
        except Exception:
            names.add(f"{prefix} (unparseable)")
            continue
        lookup = ExifTags.GPSTAGS if ifd == ExifTags.IFD.GPSInfo else ExifTags.TAGS
        names.update(f"{prefix}:{lookup.get(tag, hex(tag))}" for tag in entries)
    try:
        if exif.get_ifd(ExifTags.IFD.IFD1):
            names.add("EXIF thumbnail")
    except Exception:
        names.add("EXIF thumbnail (unparseable)")
    return names


def _tiff_names(image: Image.Image) -> set[str]:
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return set()
    return {
        f"TIFF:{TiffTags.lookup(tag).name}"
        for tag in tags
        if tag not in _TIFF_STRUCTURE and tag not in (0x8769, 0x8825)
    }
