"""The pooled statistics a phone file computes, read from the file itself, as features to fit on.

Why: the phone file runs the trunk in int8 (``export/int8_trunk.py``), and its heads read the
statistics that int8 trunk computes. Heads and rule fitted on the float trunk's statistics misread
them where a fault is faint: the same run and rule sent back 0.57 of motion blur level 4 on the
held-out phone photos through the int8 file against 0.73 through an fp32 file, and 0.89 of focus on
the background level 5 against 0.95 (benchmarks/RESULTS.md). Fitted on what the file computes, heads
and rule read the numbers the phone will give them. The trunk's int8 form depends only on the backbone
and the export's calibration images (its heads stay float and never enter the quantiser's ranges), so a
run fitted on one int8-trunk file's statistics and exported again gets the same trunk:
``models.file_trunk.trunk_digest`` proves it, and the export refuses a file whose trunk differs.

How: the heads read one tensor, the concatenated means and standard deviations of every stage (the
output of the graph's one CONCATENATION of width F, where F is the number of statistics);
LiteRT keeps intermediate tensors readable when asked (``experimental_preserve_all_tensors``), so the
statistics come from the very file the phone runs, through the SDK's own preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cachedir import cache_root
from ..errors import DiqaError
from ..models.file_trunk import file_features_key, statistics_tensor
from .feature_cache import FeatureCache, fill_cache


class FileStatistics:
    """One file's statistics of an image: the compute ``feature_cache.fill_cache`` asks for."""

    def __init__(self, model: Path, n_features: int, threads: int = 2):
        import warnings

        from ai_edge_litert.interpreter import Interpreter

        with warnings.catch_warnings():     # "for debugging only": reading one intermediate tensor is the point
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
            self.interpreter = Interpreter(model_path=str(model), num_threads=threads,
                                           experimental_preserve_all_tensors=True)
        self.interpreter.allocate_tensors()
        self.tensor = statistics_tensor(self.interpreter, n_features)
        self.input = self.interpreter.get_input_details()[0]["index"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(x, np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.tensor)[0].copy()


def file_statistics(paths: list[Path], model: Path, contract, n_features: int, *, root: Path | None = None,
                    progress: bool = True, desc: str = "statistics") -> tuple[np.ndarray, FeatureCache]:
    """The statistics ``model`` (an int8-trunk ``.tflite``) computes for each of ``paths`` (N x F), cached
    by the file's trunk (``trunk_digest``) like the float trunk's features, so files that share a trunk
    share the rows. ``contract`` must be the file's own: the caller checks it."""
    model = Path(model)
    if model.suffix != ".tflite" or not model.is_file():
        raise DiqaError(f"{model}: statistics are read from an exported .tflite file (an int8-trunk export)")
    folder = (root or cache_root()) / "features" / file_features_key(model, n_features)
    cache = fill_cache(FeatureCache(folder), paths, lambda: FileStatistics(model, n_features), contract, "NHWC",
                       progress=progress, desc=desc)
    return cache.read(cache.ids_for(paths)), cache
