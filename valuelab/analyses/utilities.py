"""Utility ranking: the fitted Thurstonian utilities over an outcome set (mean 0, standard deviation 1), its top
and bottom outcomes and category means, from the same utilities the coherence analyses use.

Pairs are chosen by active sampling and asked in both orders through the store (Mazeika et al. 2025 §3);
a few prompts are also answered in free text to check that the label ranked first by log-probability is the
answer the model writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from valuelab.analyses import (
    BUDGET_OPT,
    HOLDOUT_PAIRS_OPT,
    N_BOOT_OPT,
    OUTCOMES_OPT,
    TEMPLATE_OPT,
    Analysis,
    Option,
)
from valuelab.analyses.common import new_figure, resolve_outcomes
from valuelab.elicit.outcomes import Outcome
from valuelab.fit.utilities import UtilityResult, elicit_utilities
from valuelab.prompts import DEFAULT_TEMPLATE, Template
from valuelab.store import StoredModel

N_BOOT_UTILITIES = 100
"""Refits on resampled pairs behind each outcome's interval (one batched fit: cheap beside the asking)."""
TEXT_CHECK = 16
"""Prompts also answered in free text (log-prob versus text agreement)."""
SHOWN = ("n_outcomes", "pairs_trained", "prompts_asked", "requests", "samples", "position_bias", "mean_choice_mass",
         "low_mass_share", "refusal_rate", "text_agreement", "text_refusal", "text_checked")
"""The run's numbers a report shows beside the ranking."""


@dataclass
class RankingResult:
    """The utilities (`fit.utilities`, sorted best first) and the numbers of the run behind them."""

    fit: UtilityResult

    @property
    def utilities(self) -> pd.DataFrame:
        return self.fit.utilities

    def by_category(self) -> pd.DataFrame:
        return (self.utilities.groupby("category")["mean"].agg(["mean", "count"])
                .sort_values("mean", ascending=False)
                .rename(columns={"mean": "mean utility", "count": "outcomes"}))

    def to_frame(self) -> pd.DataFrame:
        return self.utilities

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every outcome, best first (the report's sortable, searchable table), and the category means."""
        shown = [c for c in ("id", "text", "category", "mean", "mean_lo", "mean_hi", "mean_sd", "variance")
                 if c in self.utilities.columns]
        ranked = self.utilities.sort_values("mean", ascending=False)[shown]
        return {"All outcomes": ranked.assign(rank=range(1, len(ranked) + 1)).set_index("rank"),
                "By category": self.by_category()}

    def to_dict(self) -> dict:
        return {k: self.fit.metrics.get(k) for k in SHOWN}


def run(model: StoredModel, *, outcomes: str | Path | Sequence[Outcome] = "quick", budget: int | None = None,
        seed: int = 0, holdout_pairs: float = 0.03, text_check: int = TEXT_CHECK, n_boot: int = N_BOOT_UTILITIES,
        template: str | Template = DEFAULT_TEMPLATE, system: str | None = None) -> RankingResult:
    """Elicit and fit utilities over `outcomes` (`budget` pairs, default the reference's 2·N·log₂N); each
    outcome's interval and standard error come from `n_boot` refits on resampled pairs (0: none)."""
    return RankingResult(elicit_utilities(model, resolve_outcomes(outcomes), budget=budget, seed=seed,
                                          holdout_pairs=holdout_pairs, text_check=text_check, template=template,
                                          system=system, bootstrap_samples=n_boot))


def figure(result: RankingResult) -> Figure:
    """Mean utility per category, best at the top."""
    by_category = result.by_category()
    fig, ax = new_figure(6.4, max(3.0, 0.22 * len(by_category)))
    ax.barh(by_category.index[::-1], by_category["mean utility"][::-1])
    ax.set_xlabel("mean utility (z-scored)")
    return fig


ANALYSIS = Analysis(
    name="utilities", title="Utility ranking",
    question="Which outcomes does the model prefer, and by how much?",
    budget="pairs of outcomes (each asked in both orders)", run=run, figure=figure,
    options=(OUTCOMES_OPT, BUDGET_OPT, HOLDOUT_PAIRS_OPT,
             Option("text_check", int, "prompts also answered in free text (log-prob vs text agreement)"),
             N_BOOT_OPT, TEMPLATE_OPT),
    intro="Fitted Thurstonian utilities over the outcome set (mean 0, standard deviation 1).",
    caption="Mean utility by category",
    columns={
        "rank": "1 = the most preferred outcome",
        "mean_lo": "lower end of the utility's 95 % interval (refits on resampled pairs)",
        "mean_hi": "upper end of the utility's 95 % interval",
        "mean_sd": "bootstrap standard error of the utility (what `valuelab diff` tests a shift against)",
        "variance": "the Thurstonian variance of the outcome's utility (how unsure its placement is)",
        "mean utility": "mean of the category's outcome utilities",
        "outcomes": "outcomes in the category",
    },
    facts=("n_outcomes", "pairs_trained"),
)
