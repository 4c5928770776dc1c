"""Utilities over a set of outcomes: active pair sampling drives which pairs are asked, both orders, through the store.

Each asked pair becomes soft counts for the Thurstonian fit (Mazeika et al. 2025 §3, fitted on aggregated soft
labels): in log-prob mode one observation split as (P(a≻b), 1 − P(a≻b)) from the order-debiased probability; in
sample mode the label votes of both orders, refusals left out and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from valuelab.elicit.outcomes import Outcome
from valuelab.elicit.pairwise import PairPreference, pair_requests, prefer_pairs
from valuelab.elicit.text_check import text_agreement
from valuelab.errors import InputError
from valuelab.fit.active import InformationGain, reference_select, run_active
from valuelab.fit.bootstrap import bootstrap
from valuelab.fit.io import to_comparisons
from valuelab.prompts import DEFAULT_TEMPLATE, Template
from valuelab.store import CallCounts, StoredModel

SELECTORS = {"information-gain": InformationGain(), "reference": reference_select}
NEAR_INDIFFERENT = 0.1
"""|P(a≻b) − ½| below this counts as near-indifferent."""


@dataclass
class UtilityResult:
    """Fitted utilities (`utilities`), every asked pair (`preferences`), run metrics and the active-learning curve."""

    utilities: pd.DataFrame
    preferences: pd.DataFrame
    metrics: dict
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def calls(self) -> int:
        """Prompts asked of the model (not reused from the store)."""
        return int(self.metrics["prompts_asked"])

    def to_frame(self) -> pd.DataFrame:
        return self.utilities

    def to_dict(self) -> dict:
        return self.metrics

    def utility(self, outcome_id: str) -> float:
        return float(self.utilities.set_index("id").at[outcome_id, "mean"])


def soft_counts(pref: PairPreference) -> tuple[float, float]:
    """(wins for first, wins for second) from one pair asked both ways."""
    if pref.forward.mode == "sample":
        return (float(pref.forward.n_a + pref.backward.n_b), float(pref.forward.n_b + pref.backward.n_a))
    return pref.p_first, 1.0 - pref.p_first


def preference_rows(pairs: Sequence[tuple[str, str]], prefs: Sequence[PairPreference], split: str) -> list[dict]:
    rows = []
    for (id_a, id_b), p in zip(pairs, prefs, strict=True):
        wins_a, wins_b = soft_counts(p)
        rows.append({"id_a": id_a, "id_b": id_b, "p_a": p.p_first, "p_a_forward": p.forward.p_a,
                     "p_a_backward": p.backward.p_a, "position_bias": p.position_bias,
                     "mass_forward": p.forward.mass, "mass_backward": p.backward.mass, "mass": p.mass,
                     "refusals": p.forward.n_refusal + p.backward.n_refusal, "mode": p.forward.mode,
                     "wins_a": wins_a, "wins_b": wins_b, "split": split})
    return rows


def check_outcomes(outcomes: Sequence[Outcome]) -> None:
    if len(outcomes) < 3:
        raise InputError(f"need at least 3 outcomes to fit utilities, got {len(outcomes)}")
    ids = [o.id for o in outcomes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"duplicate outcome id {dup!r}", field="id")


def elicit_utilities(model: StoredModel, outcomes: Sequence[Outcome], *, template: str | Template = DEFAULT_TEMPLATE,
                     system: str | None = None, budget: int | None = None, seed: int = 0, holdout_pairs: float = 0.05,
                     bootstrap_samples: int = 0, selector: str = "information-gain", batch_size: int | None = None,
                     family: str = "thurstonian", text_check: int = 0) -> UtilityResult:
    """Elicit and fit utilities over `outcomes`.

    `budget` is the number of unordered pairs queried for training (default: the reference's 2·N·log₂N, capped at
    all pairs; at least N); each is asked in both orders. `holdout_pairs` of all pairs (at most 1000) are asked as well
    and only scored. `selector` is "information-gain" (ours) or "reference" (the paper's heuristic).
    `text_check` prompts (a seeded subsample of the asked ones) are also answered in free text, greedily, to
    measure whether the top label by log-probability is what the model writes (`text_agreement`).
    """
    check_outcomes(outcomes)
    if selector not in SELECTORS:
        raise InputError(f"unknown selector {selector!r}; choose one of {', '.join(SELECTORS)}", field="selector")
    text = {o.id: o.text for o in outcomes}
    n = len(outcomes)
    all_pairs = n * (n - 1) // 2
    held = min(int(holdout_pairs * all_pairs), 1000)
    budget = min(budget if budget is not None else int(2 * n * np.log2(n)), all_pairs - held)
    if budget < n:
        raise InputError(f"a budget of {budget} pairs is below the minimum of {n} (one per outcome): the first "
                         "round asks a cycle through all outcomes so the comparison graph is connected",
                         field="budget")
    rows: list[dict] = []

    def query(pairs: list[tuple[str, str]]) -> pd.DataFrame:
        prefs = prefer_pairs(model, [(text[a], text[b]) for a, b in pairs], template, system)
        new = preference_rows(pairs, prefs, "train")
        rows.extend(new)
        return pd.DataFrame([{"item_a": r["id_a"], "item_b": r["id_b"], "wins_a": r["wins_a"],
                              "wins_b": r["wins_b"]} for r in new], columns=["item_a", "item_b", "wins_a", "wins_b"])

    counts_before = model.counts.copy()
    active = run_active(SELECTORS[selector], query, list(text), budget=budget,
                        batch_size=batch_size or max(n, 16), seed=seed, holdout_fraction=holdout_pairs,
                        holdout_cap=1000,
                        holdout_seed=seed, track_holdout=held > 0, model=family)
    preferences = pd.DataFrame(rows)
    if active.holdout is not None:
        held_pairs = set(zip(active.holdout["item_a"], active.holdout["item_b"], strict=True))
        is_held = [pair in held_pairs for pair in zip(preferences["id_a"], preferences["id_b"], strict=True)]
        preferences.loc[is_held, "split"] = "heldout"
    by_id = {o.id: o for o in outcomes}
    utilities = pd.DataFrame({"id": list(active.fit.items_), "mean": active.fit.mean_,
                              "variance": active.fit.variance_})
    utilities.insert(1, "text", [by_id[i].text for i in utilities["id"]])
    utilities.insert(2, "category", [by_id[i].category for i in utilities["id"]])
    train = preferences[preferences["split"] == "train"]
    metrics = {
        "n_outcomes": n, "pairs_trained": int(len(train)), "pairs_held_out": int(held),
        # prompts: both orders of every pair behind the fit, asked or reused; the rest is what this run asked.
        "prompts": int(2 * len(preferences)), **asked_since(model, counts_before),
        "mode": model.mode, "template": template if isinstance(template, str) else template.name,
        "selector": selector, "seed": seed,
        # Over every asked pair, as the paper averages over all edges (active selection biases training pairs
        # toward close calls). The guard keeps 8/20 = 0.4 on the boundary, outside, despite rounding.
        "average_confidence": float(np.mean(np.maximum(preferences["p_a"], 1 - preferences["p_a"]))),
        "near_indifferent_share": float(np.mean(np.abs(preferences["p_a"] - 0.5) < NEAR_INDIFFERENT - 1e-9)),
        "position_bias": float(preferences["position_bias"].mean()),
        "position_bias_abs": float(preferences["position_bias"].abs().mean()),
        "low_mass_share": float(np.mean(preferences["mass"] < 0.5)),
        "mean_choice_mass": float(preferences["mass"].mean()),
        "refusal_rate": refusal_rate(preferences, model),
    }
    if text_check:
        asked = [r for a, b in zip(preferences["id_a"], preferences["id_b"], strict=True)
                 for r in pair_requests(text[a], text[b], template, system)]
        check = text_agreement(model, asked, n=text_check, seed=seed)
        metrics.update({"text_agreement": check["agreement"], "text_refusal": check["text_refusal"],
                        "text_checked": check["n"]})
        metrics.update(asked_since(model, counts_before))
    if held:
        final = active.history[-1]
        metrics.update({"heldout_accuracy": final["accuracy"], "heldout_log_loss": final["log_loss"],
                        "heldout_calibration_error": final["calibration_error"]})
    if bootstrap_samples:
        comp = to_comparisons(train.rename(columns={"id_a": "item_a", "id_b": "item_b"})[
            ["item_a", "item_b", "wins_a", "wins_b"]])
        boot = bootstrap(comp, bootstrap_samples, model=family, seed=seed)
        bounds = boot.to_frame().rename(columns={"item": "id"})
        utilities = utilities.merge(bounds[["id", "mean_lo", "mean_hi", "mean_sd"]], on="id", how="left")
    return UtilityResult(utilities.sort_values("mean", ascending=False, ignore_index=True), preferences, metrics,
                         active.to_frame())


def asked_since(model: StoredModel, before: CallCounts) -> dict[str, int]:
    """Prompts asked of the model since `before` (reused ones left out), the requests they took (retries and
    probes included) and the samples drawn (sample mode)."""
    cost = model.counts.cost_since(before)
    return {"prompts_asked": cost["prompts_asked"], "requests": cost["requests"], "samples": cost["samples"]}


def refusal_rate(preferences: pd.DataFrame, model: StoredModel) -> float:
    """Share of sampled answers that named neither label (sample mode); 0 in log-prob mode, where low choice mass
    plays that role."""
    if model.mode != "sample" or preferences.empty:
        return 0.0
    return float(preferences["refusals"].sum() / (2 * len(preferences) * model.n_samples))

