"""The robustness battery shown beside every framework score (reference/value-frameworks.md §4).

Intervals are percentile bootstraps; the null is a uniform-random respondent that picks every shown label
with equal probability, asked as many times as the model (Dominguez-Olmedo et al. 2024: after order
randomisation many models answer like one). First-token versus text agreement follows Wang et al. (2024),
"My Answer is C": a few prompts are also answered in free text, greedily, and parsed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from valuelab.models.base import ChoiceRequest
from valuelab.prompts import REFUSAL
from valuelab.store import StoredModel

LEVEL = 0.95
RANDOM_ANSWERS = 10
"""Answers per prompt of the random respondent when the model gives log-probabilities (the reference K)."""
TEXT_SUBSAMPLE = 8
"""Prompts also answered in free text for the log-prob versus text agreement."""
RANDOM_ROBUSTNESS_DRAWS = 50
"""Random respondents averaged for the baseline of each robustness number."""


def answers_per_prompt(model: StoredModel) -> int:
    """How many answers one observed probability rests on: samples in sample mode, else the reference K."""
    return model.n_samples if model.mode == "sample" else RANDOM_ANSWERS


def interval(draws: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per column of `draws` (one row per bootstrap or random draw): the percentile interval, NaNs ignored."""
    tail = 50 * (1 - level)
    values = draws.to_numpy(dtype=float)
    finite = np.isfinite(values).any(axis=0)
    lo = np.full(values.shape[1], math.nan)
    hi = np.full(values.shape[1], math.nan)
    if finite.any():
        lo[finite], hi[finite] = np.nanpercentile(values[:, finite], [tail, 100 - tail], axis=0)
    return pd.DataFrame({"lo": lo, "hi": hi}, index=draws.columns)


def baseline(draws: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per column of random-respondent draws: its mean and percentile range."""
    span = interval(draws, level).rename(columns={"lo": "baseline_lo", "hi": "baseline_hi"})
    mean = draws.apply(lambda c: float(np.nanmean(c)) if np.isfinite(c).any() else math.nan)
    return span.assign(baseline=mean)[["baseline", "baseline_lo", "baseline_hi"]]


def off_label(result) -> float:
    """Share of answers naming no label (sample mode), or probability on anything but a label (log-prob)."""
    if result.mode == "sample":
        total = sum(result.counts or []) + result.n_refusal
        return result.n_refusal / total if total else math.nan
    return max(0.0, 1.0 - result.mass)


def text_agreement(model: StoredModel, requests: Sequence[ChoiceRequest], *, n: int = TEXT_SUBSAMPLE,
                   seed: int = 0) -> dict[str, float | int | None]:
    """Does the top label by log-prob match what the model writes? Greedy text on a seeded subsample.

    Asked through the same store (sample mode, one answer at temperature 0), so reruns reuse it. In sample
    mode the answers already are text and there is nothing to compare: agreement is None.
    """
    if model.mode == "sample" or not requests or n <= 0:
        return {"n": 0, "agreement": None, "text_refusal": None}
    rng = np.random.default_rng(seed)
    chosen = [requests[i] for i in sorted(rng.choice(len(requests), min(n, len(requests)), replace=False))]
    texts = StoredModel(model.backend, model.store, mode="sample", n_samples=1, temperature=0.0,
                        max_tokens=16, seed=seed, progress=model.progress, executor=model.executor)
    agree = refused = 0
    for request, lp, tx in zip(chosen, model.choice_probs(chosen), texts.choice_probs(chosen), strict=True):
        written = request.labels[int(np.argmax(tx.counts))] if sum(tx.counts or []) else REFUSAL
        agree += written == request.labels[int(np.argmax(lp.probs))]
        refused += written == REFUSAL
    model.counts += texts.counts  # calls, tokens and time of the free-text answers count for the run
    return {"n": len(chosen), "agreement": agree / len(chosen), "text_refusal": refused / len(chosen)}


def json_ready(value):
    """Numbers and containers made JSON-safe: NaN and numpy scalars become None and plain floats."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
