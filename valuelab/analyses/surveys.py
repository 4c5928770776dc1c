"""Survey instruments: valuelab's own Schwartz, moral-foundations and cultural-map items (surveys/SCHEMA.md).

The analysis asks every item of an instrument with its scale forward and reversed (`valuelab.elicit.surveys`),
averages the two directions per item, and scores the ratings with the instrument's own key
(`valuelab.frameworks.surveys`). Intervals are a stratified item bootstrap, the baseline a uniform-random
respondent with as many answers per prompt as the model; the robustness numbers (order effect, primacy,
refusals, acquiescence, catch items, log-prob versus text agreement) come with their own random baseline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.analyses import LIMIT_OPT, N_BOOT_OPT, Analysis, Option
from valuelab.elicit.surveys import SHOWN, elicit_survey, item_request
from valuelab.elicit.text_check import TEXT_SUBSAMPLE, text_agreement
from valuelab.frameworks.figures import cultural_map, foundation_bars, robustness_figure, schwartz_circle
from valuelab.frameworks.schwartz import circumplex_fit
from valuelab.frameworks.surveys import SCORERS
from valuelab.frameworks.wvs import POLES, quadrant_countries
from valuelab.items.files import seeded_subset
from valuelab.items.surveys import Instrument, load_instrument
from valuelab.stats import (
    N_BOOT,
    RANDOM_ROBUSTNESS_DRAWS,
    answers_per_prompt,
    frame_baseline,
    frame_interval,
    jsonable,
    percentile_interval,
)
from valuelab.store import StoredModel

HEADLINE_LEVELS: dict[str, tuple[str, ...]] = {
    "schwartz-mrat": ("refined", "basic", "higher-order", "summary"),
    "mft-means": ("foundation", "index", "summary"),
    "iw-projection": ("indicator", "dimension"),
}
"""Score rows reported with intervals and baselines, per scoring method."""



def aggregate_ratings(responses: pd.DataFrame) -> pd.DataFrame:
    """Per item: the rating averaged over the two directions, and how much the direction moved it.

    `order_effect` is |forward − reversed| as a share of the scale range; `primacy` is signed, > 0 when
    the rating leans towards whichever option was shown first.
    """
    wide = responses.pivot_table(index="item_id", columns="direction", values="rating", sort=False)
    first = responses[responses["direction"] == "forward"].set_index("item_id")
    span = first["high"] - first["low"]
    toward_first = np.sign(first["first_code"] - (first["high"] + first["low"]) / 2)
    out = pd.DataFrame({"rating": wide[list(SHOWN)].mean(axis=1), "forward": wide["forward"],
                        "reversed": wide["reversed"]})
    out["order_effect"] = (out["forward"] - out["reversed"]).abs() / span
    out["primacy"] = (out["forward"] - out["reversed"]) * toward_first / span
    out["off_label"] = responses.groupby("item_id", sort=False)["off_label"].mean()
    return out.reset_index()


def resample_ratings(instrument: Instrument, ratings: dict[str, float],
                     rng: np.random.Generator) -> dict[str, float]:
    """A stratified item bootstrap that keeps item ids, so the unchanged scoring functions score the resample.

    Each item takes the answer of a random item measuring the same thing on the same scale (same dimension
    or cultural-map indicator, part and keying); a stratum of one item (a catch item, most map indicators)
    keeps its answer and gets no interval.
    """
    strata: dict[tuple, list[str]] = {}
    for it in instrument.items:
        if it.id in ratings:
            measured = it.indicator or it.dimension
            key = ("catch", it.id) if it.catch else (measured, it.part, it.keyed, it.scale)
            strata.setdefault(key, []).append(it.id)
    return {iid: ratings[members[rng.integers(len(members))]]
            for members in strata.values() for iid in members}


def random_ratings(instrument: Instrument, item_ids: Sequence[str], answers: int,
                   rng: np.random.Generator) -> dict[str, float]:
    """Ratings of a uniform-random respondent: the mean of `answers` codes drawn uniformly per direction."""
    return {iid: float(np.mean(rng.choice(instrument.item(iid).scale.values, 2 * answers)))
            for iid in item_ids}


def _headline(instrument: Instrument, frame: pd.DataFrame) -> pd.Series:
    kept = frame[frame["level"].isin(HEADLINE_LEVELS[instrument.method])]
    return pd.Series(kept["score"].to_numpy(float), index=pd.MultiIndex.from_frame(kept[["level", "name"]]))


def survey_robustness(ratings: pd.DataFrame, responses: pd.DataFrame) -> dict[str, float]:
    """The run-level robustness numbers of a set of survey responses."""
    return {"order_effect": float(ratings["order_effect"].mean()),
            "primacy": float(ratings["primacy"].mean()), "refusal_rate": float(responses["off_label"].mean())}


@dataclass
class SurveyResult:
    """A survey run: tidy responses, per-item ratings, scores with intervals and baselines, robustness."""

    instrument: str
    method: str
    model: dict[str, str]
    responses: pd.DataFrame
    ratings: pd.DataFrame
    scores: pd.DataFrame
    circumplex: dict[str, Any] | None
    robustness: dict[str, Any]
    robustness_baseline: dict[str, Any]
    calls: dict[str, int]

    def to_frame(self) -> pd.DataFrame:
        """The headline table: level, name, score, lo, hi, baseline, baseline_lo, baseline_hi, n_items."""
        return self.scores

    def items(self) -> pd.DataFrame:
        """The rating per item (both directions averaged): what `restat` recomputes the key numbers from."""
        return self.ratings[["item_id", "rating"]]

    def to_dict(self) -> dict[str, Any]:
        """Every score by level and name; the instrument's top level (higher-order values, foundations or
        cultural-map dimensions) also as metrics."""
        scores: dict[str, dict[str, Any]] = {}
        for row in self.scores.to_dict("records"):
            scores.setdefault(row["level"], {})[row["name"]] = {
                "score": row["score"], "ci": [row["lo"], row["hi"]], "baseline": row["baseline"],
                "baseline_range": [row["baseline_lo"], row["baseline_hi"]], "n_items": row["n_items"]}
        extra = {}
        if self.method == "iw-projection":
            dims = self.level("dimension")
            quadrant = quadrant_countries(tuple(dims.loc["surv-selfexp", ["lo", "hi"]]),
                                          tuple(dims.loc["trad-secular", ["lo", "hi"]]))
            extra["map_quadrant_countries"] = quadrant
            extra["map_quadrant_note"] = (
                "undetermined: an interval includes 0" if quadrant is None else
                "published country positions in the same quadrant (a qualitative reading: different scales)")
        key_level = KEY_LEVEL.get(self.method)
        key_numbers = {KEY_NAMES.get(name, name).replace("-", "_"): {
            "value": row["score"], "ci": row["ci"], "baseline": row["baseline"],
            "baseline_range": row["baseline_range"], "how_to_read": f"The instrument's {key_level} score, "
            "scored with its own key; the random respondent's mean and range are beside it."}
            for name, row in scores.get(key_level, {}).items()}
        return jsonable({**key_numbers, "instrument": self.instrument, "method": self.method, "model": self.model,
                           "n_items": len(self.ratings), "prompts": len(self.responses), "calls": self.calls,
                           "scores": scores, "circumplex": self.circumplex, "robustness": self.robustness,
                           "robustness_baseline": self.robustness_baseline, **extra})

    def level(self, name: str) -> pd.DataFrame:
        return self.scores[self.scores["level"] == name].set_index("name")

    def figures(self) -> dict[str, Figure]:
        """The instrument's framework figure (circle, bars or map) and the robustness panel."""
        title = f"{self.instrument}: {self.model.get('model', '')}"
        figures = {"robustness": robustness_figure({k: v for k, v in self.robustness.items() if k != "text"},
                                                   self.robustness_baseline, f"Robustness ({title})")}
        if self.method == "schwartz-mrat":
            figures["schwartz_circle"] = schwartz_circle(self.level("refined"), title, "centred score (MRAT)")
        elif self.method == "mft-means":
            figures["foundation_bars"] = foundation_bars(self.level("foundation"), title, "foundation score",
                                                         zero=2.5)
        else:
            dims = self.level("dimension")
            x, y = dims.loc["surv-selfexp"], dims.loc["trad-secular"]
            figures["cultural_map"] = cultural_map(
                float(x["score"]), float(y["score"]), x_interval=(x["lo"], x["hi"]),
                y_interval=(y["lo"], y["hi"]), title=title,
                baseline=(x["baseline_lo"], x["baseline_hi"], y["baseline_lo"], y["baseline_hi"]))
        return figures


