"""What a report holds, independent of how it is drawn: sections of numbers, tables and figures.

Every analysis hands the renderer a `Section`; the audit gathers them into a `Report`. The same object
is written three ways (HTML, PDF, results.json), so the numbers a reader sees and the numbers a script
reads cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from valuelab.stats import frame_records, jsonable, write_json

RESULTS_FORMAT = "valuelab-report/1"

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


@dataclass
class Section:
    """One part of the report. `numbers` maps a name to a scalar, a string, or a metric dict
    (`value`, `ci` = [lo, hi], `baseline`, `baseline_range`, as `Metric.to_dict()` writes it).
    `published` holds reference figures from the literature (`model`, `value`, `source`, and optionally
    `metric`: the key in `numbers` it compares with)."""

    key: str
    title: str
    intro: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    published: pd.DataFrame | None = None

    def to_results(self) -> dict:
        return {
            "key": self.key, "title": self.title, "intro": self.intro,
            "numbers": jsonable(self.numbers),
            "tables": [{"name": name, "records": frame_records(frame)} for name, frame in self.tables],
            "figures": [caption for caption, _ in self.figures],
            "notes": list(self.notes),
            "published": None if self.published is None else frame_records(self.published),
        }


@dataclass
class Report:
    """A whole audit (or comparison). Each `headline` item is a dict with `name`, `value`, `lo`, `hi`,
    `baseline` (what a random responder scores) and `how_to_read` (one sentence for a non-specialist)."""

    title: str
    model_name: str
    suite: str
    summary: Section
    sections: list[Section] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    headline: list[dict[str, Any]] = field(default_factory=list)

    def to_results(self) -> dict:
        """Every number in the report, JSON-ready; the manifest is scrubbed of anything key-shaped."""
        return {
            "format": RESULTS_FORMAT, "title": self.title, "model": self.model_name, "suite": self.suite,
            "headline": jsonable(self.headline),
            "summary": self.summary.to_results(),
            "sections": [section.to_results() for section in self.sections],
            "manifest": jsonable(scrub(self.manifest)),
        }

    def write_results(self, path: str | Path) -> Path:
        """results.json, every string scrubbed of key-shaped text and every secret-named field redacted."""
        return write_json(path, scrub(self.to_results()))
