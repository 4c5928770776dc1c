"""Template spread: an agent whose utilities ignore the wording scores near 1; random answers score near 0."""

from __future__ import annotations

import json

import pytest

from valuelab.analyses import template_spread as ts
from valuelab.elicit.outcomes import load_outcomes
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

OUTCOMES = load_outcomes("quick")[:20]


def test_an_agent_that_ignores_the_wording_has_the_same_utilities_under_every_template():
    result = ts.run(StoredModel(SyntheticBackend(4)), outcomes=OUTCOMES, budget=40, n_boot=200)
    assert result.template_correlation.value > 0.95 and result.template_correlation.lo > 0.9
    assert result.spread.value < 0.2
    assert result.template_correlation.baseline_hi < 0.6  # independent utilities would not get near it
    assert set(result.pairwise["template_a"]) | set(result.pairwise["template_b"]) == set(ts.PAIRWISE_TEMPLATES)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["calls"] == 3 * 2 * (40 + 9)  # 3 templates × both orders × (40 trained + 5% of 190 held out)
    assert len(ts.figure(result).axes) == 1


def test_random_answers_give_unrelated_utilities():
    backend = SyntheticBackend(0, utilities={o.text: (0.0, 50.0) for o in OUTCOMES})
    result = ts.run(StoredModel(backend, mode="sample", n_samples=3), outcomes=OUTCOMES, budget=40, n_boot=200)
    assert result.template_correlation.lo < 0 < result.template_correlation.hi
    assert result.spread.value > 0.6


def test_needs_two_known_templates():
    with pytest.raises(InputError, match="at least two known templates"):
        ts.run(StoredModel(SyntheticBackend(1)), outcomes=OUTCOMES, templates=["state-of-world"])
    with pytest.raises(InputError, match="at least two known templates"):
        ts.run(StoredModel(SyntheticBackend(1)), outcomes=OUTCOMES, templates=["state-of-world", "nope"])
