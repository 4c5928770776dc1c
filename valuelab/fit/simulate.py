"""A known Thurstonian agent to draw preferences from: for validating fits and planning query budgets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr
from scipy.stats import binom


@dataclass
class Agent:
    """True utilities: U_i ~ N(mean_i, variance_i), sampled independently at every comparison."""

    items: tuple[str, ...]
    mean: np.ndarray
    variance: np.ndarray

    def proba(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ndtr((self.mean[a] - self.mean[b]) / np.sqrt(self.variance[a] + self.variance[b]))

    def sample(self, a: np.ndarray, b: np.ndarray, samples: int, rng: np.random.Generator) -> pd.DataFrame:
        """``samples`` binary choices per pair, as a preference frame with integer counts."""
        wins = rng.binomial(samples, self.proba(a, b)).astype(float)
        items = np.asarray(self.items, dtype=object)
        return pd.DataFrame({"item_a": items[a], "item_b": items[b], "wins_a": wins,
                             "wins_b": samples - wins})

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"item": list(self.items), "mean": self.mean, "variance": self.variance})

    def expected_accuracy(self, mean: np.ndarray, samples: int) -> float:
        """Held-out accuracy that utilities ``mean`` (same item order) would score in expectation over every
        pair, each labelled by ``samples`` of this agent's choices with ties counting for the first item
        (the reference's definition): the population value a sampled holdout of 1,000 pairs estimates with
        about one point of noise. Memory grows as N^2 / 2."""
        a, b = np.triu_indices(len(self.items), 1)
        first = binom.sf(math.ceil(samples / 2) - 1, samples, self.proba(a, b))
        return float(np.mean(np.where(mean[a] >= mean[b], first, 1.0 - first)))

    def query_fn(self, samples: int, seed: int = 0) -> Callable[[list[tuple[str, str]]], pd.DataFrame]:
        """A backend stand-in for ``active.run_active``: answers each pair with ``samples`` draws."""
        rng = np.random.default_rng(seed)
        index = {item: i for i, item in enumerate(self.items)}

        def query(pairs: list[tuple[str, str]]) -> pd.DataFrame:
            a = np.array([index[x] for x, _ in pairs], dtype=np.int64)
            b = np.array([index[y] for _, y in pairs], dtype=np.int64)
            return self.sample(a, b, samples, rng)

        return query


def random_agent(n_items: int, seed: int = 0, noise: float = 0.5, noise_spread: float = 0.5) -> Agent:
    """Means ~ N(0, 1); sd_i = noise * exp(N(0, noise_spread^2)), so items differ in how sharply they are
    preferred (0.5 gives typical random pairs P ~ 0.9, like the confident choices LLMs make)."""
    rng = np.random.default_rng(seed)
    width = len(str(n_items - 1))
    items = tuple(f"item{i:0{width}d}" for i in range(n_items))
    sd = noise * np.exp(rng.normal(0.0, noise_spread, n_items))
    return Agent(items, rng.normal(0.0, 1.0, n_items), sd ** 2)


def random_pairs(n_items: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unordered pairs, uniformly at random, always including a random Hamiltonian cycle (when
    ``n_pairs >= n_items``) so that the comparison graph is connected."""
    total = n_items * (n_items - 1) // 2
    if not 0 < n_pairs <= total:
        raise ValueError(f"n_pairs must be in 1..{total} for {n_items} items, got {n_pairs}")
    chosen: set[int] = set()
    if n_pairs >= n_items >= 3:
        order = rng.permutation(n_items)
        lo, hi = np.minimum(order, np.roll(order, 1)), np.maximum(order, np.roll(order, 1))
        chosen.update((lo * n_items + hi).tolist())
    while len(chosen) < n_pairs:
        need = n_pairs - len(chosen)
        x = rng.integers(0, n_items, 2 * need + 16)
        y = rng.integers(0, n_items, 2 * need + 16)
        ok = x != y
        keys = np.minimum(x, y)[ok] * n_items + np.maximum(x, y)[ok]
        for k in keys.tolist():
            if len(chosen) == n_pairs:
                break
            chosen.add(k)
    keys = np.sort(np.fromiter(chosen, dtype=np.int64))
    return keys // n_items, keys % n_items


def simulate(items: int, pairs: int, samples: int, seed: int = 0) -> tuple[pd.DataFrame, Agent]:
    """Preferences of a random agent over ``pairs`` random pairs, ``samples`` draws each."""
    rng = np.random.default_rng(seed)
    agent = random_agent(items, seed=int(rng.integers(2 ** 31)))
    a, b = random_pairs(items, pairs, rng)
    return agent.sample(a, b, samples, rng), agent


def simulate_csv(items: int, pairs: int, samples: int, seed: int, out: str | Path,
                 truth: str | Path | None = None) -> dict:
    """``valuelab simulate``: write PREFS.csv (and the true utilities as TRUTH.csv when asked)."""
    prefs, agent = simulate(items, pairs, samples, seed)
    prefs.to_csv(out, index=False, float_format="%.10g")
    if truth is not None:
        agent.to_frame().to_csv(truth, index=False, float_format="%.10g")
    return {"items": items, "pairs": len(prefs), "comparisons": int(pairs * samples), "out": str(out),
            "truth": None if truth is None else str(truth)}
