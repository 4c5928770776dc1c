"""Expected utility with explicit lotteries: generator, metrics, baselines, planted agents and SmolLM2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from valuelab.analyses import expected_utility as eu
from valuelab.elicit.outcomes import load_outcomes
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

OUTCOMES = load_outcomes("quick")[:24]


def planted_truth(lotteries, outcomes, seed=0, variance=0.01):
    """An expected-utility maximiser: each lottery's mean utility is the expectation of its outcomes'."""
    rng = np.random.default_rng(seed)
    mean = {o.id: float(rng.normal()) for o in outcomes}
    truth = {o.text: (mean[o.id], variance) for o in outcomes}
    for lot in lotteries:
        truth[lot.text] = (sum(p * mean[i] for i, p in zip(lot.outcome_ids, lot.probabilities, strict=True)),
                           variance)
    return truth


def test_whole_percents_sum_to_100():
    rng = np.random.default_rng(0)
    for size in (2, 3, 5, 7):
        for _ in range(200):
            percents = eu.whole_percents(rng.uniform(0.01, 0.99, size))
            assert percents.sum() == 100 and percents.dtype.kind == "i"


def test_lotteries_are_seeded_split_by_size_and_well_formed():
    lotteries = eu.make_lotteries(OUTCOMES, 20, 3, seed=5)
    assert lotteries == eu.make_lotteries(OUTCOMES, 20, 3, seed=5)
    assert lotteries != eu.make_lotteries(OUTCOMES, 20, 3, seed=6)
    assert [len(lot.outcome_ids) for lot in lotteries].count(2) == 10
    texts = {o.id: o.text for o in OUTCOMES}
    for lot in lotteries:
        assert sum(lot.probabilities) == pytest.approx(1.0)
        assert all(0 < p < 1 for p in lot.probabilities)
        assert len(set(lot.outcome_ids)) == len(lot.outcome_ids)
        for oid, p in zip(lot.outcome_ids, lot.probabilities, strict=True):
            assert f"{round(100 * p)}% chance: {texts[oid]}" in lot.text
    assert len({lot.id for lot in lotteries}) == 20
    with pytest.raises(InputError, match="max_size"):
        eu.make_lotteries(OUTCOMES[:2], 4, 3)


def test_order_agreement_counts_ties_and_skips_self_pairs():
    u = np.array([1.0, 2.0, 3.0])
    assert eu.order_agreement(u, u) == 1.0
    assert eu.order_agreement(u, -u) == 0.0
    assert eu.order_agreement(np.array([1.0, 1.0]), np.array([5.0, 5.0])) == 1.0
    assert eu.order_agreement(np.array([1.0, 1.0]), np.array([5.0, 6.0])) == 0.0
    # a resample holding item 0 twice: only the pairs (0, 1) count, and they agree
    keys = np.array([0, 0, 1])
    assert eu.order_agreement(np.array([1.0, 1.0, 2.0]), np.array([3.0, 3.0, 4.0]), keys) == 1.0


def test_exact_expected_utility_scores_perfectly_and_the_baseline_is_noise():
    lotteries = eu.make_lotteries(OUTCOMES, 30, 3, seed=0)
    truth = planted_truth(lotteries, OUTCOMES)
    ids = {o.text: o.id for o in OUTCOMES} | {lot.text: lot.id for lot in lotteries}
    result = eu.analyze(lotteries, {ids[t]: m for t, (m, _) in truth.items()}, n_boot=100)
    assert result.pearson_r.value == pytest.approx(1.0) and result.mae_z.value == pytest.approx(0.0, abs=1e-9)
    assert result.order_agreement.value == 1.0
    assert result.pearson_r.baseline == pytest.approx(0.0, abs=0.05)
    assert result.mae_z.baseline == pytest.approx(2 / np.sqrt(np.pi), abs=0.05)
    assert result.order_agreement.baseline == pytest.approx(0.5, abs=0.03)
    with pytest.raises(InputError, match="no utility"):
        eu.analyze(lotteries, {"unrelated": 0.0})


def test_coherent_agent_has_high_eu_correlation():
    lotteries = eu.make_lotteries(OUTCOMES, 16, 3, seed=0)
    model = StoredModel(SyntheticBackend(0, utilities=planted_truth(lotteries, OUTCOMES)))
    result = eu.run(model, outcomes=OUTCOMES, n_lotteries=16, n_boot=200)
    assert result.pearson_r.value > 0.95 and result.pearson_r.lo > result.pearson_r.baseline_hi
    assert result.mae_z.value < 0.3 and result.order_agreement.value > 0.85
    assert result.n_items == 40 and result.calls > 0
    json.dumps(result.to_dict())


def test_random_agent_shows_no_eu_structure():
    model = StoredModel(SyntheticBackend(0, noise=1e4), mode="sample", n_samples=10)
    result = eu.run(model, outcomes=OUTCOMES, n_lotteries=30, n_boot=100)
    for m in (result.pearson_r, result.mae_z, result.order_agreement):
        assert m.baseline_lo <= m.value <= m.baseline_hi
    assert abs(result.pearson_r.value) < 0.5


def test_budget_below_one_pair_per_item_is_refused():
    with pytest.raises(InputError, match="minimum of 28"):
        eu.run(StoredModel(SyntheticBackend(0)), outcomes=OUTCOMES, n_lotteries=4, budget=10)


def test_figure_draws(tmp_path):
    lotteries = eu.make_lotteries(OUTCOMES, 6, 2, seed=0)
    utilities = {o.id: float(k) for k, o in enumerate(OUTCOMES)}
    utilities |= {lot.id: float(k) for k, lot in enumerate(lotteries)}
    fig = eu.figure(eu.analyze(lotteries, utilities, n_boot=10))
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "eu.png")


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    result = eu.run(StoredModel(smollm2), outcomes=OUTCOMES[:4], n_lotteries=3, max_size=2, budget=7,
                    n_boot=100)
    assert len(result.lotteries) == 3 and result.calls > 0
    assert -1.0 <= result.pearson_r.value <= 1.0 and 0.0 <= result.order_agreement.value <= 1.0
    assert result.to_dict()["n_items_fitted"] == 7
