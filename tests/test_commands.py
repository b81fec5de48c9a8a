"""One command surface (issue 33, item 7): every ``python -m diqa_edge.<module>`` a user may type is also a
``diqa-edge`` command, and both ways share one parser, the same -v / -q and the same exit codes."""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys

import pytest

from conftest import ROOT
from diqa_edge.cli import COMMANDS, build_parser
from diqa_edge.commands import configure_verbosity, guarded
from diqa_edge.errors import DiqaError, UsageError

# modules run with -m that are not commands: the CLI itself and the runtime probe's child process
NOT_COMMANDS = {"diqa_edge.cli", "diqa_edge.sdk.runtimes"}
# a package's __main__ is the command its cli module defines
PACKAGE_MAINS = {"diqa_edge.export.__main__": "diqa_edge.export.cli", "diqa_edge.training.__main__": "diqa_edge.training.cli"}


pytestmark = pytest.mark.usefixtures("restore_logging")     # each test configures the package's logging


def _runs_as_main(path) -> bool:
    tree = ast.parse(path.read_text())
    return path.name == "__main__.py" or any(
        isinstance(n, ast.If) and "__name__" in ast.unparse(n.test) and "__main__" in ast.unparse(n.test)
        for n in tree.body)


def test_every_module_entry_point_is_a_diqa_edge_command():
    modules = {module for module, _ in COMMANDS.values()}
    entry_points = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "diqa_edge").rglob("*.py")
                    if _runs_as_main(p)}
    orphans = {m for m in entry_points - NOT_COMMANDS if PACKAGE_MAINS.get(m, m) not in modules}
    assert not orphans, f"python -m entry points with no diqa-edge command: {sorted(orphans)}"
    assert len(entry_points) >= 10      # the walk found them: bench, bundle, figures, detail_gate, ...


def test_errors_become_one_line_and_the_shared_exit_codes(capsys):
    def raising(exc):
        def run():
            raise exc
        return run

    assert guarded("diqa-edge x", raising(UsageError("--foo must be positive"))) == 2
    assert guarded("diqa-edge x", raising(DiqaError("model.tflite: damaged"))) == 1
    assert guarded("diqa-edge x", raising(FileNotFoundError(2, "No such file or directory", "a.json"))) == 1
    assert guarded("diqa-edge x", raising(KeyboardInterrupt())) == 130
    assert guarded("diqa-edge x", lambda: 0) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["diqa-edge x: --foo must be positive", "diqa-edge x: model.tflite: damaged",
                                "diqa-edge x: a.json: No such file or directory", "interrupted"]


@pytest.mark.parametrize("argv", [["-v", "export", "--checkpoint", "r"], ["export", "--checkpoint", "r", "--verbose"],
                                  ["export", "--checkpoint", "r", "-v"]])
def test_verbose_means_one_thing_wherever_it_is_given(argv):
    """``diqa-edge -v export`` logged everything while ``diqa-edge export --verbose`` only showed the
    converters' output: both now do both."""
    args = build_parser(argv).parse_args(argv)
    configure_verbosity(args.verbose, args.verbosity)
    assert logging.getLogger("diqa_edge").level == logging.DEBUG


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_a_module_and_its_command_answer_alike(tmp_path):
    """The same missing card, both ways: one line naming it, exit 1, no traceback."""
    card = tmp_path / "card.json"
    by_command = _run("-m", "diqa_edge.cli", "detail-rule", "--card", str(card))
    by_module = _run("-m", "diqa_edge.training.detail_gate", "--card", str(card))
    for proc in (by_command, by_module):
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{card}: cannot read the run card" in proc.stderr
    card.write_text(json.dumps({"model": "a BIQ2021-only run"}))
    proc = _run("-m", "diqa_edge.cli", "detail-rule", "--card", str(card))
    assert proc.returncode == 1 and "the run chose no retake rule" in proc.stderr
    proc = _run("-m", "diqa_edge.training.detail_gate", "--card")            # argparse's own usage error
    assert proc.returncode == 2 and "python -m diqa_edge.training.detail_gate (diqa-edge detail-rule)" in proc.stderr


def test_the_readme_figures_check_agrees_with_the_committed_results():
    proc = _run("-m", "diqa_edge.cli", "figures", "--check")
    assert proc.returncode == 0 and "agrees with the results" in proc.stdout, proc.stdout + proc.stderr


def test_verbose_with_quiet_is_a_usage_error():
    proc = _run("-m", "diqa_edge.cli", "export", "--verbose", "-q", "--checkpoint", "nowhere")
    assert proc.returncode == 2 and "--verbose and -q ask for opposite things" in proc.stderr
