"""Time discounting: how much more money later the model needs to forgo a fixed amount now.

Protocol after Mazeika et al. 2025, "Utility Engineering", App. E.2 (reference code in emergent-values §6.8):
direct forced choices between $1,000 now and a larger or smaller amount after a delay, both answer orders, on
a grid of delays and multipliers. Unlike the reference, answers are read as label probabilities or parsed
samples (never raw string equality). The paper's notebook step is rebuilt here: per delay, the indifference
multiplier m*(t) is where P(choose later) crosses ½, and D(t) = 1/m*(t) is the discount factor; exponential
D = e^(−rt) and hyperbolic D = 1/(1 + kt) curves are fitted to ln D by least squares (scipy) and compared by
AIC (both have one parameter). The random responder answers every condition by fair coin flips.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.optimize import minimize_scalar
from scipy.stats import norm
from sklearn.isotonic import isotonic_regression

from valuelab.analyses import BUDGET_OPT, N_BOOT_OPT, Analysis, Reading
from valuelab.analyses.common import (
    LEVEL,
    REFERENCE_SAMPLES,
    Metric,
    baseline_samples,
    check_budget,
    published_values,
    random_p,
)
from valuelab.elicit.pairwise import prefer_pairs
from valuelab.errors import InputError
from valuelab.items.files import item_error
from valuelab.prompts import Template
from valuelab.stats import N_BOOT, baseline_range, jsonable, percentile_interval
from valuelab.store import StoredModel
from valuelab.yamlfile import read_yaml

DATA = Path(str(files("valuelab") / "data" / "time_discounting"))
HEADLINE = "delta_aic"
MIN_MULTIPLIERS = 3
MIN_DELAYS = 3
PROBIT_CLIP = 1e-3
FIT_RMSE_MAX = 0.5
"""A curve missing ln D by more than this, root-mean-square (a factor of e^0.5 ≈ 1.6), fits nothing."""
CLEAR_AIC = 2.0
"""|ΔAIC| below this is reported as indistinguishable (Burnham & Anderson's rule of thumb)."""


@dataclass(frozen=True)
class Setup:
    """The question wording and the default grid (`setup.yaml`)."""

    template: Template
    amount: str
    now: str
    later_one: str
    later_many: str
    base_amount: float
    round_to: float
    delays: tuple[int, ...]
    low: float
    high: float
    count: int

    def option(self, amount: float, delay: int) -> str:
        when = self.now if delay == 0 else self.later_one if delay == 1 else self.later_many.format(t=delay)
        return f"{self.amount.format(amount=f'{amount:,.0f}')} {when}"


def load_setup(path: str | Path | None = None) -> Setup:
    """The wording and grid, validated; every error names the file, line and field."""
    path = Path(path) if path is not None else DATA / "setup.yaml"
    file, doc = str(path), read_yaml(Path(path))

    def fail(message: str, key: str) -> InputError:
        return item_error(message, file, doc, key)

    fields = {"template", "amount", "now", "later_one", "later_many", "base_amount", "round_to", "delays",
              "multipliers"}
    if not isinstance(doc, dict):
        raise fail("must be a mapping", "")
    if set(doc) - fields:
        raise fail(f"unknown field (allowed: {', '.join(sorted(fields))})", sorted(set(doc) - fields)[0])
    if fields - set(doc):
        raise fail("is missing", sorted(fields - set(doc))[0])
    texts = {k: doc[k] for k in ("template", "amount", "now", "later_one", "later_many")}
    for key, value in texts.items():
        if not isinstance(value, str) or not value.strip():
            raise fail("must be non-empty text", key)
    for key, slots in (("template", {"option_a": "x", "option_b": "y"}), ("amount", {"amount": "1"}),
                       ("later_many", {"t": "2"})):
        try:
            texts[key].format(**slots)
        except (KeyError, IndexError, ValueError) as err:
            allowed = ", ".join("{" + s + "}" for s in slots)
            raise fail(f"bad placeholder {err}; allowed: {allowed}", key) from None
    if "{option_a}" not in texts["template"] or "{option_b}" not in texts["template"]:
        raise fail("needs both {option_a} and {option_b}", "template")
    for key in ("base_amount", "round_to"):
        if not isinstance(doc[key], int | float) or doc[key] <= 0:
            raise fail("must be a positive number", key)
    delays = doc["delays"]
    if (not isinstance(delays, list) or len(delays) < MIN_DELAYS
            or any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in delays)):
        raise fail(f"must be a list of at least {MIN_DELAYS} positive whole months", "delays")
    multipliers = doc["multipliers"]
    if not isinstance(multipliers, dict) or set(multipliers) != {"low", "high", "count"}:
        raise fail("must be a mapping with low, high and count", "multipliers")
    if not 0 < multipliers["low"] < multipliers["high"] or not isinstance(multipliers["count"], int):
        raise fail("need 0 < low < high and a whole count", "multipliers")
    template = Template("time-discounting", texts["template"])
    return Setup(template, texts["amount"], texts["now"], texts["later_one"], texts["later_many"],
                 float(doc["base_amount"]), float(doc["round_to"]), tuple(sorted(set(delays))),
                 float(multipliers["low"]), float(multipliers["high"]), multipliers["count"])


