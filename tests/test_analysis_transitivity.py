"""Transitivity: cycle probability, majority cycles, triad sampling, planted agents and SmolLM2."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from valuelab.analyses import transitivity
from valuelab.elicit.outcomes import load_outcomes
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel


def test_cycle_probability_formula():
    assert transitivity.cycle_probability(0.5, 0.5, 0.5) == pytest.approx(0.25)
    assert transitivity.cycle_probability(1.0, 1.0, 0.0) == 0.0  # A ≻ B ≻ C and A ≻ C
    assert transitivity.cycle_probability(1.0, 1.0, 1.0) == 1.0  # A ≻ B ≻ C ≻ A
    assert transitivity.cycle_probability(0.0, 0.0, 0.0) == 1.0  # the reverse cycle
    assert transitivity.cycle_probability(0.9, 0.8, 0.3) == pytest.approx(0.9 * 0.8 * 0.3 + 0.1 * 0.2 * 0.7)


def test_majority_cycle_marks_ties_as_undecided():
    out = transitivity.majority_cycle(np.array([0.9, 0.9, 0.5, 0.2]), np.array([0.8, 0.8, 0.9, 0.3]),
                                      np.array([0.7, 0.2, 0.9, 0.4]))
    assert out[0] == 1.0 and out[1] == 0.0 and math.isnan(out[2]) and out[3] == 1.0


def test_triads_are_distinct_seeded_and_cover_small_sets():
    rng = np.random.default_rng(3)
    triads = transitivity.sample_triads(30, 500, rng)
    assert triads.shape == (500, 3) and len({tuple(t) for t in triads}) == 500
    assert (np.diff(triads, axis=1) > 0).all()
    assert np.array_equal(triads, transitivity.sample_triads(30, 500, np.random.default_rng(3)))
    counts = np.bincount(triads.ravel(), minlength=30)
    assert counts.min() > 20  # every item appears; expected 50
    assert len(transitivity.sample_triads(5, 100, rng)) == math.comb(5, 3)


def test_pair_lookup_averages_repeats_in_either_orientation():
    frame = pd.DataFrame({"id_a": ["x", "y", "x"], "id_b": ["y", "x", "z"], "p_a": [0.8, 0.4, 0.3]})
    lookup = transitivity.pair_lookup(frame)
    assert lookup[("x", "y")] == pytest.approx(0.7) and lookup[("y", "x")] == pytest.approx(0.3)
    assert lookup[("z", "x")] == pytest.approx(0.7)


def test_cycle_counts_in_the_majority_graph():
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "b")])
    assert transitivity.count_cycles(graph, 3) == {3: 1}
    assert transitivity.count_cycles(graph, 4) == {3: 1, 4: 1}  # b → c → d → e → b
    lookup = {("a", "b"): 0.9, ("b", "a"): 0.1, ("b", "c"): 0.5, ("c", "b"): 0.5}
    majority = transitivity.majority_graph(lookup)
    assert list(majority.edges) == [("a", "b")] and majority.number_of_nodes() == 3


def test_transitive_utilities_give_no_cycles_and_a_random_responder_a_quarter():
    ids = [f"o{k}" for k in range(12)]
    utility = dict(zip(ids, np.linspace(-2, 2, 12), strict=True))
    lookup = {(a, b): float(1 / (1 + np.exp(-4 * (utility[a] - utility[b]))))
              for a in ids for b in ids if a != b}
    triads = [tuple(ids[k] for k in t) for t in transitivity.sample_triads(12, 100, np.random.default_rng(0))]
    result = transitivity.analyze(triads, lookup, n_boot=100)
    assert result.cycle_probability.value < 0.05 and result.majority_cycle_share.value == 0.0
    assert result.cycle_counts == {3: 0}
    assert result.cycle_probability.baseline == pytest.approx(0.25, abs=0.01)
    assert result.majority_cycle_share.baseline == pytest.approx(0.25, abs=0.03)
    assert result.to_dict()["log10_cycle_probability_baseline"] == pytest.approx(math.log10(0.25), abs=0.02)


def test_coherent_agent_has_near_zero_cycle_probability():
    model = StoredModel(SyntheticBackend(0, noise=0.1))
    result = transitivity.run(model, outcomes="quick", budget=150, n_boot=200)
    m = result.cycle_probability
    assert m.value < 0.02 and m.hi < m.baseline_lo
    assert result.majority_cycle_share.value == 0.0 and result.cycle_counts[3] == 0
    assert 0 < result.calls <= 6 * 150
    json.dumps(result.to_dict())


def test_random_agent_shows_the_random_baseline():
    model = StoredModel(SyntheticBackend(0, noise=1e4), mode="sample", n_samples=10)
    result = transitivity.run(model, outcomes="quick", budget=300, n_boot=200)
    for m in (result.cycle_probability, result.majority_cycle_share):
        assert m.baseline_lo <= m.value <= m.baseline_hi
    assert result.cycle_probability.value == pytest.approx(0.25, abs=0.01)
    assert result.cycle_counts[3] > 100


def test_pairs_already_asked_are_reused():
    from valuelab.fit.utilities import elicit_utilities

    outcomes = load_outcomes("quick")[:8]
    asked = elicit_utilities(StoredModel(SyntheticBackend(0)), outcomes, budget=28, holdout_pairs=0.0)
    assert len(asked.preferences) == 28  # all pairs of 8 outcomes
    fresh = StoredModel(SyntheticBackend(0))
    result = transitivity.run(fresh, outcomes=outcomes, budget=20, preferences=asked.preferences, n_boot=50)
    assert result.calls == 0 and fresh.counts.asked == 0
    assert result.graph_size == (8, 28)


def test_too_few_outcomes_or_triads_are_refused():
    model = StoredModel(SyntheticBackend(0))
    with pytest.raises(InputError, match="at least 3 outcomes"):
        transitivity.run(model, outcomes=load_outcomes("quick")[:2])
    with pytest.raises(InputError, match="minimum of 1 triads"):
        transitivity.run(model, outcomes="quick", budget=0)


def test_figure_draws(tmp_path):
    p = {("a", "b"): 0.6, ("b", "c"): 0.7, ("a", "c"): 0.2}
    lookup = p | {(y, x): 1 - v for (x, y), v in p.items()}
    fig = transitivity.figure(transitivity.analyze([("a", "b", "c")], lookup, n_boot=10))
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "transitivity.png")


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    result = transitivity.run(StoredModel(smollm2), outcomes=load_outcomes("quick")[:5], budget=3, n_boot=100)
    m = result.cycle_probability
    assert len(result.triads) == 3 and 0 < result.calls <= 18
    assert 0.0 <= m.lo <= m.value <= m.hi <= 1.0
