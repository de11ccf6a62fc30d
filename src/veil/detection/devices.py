"""Choose where the detectors run, and build them there.

The CPU path needs nothing beyond veil's own dependencies; `veil.detection.gpu` and
PyTorch are imported only when a GPU is asked for, or found under AUTO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from veil.detection.choose import ChoosingDetector
from veil.detection.detect import CenterFaceDetector, Detector
from veil.detection.retinaface import RetinaFaceDetector
from veil.errors import DeviceUnavailableError
from veil.options import AnonymizeOptions, DetectionOptions, Device

if TYPE_CHECKING:
    from veil.detection.gpu import TorchRetinaFace


def resolve(device: Device) -> Device:
    """AUTO made definite; CUDA checked."""
    if device is Device.CPU:
        return device
    from veil.detection.gpu import cuda_available

    if cuda_available():
        return Device.CUDA
    if device is Device.CUDA:
        raise DeviceUnavailableError(
            "no CUDA GPU that veil can use (pip install 'veil[gpu]': PyTorch with CUDA)"
        )
    return Device.CPU


def face_detector(options: AnonymizeOptions) -> ChoosingDetector:
    """What anonymizing uses: CenterFace's search, then the choice of what to mask."""
    return ChoosingDetector(centerface(options.detection, options.device), options.choice)


def centerface(options: DetectionOptions, device: Device) -> Detector:
    if resolve(device) is Device.CUDA:
        from veil.detection.gpu import TorchCenterFace

        return TorchCenterFace(options)
    return CenterFaceDetector(options)


def retinaface(threshold: float, device: Device) -> RetinaFaceDetector | TorchRetinaFace:
    if resolve(device) is Device.CUDA:
        from veil.detection.gpu import TorchRetinaFace

        return TorchRetinaFace(threshold)
    return RetinaFaceDetector(threshold)
