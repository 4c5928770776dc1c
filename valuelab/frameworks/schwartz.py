"""Schwartz's theory of basic values: the 19 refined, the 10 basic and the 4 higher-order values.

Structure from Schwartz et al. (2012), "Refining the theory of basic individual values", JPSP 103:663,
and the PVQ-RR coding instructions (Schwartz 2021): humility pools into tradition for the 10-value key,
face into power; humility and face are boundary values kept outside the higher-order scores. The vocabularies
live in `valuelab.items.vocabularies` (item files are validated against them) and are re-exported here.
"""

import math

import numpy as np

from valuelab.items.vocabularies import BASIC_VALUES, HIGHER_ORDER, REFINED_VALUES

__all__ = ["BASIC_VALUES", "HIGHER_ORDER", "REFINED_VALUES", "circumplex_fit"]


def circumplex_fit(scores: dict[str, float], order: list[str] | None = None, *, n_permutations: int = 1000,
                   seed: int = 0) -> dict[str, float | str | int]:
    """How well one value profile follows the circle: a first-harmonic (cosine) fit around the circumplex.

    The circular model says compatible values sit next to each other, so a profile should rise and fall once
    around the circle: s(θ) ≈ c + A·cos(θ − φ) with the values at equal angles in circumplex order (Schwartz
    1992; Schwartz et al. 2012). Returns the fit's R², its amplitude, the value nearest the peak φ, and a
    permutation p-value: the share of random orderings of the same scores fitting at least as well. A
    single respondent has no correlation matrix to scale, so this cosine check stands in for MDS.
    """
    order = list(REFINED_VALUES) if order is None else order
    known = [(k, v) for k, v in enumerate(order) if v in scores and np.isfinite(scores[v])]
    if len(known) < 4:
        return {"r2": math.nan, "amplitude": math.nan, "peak": "", "p_value": math.nan,
                "n_values": len(known)}
    theta = np.array([2 * math.pi * k / len(order) for k, _ in known])
    design = np.column_stack([np.ones_like(theta), np.cos(theta), np.sin(theta)])
    y = np.array([scores[v] for _, v in known], dtype=float)

    def r2(values: np.ndarray) -> float:
        residual = values - design @ np.linalg.lstsq(design, values, rcond=None)[0]
        total = float(((values - values.mean()) ** 2).sum())
        return 1.0 - float((residual**2).sum()) / total if total > 0 else math.nan

    _, a, b = np.linalg.lstsq(design, y, rcond=None)[0]
    phase = math.atan2(b, a) % (2 * math.pi)
    peak = order[round(phase / (2 * math.pi) * len(order)) % len(order)]
    observed = r2(y)
    rng = np.random.default_rng(seed)
    null = np.array([r2(rng.permutation(y)) for _ in range(n_permutations)])
    at_least = int(np.sum(null >= observed - 1e-12))
    p = (1 + at_least) / (1 + n_permutations) if np.isfinite(observed) else math.nan
    return {"r2": observed, "amplitude": float(math.hypot(a, b)), "peak": peak, "p_value": p,
            "n_values": len(known)}
