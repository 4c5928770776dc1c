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
from valuelab.report.model import Report, Section
from valuelab.report.output import write_report
from valuelab.stats import Metric, correlate

BOOKKEEPING = {"n", "calls", "budget", "seed", "samples", "count", "nodes", "edges", "tokens"}
"""Numbers that size a run rather than describe the model: tabled, but left out of profile plots."""
MAX_PROFILE_KEYS = 30


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


def flatten_numbers(numbers: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a section's numbers, by dotted path; a metric dict contributes its `value`."""
    out: dict[str, float] = {}
    for key, value in numbers.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and "value" in value and not isinstance(value["value"], Mapping):
            value = value["value"]
        if isinstance(value, Mapping):
            out |= flatten_numbers(value, prefix=f"{path}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[path] = float(value)
    return out


def metric_table(audits: Sequence[Audit]) -> pd.DataFrame:
    """Every headline number of every audit, one row per (metric, model)."""
    rows = [{"metric": item.get("name"), "model": audit.name, "value": item.get("value"),
             "ci_lo": item.get("lo"), "ci_hi": item.get("hi"), "baseline": item.get("baseline")}
            for audit in audits for item in audit.results.get("headline", [])]
    frame = pd.DataFrame(rows, columns=["metric", "model", "value", "ci_lo", "ci_hi", "baseline"])
    return frame.astype({c: float for c in ("value", "ci_lo", "ci_hi", "baseline")})


def shared_profiles(audits: Sequence[Audit]) -> list[tuple[str, str, pd.DataFrame]]:
    """For each section key that two or more audits have: the numbers they all share (keys × models)."""
    by_key: dict[str, dict[str, dict[str, float]]] = {}
    titles: dict[str, str] = {}
    for audit in audits:
        for section in audit.results.get("sections", []):
            key = str(section.get("key"))
            titles.setdefault(key, str(section.get("title", key)))
            by_key.setdefault(key, {})[audit.name] = flatten_numbers(section.get("numbers") or {})
    profiles = []
    for key, per_model in by_key.items():
        if len(per_model) < 2:
            continue
        shared = [k for k in next(iter(per_model.values())) if all(k in v for v in per_model.values())]
        if shared:
            frame = pd.DataFrame({name: [values[k] for k in shared] for name, values in per_model.items()},
                                 index=pd.Index(shared, name="number"))
            profiles.append((key, titles[key], frame))
    return profiles


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


def profile_figure(frame: pd.DataFrame, title: str) -> Figure | None:
    """Overlaid dot profiles: one row per shared number, one colour per model (run-size numbers left out)."""
    keep = [k for k in frame.index if not BOOKKEEPING & set(k.rsplit(".", 1)[-1].split("_"))]
    frame = frame.loc[keep[:MAX_PROFILE_KEYS]]
    if len(frame) < 2:
        return None
    fig, ax = new_figure(6.4, 1.2 + 0.32 * len(frame))
    with styled():
        rows = np.arange(len(frame))
        offsets = np.linspace(-0.22, 0.22, len(frame.columns)) if len(frame.columns) > 1 else [0.0]
        for k, (model, offset) in enumerate(zip(frame.columns, offsets, strict=True)):
            ax.scatter(frame[model], rows + offset, s=26, color=PALETTE[k % len(PALETTE)], label=model,
                       zorder=3)
        for row, values in zip(rows, frame.to_numpy(float), strict=True):
            ax.plot([np.nanmin(values), np.nanmax(values)], [row, row], color="#cbd2d9", linewidth=1,
                    zorder=2)
        ax.set_yticks(rows, [k.replace("_", " ") for k in frame.index])
        ax.invert_yaxis()
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=min(len(frame.columns), 4))
        ax.set_title(title, pad=24)
    return fig


def metric_figure(metrics: pd.DataFrame) -> Figure | None:
    """Headline numbers side by side, with intervals and the random baseline of each metric."""
    names = list(dict.fromkeys(metrics["metric"]))
    if not names:
        return None
    models = list(dict.fromkeys(metrics["model"]))
    fig, axes = new_figure(6.4, 0.6 + 1.0 * len(names), nrows=len(names), squeeze=False, sharex=False)
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
    """The comparison as a Report: utility correlation, headline metrics, overlaid section profiles."""
    sections: list[Section] = []
    headline: list[dict] = []
    with_utilities = {a.name: a.utilities for a in audits if a.utilities is not None}
    if len(with_utilities) >= 2:
        matrix, pairs = utility_correlations(with_utilities)
        for row in pairs.itertuples():
            headline.append({
                "name": f"Utility correlation: {row.model_a} vs {row.model_b}", "value": row.r,
                "lo": row.ci_lo, "hi": row.ci_hi, "baseline": row.baseline,
                "how_to_read": f"Pearson r between the two models' mean utilities over {row.n_shared} "
                               "shared outcomes. 1 means they rank outcomes alike; two unrelated models give "
                               "about 0.",
            })
        sections.append(Section(
            "utility-correlation", "Utility correlation",
            intro="How alike the models' utilities are: the Pearson correlation of mean utilities over the "
                  "outcomes both models were asked about. The interval is a percentile bootstrap over outcomes; "
                  "the baseline is what two unrelated models give (the same utilities, shuffled).",
            numbers={f"{r.model_a} vs {r.model_b}": {"value": r.r, "ci": [r.ci_lo, r.ci_hi], "baseline": r.baseline,
                                                     "baseline_range": [r.baseline_lo, r.baseline_hi]}
                     for r in pairs.itertuples()},
            tables=[("Correlation matrix", matrix), ("Pairs", pairs)],
            figures=[("Pearson correlation of mean utilities over shared outcomes.",
                      correlation_figure(matrix))],
        ))
    metrics = metric_table(audits)
    if len(metrics):
        wide = metrics.pivot_table(index="metric", columns="model", values="value", sort=False)
        figure = metric_figure(metrics)
        sections.append(Section(
            "metrics", "Headline metrics",
            intro="The headline numbers of each audit side by side, with their 95 % intervals and random "
                  "baselines.",
            tables=[("Headline numbers by model", wide), ("With intervals", metrics)],
            figures=[] if figure is None else [
                ("Headline numbers with 95 % intervals; dashed: random baseline.", figure)],
        ))
    for key, title, frame in shared_profiles(audits):
        figure = profile_figure(frame, title)
        sections.append(Section(
            f"profile-{key}", f"Profile: {title}",
            intro=f"Numbers from the “{title}” section that every compared audit reports.",
            tables=[("Shared numbers", frame)],
            figures=[] if figure is None else [(f"{title}: each model's numbers overlaid.", figure)],
        ))
    names = [a.name for a in audits]
    summary = Section(
        "summary", "Summary",
        intro=f"A comparison of {len(audits)} audits: {', '.join(names)}. Utilities are compared over the "
              "outcomes the audits share; headline numbers and section profiles are shown side by side.",
        numbers={"audits compared": len(audits), "audits with utilities": len(with_utilities)},
    )
    manifest: dict[str, Any] = {"command": "valuelab compare"}
    for k, audit in enumerate(audits, start=1):
        run = audit.results.get("manifest") or {}
        manifest[f"audit {k}"] = {"model": audit.name, "directory": str(audit.directory),
                                  "suite": audit.results.get("suite"), "written": run.get("written"),
                                  "git": run.get("git")}
    suites = sorted({str(a.results.get("suite")) for a in audits})
    return Report(title="Comparison of value audits", model_name=" · ".join(names), suite=", ".join(suites),
                  summary=summary, sections=sections, manifest=manifest, headline=headline)


def compare_reports(dirs: Sequence[str | Path], out_dir: str | Path, *, pdf_engine: str = "auto") -> Report:
    """Read the audits in `dirs`, write `report.html`, `report.pdf` and `results.json` to `out_dir`."""
    if len(dirs) < 2:
        raise InputError(f"need at least two audit folders to compare, got {len(dirs)}", field="dirs")
    audits = [load_audit(d) for d in dirs]
    _unique_names(audits)
    report = build_comparison(audits)
    write_report(report, out_dir, pdf_engine=pdf_engine)
    return report
