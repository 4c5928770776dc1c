"""Dilemmas: which values the model's choices serve, over dilemmas written for valuelab whose two actions are
tagged with the Schwartz values, moral foundations and cultural-map poles they serve, and with the Maslow need,
Aristotelian virtue and Plutchik emotion behind them (DailyDilemmas' three further theories).

The analysis asks every dilemma of a set in 3 wordings × 2 orders (`valuelab.elicit.dilemmas`), debiases
P(choose action a) over the orders and averages it over the wordings, then scores the choices at every tag
level (`valuelab.frameworks.dilemmas`): conditional-logit weights and DailyDilemmas' selected-minus-neglected
percentages, with intervals that resample dilemmas and a uniform-random respondent's range. The dilemmas
themselves, their schema and validation are `valuelab.items.dilemmas`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.analyses import LIMIT_OPT, N_BOOT_OPT, Analysis, Option
from valuelab.elicit.dilemmas import ORDERS, dilemma_requests, elicit_dilemmas
from valuelab.elicit.text_check import TEXT_SUBSAMPLE, text_agreement
from valuelab.frameworks.dilemmas import N_RANDOM, fit_weights, score_choices, tag_differences
from valuelab.frameworks.figures import (
    circle_and_panels,
    cultural_map,
    foundation_bars,
    framework_panels,
    robustness_figure,
    schwartz_circle,
    tag_bars,
)
from valuelab.frameworks.schwartz import HIGHER_ORDER, circumplex_fit
from valuelab.frameworks.wvs import POLES
from valuelab.items.dilemmas import TAG_LEVELS, dilemmas_frame, load_dilemma_source
from valuelab.items.files import seeded_subset
from valuelab.stats import N_BOOT, RANDOM_ROBUSTNESS_DRAWS, answers_per_prompt, jsonable, random_p
from valuelab.store import StoredModel


def aggregate_choices(responses: pd.DataFrame) -> pd.DataFrame:
    """Per dilemma: P(action a) debiased over orders and averaged over wordings; order and wording spread.

    Per wording, P(a) = ½[P(A | a first) + 1 − P(A | b first)] (as in `valuelab.elicit.pairwise`);
    `order_effect` is the mean |P(a | a first) − P(a | b first)|, `position_bias` the mean lean to label A,
    `paraphrase_spread` the range of P(a) over wordings, `entropy` the marginal action entropy in bits
    (Scherrer et al. 2023).
    """
    wide = responses.pivot_table(index=["dilemma_id", "wording"], columns="order",
                                 values=["p_action_a", "p_label_a"], sort=False)
    per_wording = pd.DataFrame({
        "p_a": 0.5 * (wide[("p_action_a", "ab")] + wide[("p_action_a", "ba")]),
        "order_effect": (wide[("p_action_a", "ab")] - wide[("p_action_a", "ba")]).abs(),
        "position_bias": 0.5 * (wide[("p_label_a", "ab")] + wide[("p_label_a", "ba")]) - 0.5,
    })
    grouped = per_wording.groupby(level="dilemma_id", sort=False)
    out = grouped.mean()
    out["paraphrase_spread"] = grouped["p_a"].max() - grouped["p_a"].min()
    p = out["p_a"].clip(1e-12, 1 - 1e-12)
    out["entropy"] = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    out["off_label"] = responses.groupby("dilemma_id", sort=False)["off_label"].mean()
    return out.reset_index()


def choice_robustness(responses: pd.DataFrame) -> dict[str, float]:
    """The run-level robustness numbers of a set of dilemma responses."""
    choices = aggregate_choices(responses)
    return {"order_effect": float(choices["order_effect"].mean()),
            "position_bias": float(choices["position_bias"].mean()),
            "paraphrase_spread": float(choices["paraphrase_spread"].mean()),
            "refusal_rate": float(responses["off_label"].mean())}


def _random_responses(responses: pd.DataFrame, answers: int, rng: np.random.Generator) -> pd.DataFrame:
    """The same prompts answered by a uniform-random respondent giving `answers` coin flips each."""
    p_label_a = random_p(len(responses), rng, answers)
    return responses.assign(p_label_a=p_label_a, off_label=0.0,
                            p_action_a=np.where(responses["order"] == "ab", p_label_a, 1.0 - p_label_a))


@dataclass
class DilemmaResult:
    """A dilemma run: the tidy responses, per-dilemma choices, value weights per level and the robustness."""

    set_name: str
    model: dict[str, str]
    responses: pd.DataFrame
    choices: pd.DataFrame
    scores: pd.DataFrame
    circumplex: dict[str, Any]
    robustness: dict[str, Any]
    robustness_baseline: dict[str, Any]
    calls: dict[str, int]

    def to_frame(self) -> pd.DataFrame:
        """The headline table: a row per level and tag (weight and percentage, intervals and baselines)."""
        return self.scores

    def items(self) -> pd.DataFrame:
        """P(choose action a) per dilemma: what `restat` recomputes the key numbers from."""
        return self.choices[["dilemma_id", "p_a"]]

    def to_dict(self) -> dict[str, Any]:
        """Every weight by level and tag; the four higher-order Schwartz values also as metrics."""
        levels: dict[str, dict[str, Any]] = {}
        for row in self.scores.to_dict("records"):
            levels.setdefault(row["level"], {})[row["tag"]] = {
                "weight": row["weight"], "ci": [row["weight_lo"], row["weight_hi"]],
                "baseline": row["weight_baseline"],
                "baseline_range": [row["weight_baseline_lo"], row["weight_baseline_hi"]],
                "selected_minus_neglected": row["smn"], "smn_ci": [row["smn_lo"], row["smn_hi"]],
                "smn_baseline_range": [row["smn_baseline_lo"], row["smn_baseline_hi"]],
                "dilemmas_on_one_side": row["one_side"]}
        # The higher-order values are the section's key numbers (metric dicts: value, ci, baseline, range).
        key_numbers = {tag.replace("-", "_"): {"value": w["weight"], "ci": w["ci"], "baseline": w["baseline"],
                                               "baseline_range": w["baseline_range"], "how_to_read": KEY_READING}
                       for tag, w in levels.get("higher_order", {}).items()}
        return jsonable({**key_numbers, "set": self.set_name, "model": self.model, "n_dilemmas": len(self.choices),
                           "prompts": len(self.responses), "calls": self.calls, "weights": levels,
                           "circumplex": self.circumplex, "robustness": self.robustness,
                           "robustness_baseline": self.robustness_baseline})

    def level_scores(self, name: str) -> pd.DataFrame:
        """One tag level's weights as the figures take them: by tag, score, lo, hi, baseline_lo, baseline_hi."""
        part = self.scores[self.scores["level"] == name].set_index("tag")
        return part.rename(columns={"weight": "score", "weight_lo": "lo", "weight_hi": "hi",
                                    "weight_baseline_lo": "baseline_lo", "weight_baseline_hi": "baseline_hi"})

    def figures(self) -> dict[str, Figure]:
        """Schwartz circle, foundation bars and cultural map of the choice weights; bars of the Maslow needs,
        Aristotle's virtues and Plutchik's emotions (one figure each); the robustness panel."""
        level = self.level_scores
        poles = level("wvs")

        def axis(dimension: str) -> float:  # a difference of two weights: no interval of its own is drawn
            negative, positive = POLES[dimension]
            return float(poles.loc[positive, "score"] - poles.loc[negative, "score"])

        return {
            "schwartz_circle": schwartz_circle(level("schwartz"), f"Dilemma choices: Schwartz values "
                                                                  f"({self.set_name})", WEIGHT_LABEL),
            "foundation_bars": foundation_bars(level("mft"), f"Dilemma choices: moral foundations "
                                                             f"({self.set_name})", WEIGHT_LABEL),
            "cultural_map": cultural_map(axis("surv-selfexp"), axis("trad-secular"),
                                         title="Dilemma choices: weight of positive minus negative pole"),
            **{f"{name}_bars": tag_bars(level(name), TAG_LEVELS[name],
                                        f"Dilemma choices: {title} ({self.set_name})", WEIGHT_LABEL)
               for name, title in MORE_THEORIES.items()},
            "robustness": robustness_figure({k: v for k, v in self.robustness.items() if k != "text"},
                                            self.robustness_baseline, f"Robustness ({self.set_name})"),
        }

    def theories_figure(self) -> Figure:
        """The Maslow needs, virtues and emotions in one figure of three panels."""
        return framework_panels(self._theory_panels(), WEIGHT_LABEL)

    def choice_figure(self) -> Figure:
        """The report's figure: the Schwartz circle with the Maslow, virtue and emotion panels beside it, as
        tall as the circle alone; the circle alone when no action carries those tags (MoralChoice, say)."""
        title = f"Dilemma choices: Schwartz values ({self.set_name})"
        scored = self.scores[self.scores["level"].isin(list(MORE_THEORIES))]
        if not scored["weight"].notna().any():
            return schwartz_circle(self.level_scores("schwartz"), title, WEIGHT_LABEL)
        return circle_and_panels(self.level_scores("schwartz"), self._theory_panels(), title, WEIGHT_LABEL)

    def _theory_panels(self) -> dict[str, tuple[pd.DataFrame, list[str]]]:
        return {title: (self.level_scores(name), TAG_LEVELS[name]) for name, title in MORE_THEORIES.items()}


