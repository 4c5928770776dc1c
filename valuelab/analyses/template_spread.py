"""Template spread: do the utilities survive a change of wording? The same outcomes, budget and seed are asked
with every pairwise template, and the fitted utilities compared.

The headline is the mean Pearson correlation between the templates' utility vectors over the outcomes (1: the
wording does not matter; 0: the utilities are an artefact of one wording), with a bootstrap interval over
outcomes. We also report the spread, the mean over outcomes of the standard deviation across templates of the
z-scored utilities (0 when the templates agree; about 1 when they are unrelated). The random responder's
utilities are independent across templates, so its correlation is centred on 0, drawn here as correlations of
independent standard-normal vectors of the same length. Robustness to prompt wording is a standing caveat for
forced-choice elicitation (Mazeika et al. 2025 §4 vary the template; reference/emergent-values.md §6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.analyses import BUDGET_OPT, N_BOOT_OPT, OUTCOMES_OPT, Analysis, Reading
from valuelab.analyses.common import (
    BASELINE_DRAWS,
    N_BOOT,
    Metric,
    check_budget,
    new_figure,
    resolve_outcomes,
    summarize,
)
from valuelab.elicit.outcomes import Outcome
from valuelab.errors import InputError
from valuelab.fit.utilities import elicit_utilities
from valuelab.prompts import DEFAULT_TEMPLATE, PAIRWISE_TEMPLATES
from valuelab.store import StoredModel


def mean_correlation(utilities: np.ndarray) -> float:
    """Mean pairwise Pearson r between the columns (templates) of an outcomes × templates array."""
    r = np.corrcoef(utilities, rowvar=False)
    return float(r[np.triu_indices_from(r, k=1)].mean())


def spread(utilities: np.ndarray) -> float:
    """Mean over outcomes of the standard deviation across templates of the z-scored utilities."""
    z = (utilities - utilities.mean(axis=0)) / utilities.std(axis=0)
    return float(z.std(axis=1, ddof=1).mean())


@dataclass
class TemplateSpreadResult:
    """Utilities per template (`utilities`: id, text, one column per template), pairwise correlations."""

    template_correlation: Metric
    spread: Metric
    utilities: pd.DataFrame
    pairwise: pd.DataFrame
    metrics: dict[str, dict]
    calls: int = 0
    budget: int | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.template_correlation.row("template_correlation"), self.spread.row("spread")])

    def to_dict(self) -> dict:
        return {"analysis": "template-spread", "headline": "template_correlation",
                "template_correlation": self.template_correlation.to_dict(), "spread": self.spread.to_dict(),
                "pairwise": self.pairwise.to_dict("records"), "per_template": self.metrics,
                "n_outcomes": len(self.utilities), "calls": self.calls, "budget": self.budget,
                "baseline_is": "independent utilities per template (a random responder)"}


def analyze(utilities: pd.DataFrame, templates: Sequence[str], *, n_boot: int = N_BOOT,
            seed: int = 0) -> tuple[Metric, Metric, pd.DataFrame]:
    """Correlation and spread of the `templates` columns of `utilities` (one row per outcome)."""
    values = utilities[list(templates)].to_numpy(float)
    n = len(values)
    rng = np.random.default_rng(seed)
    random = rng.standard_normal((BASELINE_DRAWS, n, len(templates)))
    correlation = summarize(lambda i: mean_correlation(values[i]), n,
                            [mean_correlation(d) for d in random], n_boot=n_boot, seed=seed)
    spread_metric = summarize(lambda i: spread(values[i]), n, [spread(d) for d in random], n_boot=n_boot,
                              seed=seed)
    pairwise = pd.DataFrame([{"template_a": a, "template_b": b,
                              "pearson_r": float(np.corrcoef(utilities[a], utilities[b])[0, 1])}
                             for a, b in combinations(templates, 2)])
    return correlation, spread_metric, pairwise


def run(model: StoredModel, *, outcomes: str | Path | Sequence[Outcome] = "quick", budget: int | None = None,
        seed: int = 0, templates: Sequence[str] | None = None, system: str | None = None, n_boot: int = N_BOOT,
        **utility_options) -> TemplateSpreadResult:
    """Fit utilities over `outcomes` once per template (default: every built-in pairwise template) and
    compare them. `budget` is the number of training pairs per template (default 2·N·log₂N); the default
    template's answers are shared with the other stages that use the same outcomes, budget and seed."""
    templates = list(templates or PAIRWISE_TEMPLATES)
    unknown = [t for t in templates if t not in PAIRWISE_TEMPLATES]
    if len(templates) < 2 or unknown:
        raise InputError(f"template spread needs at least two known templates ({', '.join(PAIRWISE_TEMPLATES)}); "
                         f"got {templates}", field="templates")
    items = resolve_outcomes(outcomes)
    check_budget(budget, len(items), "pairs (one per outcome)")
    calls_before = model.counts.asked
    table = pd.DataFrame({"id": [o.id for o in items], "text": [o.text for o in items]})
    metrics = {}
    for template in templates:
        result = elicit_utilities(model, items, template=template, system=system, budget=budget, seed=seed,
                                  **utility_options)
        table[template] = table["id"].map(result.utilities.set_index("id")["mean"])
        metrics[template] = {k: result.metrics.get(k) for k in ("heldout_accuracy", "average_confidence",
                                                                "position_bias")}
    correlation, spread_metric, pairwise = analyze(table, templates, n_boot=n_boot, seed=seed)
    return TemplateSpreadResult(correlation, spread_metric, table, pairwise, metrics,
                                calls=int(model.counts.asked - calls_before), budget=budget)


def figure(result: TemplateSpreadResult) -> Figure:
    """Each other template's utilities against the default template's, with the identity line."""
    fig, ax = new_figure(6.4, 4.8)
    templates = [c for c in result.utilities.columns if c in PAIRWISE_TEMPLATES]
    reference = DEFAULT_TEMPLATE if DEFAULT_TEMPLATE in templates else templates[0]
    x = result.utilities[reference]
    for template in templates:
        if template != reference:
            r = np.corrcoef(x, result.utilities[template])[0, 1]
            ax.scatter(x, result.utilities[template], s=14, alpha=0.7, label=f"{template} (r = {r:.2f})")
    reach = float(np.nanmax(np.abs(result.utilities[templates].to_numpy()))) * 1.05
    ax.plot([-reach, reach], [-reach, reach], color="0.5", lw=0.8, linestyle="--", label="same utility")
    ax.set(xlabel=f"utility with '{reference}'", ylabel="utility with another template",
           title="Template spread: utilities under each wording")
    ax.legend(fontsize=8)
    return fig


ANALYSIS = Analysis(
    name="template-spread", title="Template spread",
    question="Do utilities stay the same when the question is worded differently?",
    budget="pairs of outcomes per template (each asked in both orders)",
    run=run, figure=figure, headline="template_correlation",
    options=(OUTCOMES_OPT, BUDGET_OPT, N_BOOT_OPT),
    readings={
        "template_correlation": Reading("correlation", "higher",
                       "Mean correlation of utilities across prompt wordings; 1 means wording does not matter."),
    },
)
