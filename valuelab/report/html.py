"""The report as one standalone HTML page: an executive summary, one short section per analysis, an appendix.

Jinja2 autoescapes every value; the only markup passed through unescaped is figure SVG, which
`figures.to_svg` has parsed, checked and re-serialised. A Content-Security-Policy forbids any load from
outside the page and every script but the page's own few lines (allowed by their hash), which make the
utility table sortable and searchable; with scripts off the page reads the same. Every string is also
passed through `scrub_text`, so nothing shaped like an API key is printed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib.metadata
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from valuelab.report.figures import to_svg
from valuelab.report.model import Report, Section, scrub, scrub_text
from valuelab.report.summary import LARGE, verdict, verdict_sentences, what_was_asked
from valuelab.stats import Metric, display_frame

MAX_TABLE_ROWS = 100
"""Longer tables are cut in the page (with a note); tables/NAME.csv and results.json keep every row."""
KEY_NUMBERS = 8
"""Metrics a section shows in the body; the rest are in results.json."""
UNDETERMINED = "undetermined"
PROMPT_CHARS = 1500
WIDE_COLUMNS = 8
"""Appendix tables with more columns than this get a landscape page of their own in the PDF."""


def fmt(value: Any) -> str:
    """A number for a reader: three decimals for proportions and scores, thousands separators for counts,
    "undetermined" for a number too large to be a measurement."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return "—"
        if not math.isfinite(value) or abs(value) >= LARGE:
            return UNDETERMINED
        if value.is_integer() and 10 <= abs(value):  # a count that went through a float column
            return f"{value:,.0f}".replace("-", "−")
        if abs(value) < 1e-12:  # rounding noise of a quantity that is 0 (a bias that cancelled out)
            return "0.000"
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.3f}".replace("-", "−")
        return f"{value:.2e}".replace("-", "−")
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def fmt_interval(lo: Any, hi: Any) -> str:
    """"[lo, hi]"; empty when either end is missing; "undetermined" when an end is unbounded."""
    if lo is None or hi is None or _is_nan(lo) or _is_nan(hi):
        return ""
    if UNDETERMINED in (fmt(lo), fmt(hi)):
        return UNDETERMINED
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


WORDS = {"heldout": "held-out", "log10": "log₁₀", "mae": "mean abs. error", "r2": "R²", "z": "(z)",
         "top1": "top-1", "top3": "top-3", "top5": "top-5", "aic": "AIC", "smn": "selected − neglected"}


