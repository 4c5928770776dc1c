"""The report as one standalone HTML page: summary first, then each section, then the manifest.

Jinja2 autoescapes every value; the only markup passed through unescaped is figure SVG, which
`figures.to_svg` has parsed, checked and re-serialised. A Content-Security-Policy forbids scripts and
any load from outside the page, so even a mistake upstream cannot run code or phone home. Every string
is also passed through `scrub_text`, so nothing shaped like an API key is printed.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from valuelab.report.figures import to_svg
from valuelab.report.model import Report, Section, scrub, scrub_text
from valuelab.stats import display_frame

MAX_TABLE_ROWS = 60
"""Longer tables are cut in the page (with a note); results.json keeps every row."""
MAX_LIST_ITEMS = 8


def fmt(value: Any) -> str:
    """A number for a reader: three decimals for proportions and scores, thousands separators for counts."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return "—" if math.isnan(value) else ("∞" if value > 0 else "−∞")
        if value.is_integer() and 10 <= abs(value) < 1e15:  # a count that went through a float column
            return f"{value:,.0f}".replace("-", "−")
        if value == 0 or 1e-3 <= abs(value) < 1e4:
            return f"{value:.3f}".replace("-", "−")
        return f"{value:.2e}".replace("-", "−")
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def fmt_interval(lo: Any, hi: Any) -> str:
    if lo is None or hi is None or _is_nan(lo) or _is_nan(hi):
        return ""
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, None


@dataclass
class NumberRow:
    name: str
    value: str
    interval: str = ""
    baseline: str = ""
    numeric: bool = True


def _is_metric(value: Any) -> bool:
    return isinstance(value, Mapping) and "value" in value and not isinstance(value["value"], Mapping)


def number_rows(numbers: Mapping[str, Any], prefix: str = "") -> list[NumberRow]:
    """Flatten a section's numbers: metric dicts become one row (value, interval, baseline), other dicts
    nest with ' › ', short lists are joined and long ones point to results.json."""
    rows: list[NumberRow] = []
    for key, value in numbers.items():
        name = f"{prefix}{str(key).replace('_', ' ')}"
        if _is_metric(value):
            lo, hi = _pair(value.get("ci"))
            if lo is None:
                lo, hi = value.get("lo"), value.get("hi")
            base = value.get("baseline")
            base_lo, base_hi = _pair(value.get("baseline_range"))
            baseline_text = "" if base is None else fmt(base)
            if baseline_text and fmt_interval(base_lo, base_hi):
                baseline_text += f" {fmt_interval(base_lo, base_hi)}"
            rows.append(NumberRow(name, fmt(value["value"]), fmt_interval(lo, hi), baseline_text))
        elif isinstance(value, Mapping):
            rows.extend(number_rows(value, prefix=f"{name} › "))
        elif isinstance(value, list | tuple | np.ndarray):
            items = list(value)
            shown = ", ".join(fmt(v) for v in items) if len(items) <= MAX_LIST_ITEMS else \
                f"{len(items)} values (all in results.json)"
            rows.append(NumberRow(name, shown or "—", numeric=False))
        else:
            numeric = value is None or isinstance(value, int | float | np.number)
            rows.append(NumberRow(name, fmt(value), numeric=numeric))
    return rows


@dataclass
class TableView:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    note: str = ""


def table_view(caption: str, frame: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> TableView:
    frame = display_frame(frame)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    rows = [[fmt(v) for v in row] for row in frame.head(max_rows).itertuples(index=False, name=None)]
    note = f"Showing {max_rows} of {len(frame):,} rows; all rows are in results.json." \
        if len(frame) > max_rows else ""
    return TableView(caption, [str(c) for c in frame.columns], rows, numeric, note)


@dataclass
class PublishedRow:
    metric: str
    model: str
    value: str
    source: str
    ours: bool = False


def published_rows(section: Section, model_name: str) -> list[PublishedRow]:
    """Reference figures from the literature, each metric group led by this audit's own number."""
    if section.published is None or section.published.empty:
        return []
    frame = section.published
    rows: list[PublishedRow] = []
    metrics = frame["metric"].tolist() if "metric" in frame else [""] * len(frame)
    for metric in dict.fromkeys(metrics):
        ours = section.numbers.get(metric) if metric else None
        if ours is not None:
            value = ours["value"] if _is_metric(ours) else ours
            rows.append(PublishedRow(metric.replace("_", " "), f"{model_name} (this audit)", fmt(value), "",
                                     ours=True))
        for record, m in zip(frame.to_dict("records"), metrics, strict=True):
            if m == metric:
                rows.append(PublishedRow(str(metric).replace("_", " "), str(record.get("model", "")),
                                         fmt(record.get("value")), str(record.get("source", ""))))
    return rows


@dataclass
class SectionView:
    key: str
    anchor: str
    title: str
    paragraphs: list[str]
    numbers: list[NumberRow]
    tables: list[TableView]
    figures: list[tuple[str, Markup]]
    notes: list[str]
    published: list[PublishedRow]

    @property
    def has_interval(self) -> bool:
        return any(r.interval for r in self.numbers)

    @property
    def has_baseline(self) -> bool:
        return any(r.baseline for r in self.numbers)


def anchor(key: str) -> str:
    return "sec-" + (re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-") or "section")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each on one line."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text or "") if p.strip()]


def section_view(section: Section, model_name: str) -> SectionView:
    return SectionView(
        key=section.key, anchor=anchor(section.key), title=section.title,
        paragraphs=paragraphs(section.intro), numbers=number_rows(section.numbers),
        tables=[table_view(caption, frame) for caption, frame in section.tables],
        figures=[(caption, Markup(scrub_text(to_svg(fig)))) for caption, fig in section.figures],
        notes=list(section.notes), published=published_rows(section, model_name),
    )


def headline_view(item: Mapping[str, Any]) -> dict[str, str]:
    return {"name": str(item.get("name", "")), "value": fmt(item.get("value")),
            "interval": fmt_interval(item.get("lo"), item.get("hi")),
            "baseline": "" if item.get("baseline") is None else fmt(item.get("baseline")),
            "how_to_read": str(item.get("how_to_read", ""))}


def manifest_rows(manifest: Mapping[str, Any]) -> list[NumberRow]:
    """The scrubbed manifest, flattened to name/value rows (long lists are kept whole here)."""
    return number_rows(_join_list(scrub(dict(manifest))))


def _join_list(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _join_list(v) for k, v in value.items()}
    return value


def _finalize(value: Any) -> Any:
    """Applied to every `{{ }}` before escaping: plain strings lose anything shaped like a key."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return scrub_text(value)
    return value


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("valuelab.report", "templates"),
        autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML string."""
    written = report.manifest.get("written") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return environment().get_template("report.html.j2").render(
        report=report,
        summary=section_view(report.summary, report.model_name),
        headline=[headline_view(item) for item in report.headline],
        sections=[section_view(s, report.model_name) for s in report.sections],
        manifest=manifest_rows(report.manifest),
        written=written, version=importlib.metadata.version("valuelab"),
    )


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
