"""Held-out fit: how well the fitted utilities predict pairs the fit never saw (the paper's main emergence measure).

Accuracy uses the reference definition (Mazeika et al. 2025 §4): the observed P(a ≻ b) and the fitted one are
both thresholded at ½ and compared. The random responder says A or B with probability ½ per sample, so its
held-out labels are coin flips and its accuracy is ½ whatever the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import norm

from valuelab.analyses import BUDGET_OPT, HOLDOUT_PAIRS_OPT, N_BOOT_OPT, OUTCOMES_OPT, Analysis, Reading
from valuelab.analyses.common import (
    BASELINE_DRAWS,
    N_BOOT,
    Metric,
    baseline_samples,
    new_figure,
    random_p,
    resolve_outcomes,
    summarize,
)
from valuelab.elicit.outcomes import Outcome
from valuelab.errors import InputError
from valuelab.fit.utilities import elicit_utilities
from valuelab.store import StoredModel

CLIP = 1e-6


@dataclass
class AccuracyResult:
    """Held-out accuracy (headline) and log-loss with bootstrap intervals, and the active-learning curve."""

    accuracy: Metric
    log_loss: Metric
    pairs: pd.DataFrame
    history: pd.DataFrame
    calls: int = 0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.accuracy.row("heldout_accuracy"), self.log_loss.row("heldout_log_loss")])

    def to_dict(self) -> dict:
        return {"analysis": "accuracy", "headline": "heldout_accuracy", "heldout_accuracy": self.accuracy.to_dict(),
                "heldout_log_loss": self.log_loss.to_dict(), "n_heldout_pairs": len(self.pairs),
                "calls": self.calls}


def analyze(utilities: pd.DataFrame, preferences: pd.DataFrame, history: pd.DataFrame | None = None, *,
            samples_per_pair: int = 20, n_boot: int = N_BOOT, seed: int = 0) -> AccuracyResult:
    """Score a `UtilityResult`'s fit on its held-out pairs (`split == "heldout"`)."""
    held = preferences[preferences["split"] == "heldout"]
    u = utilities.set_index("id")
    mean_a, mean_b = u.loc[held["id_a"], "mean"].to_numpy(), u.loc[held["id_b"], "mean"].to_numpy()
    var_a, var_b = u.loc[held["id_a"], "variance"].to_numpy(), u.loc[held["id_b"], "variance"].to_numpy()
    predicted = norm.cdf((mean_a - mean_b) / np.sqrt(var_a + var_b))
    observed = held["p_a"].to_numpy(float)
    hit = (predicted >= 0.5) == (observed >= 0.5)
    clipped = np.clip(predicted, CLIP, 1 - CLIP)
    loss = -(observed * np.log(clipped) + (1 - observed) * np.log(1 - clipped))
    rng = np.random.default_rng(seed)
    coin = random_p((BASELINE_DRAWS, len(held)), rng, samples_per_pair)
    base_acc = ((coin >= 0.5) == (predicted >= 0.5)).mean(axis=1)
    base_loss = -(coin * np.log(clipped) + (1 - coin) * np.log(1 - clipped)).mean(axis=1)
    pairs = held.assign(predicted=predicted, correct=hit, log_loss=loss)
    return AccuracyResult(summarize(lambda i: hit[i].mean(), len(held), base_acc, n_boot=n_boot, seed=seed),
                          summarize(lambda i: loss[i].mean(), len(held), base_loss, n_boot=n_boot, seed=seed),
                          pairs, history if history is not None else pd.DataFrame())


def run(model: StoredModel, *, outcomes: str | Path | Sequence[Outcome] = "quick", budget: int | None = None,
        seed: int = 0, holdout_pairs: float = 0.05, n_boot: int = N_BOOT, **utility_options) -> AccuracyResult:
    """Elicit utilities with a held-out share of pairs and score the fit on them."""
    items = resolve_outcomes(outcomes)
    held = min(int(holdout_pairs * len(items) * (len(items) - 1) / 2), 1000)
    if held == 0:
        raise InputError(f"a holdout of {holdout_pairs:g} leaves no held-out pair among {len(items)} outcomes; "
                         "raise --holdout-pairs or use more outcomes", field="holdout_pairs")
    result = elicit_utilities(model, items, budget=budget, seed=seed, holdout_pairs=holdout_pairs, **utility_options)
    out = analyze(result.utilities, result.preferences, result.history, samples_per_pair=baseline_samples(model),
                  n_boot=n_boot, seed=seed)
    return replace(out, calls=result.calls)


def figure(result: AccuracyResult) -> Figure:
    """Held-out accuracy after each active-learning round, with the random responder's level."""
    fig, ax = new_figure()
    if not result.history.empty and "accuracy" in result.history:
        ax.plot(result.history["queries"], result.history["accuracy"], marker="o", label="model")
    ax.axhline(result.accuracy.baseline, color="black", linestyle="--", label="random responder")
    ax.set_xlabel("pairs queried")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    return fig


ANALYSIS = Analysis(
    name="accuracy", title="Held-out fit accuracy",
    question="How well do fitted utilities predict choices the fit never saw?",
    budget="pairs of outcomes (each asked in both orders)", run=run, figure=figure, headline="heldout_accuracy",
    options=(OUTCOMES_OPT, BUDGET_OPT, HOLDOUT_PAIRS_OPT, N_BOOT_OPT),
    readings={
        "heldout_accuracy": Reading("share", "higher",
                       "How often the fitted utilities predict a choice the fit never saw; 0.5 is chance."),
        "heldout_log_loss": Reading("nats", "lower",
                       "Cross-entropy of the fitted choice probabilities on held-out pairs; lower is a better fit."),
    },
)
