"""The SDK stays free of the training stack: imports, and a real fresh install of the ``sdk`` extra."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest

from conftest import FIXTURE_MODELS, ROOT, SAMPLES

PROBE = f"""
import sys
import diqa_edge.sdk
from diqa_edge.sdk import QualityScorer
for name in ("brightness.onnx", "brightness.tflite"):
    r = QualityScorer(r"{FIXTURE_MODELS}" + "/" + name).score(r"{SAMPLES / 'photo_coffee.jpg'}")
    print(name, round(r.score, 3))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow", "tf_keras", "keras"))
print("HEAVY", heavy)
"""


def test_sdk_import_and_scoring_leave_torch_and_tensorflow_unloaded():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout


@pytest.mark.slow
def test_fresh_venv_with_the_sdk_extra_has_no_torch_or_tensorflow(tmp_path):
    """pip install '.[sdk]' into a brand-new virtual environment (PyPI reachable, pip cache used)."""
    env_dir = tmp_path / "sdk-env"
    venv.create(env_dir, with_pip=True)
    py = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(ROOT / "requirements" / "constraints.txt"), f"{ROOT}[sdk]"],
        capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout.lower()
    names = {line.split("==")[0] for line in listed.splitlines()}
    assert "ai-edge-litert" in names and "onnxruntime" in names
    assert not names & {"torch", "tensorflow", "tf-keras", "keras", "torchvision"}, names
    out = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert "brightness.onnx" in out.stdout and "brightness.tflite" in out.stdout
    # the command a phone-side user runs first: it used to crash here, importing every sub-command
    # (and so torch) at start-up; HEIC must decode too (pillow-heif is in the extra)
    cli = env_dir / ("Scripts" if os.name == "nt" else "bin") / "diqa-edge"
    scored = subprocess.run([str(cli), "score", str(SAMPLES)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr[-2000:]
    assert "scored" in scored.stdout and "0 failed" in scored.stdout
    assert {"pillow-heif", "pillow_heif"} & names
