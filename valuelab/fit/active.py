"""Active pair sampling: which pairs to ask about next, and a driver that runs rounds against any backend.

Selectors share one signature, ``select(state, k, rng) -> indices into state.pool``:

- ``reference_select``: the Utility Engineering heuristic (emergent-values §4.3), sampling uniformly from
  pairs in both the lowest P% of utility gaps and the lowest Q% of degree sums, widening P and Q by 1.5x
  up to five times. Unlike the original it draws from the seeded generator, so runs are reproducible.
- ``InformationGain``: among the reference's candidates, sequential A-optimal design on a Laplace
  approximation of the posterior of the means (the posterior as in Crowd-BT and ASAP): pick the pairs that
  most shrink the summed variance of all utility differences, which is what held-out accuracy on random
  pairs rewards. A batch is chosen greedily; after each pick the covariance gets the rank-one update the
  pair's expected Fisher information would cause, so a batch does not pile onto one uncertain item.
- ``uniform_select``: uniformly random pairs, the baseline.

``run_active`` drives rounds: hold out pairs, query a random 2-regular graph, then fit, select and query
until the budget (default the reference's floor(2 N log2 N) pairs) is spent. ``query_fn`` maps a list of
``(item_a, item_b)`` to preference rows, so the loop works with a model backend, the store or a simulation.
Pseudo-labelling of unqueried pairs is not offered: it inflates training metrics (emergent-values §4.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from valuelab.fit.io import Comparisons, aggregate
from valuelab.fit.metrics import evaluate
from valuelab.fit.thurstonian import ThurstonianModel

QueryFn = Callable[[list[tuple[str, str]]], pd.DataFrame]


@dataclass
class ActiveState:
    """What a selector may look at: the current fit, the queried data and the remaining pool."""

    fit: ThurstonianModel
    data: Comparisons
    pool_a: np.ndarray
    pool_b: np.ndarray
    degree: np.ndarray


Selector = Callable[[ActiveState, int, np.random.Generator], np.ndarray]


def reference_budget(n_items: int) -> int:
    """Target number of queried pairs in the reference, floor(2 N log2 N) (emergent-values §4.1)."""
    return int(2 * n_items * math.log2(n_items))


def reference_select(state: ActiveState, k: int, rng: np.random.Generator, p: float = 10.0,
                     q: float = 20.0) -> np.ndarray:
    """Pairs with small utility gaps and small degree sums (emergent-values §4.3), seeded."""
    candidates = _close_low_degree(state, p, q, k)
    if len(candidates) >= k:
        return rng.choice(candidates, k, replace=False)
    rest = np.setdiff1d(np.arange(len(state.pool_a)), candidates)
    return np.concatenate([candidates, rng.choice(rest, k - len(candidates), replace=False)])


def laplace_covariance(fit: ThurstonianModel, data: Comparisons) -> np.ndarray:
    """Posterior covariance of the (normalised) means given the variances, from the expected Fisher
    information: a graph Laplacian with edge weights n * phi(z)^2 / (Phi(z) Phi(-z)) / tau^2. Its null
    direction (a common shift) is removed with the pseudo-inverse trick (L + J/n)^-1; a tiny ridge keeps
    the inverse finite while the graph is still disconnected."""
    mean, var, n = fit.mean_, fit.variance_, len(fit.mean_)
    tau2 = var[data.a] + var[data.b]
    weight = (data.wins_a + data.wins_b) * _fisher(mean[data.a] - mean[data.b], tau2)
    lap = np.zeros((n, n))
    np.add.at(lap, (data.a, data.b), -weight)
    np.add.at(lap, (data.b, data.a), -weight)
    lap[np.diag_indices(n)] = -lap.sum(1)
    return np.linalg.inv(lap + 1.0 / n + 1e-6 * np.eye(n))


def _fisher(diff: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """Fisher information about the mean difference carried by one probit comparison."""
    z = diff / np.sqrt(tau2)
    return np.exp(-z * z - math.log(2 * math.pi) - log_ndtr(z) - log_ndtr(-z)) / tau2


def _close_low_degree(state: ActiveState, p: float, q: float, at_least: int) -> np.ndarray:
    """Pool positions in both the lowest p% of utility gaps and the lowest q% of degree sums, widening p and
    q by 1.5x (up to 100) until there are at least ``at_least`` of them or five tries are spent."""
    mean = state.fit.mean_
    gaps = np.abs(mean[state.pool_a] - mean[state.pool_b])
    degree_sum = state.degree[state.pool_a] + state.degree[state.pool_b]
    for _ in range(5):
        candidates = np.flatnonzero((gaps <= np.percentile(gaps, p)) & (degree_sum <= np.percentile(degree_sum, q)))
        if len(candidates) >= at_least:
            break
        p, q = min(p * 1.5, 100.0), min(q * 1.5, 100.0)
    return candidates


@dataclass
class InformationGain:
    """Greedy batch A-optimal design on the Laplace posterior of the means, over the reference's candidates.

    Candidates are the pairs the reference heuristic would draw from (small utility gaps, small degree
    sums; widened until there are ``candidates`` times the batch); instead of drawing uniformly among them,
    pairs are picked by how much they would shrink the summed posterior variance of all utility
    differences, ||Sigma d||^2 / (1 / I_ab + d' Sigma d) with d = e_a - e_b and I_ab the pair's expected
    Fisher information (the rank-one Laplace update; Fedorov's sequential A-optimal design). Held-out pairs
    are uniformly random, so every difference counts. After each pick the covariance and Sigma^2 get that
    update, so a batch spreads over the items instead of piling onto one. Measured alternatives
    (benchmarks/README.md): the same design over the whole pool, or weighted towards close pairs, and
    uncertainty sampling (misorder probability, BALD) all needed more queries than the reference.
    """

    candidates: int = 3

    def __call__(self, state: ActiveState, k: int, rng: np.random.Generator) -> np.ndarray:
        fit, data = state.fit, state.data
        pool = _close_low_degree(state, 10.0, 20.0, self.candidates * k)
        if len(pool) < k:  # the reference tops up with random pairs; here the whole pool competes instead
            pool = np.arange(len(state.pool_a))
        sigma = laplace_covariance(fit, data)
        square = sigma @ sigma
        mean, var = fit.mean_, fit.variance_
        per_pair = float(np.mean(data.wins_a + data.wins_b))
        a, b = state.pool_a[pool], state.pool_b[pool]
        inv_info = 1.0 / (per_pair * _fisher(mean[a] - mean[b], var[a] + var[b]))

        def gain() -> np.ndarray:
            shrink = square[a, a] + square[b, b] - 2 * square[a, b]
            return shrink / (inv_info + sigma[a, a] + sigma[b, b] - 2 * sigma[a, b])

        jitter = 1 + 1e-9 * rng.random(len(a))  # seeded tie-breaks
        chosen: list[int] = []
        for _ in range(k):
            score = gain() * jitter
            score[chosen] = -np.inf
            best = int(np.argmax(score))
            chosen.append(best)
            i, j = a[best], b[best]
            u = sigma[:, i] - sigma[:, j]
            w = square[:, i] - square[:, j]
            denom = inv_info[best] + u[i] - u[j]
            square -= (np.outer(u, w) + np.outer(w, u)) / denom - np.outer(u, u) * ((w[i] - w[j]) / denom ** 2)
            sigma -= np.outer(u, u) / denom
        return pool[np.array(chosen, dtype=np.int64)]


def uniform_select(state: ActiveState, k: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random pool pairs: the baseline any selector has to beat."""
    return rng.choice(len(state.pool_a), k, replace=False)


@dataclass
class ActiveResult:
    """Everything queried, the final fit and, per round, held-out metrics against the number of queries."""

    items: tuple[str, ...]
    prefs: pd.DataFrame
    fit: ThurstonianModel
    history: list[dict] = field(default_factory=list)
    holdout: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history)


def holdout_split(n_items: int, fraction: float = 0.05, cap: int = 1000,
                  seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Keys (lo * n + hi) of held-out pairs, min(fraction * C(N,2), cap) at random, and of the pool."""
    lo, hi = np.triu_indices(n_items, 1)
    keys = lo.astype(np.int64) * n_items + hi
    rng = np.random.default_rng(seed)
    n_out = min(int(fraction * len(keys)), cap)
    out = np.zeros(len(keys), dtype=bool)
    out[rng.choice(len(keys), n_out, replace=False)] = True
    return keys[out], keys[~out]


def initial_pairs(n_items: int, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions in ``pool`` of a random 2-regular graph's edges, topped up to N pairs (§4.2).

    The reference draws any random 2-regular graph, which is usually several disjoint cycles; we draw a
    random Hamiltonian cycle, which is 2-regular too but connected, so the first fit is identified.
    """
    order = rng.permutation(n_items)
    lo, hi = np.minimum(order, np.roll(order, 1)), np.maximum(order, np.roll(order, 1))
    keys = np.unique(lo.astype(np.int64) * n_items + hi)
    pos = np.searchsorted(pool, keys)
    found = pos[(pos < len(pool)) & (pool[np.minimum(pos, len(pool) - 1)] == keys)]
    rest = np.setdiff1d(np.arange(len(pool)), found)
    extra = rng.choice(rest, max(0, min(n_items, len(pool)) - len(found)), replace=False)
    return np.concatenate([found, extra])


def run_active(select: Selector, query_fn: QueryFn, items: Sequence[str], *, budget: int | None = None,
               batch_size: int = 500, seed: int = 0, holdout_fraction: float = 0.05, holdout_cap: int = 1000,
               holdout_seed: int = 42, track_holdout: bool = True, model: str = "thurstonian",
               fit_options: dict | None = None,
               on_round: Callable[[ThurstonianModel], dict] | None = None) -> ActiveResult:
    """Query rounds of ``batch_size`` pairs chosen by ``select`` until ``budget`` pairs have been queried.

    With ``track_holdout`` the held-out pairs are queried first and scored after every round (the
    reference queries them once at the end; the count is the same). Items are indexed in sorted order.
    ``on_round(fit)`` may add columns to each round's history row (for a simulated agent, say, the
    expected accuracy against its truth: ``Agent.expected_accuracy``).
    """
    items = tuple(sorted(items))
    n = len(items)
    index = {item: i for i, item in enumerate(items)}
    rng = np.random.default_rng(seed)
    budget = reference_budget(n) if budget is None else budget
    held_keys, pool = holdout_split(n, holdout_fraction, holdout_cap, holdout_seed)
    if len(pool) == 0:
        raise ValueError(f"the holdout ({len(held_keys)} pairs) takes every pair of the {n} items: no pairs left "
                         "to query; lower holdout_fraction or holdout_cap")
    available = np.ones(len(pool), dtype=bool)

    def ask(keys: np.ndarray) -> pd.DataFrame:
        return query_fn([(items[k // n], items[k % n]) for k in keys.tolist()])

    def to_comp(frame: pd.DataFrame) -> Comparisons:
        ia = frame["item_a"].map(index).to_numpy(np.int64)
        ib = frame["item_b"].map(index).to_numpy(np.int64)
        wa, wb = frame["wins_a"].to_numpy(float), frame["wins_b"].to_numpy(float)
        keep = wa + wb > 0
        return aggregate(items, ia[keep], ib[keep], wa[keep], wb[keep])

    held_out = ask(held_keys) if track_holdout else None
    first = initial_pairs(n, pool, rng)
    available[first] = False
    frames = [ask(pool[first])]
    n_queried = len(first)
    history = []
    while True:
        prefs = pd.concat(frames, ignore_index=True)
        data = to_comp(prefs)
        fit = ThurstonianModel(model=model, **(fit_options or {})).fit(data, allow_disconnected=True)
        row = {"round": len(history), "queries": n_queried}
        if held_out is not None:
            row.update(evaluate(fit.mean_, fit.variance_, to_comp(held_out), model).to_dict())
        if on_round is not None:
            row.update(on_round(fit))
        history.append(row)
        k = min(batch_size, budget - n_queried, int(available.sum()))
        if k <= 0:
            break
        positions = np.flatnonzero(available)
        degree = np.bincount(np.concatenate([data.a, data.b]), minlength=n)
        state = ActiveState(fit, data, pool[positions] // n, pool[positions] % n, degree)
        picked = positions[select(state, k, rng)]
        available[picked] = False
        frames.append(ask(pool[picked]))
        n_queried += len(picked)
    return ActiveResult(items, prefs, fit, history, held_out)
