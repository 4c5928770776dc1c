"""`valuelab audit MODEL`: run a suite of analyses through the store and gather them into one report.

Every stage asks its questions through the same response store, so an interrupted audit, run again, asks the
model only for what is missing and then rebuilds the same report. A stage that fails is reported in its section
and the audit goes on: one broken analysis should not cost the others.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pandas as pd
import yaml
from tqdm import tqdm

from valuelab.analyses import get, list_analyses, run_analysis
from valuelab.analyses.suites import SUITES, Stage, plan
from valuelab.errors import ValuelabError
from valuelab.manifest import build_manifest
from valuelab.report import Report, Section, write_report
from valuelab.report.model import first_paragraph
from valuelab.result import Result
from valuelab.stats import write_json
from valuelab.store import CallCounts, StoredModel

__all__ = ["COULD_NOT_RUN", "SUITES", "Audit", "Stage", "run_audit"]


def published_references() -> dict:
    return yaml.safe_load((files("valuelab") / "data" / "published.yaml").read_text(encoding="utf-8"))


PUBLISHED_FOR = {"accuracy": "heldout_accuracy", "completeness": "average_confidence",
                 "transitivity": "log10_cycle_probability", "utility-maximization": "utility_maximization_top1"}


def published_table(stage_key: str) -> pd.DataFrame | None:
    refs = published_references()
    metric = PUBLISHED_FOR.get(stage_key)
    if metric is None:
        return None
    entry = refs["metrics"][metric]
    return pd.DataFrame([{"model": v["model"], "value": v["value"], "metric": metric,
                          "source": f"{refs['source']}, {v['where']}"} for v in entry["values"]])


COULD_NOT_RUN = "This stage could not run"


def run_stage(model: StoredModel, stage: Stage, seed: int) -> tuple[Section, Result | None]:
    """Run one stage and turn its result into a report section (no result when it could not run)."""
    spec, title = get(stage.analysis), stage.heading
    before, started = model.counts.copy(), time.time()

    def cost() -> dict:  # what the stage asked, kept even when it then fails
        return {"cost": model.counts.cost_since(before, started)}

    try:
        result = run_analysis(stage.analysis, model, title=title, seed=seed, **stage.options)
    except ValuelabError as exc:  # bad input or an unreachable model: say so in the report
        return Section(stage.key, title, numbers=cost(), notes=[f"{COULD_NOT_RUN}: {exc}"]), None
    except Exception as exc:  # a bug in one analysis must not cost the others; it is shown, not hidden
        traceback.print_exc()
        return Section(stage.key, title, numbers=cost(),
                       notes=[f"{COULD_NOT_RUN} ({type(exc).__name__}: {exc}); please report it."]), None
    numbers = {**{m.name: m.to_dict() for m in result.metrics}, **result.details, "cost": result.cost}
    intro = spec.intro or first_paragraph(sys.modules[spec.run.__module__].__doc__)
    section = Section(stage.key, title, intro=intro, numbers=numbers, tables=list(result.tables.items()),
                      figures=result.figures, notes=result.notes, published=published_table(stage.key))
    return section, result


def headline_entry(result: Result) -> dict | None:
    """The audit's headline row for one result: its headline metric, interval, baseline and reading."""
    metric = result.headline
    if metric is None:
        return None
    return {"name": f"{result.title}: {metric.name.replace('_', ' ')}", "value": metric.value, "lo": metric.lo,
            "hi": metric.hi, "baseline": metric.baseline, "how_to_read": metric.how_to_read}


@dataclass
class Audit:
    """A finished audit: the report, the fitted utilities behind its ranking, and each stage's `Result` by
    section key (stages that could not run have none)."""

    report: Report
    utilities: pd.DataFrame
    results: dict[str, Result] = field(default_factory=dict)

    def write(self, out: Path) -> list[Path]:
        """report.html, report.pdf, results.json, utilities.csv and manifest.json in `out`."""
        paths = list(write_report(self.report, out).values())
        self.utilities.to_csv(out / "utilities.csv", index=False)
        write_json(out / "manifest.json", self.report.to_results()["manifest"])
        return [*paths, out / "utilities.csv", out / "manifest.json"]


