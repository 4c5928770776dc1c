"""From dilemma choices to value weights: a conditional logit on tag differences; DailyDilemmas' percentages.

The choice model is a conditional logit (McFadden 1974), i.e. Bradley-Terry with features: P(choose a) =
σ(β·(x_a − x_b)), where x is an action's 0/1 tag vector at one level (refined, basic or higher-order Schwartz
values, moral foundations, cultural-map poles). β_tag > 0 means the respondent leans towards actions serving
that tag. It is fitted with statsmodels' Logit on the order-debiased P(a), a fractional response (Papke &
Wooldridge 1996), with no intercept: which action is listed first carries no meaning once orders are
averaged. The selected-minus-neglected percentage is DailyDilemmas' (Chiu et al. 2025, §3.3): 100·(sel −
neg)/(sel + neg) over every occurrence of a tag, with P(a) as a soft choice (equal to theirs for 0/1
choices). Everything here is pure: it takes a per-action tag frame (`valuelab.items.dilemmas.dilemmas_frame`)
and per-dilemma P(a).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm

from valuelab.stats import N_BOOT, frame_baseline, frame_interval

N_RANDOM = 100


def tag_indicators(actions: pd.DataFrame, level: str, vocabulary: Sequence[str], side: str) -> pd.DataFrame:
    """0/1 tag indicators of one side's actions: rows by dilemma id, one column per tag."""
    rows = actions[actions["action"] == side].set_index("dilemma_id")[level]
    return pd.DataFrame([[float(t in tags) for t in vocabulary] for tags in rows], index=rows.index,
                        columns=list(vocabulary))


def tag_differences(actions: pd.DataFrame, level: str, vocabulary: Sequence[str]) -> pd.DataFrame:
    """x_a − x_b per dilemma (rows, by dilemma id) and tag (columns): +1 only a serves it, −1 only b."""
    return tag_indicators(actions, level, vocabulary, "a") - tag_indicators(actions, level, vocabulary, "b")


def _weights(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    weights = np.full(x.shape[1], math.nan)
    used = (x != 0).any(axis=0)
    informative = (x[:, used] != 0).any(axis=1)
    if not used.any() or informative.sum() <= used.sum():
        return weights
    design = x[np.ix_(informative, used)]
    # Tags that always travel together (common in a small sample of dilemmas) make the plain fit singular;
    # then a ridge-penalised fit gives them a shared weight instead of failing.
    if np.linalg.matrix_rank(design) < design.shape[1]:
        weights[used] = ridge_logit(p[informative], design)
        return weights
    # Near-separation is expected for decisive respondents; the bootstrap interval shows it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.Logit(p[informative], design).fit(method="newton", disp=0, maxiter=100)
    weights[used] = fit.params
    return weights


def ridge_logit(p: np.ndarray, x: np.ndarray, penalty: float = 1.0, iterations: int = 50) -> np.ndarray:
    """Logistic regression of soft labels `p` on `x` with an L2 penalty, by Newton's method."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        q = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (q - p) + penalty * w
        hessian = (x * (q * (1 - q))[:, None]).T @ x + penalty * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def fit_weights(p_a: pd.Series, diffs: pd.DataFrame) -> pd.Series:
    """Conditional-logit weights per tag; NaN for a tag never on one side only (not identified)."""
    x = diffs.loc[p_a.index].to_numpy(float)
    return pd.Series(_weights(p_a.to_numpy(float), x), index=diffs.columns)


def _smn(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chosen = p[:, None]
    selected = (a * chosen + b * (1.0 - chosen)).sum(axis=0)
    neglected = (a * (1.0 - chosen) + b * chosen).sum(axis=0)
    total = selected + neglected
    with np.errstate(invalid="ignore", divide="ignore"):
        smn = np.where(total > 0, 100.0 * (selected - neglected) / total, math.nan)
    return selected, neglected, smn


def selected_minus_neglected(p_a: pd.Series, actions: pd.DataFrame, level: str,
                             vocabulary: Sequence[str]) -> pd.DataFrame:
    """DailyDilemmas' percentages: soft counts of selected and neglected occurrences, 100·(s−n)/(s+n)."""
    a, b = (tag_indicators(actions, level, vocabulary, side).loc[p_a.index].to_numpy() for side in "ab")
    selected, neglected, smn = _smn(p_a.to_numpy(float), a, b)
    return pd.DataFrame({"selected": selected, "neglected": neglected, "smn": smn}, index=list(vocabulary))


def random_choices(n: int, answers: int, rng: np.random.Generator) -> np.ndarray:
    """P(a) of a uniform-random respondent who gives `answers` coin-flip answers per dilemma."""
    return rng.binomial(answers, 0.5, n) / answers


def score_choices(p_a: pd.Series, actions: pd.DataFrame, levels: Mapping[str, Sequence[str]], *,
                  random_answers: int, n_boot: int = N_BOOT, n_random: int = N_RANDOM,
                  seed: int = 0) -> pd.DataFrame:
    """Weights and percentages per level and tag, with bootstrap intervals and the random-respondent range.

    `p_a` is the order-debiased P(choose action a) per dilemma id (NaN rows, all refusals, are dropped);
    dilemmas are resampled with replacement for the intervals. `random_answers` is how many answers the null
    respondent gives per dilemma (prompts per dilemma × answers per prompt). Columns: level, tag, weight,
    weight_lo, weight_hi, weight_baseline(_lo, _hi), smn (same suffixes), selected, neglected, one_side.
    """
    p_a = p_a.dropna()
    sides = {level: [tag_indicators(actions, level, vocabulary, side).loc[p_a.index].to_numpy()
                     for side in "ab"] for level, vocabulary in levels.items()}
    columns = pd.MultiIndex.from_tuples([(stat, level, tag) for level, vocabulary in levels.items()
                                         for stat in ("weight", "smn") for tag in vocabulary])

    def scores(p: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = []
        for a, b in sides.values():
            out += [_weights(p, a[rows] - b[rows]), _smn(p, a[rows], b[rows])[2]]
        return np.concatenate(out)

    p = p_a.to_numpy(float)
    everyone = np.arange(len(p))
    point = pd.Series(scores(p, everyone), index=columns)
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(p), len(p)) for _ in range(n_boot)]
    boot = pd.DataFrame([scores(p[rows], rows) for rows in resamples], columns=columns)
    null = pd.DataFrame([scores(random_choices(len(p), random_answers, rng), everyone)
                         for _ in range(n_random)], columns=columns)
    table = pd.concat([point.rename("value"), frame_interval(boot), frame_baseline(null)], axis=1)
    rows = []
    for level, vocabulary in levels.items():
        a, b = sides[level]
        selected, neglected, _ = _smn(p, a, b)
        for k, tag in enumerate(vocabulary):
            row = {"level": level, "tag": tag}
            for stat in ("weight", "smn"):
                values = table.loc[(stat, level, tag)]
                row |= {stat: values["value"], f"{stat}_lo": values["lo"], f"{stat}_hi": values["hi"],
                        f"{stat}_baseline": values["baseline"], f"{stat}_baseline_lo": values["baseline_lo"],
                        f"{stat}_baseline_hi": values["baseline_hi"]}
            row |= {"selected": selected[k], "neglected": neglected[k],
                    "one_side": int((a[:, k] != b[:, k]).sum())}
            rows.append(row)
    return pd.DataFrame(rows)
