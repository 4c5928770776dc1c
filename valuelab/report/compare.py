"""A comparison report over several finished audits, read from their output folders.

Each folder holds `results.json` (written by `Report.write_results`) and, when the audit fitted outcome
utilities, `utilities.csv` (id,text,category,mean,variance). The comparison is itself a `Report`, so it is
drawn by the same HTML and PDF code.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.analyses.convergence import as_utilities, read_utilities
from valuelab.errors import InputError
from valuelab.report.figures import BASELINE_COLOR, PALETTE, baseline, new_figure, styled
from valuelab.report.model import RESULTS_FORMAT, Report, Section
from valuelab.report.output import write_report
from valuelab.stats import Metric, correlate


@dataclass
class Audit:
    name: str
    directory: Path
    results: dict
    utilities: pd.Series | None


def load_audit(directory: str | Path) -> Audit:
    """One audit folder; fails with the file and field at fault."""
    directory = Path(directory)
    path = directory / "results.json"
    if not path.is_file():
        raise InputError("no results.json here; run `valuelab audit` into this folder first",
                         file=str(directory))
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err.msg}", file=str(path), line=err.lineno) from None
    for key in ("model", "sections"):
        if key not in results:
            raise InputError("missing from results.json", file=str(path), field=key)
    if results.get("format") != RESULTS_FORMAT:
        raise InputError(f"written in format {results.get('format')!r}, not {RESULTS_FORMAT!r}: run the audit again "
                         "with this valuelab (it reuses the answers in its store)", file=str(path), field="format")
    csv = directory / "utilities.csv"
    return Audit(str(results["model"]), directory, results, read_utilities(csv) if csv.is_file() else None)


def utility_correlations(utilities: Mapping[str, pd.Series | pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson correlation of mean utilities for every pair of models, over the outcome ids both share.

    Returns the square matrix (models × models) and one row per pair with n, r and its bootstrap interval,
    beside what two unrelated models give (a shuffled pairing): `valuelab.stats.correlate`, the interval the
    convergence analysis reports too.
    """
    names = list(utilities)
    means = {name: as_utilities(source) for name, source in utilities.items()}
    matrix = pd.DataFrame(np.eye(len(names)), index=pd.Index(names, name="model"), columns=names)
    pairs = []
    for a, b in itertools.combinations(names, 2):
        shared = means[a].index.intersection(means[b].index)
        x, y = means[a].loc[shared].to_numpy(float), means[b].loc[shared].to_numpy(float)
        m = correlate(x, y)["pearson"] if len(shared) >= 3 else Metric(math.nan)
        matrix.loc[a, b] = matrix.loc[b, a] = m.value
        pairs.append({"model_a": a, "model_b": b, "n_shared": len(shared), "r": m.value, "ci_lo": m.lo,
                      "ci_hi": m.hi, "baseline": m.baseline, "baseline_lo": m.baseline_lo,
                      "baseline_hi": m.baseline_hi})
    return matrix, pd.DataFrame(pairs, columns=["model_a", "model_b", "n_shared", "r", "ci_lo", "ci_hi",
                                                "baseline", "baseline_lo", "baseline_hi"])


def metric_table(audits: Sequence[Audit]) -> pd.DataFrame:
    """Every metric of every audit, one row per (section, metric, model), headline metrics first."""
    rows = [{"section": section.get("title", section.get("key")), "key": section.get("key"),
             "metric": m.get("name"), "model": audit.name, "headline": k == 0, **Metric.from_dict(m).row()}
            for audit in audits for section in audit.results.get("sections", [])
            for k, m in enumerate(section.get("metrics") or [])]
    columns = ["section", "key", "metric", "model", "headline", "value", "ci_lo", "ci_hi", "baseline", "baseline_lo",
               "baseline_hi"]
    return pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)


def correlation_figure(matrix: pd.DataFrame) -> Figure:
    size = 1.6 + 0.7 * len(matrix)
    fig, ax = new_figure(size + 1.2, size)
    with styled():
        image = ax.imshow(matrix.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.grid(False)
        ax.set_xticks(range(len(matrix)), matrix.columns, rotation=30, ha="right")
        ax.set_yticks(range(len(matrix)), matrix.index)
        for (i, j), r in np.ndenumerate(matrix.to_numpy(float)):
            ax.text(j, i, "—" if math.isnan(r) else f"{r:.2f}", ha="center", va="center", fontsize=8.5,
                    color="white" if abs(r) > 0.6 else "black")
        fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson r of mean utilities")
        ax.set_title("Utility correlation between models")
    return fig


def metric_figure(metrics: pd.DataFrame) -> Figure | None:
    """Headline numbers side by side, with intervals and the random baseline of each metric."""
    metrics = metrics.assign(metric=metrics["metric"].str.replace("_", " "))
    names = list(dict.fromkeys(metrics["metric"]))
    if not names:
        return None
    models = list(dict.fromkeys(metrics["model"]))
    fig, axes = new_figure(6.4, 0.5 + (0.3 + 0.25 * len(models)) * len(names), nrows=len(names), squeeze=False,
                           sharex=False)
    with styled():
        for ax, name in zip(axes[:, 0], names, strict=True):
            part = metrics[metrics["metric"] == name].set_index("model").reindex(models)
            y = np.arange(len(models))
            err = np.abs(np.vstack([part["value"] - part["ci_lo"], part["ci_hi"] - part["value"]]))
            ax.errorbar(part["value"], y, xerr=np.nan_to_num(err), fmt="o", color=PALETTE[0], capsize=3)
            if part["baseline"].notna().any():
                baseline(ax, float(part["baseline"].dropna().iloc[0]), axis="x",
                         label="random baseline" if ax is axes[0, 0] else None)
            ax.set_yticks(y, models)
            ax.set_ylim(-0.6, len(models) - 0.4)
            ax.invert_yaxis()
            ax.set_title(name, fontsize=9, loc="left")
        if axes[0, 0].get_legend_handles_labels()[0]:
            axes[0, 0].legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=7.5,
                              labelcolor=BASELINE_COLOR)
    return fig


