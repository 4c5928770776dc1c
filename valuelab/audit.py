"""`valuelab audit MODEL`: run a suite of analyses through the store and gather them into one report.

Every stage asks its questions through the same response store, so an interrupted audit, run again, asks the
model only for what is missing and then rebuilds the same report. A stage that fails is reported in its section
and the audit goes on: one broken analysis should not cost the others.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
import traceback
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from tqdm import tqdm

from valuelab.analyses import ANALYSES
from valuelab.elicit.outcomes import load_outcomes
from valuelab.errors import InputError, ValuelabError
from valuelab.figures import new_figure, styled
from valuelab.manifest import build_manifest, write_json
from valuelab.report import Report, Section, write_report
from valuelab.report.model import first_paragraph
from valuelab.store import CallCounts, StoredModel


@dataclass(frozen=True)
class Stage:
    """One step of an audit: `run(model, **options)` returns a result with `to_dict()`/`to_frame()`, and
    `figure(result)` draws it."""

    key: str
    title: str
    module: str
    options: dict[str, Any] = field(default_factory=dict)
    runner: str = "run"


def analysis(name: str, **options) -> Stage:
    return Stage(name, ANALYSES[name][1], f"valuelab.analyses.{ANALYSES[name][0]}", options)


def dilemmas(set_name: str, **options) -> Stage:
    return Stage(f"dilemmas-{set_name}", f"Dilemmas ({set_name})", "valuelab.elicit.dilemmas",
                 {"set_name": set_name, **options}, runner="run_dilemmas")


def survey(instrument: str, title: str, **options) -> Stage:
    return Stage(f"survey-{instrument}", title, "valuelab.elicit.surveys", {"instrument": instrument, **options},
                 runner="run_survey")


# Budgets are pairs (or conditions, statements, triads) per analysis; the quick suite runs every single-model
# analysis at a small budget, sized so the embedded 135M model finishes on a two-core CPU well inside ten
# minutes; the others are sized for a GPU or an API.
SUITES: dict[str, list[Stage]] = {
    "quick": [
        analysis("accuracy", outcomes="quick", budget=90, holdout=0.03),
        analysis("completeness", outcomes="quick", budget=90, holdout=0.03),
        analysis("template-spread", outcomes="quick", budget=90, holdout=0.03, n_boot=200),
        analysis("transitivity", outcomes="quick", budget=20),
        analysis("expected-utility", outcomes="quick", budget=80, n_lotteries=10, holdout=0.01),
        analysis("implicit-expected-utility", max_events=4, budget=40),
        analysis("exchange-rates", n_groups=3, budget=70, holdout=0.01),
        analysis("time-discounting", budget=24),
        analysis("corrigibility", budget=12),
        analysis("political-values", budget=110, holdout=0.01),
        analysis("instrumental-values", limit=5, budget=40, holdout=0.03),
        analysis("utility-maximization", limit=3, budget=45, holdout=0.0),  # ≤ 15 answers per question
        analysis("power-seeking", budget=50, holdout=0.0),
        dilemmas("everyday", limit=12),
        dilemmas("high-stakes", limit=6),
        survey("schwartz", "Schwartz values"),
        survey("mft", "Moral foundations"),
        survey("wvs", "Cultural map"),
    ],
    "standard": [
        analysis("accuracy", outcomes="core"),
        analysis("completeness", outcomes="core"),
        analysis("template-spread", outcomes="core"),
        analysis("transitivity", outcomes="core", budget=300),
        analysis("expected-utility", outcomes="core"),
        analysis("implicit-expected-utility"),
        analysis("exchange-rates"),
        analysis("time-discounting"),
        analysis("instrumental-values"),
        analysis("utility-maximization"),
        analysis("power-seeking"),
        analysis("corrigibility"),
        analysis("political-values"),
        dilemmas("everyday"),
        dilemmas("high-stakes"),
        survey("schwartz", "Schwartz values"),
        survey("mft", "Moral foundations"),
        survey("wvs", "Cultural map"),
    ],
}
SUITES["full"] = [*SUITES["standard"], analysis("exchange-rates", category="species")]


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


def run_stage(model: StoredModel, stage: Stage, seed: int) -> tuple[Section, dict | None]:
    """Run one stage and turn its result into a report section (and a headline entry, when it has one)."""
    module = importlib.import_module(stage.module)
    before, started = dataclasses.replace(model.counts), time.time()

    def cost() -> dict:  # what the stage asked, kept even when it then fails
        return {"cost": stage_cost(before, model.counts, started)}

    try:
        result = getattr(module, stage.runner)(model, seed=seed, **stage.options)
    except ValuelabError as exc:  # bad input or an unreachable model: say so in the report
        return Section(stage.key, stage.title, numbers=cost(), notes=[f"{COULD_NOT_RUN}: {exc}"]), None
    except Exception as exc:  # a bug in one analysis must not cost the others; it is shown, not hidden
        traceback.print_exc()
        return Section(stage.key, stage.title, numbers=cost(),
                       notes=[f"{COULD_NOT_RUN} ({type(exc).__name__}: {exc}); please report it."]), None
    numbers = {**result.to_dict(), **cost()}
    with styled():
        figure = module.figure(result)
    section = Section(stage.key, stage.title, intro=first_paragraph(module.__doc__), numbers=numbers,
                      tables=[("Results", result.to_frame())], figures=[(stage.title, figure)],
                      notes=list(numbers.get("notes", [])), published=published_table(stage.key))
    return section, headline_entry(stage, numbers)


def stage_cost(before: CallCounts, after: CallCounts, started: float | None = None) -> dict:
    """What one stage cost: prompts asked of the model and reused from the store, tokens in and out, the
    seconds spent waiting for the model, and (given its `time.time()` start) the stage's wall seconds."""
    cost = {"prompts_asked": after.asked - before.asked, "prompts_reused": after.reused - before.reused,
            "prompt_tokens": after.prompt_tokens - before.prompt_tokens,
            "completion_tokens": after.completion_tokens - before.completion_tokens,
            "model_seconds": round(after.seconds - before.seconds, 2)}
    if started is not None:
        cost["seconds"] = round(time.time() - started, 1)
    return cost


