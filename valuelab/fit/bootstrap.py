"""Bootstrap confidence intervals for utilities and held-out metrics, fitted as one batched problem.

Each replicate resamples the input rows with replacement (rows are the unit the data was collected in:
one queried pair, or one human vote), so duplicated data gives tighter intervals. All replicates share
the item set and edge list and differ only in counts, so ``fit_batch`` solves them together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from valuelab.fit.io import Comparisons
from valuelab.fit.metrics import score
from valuelab.fit.thurstonian import fit_batch, predict_proba


@dataclass
class BootstrapResult:
    items: tuple[str, ...]
    mean: np.ndarray  # (B, n) normalised utilities per replicate
    variance: np.ndarray
    level: float
    metrics: pd.DataFrame | None = None  # one row of held-out metrics per replicate

    def interval(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval over replicates (axis 0)."""
        tail = 100 * (1 - self.level) / 2
        return np.percentile(values, tail, axis=0), np.percentile(values, 100 - tail, axis=0)

    def to_frame(self) -> pd.DataFrame:
        lo, hi = self.interval(self.mean)
        return pd.DataFrame({"item": list(self.items), "mean_lo": lo, "mean_hi": hi,
                             "mean_sd": self.mean.std(0, ddof=1)})

    def metric_intervals(self) -> dict[str, tuple[float, float]]:
        if self.metrics is None:
            return {}
        return {name: tuple(float(v) for v in self.interval(self.metrics[name].to_numpy()))
                for name in ("accuracy", "log_loss", "calibration_error", "avg_confidence")}


def resample_counts(comp: Comparisons, n_boot: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-edge counts (n_boot, m) after resampling the input rows with replacement."""
    n_rows = len(comp.row_edge)
    wa, wb = np.empty((n_boot, comp.n_edges)), np.empty((n_boot, comp.n_edges))
    for r in range(n_boot):
        times = np.bincount(rng.integers(0, n_rows, n_rows), minlength=n_rows)
        wa[r] = np.bincount(comp.row_edge, times * comp.row_wins_a, comp.n_edges)
        wb[r] = np.bincount(comp.row_edge, times * comp.row_wins_b, comp.n_edges)
    return wa, wb


def bootstrap(comp: Comparisons, n_boot: int = 100, *, model: str = "thurstonian", seed: int = 0,
              level: float = 0.95, held_out: Comparisons | None = None, chunk: int | None = None,
              **fit_options) -> BootstrapResult:
    """Refit on ``n_boot`` row resamples; with ``held_out``, also score each replicate on a resample of the
    held-out edges, so the metric intervals include both fit and test-set uncertainty.

    ``chunk`` replicates are fitted per batched call (default: all at once; ``fit_batch`` then picks
    L-BFGS when the replicates' dense Hessians would be too large).
    """
    rng = np.random.default_rng(seed)
    wa, wb = resample_counts(comp, n_boot, rng)
    chunk = chunk or n_boot
    means, variances = [], []
    for start in range(0, n_boot, chunk):
        res = fit_batch(comp.n_items, comp.a, comp.b, wa[start:start + chunk], wb[start:start + chunk],
                        model=model, **fit_options)
        means.append(res.mean)
        variances.append(res.variance)
    mean, variance = np.concatenate(means), np.concatenate(variances)
    metrics = None
    if held_out is not None:
        p_obs = held_out.wins_a / (held_out.wins_a + held_out.wins_b)
        rows = []
        for r in range(n_boot):
            pick = rng.integers(0, held_out.n_edges, held_out.n_edges)
            p_hat = predict_proba(mean[r], variance[r], held_out.a[pick], held_out.b[pick], model)
            rows.append(score(p_hat, p_obs[pick]).to_dict())
        metrics = pd.DataFrame(rows)
    return BootstrapResult(comp.items, mean, variance, level, metrics)
