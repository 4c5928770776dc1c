"""Pieces every coherence analysis shares: a headline number with its bootstrap interval and the
random-responder baseline beside it, the random responder itself, and the checks of the `run` entry points.

The random responder is the paper's baseline (Mazeika et al. 2025 §4; reference/paper-utility-engineering.md
§1.5): a model that says A or B with probability ½ each, asked K = 10 times per order, so an observed
P(a ≻ b) is Binomial(20, ½)/20. Its average confidence is 0.588 and its held-out accuracy 50 %.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from valuelab.elicit.outcomes import Outcome, load_outcomes
from valuelab.errors import InputError
from valuelab.figures import new_figure  # noqa: F401  (re-exported: analyses draw with the shared style)
from valuelab.store import StoredModel

REFERENCE_SAMPLES = 20
"""Answers per pair in the reference protocol (K = 10 per order): the random responder's sample size."""
LEVEL = 0.95
N_BOOT = 1000
BASELINE_DRAWS = 200
"""Simulated random responders per baseline: enough for its mean and 95 % range at the sizes we use."""


@dataclass(frozen=True)
class Metric:
    """A measured number, its bootstrap interval, and what a random responder gives over as many items."""

    value: float
    lo: float
    hi: float
    baseline: float
    baseline_lo: float
    baseline_hi: float

    def to_dict(self) -> dict:
        return {"value": self.value, "ci": [self.lo, self.hi], "baseline": self.baseline,
                "baseline_range": [self.baseline_lo, self.baseline_hi]}

    def row(self, name: str) -> dict:
        return {"metric": name, "value": self.value, "ci_lo": self.lo, "ci_hi": self.hi,
                "baseline": self.baseline, "baseline_lo": self.baseline_lo, "baseline_hi": self.baseline_hi}


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, n_boot: int = N_BOOT, seed: int = 0,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of `stat(indices)` over `n_boot` resamples, with replacement, of the `n` items."""
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=float)
    lo, hi = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def summarize(stat: Callable[[np.ndarray], float], n: int, baseline: Sequence[float] | np.ndarray, *,
              n_boot: int = N_BOOT, seed: int = 0) -> Metric:
    """`stat` over all `n` items with its bootstrap interval; the mean and 95 % range of `baseline` draws."""
    lo, hi = bootstrap_ci(stat, n, n_boot, seed)
    base = np.asarray(baseline, dtype=float)
    base_lo, base_hi = np.nanpercentile(base, [2.5, 97.5]) if len(base) else (np.nan, np.nan)
    return Metric(float(stat(np.arange(n))), lo, hi, float(np.nanmean(base)), float(base_lo), float(base_hi))


def random_p(shape: int | tuple[int, ...], rng: np.random.Generator,
             samples: int = REFERENCE_SAMPLES) -> np.ndarray:
    """Observed P(a ≻ b) of a random responder asked `samples` times per pair."""
    return rng.binomial(samples, 0.5, shape) / samples


def baseline_samples(model: StoredModel) -> int:
    """Sample size behind one observed P for this model: its samples in both orders, or the reference's 20."""
    return 2 * model.n_samples if model.mode == "sample" else REFERENCE_SAMPLES


def resolve_outcomes(outcomes: str | Path | Sequence[Outcome]) -> list[Outcome]:
    return load_outcomes(outcomes) if isinstance(outcomes, str | Path) else list(outcomes)


def check_budget(budget: int | None, minimum: int, what: str) -> None:
    """Fail early when a budget cannot give the analysis what it needs."""
    if budget is not None and budget < minimum:
        raise InputError(f"budget {budget} is below the minimum of {minimum} {what}", field="budget")


def seeded_subset(items: Sequence, limit: int | None, seed: int, what: str, minimum: int = 1) -> list:
    """`limit` of `items` drawn with `seed`, in their original order (all of them when `limit` is None)."""
    items = list(items)
    if limit is None:
        return items
    if limit < minimum:
        raise InputError(f"limit must be at least {minimum} {what}, got {limit}", field="limit")
    if limit >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in keep]
