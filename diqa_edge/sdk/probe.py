"""Open a model file in a child process before this process trusts it to the native runtime.

Why: the TFLite interpreter does not verify a file's FlatBuffer before it reads
it, so a truncated download, or bytes that merely start with the TFLite
identifier, crash the whole process (SIGSEGV: no message, nothing else in the
batch scored). A crash in a child costs the child only; the parent turns it
into one ``ModelLoadError`` with the reason. The child also runs one inference
on a zero image under a memory cap, so a file that loads but crashes, or asks
for absurd buffers, at its first inference is caught the same way.

The verdict is remembered per file (path, size, modification time) for the
life of the process: a second ``QualityScorer`` on the same file pays nothing.
Cost: one Python start plus one load and one inference, 0.5 s here for the bundled model.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ModelLoadError
from ..fileio import stat_key

PROBED_FORMATS = ("tflite", "onnx")      # the runtimes whose native parsers can crash on bad bytes
CHILD_MEMORY_BYTES = 8 * 1024 ** 3        # address-space cap for the child: a bogus tensor shape fails there
CHILD_TIMEOUT_S = 120
CHILD_MODULE = "diqa_edge.sdk.runtimes"   # its ``__main__`` is the child (``runtimes.probe_child``)
HANDLED_ERROR = 3                        # the child caught a Python error: its last stderr line names it
_LEFT_TO_THE_CALLER = ("RuntimeUnavailableError",)   # not the file's fault: the caller's load says what to install
_verified: set[tuple[str, int, int]] = set()


def verify_in_child(path: Path, fmt: str) -> None:
    """Raise ``ModelLoadError`` when loading ``path`` and running it once kills the process that does it."""
    if fmt not in PROBED_FORMATS:
        return
    key = stat_key(path)
    if key in _verified:
        return
    try:
        done = subprocess.run([sys.executable, "-m", CHILD_MODULE, str(path), fmt], capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ModelLoadError(f"{path}: the {fmt} runtime did not finish loading it in {CHILD_TIMEOUT_S} s; "
                             "the file is damaged or not a model") from None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise ModelLoadError(f"{path}: damaged or not a {fmt} model: the runtime crashed reading it ({name})")
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    if done.returncode == HANDLED_ERROR:
        # the child's load failed in Python: never retry it here (a bogus tensor size would allocate in this
        # process without the child's memory cap); a missing runtime is left to the caller's own load
        kind, _, message = last.partition(": ")
        if kind in _LEFT_TO_THE_CALLER:
            return
        raise ModelLoadError(message if kind == "ModelLoadError" else
                             f"{path}: not a loadable {fmt} model ({kind}: {message})")
    if done.returncode != 0:
        raise ModelLoadError(f"{path}: the {fmt} runtime failed reading it (exit {done.returncode}: {last})")
    _verified.add(key)
