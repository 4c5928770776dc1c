"""Queries to reach held-out accuracy within one point of the fit on all pairs: reference heuristic vs
valuelab's selector, on a simulated Thurstonian agent with 510 items (K = 10 draws per pair, rounds of
500 pairs after a 510-pair initial graph, as in the reference configuration).

Run: .venv/bin/python benchmarks/bench_active.py [--seeds 2]. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from valuelab.fit.active import InformationGain, holdout_split, reference_select, run_active
from valuelab.fit.io import aggregate
from valuelab.fit.metrics import evaluate
from valuelab.fit.simulate import random_agent
from valuelab.fit.thurstonian import ThurstonianModel

N, K, ROUND, BUDGET = 510, 10, 500, 9510


def full_fit_accuracy(agent, seed):
    """Held-out accuracy of a fit on every pool pair (the ceiling), with the same held-out answers."""
    held, pool = holdout_split(N)
    query = agent.query_fn(K, seed)
    held_frame = query([(agent.items[k // N], agent.items[k % N]) for k in held.tolist()])
    rng = np.random.default_rng(seed)
    wins = rng.binomial(K, agent.proba(pool // N, pool % N)).astype(float)
    fit = ThurstonianModel().fit(aggregate(agent.items, pool // N, pool % N, wins, K - wins))
    idx = {item: i for i, item in enumerate(agent.items)}
    ha, hb = held_frame.item_a.map(idx).to_numpy(), held_frame.item_b.map(idx).to_numpy()
    held_comp = aggregate(agent.items, ha, hb, held_frame.wins_a.to_numpy(), held_frame.wins_b.to_numpy())
    return evaluate(fit.mean_, fit.variance_, held_comp).accuracy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    print(f"N = {N}, K = {K}, rounds of {ROUND}, budget {BUDGET} pairs, holdout 1000 pairs\n")
    print("| seed | selector | all-pairs accuracy | target | queries to target | accuracy at 2010 | "
          "accuracy at budget | time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    needed = {"reference": [], "valuelab": []}
    for seed in range(opts.seeds):
        agent = random_agent(N, seed=seed)
        ceiling = full_fit_accuracy(agent, seed)
        for name, select in (("reference", reference_select), ("valuelab", InformationGain())):
            start = time.perf_counter()
            res = run_active(select, agent.query_fn(K, seed), agent.items, budget=BUDGET, batch_size=ROUND,
                             seed=seed)
            hist = res.to_frame()
            hit = hist[hist.accuracy >= ceiling - 0.01]
            queries = int(hit.queries.iloc[0]) if len(hit) else None
            needed[name].append(queries if queries is not None else float("nan"))
            at = hist.set_index("queries").accuracy
            print(f"| {seed} | {name} | {ceiling:.3f} | {ceiling - 0.01:.3f} | "
                  f"{queries if queries is not None else f'> {BUDGET}'} | {at.get(2010, float('nan')):.3f} | "
                  f"{hist.accuracy.iloc[-1]:.3f} | {time.perf_counter() - start:.0f} |", flush=True)
    ratio = np.nanmean(needed["valuelab"]) / np.nanmean(needed["reference"])
    print(f"\nmean queries to target: reference {np.nanmean(needed['reference']):.0f}, "
          f"valuelab {np.nanmean(needed['valuelab']):.0f} (ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
