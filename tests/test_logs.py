"""Progress goes through logging, and the command line's -v / -q decide what the terminal shows."""

from __future__ import annotations

import logging

import pytest

from diqa_edge.cli import build_parser
from diqa_edge.logs import configure


pytestmark = pytest.mark.usefixtures("restore_logging")     # each test configures the package's logging


def _say_everything():
    log = logging.getLogger("diqa_edge.training.trainer")
    log.debug("detail")
    log.info("epoch 1: loss 0.5")
    log.warning("stopped after epoch 1")


@pytest.mark.parametrize("verbosity, shown, hidden", [
    (0, ["epoch 1: loss 0.5\n", "stopped after epoch 1\n"], ["detail"]),
    (1, ["diqa_edge.training.trainer: detail\n", "diqa_edge.training.trainer: epoch 1"], []),
    (-1, ["stopped after epoch 1\n"], ["epoch 1: loss", "detail"]),
])
def test_verbosity_decides_what_reaches_stderr(capsys, verbosity, shown, hidden):
    configure(verbosity)
    _say_everything()
    out, err = capsys.readouterr()
    assert out == ""                                     # stdout is for results only
    assert all(s in err for s in shown) and not any(h in err for h in hidden), err


def test_the_command_line_takes_verbose_and_quiet_before_the_command():
    assert build_parser(["-v", "score", "x.jpg"]).parse_args(["-v", "score", "x.jpg"]).verbosity == 1
    assert build_parser(["-q", "score", "x.jpg"]).parse_args(["-q", "score", "x.jpg"]).verbosity == -1
    assert build_parser(["score", "x.jpg"]).parse_args(["score", "x.jpg"]).verbosity == 0
    with pytest.raises(SystemExit):
        build_parser(["-v", "-q", "score"]).parse_args(["-v", "-q", "score", "x.jpg"])
