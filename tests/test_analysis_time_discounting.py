"""Time discounting: the grid, parsing, indifference points, planted hyperbolic and exponential agents."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.stats import norm

from valuelab.analyses import time_discounting as td
from valuelab.errors import InputError
from valuelab.models.base import ChoiceRequest
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

SETUP = td.load_setup()
CONDITIONS = td.generate_conditions(SETUP, seed=0)


def discounter(kind: str, rate: float) -> StoredModel:
    """A Thurstonian agent whose utility of "$X in t months" is ln(X·D(t)), D hyperbolic or exponential."""
    truth = {}
    for row in CONDITIONS.itertuples():
        factor = 1 / (1 + rate * row.delay) if kind == "hyperbolic" else math.exp(-rate * row.delay)
        truth[row.text_now] = (math.log(row.amount_now), 0.02)
        truth[row.text_later] = (math.log(row.amount_later * factor), 0.02)
    return StoredModel(SyntheticBackend(0, utilities=truth))


def test_grid_is_stratified_seeded_and_worded():
    assert len(CONDITIONS) == len(SETUP.delays) * SETUP.count
    for _, part in CONDITIONS.groupby("delay"):
        edges = np.linspace(math.log(SETUP.low), math.log(SETUP.high), SETUP.count + 1)
        bins = np.digitize(np.log(part["multiplier"]), edges[1:-1])
        assert len(set(bins)) >= SETUP.count - 1  # one draw per log-bin (rounding may move one across)
    assert CONDITIONS.equals(td.generate_conditions(SETUP, seed=0))
    assert not CONDITIONS.equals(td.generate_conditions(SETUP, seed=1))
    row = CONDITIONS[CONDITIONS["delay"] == 12].iloc[0]
    assert row["text_now"] == "$1,000 paid right now"
    assert row["text_later"] == f"${row['amount_later']:,.0f} paid in 12 months"
    prompt = SETUP.template.render(row["text_now"], row["text_later"])
    assert "(A) $1,000 paid right now" in prompt and "Reply with only the letter A or B." in prompt


def test_indifference_point_is_exact_for_a_probit_chooser():
    m = np.geomspace(0.5, 30, 12)
    p = norm.cdf((np.log(m) - math.log(2.5)) / 0.3)
    assert td.indifference_point(m, p) == pytest.approx(math.log(2.5), abs=1e-9)
    assert math.isnan(td.indifference_point(m, np.full(12, 0.8)))  # never crosses ½ inside the grid
    noisy = p.copy()
    noisy[[3, 4]] = noisy[[4, 3]]  # a non-monotone blip is pooled, not trusted
    assert td.indifference_point(m, noisy) == pytest.approx(math.log(2.5), abs=0.3)


@pytest.mark.parametrize(("kind", "rate"), [("hyperbolic", 0.1), ("hyperbolic", 0.5), ("exponential", 0.04),
                                            ("exponential", 0.01)])
def test_planted_discounter_is_classified_and_its_rate_recovered(kind, rate):
    model = discounter(kind, rate)
    result = td.run(model, seed=0, n_boot=100)
    assert result.info["better_fit"] == kind
    delta = result.metrics["delta_aic"]
    assert (delta.lo > td.CLEAR_AIC) if kind == "hyperbolic" else (delta.hi < -td.CLEAR_AIC)
    fit = result.fits.set_index("model").loc[kind]
    assert fit["value"] == pytest.approx(rate, rel=0.03)
    assert fit["lo"] <= rate * 1.03 and fit["hi"] >= rate * 0.97
    assert result.info["calls"] == 2 * len(CONDITIONS) == model.counts.asked  # both orders of every condition


def test_random_agent_has_no_verdict_and_baseline_is_reported():
    result = td.run(StoredModel(SyntheticBackend(5)), seed=0, budget=24, n_boot=50)
    assert result.info["budget"] == 24
    assert result.info["better_fit"] in {"undetermined", "neither", "indistinguishable"}
    summary = json.loads(json.dumps(result.to_dict()))
    base = summary["delta_aic"]
    assert base["baseline_range"][0] < base["baseline"] < base["baseline_range"][1]
    assert 0 < summary["baseline_valid_delay_share"] < 1
    assert len(td.figure(result).axes) == 2


class Decorated(SyntheticBackend):
    """Always answers "**B**." in free text: parsed, that is B; compared as a raw string, it is neither."""

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        return [["**B**."] * n for _ in requests]


def test_sampled_answers_are_parsed_not_string_compared():
    conditions = td.generate_conditions(SETUP, delays=[1, 2, 3], n_multipliers=3)
    choices = td.ask(StoredModel(Decorated(0), mode="sample", n_samples=4), conditions, SETUP.template)
    # Always "B" in both orders: every answer counted, a pure position bias, no preference either way.
    assert (choices["mass"] == 1).all()
    assert (choices["position_bias"] == -0.5).all() and (choices["p_later"] == 0.5).all()


def test_budget_and_setup_are_checked(tmp_path):
    with pytest.raises(InputError, match="minimum of 24"):
        td.run(StoredModel(SyntheticBackend(0)), budget=10)
    bad = tmp_path / "setup.yaml"
    bad.write_text(td.DATA.joinpath("setup.yaml").read_text().replace("{option_b}", "{option_c}"))
    with pytest.raises(InputError) as err:
        td.load_setup(bad)
    assert err.value.file == str(bad) and err.value.field == "template"


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    model = StoredModel(smollm2)
    result = td.run(model, budget=9, delays=[1, 12, 60], n_boot=50)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["budget"] == 9 and summary["calls"] == 18
    verdicts = {"hyperbolic", "exponential", "indistinguishable", "neither", "undetermined"}
    assert summary["better_fit"] in verdicts
    assert result.choices["p_later"].between(0, 1).all()
    assert len(td.figure(result).axes) == 2
