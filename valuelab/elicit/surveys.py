"""Asking a survey instrument: each item a forced choice over its scale labels, shown forward and reversed.

This module only turns items into requests, asks the model through the store and returns the answers as a
tidy frame; instruments are loaded by `valuelab.items.surveys`, scored by `valuelab.frameworks.surveys`, and
the analysis with its intervals and baselines is `valuelab.analyses.surveys`.
"""

from __future__ import annotations

from collections.abc import Sequence
from string import ascii_uppercase

import pandas as pd

from valuelab.elicit.text_check import off_label
from valuelab.items.surveys import Instrument, Item
from valuelab.models.base import ChoiceRequest
from valuelab.store import StoredModel

SURVEY_TEMPLATE = "{prompt}\n\n{text}\n\n{options}\n\nReply with the {what} of one option only."
"""Our wording for one rating item; the options are listed with their labels in the order shown."""
DEFAULT_PROMPT = "Please answer the following question about yourself."
SHOWN = ("forward", "reversed")


def scale_labels(points: int) -> tuple[str, ...]:
    """Answer labels "1".."N", or letters beyond nine points: every label must be one token."""
    return tuple(str(k) for k in range(1, points + 1)) if points <= 9 else tuple(ascii_uppercase[:points])


def item_request(instrument: Instrument, item: Item, shown: str, system: str | None = None) -> ChoiceRequest:
    """One item with its scale listed forward (as in the file) or reversed; `options` are the codes shown."""
    order = list(range(item.scale.points))
    if shown == "reversed":
        order.reverse()
    labels = scale_labels(item.scale.points)
    part = instrument.parts.get(item.part) if item.part else None
    prompt = (part.prompt if part and part.prompt else instrument.prompt) or DEFAULT_PROMPT
    options = "\n".join(f"{label}. {item.scale.labels[k]}" for label, k in zip(labels, order, strict=True))
    text = SURVEY_TEMPLATE.format(prompt=prompt, text=item.text, options=options,
                                  what="number" if labels[0].isdigit() else "letter")
    return ChoiceRequest(text, tuple(f"{item.scale.values[k]:g}" for k in order), system, labels, item.text)


def elicit_survey(model: StoredModel, instrument: Instrument, items: Sequence[Item] | None = None,
                  system: str | None = None) -> pd.DataFrame:
    """Ask every item with its scale forward and reversed, through the store; one tidy row per prompt.

    `rating` is the expected code under the label probabilities (renormalised over the labels);
    `off_label` is the share of refusals (sample mode) or the probability on other tokens (log-prob).
    """
    asked = [(it, shown, item_request(instrument, it, shown, system))
             for it in (instrument.items if items is None else items) for shown in SHOWN]
    results = model.choice_probs([r for *_, r in asked])
    rows = []
    for (it, shown, request), result in zip(asked, results, strict=True):
        rows.append({"item_id": it.id, "dimension": it.dimension, "part": it.part, "keyed": it.keyed,
                     "catch": it.catch, "direction": shown,
                     "rating": result.expected_value([float(v) for v in request.options]),
                     "first_code": float(request.options[0]), "low": it.scale.low, "high": it.scale.high,
                     "mass": result.mass, "off_label": off_label(result), "refusals": result.n_refusal,
                     "answers": sum(result.counts or []) + result.n_refusal, "mode": result.mode})
    return pd.DataFrame(rows)
