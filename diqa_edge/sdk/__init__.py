"""The reference of what the phone does: decode, preprocess, run the exported model, decide.

Imports neither torch nor tensorflow (a test holds it to that): a phone-side
user installs ``diqa-edge[sdk]`` and gets numpy, Pillow and one runtime.
"""

from ..contract import Contract
from ..errors import DiqaError, ImageDecodeError, ModelLoadError, RuntimeUnavailableError
from .decode import decode_image
from .manifest import ModelManifest, read_sidecar, write_sidecar
from .preprocess import preprocess, preprocess_rgb, resize_and_crop
from .runtimes import load_runtime
from .scorer import QualityScorer, ScoreResult

__all__ = [
    "Contract", "DiqaError", "ImageDecodeError", "ModelLoadError", "RuntimeUnavailableError",
    "decode_image", "ModelManifest", "read_sidecar", "write_sidecar", "preprocess",
    "preprocess_rgb", "resize_and_crop", "load_runtime", "QualityScorer", "ScoreResult",
]
