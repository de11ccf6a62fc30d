"""veil: hide every face in photos and videos, irreversibly, and strip identifying metadata."""

from veil.batch.run import anonymize_paths
from veil.detection.choose import Choice, ChoosingDetector, Reason
from veil.detection.detect import CenterFaceDetector, Detector
from veil.detections import Detections
from veil.errors import (
    CorruptInputError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    ModelError,
    OutputError,
    OutputExistsError,
    PlanError,
    UnreadableInputError,
    UnsupportedFormatError,
    VeilError,
)
from veil.options import (
    AnonymizeOptions,
    ChoiceOptions,
    DetectionOptions,
    InputLimits,
    MaskMethod,
    MaskOptions,
    Precision,
    VerifyOptions,
)
from veil.pipeline.anonymizer import Anonymizer, anonymize_file, anonymize_image
from veil.pipeline.output import veil_version as _veil_version
from veil.pipeline.photo import ImageResult
from veil.pipeline.render import render_file
from veil.plan import Decision, Kind, Plan, Region, Shape, load_plan, save_plan
from veil.report import Check, FaceReport, FileReport, FileStatus, Finding, ModelInfo, RunReport, Verification
from veil.verify import Verifier

__version__ = _veil_version()

__all__ = [
    "AnonymizeOptions",
    "Anonymizer",
    "CenterFaceDetector",
    "Check",
    "Choice",
    "ChoiceOptions",
    "ChoosingDetector",
    "CorruptInputError",
    "Decision",
    "DetectionOptions",
    "Detections",
    "Detector",
    "EmptyInputError",
    "FaceReport",
    "FileReport",
    "FileStatus",
    "Finding",
    "ImageResult",
    "ImageTooLargeError",
    "InputError",
    "InputLimits",
    "Kind",
    "MaskMethod",
    "MaskOptions",
    "ModelError",
    "ModelInfo",
    "OutputError",
    "OutputExistsError",
    "Plan",
    "PlanError",
    "Precision",
    "Reason",
    "Region",
    "RunReport",
    "Shape",
    "UnreadableInputError",
    "UnsupportedFormatError",
    "VeilError",
    "Verification",
    "Verifier",
    "VerifyOptions",
    "__version__",
    "anonymize_file",
    "anonymize_image",
    "anonymize_paths",
    "load_plan",
    "render_file",
    "save_plan",
]
