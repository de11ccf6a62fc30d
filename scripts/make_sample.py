"""Regenerate samples/astronaut-phone.jpg: scikit-image's public-domain astronaut
photo, stored sideways as a phone would (EXIF orientation 6), with GPS, a camera
serial number and an embedded thumbnail: everything veil must remove.

    python scripts/make_sample.py
"""

import io
from pathlib import Path

import numpy as np
import piexif
import skimage.data
from PIL import Image

upright = Image.fromarray(skimage.data.astronaut())
thumb = io.BytesIO()
upright.resize((120, 120)).save(thumb, "JPEG", quality=80)
exif = piexif.dump(
    {
        "0th": {
            piexif.ImageIFD.Make: b"ExamplePhone",
            piexif.ImageIFD.Model: b"Sample 1",
            piexif.ImageIFD.Orientation: 6,
            piexif.ImageIFD.DateTime: b"2026:03:01 12:00:00",
        },
        "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN-0000001"},
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((52, 1), (31, 1), (0, 1)),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((13, 1), (24, 1), (0, 1)),
        },
        "1st": {piexif.ImageIFD.Compression: 6},
        "thumbnail": thumb.getvalue(),
    }
)
sideways = Image.fromarray(np.rot90(np.asarray(upright), k=1))  # orientation 6 turns it back
sideways.save(Path(__file__).parents[1] / "samples" / "astronaut-phone.jpg", "JPEG", quality=88, exif=exif)
