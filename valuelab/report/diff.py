"""What changed between two audits of the same suite: `valuelab diff BEFORE AFTER`.

Three kinds of change, each with a 95 % interval and a flag that says whether it is distinguishable from none:

* **Measures.** Every measure both audits report. Where the analysis can recompute its measures from its
  items (`Analysis.restat`: dilemmas, survey items), the change is bootstrapped in pairs: each replicate draws
  one resample of the shared items and scores both audits on it (Efron & Tibshirani 1993, §15; the paired
  bootstrap of NLP significance testing, Koehn 2004), so item-to-item spread common to both runs cancels.
  Elsewhere the two runs are independent and their own percentile intervals combine as normal ones:
  se = (hi − lo) / (2·1.96) each, se of the change = √(se₁² + se₂²).
* **Outcome utilities.** Thurstonian utilities are defined up to scale and shift, so AFTER's are first mapped
  onto BEFORE's by a robust (Huber) regression over the shared outcomes: a few outcomes that really moved do not
  drag the alignment. Each outcome's shift is tested against the two bootstrap standard errors (z-test), and
  the p-values are corrected for the number of outcomes by Benjamini–Hochberg (1995) at a false discovery rate
  of 5 %. A category's shift is the mean shift of its outcomes, tested and corrected the same way.
* **Framework profiles** are the dilemma and survey measures (Schwartz higher-order values, foundations,
  cultural-map dimensions): measures above, drawn together.

`--fail-on` rules turn the diff into a gate for continuous integration (`parse_rule`, `broken_rules`).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.figure import Figure
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from valuelab.analyses import REGISTRY, get
from valuelab.errors import InputError
from valuelab.report.compare import Audit, load_audit
from valuelab.report.figures import PALETTE, new_figure, styled
from valuelab.report.model import Report, Section
from valuelab.report.output import write_report
from valuelab.stats import LEVEL, Z95, Metric, interval_se, jsonable, percentile_interval, write_json

DIFF_FORMAT = "valuelab-diff/1"
FDR = 0.05
"""False discovery rate at which outcomes and categories are flagged."""
N_BOOT = 1000
MOVED_MOST = 12
"""Rows of the "what moved most" table."""


# ---------------------------------------------------------------- reading the two runs


@dataclass
class Run:
    """One side of a diff: an audit folder, or a utilities CSV (then only outcomes are compared)."""

    name: str
    path: Path
    suite: str
    sections: dict[str, dict] = field(default_factory=dict)
    utilities: pd.DataFrame | None = None
    """id, text, category, mean, se: per-outcome utilities with their bootstrap standard error."""


def _utilities_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """id, text, category, mean, se from a utilities table; the se from `mean_sd`, else from the interval."""
    key = "id" if "id" in frame.columns else "item"
    missing = [c for c in (key, "mean") if c not in frame.columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r}; utilities need id and mean", file=source, line=1)
    if "mean_sd" in frame.columns:
        se = pd.to_numeric(frame["mean_sd"], errors="coerce")
    elif {"mean_lo", "mean_hi"} <= set(frame.columns):
        se = interval_se(pd.to_numeric(frame["mean_lo"], errors="coerce"),
                         pd.to_numeric(frame["mean_hi"], errors="coerce"))
    else:
        raise InputError("no per-outcome interval (mean_sd, or mean_lo and mean_hi): run the utilities again with "
                         "this valuelab (`--bootstrap N` for `valuelab utilities`; audits bootstrap by default)",
                         file=source, line=1)
    return pd.DataFrame({"id": frame[key].astype(str).to_numpy(),
                         "text": frame["text"].astype(str).to_numpy() if "text" in frame else frame[key].astype(str),
                         "category": frame["category"].astype(str).to_numpy() if "category" in frame else "",
                         "mean": pd.to_numeric(frame["mean"], errors="coerce").to_numpy(float),
                         "se": se.to_numpy(float)})


def run_from_sections(name: str, sections: Sequence[Section], suite: str = "") -> Run:
    """A run held in memory (sections not yet written), e.g. one method of `control evaluate`."""
    return Run(name, Path(name), suite, {s.key: s.to_results() for s in sections})


def load_run(path: str | Path) -> Run:
    """An audit folder (results.json) or a utilities CSV; errors name the file at fault."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"not a readable CSV ({exc})", file=str(path)) from None
        return Run(path.stem, path, "utilities", utilities=_utilities_frame(frame, str(path)))
    audit: Audit = load_audit(path)
    sections = {s["key"]: s for s in audit.results["sections"] if s.get("analysis") in REGISTRY}
    utilities = None
    ranked = sections.get("utilities")
    if ranked and not ranked.get("failed"):
        table = next((t["records"] for t in ranked.get("tables", []) if t.get("name") == "All outcomes"), None)
        if table:
            utilities = _utilities_frame(pd.DataFrame.from_records(table), str(path / "results.json"))
    return Run(audit.name, path, str(audit.results.get("suite")), sections, utilities)


