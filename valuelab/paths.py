"""Where valuelab keeps files between runs: one cache folder (`$VALUELAB_CACHE`, else ~/.cache/valuelab)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("VALUELAB_CACHE", Path.home() / ".cache" / "valuelab"))
