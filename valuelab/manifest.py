"""The run manifest: what ran, on what, with which prompts and seeds, so a result can be reproduced."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import time
from pathlib import Path

from valuelab.prompts import PAIRWISE_TEMPLATES
from valuelab.store import CallCounts

PACKAGES = ("valuelab", "torch", "transformers", "openai", "numpy", "scipy", "pandas", "llama_cpp_python", "vllm")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return None


def git_hash() -> str | None:
    """The commit of the valuelab source tree, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def build_manifest(model, *, command: str, seed: int, extra: dict | None = None) -> dict:
    """`model` is a StoredModel; its backend identity and label tokens are recorded, never its credentials, and
    what it has asked so far (`CallCounts.cost_since`: prompts asked and reused, requests, samples, tokens)."""
    backend = model.backend
    label_ids = getattr(backend, "_label_ids", None)
    return {
        "command": command,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model.identity,
        "mode": model.mode,
        "counts": model.counts.cost_since(CallCounts()),
        "label_token_ids": label_ids,
        "templates": {name: t.sha for name, t in PAIRWISE_TEMPLATES.items()},
        "seed": seed,
        "store": model.store.path,
        "versions": {name: _version(name) for name in PACKAGES} | {"python": sys.version.split()[0]},
        "platform": platform.platform(),
        "git": git_hash(),
        **(extra or {}),
    }
