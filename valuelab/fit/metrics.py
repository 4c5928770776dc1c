"""Held-out goodness of fit for paired-comparison models.

Accuracy and log-loss follow the reference (emergent-values §3.5): per edge, accuracy is
[(P_hat >= 0.5) == (p >= 0.5)] with p = wins_a / (wins_a + wins_b), and log-loss is the soft-label
cross-entropy with P_hat clipped to [1e-5, 1 - 1e-5]; both are means over edges. We add the expected
calibration error (10 equal-width bins of P_hat, |mean P_hat - mean p| weighted by bin size) and the
average confidence max(P_hat, 1 - P_hat), which together say whether the fitted noise levels are honest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from valuelab.fit.io import Comparisons
from valuelab.fit.thurstonian import predict_proba

CLIP = 1e-5
N_BINS = 10


@dataclass
class Metrics:
    accuracy: float
    log_loss: float
    calibration_error: float
    avg_confidence: float
    n_pairs: int

    def to_dict(self) -> dict:
        return asdict(self)


def score(p_hat: np.ndarray, p_obs: np.ndarray) -> Metrics:
    """Metrics of predicted probabilities ``p_hat`` against observed soft labels ``p_obs`` (per edge)."""
    accuracy = float(np.mean((p_hat >= 0.5) == (p_obs >= 0.5)))
    clipped = np.clip(p_hat, CLIP, 1 - CLIP)
    log_loss = float(-np.mean(p_obs * np.log(clipped) + (1 - p_obs) * np.log(1 - clipped)))
    bins = np.minimum((p_hat * N_BINS).astype(int), N_BINS - 1)
    size = np.bincount(bins, minlength=N_BINS)
    gap = np.bincount(bins, p_hat - p_obs, minlength=N_BINS)
    calibration = float(np.abs(gap).sum() / len(p_hat))
    confidence = float(np.mean(np.maximum(p_hat, 1 - p_hat)))
    return Metrics(accuracy, log_loss, calibration, confidence, int(size.sum()))


def evaluate(mean: np.ndarray, variance: np.ndarray, held_out: Comparisons,
             model: str = "thurstonian") -> Metrics:
    """Metrics of a fit (normalised means/variances indexed like ``held_out.items``) on held-out edges."""
    p_hat = predict_proba(mean, variance, held_out.a, held_out.b, model)
    return score(p_hat, held_out.wins_a / (held_out.wins_a + held_out.wins_b))


def split_holdout(comp: Comparisons, fraction: float, seed: int = 0) -> tuple[Comparisons, Comparisons]:
    """Random (train, held-out) split of the edges; both keep the full item list."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    n_out = max(1, int(round(fraction * comp.n_edges)))
    held = np.zeros(comp.n_edges, dtype=bool)
    held[rng.choice(comp.n_edges, n_out, replace=False)] = True
    return comp.subset_edges(~held), comp.subset_edges(held)
