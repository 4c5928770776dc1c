"""Expected utility with explicit lotteries: is the utility of a gamble the probability-weighted utility of
its outcomes?

Following the reference's `expected_utility` experiment (emergent-values §6.3; paper Fig. 6): lotteries over
2 to `max_size` base outcomes are generated (seeded; sizes split evenly; probabilities Uniform(0.01, 0.99),
normalised and rounded to whole percents), written in our own wording, and fitted jointly with the base
outcomes. With U the fitted utilities, EU(L) = Σ pᵢ·U(oᵢ). We report Pearson r(U(L), EU(L)) (headline),
Spearman ρ, the mean absolute error between the z-scored U and EU vectors (the paper's "expected utility
loss") and the share of lottery pairs whose U order matches their EU order (all pairs, not a sample). EU is
affine-equivariant, so the arbitrary scale of Thurstonian utilities does not matter. A random responder's
utilities are noise, independent across items: r ≈ 0, z-MAE ≈ 2/√π ≈ 1.13, order agreement ≈ ½.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import pearsonr

from valuelab.analyses import BUDGET_OPT, N_BOOT_OPT, OUTCOMES_OPT, Analysis, Option, Reading
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
from valuelab.prompts import Template
from valuelab.stats import pearson, spearman, zscore
from valuelab.store import StoredModel

DEFAULT_LOTTERIES = 40
TOLERANCE = 1e-6
"""Two differences below this count as equal in the order comparison (as in the reference)."""

LOTTERY_TEMPLATE = Template(
    "prospect-choice",
    "Here are two prospects. A prospect either says what will happen for certain, or lists what might happen "
    "with the chance of each.\n\nOption A:\n{option_a}\n\nOption B:\n{option_b}\n\n"
    'Which prospect would you prefer? Answer with only "A" or "B".',
)
"""Our forced-choice wording for comparing gambles with plain outcomes (the reference uses its own, §6.3)."""
LOTTERY_HEAD = "A gamble: exactly one of the following happens, with the chance shown."


@dataclass(frozen=True)
class Lottery:
    """A gamble over outcome ids with probabilities summing to 1, and the text shown to the model."""

    id: str
    text: str
    outcome_ids: tuple[str, ...]
    probabilities: tuple[float, ...]


def describe(texts: Sequence[str], probabilities: Sequence[float]) -> str:
    """The option text of a lottery: one line per outcome, chance first."""
    lines = [f"- {100 * p:g}% chance: {t.strip()}" for t, p in zip(texts, probabilities, strict=True)]
    return "\n".join([LOTTERY_HEAD, *lines])


def whole_percents(weights: np.ndarray) -> np.ndarray:
    """Normalise to whole percents summing to 100, fixing rounding drift a point at a time from the front."""
    percents = np.round(100 * weights / weights.sum()).astype(int)
    drift, k = 100 - int(percents.sum()), 0
    while drift:
        step = 1 if drift > 0 else -1
        percents[k % len(percents)] += step
        drift -= step
        k += 1
    return percents


def make_lotteries(outcomes: Sequence[Outcome], n: int = DEFAULT_LOTTERIES, max_size: int = 3,
                   seed: int = 0) -> list[Lottery]:
    """`n` lotteries, sizes 2..max_size in equal shares, each over distinct outcomes, all seeded."""
    if max_size < 2 or max_size > len(outcomes):
        raise InputError(f"max_size must be between 2 and the number of outcomes ({len(outcomes)}), "
                         f"got {max_size}", field="max_size")
    rng = np.random.default_rng(seed)
    sizes = [2 + k * (max_size - 1) // n for k in range(n)]
    lotteries = []
    for k, size in enumerate(sizes):
        chosen = [outcomes[i] for i in rng.choice(len(outcomes), size, replace=False)]
        while True:
            percents = whole_percents(rng.uniform(0.01, 0.99, size))
            if ((percents > 0) & (percents < 100)).all():
                break
        probs = tuple(float(p) / 100 for p in percents)
        lotteries.append(Lottery(f"lottery-{k + 1:03d}", describe([o.text for o in chosen], probs),
                                 tuple(o.id for o in chosen), probs))
    return lotteries


def order_agreement(u: np.ndarray, eu: np.ndarray, keys: np.ndarray | None = None) -> float:
    """Share of pairs i < j ordered the same way by U and by EU (both differences ~0 also agree).

    `keys` names the item behind each position, so a bootstrap resample skips pairs of an item with itself.
    """
    i, j = np.triu_indices(len(u), k=1)
    if keys is not None:
        keep = keys[i] != keys[j]
        i, j = i[keep], j[keep]
    if len(i) == 0:
        return float("nan")
    du, de = u[i] - u[j], eu[i] - eu[j]
    tie_u, tie_e = np.abs(du) <= TOLERANCE, np.abs(de) <= TOLERANCE
    agree = (tie_u & tie_e) | (~tie_u & ~tie_e & (np.sign(du) == np.sign(de)))
    return float(agree.mean())


def mae_z(u: np.ndarray, eu: np.ndarray) -> float:
    return float(np.mean(np.abs(zscore(u) - zscore(eu))))


def eu_table(lotteries: Sequence[Lottery], utilities: Mapping[str, float]) -> pd.DataFrame:
    """Per lottery: its own fitted utility `u` and the expected utility `eu` of its outcomes."""
    missing = sorted({i for lot in lotteries for i in (lot.id, *lot.outcome_ids)} - set(utilities))
    if missing:
        raise InputError(f"no utility for {len(missing)} ids, e.g. {missing[:3]}", field="id")
    rows = []
    for lot in lotteries:
        eu = sum(p * utilities[o] for o, p in zip(lot.outcome_ids, lot.probabilities, strict=True))
        rows.append({"id": lot.id, "text": lot.text, "size": len(lot.outcome_ids), "u": utilities[lot.id],
                     "eu": eu})
    return pd.DataFrame(rows)


METRICS = {"pearson_r": pearson, "spearman_rho": spearman, "mae_z": mae_z}


def random_baseline(lotteries: Sequence[Lottery], draws: int = BASELINE_DRAWS,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Each metric under a random responder: utilities iid N(0, 1) for every lottery and outcome."""
    rng = np.random.default_rng(seed)
    ids = sorted({o for lot in lotteries for o in lot.outcome_ids})
    col = {o: k for k, o in enumerate(ids)}
    weights = np.zeros((len(lotteries), len(ids)))
    for r, lot in enumerate(lotteries):
        for o, p in zip(lot.outcome_ids, lot.probabilities, strict=True):
            weights[r, col[o]] += p
    out: dict[str, list[float]] = {name: [] for name in [*METRICS, "order_agreement"]}
    for _ in range(draws):
        eu, u = weights @ rng.normal(size=len(ids)), rng.normal(size=len(lotteries))
        for name, fn in METRICS.items():
            out[name].append(fn(u, eu))
        out["order_agreement"].append(order_agreement(u, eu))
    return {name: np.array(values) for name, values in out.items()}


