"""The synthetic Thurstonian agent: known utilities, position bias and refusals, through the same interface."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from valuelab.elicit.pairwise import prefer_pairs
from valuelab.models import load_model
from valuelab.store import StoredModel

OUTCOMES = [f"Outcome number {i}" for i in range(12)]
PAIRS = [(a, b) for i, a in enumerate(OUTCOMES) for b in OUTCOMES[i + 1:]]


def truth_p(agent, a, b):
    (ma, va), (mb, vb) = agent.utility(a), agent.utility(b)
    return norm.cdf((ma - mb) / math.sqrt(va + vb))


def test_debiasing_recovers_the_true_preference_despite_position_bias():
    agent = load_model("synthetic:7", position_bias=0.6, noise=1.5)
    prefs = prefer_pairs(StoredModel(agent), PAIRS)
    raw_error = debiased_error = 0.0
    for p in prefs:
        truth = truth_p(agent, p.first, p.second)
        raw_error += abs(p.forward.p_a - truth)
        debiased_error += abs(p.p_first - truth)
    assert sum(p.position_bias for p in prefs) / len(prefs) > 0.1
    # Both orders averaged cancel most of a strong label bias; one order alone does not.
    assert debiased_error < 0.35 * raw_error
    assert debiased_error / len(prefs) < 0.04


def test_utilities_are_reproducible_from_the_seed():
    assert load_model("synthetic:3").utility("x") == load_model("synthetic:3").utility("x")
    assert load_model("synthetic:3").utility("x") != load_model("synthetic:4").utility("x")


def test_sampling_counts_refusals_instead_of_coin_flips():
    agent = load_model("synthetic:1", refusal_rate=0.3)
    model = StoredModel(agent, mode="sample", n_samples=200)
    (p,) = prefer_pairs(model, [(OUTCOMES[0], OUTCOMES[1])])
    assert p.forward.n_refusal + p.forward.n_a + p.forward.n_b == 200
    assert p.forward.mass == pytest.approx(0.7, abs=0.08)
    assert p.forward.low_mass is False
    assert p.p_first == pytest.approx(truth_p(agent, OUTCOMES[0], OUTCOMES[1]), abs=0.08)


def test_log_prob_mode_reports_choice_mass():
    (p,) = prefer_pairs(StoredModel(load_model("synthetic:1", refusal_rate=0.6)), [(OUTCOMES[0], OUTCOMES[1])])
    assert p.forward.mass == pytest.approx(0.4) and p.forward.low_mass


def test_planted_rater_centres_on_its_utility():
    from valuelab.models import ChoiceRequest

    agent = load_model("synthetic:0", utilities={"likes": (2.0, 0.1), "dislikes": (-2.0, 0.1)})
    scale = ("1", "2", "3", "4", "5", "6")
    forward = [ChoiceRequest(f"Rate: {s}", scale, labels=scale, subject=s) for s in ("likes", "dislikes")]
    reversed_ = [ChoiceRequest(f"Rate (reversed): {s}", scale[::-1], labels=scale, subject=s)
                 for s in ("likes", "dislikes")]
    model = StoredModel(agent)
    high, low = (r.expected_value([float(v) for v in req.options]) for r, req in
                 zip(model.choice_probs(forward), forward, strict=True))
    assert high > 5.3 and low < 1.7
    high_rev = model.choice_probs(reversed_)[0].expected_value([float(v) for v in scale[::-1]])
    assert high_rev == pytest.approx(high, abs=1e-6)
