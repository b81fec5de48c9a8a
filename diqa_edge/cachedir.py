"""Where long work is kept: outside the work tree, so a fresh checkout on the same machine finds it.

Feature caches, generated datasets and training runs go under one root:
``$DIQA_EDGE_CACHE`` when set, else ``$XDG_CACHE_HOME/diqa-edge`` or ``~/.cache/diqa-edge``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("DIQA_EDGE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diqa-edge"


def skin_set_dir(short_side: int = 512) -> Path:
    """The default home of the KADID-labelled skin set built for a model input of ``short_side`` px."""
    return cache_root() / f"skin-kadid-{short_side}"
