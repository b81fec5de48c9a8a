"""Where long work is kept: outside the work tree, so a fresh checkout on the same machine finds it.

Feature caches, generated datasets and training runs go under one root:
``$DIQA_EDGE_CACHE`` when set, else ``$XDG_CACHE_HOME/diqa-edge`` or ``~/.cache/diqa-edge``.
The public data sets are read from one folder too (``data_root``), named once here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from .contract import DEFAULT_CONTRACT
from .fileio import written_in_place


def cache_root() -> Path:
    env = os.environ.get("DIQA_EDGE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diqa-edge"


def data_root() -> Path:
    """Where the public data sets sit in their published layouts: ``$DIQA_EDGE_DATA`` when set, else
    ``../shared/data`` (this project's machines). Every command's ``--data-root`` and data defaults
    start here, so a user points them all at their own copy with one variable."""
    return Path(os.environ.get("DIQA_EDGE_DATA", "../shared/data")).expanduser()


def skin_set_dir(short_side: int = DEFAULT_CONTRACT.input_size) -> Path:
    """The default home of the KADID-labelled skin set built for a model input of ``short_side`` px."""
    return cache_root() / f"skin-kadid-{short_side}"


def phone_set_dir() -> Path:
    """The default home of the phone-photo set (real smartphone photos of skin as bases, ``make-skin-set --phone``)."""
    return cache_root() / "skin-phone"


def json_once(path: Path, compute: Callable[[], object]) -> object:
    """``path``'s JSON if an earlier run wrote it, else ``compute()`` written there (atomically, so an
    interrupted run leaves no half file) and returned: long measurements resume instead of repeating."""
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    with written_in_place(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1) + "\n")
    return json.loads(path.read_text())
