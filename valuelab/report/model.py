"""What a report holds, independent of how it is drawn: one section per analysis, read from its `Result`.

The audit turns every stage's `Result` into a `Section` (`Section.from_result`) and gathers them into a
`Report`. The same object is written three ways (HTML, PDF, results.json), so the numbers a reader sees and
the numbers a script reads cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from valuelab.result import Result
from valuelab.stats import Metric, frame_records, jsonable, write_json

RESULTS_FORMAT = "valuelab-report/2"

# Shapes of common credentials: OpenAI/Anthropic-style `sk-...`, Hugging Face `hf_...`, GitHub tokens,
# AWS access key ids, Slack tokens, and bearer headers. A manifest is built without keys; this is a backstop.
_SECRET_TEXT = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{16,}|\bhf_[A-Za-z0-9]{20,}|\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bBearer\s+[A-Za-z0-9._~+/=\-]{16,}"
)
_SECRET_KEY = re.compile(
    r"(?:^|[_\-])(?:api[_\-]?key|secret|password|passwd|authorization|access[_\-]?token|auth[_\-]?token|token)$",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def scrub_text(text: str) -> str:
    """`text` with anything shaped like an API key replaced by [redacted]."""
    return _SECRET_TEXT.sub(REDACTED, text)


def scrub(value: Any) -> Any:
    """A copy of a nested structure with secret-named fields and key-shaped strings redacted."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v is not None else scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def first_paragraph(text: str | None) -> str:
    """A module docstring's first paragraph on one line: the intro of its report section."""
    return (text or "").strip().split("\n\n")[0].replace("\n", " ")


ROBUSTNESS = {
    "position_bias": "lean toward the option shown first: +0.5 always first, -0.5 always second",
    "mean_choice_mass": "mean probability the model put on the answer labels at all",
    "low_mass_share": "share of prompts with little probability on the labels",
    "refusal_rate": "share of answers that refused or answered off the labels",
    "text_agreement": "share of a subsample where the top label by log-probability is the answer written in "
                      "free text",
}
"""Answer-quality numbers a stage may report (top-level in its details or under `robustness`), and what each
means."""


@dataclass
class Section:
    """One analysis as the report shows it.

    The body shows the `question`, the `intro`, one example `prompt` as the model saw it, the `metrics` (headline
    first, at most `KEY_NUMBERS` of them), `facts` (plain numbers: counts, shares without an interval), the first
    figure, `published` reference values and the `notes` (caveats). `tables` go to the appendix and to
    `tables/NAME.csv`, with `columns` as their legend; `details` and `options` reach results.json only.
    `published` rows hold `model`, `value`, `source` and `metric` (the metric name it compares with)."""

    key: str
    title: str
    analysis: str = ""
    question: str = ""
    intro: str = ""
    prompt: str | None = None
    metrics: list[Metric] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    published: pd.DataFrame | None = None
    cost: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, float] = field(default_factory=dict)
    body_table: tuple[str, pd.DataFrame] | None = None
    """A narrow table shown in the body itself (the robustness overview); `tables` go to the appendix."""
    failed: str | None = None
    """Why the stage could not run (the section then shows only this and its cost)."""
    details: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    items: pd.DataFrame | None = None
    """The per-item data behind the metrics (results.json only), which `valuelab diff` resamples in pairs."""

    @classmethod
    def from_result(cls, key: str, result: Result, *, question: str = "", intro: str = "",
                    prompt: str | None = None, facts: Sequence[str] = (),
                    published: pd.DataFrame | None = None) -> Section:
        """A section read from an analysis's `Result` through the contract: its metrics, tables and their
        column documentation, figures, cost and notes; `facts` names the details shown as plain numbers
        (default: the counts, `n_*`, that say how many items stand behind the numbers)."""
        facts = facts or [k for k, v in result.details.items()
                          if k.startswith("n_") and k not in ("n_boot", "n_random") and isinstance(v, int)]
        return cls(key, result.title, analysis=result.analysis, question=question, intro=intro, prompt=prompt,
                   metrics=list(result.metrics),
                   facts={name: result.details[name] for name in facts if result.details.get(name) is not None},
                   figures=list(result.figures), tables=list(result.tables.items()), columns=dict(result.columns),
                   notes=list(result.notes), published=published, cost=dict(result.cost),
                   robustness=robustness_numbers(result.details), details=dict(result.details),
                   options=dict(result.options), items=result.items)

    @property
    def headline(self) -> Metric | None:
        return self.metrics[0] if self.metrics else None

    def to_results(self) -> dict:
        return {
            "key": self.key, "title": self.title, "analysis": self.analysis, "question": self.question,
            "intro": self.intro, "prompt": self.prompt,
            "metrics": [jsonable(m.to_dict()) for m in self.metrics], "facts": jsonable(self.facts),
            "tables": [{"name": name, "records": frame_records(frame)} for name, frame in self.tables],
            "columns": self.columns, "figures": [caption for caption, _ in self.figures],
            "notes": list(self.notes),
            "published": None if self.published is None else frame_records(self.published),
            "cost": jsonable(self.cost), "robustness": jsonable(self.robustness), "failed": self.failed,
            "body_table": None if self.body_table is None else
            {"name": self.body_table[0], "records": frame_records(self.body_table[1])},
            "details": jsonable(self.details), "options": jsonable(self.options),
            "items": None if self.items is None else frame_records(self.items),
        }


