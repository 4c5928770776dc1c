"""The statistics every analysis shares, written once: percentile bootstrap intervals, the random responder
and its baselines, correlations with their intervals, z-scores, and JSON-safe numbers.

The random responder is the paper's baseline (Mazeika et al. 2025 §4; reference/paper-utility-engineering.md
§1.5): a model that says A or B with probability ½ each, asked K = 10 times per order, so an observed
P(a ≻ b) is Binomial(20, ½)/20. Its average confidence is 0.588 and its held-out accuracy 50 %.
Intervals are percentile bootstraps (Efron & Tibshirani 1993, ch. 13) at `LEVEL`; a baseline is the mean and
the central 95 % range of the same statistic over simulated random responders.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, rankdata, spearmanr

from valuelab.errors import InputError

LEVEL = 0.95
"""Confidence level of every interval unless an analysis is asked for another."""
N_BOOT = 1000
"""Bootstrap resamples per interval."""
BASELINE_DRAWS = 200
"""Simulated random responders per baseline: enough for its mean and 95 % range at the sizes we use."""
BASELINE_RANGE = (2.5, 97.5)
"""Percentiles of the random responder's range (always the central 95 %, whatever the interval level)."""
REFERENCE_SAMPLES = 20
"""Answers per pair in the reference protocol (K = 10 per order): the random responder's sample size."""
RANDOM_ANSWERS = 10
"""Answers per prompt of a random respondent to a single question (the reference K) in log-prob mode."""
RANDOM_ROBUSTNESS_DRAWS = 50
"""Random respondents averaged for the baseline of each robustness number of a dilemma set or survey."""
Z95 = 1.959963984540054
"""The normal quantile of a central 95 % interval."""


# ---------------------------------------------------------------- the measured number


Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class Metric:
    """A measured number, its interval, and what a random responder gives over as many items."""

    value: float
    lo: float = math.nan
    hi: float = math.nan
    baseline: float = math.nan
    baseline_lo: float = math.nan
    baseline_hi: float = math.nan
    name: str = ""
    unit: str = ""
    better: Better = "neither"
    how_to_read: str = ""

    def to_dict(self) -> dict:
        """The numbers as results.json has always carried them (`ci`, `baseline_range`), plus the reading."""
        out = {"value": self.value, "ci": [self.lo, self.hi], "baseline": self.baseline,
               "baseline_range": [self.baseline_lo, self.baseline_hi]}
        out |= {k: getattr(self, k) for k in ("name", "unit", "how_to_read") if getattr(self, k)}
        if self.better != "neither":
            out["better"] = self.better
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Metric:
        def num(value: Any) -> float:
            return math.nan if value is None else float(value)

        lo, hi = data.get("ci") or (None, None)
        base_lo, base_hi = data.get("baseline_range") or (None, None)
        return cls(num(data["value"]), num(lo), num(hi), num(data.get("baseline")), num(base_lo), num(base_hi),
                   **{k: data[k] for k in ("name", "unit", "better", "how_to_read") if k in data})

    def row(self, name: str | None = None) -> dict:
        """One row of a metrics table."""
        return {"metric": name or self.name, "value": self.value, "ci_lo": self.lo, "ci_hi": self.hi,
                "baseline": self.baseline, "baseline_lo": self.baseline_lo, "baseline_hi": self.baseline_hi}

    def described(self, **reading: str) -> Metric:
        """A copy with `name`, `unit`, `better` or `how_to_read` filled in (those given and non-empty)."""
        return replace(self, **{k: v for k, v in reading.items() if v})

    @property
    def distinguishable(self) -> bool | None:
        """True when the interval and the random responder's range do not overlap, False when they do, None
        when either is undefined."""
        ends = (self.lo, self.hi, self.baseline_lo, self.baseline_hi)
        if not all(isinstance(v, float | int) and math.isfinite(v) for v in ends):
            return None
        return self.hi < self.baseline_lo or self.lo > self.baseline_hi


# ---------------------------------------------------------------- intervals


def percentile_interval(values: Any, level: float = LEVEL, axis: int | None = 0) -> tuple[Any, Any]:
    """The central `level` percentile interval of `values` along `axis`, NaNs ignored (an all-NaN slice
    gives NaN). Scalars for a 1-d input (or `axis=None`), arrays otherwise."""
    tail = 50 * (1 - level)
    values = np.asarray(values, dtype=float)
    with warnings.catch_warnings():  # an all-NaN slice (a statistic never defined) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=axis)
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


def interval_se(lo: Any, hi: Any) -> Any:
    """The standard error a central 95 % interval implies, read as a normal one: (hi − lo) / (2·1.96)."""
    return (hi - lo) / (2 * Z95)


