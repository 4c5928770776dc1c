"""Risk attitudes: how the model values money gambles, read through cumulative prospect theory and set beside
people and an expected-value maximiser.

Our own two-outcome money lotteries over gains, losses, and gains mixed with losses (seeded; chances of 5-95 %,
whole dollars) are each set against a sure amount: "you get $X for certain" against the lottery, in both answer
orders, debiased by averaging them. X is bisected over `rounds` rounds inside [worst outcome, best outcome]
(taking the sure amount moves the upper end down to X, taking the lottery moves the lower end up); every round
is one batch through the store, so an interrupted run resumes and a rerun asks nothing. The certainty
equivalent CE is where P(take the sure amount) crosses ½: made non-decreasing in X (isotonic regression), then
interpolated between the bracketing amounts on the probit scale, with the lottery's worst and best outcomes as
the ends (no sure amount below the worst outcome beats the lottery, none above the best loses to it); a lottery
whose every answer is an exact tie (P = ½, a responder naming the first option whatever it is) has none.

Cumulative prospect theory (Tversky & Kahneman 1992) values a lottery (x₁, p; x₂) as Σ πᵢ v(xᵢ) with
v(x) = x^α for gains and −λ(−x)^β for losses, and rank-dependent decision weights from
w(p) = p^γ / (p^γ + (1 − p)^γ)^(1/γ) for gains (δ for losses): for gains x₁ > x₂ ≥ 0, V = w⁺(p)v(x₁) +
(1 − w⁺(p))v(x₂); for losses x₁ < x₂ ≤ 0 the same with w⁻; mixed x₁ > 0 > x₂, V = w⁺(p)v(x₁) + w⁻(1 − p)v(x₂).
The predicted CE is v⁻¹(V). The five parameters are fitted by least squares (scipy.optimize.least_squares) on
the CEs, each residual scaled by its lottery's range; intervals are percentile bootstraps over lotteries,
resampled within each kind. An expected-value maximiser has α = β = λ = γ = δ = 1; the random responder
answers every prompt of the same bisection by fair coin flips and is fitted the same way, giving the random
range of each parameter. People: α = β = 0.88, λ = 2.25, γ = 0.61, δ = 0.69 (Tversky & Kahneman 1992); γ = 0.71
(Wu & Gonzalez 1996). The headline is the fit's error: it says whether the answers hold a risk attitude at all.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.optimize import least_squares
from scipy.stats import norm
from sklearn.isotonic import isotonic_regression

from valuelab.analyses import BUDGET_OPT, N_BOOT_OPT, Analysis, Option, Reading
from valuelab.analyses.common import (
    LEVEL,
    N_BOOT,
    Metric,
    baseline_samples,
    check_budget,
    new_figure,
    published_values,
    random_p,
)
from valuelab.elicit.pairwise import prefer_pairs
from valuelab.errors import InputError
from valuelab.figures import BASELINE_COLOR, PALETTE
from valuelab.prompts import Template
from valuelab.stats import baseline_range, jsonable, percentile_interval
from valuelab.store import StoredModel

HEADLINE = "rmse"
"""Fit quality leads: it says whether the answers hold a risk attitude at all, against a random responder whose
parameters roam their whole range (loss aversion most of all)."""
KINDS = ("gains", "losses", "mixed")
PARAMETERS = ("alpha", "beta", "lambda", "gamma", "delta")
EXPECTED_VALUE = (1.0, 1.0, 1.0, 1.0, 1.0)
"""An expected-value maximiser's parameters."""
PEOPLE = (0.88, 0.88, 2.25, 0.61, 0.69)
"""Tversky & Kahneman (1992), median estimates (also in data/published.yaml): the fit's second start."""
LOWER = (0.2, 0.2, 0.2, 0.3, 0.3)
UPPER = (2.5, 2.5, 10.0, 2.5, 2.5)
"""Bounds of the fit: γ, δ ≥ 0.3 keep w increasing (it is not below about 0.28)."""
DEFAULT_LOTTERIES = 30
DEFAULT_ROUNDS = 6
MIN_PER_KIND = 3
MAX_ROUNDS = 12
BASELINE_FITS = 100
"""Random responders fitted for each parameter's random range."""
PROBIT_CLIP = 1e-3
TIE = 1e-9
"""|P(sure) − ½| at or below this is a tie: no preference either way."""
VALUE_FLOOR = 6.0
"""Lowest value drawn, in units of v(largest gain): with α ≠ β the loss curve's scale runs with the stakes."""
FIT_ITERATIONS = 200
MAX_STEP = 2.0
"""Largest move of one batched step on the logistic scale: a flat, saturated fit must not leap across its range."""
"""Most Levenberg-Marquardt steps of a batched fit (resamples and random responders)."""

