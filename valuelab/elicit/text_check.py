"""Two checks on how a model answered, computed while asking: the share of its answer that named no label,
and whether the label it ranks first by log-probability is the one it writes in free text.

First-token versus text agreement follows Wang et al. (2024), "My Answer is C": a few prompts are also
answered in free text, greedily, and parsed (reference/value-frameworks.md §4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from valuelab.models.base import ChoiceRequest, ChoiceResult
from valuelab.prompts import REFUSAL
from valuelab.store import StoredModel

TEXT_SUBSAMPLE = 8
"""Prompts also answered in free text for the log-prob versus text agreement."""


def off_label(result: ChoiceResult) -> float:
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
    texts = model.view(mode="sample", n_samples=1, temperature=0.0, max_tokens=16, seed=seed)
    agree = refused = 0
    for request, lp, tx in zip(chosen, model.choice_probs(chosen), texts.choice_probs(chosen), strict=True):
        written = request.labels[int(np.argmax(tx.counts))] if sum(tx.counts or []) else REFUSAL
        agree += written == request.labels[int(np.argmax(lp.probs))]
        refused += written == REFUSAL
    model.counts += texts.counts  # calls, tokens and time of the free-text answers count for the run
    return {"n": len(chosen), "agreement": agree / len(chosen), "text_refusal": refused / len(chosen)}