def label(name: str) -> str:
    """A metric or column name in words: underscores and dashes become spaces, a few abbreviations spelled out."""
    words = [WORDS.get(w, w) for w in re.split(r"[_\s]+", str(name).replace("-", " ")) if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


@dataclass
class MetricRow:
    name: str
    value: str
    interval: str
    baseline: str
    verdict: str
    verdict_class: str
    how_to_read: str
    reason: str = ""
    baseline_mean: str = ""


def metric_row(metric: Metric, name: str | None = None, kind: str = "audit") -> MetricRow:
    code, text, reason = verdict(metric, kind)
    base = "" if _is_nan(metric.baseline) else fmt(metric.baseline)
    base_range = fmt_interval(metric.baseline_lo, metric.baseline_hi)
    if base and base_range:
        base += ", range undetermined" if base_range == UNDETERMINED else f" {base_range}"
    value = UNDETERMINED if code == "undetermined" and fmt(metric.value) in ("—", UNDETERMINED) else fmt(metric.value)
    return MetricRow(name or label(metric.name), value, fmt_interval(metric.lo, metric.hi) or "—", base or "—",
                     text, code, metric.how_to_read, reason,
                     baseline_mean="—" if _is_nan(metric.baseline) else fmt(metric.baseline))


@dataclass
class TableView:
    anchor: str
    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    legend: list[tuple[str, str]] = field(default_factory=list)
    csv: str = ""
    note: str = ""
    wide: bool = False
    sortable: bool = False
    number: str = ""
    print_rows: int = MAX_TABLE_ROWS


def interval_pairs(columns: list[str]) -> dict[str, tuple[str, str]]:
    """Pairs of columns that are the two ends of one interval: `x_lo`/`x_hi` (and bare `lo`/`hi`), by the
    name of the merged column."""
    pairs = {}
    for column in columns:
        if column == "lo" or column.endswith("_lo"):
            stem = column[:-2]
            if f"{stem}hi" in columns:
                stem_name = stem.rstrip("_").replace("_", " ")
                if stem_name in ("", "ci"):
                    name = "interval"
                else:
                    name = f"{stem_name} range" if "baseline" in stem_name else f"{stem_name} interval"
                pairs[name] = (column, f"{stem}hi")
    return pairs


def table_view(caption: str, frame: pd.DataFrame, *, anchor: str = "", legend: Mapping[str, str] | None = None,
               csv: str = "", max_rows: int = MAX_TABLE_ROWS, sortable: bool = False) -> TableView:
    """A table for the page: the two ends of an interval in one cell ("[lo, hi]"), headers in words
    (underscores become spaces, so they wrap between words), every documented column in the legend, the
    first `max_rows` rows. tables/NAME.csv keeps the columns as they are."""
    frame = display_frame(frame)
    docs = dict(legend or {})
    columns = [str(c) for c in frame.columns]
    pairs = interval_pairs(columns)
    ends = {end: name for name, pair in pairs.items() for end in pair}
    cells: dict[str, list[str]] = {}
    numeric: dict[str, bool] = {}
    # a sortable table keeps every row on screen (search and sort need them); print stops at max_rows
    shown = frame if sortable else frame.head(max_rows)
    for column in columns:
        if column in ends:
            name = ends[column]
            if name not in cells:
                lo, hi = pairs[name]
                cells[name] = [fmt_interval(a, b) or "—" for a, b in zip(shown[lo], shown[hi], strict=True)]
                numeric[name] = True
                if docs.get(lo):
                    docs[name] = f"{docs[lo]} (lower, upper)".replace("lower end of ", "")
            continue
        cells[column] = [fmt(v) for v in shown[column]]
        numeric[column] = (pd.api.types.is_numeric_dtype(frame[column])
                           and not pd.api.types.is_bool_dtype(frame[column]))
    names = list(cells)
    rows = [list(row) for row in zip(*(cells[n] for n in names), strict=True)] if len(shown) else []
    where = f"tables/{csv}" if csv else "results.json"
    note = f"Showing {max_rows} of {len(frame):,} rows; all rows are in {where}." if len(frame) > max_rows else ""
    if sortable and note:
        note = f"The printed report shows the first {max_rows} of {len(frame):,} rows; all rows are in {where}."
    return TableView(anchor, caption, [n.replace("_", " ") for n in names], rows, [numeric[n] for n in names],
                     [(n.replace("_", " "), docs[n]) for n in names if docs.get(n)],
                     csv, note, wide=len(names) > WIDE_COLUMNS, sortable=sortable, print_rows=max_rows)


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
    ours = {m.name: m for m in section.metrics}
    rows: list[PublishedRow] = []
    metrics = frame["metric"].tolist() if "metric" in frame else [""] * len(frame)
    for metric in dict.fromkeys(metrics):
        mine = ours.get(metric)
        value = mine.value if mine is not None else section.details.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append(PublishedRow(label(metric), f"{model_name} (this audit)", fmt(value), "", ours=True))
        for record, m in zip(frame.to_dict("records"), metrics, strict=True):
            if m == metric:
                rows.append(PublishedRow(label(metric), str(record.get("model", "")), fmt(record.get("value")),
                                         str(record.get("source", ""))))
    return rows


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "table"


def anchor(key: str) -> str:
    return "sec-" + slug(key)


def csv_name(section: Section, table: str) -> str:
    """tables/NAME.csv beside the report: the section key and the table's name."""
    return f"{slug(section.key)}--{slug(table)}.csv"


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each on one line."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text or "") if p.strip()]


def appendix_tables(section: Section) -> list[tuple[str, pd.DataFrame]]:
    """The section's tables worth an appendix entry: a table that only repeats the metrics shown in the body
    (metric, value, interval, baseline) is left out."""
    repeated = {"metric", "value", "ci_lo", "ci_hi", "baseline", "baseline_lo", "baseline_hi"}
    return [(name, frame) for name, frame in section.tables
            if not (set(display_frame(frame).columns) <= repeated and "metric" in frame.columns)]


@dataclass
class SectionView:
    key: str
    anchor: str
    number: int
    title: str
    question: str
    paragraphs: list[str]
    prompt: str
    prompt_cut: bool
    metrics: list[MetricRow]
    facts: list[tuple[str, str]]
    figure: tuple[str, Markup, Figure] | None
    """(caption, inline SVG, the matplotlib figure)."""
    published: list[PublishedRow]
    notes: list[str]
    failed: str | None
    body_table: TableView | None
    tables: list[TableView]
    more_metrics: int = 0

    @property
    def readings(self) -> list[tuple[str, str]]:
        """How to read each metric shown, once per distinct sentence."""
        seen: dict[str, str] = {}
        for row in self.metrics:
            if row.how_to_read and row.how_to_read not in seen:
                seen[row.how_to_read] = row.name
        return [(name, text) for text, name in seen.items()]


def section_view(section: Section, number: int, model_name: str, *, svg: bool = True,
                 kind: str = "audit") -> SectionView:
    prompt = scrub_text(section.prompt or "")
    tables = [table_view(f"{section.title}: {name}", frame, anchor=f"{anchor(section.key)}-{slug(name)}",
                         legend=section.columns.get(name), csv=csv_name(section, name),
                         sortable=section.analysis == "utilities")
              for name, frame in appendix_tables(section)]
    for k, view in enumerate(tables, start=1):
        view.number = f"Table A{number}.{k}."
    body = None if section.body_table is None else table_view(*section.body_table, legend=section.columns.get(
        section.body_table[0]))
    figure = section.figures[0] if section.figures and section.figures[0][1] is not None else None
    return SectionView(
        key=section.key, anchor=anchor(section.key), number=number, title=section.title, question=section.question,
        paragraphs=paragraphs(section.intro), prompt=prompt[:PROMPT_CHARS], prompt_cut=len(prompt) > PROMPT_CHARS,
        metrics=[metric_row(m, kind=kind) for m in section.metrics[:KEY_NUMBERS]],
        facts=[(label(k), fmt(v)) for k, v in section.facts.items()],
        figure=None if figure is None else
        (figure[0], Markup(scrub_text(to_svg(figure[1]))) if svg else Markup(""), figure[1]),
        published=published_rows(section, model_name), notes=list(section.notes), failed=section.failed,
        body_table=body, tables=tables, more_metrics=max(len(section.metrics) - KEY_NUMBERS, 0))


def manifest_rows(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The scrubbed manifest as name/value rows: a nested mapping becomes one row of "key value" pairs, never a
    flattened path."""
    rows = []
    for key, value in scrub(dict(manifest)).items():
        if isinstance(value, Mapping):
            shown = "; ".join(f"{k} {fmt(v) if not isinstance(v, list | Mapping) else _inline(v)}"
                              for k, v in value.items() if v is not None)
        else:
            shown = _inline(value) if isinstance(value, list) else fmt(value)
        rows.append((label(key), shown or "—"))
    return rows


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_inline(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_inline(v) for v in value)
    return fmt(value)


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


def page_script() -> tuple[str, str]:
    """The page's one script (sortable, searchable tables) and its CSP hash."""
    script = environment().loader.get_source(environment(), "tables.js")[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return script, f"'sha256-{digest}'"


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML string."""
    written = report.manifest.get("written") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [section_view(s, k, report.model_name, kind=report.kind) for k, s in enumerate(report.sections, start=1)]
    appendix = [section_view(s, len(sections) + k, report.model_name, kind=report.kind)
                for k, s in enumerate(report.appendix, start=1)]
    script, script_hash = page_script()
    return environment().get_template("report.html.j2").render(
        report=report, sections=sections, appendix=appendix,
        asked=what_was_asked(report), verdicts=verdict_sentences(report),
        headline=[(s.title, anchor(s.key), metric_row(m, kind=report.kind)) for s, m in report.headline],
        manifest=manifest_rows(report.manifest), written=written, version=importlib.metadata.version("valuelab"),
        script=Markup(script), script_hash=Markup(script_hash),
    )


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