# ---------------------------------------------------------------- measures


def _metrics(section: Mapping) -> dict[str, Metric]:
    return {m["name"]: Metric.from_dict(m) for m in section.get("metrics") or [] if m.get("name")}


def _items(section: Mapping, shared: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(section["items"])
    key = frame.columns[0]
    return frame.set_index(frame[key].astype(str)).loc[list(shared)].reset_index(drop=True)


def paired_changes(restat: Callable, before: Mapping, after: Mapping, *, n_boot: int = N_BOOT, seed: int = 0
                   ) -> tuple[dict[str, tuple[float, float, float]], int]:
    """{metric: (change, lo, hi)} over the items both runs share, and how many they share.

    Replicate r draws its resample from `default_rng([seed, r])` for both runs; with the shared items in the
    same order, both are scored on the same resample."""
    ids = [pd.DataFrame.from_records(s["items"]).iloc[:, 0].astype(str) for s in (before, after)]
    shared = sorted(set(ids[0]) & set(ids[1]))
    if len(shared) < 2:
        return {}, len(shared)
    b_items, a_items = _items(before, shared), _items(after, shared)
    b_opts, a_opts = before.get("options") or {}, after.get("options") or {}
    point_b, point_a = restat(b_items, b_opts, None), restat(a_items, a_opts, None)
    names = [k for k in point_b if k in point_a]
    draws = np.full((n_boot, len(names)), math.nan)
    for r in range(n_boot):
        b = restat(b_items, b_opts, np.random.default_rng([seed, r]))
        a = restat(a_items, a_opts, np.random.default_rng([seed, r]))
        draws[r] = [a.get(k, math.nan) - b.get(k, math.nan) for k in names]
    lo, hi = percentile_interval(draws, axis=0) if names else ([], [])
    return {k: (point_a[k] - point_b[k], float(lo[j]), float(hi[j])) for j, k in enumerate(names)}, len(shared)


def metric_changes(before: Run, after: Run, *, n_boot: int = N_BOOT, seed: int = 0,
                   restats: Mapping[str, Callable] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per measure both runs report: before, after, change, its interval, how it was computed, and
    whether it is distinguishable from no change. Also the notes on what could not be compared.

    A section is paired when its analysis has a `restat` (the registry's, or one given in `restats` by
    analysis name, as `control evaluate` gives its own) and both runs kept its items."""
    notes: list[str] = []
    redesigned = []
    rows = []
    for key in [k for k in before.sections if k in after.sections]:
        b_sec, a_sec = before.sections[key], after.sections[key]
        if b_sec.get("failed") or a_sec.get("failed"):
            notes.append(f"{b_sec.get('title', key)}: could not run in "
                         f"{'BEFORE' if b_sec.get('failed') else 'AFTER'}, so it is not compared.")
            continue
        analysis = b_sec.get("analysis", "")
        restat = (restats or {}).get(analysis) or (get(analysis).restat if analysis in REGISTRY else None)
        changed = {k: v for k, v in (b_sec.get("options") or {}).items() if (a_sec.get("options") or {}).get(k) != v}
        if changed:
            redesigned.append(f"{b_sec.get('title', key)} ({', '.join(sorted(changed))})")
        paired: dict[str, tuple[float, float, float]] = {}
        n_shared = None
        if restat is not None and b_sec.get("items") and a_sec.get("items"):
            paired, n_shared = paired_changes(restat, b_sec, a_sec, n_boot=n_boot, seed=seed)
            n_b, n_a = len(b_sec["items"]), len(a_sec["items"])
            if n_shared < 2:
                notes.append(f"{b_sec.get('title', key)}: the runs share {n_shared} of their items (BEFORE "
                             f"{n_b}, AFTER {n_a}), too few to pair; compared through their own intervals.")
            elif n_shared < max(n_b, n_a):
                notes.append(f"{b_sec.get('title', key)}: paired over the {n_shared} items both runs asked "
                             f"(BEFORE {n_b}, AFTER {n_a}).")
        b_metrics, a_metrics = _metrics(b_sec), _metrics(a_sec)
        for k, (name, b) in enumerate(b_metrics.items()):
            if name not in a_metrics:
                continue
            a = a_metrics[name]
            if name in paired:
                change, lo, hi = paired[name]
                method = "paired"
            else:
                change = a.value - b.value
                se = math.hypot(interval_se(a.lo, a.hi), interval_se(b.lo, b.hi))
                lo, hi = change - Z95 * se, change + Z95 * se
                method = "independent"
            determined = all(math.isfinite(v) and abs(v) < 1e15 for v in (change, lo, hi))
            rows.append({"section": key, "title": b_sec.get("title", key), "analysis": analysis,
                         "metric": name, "headline": k == 0, "before": b.value, "after": a.value,
                         "change": change, "ci_lo": lo, "ci_hi": hi,
                         "distinguishable": bool(determined and (lo > 0 or hi < 0)), "method": method,
                         "n_items": n_shared, "how_to_read": b.how_to_read})
    if redesigned:
        notes.append(f"Run with different options, so a change mixes the model's with the design's: "
                     f"{', '.join(redesigned)}.")
    for side, mine, theirs in (("BEFORE", before, after), ("AFTER", after, before)):
        only = [s.get("title", k) for k, s in mine.sections.items() if k not in theirs.sections]
        if only:
            notes.append(f"Only in {side}, so not compared: {', '.join(only)}.")
    columns = ["section", "title", "analysis", "metric", "headline", "before", "after", "change", "ci_lo", "ci_hi",
               "distinguishable", "method", "n_items", "how_to_read"]
    return pd.DataFrame(rows, columns=columns), notes


# ---------------------------------------------------------------- outcome utilities


def align(before: pd.Series, after: pd.Series) -> tuple[float, float]:
    """(shift, scale) with before ≈ shift + scale·after, by Huber's robust regression (statsmodels RLM)."""
    design = sm.add_constant(after.to_numpy(float))
    fit = sm.RLM(before.to_numpy(float), design, M=sm.robust.norms.HuberT()).fit()
    return float(fit.params[0]), float(fit.params[1])


def _tests(shift: np.ndarray, se: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        z = shift / se
    p = 2 * norm.sf(np.abs(z))
    q = np.full(len(p), math.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = multipletests(p[finite], alpha=FDR, method="fdr_bh")[1]
    return {"ci_lo": shift - Z95 * se, "ci_hi": shift + Z95 * se, "z": z, "p": p, "q": q,
            "flagged": np.nan_to_num(q, nan=1.0) <= FDR}


def outcome_shifts(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Per-outcome and per-category utility shifts after aligning AFTER's scale and shift onto BEFORE's, with
    Benjamini–Hochberg q-values; and the alignment (shift, scale, shared outcomes)."""
    merged = before.merge(after[["id", "mean", "se"]], on="id", suffixes=("_before", "_after"))
    if len(merged) < 3:
        raise InputError(f"the two runs share {len(merged)} outcomes; a utility diff needs at least 3 "
                         "(were they asked about the same outcome set?)")
    shift0, scale = align(merged["mean_before"], merged["mean_after"])
    aligned = shift0 + scale * merged["mean_after"].to_numpy(float)
    shift = aligned - merged["mean_before"].to_numpy(float)
    se = np.hypot(merged["se_before"].to_numpy(float), abs(scale) * merged["se_after"].to_numpy(float))
    outcomes = pd.DataFrame({"id": merged["id"], "text": merged["text"], "category": merged["category"],
                             "before": merged["mean_before"], "after": aligned, "shift": shift, "se": se,
                             **_tests(shift, se)})
    grouped = outcomes.groupby("category", sort=True)
    cat_shift = grouped["shift"].mean()
    cat_se = grouped["se"].apply(lambda s: math.sqrt(float((s**2).sum())) / len(s))
    categories = pd.DataFrame({"category": cat_shift.index, "outcomes": grouped.size().to_numpy(),
                               "shift": cat_shift.to_numpy(), "se": cat_se.to_numpy(),
                               **_tests(cat_shift.to_numpy(), cat_se.to_numpy())})
    alignment = {"shift": shift0, "scale": scale, "shared_outcomes": len(merged),
                 "only_before": int(len(set(before["id"]) - set(after["id"]))),
                 "only_after": int(len(set(after["id"]) - set(before["id"])))}
    return (outcomes.sort_values("p", kind="stable", ignore_index=True),
            categories.sort_values("p", kind="stable", ignore_index=True), alignment)


# ---------------------------------------------------------------- the diff


@dataclass
class Diff:
    """Every change between two runs (see the module docstring), as tables."""

    before: Run
    after: Run
    metrics: pd.DataFrame
    outcomes: pd.DataFrame | None = None
    categories: pd.DataFrame | None = None
    alignment: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metric(self, target: str) -> pd.Series:
        """The row of measure `SECTION.METRIC`."""
        section, _, name = target.partition(".")
        rows = self.metrics[(self.metrics["section"] == section) & (self.metrics["metric"] == name)]
        if rows.empty:
            raise KeyError(target)
        return rows.iloc[0]

    def moved_most(self, n: int = MOVED_MOST) -> pd.DataFrame:
        """The largest changes of every kind, flagged ones first, then by |change| / standard error."""
        rows = []
        for r in self.metrics.itertuples():
            se = interval_se(r.ci_lo, r.ci_hi)
            rows.append({"kind": "measure", "what": f"{r.title}: {r.metric.replace('_', ' ')}", "change": r.change,
                         "ci_lo": r.ci_lo, "ci_hi": r.ci_hi, "flagged": r.distinguishable,
                         "strength": abs(r.change) / se if se > 0 else math.nan})
        for kind, frame, label in (("outcome", self.outcomes, "text"), ("category", self.categories, "category")):
            if frame is not None:
                for r in frame.itertuples():
                    rows.append({"kind": kind, "what": getattr(r, label), "change": r.shift, "ci_lo": r.ci_lo,
                                 "ci_hi": r.ci_hi, "flagged": bool(r.flagged), "strength": abs(r.z)})
        frame = pd.DataFrame(rows, columns=["kind", "what", "change", "ci_lo", "ci_hi", "flagged", "strength"])
        frame = frame[np.isfinite(frame["strength"].astype(float)) | frame["flagged"]]
        return frame.sort_values(["flagged", "strength"], ascending=False, kind="stable").head(n).drop(
            columns="strength").reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """What a `--fail-on` rule over a whole kind counts."""
        return {"metrics.distinguishable": int(self.metrics["distinguishable"].sum()),
                "outcomes.flagged": 0 if self.outcomes is None else int(self.outcomes["flagged"].sum()),
                "categories.flagged": 0 if self.categories is None else int(self.categories["flagged"].sum())}

    def to_dict(self) -> dict:
        def records(frame: pd.DataFrame | None) -> list[dict] | None:
            return None if frame is None else frame.to_dict("records")

        return jsonable({
            "format": DIFF_FORMAT,
            "before": {"name": self.before.name, "path": str(self.before.path), "suite": self.before.suite},
            "after": {"name": self.after.name, "path": str(self.after.path), "suite": self.after.suite},
            "fdr": FDR, "level": LEVEL, "notes": self.notes, "counts": self.counts(),
            "metrics": records(self.metrics), "outcomes": records(self.outcomes),
            "categories": records(self.categories), "alignment": self.alignment,
            "moved_most": records(self.moved_most()),
        })


def diff_runs(before: str | Path | Run, after: str | Path | Run, *, n_boot: int = N_BOOT, seed: int = 0,
              restats: Mapping[str, Callable] | None = None) -> Diff:
    """Compare two audit folders (or utilities CSVs). Only what both hold is compared, and the notes say what
    was left out; runs that share nothing at all are an error naming both."""
    before = before if isinstance(before, Run) else load_run(before)
    after = after if isinstance(after, Run) else load_run(after)
    metrics, notes = metric_changes(before, after, n_boot=n_boot, seed=seed, restats=restats)
    if before.suite != after.suite:
        notes.insert(0, f"Different suites: BEFORE ran {before.suite!r}, AFTER {after.suite!r}; only what both "
                        "ran is compared.")
    outcomes = categories = None
    alignment: dict[str, float] = {}
    if before.utilities is not None and after.utilities is not None:
        outcomes, categories, alignment = outcome_shifts(before.utilities, after.utilities)
        if alignment["scale"] < 0.5:
            notes.append(f"AFTER's utilities barely follow BEFORE's (alignment scale ×{alignment['scale']:.2f}): "
                         "the runs rank the outcomes differently as a whole, so single outcomes' shifts say little.")
        if alignment["only_before"] or alignment["only_after"]:
            notes.append(f"Outcome utilities compared over the {alignment['shared_outcomes']} outcomes both runs "
                         f"fitted ({alignment['only_before']} only in BEFORE, {alignment['only_after']} only "
                         "in AFTER).")
    elif before.utilities is not None or after.utilities is not None:
        notes.append("Only one run fitted outcome utilities, so outcomes are not compared.")
    if metrics.empty and outcomes is None:
        raise InputError(f"nothing to compare: BEFORE ({before.path}, suite {before.suite!r}: "
                         f"{', '.join(before.sections) or 'no analyses'}) and AFTER ({after.path}, suite "
                         f"{after.suite!r}: {', '.join(after.sections) or 'no analyses'}) share no analysis")
    return Diff(before, after, metrics, outcomes, categories, alignment, notes)


# ---------------------------------------------------------------- rules for --fail-on

_RULE = re.compile(r"^\s*(?P<target>[A-Za-z0-9_.\-]+)\s*:\s*(?P<field>[a-z_]+)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
                   r"(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
METRIC_FIELDS = ("change", "abs_change", "before", "after", "ci_lo", "ci_hi", "distinguishable")
KIND_FIELDS = {"outcomes": ("flagged", "max_abs_shift"), "categories": ("flagged", "max_abs_shift"),
               "metrics": ("distinguishable",)}
RULE_HELP = ('a rule is "SECTION.METRIC: FIELD OP NUMBER" (FIELD one of ' + ", ".join(METRIC_FIELDS) + ') or '
             '"outcomes: flagged > 5", "categories: max_abs_shift > 0.5", "metrics: distinguishable > 0"; '
             "OP one of " + " ".join(OPERATORS))


@dataclass(frozen=True)
class Rule:
    text: str
    target: str
    field: str
    op: str
    threshold: float


def parse_rule(text: str) -> Rule:
    """One `--fail-on` rule; a malformed one is an InputError that quotes it."""
    match = _RULE.match(text)
    if not match:
        raise InputError(f"malformed --fail-on rule {text!r}: {RULE_HELP}", field="--fail-on")
    target, name = match["target"], match["field"]
    allowed = KIND_FIELDS.get(target, METRIC_FIELDS if "." in target else ())
    if not allowed:
        raise InputError(f"--fail-on rule {text!r}: {target!r} is neither SECTION.METRIC nor one of "
                         f"{', '.join(KIND_FIELDS)}", field="--fail-on")
    if name not in allowed:
        raise InputError(f"--fail-on rule {text!r}: no field {name!r} for {target!r}; use one of "
                         f"{', '.join(allowed)}", field="--fail-on")
    return Rule(text, target, name, match["op"], float(match["number"]))


def rule_value(rule: Rule, diff: Diff) -> float:
    """The number a rule compares; a measure the diff does not hold is an InputError listing what it holds."""
    if rule.target in ("outcomes", "categories"):
        frame = diff.outcomes if rule.target == "outcomes" else diff.categories
        if frame is None:
            raise InputError(f"--fail-on rule {rule.text!r}: these runs have no outcome utilities to compare",
                             field="--fail-on")
        return float(frame["flagged"].sum()) if rule.field == "flagged" else float(frame["shift"].abs().max())
    if rule.target == "metrics":
        return float(diff.metrics["distinguishable"].sum())
    try:
        row = diff.metric(rule.target)
    except KeyError:
        held = ", ".join(f"{s}.{m}" for s, m in zip(diff.metrics["section"], diff.metrics["metric"], strict=True))
        raise InputError(f"--fail-on rule {rule.text!r}: the diff has no measure {rule.target!r}; it has: "
                         f"{held or 'none'}", field="--fail-on") from None
    if rule.field == "abs_change":
        return abs(float(row["change"]))
    return float(row[rule.field])


def broken_rules(rules: Sequence[Rule], diff: Diff) -> list[str]:
    """One line per broken rule: the rule and the value that broke it. A value the runs leave undetermined
    breaks its rule too: a gate should not pass on a number nobody measured."""
    lines = []
    for rule in rules:
        value = rule_value(rule, diff)
        if math.isnan(value):
            lines.append(f"{rule.text}: {rule.target} {rule.field} is undetermined")
        elif OPERATORS[rule.op](value, rule.threshold):
            lines.append(f"{rule.text}: {rule.target} {rule.field} is {value:.4g}")
    return lines


# ---------------------------------------------------------------- the report


def _change_metric(row: Any) -> Metric:
    reading = "Change from BEFORE to AFTER with its 95 % interval (" + (
        "paired bootstrap over the shared items" if row["method"] == "paired" else
        "the two runs' intervals combined") + "); 0 is no change."
    return Metric(float(row["change"]), float(row["ci_lo"]), float(row["ci_hi"]), 0.0, 0.0, 0.0,
                  name=str(row["metric"]), how_to_read=reading)


def change_figure(frame: pd.DataFrame, label: str, title: str, limit: int = 12) -> Figure | None:
    """Changes with their intervals, one row each, flagged ones in colour; at most `limit` rows."""
    if frame.empty:
        return None
    frame = frame.head(limit)
    fig, ax = new_figure(6.4, 1.2 + 0.22 * len(frame))
    with styled():
        y = np.arange(len(frame))
        flagged = frame["flagged"].to_numpy(bool)
        err = np.abs(np.vstack([frame["change"] - frame["ci_lo"], frame["ci_hi"] - frame["change"]]))
        for mask, color, name in ((flagged, PALETTE[1], "distinguishable from no change"),
                                  (~flagged, "#9aa5b1", "not distinguishable")):
            if mask.any():
                ax.errorbar(frame["change"][mask], y[mask], xerr=np.nan_to_num(err[:, mask]), fmt="o", color=color,
                            capsize=2.5, markersize=4, label=name)
        ax.axvline(0, color="#52606d", lw=0.8)
        ax.set_yticks(y, [str(t)[:48] for t in frame[label]])
        ax.invert_yaxis()
        ax.set_xlabel("change, AFTER − BEFORE")
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=7.5, ncol=2)
    return fig


def shift_scatter(outcomes: pd.DataFrame) -> Figure:
    fig, ax = new_figure(5.2, 4.2)
    with styled():
        flagged = outcomes["flagged"].to_numpy(bool)
        ax.scatter(outcomes["before"][~flagged], outcomes["after"][~flagged], s=14, color="#9aa5b1",
                   label="not flagged")
        if flagged.any():
            ax.scatter(outcomes["before"][flagged], outcomes["after"][flagged], s=22, color=PALETTE[1],
                       label=f"flagged (FDR {FDR:.0%})")
        ends = [float(np.nanmin(outcomes[["before", "after"]])), float(np.nanmax(outcomes[["before", "after"]]))]
        ax.plot(ends, ends, color="#52606d", lw=0.8)
        ax.set_xlabel("utility BEFORE")
        ax.set_ylabel("utility AFTER (aligned)")
        ax.set_title("Outcome utilities, before and after", fontsize=10, loc="left")
        ax.legend(fontsize=7.5, loc="upper left")
    return fig


OUTCOME_COLUMNS = {
    "before": "utility in BEFORE (z-scored over its outcomes)",
    "after": "utility in AFTER, mapped onto BEFORE's scale and shift",
    "shift": "after − before",
    "se": "standard error of the shift (both runs' bootstrap standard errors)",
    "z": "shift / se", "p": "two-sided p-value of the z-test",
    "q": "Benjamini–Hochberg adjusted p-value over all outcomes (or categories)",
    "flagged": f"q ≤ {FDR}: the shift is unlikely to be noise",
    "outcomes": "outcomes in the category",
}
MEASURE_COLUMNS = {
    "measure": "the analysis's measure", "before": "its value in BEFORE", "after": "its value in AFTER",
    "change": "AFTER − BEFORE (its interval beside it)",
    "changed": "yes: the interval excludes 0",
    "method": "paired: bootstrap over the shared items; independent: the two runs' intervals combined",
    "kind": "measure, outcome or category", "what": "what moved",
}


def _measure_table(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"measure": frame["metric"].str.replace("_", " "), "before": frame["before"],
                         "after": frame["after"], "change": frame["change"], "change_lo": frame["ci_lo"],
                         "change_hi": frame["ci_hi"], "changed": np.where(frame["distinguishable"], "yes", "no"),
                         "method": frame["method"]})


def diff_sentences(diff: Diff, broken: Sequence[str] = ()) -> list[str]:
    """The summary's sentences, written from the numbers."""
    m = diff.metrics
    sentences = []
    if len(m):
        moved = m[m["distinguishable"]]
        names = [f"{r.title}: {r.metric.replace('_', ' ')} ({r.change:+.3g})" for r in moved.itertuples()]
        expected = 0.05 * len(m)
        sentences.append(
            f"{len(moved)} of {len(m)} measures changed by more than their 95 % interval allows"
            + (f": {'; '.join(names[:6])}{' …' if len(names) > 6 else ''}." if names else ".")
            + (f" About {expected:.1f} would by chance alone." if len(m) >= 10 else ""))
    if diff.outcomes is not None:
        n_flag = int(diff.outcomes["flagged"].sum())
        top = diff.outcomes[diff.outcomes["flagged"]].head(3)
        sentences.append(f"{n_flag} of {len(diff.outcomes)} outcomes moved at a false discovery rate of "
                         f"{FDR:.0%}" + (": " + "; ".join(f"“{t[:60]}” ({s:+.2f})" for t, s in
                                                            zip(top["text"], top["shift"], strict=True))
                                         if n_flag else "") + ".")
        cats = diff.categories[diff.categories["flagged"]]
        if len(cats):
            sentences.append("Categories that moved as a whole: " + ", ".join(
                f"{c} ({s:+.2f})" for c, s in zip(cats["category"], cats["shift"], strict=True)) + ".")
        a = diff.alignment
        sentences.append(f"AFTER's utilities were mapped onto BEFORE's scale (×{a['scale']:.3f}, "
                         f"{a['shift']:+.3f}) over {a['shared_outcomes']} shared outcomes.")
    sentences += list(diff.notes)
    if broken:
        sentences.append(f"{len(broken)} --fail-on rule(s) broken: " + "; ".join(broken) + ".")
    return sentences


def build_diff_report(diff: Diff, broken: Sequence[str] = ()) -> Report:
    """The diff as a Report, drawn by the audit report's HTML and PDF code: the summary (each analysis's
    headline change), what moved most, outcomes, categories, framework profiles, then every measure."""
    sections: list[Section] = []
    moved = diff.moved_most()
    if len(moved):
        sections.append(Section(
            "what-moved", "What moved most", question="Which changes are largest against their own noise?",
            intro="Measures, outcomes and categories together, those distinguishable from no change first, then by "
                  "the size of the change against its standard error.",
            body_table=("What moved most", pd.DataFrame({
                "kind": moved["kind"], "what": moved["what"], "change": moved["change"],
                "change_lo": moved["ci_lo"], "change_hi": moved["ci_hi"],
                "changed": np.where(moved["flagged"], "yes", "no")})),
            columns={"What moved most": MEASURE_COLUMNS}))
    if diff.outcomes is not None:
        o, c = diff.outcomes, diff.categories
        table = o.drop(columns=["ci_lo", "ci_hi"]).rename(columns={"text": "outcome"})
        flagged = table[table["flagged"]]
        sections.append(Section(
            "outcomes", "Outcome utilities", question="Which outcomes does the model value differently now?",
            intro="Each outcome's utility after mapping AFTER onto BEFORE's scale, its shift and a z-test against "
                  "both runs' bootstrap standard errors, corrected over all outcomes by Benjamini–Hochberg.",
            facts={"shared outcomes": diff.alignment["shared_outcomes"], "flagged": int(o["flagged"].sum()),
                   "scale": diff.alignment["scale"], "shift": diff.alignment["shift"]},
            figures=[("Each outcome's utility before and after (aligned); on the diagonal nothing moved.",
                      shift_scatter(o))],
            body_table=("Flagged outcomes", flagged.drop(columns=["flagged", "id"]).head(15)) if len(flagged)
            else None,
            tables=[("All outcomes", table)], columns={"All outcomes": OUTCOME_COLUMNS,
                                                       "Flagged outcomes": OUTCOME_COLUMNS}))
        sections.append(Section(
            "categories", "Categories", question="Did whole categories of outcomes move?",
            intro="A category's shift is the mean shift of its outcomes, with the standard error that follows from "
                  "theirs, corrected over categories by Benjamini–Hochberg.",
            figures=[(f"Mean shift per category with its 95 % interval, the {min(len(c), 12)} most distinct from no "
                       "change first; coloured: flagged. Every category is in the appendix.",
                      change_figure(c.rename(columns={"shift": "change"}), "category",
                                    "Shift per category"))],
            tables=[("Categories", c)], columns={"Categories": OUTCOME_COLUMNS}))
    profile = diff.metrics[diff.metrics["analysis"].isin(["dilemmas", "survey"])]
    if len(profile):
        shown = profile.assign(what=profile["title"] + ": " + profile["metric"].str.replace("_", " "),
                               flagged=profile["distinguishable"])
        sections.append(Section(
            "profiles", "Framework profiles", question="Did the model's value profile move?",
            intro="The dilemma and survey measures (Schwartz higher-order values, moral foundations, cultural-map "
                  "dimensions), each change with its paired-bootstrap interval over the shared items.",
            figures=[("Change of each framework measure with its 95 % interval.",
                      change_figure(shown, "what", "Framework profile changes", limit=len(shown)))]))
    for key, part in diff.metrics.groupby("section", sort=False):
        sections.append(Section(
            f"measures-{key}", str(part["title"].iloc[0]), analysis=str(part["analysis"].iloc[0]),
            metrics=[_change_metric(r) for _, r in part.iterrows()],
            tables=[("Measures", _measure_table(part))], columns={"Measures": MEASURE_COLUMNS}))
    overview = (f"What changed from BEFORE ({diff.before.name}, {diff.before.path}) to AFTER ({diff.after.name}, "
                f"{diff.after.path}). Every change has a 95 % interval; “changed” means the interval excludes 0.")
    manifest = {"command": "valuelab diff", "before": str(diff.before.path), "after": str(diff.after.path),
                "fdr": FDR, "alignment": diff.alignment or None}
    return Report(title=f"What changed: {diff.before.name} → {diff.after.name}",
                  model_name=f"{diff.before.name} → {diff.after.name}",
                  suite=diff.before.suite if diff.before.suite == diff.after.suite else
                  f"{diff.before.suite} → {diff.after.suite}",
                  sections=sections, manifest=manifest, overview=overview, kind="diff",
                  summary=diff_sentences(diff, broken))


def write_diff(before: str | Path, after: str | Path, out_dir: str | Path, *, fail_on: Sequence[str] = (),
               pdf: bool = True, pdf_engine: str = "auto", n_boot: int = N_BOOT, seed: int = 0
               ) -> tuple[Diff, list[str]]:
    """Diff two runs, write report.html, report.pdf, results.json and diff.json to `out_dir`, and return the
    diff with the broken `fail_on` rules (rules are parsed first: a malformed one fails before any work)."""
    rules = [parse_rule(r) for r in fail_on]
    diff = diff_runs(before, after, n_boot=n_boot, seed=seed)
    broken = broken_rules(rules, diff)
    out = Path(out_dir)
    write_report(build_diff_report(diff, broken), out, pdf=pdf, pdf_engine=pdf_engine)
    write_json(out / "diff.json", diff.to_dict() | {"rules": [{"rule": r.text, "value": rule_value(r, diff)}
                                                              for r in rules], "broken": broken})
    return diff, broken
