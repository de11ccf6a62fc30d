"""Regenerate src/veil/weights/centerface_int8.json: the activation ranges that
veil.detection.quantize needs to run CenterFace's finest search pass in int8.

The ranges are measured on the finest pass's own input (the image enlarged
as detection enlarges it, in the same tiles) over photos and video frames of
../shared/data that the benchmarks do not score: identities-dev, exif and
every 15th frame of each clip. widerface-dev, which measures recall, is left
out so that the measurement stays fair.

    .venv/bin/python scripts/calibrate_centerface.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from veil.detection.detect import detection_passes, padded_blob, scaled_tiles
from veil.detection.engine import fitted_graph
from veil.detection.models import CENTERFACE
from veil.detection.quantize import activation_ranges
from veil.options import DetectionOptions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TARGET = Path(__file__).resolve().parents[1] / "src" / "veil" / "weights" / "centerface_int8.json"
FRAME_STEP = 15


def main() -> int:
    if not DATA.is_dir():
        print(f"calibration needs the evaluation data at {DATA}", file=sys.stderr)
        return 1
    images = list(_images())
    ranges = activation_ranges(fitted_graph(CENTERFACE), _finest_blobs(images))
    lines = ",\n".join(
        f"  {json.dumps(name)}: [{low:.6g}, {high:.6g}]" for name, (low, high) in ranges.items()
    )
    header = {
        "model_sha256": CENTERFACE.sha256,
        "measured_on": f"{len(images)} photos and frames from identities-dev, exif and video",
    }
    fields = "".join(f" {json.dumps(key)}: {json.dumps(value)},\n" for key, value in header.items())
    TARGET.write_text("{\n" + fields + ' "ranges": {\n' + lines + "\n }\n}\n")
    print(f"wrote {TARGET} from {len(images)} images")
    return 0


def _images() -> Iterator[npt.NDArray[np.uint8]]:
    for folder in ("identities-dev", "exif"):
        for path in sorted((DATA / folder).rglob("*")):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            try:
                with Image.open(path) as image:
                    yield np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
            except OSError:
                continue  # the exif folder's deliberately corrupt file
    for clip in sorted((DATA / "video").glob("*.mp4")):
        with av.open(str(clip)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % FRAME_STEP == 0:
                    yield frame.to_ndarray(format="rgb24")


def _finest_blobs(images: list[npt.NDArray[np.uint8]]) -> Iterator[npt.NDArray[np.float32]]:
    options = DetectionOptions()
    for image in images:
        passes = detection_passes(image.shape[1], image.shape[0], options)
        finest = next((p for p in passes if p.finest), None)
        if finest is not None:
            for _x, _y, tile in scaled_tiles(image, finest.scale, options):
                yield padded_blob(tile)


if __name__ == "__main__":
    sys.exit(main())
