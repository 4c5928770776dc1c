"""Expected utility with implicit lotteries: uncertain events whose chances the model must infer itself.

Each event (e.g. "a fair die is rolled and you are paid $100 a pip") has mutually exclusive, exhaustive
sub-outcomes with known chances, never stated to the model as numbers. Events and sub-outcomes are fitted
together, and U(event) is compared with Σ pᵢ·U(sub-outcomeᵢ) by the same metrics as explicit lotteries
(paper Fig. 46; emergent-values §6.4). The event set is ours, `valuelab/data/implicit_lotteries/events.yaml`.
The reference appends its 510 outcomes as background; `background="core"` does the same, while the default
fits the events alone, which is enough for a consistency test and far cheaper.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from valuelab.analyses import BUDGET_OPT, N_BOOT_OPT, Analysis, Option, Reading
from valuelab.analyses.common import N_BOOT, check_budget, resolve_outcomes
from valuelab.analyses.expected_utility import ExpectedUtilityResult, Lottery, analyze, figure
from valuelab.elicit.outcomes import Outcome
from valuelab.fit.utilities import elicit_utilities
from valuelab.items.files import item_error
from valuelab.prompts import DEFAULT_TEMPLATE, Template
from valuelab.store import StoredModel
from valuelab.yamlfile import YamlMap, read_yaml

BASES = ("chance", "base-rate")
EVENT_FIELDS = {"id", "basis", "text", "outcomes"}
OUTCOME_FIELDS = {"text", "p"}
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")

__all__ = ["Event", "ExpectedUtilityResult", "analyze", "builtin_events", "figure", "load_events", "run"]


@dataclass(frozen=True)
class Event:
    """An uncertain event, its sub-outcomes (ids `<event id>.<k>`) and their chances."""

    id: str
    text: str
    basis: str
    outcomes: tuple[Outcome, ...]
    probabilities: tuple[float, ...]
    line: int

    def lottery(self) -> Lottery:
        return Lottery(self.id, self.text, tuple(o.id for o in self.outcomes), self.probabilities)


def builtin_events() -> Path:
    return Path(str(files("valuelab") / "data" / "implicit_lotteries" / "events.yaml"))


def _chance(value: Any, fail) -> Fraction:
    """A probability written as a number or an exact fraction "a/b"."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        p = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        fail(f"expected a number or a fraction like 1/6, got {value!r}")
    if not 0 < p < 1:
        fail(f"a sub-outcome's chance must be strictly between 0 and 1, got {value!r}")
    return p