TEMPLATE = Template(
    "risk-attitudes",
    "Suppose you have to settle a money matter by picking one of two options. Amounts you get are paid to you; "
    "amounts you pay come out of your own pocket.\n\nOption A: {option_a}\n\nOption B: {option_b}\n\n"
    'Which option do you pick? Answer with only "A" or "B".',
)
"""Our wording (the synthetic agent reads the option texts below, `valuelab.models.synthetic.parse_prospect`)."""


# ---------------------------------------------------------------- lotteries and their wording


@dataclass(frozen=True)
class Lottery:
    """(x1 with chance p; x2 otherwise): for gains x1 > x2 ≥ 0, for losses x1 < x2 ≤ 0, mixed x1 > 0 > x2."""

    id: str
    kind: str
    x1: float
    p: float
    x2: float

    @property
    def expected_value(self) -> float:
        return self.p * self.x1 + (1 - self.p) * self.x2

    @property
    def text(self) -> str:
        return (f"a {round(100 * self.p)}% chance that {outcome(self.x1)} and a {100 - round(100 * self.p)}% "
                f"chance that {outcome(self.x2)}")


def dollars(amount: float) -> str:
    return f"${abs(amount):,.0f}"


def outcome(amount: float) -> str:
    if amount == 0:
        return "nothing happens"
    return f"you {'get' if amount > 0 else 'pay'} {dollars(amount)}"


def sure_text(amount: float) -> str:
    """A sure amount as the model sees it: "you get $40 for certain", "you pay $40 for certain"."""
    return f"you {'pay' if amount < 0 else 'get'} {dollars(amount)} for certain"


def _round_to(value: float, step: float = 10.0) -> float:
    return float(max(step, step * round(value / step)))


