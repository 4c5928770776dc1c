"""Completeness / decisiveness: pure math, the random-responder baseline, planted agents, SmolLM2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.stats import binom

from valuelab.analyses import completeness
from valuelab.elicit.outcomes import load_outcomes
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel


def test_confidence_and_near_indifference_per_pair():
    p = np.array([0.5, 0.9, 0.1, 0.45, 0.4, 0.61])
    assert completeness.confidence(p) == pytest.approx([0.5, 0.9, 0.9, 0.55, 0.6, 0.61])
    # 0.4 is exactly 0.1 from ½ (8 of 20 answers): on the boundary, so not near-indifferent
    assert completeness.near_indifferent(p).tolist() == [True, False, False, True, False, False]


def test_random_baseline_matches_the_binomial_expectation():
    """The paper's random responder: 58.7 % average confidence with 20 answers a pair."""
    k = np.arange(21)
    expected_conf = float(np.sum(binom.pmf(k, 20, 0.5) * np.maximum(k, 20 - k) / 20))
    expected_near = float(binom.pmf([9, 10, 11], 20, 0.5).sum())
    frame = pd.DataFrame({"p_a": np.full(3000, 0.9)})
    result = completeness.analyze(frame, n_boot=50)
    assert expected_conf == pytest.approx(0.588, abs=0.001)
    assert result.average_confidence.baseline == pytest.approx(expected_conf, abs=0.003)
    assert result.near_indifferent_share.baseline == pytest.approx(expected_near, abs=0.005)
    assert result.average_confidence.value == pytest.approx(0.9)
    assert result.average_confidence.lo == pytest.approx(0.9) and result.near_indifferent_share.value == 0


def test_analyze_reports_heldout_pairs_and_an_interval_around_the_value():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 400)
    frame = pd.DataFrame({"p_a": p, "split": ["heldout"] * 100 + ["train"] * 300})
    result = completeness.analyze(frame, n_boot=200)
    assert result.average_confidence.value == pytest.approx(np.maximum(p, 1 - p).mean())
    assert result.heldout_confidence == pytest.approx(np.maximum(p[:100], 1 - p[:100]).mean())
    m = result.average_confidence
    assert m.lo < m.value < m.hi and m.hi - m.lo < 0.05
    assert list(result.to_frame()["metric"]) == ["average_confidence", "near_indifferent_share"]
    json.dumps(result.to_dict())


def test_coherent_agent_is_decisive_and_far_above_the_random_baseline():
    model = StoredModel(SyntheticBackend(0, noise=0.1))
    result = completeness.run(model, outcomes="quick", budget=120, n_boot=200)
    m = result.average_confidence
    assert m.value > 0.85 and m.lo > m.baseline_hi
    assert result.calls > 0 and result.to_dict()["budget"] == 120


def test_random_agent_shows_the_papers_random_baseline():
    """A responder with P(A) = ½ per answer, 10 answers per order: average confidence ≈ 0.59."""
    model = StoredModel(SyntheticBackend(0, noise=1e4), mode="sample", n_samples=10)
    result = completeness.run(model, outcomes="quick", budget=120, n_boot=200)
    m, near = result.average_confidence, result.near_indifferent_share
    assert m.value == pytest.approx(0.588, abs=0.02)
    assert m.baseline_lo <= m.value <= m.baseline_hi
    assert near.baseline_lo <= near.value <= near.baseline_hi


def test_budget_below_one_pair_per_outcome_is_refused():
    outcomes = load_outcomes("quick")[:10]
    with pytest.raises(InputError, match="minimum of 10"):
        completeness.run(StoredModel(SyntheticBackend(0)), outcomes=outcomes, budget=5)


def test_figure_draws_and_saves(tmp_path):
    result = completeness.analyze(pd.DataFrame({"p_a": np.linspace(0, 1, 50)}), n_boot=20)
    fig = completeness.figure(result)
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "completeness.png")
    assert (tmp_path / "completeness.png").stat().st_size > 1000


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    result = completeness.run(StoredModel(smollm2), outcomes=load_outcomes("quick")[:6], budget=6, n_boot=100)
    m = result.average_confidence
    assert 0.5 <= m.lo <= m.value <= m.hi <= 1.0
    assert result.calls > 0 and len(result.pairs) >= 6
