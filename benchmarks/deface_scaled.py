"""deface 1.5.0 on a folder of photos, each searched at SCALE times its own size.

    python benchmarks/deface_scaled.py SCALE FOLDER

deface's CLI takes one `--scale WxH` for every file, so a folder of photos
of different sizes cannot be searched at twice each one's size through it.
This runs deface's own image path (`deface.deface.image_detect`, its
defaults: threshold 0.2, blur, mask scale 1.3, ellipses, the OpenCV
backend as `pip install deface` runs it) with CenterFace's input set to
SCALE times each photo's size, and writes NAME_anonymized.EXT beside each
photo as the CLI does. Timed from outside by benchmarks/speed.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deface.centerface import CenterFace
from deface.deface import image_detect
from PIL import Image


def main() -> int:
    scale, folder = float(sys.argv[1]), Path(sys.argv[2])
    centerface = CenterFace(in_shape=None, backend="opencv")
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        with Image.open(path) as image:
            width, height = image.size
        centerface.in_shape = (round(width * scale), round(height * scale))
        image_detect(
            ipath=str(path),
            opath=str(path.with_name(f"{path.stem}_anonymized{path.suffix}")),
            centerface=centerface,
            threshold=0.2,
            replacewith="blur",
            mask_scale=1.3,
            ellipse=True,
            draw_scores=False,
            enable_preview=False,
            keep_metadata=False,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
