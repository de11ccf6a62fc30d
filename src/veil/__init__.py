"""veil: hide every face in photos and videos, irreversibly, and strip identifying metadata."""

from veil.detect import CenterFaceDetector, Detector
from veil.detections import Detections
from veil.errors import (
    CorruptInputError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    ModelError,
    OutputError,
    OutputExistsError,
    UnreadableInputError,
    UnsupportedFormatError,
    VeilError,
)
from veil.options import AnonymizeOptions, DetectionOptions, ImageLimits, MaskMethod, MaskOptions
from veil.pipeline import ImageResult, anonymize_file, anonymize_image, anonymize_paths
from veil.pipeline import veil_version as _veil_version
from veil.report import FaceReport, FileReport, FileStatus, ModelInfo, RunReport

__version__ = _veil_version()

__all__ = [
    "AnonymizeOptions",
    "CenterFaceDetector",
    "CorruptInputError",
    "DetectionOptions",
    "Detections",
    "Detector",
    "EmptyInputError",
    "FaceReport",
    "FileReport",
    "FileStatus",
    "ImageLimits",
    "ImageResult",
    "ImageTooLargeError",
    "InputError",
    "MaskMethod",
    "MaskOptions",
    "ModelError",
    "ModelInfo",
    "OutputError",
    "OutputExistsError",
    "RunReport",
    "UnreadableInputError",
    "UnsupportedFormatError",
    "VeilError",
    "__version__",
    "anonymize_file",
    "anonymize_image",
    "anonymize_paths",
]