def robustness_section(sections: list[Section]) -> Section:
    """Position bias, choice mass and refusals gathered from every stage that reports them."""
    rows = []
    for s in sections:
        flat = {k: v for k, v in s.numbers.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        picked = {k: flat[k] for k in ("position_bias", "mean_choice_mass", "low_mass_share", "refusal_rate",
                                       "text_agreement") if k in flat}
        if picked:
            rows.append({"stage": s.title, **picked})
    table = pd.DataFrame(rows)
    return Section("robustness", "Robustness",
                   intro="Answer-order bias (+0.5 means always the first option), how much probability the model "
                         "put on the answer labels at all, how often it refused, and (text agreement) how often the "
                         "top label by log-probability is the answer the model writes in free text. A small model "
                         "that mostly answers 'A' whatever A is shows a large position bias: the debiased "
                         "preferences average both orders, and these numbers say how much there was to average away.",
                   numbers={"stages": len(rows)}, tables=[("By stage", table)] if rows else [])


def cost_section(sections: list[Section]) -> Section:
    """Model calls, tokens and time per stage, as `valuelab estimate` predicts them before a run."""
    table = pd.DataFrame([{"stage": s.title, **s.numbers["cost"]} for s in sections if "cost" in s.numbers])
    totals = {k: table[k].sum().item() for k in table.columns if k != "stage"} if len(table) else {}
    return Section("cost", "Cost", intro="What each stage asked of the model: prompts asked and found in the store "
                   "(a resumed run asks only for what is missing), prompt and completion tokens as the backend "
                   "counts them, and the seconds spent waiting for answers.",
                   numbers=totals, tables=[("By stage", table)] if len(table) else [])


def run_audit(model: StoredModel, *, suite: str | Sequence[Stage] = "quick", seed: int = 0,
              outcomes: str | None = None, progress: bool | None = None, only: list[str] | None = None) -> Audit:
    """Run a suite's stages (a suite name, or a list of `Stage`s) and build the report (`Audit.write(out)` puts it
    on disk)."""
    stages = plan(suite, outcomes, only)
    suite = suite if isinstance(suite, str) else "custom"
    started = time.time()
    sections, headline, results = [], [], {}
    utilities = pd.DataFrame(columns=["id", "text", "category", "mean", "variance"])
    bar = tqdm(total=len(stages), desc="audit", unit="stage", disable=progress is False or None)
    for stage in stages:
        bar.set_postfix_str(f"{stage.heading} ({model.counts.asked} asked, {model.counts.reused} reused)")
        section, result = run_stage(model, stage, seed)
        sections.append(section)
        bar.update()
        if result is None:
            continue
        results[stage.key] = result
        if headline_entry(result):
            headline.append(headline_entry(result))
        if stage.analysis == "utilities":
            utilities = result.native.utilities
    bar.close()
    sections += [robustness_section(sections), cost_section(sections)]
    manifest = build_manifest(model, command=f"valuelab audit --suite {suite}", seed=seed,
                              extra={"suite": suite, "wall_seconds": round(time.time() - started, 1),
                                     "executor": model.executor.name, **model.counts.cost_since(CallCounts())})
    name = model.backend.identity()["model"]
    summary = Section("summary", "Summary", intro=summary_text(name, suite, sections, model))
    return Audit(Report(f"Value audit of {name}", name, suite, summary, sections, manifest, headline), utilities,
                 results)


def summary_text(name: str, suite: str, sections: list[Section], model: StoredModel) -> str:
    failed = [s.title for s in sections if any(n.startswith(COULD_NOT_RUN) for n in s.notes)]
    ran = [s.title for s in sections if s.numbers and s.title not in failed]
    text = (f"This audit asked {name} forced-choice questions in both answer orders ({model.mode} mode) and fitted "
            f"Thurstonian utilities to its answers. Suite '{suite}': {', '.join(ran)}. Each headline number is "
            "shown with its 95% bootstrap interval and the score of a random responder; small budgets give wide "
            "intervals.")
    if failed:
        text += f" Could not run: {', '.join(failed)}."
    keys = {s.key for s in sections}
    analyses = {s.key.split("-")[0] if s.key.startswith(("dilemmas-", "survey-")) else s.key for s in sections}
    missing = [spec.title for spec in list_analyses() if spec.name not in analyses]
    if missing:
        text += f" Not in this suite: {', '.join(missing)}."
        if "convergence" not in keys:
            text += (" Convergence needs a second set of utilities: `valuelab compare` over several audits, or "
                     "`valuelab analyze convergence MODEL --reference FILE`.")
    bias = next((s.numbers.get("position_bias") for s in sections if s.key == "utilities"), None)
    if isinstance(bias, float) and abs(bias) > 0.2:
        text += (f" The model leans strongly toward the option shown first (position bias {bias:+.2f}); its "
                 "debiased preferences are close to indifference, which is a finding about the model, not noise "
                 "in the tool.")
    return text

