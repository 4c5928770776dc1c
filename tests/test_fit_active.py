"""Active pair sampling: reproducibility and the selector against the reference heuristic."""

import numpy as np
import pytest

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


def area_under_curve(select, seed, n=60, budget=300, samples=5):
    """Mean expected held-out accuracy against the agent's truth over the rounds after the first: the
    population value of the sampled holdout_pairs, whose own noise (one point at 1,000 pairs) swamps the
    differences between selectors."""
    agent = random_agent(n, seed=seed)
    res = run_active(select, agent.query_fn(samples, seed), agent.items, budget=budget, batch_size=30, seed=seed,
                     track_holdout=False,
                     on_round=lambda fit: {"expected_accuracy": agent.expected_accuracy(fit.mean_, samples)})
    return res.to_frame().expected_accuracy.iloc[1:].mean()


def test_selector_beats_reference_heuristic_over_seeds():
    # Measured on these seeds: ours 0.8603 on average, reference 0.8569, uniform random pairs 0.8511; ours
    # ahead on 5 of 6. The margins asserted are about half of those gaps.
    seeds = range(6)
    ours = np.array([area_under_curve(InformationGain(), seed) for seed in seeds])
    ref = np.array([area_under_curve(reference_select, seed) for seed in seeds])
    uniform = np.array([area_under_curve(uniform_select, seed) for seed in seeds])
    assert np.mean(ref - uniform) > 0.003
    assert np.mean(ours - ref) > 0.0015
    assert np.sum(ours > ref) >= 4


def test_expected_accuracy_matches_a_sampled_holdout():
    agent = random_agent(40, seed=3)
    truth = agent.expected_accuracy(agent.mean, 10)
    assert agent.expected_accuracy(-agent.mean, 10) < 1 - truth + 1e-9  # reversed ranking: every call flips
    res = run_active(uniform_select, agent.query_fn(10, 0), agent.items, budget=200, batch_size=50, seed=0,
                     holdout_fraction=0.5, holdout_cap=390,
                     on_round=lambda fit: {"expected_accuracy": agent.expected_accuracy(fit.mean_, 10)})
    last = res.to_frame().iloc[-1]
    assert last.expected_accuracy <= truth + 1e-9
    # Half of the 780 pairs held out: the sampled accuracy is one draw of the expectation (sd about 0.015).
    assert abs(last.accuracy - last.expected_accuracy) < 0.05
    with pytest.raises(ValueError, match="no pairs left to query"):
        run_active(uniform_select, agent.query_fn(10, 0), agent.items, budget=200, holdout_fraction=1.0,
                   holdout_cap=780)