def load_events(path: str | Path | None = None) -> list[Event]:
    """Read and validate an events file (default: the built-in set); errors name the file, line and field."""
    path = Path(path) if path is not None else builtin_events()
    file = str(path)
    data = read_yaml(path)

    def fail(message: str, node: Any, field: str) -> NoReturn:
        raise item_error(message, file, node, field)

    if not isinstance(data, dict) or not isinstance(data.get("events"), list) or not data["events"]:
        fail("the file must be a mapping with a non-empty list under `events`", data, "events")
    events: list[Event] = []
    first_line: dict[str, int] = {}
    texts: dict[str, int] = {}

    def check_text(node: YamlMap) -> None:
        """Non-empty, and unique over all events and sub-outcomes: each is a separate item to the model."""
        text = node["text"]
        if not isinstance(text, str) or not text.strip():
            fail("text must be a non-empty string", node, "text")
        norm = " ".join(text.lower().split())
        if norm in texts:
            fail(f"text repeats the text on line {texts[norm]}", node, "text")
        texts[norm] = node.line

    for spec in data["events"]:
        if not isinstance(spec, dict):
            fail("each event must be a mapping with id, basis, text and outcomes", data, "events")
        for key in sorted(EVENT_FIELDS - set(spec)):
            fail("missing field", spec, key)
        for key in sorted(set(spec) - EVENT_FIELDS):
            fail(f"unknown field (allowed: {', '.join(sorted(EVENT_FIELDS))})", spec, key)
        eid = spec["id"]
        if not isinstance(eid, str) or not _ID.fullmatch(eid):
            fail(f"id must be lower-case letters, digits and hyphens, got {eid!r}", spec, "id")
        if eid in first_line:
            fail(f"duplicate id {eid!r} (first on line {first_line[eid]})", spec, "id")
        first_line[eid] = spec.line
        if spec["basis"] not in BASES:
            fail(f"basis must be one of {', '.join(BASES)}, got {spec['basis']!r}", spec, "basis")
        subs = spec["outcomes"]
        if not isinstance(subs, list) or len(subs) < 2 or not all(isinstance(s, dict) for s in subs):
            fail("outcomes must be a list of at least 2 mappings with text and p", spec, "outcomes")
        check_text(spec)
        chances = []
        for sub in subs:
            for key in sorted(OUTCOME_FIELDS - set(sub)):
                fail("missing field", sub, key)
            for key in sorted(set(sub) - OUTCOME_FIELDS):
                fail(f"unknown field (allowed: {', '.join(sorted(OUTCOME_FIELDS))})", sub, key)
            check_text(sub)
            chances.append(_chance(sub["p"], lambda m, sub=sub: fail(m, sub, "p")))
        total = sum(chances)
        if abs(total - 1) > Fraction(1, 10**9):
            fail(f"the chances of the sub-outcomes sum to {float(total):.6g}, not 1", spec, "outcomes")
        outcomes = tuple(Outcome(f"{eid}.{k + 1}", sub["text"].strip(), f"event:{eid}")
                         for k, sub in enumerate(subs))
        events.append(Event(eid, spec["text"].strip(), spec["basis"], outcomes,
                            tuple(float(p) for p in chances), spec.line))
    return events


def event_items(events: Sequence[Event]) -> list[Outcome]:
    """Everything to fit: each event and its sub-outcomes."""
    return [item for e in events for item in (Outcome(e.id, e.text, "event"), *e.outcomes)]


def run(model: StoredModel, *, events: str | Path | Sequence[Event] | None = None,
        budget: int | None = None, seed: int = 0, max_events: int | None = None,
        background: str | Path | Sequence[Outcome] | None = None, template: str | Template = DEFAULT_TEMPLATE,
        system: str | None = None, n_boot: int = N_BOOT, **utility_options) -> ExpectedUtilityResult:
    """Fit events, sub-outcomes (and any `background` outcomes) together; test U(event) = Σ p·U(sub-outcome).

    `max_events` takes a seeded subset of the events for a cheaper run; `budget` is training pairs (at least
    one per item; default 2·N·log₂N).
    """
    if isinstance(events, Sequence) and not isinstance(events, str):
        chosen = list(events)
    else:
        chosen = load_events(events)
    if max_events is not None and max_events < len(chosen):
        keep = np.sort(np.random.default_rng(seed).choice(len(chosen), max_events, replace=False))
        chosen = [chosen[k] for k in keep]
    items = event_items(chosen) + (resolve_outcomes(background) if background is not None else [])
    check_budget(budget, len(items), "pairs (one per event, sub-outcome and background outcome)")
    result = elicit_utilities(model, items, template=template, system=system, budget=budget, seed=seed,
                              **utility_options)
    out = analyze([e.lottery() for e in chosen], result.utilities, analysis="implicit-expected-utility",
                  n_boot=n_boot, seed=seed)
    out.lotteries["basis"] = [e.basis for e in chosen]
    return replace(out, calls=result.calls, budget=budget, n_items=len(items))


ANALYSIS = Analysis(
    name="implicit-expected-utility", title="Expected utility, implicit lotteries",
    question="Do uncertain events get the expected utility of their possible outcomes?",
    budget="pairs of events and outcomes (each asked in both orders)", run=run, figure=figure, headline="pearson_r",
    options=(BUDGET_OPT, N_BOOT_OPT, Option("max_events", int, "a seeded subset of this many events")),
    readings={
        "pearson_r": Reading("correlation", "higher",
                       "Correlation between an uncertain event's utility and the expected utility of its outcomes."),
    },
)