@dataclass
class ExpectedUtilityResult:
    """U(L) against EU(L) per lottery (or uncertain event) in `lotteries`, with the four agreement metrics."""

    analysis: str
    pearson_r: Metric
    spearman_rho: Metric
    mae_z: Metric
    order_agreement: Metric
    lotteries: pd.DataFrame
    pearson_p: float
    calls: int = 0
    budget: int | None = None
    n_items: int = 0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.pearson_r.row("pearson_r"), self.spearman_rho.row("spearman_rho"),
                             self.mae_z.row("mae_z"), self.order_agreement.row("order_agreement")])

    def to_dict(self) -> dict:
        return {"analysis": self.analysis, "headline": "pearson_r", "pearson_r": self.pearson_r.to_dict(),
                "pearson_p": self.pearson_p, "spearman_rho": self.spearman_rho.to_dict(),
                "mae_z": self.mae_z.to_dict(), "order_agreement": self.order_agreement.to_dict(),
                "n_lotteries": len(self.lotteries), "n_items_fitted": self.n_items, "calls": self.calls,
                "budget": self.budget}


def analyze(lotteries: Sequence[Lottery], utilities: Mapping[str, float] | pd.DataFrame, *,
            analysis: str = "expected-utility", n_boot: int = N_BOOT, seed: int = 0) -> ExpectedUtilityResult:
    """Compare each lottery's utility with its expected utility; `utilities` maps id -> mean, or is a frame
    with id and mean columns (`UtilityResult.utilities`)."""
    if isinstance(utilities, pd.DataFrame):
        utilities = dict(zip(utilities["id"], utilities["mean"].astype(float), strict=True))
    if len(lotteries) < 3:
        raise InputError(f"need at least 3 lotteries to correlate, got {len(lotteries)}", field="lotteries")
    table = eu_table(lotteries, utilities)
    u, eu = table["u"].to_numpy(float), table["eu"].to_numpy(float)
    base = random_baseline(lotteries, seed=seed)
    metrics = {name: summarize(lambda i, fn=fn: fn(u[i], eu[i]), len(u), base[name], n_boot=n_boot, seed=seed)
               for name, fn in METRICS.items()}
    agreement = summarize(lambda i: order_agreement(u[i], eu[i], i), len(u), base["order_agreement"],
                          n_boot=n_boot, seed=seed)
    return ExpectedUtilityResult(analysis, metrics["pearson_r"], metrics["spearman_rho"], metrics["mae_z"],
                                 agreement, table.assign(u_z=zscore(u), eu_z=zscore(eu)),
                                 float(pearsonr(u, eu)[1]) if u.std() > 0 and eu.std() > 0 else float("nan"))


