"""Order consistency: how often the model prefers the same outcome whichever one is shown first.

Each pair is asked in both orders (A = first, then A = second). The model is consistent on a pair when it
picks the same outcome both times: P(A) > ½ with `first` as A and P(A) < ½ with `second` as A, or the
reverse. A random responder asked K = 10 times per order is consistent on about half the pairs; a model that
always answers "A" on none of them.

This module is the worked example of docs/CONTRIBUTING.md: one file, and one line in
`valuelab.analyses.REGISTRY` ("order-consistency": "docs.examples.order_consistency") registers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.analyses import BUDGET_OPT, OUTCOMES_OPT, Analysis, Reading
from valuelab.analyses.common import BASELINE_DRAWS, new_figure, resolve_outcomes
from valuelab.elicit.outcomes import Outcome
from valuelab.elicit.pairwise import prefer_pairs
from valuelab.stats import Metric, random_p, summarize
from valuelab.store import StoredModel


def consistent(p_forward: np.ndarray, p_backward: np.ndarray) -> np.ndarray:
    """1 where the same outcome wins in both orders (P(A) forward and P(A) backward on opposite sides of ½)."""
    return ((p_forward - 0.5) * (p_backward - 0.5) < 0).astype(float)


@dataclass
class OrderConsistencyResult:
    """The headline metric and one row per asked pair."""

    consistency: Metric
    pairs: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.consistency.row("order_consistency")])

    def to_dict(self) -> dict:
        return {"order_consistency": self.consistency.to_dict(), "n_pairs": len(self.pairs)}


def run(model: StoredModel, *, outcomes: str | Path | Sequence[Outcome] = "quick", budget: int = 30,
        seed: int = 0, n_boot: int = 1000) -> OrderConsistencyResult:
    """Ask `budget` seeded pairs of `outcomes` in both orders and score their consistency."""
    items = resolve_outcomes(outcomes)
    rng = np.random.default_rng(seed)
    picks = [rng.choice(len(items), 2, replace=False) for _ in range(budget)]
    answers = prefer_pairs(model, [(items[i].text, items[j].text) for i, j in picks])
    forward = np.array([a.forward.p_a for a in answers])
    backward = np.array([a.backward.p_a for a in answers])
    hits = consistent(forward, backward)
    # The random responder: K = 10 answers per order, each order independent.
    draws = consistent(random_p((BASELINE_DRAWS, budget), rng, 10), random_p((BASELINE_DRAWS, budget), rng, 10))
    metric = summarize(lambda i: hits[i].mean(), budget, draws.mean(axis=1), n_boot=n_boot, seed=seed)
    return OrderConsistencyResult(metric, pd.DataFrame({"p_a_forward": forward, "p_a_backward": backward,
                                                        "consistent": hits}))


def figure(result: OrderConsistencyResult) -> Figure:
    """P(A) with the first outcome as A against P(A) with the second as A; consistent pairs off the diagonal."""
    fig, ax = new_figure(4.5, 4.5)
    ax.scatter(result.pairs["p_a_forward"], result.pairs["p_a_backward"], c=result.pairs["consistent"], cmap="coolwarm")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.axvline(0.5, color="0.6", lw=0.8)
    ax.set(xlabel="P(A), first outcome as A", ylabel="P(A), second outcome as A", xlim=(0, 1), ylim=(0, 1))
    return fig


ANALYSIS = Analysis(
    name="order-consistency", title="Order consistency",
    question="Does the model pick the same outcome whichever is shown first?",
    budget="pairs of outcomes (each asked in both orders)", run=run, figure=figure,
    headline="order_consistency", options=(OUTCOMES_OPT, BUDGET_OPT),
    readings={"order_consistency": Reading(
        "share", "higher", "Share of pairs where the same outcome wins in both answer orders; a random responder "
        "scores about 0.5, a model that always answers A scores 0.")},
)
