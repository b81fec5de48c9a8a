"""The reference of what the phone does: decode, preprocess, run the exported model, decide.

Imports neither torch nor tensorflow (a test holds it to that): a phone-side
user installs ``diqa-edge[sdk]`` and gets numpy, Pillow and one runtime.

What an app needs is importable from here: the scorer and its options (one value to keep in a
configuration, after MediaPipe Tasks' ``create_from_options``), its typed result, every error its calls
raise, the retake rule and the preview gate (for a live camera), the hint table (to translate), and the
look at 1:1. For example::

    from diqa_edge.sdk import QualityScorer, ScorerOptions, ImageDecodeError
    scorer = QualityScorer.create_from_options(ScorerOptions(threads=2))
    result = scorer.score("photo.jpg")      # result.decision: "accept" / "retake", result.hint
"""

from ..contract import Contract
from ..errors import DiqaError, ImageDecodeError, ModelLoadError, RuntimeUnavailableError, UsageError
from .decision import RetakeRule
from .decode import decode_image
from .detail import DetailRule, DetailStats, measure_detail
from .frames import PreviewGate
from .hints import GENERIC, HINTS, INPUT_HINTS, Hint
from .manifest import ModelManifest, read_sidecar, write_sidecar
from .preprocess import preprocess, preprocess_rgb, resize_and_crop
from .runtimes import load_runtime
from .scorer import QualityScorer, ScoreResult, ScorerOptions

__all__ = [
    "Contract", "DiqaError", "ImageDecodeError", "ModelLoadError", "RuntimeUnavailableError", "UsageError",
    "decode_image", "ModelManifest", "read_sidecar", "write_sidecar", "preprocess",
    "preprocess_rgb", "resize_and_crop", "load_runtime", "QualityScorer", "ScoreResult", "ScorerOptions",
    "RetakeRule", "PreviewGate", "HINTS", "INPUT_HINTS", "GENERIC", "Hint", "DetailRule", "DetailStats",
    "measure_detail",
]
