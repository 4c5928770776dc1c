"""valuelab: measure and steer the value systems of large language models.

    >>> import valuelab as vl
    >>> model = vl.StoredModel(vl.load_model("smollm2"), vl.Store("runs/store.sqlite"))
    >>> vl.prefer(model, "You receive $100.", "You lose $100.").p_first
    >>> utilities = vl.elicit_utilities(model, vl.load_outcomes("quick"), budget=120).utilities
    >>> result = vl.run_analysis("transitivity", model, outcomes="quick", budget=20)
    >>> result.headline, result.to_frame()
    >>> [a.name for a in vl.list_analyses()]
    >>> vl.audit(model, suite="quick", out="runs/audit")
    >>> vl.compare_reports(["runs/audit", "runs/other"], "runs/comparison")

Names are imported on first use, so `import valuelab` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from typing import Any

__version__ = importlib.metadata.version("valuelab")

_NAMES = {
    "load_model": "valuelab.models", "available_backends": "valuelab.models", "ChoiceRequest": "valuelab.models",
    "ChoiceResult": "valuelab.models", "Store": "valuelab.store", "StoredModel": "valuelab.store",
    "load_outcomes": "valuelab.elicit.outcomes", "prefer": "valuelab.elicit.pairwise",
    "prefer_pairs": "valuelab.elicit.pairwise", "preferences_frame": "valuelab.elicit.pairwise",
    "PairPreference": "valuelab.elicit.pairwise", "elicit_utilities": "valuelab.fit.utilities",
    "Metric": "valuelab.result", "Result": "valuelab.result", "run_analysis": "valuelab.analyses",
    "list_analyses": "valuelab.analyses", "compare_reports": "valuelab.report", "InputError": "valuelab.errors",
    "ValuelabError": "valuelab.errors",
}

__all__ = sorted([*_NAMES, "audit", "open_model"])


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'valuelab' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)


def open_model(spec: str, store: str | Path | None = None, **options: Any):
    """A `StoredModel` for a spec: `options` go to the backend (device, base_url, ...) or, for mode,
    n_samples, temperature, seed and system, to the store view. The store defaults to `$VALUELAB_STORE` or
    the cache folder."""
    from valuelab.models import load_model
    from valuelab.store import Store, StoredModel, default_store_path

    view = {k: options.pop(k) for k in ("mode", "n_samples", "temperature", "seed", "system") if k in options}
    return StoredModel(load_model(spec, **options), Store(store or default_store_path()), **view)


def audit(model: Any, *, suite: str = "quick", out: str | Path | None = None, seed: int = 0,
          outcomes: str | None = None, only: list[str] | None = None, progress: bool | None = None):
    """Run an audit suite on `model` (a `StoredModel`, or a spec string, which gets a store in `out` when
    given) and, with `out`, write report.html, report.pdf, results.json, utilities.csv and manifest.json
    there. Returns the `Audit` (its `report` and `utilities`)."""
    from valuelab.audits import run_audit

    if isinstance(model, str):
        model = open_model(model, Path(out) / "store.sqlite" if out is not None else ":memory:")
    result = run_audit(model, suite=suite, seed=seed, outcomes=outcomes, only=only, progress=progress)
    if out is not None:
        result.write(Path(out))
    return result