def _unique_names(audits: list[Audit]) -> None:
    counts: dict[str, int] = {}
    for audit in audits:
        counts[audit.name] = counts.get(audit.name, 0) + 1
    for audit in audits:
        if counts[audit.name] > 1:
            audit.name = f"{audit.name} ({audit.directory.name})"


def build_comparison(audits: list[Audit]) -> Report:
    """The comparison as a Report: utility correlation, the headlines side by side, then each analysis that two
    or more audits ran, its metrics model by model."""
    sections: list[Section] = []
    with_utilities = {a.name: a.utilities for a in audits if a.utilities is not None}
    if len(with_utilities) >= 2:
        matrix, pairs = utility_correlations(with_utilities)
        reading = ("Pearson r between two models' mean utilities over the outcomes both were asked about; 1 means "
                   "they rank outcomes alike, two unrelated models give about 0.")
        sections.append(Section(
            "utility-correlation", "Utility correlation",
            question="Do the models rank the same outcomes alike?",
            intro="The Pearson correlation of mean utilities over the outcomes both models were asked about. The "
                  "interval is a percentile bootstrap over outcomes; the random responder is two unrelated models "
                  "(the same utilities, shuffled).",
            metrics=[Metric(r.r, r.ci_lo, r.ci_hi, r.baseline, r.baseline_lo, r.baseline_hi,
                            name=f"{r.model_a} vs {r.model_b}", how_to_read=reading) for r in pairs.itertuples()],
            tables=[("Correlation matrix", matrix), ("Pairs", pairs)],
            figures=[("Pearson correlation of mean utilities over shared outcomes.", correlation_figure(matrix))],
        ))
    metrics = metric_table(audits)
    shown = pd.DataFrame({"analysis": metrics["section"], "measure": metrics["metric"].str.replace("_", " "),
                          "model": metrics["model"], "value": metrics["value"], "ci_lo": metrics["ci_lo"],
                          "ci_hi": metrics["ci_hi"], "random": metrics["baseline"]})
    headline = metrics["headline"].astype(bool)
    if headline.any():
        sections.append(Section(
            "headlines", "Headline measures side by side",
            question="Where do the models differ on each analysis's headline measure?",
            intro="Each analysis's headline measure for every model, with its 95 % interval and the mean of a "
                  "random responder; the sections below show every measure of each analysis.",
            body_table=("Headline measures by model", shown[headline].sort_values(
                "analysis", key=lambda c: c.map({a: k for k, a in enumerate(dict.fromkeys(c))}), kind="stable")),
        ))
    for key, part in metrics.groupby("key", sort=False):
        if part["model"].nunique() < 2:
            continue
        figure = metric_figure(part)
        sections.append(Section(
            f"compare-{key}", str(part["section"].iloc[0]),
            body_table=("Measures by model", shown.loc[part.index].drop(columns="analysis")),
            figures=[] if figure is None else [("Each measure by model, with its 95 % interval; dashed: the random "
                                                "responder.", figure)],
        ))
    names = [a.name for a in audits]
    manifest: dict[str, Any] = {"command": "valuelab compare"}
    for k, audit in enumerate(audits, start=1):
        run = audit.results.get("manifest") or {}
        manifest[f"audit {k}"] = {"model": audit.name, "directory": str(audit.directory),
                                  "suite": audit.results.get("suite"), "written": run.get("written"),
                                  "git": run.get("git")}
    suites = sorted({str(a.results.get("suite")) for a in audits})
    overview = (f"A comparison of {len(audits)} audits: {', '.join(names)}. Utilities are compared over the "
                "outcomes the audits share; every analysis two or more audits ran is shown model by model.")
    return Report(title="Comparison of value audits", model_name=" · ".join(names), suite=", ".join(suites),
                  sections=sections, manifest=manifest, overview=overview, kind="comparison")


def compare_reports(dirs: Sequence[str | Path], out_dir: str | Path, *, pdf_engine: str = "auto") -> Report:
    """Read the audits in `dirs`, write `report.html`, `report.pdf` and `results.json` to `out_dir`."""
    if len(dirs) < 2:
        raise InputError(f"need at least two audit folders to compare, got {len(dirs)}", field="dirs")
    audits = [load_audit(d) for d in dirs]
    _unique_names(audits)
    report = build_comparison(audits)
    write_report(report, out_dir, pdf_engine=pdf_engine)
    return report