WEIGHT_LABEL = "choice weight (logit)"
MORE_THEORIES = {"maslow": "Maslow's needs", "aristotle": "Aristotle's virtues", "plutchik": "Plutchik's emotions"}
"""DailyDilemmas' further theories (tag level -> title): scored like the foundations, drawn as bars."""

KEY_READING = ("Conditional-logit weight of actions serving this higher-order value: above 0 the model's choices "
               "lean toward them, below 0 away; a random respondent gives about 0.")


def run(model: StoredModel, set_name: str = "everyday", *, limit: int | None = None, seed: int = 0,
        system: str | None = None, n_boot: int = N_BOOT, n_random: int = N_RANDOM,
        text_subsample: int = TEXT_SUBSAMPLE) -> DilemmaResult:
    """Ask a dilemma set (3 wordings × 2 orders each) and score the choices at every tag level.

    `set_name` is a built-in set, a JSONL file in our schema, or a DailyDilemmas/MoralChoice CSV. `limit`
    takes a seeded random subset (the model sees 6 prompts per dilemma). Intervals resample dilemmas
    (`n_boot`); the baseline is a uniform-random respondent (`n_random` draws) with as many answers per
    prompt as the model.
    """
    dilemmas = seeded_subset(load_dilemma_source(set_name), limit, seed, "dilemmas", minimum=2)
    before = (model.counts.asked, model.counts.reused)
    responses = elicit_dilemmas(model, dilemmas, system)
    choices = aggregate_choices(responses)
    meta = pd.DataFrame([{"dilemma_id": d.id, "set": d.set, "domain": d.domain, "ambivalent": d.ambivalent,
                          "action_a": d.actions[0].text, "action_b": d.actions[1].text} for d in dilemmas])
    choices = meta.merge(choices, on="dilemma_id")
    per_prompt = answers_per_prompt(model.mode, model.n_samples)
    scores = score_choices(choices.set_index("dilemma_id")["p_a"], dilemmas_frame(dilemmas), TAG_LEVELS,
                           random_answers=len(ORDERS) * 3 * per_prompt, n_boot=n_boot, n_random=n_random,
                           seed=seed)
    refined = scores[scores["level"] == "schwartz"].set_index("tag")["weight"]
    robustness: dict[str, Any] = choice_robustness(responses) | {"acquiescence": None}
    requests = [r for d in dilemmas for *_, r in dilemma_requests(d, system)]
    text = text_agreement(model, requests, n=text_subsample, seed=seed)
    robustness |= {"text_agreement": text["agreement"], "text": text}
    rng = np.random.default_rng(seed + 1)
    draws = pd.DataFrame([choice_robustness(_random_responses(responses, per_prompt, rng))
                          for _ in range(RANDOM_ROBUSTNESS_DRAWS)])
    calls = {"asked": model.counts.asked - before[0], "reused": model.counts.reused - before[1]}
    return DilemmaResult(set_name=str(set_name), model=dict(model.identity), responses=responses,
                         choices=choices, scores=scores,
                         circumplex=circumplex_fit(refined.to_dict(), seed=seed), robustness=robustness,
                         robustness_baseline=draws.mean().to_dict(), calls=calls)


