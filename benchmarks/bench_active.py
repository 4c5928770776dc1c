"""Queries to reach held-out accuracy within one point of the fit on all pairs: reference heuristic,
uniformly random pairs and valuelab's selector, on a simulated Thurstonian agent with 510 items (K = 10
draws per pair, a 510-pair initial graph as in the reference, then rounds of ``--round`` pairs: the
reference uses 500, which makes queries-to-target coarse, so the default here is 100).

Accuracy is measured two ways, both against the same target (the all-pairs fit's value minus one point):
- expected: the held-out accuracy the fit would score in expectation over every pair, from the agent's true
  choice probabilities (``Agent.expected_accuracy``). This is what a holdout estimates, without its noise.
- sampled: the reference's 1,000 held-out pairs with K = 10 answers each. Its sampling noise is about one
  point, the size of the target's margin, so queries-to-target on it jumps around between runs.
A fourth row, "oracle", applies the reference rule to the agent's true utilities: what knowing the answer
buys a gap-and-degree selector.

Run: .venv/bin/python benchmarks/bench_active.py [--seeds 3] [--round 100] [--budget 5010]. Prints a
markdown table; a run that never reaches the target within the budget is reported as "> budget".
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from valuelab.fit.active import InformationGain, holdout_split, reference_select, run_active, uniform_select
from valuelab.fit.io import aggregate
from valuelab.fit.metrics import evaluate
from valuelab.fit.simulate import random_agent
from valuelab.fit.thurstonian import ThurstonianModel

N, K = 510, 10


def full_fit_ceilings(agent, seed):
    """Expected and sampled held-out accuracy of a fit on every pool pair, the sampled one on the same
    held-out answers the active runs see."""
    held, pool = holdout_split(N)
    query = agent.query_fn(K, seed)
    held_frame = query([(agent.items[k // N], agent.items[k % N]) for k in held.tolist()])
    rng = np.random.default_rng(seed)
    wins = rng.binomial(K, agent.proba(pool // N, pool % N)).astype(float)
    fit = ThurstonianModel().fit(aggregate(agent.items, pool // N, pool % N, wins, K - wins))
    idx = {item: i for i, item in enumerate(agent.items)}
    ha, hb = held_frame.item_a.map(idx).to_numpy(), held_frame.item_b.map(idx).to_numpy()
    held_comp = aggregate(agent.items, ha, hb, held_frame.wins_a.to_numpy(), held_frame.wins_b.to_numpy())
    return agent.expected_accuracy(fit.mean_, K), evaluate(fit.mean_, fit.variance_, held_comp).accuracy


def oracle(agent):
    """The reference rule applied to the agent's true utilities instead of the current fit's."""
    truth = dataclasses.make_dataclass("Truth", ["mean_"])(agent.mean)

    def select(state, k, rng):
        return reference_select(dataclasses.replace(state, fit=truth), k, rng)

    return select


def first_reaching(hist, column, target):
    hit = hist[hist[column] >= target]
    return int(hit.queries.iloc[0]) if len(hit) else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--round", type=int, default=100)
    parser.add_argument("--budget", type=int, default=5010)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    print(f"N = {N}, K = {K}, rounds of {opts.round}, budget {opts.budget} pairs, holdout 1000 pairs\n")
    print("| seed | selector | all-pairs acc. (expected / sampled) | queries to target, expected | "
          "queries to target, sampled | expected acc. at 1510 / 2510 | time (s) |")
    print("|---|---|---|---|---|---|---|")
    names = ("reference", "uniform", "valuelab", "oracle")
    needed = {name: [] for name in names}
    for seed in range(opts.seeds):
        agent = random_agent(N, seed=seed)
        expected_ceiling, sampled_ceiling = full_fit_ceilings(agent, seed)
        selectors = dict(zip(names, (reference_select, uniform_select, InformationGain(), oracle(agent)), strict=True))
        for name, select in selectors.items():
            start = time.perf_counter()
            res = run_active(select, agent.query_fn(K, seed), agent.items, budget=opts.budget,
                             batch_size=opts.round, seed=seed,
                             on_round=lambda fit, agent=agent: {"expected": agent.expected_accuracy(fit.mean_, K)})
            hist = res.to_frame()
            expected = first_reaching(hist, "expected", expected_ceiling - 0.01)
            sampled = first_reaching(hist, "accuracy", sampled_ceiling - 0.01)
            # An unreached target counts as the budget: a lower bound on what that selector needs.
            needed[name].append(expected if expected is not None else opts.budget)
            at = hist.set_index("queries").expected
            shown = [f"{q}" if q is not None else f"> {opts.budget}" for q in (expected, sampled)]
            print(f"| {seed} | {name} | {expected_ceiling:.3f} / {sampled_ceiling:.3f} | {shown[0]} | {shown[1]} | "
                  f"{at.get(1510, float('nan')):.3f} / {at.get(2510, float('nan')):.3f} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)
    mean = {name: np.mean(v) for name, v in needed.items()}
    print("\nmean queries to the expected-accuracy target (unreached = budget): "
          + ", ".join(f"{k} {v:.0f}" for k, v in mean.items())
          + f"; valuelab / reference {mean['valuelab'] / mean['reference']:.2f}")


if __name__ == "__main__":
    main()