def generate_conditions(setup: Setup | None = None, *, delays: Sequence[int] | None = None,
                        n_multipliers: int | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (delay, multiplier): for every delay, one multiplier drawn log-uniformly in each of
    `n_multipliers` equal log-bins between low and high (stratified, seeded), the delayed amount rounded."""
    setup = setup or load_setup()
    delays = sorted(set(delays)) if delays is not None else list(setup.delays)
    count = n_multipliers or setup.count
    if count < MIN_MULTIPLIERS or len(delays) < MIN_DELAYS or min(delays) <= 0:
        raise InputError(f"need at least {MIN_DELAYS} positive delays and {MIN_MULTIPLIERS} multipliers "
                         "per delay", field="budget")
    rng = np.random.default_rng(seed)
    edges = np.linspace(math.log(setup.low), math.log(setup.high), count + 1)
    rows = []
    for delay in delays:
        draws = np.exp(edges[:-1] + rng.random(count) * np.diff(edges))
        later = np.round(setup.base_amount * draws / setup.round_to) * setup.round_to
        for amount in np.unique(np.maximum(later, setup.round_to)):
            rows.append({"delay": delay, "multiplier": amount / setup.base_amount,
                         "amount_now": setup.base_amount, "amount_later": amount,
                         "text_now": setup.option(setup.base_amount, 0),
                         "text_later": setup.option(amount, delay)})
    return pd.DataFrame(rows)


def ask(model: StoredModel, conditions: pd.DataFrame, template: Template,
        system: str | None = None) -> pd.DataFrame:
    """P(choose the delayed payment) per condition, debiased over both orders, with the position bias."""
    pairs = list(zip(conditions["text_now"], conditions["text_later"], strict=True))
    prefs = prefer_pairs(model, pairs, template, system)
    return conditions.assign(p_later=[1 - p.p_first for p in prefs],
                             position_bias=[p.position_bias for p in prefs], mass=[p.mass for p in prefs])


# ---------------------------------------------------------------- analysis math


def indifference_point(multiplier: np.ndarray, p_later: np.ndarray) -> float:
    """ln m* where P(later) crosses ½; NaN when it never does inside the multipliers asked.

    P(later) is first made non-decreasing in ln m (isotonic regression: more money later cannot make later
    less attractive), then the crossing is interpolated between the two bracketing points on the probit scale,
    which is exact when the choice curve is a probit in ln m, as for a Thurstonian chooser.
    """
    order = np.argsort(multiplier, kind="stable")
    x = np.log(np.asarray(multiplier, float)[order])
    fitted = isotonic_regression(np.asarray(p_later, float)[order])
    above = np.flatnonzero(fitted > 0.5)
    if above.size == 0 or above[0] == 0:
        return math.nan
    hi, lo = above[0], above[0] - 1
    z_hi, z_lo = norm.ppf(np.clip(fitted[[hi, lo]], PROBIT_CLIP, 1 - PROBIT_CLIP))
    if x[hi] == x[lo] or z_hi == z_lo:
        return float(x[hi])
    return float(x[lo] - z_lo * (x[hi] - x[lo]) / (z_hi - z_lo))


def indifference_points(choices: pd.DataFrame) -> pd.DataFrame:
    """Per delay: ln m*, m* and the discount factor D = 1/m* (NaN where P(later) never crosses ½)."""
    rows = [{"delay": delay, "conditions": len(part),
             "log_m": indifference_point(part["multiplier"].to_numpy(), part["p_later"].to_numpy())}
            for delay, part in choices.groupby("delay")]
    points = pd.DataFrame(rows)
    points["m_star"] = np.exp(points["log_m"])
    points["discount"] = np.exp(-points["log_m"])
    return points


def _exponential(t: np.ndarray, r: float) -> np.ndarray:
    return -r * t


def _hyperbolic(t: np.ndarray, k: float) -> np.ndarray:
    return -np.log1p(k * t)


def discount_fits(points: pd.DataFrame) -> pd.DataFrame:
    """Exponential (rate r) and hyperbolic (k) fits of ln D(t) by least squares (scipy's bounded scalar
    minimiser), with RSS, RMSE, AIC and R²; NaN with fewer than three indifference points."""
    valid = points.dropna(subset=["log_m"])
    t, y = valid["delay"].to_numpy(float), -valid["log_m"].to_numpy()
    rows = []
    for name, fn, bounds in (("exponential", _exponential, (-1.0, 5.0)),
                             ("hyperbolic", _hyperbolic, (-0.999 / max(t.max(initial=1), 1), 100.0))):
        row = {"model": name, "parameter": "r" if name == "exponential" else "k", "value": math.nan,
               "rss": math.nan, "rmse": math.nan, "aic": math.nan, "r2": math.nan, "points": len(valid)}
        if len(valid) >= 3:
            best = minimize_scalar(lambda v, fn=fn: float(np.sum((y - fn(t, v)) ** 2)), bounds=bounds,
                                   method="bounded", options={"xatol": 1e-9})
            rss = max(float(best.fun), 1e-12)
            total = float(np.sum((y - y.mean()) ** 2))
            row.update(value=float(best.x), rss=rss, rmse=math.sqrt(rss / len(t)),
                       aic=len(t) * math.log(rss / len(t)) + 2, r2=1 - rss / total if total > 0 else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def delta_aic(fits: pd.DataFrame) -> float:
    """AIC(exponential) − AIC(hyperbolic): positive favours hyperbolic."""
    aic = fits.set_index("model")["aic"]
    return float(aic["exponential"] - aic["hyperbolic"])


VERDICTS = {"hyperbolic": "Discount curve: hyperbolic fits better",
            "exponential": "Discount curve: exponential fits better",
            "indistinguishable": "Discount curve: exponential and hyperbolic fit alike",
            "neither": "Discount curve: neither curve fits the indifference points",
            "undetermined": "No discount curve: fewer than three delays have an indifference point"}


def verdict(fits: pd.DataFrame) -> str:
    """Which curve fits better: "hyperbolic", "exponential", "indistinguishable", "neither" (both miss the
    points by more than FIT_RMSE_MAX in ln D) or "undetermined" (fewer than three indifference points)."""
    delta = delta_aic(fits)
    if not np.isfinite(delta):
        return "undetermined"
    if fits["rmse"].min() > FIT_RMSE_MAX:
        return "neither"
    if abs(delta) < CLEAR_AIC:
        return "indistinguishable"
    return "hyperbolic" if delta > 0 else "exponential"


def _resample_conditions(choices: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    picks = np.concatenate([rng.choice(idx, len(idx)) for idx in choices.groupby("delay").indices.values()])
    return choices.iloc[picks]


def random_baseline(conditions: pd.DataFrame, *, draws: int = 100, samples: int = REFERENCE_SAMPLES,
                    seed: int = 0) -> tuple[np.ndarray, float]:
    """A random responder's ΔAIC per draw (NaN where fewer than three delays cross ½) and the share of delays
    with an indifference point: each condition answered by `samples` fair coin flips over both orders."""
    rng = np.random.default_rng(seed + 1)
    deltas, valid = np.full(draws, np.nan), []
    for k in range(draws):
        points = indifference_points(conditions.assign(p_later=random_p(len(conditions), rng, samples)))
        valid.append(points["log_m"].notna().mean())
        deltas[k] = delta_aic(discount_fits(points))
    return deltas, float(np.mean(valid))


@dataclass
class TimeDiscountingResult:
    """Choices per condition, indifference points per delay, both curve fits, the verdict and its baseline."""

    choices: pd.DataFrame
    points: pd.DataFrame
    fits: pd.DataFrame
    metrics: dict[str, Metric]
    info: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Indifference points and discount factors per delay, with intervals."""
        return self.points

    def to_dict(self) -> dict:
        return jsonable({"analysis": "time-discounting", "headline": HEADLINE,
                           **{name: metric.to_dict() for name, metric in self.metrics.items()},
                           "baseline_is": "a responder answering each condition by fair coin flips; ΔAIC "
                                          "over draws where three delays have an indifference point",
                           **self.info, "fits": self.fits.to_dict(orient="records"),
                           "points": self.points.to_dict(orient="records")})


def analyze(choices: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
            baseline_draws: int = 100, coin_flips: int = REFERENCE_SAMPLES) -> TimeDiscountingResult:
    """Indifference points, exponential and hyperbolic fits, ΔAIC with a bootstrap interval, and the baseline.

    `choices` has one row per condition with delay, multiplier and p_later (P(choose the delayed payment)).
    `coin_flips` is the random responder's answers per condition (both orders together).
    """
    points = indifference_points(choices)
    fits = discount_fits(points)
    rng = np.random.default_rng(seed)
    # Two resamplings: conditions within each delay for the interval of that delay's indifference point, and
    # the delays themselves (the units the curves are fitted to) for the intervals of the curves and ΔAIC.
    boot_points, boot_fits = [], []
    for _ in range(max(n_boot, 1)):
        boot_points.append(indifference_points(_resample_conditions(choices, rng))["log_m"].to_numpy())
        boot_fits.append(discount_fits(points.iloc[rng.choice(len(points), len(points))]))
    lo, hi = percentile_interval(np.array(boot_points), level)  # a delay never crossing ½ stays NaN
    points["discount_lo"], points["discount_hi"] = np.exp(-hi), np.exp(-lo)
    points["defined_share"] = np.isfinite(np.array(boot_points)).mean(0)
    fits["lo"], fits["hi"] = percentile_interval(np.array([f["value"].to_numpy() for f in boot_fits]), level)
    deltas = np.array([delta_aic(f) for f in boot_fits])
    conditions = choices.drop(columns=["p_later", "position_bias", "mass"], errors="ignore")
    base, valid_share = random_baseline(conditions, draws=baseline_draws, samples=coin_flips, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        metric = Metric(delta_aic(fits), *percentile_interval(deltas, level), *baseline_range(base))
    better = verdict(fits)
    info = {"better_fit": better,
            "hyperbolic_share_bootstrap": float(np.mean(deltas[np.isfinite(deltas)] > 0))
            if np.isfinite(deltas).any() else None,
            "discount_at_12_months": _discount_at(fits, 12.0, better),
            "baseline_hyperbolic_share": float(np.mean(base[np.isfinite(base)] >= CLEAR_AIC))
            if np.isfinite(base).any() else None,
            "baseline_valid_delay_share": valid_share,
            "valid_delay_share": float(points["log_m"].notna().mean()),
            "n_boot": n_boot, "level": level, "conditions": len(choices),
            "position_bias": float(choices["position_bias"].mean()) if "position_bias" in choices else None}
    return TimeDiscountingResult(choices, points, fits, {HEADLINE: metric}, info)


def _discount_at(fits: pd.DataFrame, t: float, better: str) -> float:
    """D(t) from the better-fitting curve (hyperbolic when the two cannot be told apart)."""
    model = "exponential" if better == "exponential" else "hyperbolic"
    value = fits.set_index("model").at[model, "value"]
    return math.exp(_exponential(np.array(t), value)) if model == "exponential" else 1 / (1 + value * t)


def minimum_budget(delays: int = MIN_DELAYS) -> int:
    """Conditions needed at least: three multipliers per delay, so each delay's probit can be fitted."""
    return MIN_MULTIPLIERS * delays


def run(model: StoredModel, *, budget: int | None = None, seed: int = 0, delays: Sequence[int] | None = None,
        system: str | None = None, setup: str | Path | Setup | None = None,
        n_boot: int = N_BOOT) -> TimeDiscountingResult:
    """Ask the grid of now-versus-later choices with `model` and fit the discount curves.

    `budget` is the number of conditions (each asked in both orders); the default is the full grid in
    setup.yaml (8 delays × 10 multipliers). A smaller budget keeps every delay, with fewer multipliers each.
    """
    setup = setup if isinstance(setup, Setup) else load_setup(setup)
    if delays is not None:
        setup = replace(setup, delays=tuple(sorted(set(delays))))
    n_delays = len(setup.delays)
    check_budget(budget, minimum_budget(n_delays), f"conditions ({MIN_MULTIPLIERS} per delay, {n_delays} "
                 "delays); pass fewer delays or more budget")
    per_delay = setup.count if budget is None else min(setup.count, budget // n_delays)
    conditions = generate_conditions(setup, n_multipliers=per_delay, seed=seed)
    calls_before = model.counts.asked
    choices = ask(model, conditions, setup.template, system)
    result = analyze(choices, n_boot=n_boot, seed=seed, coin_flips=baseline_samples(model))
    return replace(result, info={**result.info, "budget": len(conditions), "prompts": 2 * len(conditions),
                                 "calls": model.counts.asked - calls_before, "mode": model.mode,
                                 "template_sha": setup.template.sha})


def figure(result: TimeDiscountingResult) -> Figure:
    """Left: P(choose later) against the multiplier, one line per delay. Right: discount factors with
    intervals and both fitted curves, beside people's median answers (Thaler 1981, data/published.yaml); what a
    random responder gives in the title."""
    fig = Figure(figsize=(12, 5))
    left, right = fig.subplots(1, 2)
    delays = sorted(result.choices["delay"].unique())
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(delays)))
    for delay, color in zip(delays, colors, strict=True):
        part = result.choices[result.choices["delay"] == delay].sort_values("multiplier")
        left.plot(part["multiplier"], part["p_later"], "o-", ms=3, color=color, label=f"{delay} mo")
    left.axhline(0.5, color="grey", lw=1)
    left.set_xscale("log")
    left.set(xlabel="delayed amount / immediate amount", ylabel="P(choose the delayed payment)",
             title="Choices by delay", ylim=(-0.02, 1.02))
    left.legend(fontsize=7, ncol=2)
    points = result.points.dropna(subset=["discount"])
    err = np.clip(np.nan_to_num([points["discount"] - points["discount_lo"],
                                 points["discount_hi"] - points["discount"]]), 0, None)
    right.errorbar(points["delay"], points["discount"], yerr=err, fmt="o", color="black", capsize=3,
                   label="indifference points")
    t = np.linspace(0, max(delays), 200)
    for row in result.fits.itertuples():
        if np.isfinite(row.value):
            fn = _exponential if row.model == "exponential" else _hyperbolic
            right.plot(t, np.exp(fn(t, row.value)), label=f"{row.model} ({row.parameter}={row.value:.3g}, "
                                                           f"AIC {row.aic:.1f})")
    people = [(row["delay_months"], row["value"]) for row in published_values("discount_curve_people")
              if row["delay_months"] <= max(delays)]
    if people:  # a reference layer only: Thaler's (1981) median answers, as reviewed by Frederick et al. (2002)
        right.plot(*zip(*people, strict=True), "D", color="#D55E00", mfc="none", ms=6,
                   label="people, median answers (Thaler 1981)")
    title = (f"{VERDICTS[result.info['better_fit']]} (a random responder has an indifference point at "
             f"{result.info['baseline_valid_delay_share']:.0%} of delays)")
    right.set(xlabel="delay (months)", ylabel="discount factor D = now / later at indifference",
              title=textwrap.fill(title, 48))  # half a page wide: a long line would run off the figure
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


ANALYSIS = Analysis(
    name="time-discounting", title="Time discounting",
    question="How does the model value money later against money now?",
    budget="conditions (each asked in both orders)", run=run, figure=figure, headline="delta_aic",
    options=(BUDGET_OPT, N_BOOT_OPT),
    readings={
        "delta_aic": Reading("AIC", "neither",
                       "Exponential minus hyperbolic AIC of the discount curve; positive favours hyperbolic "
                       "discounting, as in people."),
    },
    columns={
        "delay": "delay of the later payment, in months",
        "conditions": "multipliers asked at this delay",
        "log_m": "ln of the indifference multiplier m*",
        "m_star": "indifference multiplier: later = m* × sooner",
        "discount": "discount factor D = 1/m*",
        "discount_lo": "lower end of D's 95 % bootstrap interval",
        "discount_hi": "upper end of D's 95 % bootstrap interval",
        "defined_share": "share of bootstrap replicates where P(later) crosses ½",
    },
)