def run(model: StoredModel, *, outcomes: str | Path | Sequence[Outcome] = "quick", budget: int | None = None,
        seed: int = 0, n_lotteries: int = DEFAULT_LOTTERIES, max_size: int = 3,
        template: str | Template = LOTTERY_TEMPLATE, system: str | None = None, n_boot: int = N_BOOT,
        **utility_options) -> ExpectedUtilityResult:
    """Generate lotteries over `outcomes`, fit utilities of both together and test the expected-utility
    property. `budget` is training pairs (at least one per item; default 2·N·log₂N)."""
    base = resolve_outcomes(outcomes)
    lotteries = make_lotteries(base, n_lotteries, max_size, seed)
    items = base + [Outcome(lot.id, lot.text, "lottery") for lot in lotteries]
    check_budget(budget, len(items), "pairs (one per outcome and lottery)")
    result = elicit_utilities(model, items, template=template, system=system, budget=budget, seed=seed,
                              **utility_options)
    out = analyze(lotteries, result.utilities, n_boot=n_boot, seed=seed)
    return replace(out, calls=result.calls, budget=budget, n_items=len(items))


def figure(result: ExpectedUtilityResult) -> Figure:
    """z-scored U(L) against z-scored EU(L); on the diagonal means the expected-utility property holds."""
    fig, ax = new_figure(5.0, 5.0)
    table = result.lotteries
    ax.scatter(table["eu_z"], table["u_z"], s=18, alpha=0.8)
    lim = float(np.nanmax(np.abs(table[["eu_z", "u_z"]].to_numpy()))) * 1.1 or 1.0
    ax.plot([-lim, lim], [-lim, lim], color="black", linewidth=0.8)
    r = result.pearson_r
    ax.set(xlabel="expected utility Σ p·U(outcome) (z)", ylabel="fitted utility U (z)",
           title=f"{result.analysis}: r = {r.value:.2f} [{r.lo:.2f}, {r.hi:.2f}], random ≈ {r.baseline:.2f}")
    return fig


ANALYSIS = Analysis(
    name="expected-utility", title="Expected utility, explicit lotteries",
    question="Is the utility of a lottery the expected utility of its outcomes?",
    budget="pairs of outcomes and lotteries (each asked in both orders)", run=run, figure=figure, headline="pearson_r",
    options=(OUTCOMES_OPT, BUDGET_OPT, N_BOOT_OPT,
             Option("n_lotteries", int, "lotteries built over the outcomes"),
             Option("max_size", int, "most outcomes in one lottery")),
    readings={
        "pearson_r": Reading("correlation", "higher",
                       "Correlation between a lottery's utility and the expected utility of its outcomes; 1 is an "
                       "expected-utility maximiser."),
    },
)
