"""Audit suites: lists of analysis names with the options each runs with. `valuelab audit` runs a suite's plan,
`valuelab estimate` prices the same plan before anything is asked.

Budgets are what each analysis declares its budget to count (pairs, triads, conditions, statements); the quick
suite runs every single-model analysis at a small budget, sized so the embedded 135M model finishes on a
two-core CPU well inside ten minutes (and with 200 bootstrap resamples where an interval costs a refit per
resample, instead of the default 1,000); the others are sized for a GPU or an API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from valuelab.analyses import REGISTRY, get
from valuelab.errors import InputError


@dataclass(frozen=True)
class Stage:
    """One step of an audit: analysis `analysis` run with `options`; `key` names its report section (the
    analysis name unless one analysis runs twice, as dilemmas do per set), `title` overrides the analysis's."""

    analysis: str
    options: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    title: str | None = None

    @property
    def heading(self) -> str:
        """The stage's title, else its analysis's."""
        return self.title or get(self.analysis).title

    def __post_init__(self) -> None:
        if self.analysis not in REGISTRY:
            raise InputError(f"unknown analysis {self.analysis!r} in a suite")
        if not self.key:
            object.__setattr__(self, "key", self.analysis)


def dilemmas(set_name: str, **options) -> Stage:
    return Stage("dilemmas", {"set_name": set_name, **options}, f"dilemmas-{set_name}", f"Dilemmas ({set_name})")


def survey(instrument: str, title: str, **options) -> Stage:
    return Stage("survey", {"instrument": instrument, **options}, f"survey-{instrument}", title)


SUITES: dict[str, list[Stage]] = {
    "quick": [
        Stage("utilities", {"outcomes": "quick", "budget": 90, "holdout_pairs": 0.03}),
        Stage("accuracy", {"outcomes": "quick", "budget": 90, "holdout_pairs": 0.03}),
        Stage("completeness", {"outcomes": "quick", "budget": 90, "holdout_pairs": 0.03}),
        Stage("template-spread", {"outcomes": "quick", "budget": 90, "holdout_pairs": 0.03, "n_boot": 200}),
        Stage("transitivity", {"outcomes": "quick", "budget": 20}),
        Stage("expected-utility", {"outcomes": "quick", "budget": 80, "n_lotteries": 10, "holdout_pairs": 0.01}),
        Stage("implicit-expected-utility", {"max_events": 4, "budget": 40}),
        Stage("exchange-rates", {"n_groups": 3, "budget": 70, "holdout_pairs": 0.01, "n_boot": 200}),
        Stage("time-discounting", {"budget": 24, "n_boot": 200}),
        Stage("risk-attitudes", {"budget": 18, "rounds": 5, "n_boot": 200}),  # 6 lotteries a kind: 180 prompts
        Stage("corrigibility", {"budget": 12}),
        Stage("political-values", {"budget": 110, "holdout_pairs": 0.01}),
        Stage("instrumental-values", {"limit": 5, "budget": 40, "holdout_pairs": 0.03}),
        Stage("utility-maximization", {"limit": 3, "budget": 45, "holdout_pairs": 0.0}),  # ≤ 15 answers a question
        Stage("power-seeking", {"budget": 50, "holdout_pairs": 0.0}),
        dilemmas("everyday", limit=12, n_boot=200),
        dilemmas("high-stakes", limit=6, n_boot=200),
        survey("schwartz", "Schwartz values", n_boot=200),
        survey("mft", "Moral foundations", n_boot=200),
        survey("wvs", "Cultural map", n_boot=200),
    ],
    "standard": [
        Stage("utilities", {"outcomes": "core"}),
        Stage("accuracy", {"outcomes": "core"}),
        Stage("completeness", {"outcomes": "core"}),
        Stage("template-spread", {"outcomes": "core"}),
        Stage("transitivity", {"outcomes": "core", "budget": 300}),
        Stage("expected-utility", {"outcomes": "core"}),
        Stage("implicit-expected-utility"),
        Stage("exchange-rates"),
        Stage("time-discounting"),
        Stage("risk-attitudes"),
        Stage("instrumental-values"),
        Stage("utility-maximization"),
        Stage("power-seeking"),
        Stage("corrigibility"),
        Stage("political-values"),
        dilemmas("everyday"),
        dilemmas("high-stakes"),
        survey("schwartz", "Schwartz values"),
        survey("mft", "Moral foundations"),
        survey("wvs", "Cultural map"),
    ],
}
SUITES["full"] = [*SUITES["standard"],
                  Stage("exchange-rates", {"category": "species"}, "exchange-rates-species",
                        "Exchange rates (species)")]


def plan(suite_or_stages: str | Sequence[Stage], outcomes: str | None = None,
         only: Sequence[str] | None = None) -> list[Stage]:
    """The stages an audit runs, in order: a suite's (or the given) stages, those keyed in `only` if given,
    with `outcomes` replacing the outcome set of every stage that takes one."""
    if isinstance(suite_or_stages, str):
        if suite_or_stages not in SUITES:
            raise InputError(f"unknown suite {suite_or_stages!r}; choose one of {', '.join(SUITES)}", field="suite")
        suite_or_stages = SUITES[suite_or_stages]
    if only is not None:
        unknown = sorted(set(only) - {s.key for s in suite_or_stages})
        if unknown:
            raise InputError(f"no stage {', '.join(unknown)} in this suite; its stages: "
                             f"{', '.join(s.key for s in suite_or_stages)}", field="only")
    stages = [s for s in suite_or_stages if only is None or s.key in only or s.key == "utilities"]
    if outcomes:
        stages = [replace(s, options={**s.options, "outcomes": outcomes}) if "outcomes" in s.options else s
                  for s in stages]
    return stages