@functools.lru_cache(maxsize=8)
def _higher_order_differences(set_name: str) -> pd.DataFrame:
    return tag_differences(dilemmas_frame(load_dilemma_source(set_name)), "higher_order", list(HIGHER_ORDER))


def restat(items: pd.DataFrame, options: Mapping[str, Any], rng: np.random.Generator | None = None
           ) -> dict[str, float]:
    """The key numbers (higher-order weights) from per-dilemma P(a), on a resample of dilemmas if `rng`."""
    p_a = items.set_index("dilemma_id")["p_a"].astype(float).dropna()
    if rng is not None:
        p_a = p_a.iloc[rng.integers(0, len(p_a), len(p_a))]
    weights = fit_weights(p_a, _higher_order_differences(str(options.get("set_name", "everyday"))))
    return {tag.replace("-", "_"): float(w) for tag, w in weights.items()}


def figure(result: DilemmaResult) -> Figure:
    """The headline figure of a dilemma run: the Schwartz circle of the choice weights, with the Maslow needs,
    virtues and emotions beside it."""
    return result.choice_figure()


ANALYSIS = Analysis(
    name="dilemmas", title="Dilemmas",
    question="Which values do the model's choices in everyday and high-stakes dilemmas serve?",
    budget="dilemmas (6 prompts each: 3 wordings × 2 orders)", run=run, figure=figure, restat=restat,
    options=(Option("set_name", str, "dilemma set: everyday, high-stakes, all, or a JSONL/CSV file"), LIMIT_OPT,
             N_BOOT_OPT, Option("n_random", int, "uniform-random respondents for the baseline")),
    columns={
        "level": "tag level: schwartz (refined values), basic, higher_order, mft, wvs (cultural-map poles), maslow, "
                 "aristotle (virtues) or plutchik (emotions)",
        "tag": "value tag",
        "weight": "conditional-logit weight: >0 leans toward actions serving the tag",
        "weight_lo": "lower end of the weight's 95 % interval (resampling dilemmas)",
        "weight_hi": "upper end of the weight's 95 % interval",
        "weight_baseline": "mean weight of uniform-random respondents",
        "weight_baseline_lo": "2.5th percentile of the random respondents' weight",
        "weight_baseline_hi": "97.5th percentile of the random respondents' weight",
        "smn": "selected minus neglected, % (DailyDilemmas)",
        "smn_lo": "lower end of its 95 % interval",
        "smn_hi": "upper end of its 95 % interval",
        "smn_baseline": "mean of the random respondents",
        "smn_baseline_lo": "2.5th percentile of the random respondents",
        "smn_baseline_hi": "97.5th percentile of the random respondents",
        "selected": "expected times the tag was on the chosen side",
        "neglected": "expected times it was on the other side",
        "one_side": "dilemmas where the tag stands on one side only",
    },
)
