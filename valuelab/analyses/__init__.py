"""Analyses of elicited preferences, one module each, and the one registry built from their declarations.

Each analysis module ends with a declaration, `ANALYSIS = Analysis(...)`: its name, title, the question it
asks, what its budget counts, the options it takes, its headline metric and how to read its metrics, and its
`run(model, **options)` and `figure(native)` functions. `REGISTRY` below names the module of each analysis,
so listing them imports nothing; `get(name)` imports one. `run_analysis` runs one through the store and
returns the shared `valuelab.result.Result`; `valuelab audit`, `valuelab analyze` and `valuelab estimate`
all go through it.

Adding an analysis is one new module with its declaration plus one line in `REGISTRY` (docs/CONTRIBUTING.md).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from valuelab.errors import InputError
from valuelab.models import keyword_options, unknown_options

REGISTRY: dict[str, str] = {
    "utilities": "valuelab.analyses.utilities",
    "accuracy": "valuelab.analyses.accuracy",
    "completeness": "valuelab.analyses.completeness",
    "transitivity": "valuelab.analyses.transitivity",
    "expected-utility": "valuelab.analyses.expected_utility",
    "implicit-expected-utility": "valuelab.analyses.implicit_eu",
    "convergence": "valuelab.analyses.convergence",
    "exchange-rates": "valuelab.analyses.exchange_rates",
    "time-discounting": "valuelab.analyses.time_discounting",
    "risk-attitudes": "valuelab.analyses.risk_attitudes",
    "instrumental-values": "valuelab.analyses.instrumental_values",
    "utility-maximization": "valuelab.analyses.utility_maximization",
    "power-seeking": "valuelab.analyses.power_seeking",
    "corrigibility": "valuelab.analyses.corrigibility",
    "political-values": "valuelab.analyses.political_values",
    "template-spread": "valuelab.analyses.template_spread",
    "dilemmas": "valuelab.analyses.dilemmas",
    "survey": "valuelab.analyses.surveys",
}
"""Analysis name → the module that declares it (`ANALYSIS` at its end)."""


@dataclass(frozen=True)
class Option:
    """One option an analysis takes, as the command line shows it (`--name-with-dashes`)."""

    name: str
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    """Given more than once on the command line, collected into a list."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Reading:
    """How to read one metric: its unit, which direction is better, one sentence for a non-specialist."""

    unit: str = ""
    better: str = "neither"
    how_to_read: str = ""


# Options several analyses share, declared once.
OUTCOMES_OPT = Option("outcomes", str, "outcome set: quick, core or a YAML/JSONL/CSV file")
BUDGET_OPT = Option("budget", int, "prompts budget; the analysis says what it counts")
HOLDOUT_PAIRS_OPT = Option("holdout_pairs", float, "share of asked pairs held out of the fit to score it")
N_BOOT_OPT = Option("n_boot", int, "bootstrap resamples per interval")
LIMIT_OPT = Option("limit", int, "a seeded subset of this many items")
TEMPLATE_OPT = Option("template", str, "prompt template name")


@dataclass(frozen=True)
class Analysis:
    """The declaration of one analysis.

    `budget` says what the `budget` option counts (pairs, triads, conditions, ...); `options` are those the
    command line offers (the Python API also takes any keyword `run` accepts, such as data frames);
    `headline` names the metric shown first; `readings` say how to read each metric by name."""

    name: str
    title: str
    question: str
    budget: str
    run: Callable[..., Any]
    figure: Callable[[Any], Any]
    headline: str | None = None
    options: tuple[Option, ...] = ()
    readings: Mapping[str, Reading] = field(default_factory=dict)
    intro: str = ""
    """The report section's opening paragraph (default: the first paragraph of the module's docstring)."""
    caption: str = ""
    """The figure's caption (default: the title)."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """What the columns of its tables mean, beyond the shared ones (`valuelab.result.COLUMNS`)."""
    facts: tuple[str, ...] = ()
    """Numbers of its details the report shows beside the metrics (default: the `n_*` counts)."""
    restat: Callable[[Any, Mapping[str, Any], Any], dict[str, float]] | None = None
    """`restat(items, options, rng)`: its metric values recomputed from `Result.items` (one row per item:
    dilemma, survey item), on one bootstrap resample of them when `rng` is a generator. Two runs' items with
    the same ids in the same order and generators in the same state draw the same resample: that is how
    `valuelab diff` pairs the bootstrap of a change."""

    def parameters(self) -> set[str]:
        """Keyword options `run` accepts ('*' when it takes any)."""
        return keyword_options(self.run)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Refuse, in one line, options this analysis does not take."""
        unknown = unknown_options(self.run, options)
        if unknown:
            offered = ", ".join(o.flag for o in self.options) or "none"
            raise InputError(f"analysis {self.name!r} takes no option {', '.join(unknown)} "
                             f"(its options: {offered})")


def get(name: str) -> Analysis:
    """The declaration of analysis `name` (imports its module)."""
    if name not in REGISTRY:
        raise InputError(f"unknown analysis {name!r}; choose one of: {', '.join(REGISTRY)}")
    declared = importlib.import_module(REGISTRY[name]).ANALYSIS
    if declared.name != name:
        raise RuntimeError(f"{REGISTRY[name]} declares {declared.name!r}, registered as {name!r}")
    return declared


def list_analyses() -> list[Analysis]:
    """Every declaration, in registry order."""
    return [get(name) for name in REGISTRY]


def to_result(spec: Analysis, native: Any, *, options: Mapping[str, Any] | None = None,
              cost: Mapping[str, Any] | None = None, title: str | None = None) -> Any:
    """The shared `Result` of one run: its metric dicts become `Metric`s (headline first) with their readings,
    its table and figure are kept, every other number goes to `details`."""
    from valuelab.figures import styled  # matplotlib and scipy: imported on first use, not to list names
    from valuelab.result import COLUMNS, Metric, Result
    from valuelab.stats import display_frame

    numbers = native.to_dict()
    metrics = [Metric.from_dict(v).described(name=k, **vars(spec.readings.get(k, Reading())))
               for k, v in numbers.items() if isinstance(v, Mapping) and "value" in v and "ci" in v]
    metrics.sort(key=lambda m: m.name != spec.headline)  # stable: the headline first, the rest in order
    skip = {m.name for m in metrics} | {"analysis", "headline", "notes"}
    with styled():
        figure = spec.figure(native)
    title = title or spec.title
    tables = native.tables() if hasattr(native, "tables") else {"Results": native.to_frame()}
    items = native.items() if hasattr(native, "items") else None
    glossary = {**COLUMNS, **spec.columns}
    columns = {name: {c: glossary.get(str(c), "") for c in display_frame(frame).columns}
               for name, frame in tables.items()}
    return Result(spec.name, title, metrics, tables=tables, columns=columns,
                  figures=[(spec.caption or title, figure)] if figure is not None else [], cost=dict(cost or {}),
                  notes=list(numbers.get("notes", [])), details={k: v for k, v in numbers.items() if k not in skip},
                  options=dict(options or {}), items=items, native=native)


def run_analysis(name: str, model: Any, *, title: str | None = None, **options) -> Any:
    """Run analysis `name` on `model` (a `StoredModel`) and return its `Result`, cost included.

    >>> result = run_analysis("transitivity", model, outcomes="quick", budget=20)
    >>> result.headline.value, result.to_frame()
    """
    spec = get(name)
    spec.check_options(options)
    before, started = model.counts.copy(), time.time()
    native = spec.run(model, **options)
    return to_result(spec, native, options=options, cost=model.counts.cost_since(before, started), title=title)