def robustness_numbers(details: Mapping[str, Any]) -> dict[str, float]:
    """Position bias, choice mass, refusals and text agreement from a result's details, wherever it keeps
    them (top level for utility stages, under `robustness` for dilemma sets and surveys)."""
    nested = details.get("robustness") if isinstance(details.get("robustness"), Mapping) else {}
    out = {}
    for name in ROBUSTNESS:
        value = details.get(name, nested.get(name))
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


@dataclass
class Report:
    """A whole audit (or comparison): its sections in order, what ran (`manifest`), and the `overview`
    paragraph the executive summary opens with. The headline is each section's first metric."""

    title: str
    model_name: str
    suite: str
    sections: list[Section] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    overview: str = ""
    appendix: list[Section] = field(default_factory=list)
    """Sections shown only in the appendix, after every body section's tables (the cost by stage)."""
    kind: str = "audit"
    """"audit", "comparison" or "diff": which executive summary the renderer writes."""
    summary: list[str] | None = None
    """The summary's sentences, when the builder writes them (a diff); else they are read from the headline."""

    @property
    def headline(self) -> list[tuple[Section, Metric]]:
        return [(s, s.headline) for s in self.sections if s.headline is not None and s.failed is None]

    def headline_frame(self) -> pd.DataFrame:
        """The headline as a DataFrame: one row per section (its first metric), interval and random baseline."""
        return pd.DataFrame([{"section": s.key, "title": s.title, **m.row()} for s, m in self.headline],
                            columns=["section", "title", "metric", "value", "ci_lo", "ci_hi", "baseline",
                                     "baseline_lo", "baseline_hi"])

    def to_results(self) -> dict:
        """Every number in the report, JSON-ready; the manifest is scrubbed of anything key-shaped."""
        return {
            "format": RESULTS_FORMAT, "title": self.title, "model": self.model_name, "suite": self.suite,
            "kind": self.kind, "overview": self.overview,
            "headline": [{"section": s.key, "title": s.title, **jsonable(m.to_dict())} for s, m in self.headline],
            "sections": [section.to_results() for section in self.sections + self.appendix],
            "manifest": jsonable(scrub(self.manifest)),
        }

    def write_results(self, path: str | Path) -> Path:
        """results.json, every string scrubbed of key-shaped text and every secret-named field redacted."""
        return write_json(path, scrub(self.to_results()))