KEY_LEVEL = {"schwartz-mrat": "higher-order", "mft-means": "foundation", "iw-projection": "dimension"}
"""The level of each scoring method shown as the section's key numbers."""
KEY_NAMES = {"trad-secular": "traditional_to_secular", "surv-selfexp": "survival_to_self_expression"}


def run(model: StoredModel, instrument: str | Path = "schwartz", *, limit: int | None = None, seed: int = 0,
        system: str | None = None, n_boot: int = N_BOOT, n_random: int = 200,
        text_subsample: int = TEXT_SUBSAMPLE) -> SurveyResult:
    """Ask an instrument (each item forward and reversed) and score it with its own key.

    `instrument` is a built-in name, a name in `surveys/local/`, or a YAML path. `limit` asks a seeded
    random subset of items (scores then rest on fewer items; see `n_items`). Intervals are a stratified item
    bootstrap (`n_boot`); the baseline a uniform-random respondent with as many answers per prompt as the
    model.
    """
    inst = load_instrument(instrument)
    items = seeded_subset(inst.items, limit, seed, "items", minimum=0)
    before = (model.counts.asked, model.counts.reused)
    responses = elicit_survey(model, inst, items, system)
    ratings = aggregate_ratings(responses)
    observed = {iid: r for iid, r in zip(ratings["item_id"], ratings["rating"], strict=True)
                if np.isfinite(r)}
    score = SCORERS[inst.method]
    full = score(observed, inst)
    point = _headline(inst, full)
    rng = np.random.default_rng(seed)
    boot = pd.DataFrame([_headline(inst, score(resample_ratings(inst, observed, rng), inst))
                         for _ in range(n_boot)])
    per_prompt = answers_per_prompt(model.mode, model.n_samples)
    null = pd.DataFrame([_headline(inst, score(random_ratings(inst, list(observed), per_prompt, rng), inst))
                         for _ in range(n_random)])
    n_items = full.set_index(["level", "name"])["n_items"]
    scores = pd.concat([point.rename("score"), frame_interval(boot), frame_baseline(null), n_items], axis=1,
                       join="inner")
    scores = scores.rename_axis(["level", "name"]).reset_index()
    scores.loc[scores["n_items"] < 2, ["lo", "hi"]] = np.nan  # one item: nothing to resample
    if inst.method == "iw-projection":  # a dimension is the mean of its indicators: resample those instead
        scores = _indicator_intervals(scores, inst, rng, n_boot)
    circumplex = None
    if inst.method == "schwartz-mrat":
        refined = scores[scores["level"] == "refined"].set_index("name")["score"]
        circumplex = circumplex_fit(refined.to_dict(), seed=seed)
    robustness: dict[str, Any] = survey_robustness(ratings, responses) | {"paraphrase_spread": None}
    summary = full[full["level"] == "summary"].set_index("name")["score"] if "summary" in set(full["level"]) \
        else pd.Series(dtype=float)
    robustness["acquiescence"] = float(summary["acquiescence"]) if "acquiescence" in summary else None
    if "catch" in summary:
        robustness["catch_passed"] = float(summary["catch"])
    text = text_agreement(model, [item_request(inst, it, shown, system) for it in items for shown in SHOWN],
                          n=text_subsample, seed=seed)
    robustness |= {"text_agreement": text["agreement"], "text": text}
    draws = []
    for _ in range(RANDOM_ROBUSTNESS_DRAWS):
        fake = responses.assign(rating=[float(np.mean(rng.choice(inst.item(i).scale.values, per_prompt)))
                                        for i in responses["item_id"]], off_label=0.0)
        draws.append(survey_robustness(aggregate_ratings(fake), fake))
    return SurveyResult(inst.id, inst.method, dict(model.identity), responses, ratings, scores, circumplex,
                        robustness, pd.DataFrame(draws).mean().to_dict(),
                        {"asked": model.counts.asked - before[0], "reused": model.counts.reused - before[1]})


