"""The result contract every analysis returns and every renderer reads.

A `Metric` is one measured number with what it takes to read it: its interval, what a random responder
scores (and that score's range), its unit, which direction is better, and one sentence for a reader.
A `Result` is one analysis run: its metrics (the headline first), named tidy tables, figures, what the run
cost, notes, and the remaining numbers (`details`). `to_dict`/`from_dict` round-trip through results.json
(figures travel as their captions only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from valuelab.stats import Metric, frame_records, jsonable

__all__ = ["Metric", "Result"]

COLUMNS = {
    "metric": "name of the measured quantity",
    "value": "its value over everything asked",
    "ci_lo": "lower end of its 95 % percentile bootstrap interval",
    "ci_hi": "upper end of its 95 % percentile bootstrap interval",
    "baseline": "mean over simulated random responders asked the same questions",
    "baseline_lo": "2.5th percentile of the random responders",
    "baseline_hi": "97.5th percentile of the random responders",
    "id": "item id",
    "text": "outcome text as shown to the model",
    "category": "outcome category",
    "mean": "fitted Thurstonian mean utility (z-scored over the outcome set)",
    "n": "items behind the row",
    "position_bias": "lean toward the option shown first: +0.5 always first, -0.5 always second",
    "mass": "probability the model put on the answer labels at all",
}
"""What the columns every analysis shares mean; an analysis declares its own in `Analysis.columns`."""


@dataclass
class Result:
    """One analysis run, in the shape every renderer and script reads.

    `tables` maps a name to a tidy frame whose columns `columns[name]` documents; `cost` holds prompts asked
    and reused, tokens and seconds; `details` holds every other number of the run (JSON-ready); `options` the
    options it ran with. `native` is the analysis's own typed result, for notebooks (not serialised)."""

    analysis: str
    title: str
    metrics: list[Metric]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    figures: list[tuple[str, Any]] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    items: pd.DataFrame | None = None
    """One row per item the metrics rest on (dilemma, survey item), for `Analysis.restat` (paired diffs)."""
    native: Any = field(default=None, repr=False, compare=False)

    @property
    def headline(self) -> Metric | None:
        return self.metrics[0] if self.metrics else None

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{self.analysis} has no metric {name!r}; it has {', '.join(m.name for m in self.metrics)}")

    def to_frame(self) -> pd.DataFrame:
        """The metrics, one row each, headline first."""
        return pd.DataFrame([m.row() for m in self.metrics],
                            columns=["metric", "value", "ci_lo", "ci_hi", "baseline", "baseline_lo", "baseline_hi"])

    def to_dict(self) -> dict:
        return {"analysis": self.analysis, "title": self.title,
                "headline": self.headline.name if self.headline else None,
                "metrics": [jsonable(m.to_dict()) for m in self.metrics],
                "tables": {name: frame_records(frame) for name, frame in self.tables.items()},
                "columns": self.columns, "figures": [caption for caption, _ in self.figures],
                "cost": jsonable(self.cost), "notes": list(self.notes), "details": jsonable(self.details),
                "options": jsonable(self.options),
                "items": None if self.items is None else frame_records(self.items)}

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        """A result read back from results.json (figures come back as captions without a drawing)."""
        known = {f.name for f in fields(cls)}
        return cls(analysis=data["analysis"], title=data["title"],
                   metrics=[Metric.from_dict(m) for m in data.get("metrics", [])],
                   tables={name: pd.DataFrame.from_records(rows) for name, rows in data.get("tables", {}).items()},
                   columns=data.get("columns", {}), figures=[(c, None) for c in data.get("figures", [])],
                   items=None if data.get("items") is None else pd.DataFrame.from_records(data["items"]),
                   **{k: data[k] for k in ("cost", "notes", "details", "options") if k in data and k in known})
