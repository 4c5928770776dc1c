"""Active pair sampling: reproducibility and the selector against the reference heuristic."""

import numpy as np

from valuelab.fit.active import InformationGain, reference_budget, reference_select, run_active, uniform_select
from valuelab.fit.simulate import random_agent


def run(select, seed, n=60, budget=300):
    agent = random_agent(n, seed=seed)
    return run_active(select, agent.query_fn(5, seed), agent.items, budget=budget, batch_size=30, seed=seed,
                      holdout_fraction=0.3, holdout_cap=500)


def test_same_seed_same_pairs():
    for select in (reference_select, InformationGain(), uniform_select):
        first, second = run(select, 1), run(select, 1)
        assert first.prefs.equals(second.prefs)
        assert len(first.prefs) == 300
        assert not run(select, 2).prefs[["item_a", "item_b"]].equals(first.prefs[["item_a", "item_b"]])


def test_budget_matches_reference():
    assert reference_budget(510) == 9174  # emergent-values §4.6: 510 + 18 x 500 = 9510 queried


def test_selector_beats_reference_heuristic_over_seeds():
    # Mean held-out accuracy over the rounds after the first (area under the learning curve). Measured:
    # ours 0.852 vs reference 0.838 on these seeds; the margin asserted is half of that gap.
    ours = np.array([run(InformationGain(), seed).to_frame().accuracy.iloc[1:].mean() for seed in range(4)])
    ref = np.array([run(reference_select, seed).to_frame().accuracy.iloc[1:].mean() for seed in range(4)])
    assert np.mean(ours - ref) > 0.007
    assert np.sum(ours > ref) >= 3
