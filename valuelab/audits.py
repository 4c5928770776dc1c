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
from valuelab.report.model import ROBUSTNESS, first_paragraph
from valuelab.result import Result
from valuelab.stats import write_json
from valuelab.store import CallCounts, StoredModel

__all__ = ["COULD_NOT_RUN", "SUITES", "Audit", "Stage", "run_audit"]


def published_references() -> dict:
    return yaml.safe_load((files("valuelab") / "data" / "published.yaml").read_text(encoding="utf-8"))


PUBLISHED_FOR = {"accuracy": "heldout_accuracy", "completeness": "average_confidence",
                 "transitivity": "log10_cycle_probability", "utility-maximization": "utility_maximization_top1",
                 "time-discounting": "discount_at_12_months",
                 "risk-attitudes": ("lambda", "gamma")}  # all five are in its figure and parameter table
"""Stage key → the published.yaml metric (or metrics) shown beside its numbers."""


def published_table(stage_key: str) -> pd.DataFrame | None:
    refs = published_references()
    metrics = PUBLISHED_FOR.get(stage_key)
    if metrics is None:
        return None
    return pd.DataFrame([{"model": v["model"], "value": v["value"], "metric": metric,
                          "source": f"{v.get('source', refs['source'])}, {v['where']}"}
                         for metric in ((metrics,) if isinstance(metrics, str) else metrics)
                         for v in refs["metrics"][metric]["values"]])


COULD_NOT_RUN = "This stage could not run"


def run_stage(model: StoredModel, stage: Stage, seed: int) -> tuple[Section, Result | None]:
    """Run one stage and turn its result into a report section (no result when it could not run)."""
    spec, title = get(stage.analysis), stage.heading
    before, started = model.counts.copy(), time.time()
    model.example_prompt = None  # the stage's first prompt is the example its section shows
    try:
        result = run_analysis(stage.analysis, model, title=title, seed=seed, **stage.options)
    except ValuelabError as exc:  # bad input or an unreachable model: say so in the report
        failed = f"{COULD_NOT_RUN}: {exc}"
    except Exception as exc:  # a bug in one analysis must not cost the others; it is shown, not hidden
        traceback.print_exc()
        failed = f"{COULD_NOT_RUN} ({type(exc).__name__}: {exc}); please report it."
    else:
        intro = spec.intro or first_paragraph(sys.modules[spec.run.__module__].__doc__)
        return Section.from_result(stage.key, result, question=spec.question, intro=intro,
                                   prompt=model.example_prompt, facts=spec.facts,
                                   published=published_table(stage.key)), result
    # what the stage asked is kept even when it then fails
    return Section(stage.key, title, analysis=stage.analysis, question=spec.question, failed=failed,
                   cost=model.counts.cost_since(before, started)), None


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


ROBUSTNESS_COLUMNS = {"stage": "the section", **ROBUSTNESS}


def robustness_section(sections: list[Section]) -> Section:
    """Position bias, choice mass, refusals and text agreement of every stage that reports them, in one table."""
    table = pd.DataFrame([{"stage": s.title, **s.robustness} for s in sections if s.robustness],
                         columns=list(ROBUSTNESS_COLUMNS))
    table = table.dropna(axis=1, how="all")
    return Section("robustness", "Robustness", question="Does the model answer the question, whatever order the "
                   "options come in?",
                   intro="A small model that mostly answers 'A' whatever A is shows a large position bias: the "
                         "preferences in this report average both answer orders, and these numbers say how much "
                         "there was to average away.",
                   body_table=("Answer quality by stage", table) if len(table) else None,
                   columns={"Answer quality by stage": {c: ROBUSTNESS_COLUMNS[c] for c in table.columns}})


COST_COLUMNS = {
    "stage": "the section",
    "prompts_asked": "prompts the model was asked in this run",
    "prompts_reused": "prompts answered from the store (asked before)",
    "requests": "requests sent to the model, retries included",
    "samples": "completions sampled (sample mode)",
    "prompt_tokens": "prompt tokens, as the backend counts them",
    "completion_tokens": "completion tokens",
    "model_seconds": "seconds spent waiting for the model",
    "seconds": "wall seconds of the stage",
}


def cost_section(sections: list[Section]) -> Section:
    """Model calls, tokens and time per stage, as `valuelab estimate` predicts them before a run."""
    table = pd.DataFrame([{"stage": s.title, **s.cost} for s in sections if s.cost])
    legend = {c: COST_COLUMNS.get(c, c.replace("_", " ")) for c in table.columns}
    return Section("cost", "Cost", intro="What each stage asked of the model: prompts asked and found in the store "
                   "(a resumed run asks only for what is missing), tokens as the backend counts them, and the "
                   "seconds spent waiting for answers.",
                   tables=[("Cost by stage", table)] if len(table) else [], columns={"Cost by stage": legend})


def run_audit(model: StoredModel, *, suite: str | Sequence[Stage] = "quick", seed: int = 0,
              outcomes: str | None = None, progress: bool | None = None, only: list[str] | None = None) -> Audit:
    """Run a suite's stages (a suite name, or a list of `Stage`s) and build the report (`Audit.write(out)` puts it
    on disk)."""
    stages = plan(suite, outcomes, only)
    suite = suite if isinstance(suite, str) else "custom"
    started = time.time()
    sections, results = [], {}
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
        if stage.analysis == "utilities":
            utilities = result.native.utilities
    bar.close()
    manifest = build_manifest(model, command=f"valuelab audit --suite {suite}", seed=seed,
                              extra={"suite": suite, "not_in_suite": not_in_suite(sections),
                                     "wall_seconds": round(time.time() - started, 1),
                                     "executor": model.executor.name, **model.counts.cost_since(CallCounts())})
    name = model.backend.identity()["model"]
    return Audit(Report(f"Value audit of {name}", name, suite, [*sections, robustness_section(sections)], manifest,
                        overview=overview(name, suite, sections), appendix=[cost_section(sections)]),
                 utilities, results)


def overview(name: str, suite: str, sections: list[Section]) -> str:
    """The summary's opening sentence: what the audit did."""
    return (f"This audit asked {name} forced-choice questions, each in both answer orders, and fitted utilities "
            f"and scores to its answers: {len(sections)} analyses of the '{suite}' suite.")


def not_in_suite(sections: list[Section]) -> list[str]:
    """Analyses the suite left out (the manifest lists them; convergence needs a second model)."""
    ran = {s.analysis for s in sections}
    return [spec.title for spec in list_analyses() if spec.name not in ran]