HOW_TO_READ = {
    "heldout_accuracy": "How often the fitted utilities predict a choice the fit never saw; 0.5 is chance.",
    "average_confidence": "How decisive the model is, from 0.5 (always indifferent) to 1 (always certain).",
    "cycle_probability": "Chance that three random outcomes are ranked in a circle; lower is more coherent.",
}


def headline_entry(stage: Stage, numbers: dict) -> dict | None:
    key = numbers.get("headline")
    metric = numbers.get(key) if key else None
    if not isinstance(metric, dict) or "value" not in metric:
        return None
    lo, hi = metric.get("ci", [None, None])
    return {"name": f"{stage.title}: {key.replace('_', ' ')}", "value": metric["value"], "lo": lo, "hi": hi,
            "baseline": metric.get("baseline"), "how_to_read": HOW_TO_READ.get(key, "")}


@dataclass
class Audit:
    """A finished audit: the report and the fitted utilities behind its ranking."""

    report: Report
    utilities: pd.DataFrame

    def write(self, out: Path) -> list[Path]:
        """report.html, report.pdf, results.json, utilities.csv and manifest.json in `out`."""
        paths = list(write_report(self.report, out).values())
        self.utilities.to_csv(out / "utilities.csv", index=False)
        write_json(out / "manifest.json", self.report.to_results()["manifest"])
        return [*paths, out / "utilities.csv", out / "manifest.json"]


TEXT_CHECK = 16
"""Prompts of the ranking stage also answered in free text (log-prob versus text agreement)."""


def utility_ranking_section(model: StoredModel, outcomes: str, budget: int | None,
                            seed: int) -> tuple[Section, pd.DataFrame]:
    """Top and bottom outcomes and category means, from the same utilities the coherence stages use."""
    from valuelab.elicit.utilities import elicit_utilities

    result = elicit_utilities(model, load_outcomes(outcomes), budget=budget, seed=seed, holdout=0.03,
                              text_check=TEXT_CHECK)
    u = result.utilities
    by_category = (u.groupby("category")["mean"].agg(["mean", "count"]).sort_values("mean", ascending=False)
                   .rename(columns={"mean": "mean utility", "count": "outcomes"}))
    with styled():
        fig, ax = new_figure(6.4, max(3.0, 0.22 * len(by_category)))
        ax.barh(by_category.index[::-1], by_category["mean utility"][::-1])
        ax.set_xlabel("mean utility (z-scored)")
    section = Section("utilities", "Utility ranking",
                   intro="Fitted Thurstonian utilities over the outcome set (mean 0, standard deviation 1).",
                   numbers={k: result.metrics.get(k) for k in (
                       "n_outcomes", "pairs_trained", "model_calls", "position_bias", "mean_choice_mass",
                       "low_mass_share", "refusal_rate", "text_agreement", "text_refusal", "text_checked")},
                   tables=[("Top 10 outcomes", u.head(10)[["text", "category", "mean"]]),
                           ("Bottom 10 outcomes", u.tail(10)[["text", "category", "mean"]]),
                           ("By category", by_category)],
                   figures=[("Mean utility by category", fig)])
    return section, u


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


def run_audit(model: StoredModel, *, suite: str = "quick", seed: int = 0, outcomes: str | None = None,
              progress: bool | None = None, only: list[str] | None = None) -> Audit:
    """Run the suite's stages and build the report (`Audit.write(out)` puts it on disk)."""
    if suite not in SUITES:
        raise InputError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}", field="suite")
    stages = [s for s in SUITES[suite] if only is None or s.key in only]
    if outcomes:
        stages = [Stage(s.key, s.title, s.module, {**s.options, "outcomes": outcomes}, s.runner)
                  if "outcomes" in s.options else s for s in stages]
    started = time.time()
    sections, headline = [], []
    ranking_outcomes = outcomes or ("quick" if suite == "quick" else "core")
    bar = tqdm(total=len(stages) + 1, desc="audit", unit="stage", disable=progress is False or None)
    bar.set_postfix_str("utility ranking")
    before, ranking_started = dataclasses.replace(model.counts), time.time()
    ranking, utilities = utility_ranking_section(model, ranking_outcomes, 90 if suite == "quick" else None, seed)
    ranking.numbers["cost"] = stage_cost(before, model.counts, ranking_started)
    sections.append(ranking)
    bar.update()
    for stage in stages:
        bar.set_postfix_str(f"{stage.title} ({model.counts.asked} asked, {model.counts.reused} reused)")
        section, entry = run_stage(model, stage, seed)
        sections.append(section)
        if entry:
            headline.append(entry)
        bar.update()
    bar.close()
    sections += [robustness_section(sections), cost_section(sections)]
    manifest = build_manifest(model, command=f"valuelab audit --suite {suite}", seed=seed,
                              extra={"suite": suite, "wall_seconds": round(time.time() - started, 1),
                                     "executor": model.executor.name, **stage_cost(CallCounts(), model.counts)})
    name = model.backend.identity()["model"]
    summary = Section("summary", "Summary", intro=summary_text(name, suite, sections, model))
    return Audit(Report(f"Value audit of {name}", name, suite, summary, sections, manifest, headline), utilities)


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
    missing = [title for key, (_module, title) in ANALYSES.items() if key not in keys]
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