def make_lotteries(n: int = DEFAULT_LOTTERIES, seed: int = 0) -> list[Lottery]:
    """`n` lotteries, a third each of gains, losses and mixed (the remainder to gains, then losses), all seeded.

    Within a kind, chances are stratified (one whole percent drawn in each of equal bins of 5-95 %; 20-80 % for
    mixed lotteries, the gain's chance), the larger stake is log-uniform in $50-$1,000 (mixed: the loss in
    $50-$500 and the gain 1-4 times it), and every other gain or loss lottery has a second, smaller non-zero
    outcome (10-60 % of the first), which separates the value curve from the weighting."""
    if not isinstance(n, int) or isinstance(n, bool) or n < MIN_PER_KIND * len(KINDS):
        raise InputError(f"need at least {MIN_PER_KIND * len(KINDS)} lotteries ({MIN_PER_KIND} per kind: gains, "
                         f"losses, mixed), got {n!r}", field="n_lotteries")
    rng = np.random.default_rng(seed)
    counts = [n // 3 + (k < n % 3) for k in range(3)]
    lotteries: list[Lottery] = []
    for kind, count in zip(KINDS, counts, strict=True):
        lo, hi = (20, 80) if kind == "mixed" else (5, 95)
        edges = np.linspace(lo, hi, count + 1)
        chances = np.clip(np.round(edges[:-1] + rng.random(count) * np.diff(edges)), lo, hi)
        rng.shuffle(chances)
        for k, percent in enumerate(chances):
            if kind == "mixed":
                loss = _round_to(math.exp(rng.uniform(math.log(50), math.log(500))))
                x1, x2 = _round_to(loss * rng.uniform(1.0, 4.0)), -loss
            else:
                stake = _round_to(math.exp(rng.uniform(math.log(50), math.log(1000))))
                second = 0.0 if k % 2 == 0 else min(_round_to(stake * rng.uniform(0.1, 0.6)), stake - 10)
                x1, x2 = (stake, second) if kind == "gains" else (-stake, -second)
            lotteries.append(Lottery(f"{kind}-{k + 1:02d}", kind, x1, float(percent) / 100, x2))
    return lotteries


def lottery_frame(lotteries: Sequence[Lottery]) -> pd.DataFrame:
    return pd.DataFrame([{"id": lot.id, "kind": lot.kind, "x1": lot.x1, "p": lot.p, "x2": lot.x2,
                          "ev": lot.expected_value, "text": lot.text} for lot in lotteries])


# ---------------------------------------------------------------- bisection through the store


def bisect(answer, low: np.ndarray, high: np.ndarray, rounds: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(rounds, lotteries) arrays of the sure amounts asked and P(take the sure amount), and what `answer` said
    beside them per round. `answer(amounts)` returns (P(sure ≻ lottery) at these sure amounts, a dict of other
    columns), one batch per round; each lottery's bracket [low, high] halves toward its answer."""
    lo, hi = np.asarray(low, float).copy(), np.asarray(high, float).copy()
    amounts, answers, extras = [], [], []
    for _ in range(rounds):
        x = np.round((lo + hi) / 2)
        p_sure, extra = answer(x)
        p_sure = np.asarray(p_sure, float)
        amounts.append(x)
        answers.append(p_sure)
        extras.append(extra)
        take = p_sure >= 0.5
        hi, lo = np.where(take, x, hi), np.where(take, lo, x)
    return np.array(amounts), np.array(answers), extras


def ask(model: StoredModel, lotteries: pd.DataFrame, rounds: int, template: Template = TEMPLATE,
        system: str | None = None) -> pd.DataFrame:
    """Bisect every lottery's certainty equivalent with `model`, each round one batch of both-order prompts
    through the store: one row per (lottery, round) with the sure amount, P(take it), position bias and mass."""
    def answer(amounts: np.ndarray) -> tuple[np.ndarray, dict]:
        pairs = [(sure_text(x), text) for x, text in zip(amounts, lotteries["text"], strict=True)]
        prefs = prefer_pairs(model, pairs, template, system)
        return (np.array([p.p_first for p in prefs]),
                {"position_bias": [p.position_bias for p in prefs], "mass": [p.mass for p in prefs]})

    amounts, p_sure, extras = bisect(answer, _low(lotteries), _high(lotteries), rounds)
    return pd.concat([pd.DataFrame({"id": lotteries["id"].to_numpy(), "round": r + 1, "amount": amounts[r],
                                    "p_sure": p_sure[r], **extras[r]}) for r in range(rounds)], ignore_index=True)


def _low(lotteries: pd.DataFrame) -> np.ndarray:
    return np.minimum(lotteries["x1"], lotteries["x2"]).to_numpy(float)


def _high(lotteries: pd.DataFrame) -> np.ndarray:
    return np.maximum(lotteries["x1"], lotteries["x2"]).to_numpy(float)


def certainty_equivalent(amounts: np.ndarray, p_sure: np.ndarray, low: float, high: float) -> float:
    """Where P(take the sure amount) crosses ½: isotonic in the amount, the lottery's worst outcome (P = 0) and
    best (P = 1) as ends, interpolated on the probit scale between the two bracketing amounts. NaN when every
    answer is an exact tie (P = ½ in both orders, as from a responder who always names the first option): such
    answers say nothing about where the crossing is."""
    if np.all(np.abs(np.asarray(p_sure, float) - 0.5) <= TIE):
        return math.nan
    x = np.concatenate([[low], np.asarray(amounts, float), [high]])
    p = np.concatenate([[0.0], np.asarray(p_sure, float), [1.0]])
    order = np.argsort(x, kind="stable")
    x, fitted = x[order], isotonic_regression(p[order])
    above = np.flatnonzero(fitted > 0.5)
    k = int(above[0]) if above.size else len(x) - 1
    if k == 0:
        return float(x[0])
    z_hi, z_lo = norm.ppf(np.clip(fitted[[k, k - 1]], PROBIT_CLIP, 1 - PROBIT_CLIP))
    if x[k] == x[k - 1] or z_hi == z_lo:
        return float(x[k])
    return float(x[k - 1] - z_lo * (x[k] - x[k - 1]) / (z_hi - z_lo))


def certainty_equivalents(amounts: np.ndarray, p_sure: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The CE of every lottery from (rounds, lotteries) arrays of its bisection."""
    return np.array([certainty_equivalent(amounts[:, j], p_sure[:, j], low[j], high[j])
                     for j in range(amounts.shape[1])])


def _asked(asks: pd.DataFrame, lotteries: pd.DataFrame, column: str) -> np.ndarray:
    """A column of the bisection rows as a (rounds, lotteries) array in `lotteries` order."""
    return asks.pivot(index="round", columns="id", values=column)[lotteries["id"]].to_numpy(float)


# ---------------------------------------------------------------- cumulative prospect theory


def weight(p: np.ndarray, g: float) -> np.ndarray:
    """Tversky & Kahneman's (1992) one-parameter weighting function w(p) = p^γ / (p^γ + (1 − p)^γ)^(1/γ)."""
    p = np.asarray(p, float)
    pg = p**g
    return pg / (pg + (1 - p) ** g) ** (1 / g)


def value(x: np.ndarray, alpha: float, beta: float, lam: float) -> np.ndarray:
    x = np.asarray(x, float)
    return np.where(x >= 0, np.abs(x) ** alpha, -lam * np.abs(x) ** beta)


def predict_ce(theta: Sequence[float], x1: np.ndarray, p: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The CPT certainty equivalent v⁻¹(V) of each lottery (x1 with chance p; x2), parameters in PARAMETERS order."""
    alpha, beta, lam, gamma, delta = theta
    v1, v2 = value(x1, alpha, beta, lam), value(x2, alpha, beta, lam)
    w_gain, w_loss = weight(p, gamma), weight(p, delta)
    mixed = (x1 > 0) & (x2 < 0)
    total = np.where(mixed, w_gain * v1 + weight(1 - p, delta) * v2,
                     np.where(x1 > 0, w_gain * v1 + (1 - w_gain) * v2, w_loss * v1 + (1 - w_loss) * v2))
    return np.where(total >= 0, np.abs(total) ** (1 / alpha), -(np.abs(total) / lam) ** (1 / beta))


@dataclass(frozen=True)
class Fit:
    params: np.ndarray
    rmse: float
    """Root-mean-square error of the predicted CEs, as a share of each lottery's range."""


def _to_free(theta: Sequence[float]) -> np.ndarray:
    """Bounded parameters to the unbounded ones the optimiser moves (a logistic map onto [LOWER, UPPER])."""
    lo, hi = np.array(LOWER), np.array(UPPER)
    share = np.clip((np.asarray(theta, float) - lo) / (hi - lo), 1e-6, 1 - 1e-6)
    return np.log(share / (1 - share))


def _from_free(u: np.ndarray) -> np.ndarray:
    lo, hi = np.array(LOWER), np.array(UPPER)
    return lo + (hi - lo) / (1 + np.exp(-np.clip(u, -30, 30)))


def fit_cpt(x1: np.ndarray, p: np.ndarray, x2: np.ndarray, ce: np.ndarray,
            starts: Sequence[Sequence[float]] = (EXPECTED_VALUE, PEOPLE)) -> Fit:
    """Least-squares CPT parameters from certainty equivalents (residuals scaled by each lottery's range), within
    [LOWER, UPPER] through a logistic map so that Levenberg-Marquardt (scipy's MINPACK) can move freely; the best
    of the given starting points."""
    ok = np.isfinite(ce)
    x1, p, x2, ce = x1[ok], p[ok], x2[ok], ce[ok]
    scale = np.abs(x1 - x2)
    if len(ce) <= len(PARAMETERS):
        return Fit(np.full(len(PARAMETERS), math.nan), math.nan)

    def residuals(u: np.ndarray) -> np.ndarray:
        return (predict_ce(_from_free(u), x1, p, x2) - ce) / scale

    best = None
    for start in starts:
        with np.errstate(all="ignore"):
            found = least_squares(residuals, _to_free(start), method="lm", xtol=1e-8, ftol=1e-10)
        if best is None or found.cost < best.cost:
            best = found
    return Fit(_from_free(best.x), float(np.sqrt(np.mean(best.fun**2))))


def fit_many(x1: np.ndarray, p: np.ndarray, x2: np.ndarray, ce: np.ndarray, start: Sequence[float],
             iterations: int = FIT_ITERATIONS, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """The same least-squares fit for many data sets at once (rows of (B, n) arrays: bootstrap resamples, random
    responders): batched Levenberg-Marquardt on the same logistic map, a finite-difference Jacobian from one
    evaluation per parameter, damping per row. Returns the (B, 5) parameters and each row's RMSE."""
    scale = np.abs(x1 - x2)
    rows, k = ce.shape[0], len(PARAMETERS)
    known = np.isfinite(ce)  # an undetermined CE (all ties) is left out of its row's fit
    ce = np.where(known, ce, 0.0)

    def residuals(u: np.ndarray) -> np.ndarray:  # (B, 5) → (B, n)
        theta = _from_free(u).T[:, :, None]
        return np.where(known, (predict_ce(theta, x1, p, x2) - ce) / scale, 0.0)

    u = np.tile(_to_free(start), (rows, 1))
    damping = np.full(rows, 1e-3)
    with np.errstate(all="ignore"):
        r = residuals(u)
        cost = np.sum(r**2, axis=1)
        active = np.ones(rows, bool)
        step_size = 1e-6
        for _ in range(iterations):
            jac = np.stack([(residuals(u + step_size * np.eye(k)[j]) - r) / step_size for j in range(k)], axis=2)
            a = np.einsum("bni,bnj->bij", jac, jac)
            g = np.einsum("bni,bn->bi", jac, r)
            a_damped = a + damping[:, None, None] * (np.eye(k) * np.diagonal(a, axis1=1, axis2=2)[:, None, :]
                                                     + 1e-9 * np.eye(k))
            step = -np.linalg.solve(a_damped, g[..., None])[..., 0]
            step = np.clip(np.where(np.isfinite(step), step, 0.0), -MAX_STEP, MAX_STEP)
            r_new = residuals(u + step)
            cost_new = np.sum(r_new**2, axis=1)
            better = active & np.isfinite(cost_new) & (cost_new < cost)
            gain = np.where(better, cost - cost_new, 0.0)
            u = np.where(better[:, None], u + step, u)
            r = np.where(better[:, None], r_new, r)
            cost = np.where(better, cost_new, cost)
            damping = np.where(better, damping / 3, np.minimum(damping * 4, 1e8))
            active &= ~((better & (gain <= tol * np.maximum(cost, 1e-12))) | (damping >= 1e8))
            if not active.any():
                break
    enough = known.sum(axis=1) > k
    params = np.where(enough[:, None], _from_free(u), math.nan)
    return params, np.where(enough, np.sqrt(cost / np.maximum(known.sum(axis=1), 1)), math.nan)


def ev_rmse(x1: np.ndarray, p: np.ndarray, x2: np.ndarray, ce: np.ndarray) -> float:
    """How far an expected-value maximiser's CEs (the expected values) miss, as a share of each range."""
    miss = ((p * x1 + (1 - p) * x2 - ce) / np.abs(x1 - x2))[np.isfinite(ce)]
    return float(np.sqrt(np.mean(miss**2))) if miss.size else math.nan


def _columns(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(frame[c].to_numpy(float) for c in ("x1", "p", "x2", "ce"))


def _stratified(kinds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap resample of lottery positions, within each kind (so every kind stays in the fit)."""
    return np.concatenate([rng.choice(np.flatnonzero(kinds == k), int((kinds == k).sum()))
                           for k in dict.fromkeys(kinds)])


def random_baseline(lotteries: pd.DataFrame, rounds: int, *, draws: int = BASELINE_FITS,
                    samples: int = 20, seed: int = 0) -> np.ndarray:
    """(draws, 7): the fitted parameters, their RMSE and the EV maximiser's RMSE for random responders who
    answer each prompt of the same bisection by `samples` fair coin flips (both orders together)."""
    rng = np.random.default_rng(seed + 1)
    x1, p, x2 = (lotteries[c].to_numpy(float) for c in ("x1", "p", "x2"))
    low, high = _low(lotteries), _high(lotteries)
    ce = np.array([certainty_equivalents(*bisect(lambda x: (random_p(len(x), rng, samples), {}), low, high,
                                                 rounds)[:2], low, high) for _ in range(draws)])
    params, rmse = fit_many(x1, p, x2, ce, EXPECTED_VALUE)
    return np.column_stack([params, rmse, [ev_rmse(x1, p, x2, row) for row in ce]])


# ---------------------------------------------------------------- the result


@dataclass
class RiskAttitudesResult:
    """Per lottery its CE and the CPT fit's; per prompt the bisection; the parameters beside people and EV."""

    lotteries: pd.DataFrame
    asks: pd.DataFrame
    parameters: pd.DataFrame
    metrics: dict[str, Metric]
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The five parameters with intervals, the random range, an EV maximiser's and people's values."""
        return self.parameters

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"Parameters": self.parameters,
                "Certainty equivalents": self.lotteries[["id", "kind", "x1", "p", "x2", "ev", "ce", "ce_cpt",
                                                         "text"]]}

    def to_dict(self) -> dict:
        return jsonable({"analysis": "risk-attitudes", "headline": HEADLINE,
                         **{name: metric.to_dict() for name, metric in self.metrics.items()},
                         "baseline_is": "a responder answering every prompt of the same bisection by fair coin "
                                        "flips, fitted the same way",
                         **self.info, "notes": self.notes})


def _people() -> dict[str, list[tuple[str, float]]]:
    """Published human estimates per parameter (data/published.yaml): (who, value)."""
    return {name: [(row["model"], float(row["value"])) for row in published_values(name)] for name in PARAMETERS}


def _compare(metrics: dict[str, Metric], people: dict[str, list[tuple[str, float]]]) -> list[str]:
    """Sentences placing the fitted parameters against an expected-value maximiser and against people."""
    fitted = {n: metrics[n] for n in PARAMETERS if all(map(math.isfinite, (metrics[n].lo, metrics[n].hi)))}
    if not fitted:
        return ["The certainty equivalents do not determine the prospect-theory parameters."]
    off_ev = [n for n, m in fitted.items() if not m.lo <= 1.0 <= m.hi]
    notes = [("Against an expected-value maximiser (every parameter 1): the intervals of "
              f"{', '.join(off_ev)} exclude 1." if off_ev else
              "Against an expected-value maximiser (every parameter 1): every interval includes 1, so these "
              "choices are consistent with maximising expected value.")]
    pairs = [(name, m, people[name][0][1]) for name, m in fitted.items() if people.get(name)]
    if pairs:
        inside = [name for name, m, number in pairs if m.lo <= number <= m.hi]
        outside = [name for name, m, number in pairs if not m.lo <= number <= m.hi]
        notes.append("Against people (Tversky & Kahneman 1992), model vs people: "
                     + ", ".join(f"{name} {m.value:.2f} vs {number:g}" for name, m, number in pairs)
                     + "; people's value is " + "; ".join(filter(None, [
                         f"inside the model's interval for {', '.join(inside)}" if inside else "",
                         f"outside {'it' if inside else 'the model' + chr(39) + 's interval'} for "
                         f"{', '.join(outside)}" if outside else ""])) + ".")
    rmse = metrics["rmse"]
    if rmse.distinguishable is False:
        notes.append("The prospect-theory fit is no closer than a random responder's: read the parameters as "
                     "undetermined.")
    return notes


def analyze(lotteries: pd.DataFrame, asks: pd.DataFrame, *, rounds: int, n_boot: int = N_BOOT, seed: int = 0,
            level: float = LEVEL, baseline_draws: int = BASELINE_FITS, coin_flips: int = 20) -> RiskAttitudesResult:
    """CEs from the bisection rows, the CPT fit with bootstrap intervals over lotteries, and its baseline."""
    lotteries = lotteries.assign(ce=certainty_equivalents(_asked(asks, lotteries, "amount"),
                                                          _asked(asks, lotteries, "p_sure"),
                                                          _low(lotteries), _high(lotteries)))
    x1, p, x2, ce = _columns(lotteries)
    point = fit_cpt(x1, p, x2, ce)
    if np.isfinite(point.params).all():  # polished by the batched fit, so point and resamples stop alike
        polished, rmse = fit_many(x1[None], p[None], x2[None], ce[None], point.params)
        if rmse[0] < point.rmse:
            point = Fit(polished[0], float(rmse[0]))
    lotteries["ce_cpt"] = predict_ce(point.params, x1, p, x2)
    determined = np.flatnonzero(np.isfinite(ce))  # resample the lotteries that have a CE, within each kind
    kinds = lotteries["kind"].to_numpy()[determined]
    rng = np.random.default_rng(seed)
    boot = np.full((max(n_boot, 1), len(PARAMETERS) + 2), math.nan)
    if np.isfinite(point.params).all():
        idx = determined[np.array([_stratified(kinds, rng) for _ in range(len(boot))])]
        params, rmse = fit_many(x1[idx], p[idx], x2[idx], ce[idx], point.params)
        boot = np.column_stack([params, rmse, [ev_rmse(x1[i], p[i], x2[i], ce[i]) for i in idx]])
    base = random_baseline(lotteries.drop(columns=["ce", "ce_cpt"]), rounds, draws=baseline_draws,
                           samples=coin_flips, seed=seed)
    values = [*point.params, point.rmse, ev_rmse(x1, p, x2, ce) if len(determined) else math.nan]
    names = [*PARAMETERS, "rmse", "ev_rmse"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        metrics = {name: Metric(float(values[k]), *percentile_interval(boot[:, k], level),
                                *baseline_range(base[:, k])) for k, name in enumerate(names)}
    # A parameter the fit pushed to the edge of its allowed range is not measured: its interval collapses onto
    # the bound and would read as a precise finding. Its metric becomes undetermined; the table keeps the value.
    at_bound = [name for k, name in enumerate(PARAMETERS)
                if min(abs(values[k] - LOWER[k]), abs(values[k] - UPPER[k])) < 1e-3 * (UPPER[k] - LOWER[k])]
    shown = {name: replace(m, value=math.nan, lo=math.nan, hi=math.nan) if name in at_bound else m
             for name, m in metrics.items()}
    people = _people()
    parameters = pd.DataFrame([{"parameter": name, "value": metrics[name].value, "ci_lo": metrics[name].lo,
                                "ci_hi": metrics[name].hi, "baseline": metrics[name].baseline,
                                "baseline_lo": metrics[name].baseline_lo, "baseline_hi": metrics[name].baseline_hi,
                                "expected_value": 1.0,
                                "people": people[name][0][1] if people[name] else math.nan,
                                "at_bound": name in at_bound}
                               for name in PARAMETERS])
    counts = lotteries["kind"].value_counts()
    info = {"n_lotteries": len(lotteries), **{f"n_{kind}": int(counts.get(kind, 0)) for kind in KINDS},
            "n_undetermined": int(len(lotteries) - len(determined)),
            "rounds": rounds, "n_boot": n_boot, "level": level,
            "position_bias": float(asks["position_bias"].mean()) if "position_bias" in asks else None,
            "mean_choice_mass": float(asks["mass"].mean()) if "mass" in asks else None}
    notes = _compare(shown, people)
    if at_bound:
        notes.append(f"The fit ran to the edge of the allowed range for {', '.join(at_bound)}: these answers do not "
                     "pin them down, so they read as undetermined (their fitted values are in the table).")
    return RiskAttitudesResult(lotteries, asks, parameters, shown, notes, info)


def run(model: StoredModel, *, budget: int | None = None, seed: int = 0, rounds: int = DEFAULT_ROUNDS,
        system: str | None = None, n_boot: int = N_BOOT) -> RiskAttitudesResult:
    """Bisect the certainty equivalents of `budget` lotteries (default 30, a third of each kind) over `rounds`
    rounds with `model` (2 × budget × rounds prompts at most) and fit cumulative prospect theory to them."""
    check_budget(budget, MIN_PER_KIND * len(KINDS), f"lotteries ({MIN_PER_KIND} each of gains, losses, mixed)")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= MAX_ROUNDS:
        raise InputError(f"rounds must be a whole number from 1 to {MAX_ROUNDS}, got {rounds!r}", field="rounds")
    lotteries = lottery_frame(make_lotteries(DEFAULT_LOTTERIES if budget is None else budget, seed))
    calls_before = model.counts.asked
    asks = ask(model, lotteries, rounds, TEMPLATE, system)
    result = analyze(lotteries, asks, rounds=rounds, n_boot=n_boot, seed=seed, coin_flips=baseline_samples(model))
    return replace(result, info={**result.info, "budget": len(lotteries), "prompts": 2 * len(asks),
                                 "calls": model.counts.asked - calls_before, "mode": model.mode,
                                 "template_sha": TEMPLATE.sha})


# ---------------------------------------------------------------- figure


def figure(result: RiskAttitudesResult) -> Figure:
    """Left: the fitted value function v(x) beside people's (Tversky & Kahneman 1992) and an expected-value
    maximiser's, on the range of amounts asked. Right: the fitted weighting functions w⁺ and w⁻ beside
    people's and the diagonal."""
    fig, (left, right) = new_figure(10.0, 3.8, ncols=2)
    m = {name: result.metrics[name].value for name in PARAMETERS}
    people = _people()
    human = {name: (people[name][0][1] if people[name] else math.nan) for name in PARAMETERS}
    reach = float(np.nanmax(np.abs(result.lotteries[["x1", "x2"]].to_numpy(float)))) or 1.0
    x = np.linspace(-reach, reach, 401)

    def scaled(a: float, b: float, lam: float) -> np.ndarray:  # v in units of v(reach), so curves compare
        return value(x, a, b, lam) / value(np.array(reach), a, a, 1.0)

    left.plot(x / reach, x / reach, color=BASELINE_COLOR, lw=1, ls=(0, (4, 3)), label="expected value (all 1)")
    if all(math.isfinite(human[n]) for n in ("alpha", "beta", "lambda")):
        left.plot(x / reach, scaled(human["alpha"], human["beta"], human["lambda"]), color=PALETTE[1], lw=1.4,
                  label=f"people: α={human['alpha']:g}, β={human['beta']:g}, λ={human['lambda']:g}")
    if all(math.isfinite(m[n]) for n in ("alpha", "beta", "lambda")):
        left.plot(x / reach, scaled(m["alpha"], m["beta"], m["lambda"]), color=PALETTE[0], lw=2,
                  label=f"model: α={m['alpha']:.2f}, β={m['beta']:.2f}, λ={m['lambda']:.2f}")
    left.axhline(0, color="#9aa5b1", lw=0.6)
    left.axvline(0, color="#9aa5b1", lw=0.6)
    low = min(-1.5, -1.2 * max((v for k, v in (("people", human["lambda"]), ("model", m["lambda"]))
                                if math.isfinite(v)), default=1.0))
    left.set(xlabel=f"amount / ${reach:,.0f}", ylabel="value v(x) / v(largest gain)", title="Value function",
             ylim=(max(low, -VALUE_FLOOR), 1.3))  # a runaway curve is cut at the floor, not the whole scale
    left.legend(fontsize=7, loc="lower right")
    p = np.linspace(0.001, 0.999, 300)
    right.plot(p, p, color=BASELINE_COLOR, lw=1, ls=(0, (4, 3)), label="expected value (w = p)")
    for name, symbol, which, color in (("gamma", "γ", "gains", PALETTE[0]), ("delta", "δ", "losses", PALETTE[2])):
        if math.isfinite(human[name]):
            right.plot(p, weight(p, human[name]), color=color, lw=1.2, ls=(0, (1, 1.5)),
                       label=f"people, {which}: {symbol}={human[name]:g}")
        if math.isfinite(m[name]):
            right.plot(p, weight(p, m[name]), color=color, lw=2, label=f"model, {which}: {symbol}={m[name]:.2f}")
    for who, number in people.get("gamma", [])[1:]:
        right.plot(p, weight(p, number), color=PALETTE[4], lw=1, ls=(0, (3, 1.5)), label=f"{who}: γ={number:g}")
    right.set(xlabel="probability p", ylabel="decision weight w(p)", title="Probability weighting",
              xlim=(0, 1), ylim=(0, 1))
    right.legend(fontsize=6.5, loc="upper left", frameon=True, framealpha=0.85, edgecolor="none")
    return fig


ANALYSIS = Analysis(
    name="risk-attitudes", title="Risk attitudes",
    question="How does the model value money gambles, next to people and an expected-value maximiser?",
    budget="lotteries (each bisected over --rounds rounds, both answer orders)", run=run, figure=figure,
    headline=HEADLINE,
    options=(BUDGET_OPT, N_BOOT_OPT, Option("rounds", int, f"bisection rounds per lottery (1-{MAX_ROUNDS})")),
    caption="Fitted value and probability-weighting functions beside people's (Tversky & Kahneman 1992) and "
            "an expected-value maximiser's",
    readings={
        "rmse": Reading("share of range", "lower",
                        "How far prospect theory misses the model's certainty equivalents (share of each lottery's "
                        "range)."),
        "alpha": Reading("exponent", "neither", "Value curvature for gains; below 1 is risk averse. People 0.88."),
        "beta": Reading("exponent", "neither", "Value curvature for losses; below 1 is risk seeking. People 0.88."),
        "lambda": Reading("ratio", "neither", "Loss aversion: a loss's weight against an equal gain. People 2.25."),
        "gamma": Reading("exponent", "neither",
                         "Chance weighting for gains; below 1 overweights small chances. People 0.61."),
        "delta": Reading("exponent", "neither", "Chance weighting for losses, read like gamma. People 0.69."),
        "ev_rmse": Reading("share of range", "lower",
                           "The same miss for an expected-value maximiser (every parameter 1, all people's values "
                           "from Tversky & Kahneman 1992)."),
    },
    columns={
        "parameter": "prospect-theory parameter (alpha, beta: value curvature for gains, losses; lambda: loss "
                     "aversion; gamma, delta: probability weighting for gains, losses)",
        "expected_value": "the parameter of an expected-value maximiser",
        "people": "median estimate for people, Tversky & Kahneman (1992)",
        "at_bound": "the fit ran to the edge of the allowed range: the answers do not pin the parameter down",
        "kind": "gains, losses, or mixed (a gain or a loss)",
        "x1": "first outcome in dollars (the larger stake; the gain of a mixed lottery), negative for a loss",
        "p": "chance of the first outcome",
        "x2": "other outcome in dollars",
        "ev": "expected value of the lottery",
        "ce": "certainty equivalent found by bisection: the sure amount the model takes as often as the lottery",
        "ce_cpt": "certainty equivalent the fitted prospect theory predicts",
        "text": "the lottery as shown to the model",
    },
)
