"""Pieces the analyses share beyond `valuelab.stats`: the checks of the `run` entry points, and the
statistics names they use, re-exported so an analysis imports its toolkit from one place."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path

from valuelab import stats
from valuelab.elicit.outcomes import Outcome, load_outcomes
from valuelab.errors import InputError
from valuelab.figures import new_figure
from valuelab.items.files import seeded_subset
from valuelab.stats import (
    BASELINE_DRAWS,
    LEVEL,
    N_BOOT,
    REFERENCE_SAMPLES,
    Metric,
    bootstrap_ci,
    random_p,
    summarize,
)
from valuelab.store import StoredModel
from valuelab.yamlfile import read_yaml

__all__ = ["BASELINE_DRAWS", "LEVEL", "N_BOOT", "REFERENCE_SAMPLES", "Metric", "baseline_samples", "bootstrap_ci",
           "check_budget", "new_figure", "published_values", "random_p", "resolve_outcomes", "seeded_subset",
           "summarize"]

def baseline_samples(model: StoredModel) -> int:
    """Sample size behind one observed P for this model: its samples in both orders, or the reference's 20."""
    return stats.baseline_samples(model.mode, model.n_samples)

def resolve_outcomes(outcomes: str | Path | Sequence[Outcome]) -> list[Outcome]:
    return load_outcomes(outcomes) if isinstance(outcomes, str | Path) else list(outcomes)

def check_budget(budget: int | None, minimum: int, what: str) -> None:
    """Fail early when a budget cannot give the analysis what it needs."""
    if budget is not None and budget < minimum:
        raise InputError(f"budget {budget} is below the minimum of {minimum} {what}", field="budget")


@cache
def _published() -> dict:
    return read_yaml(Path(str(files("valuelab") / "data" / "published.yaml")))


def published_values(metric: str) -> list[dict]:
    """The published reference values of `metric` in data/published.yaml (model, value, where, source), for
    figures that draw people or other models beside ours; none when it has no entry."""
    entry = _published().get("metrics", {}).get(metric)
    return [dict(v) for v in entry["values"]] if entry else []
