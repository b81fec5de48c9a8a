"""What an app developer imports: everything the SDK's calls raise or need, from ``diqa_edge.sdk`` (issue 33,
item 8), and the options object."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

import diqa_edge.sdk as sdk
from conftest import SAMPLES

SDK_DIR = Path(sdk.__file__).parent


def test_every_public_name_imports():
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None, name


def test_every_error_the_sdk_raises_is_public():
    raised = set()
    for path in SDK_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                raised.add(node.exc.func.id)
    ours = {n for n in raised if n.endswith("Error") and not hasattr(builtins, n)}
    assert ours and ours <= set(sdk.__all__), sorted(ours - set(sdk.__all__))


def test_options_build_the_same_scorer_as_the_constructor():
    try:
        direct = sdk.QualityScorer.bundled(threads=1)
    except sdk.DiqaError as exc:
        pytest.skip(f"no bundled model runs here: {exc}")
    via = sdk.QualityScorer.create_from_options(sdk.ScorerOptions(threads=1))
    photo = SAMPLES / "skin_ISIC_0000051.jpg"
    assert via.model_path == direct.model_path and via.threshold == direct.threshold
    assert via.score(photo).score == pytest.approx(direct.score(photo).score, abs=1e-6)
    with pytest.raises(sdk.UsageError, match="outside the score range"):
        sdk.QualityScorer.create_from_options(sdk.ScorerOptions(threshold=50))
