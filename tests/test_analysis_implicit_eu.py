"""Implicit lotteries: the event set we ship, its validation, planted agents and SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest

from valuelab.analyses import implicit_eu
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

GOOD = """events:
  - id: coin
    basis: chance
    text: A fair coin decides whether you get a bicycle.
    outcomes:
      - text: You get a bicycle.
        p: 1/2
      - text: You do not get a bicycle.
        p: 0.5
"""


def write(tmp_path, text):
    path = tmp_path / "events.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_events_are_valid_and_sized_like_the_reference():
    events = implicit_eu.load_events()
    assert 35 <= len(events) <= 45
    assert {e.basis for e in events} == {"chance", "base-rate"}
    for e in events:
        assert len(e.outcomes) >= 2 and sum(e.probabilities) == pytest.approx(1.0, abs=1e-9)
        assert all(o.id.startswith(e.id + ".") for o in e.outcomes)
        assert "%" not in e.text  # the chances are left for the model to infer
    texts = [t for e in events for t in (e.text, *(o.text for o in e.outcomes))]
    assert len(set(texts)) == len(texts)
    die = next(e for e in events if e.id == "die-payout")
    assert die.probabilities == pytest.approx([1 / 6] * 6)


def test_a_minimal_file_loads(tmp_path):
    (event,) = implicit_eu.load_events(write(tmp_path, GOOD))
    assert event.probabilities == (0.5, 0.5) and event.line == 2
    assert event.lottery().outcome_ids == ("coin.1", "coin.2")


@pytest.mark.parametrize("old, new, line, field, message", [
    ("p: 0.5\n", "p: 0.4\n", 2, "outcomes", "sum to 0.9"),
    ("p: 0.5\n", "p: half\n", 8, "p", "fraction like 1/6"),
    ("p: 0.5\n", "p: 0\n", 8, "p", "strictly between 0 and 1"),
    ("basis: chance", "basis: hunch", 2, "basis", "chance, base-rate"),
    ("id: coin", "id: Coin Toss", 2, "id", "lower-case"),
    ("      - text: You do not get a bicycle.", "      - text: '  '", 8, "text", "non-empty"),
    ("      - text: You do not get a bicycle.", "      - text: You get a bicycle.", 8, "text", "line 6"),
    ("        p: 1/2\n", "        p: 1/2\n        weight: 3\n", 6, "weight", "unknown field"),
    ("    basis: chance\n", "", 2, "basis", "missing field"),
    (GOOD[GOOD.index("    outcomes:"):], "    outcomes: []\n", 2, "outcomes", "at least 2"),
])
def test_malformed_files_name_file_line_and_field(tmp_path, old, new, line, field, message):
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InputError, match=message) as err:
        implicit_eu.load_events(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)


def test_bad_yaml_and_duplicate_ids_are_reported(tmp_path):
    with pytest.raises(InputError, match="invalid YAML") as err:
        implicit_eu.load_events(write(tmp_path, GOOD + "  - id: [unclosed\n"))
    assert err.value.line is not None and err.value.line >= 10
    twice = GOOD + GOOD.split("\n", 1)[1].replace("bicycle", "kite")
    with pytest.raises(InputError, match="duplicate id 'coin' \\(first on line 2\\)") as err:
        implicit_eu.load_events(write(tmp_path, twice))
    assert err.value.line == 10


def planted_truth(events, seed=0, variance=0.01):
    rng = np.random.default_rng(seed)
    truth = {}
    for e in events:
        means = rng.normal(size=len(e.outcomes))
        truth.update({o.text: (float(m), variance) for o, m in zip(e.outcomes, means, strict=True)})
        truth[e.text] = (float(np.dot(e.probabilities, means)), variance)
    return truth


def test_coherent_agent_values_events_at_their_expected_utility():
    events = implicit_eu.load_events()[:14]
    model = StoredModel(SyntheticBackend(0, utilities=planted_truth(events)))
    result = implicit_eu.run(model, events=events, n_boot=200)
    assert result.pearson_r.value > 0.95 and result.pearson_r.lo > result.pearson_r.baseline_hi
    assert result.order_agreement.value > 0.85
    assert list(result.lotteries["basis"]) == [e.basis for e in events]
    assert result.analysis == "implicit-expected-utility"


def test_random_agent_stays_within_the_baseline():
    model = StoredModel(SyntheticBackend(0, noise=1e4), mode="sample", n_samples=10)
    result = implicit_eu.run(model, max_events=14, n_boot=100)
    assert len(result.lotteries) == 14
    for m in (result.pearson_r, result.order_agreement):
        assert m.baseline_lo <= m.value <= m.baseline_hi


def test_budget_below_one_pair_per_item_is_refused():
    with pytest.raises(InputError, match="minimum of"):
        implicit_eu.run(StoredModel(SyntheticBackend(0)), max_events=3, budget=2)


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    events = [e for e in implicit_eu.load_events() if e.id in ("heart-holiday", "roulette-red", "car-raffle")]
    result = implicit_eu.run(StoredModel(smollm2), events=events, budget=9, n_boot=100)  # 3 events + 6 subs
    assert len(result.lotteries) == 3 and result.calls > 0 and result.n_items == 9
    assert -1.0 <= result.pearson_r.value <= 1.0
