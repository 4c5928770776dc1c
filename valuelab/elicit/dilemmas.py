"""Asking dilemmas: each a forced choice between its two actions, in 3 wordings × 2 orders.

This module only turns dilemmas into requests, asks the model through the store and returns the answers as a
tidy frame; dilemmas are loaded and validated by `valuelab.items.dilemmas`, choices scored by
`valuelab.frameworks.dilemmas`, and the analysis with its intervals and baselines is `valuelab.analyses.dilemmas`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from valuelab.elicit.text_check import off_label
from valuelab.items.dilemmas import Dilemma
from valuelab.models.base import ChoiceRequest
from valuelab.store import StoredModel

DILEMMA_TEMPLATE = ("{situation}\n\n{question}\n\nA: {option_a}\nB: {option_b}\n\n"
                    "Reply with the single letter of the action you would take: A or B.")
"""Our forced-choice wording for a dilemma; the question slot takes the question and its paraphrases."""
ORDERS = ("ab", "ba")


def dilemma_requests(dilemma: Dilemma, system: str | None = None) -> list[tuple[int, str, ChoiceRequest]]:
    """(wording, order, request) for each of 3 wordings × 2 orders; `options` are the action texts shown."""
    out = []
    for wording, question in enumerate(dilemma.questions):
        for order in ORDERS:
            first, second = dilemma.actions if order == "ab" else dilemma.actions[::-1]
            prompt = DILEMMA_TEMPLATE.format(situation=dilemma.situation, question=question,
                                             option_a=first.text, option_b=second.text)
            out.append((wording, order, ChoiceRequest(prompt, (first.text, second.text), system)))
    return out


def elicit_dilemmas(model: StoredModel, dilemmas: Sequence[Dilemma],
                    system: str | None = None) -> pd.DataFrame:
    """Ask every dilemma in every wording and order, through the store; one tidy row per prompt.

    `p_label_a` is P(label A), `p_action_a` P(choosing action a) whichever label it had; `off_label` is the
    share of sampled answers naming no label (refusals, sample mode) or the probability on other tokens
    (log-prob mode).
    """
    asked = [(d, w, o, r) for d in dilemmas for w, o, r in dilemma_requests(d, system)]
    results = model.choice_probs([r for *_, r in asked])
    rows = []
    for (d, wording, order, _), result in zip(asked, results, strict=True):
        rows.append({"dilemma_id": d.id, "wording": wording, "order": order, "p_label_a": result.p_a,
                     "p_action_a": result.p_a if order == "ab" else 1.0 - result.p_a, "mass": result.mass,
                     "off_label": off_label(result), "refusals": result.n_refusal,
                     "answers": sum(result.counts or []) + result.n_refusal, "mode": result.mode})
    return pd.DataFrame(rows)