_instrument = functools.lru_cache(maxsize=8)(load_instrument)  # a diff rescores the same instrument 2,000 times


def restat(items: pd.DataFrame, options: Mapping[str, Any], rng: np.random.Generator | None = None
           ) -> dict[str, float]:
    """The key numbers from per-item ratings, on a stratified item resample if `rng` (as the intervals are).

    Cultural-map dimensions rest mostly on one-item indicators, which an item resample cannot vary, so
    that method gives nothing here and a diff falls back on the two runs' own intervals."""
    inst = _instrument(str(options.get("instrument", "schwartz")))
    if inst.method == "iw-projection":
        return {}
    observed = {iid: float(r) for iid, r in zip(items["item_id"], items["rating"], strict=True) if np.isfinite(r)}
    if rng is not None:
        observed = resample_ratings(inst, observed, rng)
    full = SCORERS[inst.method](observed, inst)
    key = full[full["level"] == KEY_LEVEL.get(inst.method)]
    return {KEY_NAMES.get(n, n).replace("-", "_"): float(v) for n, v in zip(key["name"], key["score"], strict=True)}


def _indicator_intervals(scores: pd.DataFrame, inst: Instrument, rng: np.random.Generator,
                         n_boot: int) -> pd.DataFrame:
    """Cultural-map dimension intervals from resampling its indicators (most indicators are a single item)."""
    indicators = scores[scores["level"] == "indicator"].set_index("name")["score"].dropna()
    spec = inst.scoring["indicators"]
    for dimension in POLES:
        values = indicators[[spec[code]["dimension"] == dimension for code in indicators.index]].to_numpy()
        if len(values):
            means = [float(np.mean(values[rng.integers(0, len(values), len(values))])) for _ in range(n_boot)]
            row = (scores["level"] == "dimension") & (scores["name"] == dimension)
            scores.loc[row, ["lo", "hi"]] = list(percentile_interval(means)) if means else np.nan
    return scores


def figure(result: SurveyResult) -> Figure:
    """The headline figure of a survey run: its framework figure."""
    return next(fig for name, fig in result.figures().items() if name != "robustness")


ANALYSIS = Analysis(
    name="survey", title="Survey",
    question="How does the model rate itself on a value questionnaire, scored with the instrument's own key?",
    budget="items (each asked with its scale forward and reversed)", run=run, figure=figure, restat=restat,
    options=(Option("instrument", str, "schwartz, mft, wvs, a name in surveys/local/ or a YAML file"),
             LIMIT_OPT, N_BOOT_OPT, Option("n_random", int, "uniform-random respondents for the baseline")),
    columns={
        "level": "what kind of score the row is (the instrument's levels, e.g. value, foundation, dimension, summary)",
        "name": "what is scored",
        "score": "the instrument's score",
        "lo": "lower end of its 95 % interval (item bootstrap)",
        "hi": "upper end of its 95 % interval",
        "n_items": "items behind the score",
    },
)
