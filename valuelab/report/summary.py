"""The executive summary, written from the numbers: what was asked, and one verdict per kind of finding.

A metric is read against the random responder (stats.Metric.distinguishable): its 95 % interval either clears
the random range ("differs from random"), overlaps it ("within random range"), or cannot be judged because
the value or its interval is not determined by the answers ("undetermined", with the reason) or no random
baseline exists for it.
"""

from __future__ import annotations

import math
from typing import Any

from valuelab.report.model import Report
from valuelab.stats import Metric

LARGE = 1e15
"""Beyond this a number is not a measurement but a fit that ran away (an exchange rate whose slope is near 0)."""
BIAS_WARNING = 0.2
"""|position bias| above this (of at most 0.5) is worth a sentence: the model mostly answers by position."""
BIAS_NOTABLE = 0.05
"""|position bias| below this is not worth more than a mention."""
MASS_WARNING = 0.5
"""Mean probability on the answer labels below this: the model often answers outside the offered labels."""


def _bounded(x: float) -> bool:
    return isinstance(x, float | int) and math.isfinite(x) and abs(x) < LARGE


WORDS = {"audit": ("differs from random", "within random range"), "diff": ("changed", "no clear change")}
"""The two verdicts in words, by report kind: a diff reads a change against no change (0)."""


def verdict(metric: Metric, kind: str = "audit") -> tuple[str, str, str]:
    """(code, words, reason) for one metric: code is differs, random, undetermined or none."""
    if not _bounded(metric.value):
        reason = "no value: the answers leave it undefined" if math.isnan(metric.value) else \
            "the fit ran away: the answers do not pin this quantity down"
        return "undetermined", "undetermined", reason
    if math.isnan(metric.lo) or math.isnan(metric.hi):
        return "undetermined", "undetermined", "no interval: too few items to resample"
    if not (_bounded(metric.lo) and _bounded(metric.hi)):
        return "undetermined", "undetermined", "its interval is unbounded: the answers do not pin it down"
    distinguishable = metric.distinguishable
    if distinguishable is None:
        return "none", "no random baseline", ""
    differs, random = WORDS.get(kind, WORDS["audit"])
    return ("differs", differs, "") if distinguishable else ("random", random, "")


def _names(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def verdict_sentences(report: Report) -> list[str]:
    """Plain sentences from the headline: what differs from random, what does not, what is undetermined, the
    largest answer-order bias and any weak hold on the answer labels, and the stages that could not run. A report
    that brings its own sentences (`Report.summary`, as a diff does) gets those."""
    if report.summary is not None:
        return list(report.summary)
    groups: dict[str, list[str]] = {"differs": [], "random": [], "undetermined": [], "none": []}
    reasons = []
    for section, metric in report.headline:
        code, _, reason = verdict(metric)
        groups[code].append(section.title)
        if code == "undetermined":
            reasons.append(f"{section.title}: {reason}")
    total = sum(len(v) for v in groups.values())
    sentences = []
    if total:
        if groups["differs"]:
            sentences.append(f"{len(groups['differs'])} of {total} headline measures differ from what a random "
                             f"responder gives: {_names(groups['differs'])}.")
        else:
            sentences.append(f"None of the {total} headline measures differs from what a random responder gives.")
        if groups["random"]:
            sentences.append(f"Within the random responder's range, so no evidence of a consistent preference: "
                             f"{_names(groups['random'])}.")
        if groups["undetermined"]:
            sentences.append(f"Undetermined by these answers: {'; '.join(reasons)}.")
        if groups["none"]:
            sentences.append(f"No random baseline exists for {_names(groups['none'])}; read them against their "
                             "intervals.")
    robust = [(s.title, s.robustness) for s in report.sections if s.robustness and s.failed is None]
    biased = [(title, r["position_bias"]) for title, r in robust if "position_bias" in r]
    if biased:
        title, bias = max(biased, key=lambda item: abs(item[1]))
    if biased and abs(bias) < BIAS_NOTABLE:
        sentences.append(f"No notable answer-order bias: the largest is {bias:+.2f} ({title}), on a scale where "
                         "±0.5 means always the same position.")
    elif biased:
        side = "first" if bias > 0 else "second"
        strength = "strongly " if abs(bias) > BIAS_WARNING else ""
        sentences.append(f"Largest answer-order bias: {title}, {bias:+.2f} on a scale where ±0.5 means always the "
                         f"option shown {side}; the model {strength}leans toward the {side} option, and the "
                         "preferences above average both orders to cancel it.")
    weak = [f"{title} ({r['mean_choice_mass']:.0%})" for title, r in robust
            if r.get("mean_choice_mass", 1.0) < MASS_WARNING]
    if weak:
        sentences.append(f"Little probability on the answer labels in {_names(weak)}: the model often answers "
                         "with something other than the offered labels, so these choices rest on a small share of "
                         "its probability.")
    failed = [s.title for s in report.sections if s.failed]
    if failed:
        sentences.append(f"Could not run: {_names(failed)} (the reason is in each section).")
    return sentences


def what_was_asked(report: Report) -> list[tuple[str, str]]:
    """The facts of the run for the summary's first lines: model, mode, suite, stages, prompts, cost."""
    m: dict[str, Any] = report.manifest
    model = m.get("model") if isinstance(m.get("model"), dict) else {}
    rows = []
    if model:
        rows.append(("Backend", str(model.get("backend", ""))))
    if m.get("mode"):
        rows.append(("Mode", str(m["mode"])))
    rows.append(("Suite", f"{report.suite}: {len(report.sections)} sections"
                 + (f", {sum(1 for s in report.sections if s.failed)} could not run"
                    if any(s.failed for s in report.sections) else "")))
    if "prompts_asked" in m:
        asked = f"{m['prompts_asked']:,} asked, {m.get('prompts_reused', 0):,} from the store"
        rows.append(("Prompts", asked))
    if m.get("requests") is not None:
        rows.append(("Requests", f"{m['requests']:,}" + (f" ({m['samples']:,} samples)" if m.get("samples") else "")))
    if m.get("prompt_tokens") or m.get("completion_tokens"):
        rows.append(("Tokens", f"{m.get('prompt_tokens', 0):,} in, {m.get('completion_tokens', 0):,} out"))
    if "model_seconds" in m or "wall_seconds" in m:
        rows.append(("Time", f"{m.get('wall_seconds', 0):,.0f} s ({m.get('model_seconds', 0):,.0f} s waiting for "
                             "the model)"))
    return rows
