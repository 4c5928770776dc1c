"""Free-text answers, asked through the store: one greedy completion per prompt."""

from __future__ import annotations

from collections.abc import Sequence

from valuelab.models.base import ChoiceRequest
from valuelab.store import StoredModel

MAX_TOKENS = 32


def free_form(model: StoredModel, prompts: Sequence[str], *, system: str | None = None,
              max_tokens: int = MAX_TOKENS, seed: int = 0,
              answers: Sequence[Sequence[str] | None] | None = None) -> list[str]:
    """One greedy completion per prompt, through the store: a sample-mode view of the same backend and store.

    `answers` (one list per prompt, or None) names the answers an open question has, for backends that choose
    among them rather than write (the synthetic agent); they are not shown to the model and not part of the
    store key. The store keeps each whole reply; the text returned is its first 200 characters (what
    `ChoiceResult` keeps), more than `max_tokens` allows. Calls are added to `model.counts`.
    """
    view = model.view(mode="sample", n_samples=1, temperature=0.0, max_tokens=max_tokens, seed=seed)
    answers = answers if answers is not None else [None] * len(prompts)
    results = view.choice_probs([ChoiceRequest(p, None, system) if a is None else
                                 ChoiceRequest(p, tuple(a), system, labels=tuple(a))
                                 for p, a in zip(prompts, answers, strict=True)])
    model.counts += view.counts  # calls, tokens and time of the free-text answers count for the run
    return [r.texts[0] if r.texts else "" for r in results]