def baseline_range(draws: Any, axis: int | None = 0) -> tuple[Any, Any, Any]:
    """Mean and central 95 % range of a random responder's draws (NaNs ignored)."""
    draws = np.asarray(draws, dtype=float)
    if draws.size == 0:
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(draws, axis=axis)
        lo, hi = np.nanpercentile(draws, BASELINE_RANGE, axis=axis)
    if np.ndim(mean) == 0:
        return float(mean), float(lo), float(hi)
    return mean, lo, hi


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, n_boot: int = N_BOOT, seed: int = 0,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of `stat(indices)` over `n_boot` resamples, with replacement, of the `n` items."""
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    return percentile_interval([stat(rng.integers(0, n, n)) for _ in range(n_boot)], level)


def summarize(stat: Callable[[np.ndarray], float], n: int, baseline: Sequence[float] | np.ndarray, *,
              n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Metric:
    """`stat` over all `n` items with its bootstrap interval; the mean and 95 % range of `baseline` draws."""
    lo, hi = bootstrap_ci(stat, n, n_boot, seed, level)
    return Metric(float(stat(np.arange(n))), lo, hi, *baseline_range(baseline))


def frame_interval(draws: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per column of `draws` (one row per bootstrap replicate): `lo`, `hi` of its percentile interval."""
    lo, hi = percentile_interval(draws.to_numpy(dtype=float), level) if len(draws) else (math.nan, math.nan)
    return pd.DataFrame({"lo": lo, "hi": hi}, index=draws.columns)


def frame_baseline(draws: pd.DataFrame) -> pd.DataFrame:
    """Per column of random-respondent draws: `baseline` (mean), `baseline_lo`, `baseline_hi` (95 % range)."""
    mean, lo, hi = baseline_range(draws.to_numpy(dtype=float))
    return pd.DataFrame({"baseline": mean, "baseline_lo": lo, "baseline_hi": hi}, index=draws.columns)


# ---------------------------------------------------------------- the random responder


def random_p(shape: int | tuple[int, ...], rng: np.random.Generator,
             samples: int = REFERENCE_SAMPLES) -> np.ndarray:
    """Observed P(a ≻ b) of a random responder asked `samples` times per pair."""
    return rng.binomial(samples, 0.5, shape) / samples


def baseline_samples(mode: str, n_samples: int) -> int:
    """Answers behind one observed P(a ≻ b): the samples of both orders, or the reference's 20."""
    return 2 * n_samples if mode == "sample" else REFERENCE_SAMPLES


def answers_per_prompt(mode: str, n_samples: int) -> int:
    """Answers behind one observed probability of a single question: samples, or the reference K."""
    return n_samples if mode == "sample" else RANDOM_ANSWERS


# ---------------------------------------------------------------- correlations


def zscore(values: Any) -> np.ndarray:
    """Standardise along the last axis; a constant vector becomes zeros rather than NaN."""
    values = np.asarray(values, dtype=float)
    sd = values.std(axis=-1, keepdims=True)
    return (values - values.mean(axis=-1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; NaN for fewer than three values or a constant vector."""
    return float(pearsonr(x, y)[0]) if len(x) > 2 and x.std() > 0 and y.std() > 0 else math.nan


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ; NaN for fewer than three values or a constant vector."""
    return float(spearmanr(x, y)[0]) if len(x) > 2 and x.std() > 0 and y.std() > 0 else math.nan


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of (B, n) arrays; NaN where a row is constant."""
    xc, yc = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(1) / np.sqrt((xc**2).sum(1) * (yc**2).sum(1))


def correlate(x: Sequence[float], y: Sequence[float], *, n_boot: int = N_BOOT, seed: int = 0,
              level: float = LEVEL) -> dict[str, Metric]:
    """Pearson and Spearman correlations, each with a percentile bootstrap interval over items and, as the
    random responder's baseline, the mean and 95 % range of the same correlation after shuffling `y` (a
    responder whose answers are unrelated to `x`). The one correlation interval of the project: convergence
    and `valuelab compare` both use it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 3:
        raise InputError(f"need at least 3 paired values to correlate, got {len(x)}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), (n_boot, len(x)))
    shuffle = np.argsort(rng.random((n_boot, len(x))), axis=1)
    out = {}
    for method, ranked in (("pearson", False), ("spearman", True)):
        a, b = (rankdata(x), rankdata(y)) if ranked else (x, y)
        # Spearman ranks are recomputed within each resample, where ties from repeated items change them.
        boot = pearson_rows(*(rankdata(v[idx], axis=1) if ranked else v[idx] for v in (x, y)))
        null = pearson_rows(np.broadcast_to(a, shuffle.shape), b[shuffle])
        lo, hi = percentile_interval(boot, level)
        out[method] = Metric(float(pearson_rows(a[None], b[None])[0]), lo, hi, *baseline_range(null))
    return out


# ---------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN and infinities as null, keys as strings, frames as
    records, anything else as its string."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return frame_records(value)
    if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        return [jsonable(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if hasattr(value, "to_dict") and callable(value.to_dict):  # a Metric or a result
        return jsonable(value.to_dict())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a meaningful index turned into leading columns; an unnamed integer index (row numbers,
    perhaps shuffled by a sort) is dropped."""
    if all(name is None for name in frame.index.names) and pd.api.types.is_integer_dtype(frame.index):
        return frame.reset_index(drop=True)
    return frame.reset_index()


def frame_records(frame: pd.DataFrame) -> list[dict]:
    return [jsonable(row) for row in display_frame(frame).to_dict("records")]


def write_json(path: str | Path, data: Any) -> Path:
    """The one JSON writer: `data` made JSON-safe (`jsonable`), indented, UTF-8, valid JSON (no NaN)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path
